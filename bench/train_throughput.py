"""Training throughput: the runner against a hand-written PyTorch loop, same model, batch,
optimizer and data on the device, timed side by side in one run (ratios, not seconds).

Also timed: plain Lightning fed the same on-device minibatches with nothing of the runner's
(Lightning's own cost: the runner's extras may add ≤ 5 % to it), and, for context, the common
Lightning + DataLoader(TensorDataset) setup.
Targets (issue #4), default mode: ≥ 0.6× the hand-written loop for mlp and rgnet at batch 256
on the CPU (≥ 0.75× on a GPU), ≥ 0.95× for the 38M-parameter MLP; fast mode
(trainer.steps_per_batch=K): ≥ 0.8× on the CPU, ≥ 0.9× on a GPU. Default mode is timed two
ways: within epochs, and end to end (per step from a 1- and a 4-epoch run, epoch boundaries
included).

    python bench/train_throughput.py                 # CPU: mlp, rgnet (batch 256), big (batch 256)
    python bench/train_throughput.py --device cuda   # GPU: big at batch 4096
"""

import argparse
import itertools
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.nn import functional as F

import runner

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import check, save

BIG = (
    "model.input_shape=[1024]",
    "model.net=[{type: Linear, in_features: 1024, out_features: 4096}, ReLU,"
    " {type: Linear, in_features: 4096, out_features: 4096}, ReLU,"
    " {type: Linear, in_features: 4096, out_features: 4096}, ReLU,"
    " {type: Linear, in_features: 4096, out_features: 10}]",
)
MODELS = {"mlp": ("model=mlp",), "rgnet": ("model=rgnet",), "big": ("model=mlp", *BIG)}


class StepTimer(pl.Callback):
    """Wall time per training step, within epochs: what happens between epochs (validation,
    the checkpoint) is not training throughput and is left out, as is a warm-up."""

    def __init__(self, warmup: int):
        self.warmup, self.marks = warmup, []

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize()
        self.marks.append((trainer.current_epoch, trainer.global_step, time.perf_counter()))

    def seconds_per_step(self) -> float:
        spans = [
            (t1 - t0, s1 - s0)
            for (e0, s0, t0), (e1, s1, t1) in itertools.pairwise(self.marks[self.warmup :])
            if e0 == e1
        ]
        return sum(t for t, _ in spans) / sum(n for _, n in spans)


def overrides(model: str, device: str, batch: int, samples: int, epochs: int) -> list[str]:
    return [
        *MODELS[model],
        f"device={'gpu' if device == 'cuda' else 'cpu'}",
        f"data.batch_size={batch}",
        f"data.num_samples={samples}",
        f"trainer.max_epochs={epochs}",
        "optim=sgd",
    ]


def runner_step(cfg_overrides: list[str], warmup: int) -> float:
    timer = StepTimer(warmup)
    from runner.config.spec import parse_run
    from runner.train.fit import train

    cfg = runner.compose(cfg_overrides)
    with tempfile.TemporaryDirectory() as tmp:
        train(parse_run(cfg), Path(tmp), extra_callbacks=(timer,))
    return timer.seconds_per_step()


def runner_marginal(cfg_overrides: list[str], epochs: tuple[int, int] = (1, 4)) -> float:
    """End to end: seconds per optimizer step from two run lengths, so that what a user waits
    for at every epoch boundary (validation, checkpoints, the statistics' flush) counts, and
    what a run pays once (build, test, verification) cancels out. No plots: drawn once per
    run, they would cancel too, but their time varies more than the difference measured."""
    from runner.config.spec import parse_run
    from runner.train.fit import train

    runs = []
    for n in epochs:
        cfg = runner.compose([*cfg_overrides, f"trainer.max_epochs={n}", "stats.plots=false"])
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            result = train(parse_run(cfg), Path(tmp))
            runs.append((time.perf_counter() - start, result["global_step"]))
    (t1, s1), (t2, s2) = runs
    return (t2 - t1) / (s2 - s1)


