"""The logger group: none, csv, tensorboard, several at once; a missing extra says how to
install it, before anything is built."""

import csv
import importlib.util

import pytest

import runner
from runner import ConfigError
from runner.checkpoint.files import safe_load
from runner.run import run

HAS_TENSORBOARD = importlib.util.find_spec("tensorboard") is not None


def train(tmp_path, *overrides):
    return run(runner.compose(["device=cpu", "trainer.max_epochs=1", *overrides]), tmp_path)


@pytest.mark.parametrize("choice", ["logger=none", "logger=[]", "logger.csv=null"])
def test_no_logger_still_records_the_run(tmp_path, choice):
    result = train(tmp_path, choice)
    assert result["verification"]["ok"] and "test/loss" in result["metrics"]
    assert not (tmp_path / "logs").exists()
    assert (tmp_path / "param_stats.csv").is_file() and (tmp_path / "result.json").is_file()


def test_csv_is_the_default(tmp_path):
    train(tmp_path)
    assert (tmp_path / "logs" / "metrics.csv").is_file()
    assert (tmp_path / "logs" / "test" / "metrics.csv").is_file()


@pytest.mark.skipif(HAS_TENSORBOARD, reason="tensorboard is installed here")
def test_a_missing_extra_says_how_to_install_it(tmp_path):
    with pytest.raises(ConfigError) as info:
        train(tmp_path, "logger=[csv,tensorboard]")
    assert info.value.problems == [
        "logger.tensorboard: tensorboard is not installed; pip install 'runner[tensorboard]' "
        "(or make setup EXTRAS=tensorboard)"
    ]
    assert not (tmp_path / "checkpoints").exists()  # refused before anything was built


@pytest.mark.skipif(not HAS_TENSORBOARD, reason="tensorboard is not installed")
def test_several_loggers_at_once(tmp_path):
    train(tmp_path, "logger=[csv,tensorboard]")
    assert (tmp_path / "logs" / "metrics.csv").is_file()
    assert list((tmp_path / "logs").glob("events.out.tfevents.*"))


def test_logger_mistakes(tmp_path):
    with pytest.raises(ConfigError) as info:
        train(tmp_path, "+logger.cvs={}")
    assert info.value.problems == [
        "logger.cvs: unknown logger; allowed: csv, mlflow, tensorboard, wandb; did you mean 'csv'?"
    ]
    with pytest.raises(ConfigError) as info:
        train(tmp_path, "logger=none", "callbacks=lr_monitor")
    assert info.value.problems == [
        "callbacks.lr_monitor: LearningRateMonitor writes to a logger, and logger=none chooses "
        "none; choose one, e.g. logger=csv"
    ]


def test_every_logger_option_makes_its_lightning_loggers(tmp_path):
    """Every option of the logger group instantiates (the trackers' own runs start lazily, so
    nothing is written yet)."""
    from pytorch_lightning.loggers import Logger

    from runner.testing.combinations import options
    from runner.trackers.tracking import Trackers

    for option in options("logger"):
        if option == "tensorboard" and not HAS_TENSORBOARD:
            continue
        section = runner.compose([f"logger={option}"]).logger
        if option == "mlflow":
            section.mlflow.tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
        made = Trackers(section, tmp_path / option).loggers()
        if option == "none":
            assert made is False
        else:
            assert [type(m).__name__.lower() for m in made] == [f"{option}logger"], option
            assert all(isinstance(m, Logger) for m in made)


def test_a_double_validation_loop_validates_twice_an_epoch(tmp_path):
    """The template's double validation loop: val_check_interval=0.5 validates mid-epoch and
    at its end; both reach the logs and the best checkpoint watches both."""
    result = train(tmp_path, "data=digits", "+trainer.val_check_interval=0.5")
    with (tmp_path / "logs" / "metrics.csv").open() as f:
        validations = [row for row in csv.DictReader(f) if row.get("val/loss")]
    assert len(validations) == 2 and result["epochs"] == 1
    assert result["verification"]["ok"]
    # last.ckpt is the end of the epoch, after its second validation: it resumes at epoch 1.
    assert safe_load(tmp_path / "checkpoints" / "last.ckpt")["epoch"] == 0


def test_validating_every_other_epoch_still_saves_every_epoch(tmp_path):
    result = train(
        tmp_path, "trainer.max_epochs=3", "trainer.check_val_every_n_epoch=2", "logger=none"
    )
    assert result["epochs"] == 3 and result["verification"]["ok"]
