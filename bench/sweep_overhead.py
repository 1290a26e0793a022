"""What a sweep costs beyond its jobs' own training, and what joblib's parallel processes buy.

Per-job overhead (issue 25, item 4: ≤ 0.3 s for tiny jobs) = what one more job adds to an
in-process (basic launcher) sweep beyond its own fit time: the difference between a 12-job and
a 2-job sweep of tiny jobs, (wall − the jobs' fit time), per added job. What a sweep does once
(the process start-up and imports, the first composition, the summary at the end) is shared by
all its jobs and not in it. Reported next to it: the same as a ratio to what one more job adds
to a sweep of bench/bare_hydra_app.py (Hydra's own share; steadier than seconds on a busy
machine), and the older measure (the 12-job sweep's wall time minus its jobs' fit time, per
job: start-up included), with its parts: the CPU time one more job adds (training included),
the process start-up timed alone (`--cfg job` plus the imports a run needs) and Hydra's
composition of one job's config (once per job: the sweeper's check composes it, the launcher
reuses it). Repeated; the median is the result.

joblib's speed-up: a CPU-bound 4-job sweep, basic launcher vs `hydra/launcher=joblib` with 2
workers, on this machine's 2 cores.

    python bench/sweep_overhead.py        # writes bench/results/sweep_overhead-cpu.json
"""

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import check, save

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model=linear", "data=synthetic", "device=cpu", "trainer.max_epochs=1"]
TARGET_S = 0.3  # issue 25, item 4
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


def bare_hydra_per_added_job(root: Path, few: int = 2, many: int = 12) -> float:
    """What one more job adds to a sweep of bench/bare_hydra_app.py (Hydra's basic launcher and
    a one-key config, nothing else): Hydra's own share, timed next to the runner's."""
    walls = {}
    for n in (few, many):
        values, where = "+x=" + ",".join(map(str, range(n))), f"hydra.sweep.dir={root / f'b{n}'}"
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, str(ROOT / "bench" / "bare_hydra_app.py"), "-m", values, where],
            cwd=root,
            check=True,
            capture_output=True,
        )
        walls[n] = time.perf_counter() - start
    return (walls[many] - walls[few]) / (many - few)


def seeds(n: int) -> str:
    return "seed=" + ",".join(str(i) for i in range(n))


def overheads(root: Path, few: int = 2, many: int = 12) -> tuple[float, float, dict]:
    """(per added job, per job of the `many`-job sweep with its start-up, the parts)."""
    root.mkdir(parents=True, exist_ok=True)
    walls, fits, cpus = {}, {}, {}
    for n in (few, many):
        before = _children_cpu()
        wall, results = sweep([*TINY, seeds(n)], root / f"tiny{n}")
        assert len(results) == n and all(r["status"] == "ok" for r in results), results
        walls[n], fits[n] = wall, sum(r["fit_seconds"] for r in results)
        cpus[n] = _children_cpu() - before
    added = ((walls[many] - fits[many]) - (walls[few] - fits[few])) / (many - few)
    amortized = (walls[many] - fits[many]) / many
    parts = {
        "jobs": [few, many],
        "sweep_wall_s": [round(walls[n], 2) for n in (few, many)],
        "jobs_fit_s": [round(fits[n], 2) for n in (few, many)],
        # CPU time (user + system), training included: what a busy machine inflates least
        "cpu_per_added_job_s": round((cpus[many] - cpus[few]) / (many - few), 3),
    }
    return added, amortized, parts


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    repeats = 3
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        runs, hydra = [], []
        for i in range(repeats):  # interleaved: both see the machine as it is at the time
            runs.append(overheads(root / str(i)))
            hydra.append(bare_hydra_per_added_job(root / str(i)))
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

    added = [a for a, _, _ in runs]
    amortized = [m for _, m, _ in runs]
    per_job = statistics.median(added)
    record = {
        "per_job_overhead_s": round(per_job, 3),
        "target_s": TARGET_S,
        "met": per_job <= TARGET_S,
        "per_added_job_s": [round(a, 3) for a in added],
        "per_job_with_startup_s": [round(m, 3) for m in amortized],
        "bare_hydra_per_added_job_s": [round(h, 3) for h in hydra],
        "parts": {
            "sweeps": [p for _, _, p in runs],
            "process_start_and_imports_s": round(startup, 2),
            "hydra_compose_per_job_s": round(compose, 3),
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
                "per-job overhead of an in-process sweep (what one more tiny job adds)",
                "— (seconds)",
                added,
                TARGET_S,
                unit=" s",
            ),
            "note": "seconds, not a ratio: (wall − fit time) of a 12-job sweep minus a 2-job "
            "one, per added job; what the sweep does once (start-up, imports) is not in it",
        },
        {
            **check(
                "per-job overhead of an in-process sweep (what one more tiny job adds)",
                "a bare Hydra app's sweep",
                [a / h for a, h in zip(added, hydra, strict=True)],
                None,
            ),
            "note": "the same, as a ratio to what one more job adds to a sweep of a one-key "
            "Hydra app (Hydra's own share), timed next to it: steadier on a busy machine",
        },
        {
            **check(
                "per-job overhead of a 12-job in-process sweep, start-up included",
                "— (seconds)",
                amortized,
                None,
                unit=" s",
            ),
            "note": "seconds: the sweep's wall time minus its jobs' fit time, per job (the "
            "measure before issue 25: the process start-up shared out over 12 jobs)",
        },
    ]
    save("sweep_overhead-cpu", record, checks=checks)


if __name__ == "__main__":
    main()
