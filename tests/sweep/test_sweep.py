"""Sweeps through the CLI: the summary, failed jobs that do not end the sweep, resume, Hydra's
launchers (joblib, submitit) and Optuna search, and DDP inside a multirun."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

FAST = ("device=cpu", "trainer.max_epochs=2")


@pytest.fixture
def sweep(tmp_path):
    """Run `python -m runner -m ARGS` into tmp_path/sweep; return (process, sweep dir)."""

    def _sweep(*args: str, directory: str = "sweep", env: dict | None = None):
        sweep_dir = tmp_path / directory
        done = subprocess.run(
            [sys.executable, "-m", "runner", "-m", *args, f"hydra.sweep.dir={sweep_dir}"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
            timeout=600,
        )
        return done, sweep_dir

    return _sweep


def rows(sweep_dir: Path) -> list[dict[str, str]]:
    with (sweep_dir / "summary.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def test_a_model_by_init_sweep_ends_with_a_summary_of_every_job(sweep):
    done, sweep_dir = sweep("model=mlp,rgnet", "init=xavier,normal,kaiming", *FAST)
    assert done.returncode == 0, done.stderr
    table = rows(sweep_dir)
    assert [r["job"] for r in table] == ["0", "1", "2", "3", "4", "5"]
    assert {r["status"] for r in table} == {"ok"}
    assert table[4]["overrides"] == "model=rgnet init=normal device=cpu trainer.max_epochs=2"
    assert {r["parameters"] for r in table} == {"7946", "309"}
    assert all(float(r["val/loss"]) > 0 and float(r["test/loss"]) > 0 for r in table)
    assert all(Path(r["dir"]).is_dir() for r in table)
    markdown = (sweep_dir / "summary.md").read_text()
    assert "6 job(s): 6 ok." in markdown and "Best by val/loss: job" in markdown
    assert "| 5 | ok | `model=rgnet init=kaiming` |" in markdown
    assert (sweep_dir / "summary.png").stat().st_size > 10_000
    report = (sweep_dir / "report.html").read_text()
    assert all(f'href="{n}/report.html"' in report for n in range(6))  # each job's own page
    assert all((sweep_dir / str(n) / "plots" / "metrics.png").is_file() for n in range(6))
    assert "sweep: 6 job(s) in" in done.stderr
    record = json.loads((sweep_dir / "3" / "result.json").read_text())
    assert (
        record["job"] == 3
        and record["choices"]["model"] == "rgnet"
        and record["choices"]["init"] == "xavier"
    )


def test_failed_jobs_are_recorded_and_the_others_run(sweep):
    done, sweep_dir = sweep("model=mlp", "optim.optimizer.lr=1e30,0.1,-1", *FAST)
    assert done.returncode == 1
    assert "sweep: 2 of 3 jobs failed: 0, 2" in done.stderr
    assert "Traceback" not in done.stderr
    table = rows(sweep_dir)
    assert [r["status"] for r in table] == ["failed", "ok", "failed"]
    assert "the learning rate (lr=1e+30) is likely too high" in table[0]["error"]
    assert table[2]["error"] == "optim.optimizer.lr: out of range; got -1; allowed: a number ≥ 0"
    assert float(table[1]["val/loss"]) < 1
    assert "## Failed jobs" in (sweep_dir / "summary.md").read_text()
    assert "sweep.resume=true" in done.stderr  # how to rerun them


def test_resume_skips_finished_jobs_and_finishes_an_interrupted_one(sweep, tmp_path):
    marker = tmp_path / "signalled"  # the signal fires in the first invocation only
    signal_at = f"{{type: tests.user_layers.SignalAt, at: 20, once: {marker}}}"
    net = f"model.net=[{{block: block2}}, {signal_at}, {{type: Linear, in_features: 4, out_features: 1}}]"
    args = ("model=rgnet", net, "seed=0,1,2", *FAST)

    first, sweep_dir = sweep(*args)
    assert first.returncode == 143, first.stderr  # SIGTERM in job 1 stops the in-process sweep
    assert [r["status"] for r in rows(sweep_dir)] == ["ok", "interrupted"]
    assert "sweep: finish it with: python -m runner -m" in first.stderr
    done_before = (sweep_dir / "0" / "checkpoints" / "last.ckpt").stat().st_mtime_ns
    records_before = {n: (sweep_dir / n / ".hydra" / "overrides.yaml").read_text() for n in "01"}

    again, _ = sweep(*args, "sweep.resume=true")
    assert again.returncode == 0, again.stderr
    assert [r["status"] for r in rows(sweep_dir)] == ["skipped", "ok", "ok"]
    assert (sweep_dir / "0" / "checkpoints" / "last.ckpt").stat().st_mtime_ns == done_before
    assert "sweep: job 1 resumes from" in again.stderr
    assert (sweep_dir / "1" / "attempts" / "1" / "result.json").is_file()  # kept, not lost
    resumed = json.loads((sweep_dir / "1" / "result.json").read_text())
    assert resumed["global_step"] == 14 and resumed["attempt"] == 2
    # Hydra rewrote each job's .hydra/; the skipped job keeps the one its files came from, the
    # resumed job's first attempt keeps its own with the rest of that attempt.
    assert (sweep_dir / "0" / ".hydra" / "overrides.yaml").read_text() == records_before["0"]
    first_attempt = sweep_dir / "1" / "attempts" / "1" / ".hydra" / "overrides.yaml"
    assert first_attempt.read_text() == records_before["1"]
    assert "sweep.resume=" in (sweep_dir / "1" / ".hydra" / "overrides.yaml").read_text()
    assert not list(sweep_dir.glob("*/.hydra-before-resume"))


def test_resume_refuses_a_directory_of_another_sweep(sweep):
    first, sweep_dir = sweep("model=mlp", "seed=0,1", *FAST)
    assert first.returncode == 0
    (sweep_dir / "1" / "result.json").unlink()  # job 1 as a kill leaves it: no record
    hydra_before = (sweep_dir / "1" / ".hydra" / "overrides.yaml").read_text()
    other, _ = sweep("model=mlp", "seed=5,6", *FAST, "sweep.resume=true")
    assert other.returncode == 2 and "Traceback" not in other.stderr
    assert (
        "sweep.resume: " in other.stderr and "holds the sweep of model=mlp seed=0,1" in other.stderr
    )
    assert json.loads((sweep_dir / "0" / "result.json").read_text())["status"] == "ok"  # intact
    assert (sweep_dir / "1" / ".hydra" / "overrides.yaml").read_text() == hydra_before
    assert not (sweep_dir / "1" / "result.json").exists()  # nothing continued the killed job


def test_joblib_runs_jobs_in_two_processes(sweep):
    done, sweep_dir = sweep(
        "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "model=mlp", "seed=0,1,2", *FAST
    )
    assert done.returncode == 0, done.stderr
    assert [r["status"] for r in rows(sweep_dir)] == ["ok", "ok", "ok"]


def test_submitit_local_runs_the_sweep_end_to_end(sweep):
    done, sweep_dir = sweep(
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=5",
        "model=mlp",
        "seed=0,1",
        *FAST,
    )
    assert done.returncode == 0, done.stderr
    assert [r["status"] for r in rows(sweep_dir)] == ["ok", "ok"]


def test_an_optuna_search_maximizes_accuracy_and_the_summary_agrees(sweep):
    done, sweep_dir = sweep(
        "hparams_search=optuna",
        "model=mlp",
        "data=digits",
        "hydra.sweeper.n_trials=3",
        "sweep.objective=val/acc",
        *FAST,
    )
    assert done.returncode == 0, done.stderr
    best = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    table = rows(sweep_dir)
    assert len(table) == 3
    winner = max(table, key=lambda r: float(r["val/acc"]))  # the highest accuracy, not the lowest
    assert float(winner["val/acc"]) == pytest.approx(best["best_value"])
    markdown = (sweep_dir / "summary.md").read_text()
    assert "Ranked by val/acc, higher is better (inferred from its name)." in markdown
    assert f"Best by val/acc: job {winner['job']}" in markdown


def test_an_optuna_trial_that_fails_does_not_end_the_study(sweep):
    lr = "hydra.sweeper.params={optim.optimizer.lr:'choice(-1,0.1)'}"
    done, sweep_dir = sweep(
        "hparams_search=optuna", "model=mlp", "hydra.sweeper.n_trials=4", lr, *FAST
    )
    statuses = [r["status"] for r in rows(sweep_dir)]
    assert len(statuses) == 4 and set(statuses) <= {"ok", "failed"}
    assert done.returncode == (1 if "failed" in statuses else 0)
    assert "Traceback" not in done.stderr
    if set(statuses) == {"failed"}:  # Optuna has no best trial: it says so, the summary stays
        assert "sweep: the sweeper stopped: No trials are completed yet" in done.stderr
    else:
        assert "Best by val/loss" in (sweep_dir / "summary.md").read_text()


def test_ddp_inside_a_multirun_leaves_one_directory_per_job(sweep):
    done, sweep_dir = sweep("device=ddp_cpu", "model=mlp", "seed=0,1", "trainer.max_epochs=1")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in sweep_dir.iterdir() if p.is_dir()) == ["0", "1"]
    assert [r["status"] for r in rows(sweep_dir)] == ["ok", "ok"]


def test_the_summary_is_rebuilt_by_python_m_runner_sweep(sweep, tmp_path):
    done, sweep_dir = sweep("model=mlp", "seed=0,1", *FAST)
    assert done.returncode == 0, done.stderr
    for name in ("summary.csv", "summary.md", "summary.png"):
        (sweep_dir / name).unlink()
    rebuild = subprocess.run(
        [sys.executable, "-m", "runner.sweep", str(sweep_dir)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert rebuild.returncode == 0, rebuild.stderr
    assert "sweep: 2 job(s): 2 ok" in rebuild.stderr
    assert [r["status"] for r in rows(sweep_dir)] == ["ok", "ok"]
    missing = subprocess.run(
        [sys.executable, "-m", "runner.sweep", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert missing.returncode == 2 and "no sweep directory at" in missing.stderr
