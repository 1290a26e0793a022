"""A signal to a sweep at any point (during a job, between jobs, to a parallel launcher): it
stops whole, with the summary so far, how far it got, the command that finishes it, and
128 + the signal; no job trains on behind it."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner.rundir import read_result
from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def start(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], Path, Path]:
    sweep_dir, log = tmp_path / "sweep", tmp_path / "sweep.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "runner", "-m", *args, "device=cpu", f"hydra.sweep.dir={sweep_dir}"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return process, sweep_dir, log


def wait_for(condition, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_as_a_job_ends_stops_the_sweep_with_its_summary(tmp_path, signum, code):
    args = ("seed=1,2,3", "trainer.max_epochs=1")
    process, sweep_dir, log = start(tmp_path, *args)
    wait_for(lambda: read_result(sweep_dir / "0").get("status") == "ok")
    process.send_signal(signum)  # between job 0 and job 1, or as job 1 starts
    assert process.wait(timeout=120) == code
    stderr = log.read_text()
    name = signal.Signals(signum).name
    assert "Traceback" not in stderr
    assert f"sweep: stopped by {name} after 1 of 3 job(s)" in stderr
    assert "sweep: finish it with: python -m runner -m" in stderr
    jobs = sorted(d.name for d in sweep_dir.iterdir() if d.name.isdigit())
    summary = (sweep_dir / "summary.md").read_text()
    assert f"{len(jobs)} job(s): 1 ok" in summary  # every job there is, none dropped
    resumed = subprocess.run(
        [
            sys.executable,
            "-m",
            "runner",
            "-m",
            *args,
            "device=cpu",
            f"hydra.sweep.dir={sweep_dir}",
            "sweep.resume=true",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    statuses = [read_result(sweep_dir / str(n)).get("status") for n in range(3)]
    assert statuses == ["ok", "ok", "ok"]


def test_a_signal_to_a_parallel_launcher_stops_its_workers(tmp_path):
    args = ("hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=1,2,3")
    process, sweep_dir, log = start(tmp_path, *args, "trainer.max_epochs=2000")
    wait_for(lambda: log.read_text().count("fit: ") >= 2)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 143
    stderr = log.read_text()
    assert "sweep: stopped by SIGTERM after 0 of 3 job(s)" in stderr
    records = [read_result(d) for d in sorted(sweep_dir.iterdir()) if d.name.isdigit()]
    assert [r["status"] for r in records] == ["interrupted", "interrupted"]
    checkpoints = [Path(r["checkpoint"]) for r in records]
    written = [c.stat().st_mtime_ns for c in checkpoints]
    time.sleep(3)  # no worker trains on behind the stopped sweep
    assert [c.stat().st_mtime_ns for c in checkpoints] == written


def test_a_second_sweep_into_a_live_sweeps_directory_is_refused_before_it_launches(tmp_path):
    first, sweep_dir, log = start(tmp_path, "seed=1,2", "trainer.max_epochs=2000")
    wait_for(lambda: "fit: " in log.read_text())
    second = subprocess.run(
        [
            sys.executable,
            "-m",
            "runner",
            "-m",
            "seed=7,8",
            "device=cpu",
            f"hydra.sweep.dir={sweep_dir}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=120) == 143
    assert second.returncode == 2
    assert f"hydra.sweep.dir: '{sweep_dir}' is in use by a live sweep" in second.stderr
    assert "Traceback" not in second.stderr
    jobs = [d.name for d in sweep_dir.iterdir() if d.name.isdigit()]
    assert jobs == ["0"]  # the second wrote no job of its own
    assert read_result(sweep_dir / "0")["overrides"] == [
        "seed=1",
        "trainer.max_epochs=2000",
        "device=cpu",
    ]
