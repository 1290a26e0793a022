"""What a sweep costs beyond its jobs' own training, and what joblib's parallel processes buy.

Per-job overhead (issue: sweeps) = (the sweep's wall time − the jobs' own fit time) / jobs, for
a 12-job basic-launcher (in-process) sweep of tiny jobs; target ≤ 0.5 s. Its parts are reported
too: the process start-up (timed alone, as `--cfg job` plus the imports a run needs) shared by
all jobs, and Hydra's composition of each job's config (twice per job in the basic sweeper:
once to validate the batch, once to launch the job).

joblib's speed-up: a CPU-bound 4-job sweep, basic launcher vs `hydra/launcher=joblib` with 2
workers, on this machine's 2 cores.

    python bench/sweep_overhead.py        # writes bench/results/sweep_overhead-cpu.json
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import check, save

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model=linear", "data=synthetic", "device=cpu", "trainer.max_epochs=1"]
CPU_BOUND = ["model=mlp", "data=digits", "device=cpu", "trainer.max_epochs=6", "stats=off"]


def sweep(args: list[str], sweep_dir: Path) -> tuple[float, list[dict]]:
    """Wall time of one `python -m runner -m ARGS` and its jobs' result.json."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "runner", "-m", *args, f"hydra.sweep.dir={sweep_dir}"],
        cwd=sweep_dir.parent,
        env=env,
        check=True,
        capture_output=True,
    )
    wall = time.perf_counter() - start
    results = [json.loads(p.read_text()) for p in sorted(sweep_dir.glob("*/result.json"))]
    return wall, results


def compose_seconds(repeats: int = 10) -> float:
    sys.path.insert(0, str(ROOT))
    import runner

    runner.compose(["device=cpu"])
    start = time.perf_counter()
    for seed in range(repeats):
        runner.compose(["device=cpu", f"seed={seed}"])
    return (time.perf_counter() - start) / repeats


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        seeds = "seed=" + ",".join(str(i) for i in range(12))
        wall, results = sweep([*TINY, seeds], root / "tiny")
        fit = sum(r["fit_seconds"] for r in results)
        per_job = (wall - fit) / len(results)
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", "import runner.cli, runner.train.fit"],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            check=True,
        )
        startup = time.perf_counter() - start
        compose = compose_seconds()

        four = "seed=0,1,2,3"
        basic, _ = sweep([*CPU_BOUND, four], root / "basic")
        joblib, _ = sweep(
            [*CPU_BOUND, four, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], root / "joblib"
        )

    record = {
        "per_job_overhead_s": round(per_job, 3),
        "target_s": 0.5,
        "met": per_job <= 0.5,
        "parts": {
            "jobs": len(results),
            "sweep_wall_s": round(wall, 2),
            "jobs_fit_s": round(fit, 2),
            "process_start_and_imports_s": round(startup, 2),
            "startup_per_job_s": round(startup / len(results), 3),
            "hydra_compose_per_call_s": round(compose, 3),
            "hydra_compose_per_job_s": round(2 * compose, 3),
            "runner_outside_fit_per_job_s": round(
                sum(r["seconds"] - r["fit_seconds"] for r in results[1:]) / (len(results) - 1), 3
            ),
        },
        "joblib_speedup_2_workers": round(basic / joblib, 2),
        "joblib": {
            "basic_wall_s": round(basic, 2),
            "joblib_wall_s": round(joblib, 2),
            "cores": os.cpu_count(),
        },
    }
    print(json.dumps(record, indent=2))
    checks = [
        {
            **check(
                "per-job overhead of a 12-job in-process sweep",
                "— (seconds)",
                per_job,
                0.5,
                unit=" s",
            ),
            "note": "seconds, not a ratio: the sweep's wall time minus its jobs' fit time, per job",
        }
    ]
    save("sweep_overhead-cpu", record, checks=checks)


if __name__ == "__main__":
    main()
