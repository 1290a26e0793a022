"""A checkpoint's embedded config gets the command line's checks (model, init, device, data,
optim, trainer) before anything is built, every problem naming the file; and what a file may
ask for is bounded: modules after every repeat, nesting depth."""

import copy
import time
from pathlib import Path

import pytest
import torch

import runner
from runner import ConfigError
from runner.checkpoint.files import atomic_save, safe_load
from runner.run import run


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("trained")
    cfg = runner.compose(
        ["model=mlp", "data.num_samples=64", "device=cpu", "trainer.max_epochs=1", "logger=none"]
    )
    path = Path(run(cfg, out / "run")["checkpoints"]["last"])
    return path, safe_load(path)


def craft(trained, tmp_path, mutate) -> Path:
    checkpoint = copy.deepcopy(trained[1])
    mutate(checkpoint["hyper_parameters"]["config"])
    path = tmp_path / "crafted.ckpt"
    atomic_save(checkpoint, path)
    return path


def _nest(config, depth=100):
    deep: list = []
    for _ in range(depth):
        deep = [deep]
    config["model"]["blocks"] = {"deep": deep}


CRAFTED = {
    "optim of the wrong type": (
        lambda c: c.__setitem__("optim", 5),
        "embedded optim: no optim option chosen; got 5",
    ),
    "trainer of the wrong type": (
        lambda c: c.__setitem__("trainer", "x"),
        "embedded trainer: no trainer option chosen; got 'x'",
    ),
    "data of the wrong type": (
        lambda c: c.__setitem__("data", [1]),
        "embedded data: no data option chosen; got [1]",
    ),
    "a data value out of range": (
        lambda c: c["data"].__setitem__("val_fraction", 5),
        "embedded data.val_fraction: out of range; got 5; allowed: a number in [0, 1)",
    ),
    "an optimizer argument of the wrong type": (
        lambda c: c["optim"]["optimizer"].__setitem__("lr", "fast"),
        "embedded optim.optimizer.lr: not a number; got 'fast'",
    ),
    "a model error": (
        lambda c: c["model"]["net"][2].__setitem__("in_features", 7),
        "embedded model.net[2].in_features: 7 does not match the 256 features",
    ),
    "a task its data does not have": (
        lambda c: c.__setitem__("data", {"_target_": "runner.train.data.Digits"}),
        "embedded task: 'regression', but its data (runner.train.data.Digits) is classification",
    ),
    "nesting past the depth limit": (_nest, "embedded config: unreadable (nested deeper than 64"),
    # a = ReLU × 10,000, b = a × 10,000: 10^8 modules from a 56 KB file
    "repeats nested past the module budget": (
        lambda c: c["model"].update(
            blocks={
                "a": [{"type": "ReLU", "repeat": 10_000}],
                "b": [{"block": "a", "repeat": 10_000}],
            },
            net=[{"block": "b"}],
        ),
        "embedded model: 100,010,002 modules once every repeat and block is copied; allowed: at "
        "most 20,000",
    ),
    # each `*` within any per-operation limit, their product a terabyte
    "a template past the evaluator's bounds": (
        lambda c: c["model"].update(
            blocks={"b": [{"type": "Linear", "out_features": "{'x'*1000*1000*1000*1000}"}]},
            net=[{"block": "b"}],
        ),
        "embedded model.blocks.b[0].out_features: \"{'x'*1000*1000*1000*1000}\": \"'x' * "
        '1000 * 1000" would have 1,000,000 characters or items; allowed: at most 10,000',
    ),
}


@pytest.mark.parametrize("case", CRAFTED)
def test_an_embedded_config_is_validated_and_its_errors_name_the_file(trained, tmp_path, case):
    mutate, message = CRAFTED[case]
    path = craft(trained, tmp_path, mutate)
    start = time.perf_counter()
    with pytest.raises(ConfigError) as refused:
        runner.load(path)
    assert time.perf_counter() - start < 10  # was 30-90 s (a loaded machine: slack)
    assert refused.value.problems[0].startswith(f"path: {str(path)!r}: {message}")


