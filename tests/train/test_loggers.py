"""The logger group: none, csv, tensorboard, several at once; a missing extra says how to
install it, before anything is built."""

import importlib.util

import pytest

import runner
from runner import ConfigError
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
        "logger.cvs: unknown logger; allowed: csv, tensorboard; did you mean 'csv'?"
    ]
    with pytest.raises(ConfigError) as info:
        train(tmp_path, "logger=none", "callbacks=lr_monitor")
    assert info.value.problems == [
        "callbacks.lr_monitor: LearningRateMonitor writes to a logger, and logger=none chooses "
        "none; choose one, e.g. logger=csv"
    ]
