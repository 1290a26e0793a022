"""What the vectorized launcher buys: the same sweep by Hydra's basic launcher and by
`hydra/launcher=vectorized`, wall time of the whole command (process start included, both
sides), and the batched training step against a hand-written loop of one model.

- 20 jobs, model=rgnet init=default,xavier,normal,kaiming seed=0..4, 3 epochs: target ≥ 8×
- the same with model=mlp data=digits: target ≥ 5×
- rgnet, N = 20 members in one step vs one model's hand-written step: members' steps per second
  over the single loop's, target ≥ 0.8 × N

Reported next to each sweep's speed-up: the most any launcher could buy on this machine, the
basic sweep's wall time over a process that only starts and imports what a sweep needs (the
floor of any sweep command: no config, no job, no file).

    python bench/vectorized_sweep.py [--quick]    # writes bench/results/vectorized_sweep-cpu.json
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import check, save

ROOT = Path(__file__).resolve().parents[1]
INITS = "init=default,xavier,normal,kaiming"
SWEEPS = {
    "rgnet": (["model=rgnet"], 8.0),
    "mlp on digits": (["model=mlp", "data=digits"], 5.0),
}


def sweep_seconds(args: list[str], launcher: str, sweep_dir: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "runner", "-m", f"hydra/launcher={launcher}", *args]
    start = time.perf_counter()
    subprocess.run(
        [*command, f"hydra.sweep.dir={sweep_dir}"],
        cwd=sweep_dir.parent,
        env=env,
        check=True,
        capture_output=True,
    )
    seconds = time.perf_counter() - start
    statuses = [json.loads(p.read_text())["status"] for p in sweep_dir.glob("*/result.json")]
    assert statuses and set(statuses) == {"ok"}, statuses
    return seconds


def floor_seconds(repeats: int = 3) -> float:
    """A process that starts and imports what every sweep command imports, then exits."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    imports = "import runner.__main__, runner.train.fit, runner.sweep.vectorized, matplotlib.pyplot"
    walls = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", imports], env=env, check=True, capture_output=True)
        walls.append(time.perf_counter() - start)
    return min(walls)


def step_ratio(n: int, repeats: int) -> float:
    """Members' steps per second in one batched step over one model's hand-written loop."""
    sys.path.insert(0, str(ROOT))
    import warnings

    import torch

    import runner
    from runner.config.spec import parse_run
    from runner.train.vector_fit import GroupFit
    from runner.train.vector_loop import _State, _step
    from runner.train.vector_members import make_member

    specs = [
        parse_run(runner.compose(["model=rgnet", f"seed={s}", "device=cpu"])) for s in range(n)
    ]
    # The group's gradients are views of one buffer, by design (the launcher says so too).
    warnings.filterwarnings("ignore", message="grad and param do not obey")
    group = GroupFit([make_member(s, k) for k, s in enumerate(specs)])
    state = _State(group)
    x, y = torch.randn(n, 256, 4), torch.randn(n, 256, 1)
    net = make_member(specs[0], 0).module.net
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)

    def alone() -> None:
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(net(x[0]), y[0]).backward()
        optimizer.step()

    def together() -> None:
        _step(group, state, x, y)

    # Short blocks of each, interleaved, and the median block of each: a busy machine's
    # slow spells fall on both sides alike.
    blocks: dict[str, list[float]] = {"alone": [], "together": []}
    for _ in range(20):
        alone(), together()
    for _ in range(max(repeats // 10, 3)):
        for name, step in (("alone", alone), ("together", together)):
            start = time.perf_counter()
            for _ in range(10):
                step()
            blocks[name].append(time.perf_counter() - start)
    return n * statistics.median(blocks["alone"]) / statistics.median(blocks["together"])


def main() -> None:
    quick = "--quick" in sys.argv
    seeds = "seed=" + ",".join(str(s) for s in range(2 if quick else 5))
    record: dict = {"sweeps": {}}
    checks = []
    floor = floor_seconds()
    record["floor_s"] = round(floor, 2)
    with tempfile.TemporaryDirectory() as tmp:
        for name, (args, target) in SWEEPS.items():
            full = [*args, INITS, seeds, "trainer.max_epochs=3", "device=cpu"]
            basic = sweep_seconds(full, "basic", Path(tmp) / f"{name}-basic".replace(" ", "-"))
            vectorized = sweep_seconds(
                full, "vectorized", Path(tmp) / f"{name}-v".replace(" ", "-")
            )
            jobs = 4 * (2 if quick else 5)
            record["sweeps"][name] = {
                "jobs": jobs,
                "basic_s": round(basic, 2),
                "vectorized_s": round(vectorized, 2),
            }
            checks.append(
                check(
                    f"{jobs}-job sweep of {name}, 3 epochs, hydra/launcher=vectorized (speed-up)",
                    "the basic launcher, the same sweep",
                    basic / vectorized,
                    target,
                    at_least=True,
                    note="wall time of the whole command, process start included on both sides",
                )
            )
            checks.append(
                check(
                    f"{jobs}-job sweep of {name}: the most any launcher could buy here",
                    "a process that only starts and imports",
                    basic / floor,
                    None,
                    at_least=True,
                    note="the basic sweep's wall time over the floor of any sweep command",
                )
            )
    n = 20
    ratios = [step_ratio(n, 50 if quick else 200) for _ in range(1 if quick else 3)]
    record["step_ratio_n20"] = ratios
    checks.append(
        check(
            f"rgnet training step, {n} members as one (members' steps per second)",
            "hand-written loop, one model",
            ratios,
            0.8 * n,
            at_least=True,
            note="target 0.8 × N: the batched step costing little more than one model's",
        )
    )
    print(json.dumps(record, indent=2))
    save("vectorized_sweep-cpu", record, checks=checks)


if __name__ == "__main__":
    main()