def data_and_net(cfg_overrides: list[str], device: torch.device):
    """The same network (built by the runner) and the same data, for the baselines."""
    from hydra.utils import instantiate

    cfg = runner.compose(cfg_overrides)
    net = runner.build_net(cfg, device=device)
    data = instantiate(cfg.data)
    with torch.no_grad():
        data.output_shape = tuple(
            net(torch.zeros(2, *cfg.model.input_shape, device=device)).shape[1:]
        )
    data.setup()
    X, y = data.splits["train"]
    return net, X.to(device), y.to(device), cfg.data.batch_size, cfg.optim.optimizer.lr


def hand_written_step(net, X, y, batch, lr, steps: int, warmup: int) -> float:
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    times, step = [], 0
    while step < steps:
        order = torch.randperm(len(X), device=X.device)
        for start in range(0, len(X), batch):
            idx = order[start : start + batch]
            loss = F.mse_loss(net(X[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if X.device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter())
            step += 1
    t = times[warmup:]
    return (t[-1] - t[0]) / (len(t) - 1)


class _Plain(pl.LightningModule):
    def __init__(self, net, lr, log_every_step: bool):
        super().__init__()
        self.net, self.lr, self.log_every_step = net, lr, log_every_step

    def training_step(self, batch, _):
        x, y = batch
        loss = F.mse_loss(self.net(x), y)
        if self.log_every_step:  # what the template does; the bare baseline logs nothing
            self.log("train/loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)


class _OnDevice:
    """Shuffled minibatches indexed out of tensors already on the device: what the runner's
    data modules do, without anything else of the runner's."""

    def __init__(self, X, y, batch):
        self.X, self.y, self.batch = X, y, batch

    def __len__(self) -> int:
        return -(-len(self.X) // self.batch)

    def __iter__(self):
        order = torch.randperm(len(self.X), device=self.X.device)
        for start in range(0, len(self.X), self.batch):
            idx = order[start : start + self.batch]
            yield self.X[idx], self.y[idx]


def lightning_step(net, X, y, batch, lr, device, epochs: int, warmup: int, on_device: bool):
    """Plain Lightning: a module with the loss and the optimizer and nothing else, fed either
    on-device minibatches (`on_device`, Lightning's own cost) or, as the popular template does,
    a DataLoader(TensorDataset) over CPU tensors."""
    loader = (
        _OnDevice(X, y, batch)
        if on_device
        else torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(X.cpu(), y.cpu()), batch_size=batch, shuffle=True
        )
    )
    timer = StepTimer(warmup)
    trainer = pl.Trainer(
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=1,
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    trainer.fit(_Plain(net, lr, log_every_step=not on_device), loader)
    return timer.seconds_per_step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", default="mlp,rgnet,big")
    parser.add_argument("--quick", action="store_true", help="mlp and rgnet, 2 repetitions")
    args = parser.parse_args()
    repeats = 2 if args.quick else 3
    if args.quick:
        args.models = "mlp,rgnet"
    logging.getLogger("runner").setLevel(logging.WARNING)
    device = torch.device(args.device)
    on_gpu = device.type == "cuda"
    rows = []
    for model in args.models.split(","):
        big = model == "big"
        batch = 4096 if big and on_gpu else 256
        # 80 % of the samples are the training split: 200 steps per epoch (big: 24)
        samples = batch * (24 if big else 200) * 10 // 8
        epochs = 1 if big else 3
        cfg_overrides = overrides(model, args.device, batch, samples, epochs)
        warmup = 3
        net, X, y, batch, lr = data_and_net(cfg_overrides, device)
        steps = epochs * (len(X) // batch)
        hands, ours_all, plains, marginals = [], [], [], []
        for _ in range(repeats):  # alternated: the machine drifts between runs
            hands.append(hand_written_step(net, X, y, batch, lr, steps, warmup))
            ours_all.append(runner_step(cfg_overrides, warmup))
            plains.append(lightning_step(net, X, y, batch, lr, device, epochs, warmup, True))
            # Not for the 38M model (its run lengths take minutes on a CPU); once when quick.
            if not big and not (args.quick and marginals):
                marginals.append(runner_marginal(cfg_overrides))
        hand, ours = statistics.median(hands), statistics.median(ours_all)
        plain = statistics.median(plains)
        # Fast mode: K optimizer steps per Lightning step; time per optimizer step.
        k = 8 if big else 20
        fasts = [
            runner_step([*cfg_overrides, f"trainer.steps_per_batch={k}"], 1) for _ in range(repeats)
        ]
        fast = statistics.median(fasts)
        template = lightning_step(net, X, y, batch, lr, device, epochs, warmup, False)
        rows.append(
            {
                "model": model,
                "batch": batch,
                "hand_ms": hand * 1e3,
                "runner_ms": ours * 1e3,
                "plain_ms": plain * 1e3,
                "template_ms": template * 1e3,
                "runner_ratio": hand / ours,
                "fast_k": k,
                "fast_ratio": hand / fast,
                "plain_ratio": hand / plain,
                "template_ratio": hand / template,
                # per repetition, timed back to back: the runner against plain Lightning
                "over_plain": [p / o for p, o in zip(plains, ours_all, strict=True)],
                "default_ratios": [h / o for h, o in zip(hands, ours_all, strict=True)],
                "fast_ratios": [hand / f for f in fasts],
                "end_to_end_ratios": [h / m for h, m in zip(hands, marginals, strict=False)],
            }
        )
        r = rows[-1]
        end_to_end = statistics.median(r["end_to_end_ratios"] or [float("nan")])
        print(
            f"{model:<6} batch {batch:<5} hand {r['hand_ms']:8.2f} ms/step   "
            f"runner {r['runner_ratio']:.2f}× (end to end {end_to_end:.2f}×)   "
            f"fast mode (K={k}) {r['fast_ratio']:.2f}×   "
            f"plain Lightning {r['plain_ratio']:.2f}×   "
            f"Lightning+DataLoader {r['template_ratio']:.2f}×"
        )
    targets = {  # issue #13: (default, fast) on the CPU and on a GPU
        "cpu": {"mlp": (0.6, 0.8), "rgnet": (0.6, 0.8), "big": (0.95, 0.95)},
        "cuda": {"mlp": (0.75, 0.9), "rgnet": (0.75, 0.9), "big": (0.95, 0.95)},
    }[device.type]
    checks = []
    for r in rows:
        default, fast_target = targets[r["model"]]
        what = f"{r['model']} (batch {r['batch']}) throughput"
        checks += [
            check(f"{what}, default", "hand-written loop", r["default_ratios"], default, True),
            check(
                f"{what}, fast mode K={r['fast_k']}",
                "hand-written loop",
                r["fast_ratios"],
                fast_target,
                True,
            ),
            *(
                [
                    check(
                        f"{what}, default, end to end (epoch boundaries included)",
                        "hand-written loop",
                        r["end_to_end_ratios"],
                        default,
                        True,
                        note="per step from a 1- and a 4-epoch run",
                    )
                ]
                if r["end_to_end_ratios"]
                else []
            ),
            check(
                f"{what}, default",
                "plain Lightning, on-device batches",
                r["over_plain"],
                0.95,
                True,
                note="the runner's extras ≤ 5 % on Lightning's own cost",
            ),
            check(
                f"{what}, default",
                "Lightning + DataLoader (the usual template)",
                r["runner_ratio"] / r["template_ratio"],
                None,
                True,
                note="for context: what most Lightning code does",
            ),
        ]
    save(f"train_throughput-{device.type}", {"rows": rows}, gpu=_gpu(device), checks=checks)
    print("(ratios: throughput relative to the hand-written loop)")


def _gpu(device: torch.device) -> str | None:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else None


if __name__ == "__main__":
    main()
