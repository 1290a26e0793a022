"""task=train end to end: runs, accuracy, checkpoints, resume, reload, safety, DDP."""

import json
from pathlib import Path

import pytest
import torch

import runner
from runner import ConfigError
from runner.checkpoint.files import safe_load
from runner.run import run

FAST = ("device=cpu", "trainer.max_epochs=2")
DROPOUT_MLP = (
    "model.net=[{type: Linear, in_features: 20, out_features: 32}, ReLU, {type: Dropout, p: 0.3},"
    " {type: Linear, in_features: 32, out_features: 10}]"
)


def train(tmp_path: Path, *overrides: str, name: str = "run") -> dict:
    return run(runner.compose(["task=train", *FAST, *overrides]), tmp_path / name)


def weights(path: str | Path) -> dict[str, torch.Tensor]:
    return safe_load(path)["state_dict"]


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory) -> dict:
    """model=mlp trained once for the tests that only read its checkpoint."""
    return train(tmp_path_factory.mktemp("mlp"), "model=mlp")


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory) -> dict:
    """model=shared trained once for the tests that only read its checkpoint."""
    return train(tmp_path_factory.mktemp("shared"), "model=shared")


@pytest.fixture(scope="module")
def whole_and_half(tmp_path_factory) -> tuple[dict, dict]:
    """The dropout MLP with Adam, 4 epochs and 2 from scratch: what a resume from the 2 must
    end equal to, and the checkpoint it resumes from (read, never written)."""
    out = tmp_path_factory.mktemp("resume")
    common = (DROPOUT_MLP, "optim=adam")
    whole = train(out, *common, "trainer.max_epochs=4", name="whole")
    return whole, train(out, *common, "trainer.max_epochs=2", name="half")


@pytest.mark.parametrize(
    "overrides",
    [
        ("model=mlp",),
        ("model=rgnet", "init=xavier"),
        ("model=shared",),
        ("model=nested", "optim=adam"),
        ("model=centered",),
        ("model=mydense", "optim=adamw"),
        ("model=lazy_mlp", "init=kaiming"),
        ("model=linear", "data=synthetic"),
    ],
)
def test_zoo_models_train_and_their_checkpoints_reload_bitwise(tmp_path, overrides):
    result = train(tmp_path, *overrides)
    assert result["epochs"] == 2 and result["global_step"] > 0
    verification = result["verification"]
    assert verification["ok"] and verification["comparison"] == "bitwise"
    assert verification["max_abs_diff"] == 0.0
    checkpoints = Path(result["checkpoints"]["last"]).parent
    assert sorted(p.name for p in checkpoints.iterdir())[-1] == "last.ckpt"
    assert all("=" not in p.name for p in checkpoints.iterdir())
    assert "test/loss" in result["metrics"]


def test_mlp_on_digits_reaches_95_percent(tmp_path):
    result = run(runner.compose(["model=mlp", "data=digits", "device=cpu"]), tmp_path)
    assert result["metrics"]["test/acc"] >= 0.95


def test_linear_regression_recovers_the_books_weights(tmp_path):
    train(tmp_path, "model=linear", "data=synthetic", "trainer.max_epochs=5")
    net = runner.load(Path(tmp_path) / "run" / "checkpoints" / "last.ckpt").net
    assert torch.allclose(net[0].weight, torch.tensor([[2.0, -3.4]]), atol=0.01)
    assert torch.allclose(net[0].bias, torch.tensor([4.2]), atol=0.01)


def test_shared_weights_stay_shared_after_training_and_reload(shared_run):
    result = shared_run
    module = runner.load(result["checkpoints"]["last"])
    assert module.net[2] is module.net[4]
    assert result["verification"]["shared_tensors_intact"]


def test_same_seed_gives_bitwise_identical_weights(tmp_path):
    a = train(tmp_path, DROPOUT_MLP, name="a")
    b = train(tmp_path, DROPOUT_MLP, name="b")
    wa, wb = weights(a["checkpoints"]["last"]), weights(b["checkpoints"]["last"])
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    c = train(tmp_path, DROPOUT_MLP, "seed=1", name="c")
    assert not torch.equal(wa["net.0.weight"], weights(c["checkpoints"]["last"])["net.0.weight"])


