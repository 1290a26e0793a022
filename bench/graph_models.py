"""Graph models against the book's hand-written modules: forward + backward of the compiled
`resnet18` and `googlenet` (torch.fx GraphModules in Sequentials) against the book's classes
on the same batch, and the build (meta path + init) of the compiled graph against the bare meta
path of the book's module.

Baselines, timed in the same run, interleaved with the runner's, on the same batch:
- step: the book's module (tests/d2l_cnn.py, its weights loaded into the runner's), one
  forward + backward; target ≤ 1.05× on the CPU.
- build: the book's module constructed on meta, sized by a meta forward, `to_empty` on the
  CPU, each module's `reset_parameters`; the runner from the config: parse → meta build →
  sizing → to_empty → reset (init=default); target ≤ 1.2×.

    python bench/graph_models.py            # 16×16 images (1 channel), batch 32
    python bench/graph_models.py --quick
"""

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from _results import check, save  # noqa: E402

import runner  # noqa: E402
from runner.config.grammar import parse_model  # noqa: E402
from runner.config.init import InitSpec  # noqa: E402
from runner.model.assemble import assemble  # noqa: E402
from tests.d2l_cnn import googlenet, resnet18  # noqa: E402

MODELS: dict[str, tuple[list[str], Callable[[], nn.Module]]] = {
    "resnet18": (["model.args.width=16"], lambda: resnet18(width=16, stem=(3, 1, 1))),
    "googlenet": (["model.args.div=4"], lambda: googlenet(div=4, stem=(3, 1, 1))),
}


def step(net: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    start = time.perf_counter()
    nn.functional.cross_entropy(net(X), y).backward()
    return time.perf_counter() - start


def bare_build(make: Callable[[], nn.Module], shape: tuple[int, ...]) -> float:
    start = time.perf_counter()
    with torch.device("meta"):
        net = make()
        net(torch.zeros(2, *shape))
    net.to_empty(device="cpu")
    with torch.no_grad():
        for m in net.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
    return time.perf_counter() - start


def runner_build(model_cfg) -> float:
    start = time.perf_counter()
    assemble(parse_model(model_cfg), InitSpec(True, (), ()), torch.device("cpu"), seed=0)
    return time.perf_counter() - start


def measure(name: str, size: int, batch: int, repeats: int) -> dict:
    overrides, make = MODELS[name]
    shape = (1, size, size)
    cfg = runner.compose(
        [f"model={name}", "device=cpu", f"model.input_shape=[1,{size},{size}]", *overrides]
    )
    ours = runner.build_net(cfg)
    book = make()
    book(torch.zeros(2, *shape))
    ours.load_state_dict(book.state_dict())
    X, y = torch.randn(batch, *shape), torch.randint(0, 10, (batch,))
    for net in (ours, book, ours, book):  # warm-up
        step(net, X, y)
    ratios = []
    for r in range(repeats):  # interleaved, alternating which goes first: a busy moment
        pair = (ours, book) if r % 2 == 0 else (book, ours)  # costs both alike
        timed = {id(net): sum(step(net, X, y) for _ in range(3)) for net in pair}
        ratios.append(timed[id(ours)] / timed[id(book)])
    builds = []
    for _ in range(repeats):
        builds.append(runner_build(cfg.model) / bare_build(make, shape))
    return {"step": ratios, "build": builds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=16)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="5 repetitions")
    args = parser.parse_args()
    repeats = 5 if args.quick else args.repeats
    torch.manual_seed(0)
    record, checks = {}, []
    for name in MODELS:
        r = measure(name, args.size, args.batch, repeats)
        record[name] = r
        step_ratio, build_ratio = statistics.median(r["step"]), statistics.median(r["build"])
        print(
            f"{name}: forward+backward {step_ratio:.3f}× the book's module (target ≤ 1.05×); "
            f"build {build_ratio:.2f}× the bare meta path (target ≤ 1.2×)"
        )
        what = f"{name} forward+backward, batch {args.batch} of 1×{args.size}×{args.size}"
        checks.append(check(what, "the book's module", r["step"], 1.05))
        checks.append(check(f"{name} build (meta + init)", "bare meta path", r["build"], 1.2))
    save("graph_models-cpu", record, checks=checks)


if __name__ == "__main__":
    main()
