"""The summary of a comparison, from job directories laid out as a sweep leaves them: the
objective's direction (given or inferred), seeds pooled per configuration with their spread,
what the seeds resolve, and `runner.sweep` / `runner.compare` on the command line."""

import json
import math
import re
import statistics
import subprocess
import sys

import pytest
import yaml
from scipy import stats

from runner.config.sections import SweepSpec, infer_direction
from runner.sweep.compare import check_comparable, read_runs
from runner.sweep.output import write_summary
from runner.sweep.summary import Objective
from tests.conftest import ROOT


def job(sweep_dir, number, overrides, metrics, data=None, task="train"):
    """A finished job's directory: Hydra's record of its overrides and config, its result."""
    directory = sweep_dir / str(number)
    (directory / ".hydra").mkdir(parents=True)
    (directory / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(list(overrides)))
    config = {"data": data or {"_target_": "runner.train.data.Digits", "seed": 0}}
    (directory / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    result = {"status": "ok", "task": task, "job": number, "overrides": list(overrides)}
    (directory / "result.json").write_text(json.dumps({**result, "metrics": metrics}))
    return directory


def grid(sweep_dir, values):
    """One job per (configuration, seed): values[config] is the val/acc of each seed."""
    number = 0
    for config, accs in values.items():
        for seed, acc in enumerate(accs):
            job(
                sweep_dir,
                number,
                [f"init={config}", f"seed={seed}"],
                {"val/acc": acc, "val/loss": 1 - acc},
            )
            number += 1


def cli(module, *args, cwd):
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )


@pytest.mark.parametrize(
    ("metric", "direction"),
    [
        ("val/acc", "max"),
        ("test/accuracy", "max"),
        ("val/f1", "max"),
        ("val/loss", "min"),
        ("train/mse", "min"),
        ("val/error_rate", "min"),
        ("val/thing", None),
    ],
)
def test_the_direction_is_inferred_from_the_metrics_name(metric, direction):
    assert infer_direction(metric) == direction


@pytest.mark.parametrize(
    ("objective", "direction", "best"),
    [
        ("val/acc", None, "c"),
        ("val/loss", None, "c"),
        ("val/acc", "min", "a"),
        ("val/loss", "max", "a"),
    ],
)
def test_ranking_and_best_follow_the_direction(tmp_path, objective, direction, best):
    grid(tmp_path, {"a": [0.70], "b": [0.80], "c": [0.97]})
    spec = SweepSpec(objective=objective, direction=direction)
    summary = write_summary(tmp_path, Objective.of(spec), plot=False)
    assert summary.configs[0].label == f"init={best}"
    assert summary.best is not None and summary.best.overrides[0] == f"init={best}"
    way = "higher" if spec.goal == "max" else "lower"
    why = "as sweep.direction says" if direction else "inferred from its name"
    assert (
        f"Ranked by {objective}, {way} is better ({why})." in (tmp_path / "summary.md").read_text()
    )


def test_seed_spreads_equal_a_direct_computation_from_result_json(tmp_path):
    values = {"a": [0.91, 0.93, 0.92], "b": [0.80, 0.86, 0.83], "c": [0.95, 0.96, 0.97]}
    grid(tmp_path, values)
    write_summary(tmp_path, Objective("val/acc", "max", False), plot=False)
    table = json.loads((tmp_path / "summary.json").read_text())
    assert [c["label"] for c in table["configurations"]] == ["init=c", "init=a", "init=b"]
    for config in table["configurations"]:
        # Read back from the jobs' own result.json, not from the values above.
        accs = [
            json.loads((tmp_path / str(n) / "result.json").read_text())["metrics"]["val/acc"]
            for n in config["jobs"]
        ]
        spread = config["metrics"]["val/acc"]
        half = stats.t.ppf(0.975, len(accs) - 1) * statistics.stdev(accs) / math.sqrt(len(accs))
        assert spread["n"] == 3 and config["seeds"] == ["0", "1", "2"]
        assert spread["mean"] == pytest.approx(statistics.fmean(accs))
        assert spread["std"] == pytest.approx(statistics.stdev(accs))
        assert (spread["min"], spread["max"]) == (min(accs), max(accs))
        assert spread["ci95"] == pytest.approx(
            [statistics.fmean(accs) - half, statistics.fmean(accs) + half]
        )


def test_overlapping_intervals_are_not_resolved_and_say_how_many_seeds_would(tmp_path):
    grid(tmp_path, {"a": [0.90, 0.95, 0.92], "b": [0.91, 0.96, 0.93], "c": [0.5, 0.52, 0.51]})
    summary = write_summary(tmp_path, Objective("val/acc", "max", False), plot=False)
    markdown = (tmp_path / "summary.md").read_text()
    assert "**Not resolved by these seeds:**" in markdown
    assert "`init=b` and `init=a` overlap (3 and 3 seeds)" in markdown
    assert "roughly " in summary.resolution and " seeds each would be needed" in summary.resolution


def test_separate_intervals_are_resolved(tmp_path):
    grid(tmp_path, {"a": [0.70, 0.71, 0.72], "b": [0.90, 0.91, 0.92]})
    write_summary(tmp_path, Objective("val/acc", "max", False), plot=False)
    markdown = (tmp_path / "summary.md").read_text()
    assert "Not resolved" not in markdown
    assert "is resolved from the next" in markdown


def test_one_seed_says_the_difference_cannot_be_told_from_noise(tmp_path):
    grid(tmp_path, {"a": [0.70], "b": [0.90]})
    write_summary(tmp_path, Objective("val/acc", "max", False), plot=False)
    assert "no spread, so nothing tells" in (tmp_path / "summary.md").read_text()