@pytest.mark.parametrize("written_by", ["runner", "torch.save"])  # torch.save: older runners
def test_resuming_from_an_end_of_epoch_checkpoint_ends_bitwise_equal(
    tmp_path, written_by, whole_and_half
):
    common = (DROPOUT_MLP, "optim=adam")  # dropout draws random numbers; Adam has state
    whole, half = whole_and_half
    checkpoint = Path(half["checkpoints"]["last"])
    if written_by == "torch.save":
        checkpoint = tmp_path / "old.ckpt"
        torch.save(safe_load(half["checkpoints"]["last"]), checkpoint)
    resumed = train(
        tmp_path,
        *common,
        "trainer.max_epochs=4",
        f"ckpt_path={checkpoint}",
        name="resumed",
    )
    assert resumed["epochs"] == 4
    expected, got = weights(whole["checkpoints"]["last"]), weights(resumed["checkpoints"]["last"])
    assert all(torch.equal(expected[k], got[k]) for k in expected)


def test_resume_command_is_printed_and_parses(tmp_path):
    result = train(tmp_path, "model=rgnet")
    # From Python, the overrides compose() was given, as the command line would repeat them
    # (FAST's trainer.max_epochs=2 replaced by twice the epochs), and the checkpoint.
    assert result["resume"].startswith(
        "python -m runner task=train device=cpu model=rgnet trainer.max_epochs=4 ckpt_path="
    )
    assert "=" not in Path(result["checkpoints"]["last"]).name


def test_a_failed_save_leaves_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    from runner.checkpoint import format as checkpoint_format
    from runner.checkpoint.files import atomic_save

    target = tmp_path / "last.ckpt"
    atomic_save({"state_dict": {"w": torch.ones(3)}}, target)

    def broken_write(checkpoint, path):
        path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{ half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_format, "write", broken_write)
    with pytest.raises(OSError, match="disk full"):
        atomic_save({"state_dict": {"w": torch.zeros(3)}}, target)
    assert torch.equal(safe_load(target)["state_dict"]["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temp file left behind
    assert oct(target.stat().st_mode & 0o777) == "0o644"


class _Payload:
    def __reduce__(self):
        return (Path.touch, (Path(_Payload.marker),))


def test_a_checkpoint_with_pickled_code_is_refused_and_nothing_runs(tmp_path):
    _Payload.marker = str(tmp_path / "pwned")
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"x": _Payload()}}, evil)
    with pytest.raises(
        ConfigError,
        match="holds pickled objects, not only tensors and plain data; nothing in it was executed",
    ):
        runner.load(evil)
    assert not (tmp_path / "pwned").exists()


def test_truncated_and_mismatched_checkpoints_are_refused(tmp_path, mlp_run):
    result = mlp_run
    last = Path(result["checkpoints"]["last"])
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(last.read_bytes()[:5000])
    with pytest.raises(
        ConfigError, match=r"is not a complete checkpoint \(truncated or corrupt\?\)"
    ):
        runner.load(truncated)
    with pytest.raises(ConfigError) as info:
        train(tmp_path, "model=rgnet", f"ckpt_path={last}", name="wrong")
    text = str(info.value)
    assert (
        "ckpt_path: does not fit this config's model: missing 18 key(s) the model has: "
        "net.0.block 0.0.weight"
    ) in text
    assert (
        "ckpt_path: does not fit this config's model: 4 unexpected key(s): "
        "net.0.weight, net.0.bias, net.2.weight, net.2.bias"
    ) in text


def test_an_embedded_dotted_path_is_not_imported_unless_allowed(tmp_path, mlp_run):
    result = mlp_run
    checkpoint = safe_load(result["checkpoints"]["last"])
    checkpoint["hyper_parameters"]["config"]["model"]["net"][1] = {
        "type": "tests.user_layers.Scale",
        "factor": 1.0,
    }
    tampered = tmp_path / "tampered.ckpt"
    torch.save(checkpoint, tampered)
    with pytest.raises(ConfigError, match=r"'tests.user_layers.Scale' is not on the allow-list"):
        runner.load(tampered)
    assert runner.load(tampered, allow=("tests.",)).net[1].factor == 1.0
    checkpoint["hyper_parameters"]["config"]["optim"]["optimizer"]["_target_"] = "os.system"
    torch.save(checkpoint, tampered)
    with pytest.raises(
        ConfigError, match=r"optim.optimizer._target_: 'os.system' is not on the allow-list"
    ):
        runner.load(tampered)


