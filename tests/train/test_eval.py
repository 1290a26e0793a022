"""task=eval, the trainer group in every stage, and Apple GPUs (mps) in the device checks."""

import json

import pytest
import torch

import runner
from runner import ConfigError
from runner.run import run


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("digits")
    result = run(
        runner.compose(["model=mlp", "data=digits", "device=cpu", "trainer.max_epochs=2"]), run_dir
    )
    return result


def evaluate(tmp_path, ckpt, *overrides):
    cfg = runner.compose(["task=eval", f"ckpt_path={ckpt}", "device=cpu", *overrides])
    return run(cfg, tmp_path)


def test_eval_of_a_checkpoint_on_its_own_data_equals_the_training_runs_test(tmp_path, digits_run):
    result = evaluate(tmp_path, digits_run["checkpoints"]["last"])
    assert result["split"] == "test"
    for name in ("test/loss", "test/acc"):
        assert result["metrics"][name] == pytest.approx(digits_run["metrics"][name], rel=1e-6)
    assert json.loads((tmp_path / "result.json").read_text())["metrics"] == result["metrics"]
    assert (tmp_path / "logs" / "eval-test" / "metrics.csv").is_file()


def test_eval_other_splits_and_the_trainer_groups_limits(tmp_path, digits_run):
    ckpt = digits_run["checkpoints"]["last"]
    val = evaluate(tmp_path / "v", ckpt, "eval.split=val")
    assert set(val["metrics"]) == {"val/loss", "val/acc"}
    assert val["metrics"]["val/loss"] == pytest.approx(digits_run["metrics"]["val/loss"], rel=1e-6)
    train = evaluate(tmp_path / "t", ckpt, "eval.split=train")
    assert set(train["metrics"]) == {"train/loss", "train/acc"}
    # One batch of 32 instead of the whole test split: the trainer group reaches evaluation.
    one = evaluate(tmp_path / "one", ckpt, "+trainer.limit_test_batches=1")
    assert one["metrics"]["test/acc"] != digits_run["metrics"]["test/acc"]
    assert one["metrics"]["test/acc"] * 32 == pytest.approx(round(one["metrics"]["test/acc"] * 32))


def test_the_training_runs_test_stage_takes_the_trainer_group(tmp_path):
    full = run(
        runner.compose(["model=mlp", "data=digits", "device=cpu", "trainer.max_epochs=1"]),
        tmp_path / "a",
    )
    limited = run(
        runner.compose(
            [
                "model=mlp",
                "data=digits",
                "device=cpu",
                "trainer.max_epochs=1",
                "+trainer.limit_test_batches=1",
            ]
        ),
        tmp_path / "b",
    )
    assert limited["metrics"]["test/acc"] != full["metrics"]["test/acc"]
    assert limited["metrics"]["test/acc"] * 32 == pytest.approx(
        round(limited["metrics"]["test/acc"] * 32)
    )


def test_fast_dev_run_trains_one_batch_and_tests_one_batch(tmp_path):
    result = run(
        runner.compose(["model=mlp", "data=digits", "device=cpu", "+trainer.fast_dev_run=true"]),
        tmp_path,
    )
    assert result["global_step"] == 1 and result["verification"]["ok"]
    assert result["metrics"]["test/acc"] * 32 == pytest.approx(
        round(result["metrics"]["test/acc"] * 32)
    )


def test_eval_on_other_data_is_checked_against_the_checkpoint(tmp_path, digits_run):
    ckpt = digits_run["checkpoints"]["last"]
    with pytest.raises(ConfigError) as info:
        evaluate(tmp_path, ckpt, "data=synthetic")
    assert info.value.problems == [
        "data: the data given here is regression data, but the checkpoint's model was trained "
        "for classification (data=digits); choose data of the same kind"
    ]
    other = evaluate(tmp_path / "b", ckpt, "data=digits", "data.seed=3")  # another split of digits
    assert other["metrics"]["test/acc"] != digits_run["metrics"]["test/acc"]


def test_a_split_with_no_samples_is_a_config_error_naming_it(tmp_path, digits_run):
    ckpt = digits_run["checkpoints"]["last"]
    with pytest.raises(ConfigError) as info:
        evaluate(tmp_path, ckpt, "eval.split=val", "data=digits", "data.val_fraction=0")
    assert info.value.problems == [
        "eval.split: the val split of this data has no samples to evaluate (with "
        "data.val_fraction=0 it has none); allowed: another split, e.g. eval.split=test"
    ]
    assert json.loads((tmp_path / "result.json").read_text())["status"] == "failed"