def test_runner_sweep_ranks_by_accuracy_highest_first(tmp_path):
    grid(tmp_path / "s", {"low": [0.7732], "high": [0.978], "mid": [0.9]})
    done = cli("runner.sweep", tmp_path / "s", "--objective", "val/acc", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "best: init=high" in done.stderr
    assert (
        "Best by val/acc: job 1 (init=high), 0.978." in (tmp_path / "s" / "summary.md").read_text()
    )
    assert (tmp_path / "s" / "report.html").is_file() and (tmp_path / "s" / "summary.png").is_file()


def test_an_objective_no_job_logged_is_an_error_naming_the_logged_metrics(tmp_path):
    grid(tmp_path / "s", {"a": [0.9]})
    done = cli("runner.sweep", tmp_path / "s", "--objective", "val/acc_top5", cwd=tmp_path)
    assert done.returncode == 2
    assert "sweep.objective: no job logged 'val/acc_top5'; the jobs logged" in done.stderr
    assert "val/acc" in done.stderr and "Traceback" not in done.stderr
    unknown = cli("runner.sweep", tmp_path / "s", "--objective", "val/thing", cwd=tmp_path)
    assert unknown.returncode == 2 and "--direction max or --direction min" in unknown.stderr


def test_a_folder_of_single_runs_is_refused_by_runner_sweep_pointing_to_compare(tmp_path):
    job(tmp_path / "runs", "one", ["seed=1"], {"val/loss": 0.5})
    done = cli("runner.sweep", tmp_path / "runs", cwd=tmp_path)
    assert done.returncode == 2 and "python -m runner.compare" in done.stderr
    assert not (tmp_path / "runs" / "summary.md").exists()


def test_runner_compare_ranks_two_single_runs(tmp_path):
    first = job(tmp_path, "run-a", ["model=mlp", "optim.optimizer.lr=0.1"], {"val/loss": 0.4})
    second = job(tmp_path, "run-b", ["model=mlp", "optim.optimizer.lr=0.01"], {"val/loss": 0.2})
    done = cli("runner.compare", first, second, "--out", tmp_path / "cmp", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    table = json.loads((tmp_path / "cmp" / "summary.json").read_text())
    assert [c["label"] for c in table["configurations"]] == [
        "optim.optimizer.lr=0.01",
        "optim.optimizer.lr=0.1",
    ]
    assert (tmp_path / "cmp" / "report.html").is_file()


def test_runner_compare_refuses_runs_on_different_data_or_without_the_objective(tmp_path):
    first = job(tmp_path, "a", ["data=digits"], {"val/loss": 0.4})
    other = {"_target_": "runner.train.data.RandomData", "seed": 0}
    second = job(tmp_path, "b", ["data=random"], {"val/loss": 0.2}, data=other)
    done = cli("runner.compare", first, second, "--out", tmp_path / "cmp", cwd=tmp_path)
    assert done.returncode == 2
    assert "trained on other data than" in done.stderr and "data._target_" in done.stderr
    records = read_runs([first, job(tmp_path, "c", ["seed=3"], {"val/acc": 0.9})])
    with pytest.raises(Exception, match="logged no 'val/loss'"):
        check_comparable(records, "val/loss")


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["sweep.objective=val/acc"], "maximize"),
        ([], "minimize"),
        (["sweep.objective=val/acc", "sweep.direction=min"], "minimize"),
        (["sweep.objective=val/loss", "sweep.direction=max"], "maximize"),
    ],
)
def test_optunas_direction_follows_the_objective(overrides, expected):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from runner.config import config_dir, schema

    schema.register()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(
            config_name="config",
            overrides=["hparams_search=optuna", *overrides],
            return_hydra_config=True,
        )
    assert OmegaConf.select(cfg, "hydra.sweeper.direction") == expected


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["sweep.direction=up"], "sweep.direction: got 'up'; allowed: max, min, or null"),
        (["sweep.objective=val/thing"], "sweep.direction: cannot tell from the name 'val/thing'"),
    ],
)
def test_a_direction_that_is_not_max_or_min_or_inferable_is_refused(compose, overrides, message):
    from runner.config.spec import parse_run
    from runner.errors import ConfigError

    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_run(compose("task=inspect", *overrides))
    assert parse_run(compose("task=inspect", "sweep.objective=val/thing", "sweep.direction=max"))


def test_failed_jobs_metrics_neither_rank_nor_make_the_best(tmp_path):
    """A job that failed after logging metrics (a verification that failed, a NaN with
    stats.on_nan=warn) is no configuration's best: its value is in no mean. All of one
    configuration's jobs failed so: summary.md was not written (KeyError 'val/loss')."""
    for number, seed in enumerate((0, 1)):
        directory = job(tmp_path, number, ["model=mlp", f"seed={seed}"], {"val/loss": 0.5})
        result = json.loads((directory / "result.json").read_text())
        failed = {"status": "failed", "error": "the reloaded checkpoint does not reproduce"}
        (directory / "result.json").write_text(json.dumps({**result, **failed}))
    summary = write_summary(tmp_path, Objective("val/loss", "min", False), plot=False)
    assert summary.best is None
    assert "2 job(s): 2 failed." in (tmp_path / "summary.md").read_text()
    job(tmp_path, 2, ["model=mlp", "seed=2"], {"val/loss": 0.9})  # one ended ok: it is the best
    summary = write_summary(tmp_path, Objective("val/loss", "min", False), plot=False)
    assert summary.best is not None and summary.best.number == 2