def test_export_to_safetensors_loads_into_hand_written_pytorch_with_the_same_sharing(
    tmp_path, shared_run
):
    from safetensors.torch import load_model

    from tests.d2l import shared_net

    result = shared_run
    exported = run(
        runner.compose(["task=export", f"ckpt_path={result['checkpoints']['last']}"]),
        tmp_path / "export",
    )
    path = exported["file"]
    assert exported["shared"] == [("2.bias", "4.bias"), ("2.weight", "4.weight")]
    by_hand = shared_net()
    by_hand(torch.rand(1, 4))  # size the lazy layers
    load_model(by_hand, path)
    assert by_hand[2] is by_hand[4]
    trained = runner.load(result["checkpoints"]["last"])
    x = torch.rand(5, 4)
    assert torch.equal(by_hand(x), trained.net(x))
    again = runner.load(path)
    assert again.net[2] is again.net[4] and torch.equal(again.net(x), trained.net(x))


def test_bf16_on_the_cpu_verifies_within_tolerance(tmp_path):
    result = train(tmp_path, "model=mlp", "trainer.max_epochs=1", "device.precision=bf16-mixed")
    assert result["verification"]["ok"]
    assert result["verification"]["comparison"].startswith("allclose")


def test_a_first_layer_in_place_leaves_the_data_and_the_probe_alone(tmp_path):
    """It wrote into the validation and test splits' rows (each epoch's validation saw the
    data through the activation once more), and into the probe that went through the trained
    model, then the reloaded one: 'the reloaded checkpoint does not reproduce the trained
    model'. The same network out of place gives the same run."""
    results = {}
    for inplace in ("true", "false"):
        net = (
            f"model.net=[{{type:LeakyReLU,negative_slope:0.1,inplace:{inplace}}},"
            "{type:Linear,in_features:20,out_features:10}]"
        )
        results[inplace] = train(tmp_path, "model=mlp", net, "trainer.max_epochs=2", name=inplace)
    assert results["true"]["verification"]["ok"], results["true"]["verification"]
    assert results["true"]["metrics"] == pytest.approx(results["false"]["metrics"], rel=1e-6)


def test_training_mistakes_are_reported_together(compose, tmp_path):
    cfg = compose(
        "+trainer.max_epoch=3",
        "+trainer.accelerator=gpu",
        "+data.batch_sze=8",
        "device.precision=16-mixed",
    )
    with pytest.raises(ConfigError) as info:
        run(cfg, tmp_path)
    # One list in config.yaml's order of concern: the device first, then data and trainer.
    assert info.value.problems == [
        "device.precision: '16-mixed' needs a GPU, but the run is on the CPU; allowed there: 32, bf16-mixed",
        "data.batch_sze: RandomData takes no argument 'batch_sze'; allowed: batch_size, hidden, input_shape, "
        "num_samples, seed, test_fraction, val_fraction; did you mean 'batch_size'?",
        "trainer.accelerator: set by the device group, not by the trainer group",
        "trainer.max_epoch: Trainer takes no argument 'max_epoch'; allowed: accumulate_grad_batches, barebones, "
        "benchmark, check_val_every_n_epoch, detect_anomaly, deterministic, enable_autolog_hparams, fast_dev_run, "
        "gradient_clip_algorithm, gradient_clip_val, inference_mode, limit_predict_batches, … (18 more); "
        "did you mean 'max_epochs'?",
    ]
    with pytest.raises(ConfigError, match=r"device.precision: '16-mixed' needs a GPU"):
        run(compose("device.precision=16-mixed"), tmp_path)


def test_a_model_with_one_output_per_batch_cannot_be_trained(compose, tmp_path):
    with pytest.raises(
        ConfigError,
        match=r"model: for a batch of 2 its forward returns shape \[\], not one output per sample",
    ):
        run(compose("model=fixed_hidden"), tmp_path)


def test_batches_follow_seed_and_epoch_and_ddp_ranks_get_disjoint_shards():
    from types import SimpleNamespace

    from runner.train.data import Batches, RandomData

    data = RandomData(
        input_shape=[3], num_samples=100, batch_size=10, val_fraction=0, test_fraction=0, seed=5
    )
    data.output_shape = (1,)
    data.setup()

    def order(rank=0, world=1, epoch=0, seed=5):
        data.seed = seed
        data.trainer = SimpleNamespace(
            strategy=SimpleNamespace(root_device=torch.device("cpu")),
            global_rank=rank,
            world_size=world,
            current_epoch=epoch,
        )
        return Batches(data, "train", shuffle=True)._indices(100).tolist()

    assert order() == order()  # same (seed, epoch): same order
    assert order(epoch=1) != order(epoch=0)
    assert order(seed=6) != order(seed=5)
    rank0, rank1 = order(rank=0, world=2), order(rank=1, world=2)
    assert len(rank0) == len(rank1) == 50 and not set(rank0) & set(rank1)
    assert len(Batches(data, "train", shuffle=True)) == 5


