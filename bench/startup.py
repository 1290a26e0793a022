"""Start-up cost of the commands a user types, as ratios to baselines timed in the same run.

Targets (issue #2): `--help` and `--cfg job` import no torch and take ≤ 2× a bare Hydra app;
`task=inspect model=rgnet` imports no Lightning and takes ≤ 1.5× `python -c "import torch"`.

    python bench/startup.py [--repeats 7]     # writes bench/results/startup.json
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import check, save

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def timed(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def times(command: list[str], cwd: Path, repeats: int) -> list[float]:
    timed(command, cwd)  # warm the file cache
    return [timed(command, cwd) for _ in range(repeats)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="3 repetitions")
    args = parser.parse_args()
    repeats = 3 if args.quick else args.repeats
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        runner = [PY, "-m", "runner"]
        commands = {
            "bare hydra app": [PY, str(ROOT / "bench" / "bare_hydra_app.py"), "hydra.run.dir=."],
            "import torch": [PY, "-c", "import torch"],
            "runner --help": [*runner, "--help"],
            "runner --cfg job": [*runner, "--cfg", "job"],
            "runner task=inspect model=rgnet": [
                *runner,
                "task=inspect",
                "model=rgnet",
                "device=cpu",
                f"hydra.run.dir={cwd / 'run'}",
            ],
        }
        samples = {name: times(cmd, cwd, repeats) for name, cmd in commands.items()}
    seconds = {name: statistics.median(values) for name, values in samples.items()}
    targets = [
        ("runner --help", "bare hydra app", 2.0),
        ("runner --cfg job", "bare hydra app", 2.0),
        ("runner task=inspect model=rgnet", "import torch", 1.5),
    ]
    print(f"{'command':<34}{'median s':>10}")
    for name, s in seconds.items():
        print(f"{name:<34}{s:>10.3f}")
    checks = [
        check(name, base, [a / b for a, b in zip(samples[name], samples[base], strict=True)], t)
        for name, base, t in targets
    ]
    save("startup", {"repeats": repeats, "seconds": seconds}, checks=checks)


if __name__ == "__main__":
    main()
