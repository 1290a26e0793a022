"""A job of an in-process sweep writes everything a single run writes, and, where the run is
deterministic, the same bytes: what a sweep does once for all its jobs (issue 25: the config
files parsed once, each job composed once, matplotlib's math text parsed once) changes no
job's files."""

import csv
import json
from pathlib import Path

import pytest

import runner

pytestmark = pytest.mark.slow

ARGS = ("model=rgnet", "device=cpu", "trainer.max_epochs=2")
SAME_BYTES = ("param_stats.csv", "plots/blocks.png", "plots/weights.png", "plots/metrics.png")


def files(run_dir: Path) -> set[str]:
    return {str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file()}


def metrics_rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "logs" / "metrics.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def test_a_sweep_job_writes_what_a_single_run_writes_and_the_same_contents(cli, tmp_path):
    sweep_dir = tmp_path / "sweep"
    done = cli("-m", *ARGS, "seed=0,1,2", f"hydra.sweep.dir={sweep_dir}")
    assert done.returncode == 0, done.stderr
    single = tmp_path / "single" / "2"  # named as the job: metrics.png's title is the name
    done = cli(*ARGS, "seed=2", run_dir=single)
    assert done.returncode == 0, done.stderr
    job = sweep_dir / "2"

    assert files(job) == files(single)
    for name in ("checkpoints/last.ckpt", "result.json", "report.html", *SAME_BYTES):
        assert name in files(job)
    for name in SAME_BYTES:
        assert (job / name).read_bytes() == (single / name).read_bytes(), name
    assert metrics_rows(job) == metrics_rows(single)
    # Paths told apart by the directory only: as if both ran in `single`.
    ran = json.loads((job / "result.json").read_text().replace(str(job), str(single)))
    alone = json.loads((single / "result.json").read_text())
    assert ran["status"] == alone["status"] == "ok" and ran["verification"]["ok"]
    for key in ("metrics", "parameters", "epochs", "global_step", "stats", "checkpoints"):
        assert ran.get(key) == alone.get(key), key
    assert "report.html" in (sweep_dir / "report.html").read_text()
    weights = {d: runner.load(d / "checkpoints" / "last.ckpt").state_dict() for d in (job, single)}
    assert weights[job].keys() == weights[single].keys()
    assert all(weights[job][n].equal(weights[single][n]) for n in weights[job])
    neighbour = runner.load(sweep_dir / "1" / "checkpoints" / "last.ckpt").state_dict()
    assert any(not weights[job][n].equal(neighbour[n]) for n in neighbour)  # its own seed