@pytest.mark.slow
def test_cli_train_and_ddp_cpu_leave_one_run_directory_each(cli_process, tmp_path):
    outputs = tmp_path / "outputs"
    for device in ("cpu", "ddp_cpu"):
        result = cli_process(
            "model=mlp",
            "data=digits",
            f"device={device}",
            "trainer.max_epochs=2",
            run_dir=outputs / device,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert "Traceback" not in result.stderr
        assert (
            "verify: reloaded last.ckpt from itself alone: outputs match (bitwise)" in result.stderr
        )
        assert "resume with: python -m runner model=mlp data=digits" in result.stderr
        record = json.loads((outputs / device / "result.json").read_text())
        assert record["verification"]["ok"]
    runs = sorted(p.name for p in outputs.iterdir() if not p.is_symlink())
    assert runs == ["cpu", "ddp_cpu"]  # no extra run dirs (DDP workers make none)
    assert (outputs / "latest").resolve() == (outputs / "ddp_cpu").resolve()
    assert (outputs / "ddp_cpu" / "logs" / "metrics.csv").read_text().count("\n") > 10
    ddp = json.loads((outputs / "ddp_cpu" / "result.json").read_text())
    assert (
        ddp["device"]["strategy"] == "ddp_spawn" and ddp["global_step"] == 40
    )  # half the batches per rank


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["32", "bf16-mixed"])
def test_training_on_the_gpu(tmp_path, precision):
    result = run(
        runner.compose(
            ["model=rgnet", "device=gpu", f"device.precision={precision}", "trainer.max_epochs=2"]
        ),
        tmp_path,
    )
    assert result["device"]["accelerator"] == "gpu"
    assert result["verification"]["ok"] and result["verification"]["device"] == "cuda:0"


def test_fast_mode_counts_optimizer_steps_and_matches_the_default_mode(tmp_path):
    default = train(tmp_path, "model=rgnet", name="default")
    fast = train(tmp_path, "model=rgnet", "trainer.steps_per_batch=3", name="fast")
    # 2 epochs × 7 minibatches either way: global_step counts optimizer steps, not chunks
    assert default["global_step"] == fast["global_step"] == 14
    a, b = weights(default["checkpoints"]["last"]), weights(fast["checkpoints"]["last"])
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)  # the same optimization
    assert fast["verification"]["ok"]


def test_fast_mode_logs_at_chunk_boundaries_and_steps_the_schedule(tmp_path):
    import csv

    result = train(
        tmp_path,
        "model=rgnet",
        "optim=adamw",
        "trainer.steps_per_batch=4",
        "trainer.log_every_n_steps=5",
        "trainer.max_epochs=3",
    )
    with (tmp_path / "run" / "logs" / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    logged_steps = [int(r["step"]) for r in rows if r.get("train/loss_step")]
    # 7 minibatches per epoch in chunks of 4 and 3: chunks end at optimizer steps 4, 7, 11,
    # 14, 18, 21; a write happens at the first chunk end ≥ 5 steps after the last one.
    assert logged_steps == [7, 14, 21]
    assert any(r.get("train/loss") for r in rows)  # the epoch means
    module = runner.load(result["checkpoints"]["last"])
    assert module.steps_per_batch == 4
    (schedule,) = safe_load(result["checkpoints"]["last"])["lr_schedulers"]
    assert schedule["last_epoch"] == 3  # cosine schedule stepped once per epoch


def test_fast_mode_refuses_gradient_accumulation(compose, tmp_path):
    with pytest.raises(
        ConfigError,
        match=r"trainer.accumulate_grad_batches: cannot be combined with trainer.steps_per_batch > 1",
    ):
        run(compose("trainer.steps_per_batch=4", "+trainer.accumulate_grad_batches=2"), tmp_path)


def test_last_checkpoint_is_the_final_state_even_when_the_best_is_earlier(tmp_path):
    # rgnet's validation loss is best after its first epoch here (at seed 0 PyTorch's default
    # init leaves a block dead): `last` must still move on to the final state.
    result = train(tmp_path, "model=rgnet", "trainer.max_epochs=6", "stats=off")
    assert result["epochs"] == 6 and result["global_step"] == 42
    best = result["checkpoints"]["best"]
    assert "epoch005" not in best and safe_load(best)["global_step"] < 42
    assert safe_load(result["checkpoints"]["last"])["global_step"] == 42
    assert result["verification"]["ok"] and result["verification"]["max_abs_diff"] == 0.0
