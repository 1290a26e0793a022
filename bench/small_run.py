"""A small run end to end, as a user waits for it: `python -m runner model=rgnet
trainer.max_epochs=3` (build, fit, statistics and plots, test, checkpoint verification) against
`python -c "import pytorch_lightning"`, alternated in one run (ratios, not seconds).

Target (issue #13): ≤ 1.25× the import. Also timed, to show where the rest goes: the same run
without plots, and without statistics.

    python bench/small_run.py [--repeats 5]      # writes bench/results/small_run-cpu.json
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import check, save
from startup import timed

ROOT = Path(__file__).resolve().parents[1]
RUN = ("model=rgnet", "trainer.max_epochs=3", "device=cpu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2 repetitions, the target only")
    args = parser.parse_args()
    repeats = 2 if args.quick else args.repeats
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)

        def run(*extra: str) -> list[str]:
            directory = cwd / f"run{time.monotonic_ns()}"
            return [sys.executable, "-m", "runner", *RUN, *extra, f"hydra.run.dir={directory}"]

        commands = {
            "import pytorch_lightning": lambda: [sys.executable, "-c", "import pytorch_lightning"],
            "runner, 3 epochs": run,
            "runner, no plots": lambda: run("stats.plots=false"),
            "runner, no statistics": lambda: run("stats=off"),
        }
        if args.quick:
            commands = dict(list(commands.items())[:2])
        else:
            for make in commands.values():  # warm the file cache
                timed(make(), cwd)
        seconds: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(repeats):  # alternated: the machine drifts between runs
            for name, make in commands.items():
                seconds[name].append(timed(make(), cwd))
    base = seconds["import pytorch_lightning"]
    print(f"{'command':<28}{'median s':>10}{'min':>8}{'max':>8}")
    for name, values in seconds.items():
        print(f"{name:<28}{statistics.median(values):>10.2f}{min(values):>8.2f}{max(values):>8.2f}")
    ratios = [r / b for r, b in zip(seconds["runner, 3 epochs"], base, strict=True)]
    checks = [
        check(
            "python -m runner model=rgnet trainer.max_epochs=3, end to end",
            "import pytorch_lightning",
            ratios,
            1.25,
        )
    ]
    save("small_run-cpu", {"repeats": repeats, "seconds": seconds}, checks=checks)


if __name__ == "__main__":
    main()
