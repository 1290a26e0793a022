"""Any LightningDataModule by its dotted path (tests/user_data.py: plain Lightning, its own
DataLoaders): training, eval, a sweep and a reload, its task and shapes read from a batch and
checked against the model, and a checkpoint naming it refused unless it is allowed."""

import json

import pytest

import runner
from runner import ConfigError
from runner.run import run

BLOBS = (
    "data=module",
    "data._target_=tests.user_data.Blobs",
    "model.input_shape=[8]",
    "model.num_outputs=2",
    "device=cpu",
    "trainer.max_epochs=2",
    "logger=none",
    "stats=off",
)


@pytest.fixture(scope="module")
def blobs_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("blobs")
    return run(runner.compose(list(BLOBS)), run_dir)


def test_a_lightning_data_module_trains_as_classification_read_from_its_batches(blobs_run):
    assert blobs_run["status"] == "ok"
    assert blobs_run["verification"]["ok"]
    assert blobs_run["metrics"]["test/acc"] > 0.9  # two blobs 2σ apart per feature
    module = runner.load(blobs_run["checkpoints"]["last"], allow=("tests.user_data",))
    assert module.hparams["task"] == "classification"
    assert module.preprocessing is None  # its own loaders preprocess; nothing to carry


def test_eval_of_its_checkpoint_needs_the_same_permission_and_equals_the_test(blobs_run, tmp_path):
    ckpt = blobs_run["checkpoints"]["last"]
    with pytest.raises(ConfigError) as refused:
        run(runner.compose(["task=eval", f"ckpt_path={ckpt}", "device=cpu"]), tmp_path / "a")
    assert "data._target_: 'tests.user_data.Blobs' is not on the allow-list" in str(refused.value)
    # What it says to do is what works below: the module in imports, not allow= (Python's).
    assert "allow its module: imports=[tests.user_data] on the command line" in str(refused.value)
    with pytest.raises(ConfigError, match="is not on the allow-list"):
        runner.load(ckpt)  # as a malicious file naming any module is refused
    evaluated = run(
        runner.compose(
            ["task=eval", f"ckpt_path={ckpt}", "device=cpu", "imports=[tests.user_data]"]
        ),
        tmp_path / "b",
    )
    for name in ("test/loss", "test/acc"):
        assert evaluated["metrics"][name] == pytest.approx(blobs_run["metrics"][name], rel=1e-6)
    val = run(
        runner.compose(
            [
                "task=eval",
                f"ckpt_path={ckpt}",
                "device=cpu",
                "imports=[tests.user_data]",
                "eval.split=val",
            ]
        ),
        tmp_path / "c",
    )
    assert val["metrics"]["val/acc"] == pytest.approx(blobs_run["metrics"]["val/acc"], rel=1e-6)


def test_a_declared_regression_task_and_its_target_shape(tmp_path):
    levels = [o.replace("Blobs", "Levels") for o in BLOBS]
    with pytest.raises(ConfigError) as refused:
        run(runner.compose(levels), tmp_path / "a")
    assert refused.value.problems == [
        "model: outputs [2] per sample, but the data (Levels) has targets of shape [1], which "
        "the loss would broadcast against them; allowed: outputs of shape [1] "
        "(model.num_outputs=1)"
    ]
    result = run(runner.compose([*levels, "model.num_outputs=1", "optim=adam"]), tmp_path / "b")
    assert "test/acc" not in result["metrics"] and result["metrics"]["test/loss"] >= 0


MISMATCHES = {
    "another input shape": (
        ["model.input_shape=[5]"],
        "data: the data (Blobs) has samples of shape [8], but model.input_shape is [5]",
    ),
    "fewer outputs than classes": (
        ["model.num_outputs=1"],
        "model: outputs [1] per sample, but the data (Blobs) has labels 0 to 1",
    ),
    "fast mode": (
        ["trainer.steps_per_batch=4"],
        "trainer.steps_per_batch: 4, but fast mode batches in-memory data on the device, and "
        "Blobs brings its own dataloaders; allowed: 1",
    ),
    "not a data module": (
        ["data._target_=tests.user_layers.Scale"],
        "data._target_: 'tests.user_layers.Scale' is not a data module; allowed: the runner's",
    ),
}


@pytest.mark.parametrize("case", MISMATCHES)
def test_a_module_that_does_not_fit_is_a_config_error_with_exit_2(cli, tmp_path, case):
    overrides, fragment = MISMATCHES[case]
    done = cli(*BLOBS, *overrides, env={"PYTHONPATH": str(runner.__path__[0] + "/..")})
    assert done.returncode == 2, done.stderr
    assert fragment in done.stderr and "Traceback" not in done.stderr
    record = json.loads((tmp_path / "run" / "result.json").read_text())
    assert record["status"] == "failed" and fragment in record["error"]


@pytest.mark.slow
def test_a_sweep_over_models_with_a_lightning_data_module(cli, tmp_path):
    done = cli(
        "-m",
        *BLOBS,
        "model.num_outputs=2,3",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    )
    assert done.returncode == 0, done.stderr
    results = sorted((tmp_path / "sweep").glob("*/result.json"))
    assert len(results) == 2
    assert all(json.loads(r.read_text())["status"] == "ok" for r in results)


def test_the_lightning_base_class_names_are_true():
    import pytorch_lightning as pl

    from runner.config.data_modules import LIGHTNING_DATA

    base = pl.LightningDataModule
    assert f"{base.__module__}.{base.__qualname__}" in LIGHTNING_DATA
