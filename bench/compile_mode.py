"""trainer.compile: training throughput of the runner with its training steps compiled, against
the same run eager and against the hand-written eager loop (bench/train_throughput.py's), same
model, batch, optimizer and data, timed side by side in one run (ratios, not seconds).

Compiling costs seconds up front: each compiled run's first step is reported (from its log
line), not timed in the ratios (the first steps are warm-up). Targets (issue #13, item 8): none
on the CPU (reported); on a GPU, a stretch goal of ≥ 1.0× the hand-written eager loop for mlp
and rgnet with mode reduce-overhead (CUDA graphs: these models are launch-bound).

    python bench/compile_mode.py                 # CPU: mlp, rgnet, big; mode default
    python bench/compile_mode.py --device cuda   # GPU: mode reduce-overhead
"""

import argparse
import logging
import re
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import check, save
from train_throughput import data_and_net, hand_written_step, overrides, runner_step

# Steps left out of the timing: the first compiles, and the first statistics record (step 50
# by default) arms the dead-unit hooks, which compiles a second graph once.
WARMUP = {"mlp": 60, "rgnet": 60, "big": 3}


class FirstSteps(logging.Handler):
    """The runner's log, kept only for its `compile:` line: how long each compiled run's
    first training step took, compiling included (the other lines are not shown)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seconds: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        took = re.search(r"^compile: .* took ([\d.]+) s", record.getMessage())
        if took:
            self.seconds.append(float(took[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", default="mlp,rgnet,big")
    parser.add_argument("--mode", help="trainer.compile (default: reduce-overhead on a GPU)")
    parser.add_argument("--quick", action="store_true", help="rgnet, 1 epoch, once")
    args = parser.parse_args()
    device = torch.device(args.device)
    on_gpu = device.type == "cuda"
    mode = args.mode or ("reduce-overhead" if on_gpu else "default")
    repeats, epochs = (1, 1) if args.quick else (3, 3)
    if args.quick:  # the launch-bound model compiling is meant for
        args.models = "rgnet"
    first_steps = FirstSteps()
    logging.getLogger("runner").addHandler(first_steps)
    logging.getLogger("runner").setLevel(logging.INFO)
    rows = []
    for model in args.models.split(","):
        big = model == "big"
        batch = 4096 if big and on_gpu else 256
        # 80 % of the samples are the training split: 200 full batches per epoch (big: 24)
        samples = batch * (24 if big else 200) * 10 // 8
        cfg_overrides = overrides(model, args.device, batch, samples, 1 if big else epochs)
        compiled_overrides = [*cfg_overrides, f"trainer.compile={mode}"]
        k = 8 if big else 20
        warmup = WARMUP[model]
        net, X, y, batch, lr = data_and_net(cfg_overrides, device)
        steps = (1 if big else epochs) * (len(X) // batch)
        hands, eagers, compileds, fasts, firsts = [], [], [], [], []
        for _ in range(repeats):  # alternated: the machine drifts between runs
            hands.append(hand_written_step(net, X, y, batch, lr, steps, warmup))
            eagers.append(runner_step(cfg_overrides, warmup))
            compileds.append(runner_step(compiled_overrides, warmup))
            firsts.append(first_steps.seconds[-1])
            # Fast mode: K optimizer steps per Lightning step; the first chunks are warm-up.
            fast = [*compiled_overrides, f"trainer.steps_per_batch={k}"]
            fasts.append(runner_step(fast, max(1, warmup // k)))
        hand = statistics.median(hands)
        rows.append(
            {
                "model": model,
                "batch": batch,
                "mode": mode,
                "hand_ms": hand * 1e3,
                "eager_ms": statistics.median(eagers) * 1e3,
                "compiled_ms": statistics.median(compileds) * 1e3,
                "fast_k": k,
                # The first run's compiles from scratch; later ones find torch's on-disk cache.
                "first_step_seconds": firsts,
                "vs_eager": [e / c for e, c in zip(eagers, compileds, strict=True)],
                "vs_hand": [h / c for h, c in zip(hands, compileds, strict=True)],
                "fast_vs_hand": [h / f for h, f in zip(hands, fasts, strict=True)],
            }
        )
        r = rows[-1]
        print(
            f"{model:<6} batch {batch:<5} hand {r['hand_ms']:7.2f} ms/step   eager runner "
            f"{r['eager_ms']:7.2f}   compiled {r['compiled_ms']:7.2f} "
            f"({statistics.median(r['vs_eager']):.2f}× eager, "
            f"{statistics.median(r['vs_hand']):.2f}× hand)   compiled + fast mode K={k} "
            f"{statistics.median(r['fast_vs_hand']):.2f}× hand   first step (compiling) "
            + ", ".join(f"{t:.1f}" for t in r["first_step_seconds"])
            + " s"
        )
    checks = []
    for r in rows:
        # The stretch goal: on a GPU, mlp and rgnet against the hand-written loop; the other
        # ratios are reported, with no target.
        target = 1.0 if on_gpu and r["model"] in ("mlp", "rgnet") else None
        what = f"{r['model']} (batch {r['batch']}) throughput, trainer.compile={r['mode']}"
        checks += [
            check(what, "the same run eager", r["vs_eager"], None, True),
            check(what, "hand-written loop", r["vs_hand"], target, True),
            check(
                f"{what} + fast mode K={r['fast_k']}",
                "hand-written loop",
                r["fast_vs_hand"],
                target,
                True,
            ),
        ]
    gpu = torch.cuda.get_device_name(device) if on_gpu else None
    save(f"compile_mode-{device.type}", {"rows": rows}, gpu=gpu, checks=checks)
    print("(ratios: throughput relative to the baseline named)")


if __name__ == "__main__":
    main()
