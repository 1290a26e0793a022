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
from _results import save

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def timed(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def median_time(command: list[str], cwd: Path, repeats: int) -> float:
    timed(command, cwd)  # warm the file cache
    return statistics.median(timed(command, cwd) for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
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
        seconds = {name: median_time(cmd, cwd, args.repeats) for name, cmd in commands.items()}
    checks = [
        ("runner --help", "bare hydra app", 2.0),
        ("runner --cfg job", "bare hydra app", 2.0),
        ("runner task=inspect model=rgnet", "import torch", 1.5),
    ]
    print(f"{'command':<34}{'median s':>10}")
    for name, s in seconds.items():
        print(f"{name:<34}{s:>10.3f}")
    print()
    results = []
    for name, base, target in checks:
        ratio = seconds[name] / seconds[base]
        ok = ratio <= target
        results.append({"command": name, "baseline": base, "ratio": ratio, "target": target})
        print(f"{name:<34} {ratio:5.2f}× {base:<16} target ≤ {target}×  {'ok' if ok else 'MISSED'}")
    print()
    save("startup", {"repeats": args.repeats, "seconds": seconds, "ratios": results})


if __name__ == "__main__":
    main()
