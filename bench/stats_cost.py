"""What parameter statistics cost: one call against one training step, and the whole
training at the default interval against training with statistics off (same run, ratios).

Targets (issue #5): one full call ≤ 0.3 of an rgnet step on the CPU; at the default interval
the statistics cost ≤ 2 % of training time. For context, the naive pass (a `.item()` per
statistic per parameter) is timed too.

    python bench/stats_cost.py                      # CPU, rgnet
    python bench/stats_cost.py --device cuda --width 8192 --layers 12   # GPU, ~805M parameters
"""

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

import runner
from runner.params.stats import StatsComputer, tracked_parameters

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import check, save
from train_throughput import runner_step


def timed(fn, device: torch.device, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def naive(net: nn.Module) -> list[float]:
    out = []
    for p in net.parameters():
        t = p.detach()
        out += [t.mean().item(), t.std().item(), t.min().item(), t.max().item(), t.norm().item()]
        out += [(t == 0).float().mean().item(), (~torch.isfinite(t)).sum().item()]
        out.append(p.grad.norm().item() if p.grad is not None else 0.0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--width", type=int, default=0, help="0: rgnet; else a Linear stack")
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    logging.getLogger("runner").setLevel(logging.WARNING)
    device = torch.device(args.device)
    if args.width:
        with device:
            net = nn.Sequential(*(nn.Linear(args.width, args.width) for _ in range(args.layers)))
        x = torch.randn(256, args.width, device=device)
    else:
        net = runner.build_net(runner.compose(["model=rgnet", "device=cpu"]), device=device)
        x = torch.rand(256, 4, device=device)
    y = net(x).detach() * 0.5
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01)

    def step() -> None:
        optimizer.zero_grad()
        F.mse_loss(net(x), y).backward()
        optimizer.step()

    step()
    items = tracked_parameters(net)
    full = StatsComputer(items, with_grads=True, with_updates=True)
    no_ratio = StatsComputer(items, with_grads=True, with_updates=False)
    full.compute()  # warm-up, and the first weight copy for the update ratio
    params = list(net.parameters())
    read = lambda: torch.stack(torch._foreach_norm(params))  # noqa: E731  one read of all bytes
    seconds = {
        "training step": timed(step, device, 20),
        "stats, all (update ratio too)": timed(full.compute, device, 20),
        "stats, without update ratio": timed(no_ratio.compute, device, 20),
        "naive .item() pass": timed(lambda: naive(net), device, 5),
        "one read of all parameters": timed(read, device, 20),
    }
    base = seconds["training step"] if not args.width else seconds["one read of all parameters"]
    base_name = "training step" if not args.width else "one read of all parameters"
    n = sum(p.numel() for p in params)
    print(f"{n / 1e6:.2f}M parameters on {device}; ratios to {base_name}")
    for name, s in seconds.items():
        print(f"  {name:<32} {s * 1e3:9.3f} ms   {s / base:6.2f}×")
    record: dict = {"parameters": n, "seconds": seconds, "baseline": base_name}
    checks = []
    if args.width:  # issue #13: ≤ 3× one read without the update ratio, ≤ 5× with it
        checks += [
            check(
                "statistics without update ratio",
                base_name,
                seconds["stats, without update ratio"] / base,
                3.0,
            ),
            check(
                "statistics with update ratio",
                base_name,
                seconds["stats, all (update ratio too)"] / base,
                5.0,
            ),
        ]
    else:
        checks.append(
            check(
                "one statistics call, rgnet",
                base_name,
                seconds["stats, all (update ratio too)"] / base,
                0.3,
            )
        )
    if not args.width:  # the whole training: statistics at the default interval vs off
        common = ["model=rgnet", "device=cpu", "data.num_samples=64000", "trainer.max_epochs=2"]
        times: dict[str, list[float]] = {"default": [], "off": []}
        for _ in range(
            3 if args.quick else 6
        ):  # alternated: this machine drifts by ±7 % between runs
            for mode, values in times.items():
                values.append(runner_step([*common, f"stats={mode}"], 3))
        on, off = (statistics.median(times[m]) for m in ("default", "off"))
        record["training_with_stats_over_off"] = on / off
        pairs = [a / b for a, b in zip(times["default"], times["off"], strict=True)]
        checks.append(
            check("training step, statistics every 50 steps", "statistics off", pairs, 1.02)
        )
        print(f"  training step with stats every 50 steps / with stats off: {on / off:.3f}×")
    save(f"stats_cost-{device.type}", record, gpu=_gpu(device), checks=checks)


def _gpu(device: torch.device) -> str | None:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else None


if __name__ == "__main__":
    main()