def test_eval_mistakes(tmp_path):
    with pytest.raises(ConfigError) as info:
        run(runner.compose(["task=eval", "eval.split=tset", "eval.data=gven"]), tmp_path)
    assert info.value.problems == [
        "ckpt_path: task=eval needs the checkpoint to evaluate: ckpt_path=PATH",
        "eval.data: unknown choice 'gven'; allowed: auto, checkpoint, given; did you mean 'given'?",
        "eval.split: unknown split 'tset'; allowed: test, train, val; did you mean 'test'?",
    ]


def test_eval_data_given_explicitly(tmp_path, digits_run):
    ckpt = digits_run["checkpoints"]["last"]
    own = evaluate(tmp_path / "a", ckpt, "data=digits", "data.seed=3", "eval.data=checkpoint")
    assert own["metrics"]["test/acc"] == pytest.approx(digits_run["metrics"]["test/acc"])
    with pytest.raises(ConfigError, match="is regression data"):
        evaluate(tmp_path / "b", ckpt, "eval.data=given")  # the default data: random


def test_data_random_on_the_command_line_counts_as_given(cli, digits_run):
    done = cli("task=eval", f"ckpt_path={digits_run['checkpoints']['last']}", "data=random")
    assert done.returncode == 2 and "the data given here is regression data" in done.stderr


def test_eval_from_the_command_line_and_in_a_sweep(cli, tmp_path, digits_run):
    ckpt = digits_run["checkpoints"]["last"]
    done = cli("task=eval", f"ckpt_path={ckpt}", "device=cpu")
    assert done.returncode == 0, done.stderr
    assert "on the test split of the data it was trained on" in done.stderr
    assert f"test/acc {digits_run['metrics']['test/acc']:.4g}" in done.stderr
    sweep = tmp_path / "sweep"
    done = cli(
        "-m",
        "task=eval",
        f"ckpt_path={ckpt}",
        "eval.split=test,val",
        "device=cpu",
        f"hydra.sweep.dir={sweep}",
    )
    assert done.returncode == 0, done.stderr
    summary = (sweep / "summary.md").read_text()
    assert "eval.split=test" in summary and "eval.split=val" in summary


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="this machine has an Apple GPU")
def test_mps_is_a_device_choice_with_a_clear_message_when_absent(compose, tmp_path):
    with pytest.raises(ConfigError) as info:
        run(runner.compose(["device=mps"]), tmp_path)
    (problem,) = info.value.problems
    assert problem.startswith("device.accelerator: 'mps', but no Apple GPU is usable")


def test_mps_placement_when_present(monkeypatch):
    from runner.config.device import parse_device, resolve_device
    from runner.errors import Problems
    from runner.train.trainer import trainer_placement

    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for accelerator in ("mps", "auto"):
        cfg = dict(accelerator=accelerator, index=None, devices=1, strategy="auto", precision="32")
        spec = parse_device(cfg, Problems())
        placement = resolve_device(spec)
        assert placement.device.type == "mps"
        assert trainer_placement(spec, placement)["accelerator"] == "mps"


def test_the_linear_regression_run_shows_what_it_learned(tmp_path, caplog):
    with caplog.at_level("INFO", logger="runner"):
        result = run(runner.compose(["model=linear", "data=synthetic", "device=cpu"]), tmp_path)
    learned = result["learned"]
    assert learned["w_true"] == pytest.approx([2.0, -3.4]) and learned["b_true"] == 4.2
    assert learned["w"] == pytest.approx([2.0, -3.4], abs=0.01)
    assert learned["b"] == pytest.approx(4.2, abs=0.01)
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("result:"))
    assert line.endswith("(true [2, -3.4]), b 4.2001 (true 4.2)")


def test_only_a_single_linear_layer_is_compared_with_the_true_weights(tmp_path):
    model = "model.net=[{type: Linear, in_features: 2, out_features: 4}, ReLU, {type: Linear, in_features: 4, out_features: 1}]"
    result = run(
        runner.compose(
            ["model=linear", model, "data=synthetic", "device=cpu", "trainer.max_epochs=1"]
        ),
        tmp_path,
    )
    assert "learned" not in result


def test_inspect_a_checkpoint_shows_its_trained_values(cli, tmp_path):
    trained = run(
        runner.compose(["model=linear", "data=synthetic", "device=cpu"]), tmp_path / "train"
    )
    done = cli("task=inspect", f"ckpt_path={trained['checkpoints']['last']}")
    assert done.returncode == 0, done.stderr
    w = trained["learned"]["w"]
    assert f"[{w[0]:.6g}, {w[1]:.6g}]" in done.stdout  # the values, as the book prints them
    assert "Total params: 3" in done.stdout and "Values in" in done.stdout
    done = cli("task=inspect", f"ckpt_path={tmp_path / 'nope.ckpt'}")
    assert done.returncode == 2 and "ckpt_path: no checkpoint file at" in done.stderr
