"""Build + initialize a stack of square Linear layers: the runner against the bare sequence.

Baseline (bare): construct on meta → to_empty(device) → xavier_uniform_ on each weight,
zeros_ on each bias. The runner does the same work through its config path
(spec → meta build → to_empty → rules, with each module's reset skipped because the rules
set every tensor) plus its checks. For context, the common default-then-Xavier (construct on
the device, which initializes, then initialize again) is timed too.

Targets (issue #3): runner ≤ 1.2× bare on the CPU, ≤ 2× bare on a GPU (CUDA start-up and
first-call costs excluded by a warm-up round).

    python bench/build_init.py                                  # CPU: 12 × Linear(2048, 2048)
    python bench/build_init.py --device cuda --width 8192       # GPU: ~805M parameters
"""

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch import nn

from runner.config.grammar import parse_model
from runner.config.init import parse_init
from runner.errors import Problems
from runner.model.assemble import assemble

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import check, save

XAVIER = {
    "rules": [
        {"role": "weight", "min_ndim": 2, "init": "xavier_uniform"},
        {"role": "bias", "init": "zeros"},
    ]
}


def bare(width: int, layers: int, device: torch.device) -> nn.Module:
    with torch.device("meta"):
        net = nn.Sequential(*(nn.Linear(width, width) for _ in range(layers)))
    net.to_empty(device=device)
    return xavier(net)


def default_then_xavier(width: int, layers: int, device: torch.device) -> nn.Module:
    with device:  # the constructors initialize once, then xavier does it again
        net = nn.Sequential(*(nn.Linear(width, width) for _ in range(layers)))
    return xavier(net)


def xavier(net: nn.Module) -> nn.Module:
    with torch.no_grad():
        for layer in net:
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
    return net


def through_runner(width: int, layers: int, device: torch.device) -> nn.Module:
    model = {
        "input_shape": [width],
        "net": [{"type": "Linear", "in_features": width, "out_features": width, "repeat": layers}],
    }
    problems = Problems()
    init = parse_init(OmegaConf.create(XAVIER), problems)
    problems.raise_if_any()
    return assemble(parse_model(OmegaConf.create(model)), init, device, seed=0).net


def seconds(fn: Callable[[], nn.Module], device: torch.device, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        net = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        del net
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="3 repetitions")
    args = parser.parse_args()
    if args.quick:
        args.repeats = 3
    device = torch.device(args.device)
    w, k = args.width, args.layers
    candidates = {
        "bare meta → to_empty → init": lambda: bare(w, k, device),
        "runner (init=xavier rules)": lambda: through_runner(w, k, device),
        "default then xavier": lambda: default_then_xavier(w, k, device),
    }
    for fn in candidates.values():  # warm-up: CUDA context, kernels, first imports
        fn()
    timed = {name: seconds(fn, device, args.repeats) for name, fn in candidates.items()}
    base = timed["bare meta → to_empty → init"]
    target = 1.2 if device.type == "cpu" else 2.0
    params = k * (w * w + w)
    print(f"{k} × Linear({w}, {w}) = {params / 1e6:.0f}M parameters on {device}")
    for name, s in timed.items():
        print(f"  {name:<30} {s * 1e3:9.1f} ms   {s / base:5.2f}× bare")
    ratio = timed["runner (init=xavier rules)"] / base
    verdict = "ok" if ratio <= target else "MISSED"
    print(f"runner / bare = {ratio:.2f}×, target ≤ {target}×: {verdict}")
    record = {
        "model": f"{k} x Linear({w}, {w})",
        "seconds": timed,
        "runner_over_bare": ratio,
        "target": target,
    }
    checks = [
        check(f"build + init of {record['model']}", "bare meta → to_empty → init", ratio, target)
    ]
    save(f"build_init-{device.type}", record, gpu=_gpu(device), checks=checks)


def _gpu(device: torch.device) -> str | None:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else None


if __name__ == "__main__":
    main()