@pytest.mark.parametrize("task", ["eval", "inspect", "export"])
def test_every_task_reading_a_checkpoint_validates_its_config(trained, tmp_path, task):
    path = craft(trained, tmp_path, lambda c: c.__setitem__("optim", 5))
    cfg = runner.compose([f"task={task}", f"ckpt_path={path}", "device=cpu", "logger=none"])
    with pytest.raises(ConfigError) as refused:
        run(cfg, tmp_path / task)
    assert refused.value.problems == [
        f"ckpt_path: {str(path)!r}: embedded optim: no optim option chosen; got 5; allowed: an "
        "option from conf/optim/, e.g. optim=sgd"
    ]


def test_an_export_with_a_wrongly_shaped_tensor_is_refused(trained, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file

    cfg = runner.compose(["task=export", f"ckpt_path={trained[0]}", "device=cpu"])
    exported = run(cfg, tmp_path / "export")["file"]
    with safe_open(exported, framework="pt") as f:
        metadata, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    tensors["0.bias"] = torch.zeros(3, 3)
    save_file(tensors, tmp_path / "bad.safetensors", metadata=metadata)
    with pytest.raises(ConfigError) as refused:
        runner.load(tmp_path / "bad.safetensors")
    assert refused.value.problems == [
        f"path: {str(tmp_path / 'bad.safetensors')!r}: does not fit its own config: shape "
        "mismatch at 0.bias: [3, 3] in the file, [256] in the model"
    ]


def test_sections_a_file_is_not_rebuilt_with_are_dropped_unread(trained, tmp_path, monkeypatch):
    # The run's callbacks, loggers and statistics configured the run that wrote the file: a
    # reader ignores them (a checkpoint trained with callbacks loads), and what they name is
    # never imported, whatever it is.
    def set_run_sections(config):
        config["callbacks"] = {"evil": {"_target_": "os.system", "command": "touch /tmp/owned"}}
        config["logger"] = {"mlflow": {"_target_": "mlflow_nonexistent.Logger"}}
        config["stats"] = "anything"

    path = craft(trained, tmp_path, set_run_sections)
    called = []
    monkeypatch.setattr("os.system", lambda *a: called.append(a))
    module = runner.load(path)
    assert "callbacks" not in module.hparams["config"] and not called
    cfg = runner.compose(["task=eval", f"ckpt_path={path}", "device=cpu", "logger=none"])
    assert run(cfg, tmp_path / "eval")["metrics"]


@pytest.mark.slow
def test_a_checkpoint_trained_with_callbacks_loads_evaluates_and_exports(cli, tmp_path):
    trained = cli("model=mlp", "device=cpu", "trainer.max_epochs=1", "callbacks=[early_stopping]")
    assert trained.returncode == 0, trained.stderr
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert runner.load(last).net is not None
    for task in ("eval", "export"):
        done = cli(f"task={task}", f"ckpt_path={last}", "device=cpu", run_dir=tmp_path / task)
        assert done.returncode == 0, done.stderr


def test_an_export_of_another_dtype_or_unreadable_metadata_is_refused(trained, tmp_path):
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    cfg = runner.compose(["task=export", f"ckpt_path={trained[0]}", "device=cpu"])
    exported = run(cfg, tmp_path / "export")["file"]
    with safe_open(exported, framework="pt") as f:
        metadata, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    integers = {**tensors, "0.weight": tensors["0.weight"].long()}
    save_file(integers, tmp_path / "ints.safetensors", metadata=metadata)
    with pytest.raises(ConfigError, match=r"0\.weight holds I64 numbers"):
        runner.load(tmp_path / "ints.safetensors")
    deep = {**metadata, "config": "[" * 100_000 + "]" * 100_000}
    save_file(tensors, tmp_path / "deep.safetensors", metadata=deep)
    with pytest.raises(ConfigError, match="its metadata config is not valid JSON"):
        runner.load(tmp_path / "deep.safetensors")
    assert json.loads(metadata["config"])  # the real one reads
