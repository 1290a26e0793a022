"""The NaN/Inf guard: no bad step goes unnoticed, no bad weights are kept as good, and no
per-step wait for the device.

Before every optimizer step the guard writes the norm of each parameter's gradient and the loss
into one row of a small buffer on the device: two ops, nothing read back. The rows are read back
(one host read) at checks: after 1, 2, 4, ... steps of each fit, then every
`trainer.log_every_n_steps` steps (when the runner writes the metrics anyway), before every
validation, before every checkpoint is written, and at the end. A check that finds a non-finite
value names the first bad step and its first offending parameter, then keeps
`checkpoints/last-good.ckpt`, a state from before that step:
- when the check falls on the bad step itself (before it is applied), the live weights;
- when the optimizer is fused (`+optim.optimizer.fused=true`; SGD, Adam, AdamW), every step from
  the first bad one on is skipped on the device (the optimizer's `found_inf`), so the live
  weights are exactly those before it (with `stats.on_nan=stop`);
- otherwise the state at the last clean check, copied to host memory (the weights, buffers and
  optimizer state; copied at most as often as keeps its cost near 2% of the training time).
With `stats.on_nan: stop` the run then ends; under DDP every rank sees the same synchronized
gradients, so all stop together. Under a gradient scaler (16-mixed precision) an overflowing
gradient is the scaler's business (it skips the step): only a non-finite loss counts.
"""

import contextlib
import logging
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from runner.params.stats import Tracked, tracked_parameters
from runner.train.callbacks.snapshot import Snapshot
from runner.train.failures import NonFiniteTraining, hand_over

log = logging.getLogger("runner")

_EXPLODED = 1e3  # the weights' norm grew this many times: not a "good" state to keep
_SNAPSHOT_SHARE = 0.02  # of the training time, at most, spent copying the last clean state


class NonFiniteGuard(pl.Callback):
    def __init__(self, run_dir: Path, on_nan: str, every_n_steps: int):
        self.run_dir, self.on_nan, self.every = run_dir, on_nan, max(1, every_n_steps)
        self.bad_steps = 0  # non-finite steps seen (with on_nan=warn, the run goes on)
        self.params: list[Tracked] = []
        self._saving = False

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Not on_fit_start: a resumed run's step counter is restored only after it.
        self.params = tracked_parameters(pl_module.net)  # type: ignore[arg-type]
        self.start_step, self.due = trainer.global_step, 1
        self.start_norm = _norm([t.tensor for t in self.params])
        self.optimizer = trainer.optimizers[0]
        scaler = getattr(trainer.precision_plugin, "scaler", None)
        self.loss_only = scaler is not None
        device = pl_module.device
        self.rows = torch.empty(self.every + 1, len(self.params) + 1, device=device)
        self.count, self.layout = 0, list(range(len(self.params)))
        self.no_loss = torch.zeros((), device=device)
        self.snapshot = Snapshot(pl_module, self.optimizer)
        # Steps between copies: set once, from the first copy's cost and the steps' pace, the
        # same on every DDP rank (they must agree on which state they keep).
        self.copy_every: int | None = None
        self.first_copy = (0.0, 0)  # (time, step) of the first copy
        self.found: torch.Tensor | None = None
        self.last_row: torch.Tensor | None = None
        # Floating buffers (BatchNorm's running statistics) at the last clean check, on the
        # device: a bad step's forward has already updated the live ones.
        self.buffers = [b for b in pl_module.buffers() if b.is_floating_point()]
        self.clean_buffers = [b.detach().clone() for b in self.buffers]
        if self.on_nan == "stop" and self._skips_on_device():
            self.found = torch.zeros((), device=device)
            self.optimizer.found_inf = self.found  # type: ignore[attr-defined]

    def _skips_on_device(self) -> bool:
        """Whether the optimizer can skip a step on the device (torch's fused implementations)."""
        fused = all(group.get("fused") for group in self.optimizer.param_groups)
        return (
            fused
            and getattr(self.optimizer, "_step_supports_amp_scaling", False)
            and (not self.loss_only)
        )

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any
    ) -> None:
        have = [i for i, t in enumerate(self.params) if t.tensor.grad is not None]
        if have != self.layout or self.count == len(self.rows):
            self.check(trainer, pl_module)  # a new set of gradients, or the buffer is full
            self.layout = have
        running = getattr(pl_module, "running", None)
        loss = getattr(running, "step_loss", None)  # summed over accumulated micro-batches
        if running is not None:
            running.step_loss = None
        row = self.rows[self.count, : len(have) + 1]
        grads = [self.params[i].tensor.grad for i in have]
        torch.stack([*torch._foreach_norm(grads), self.no_loss if loss is None else loss], out=row)  # type: ignore[arg-type]
        self.count, self.last_row = self.count + 1, row
        if self.found is not None:  # sticky: from the first bad step on, every step is skipped
            written = self.rows[: self.count, : len(have) + 1]
            torch.logical_not(torch.isfinite(written).all(), out=self.found)
        done = trainer.global_step + 1 - self.start_step  # steps of this fit, this one included
        if done >= self.due:
            # After 1, 2, 4, ... steps, then every `every` (with the runner's metric writes): a
            # bad early step is caught with a recent clean state at hand, and steady training
            # reads nothing back in between.
            self.due = 2 * done if 2 * done <= self.every else (done // self.every + 1) * self.every
            self.check(trainer, pl_module, pending=True)

    def last_grad_norms(self) -> tuple[list[int], torch.Tensor] | None:
        """The last step's gradient norms, on the device: which parameters, and their norms."""
        if self.last_row is None:
            return None
        return self.layout, self.last_row[: len(self.layout)].clone()

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.state.fn == "fit" and self.params:
            self.check(trainer, pl_module)

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if self.params and not self._saving:  # nothing bad is saved without the guard knowing
            self.check(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.check(trainer, pl_module)
        if self.bad_steps:
            log.warning("stats: %d optimizer step(s) had NaN/Inf gradients", self.bad_steps)

    def check(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, pending: bool = False
    ) -> None:
        """Read the rows since the last check (one host read). `pending`: the last row's step
        is not applied yet (the check runs inside its optimizer step)."""
        step = trainer.global_step
        rows = self.rows[: self.count, : len(self.layout) + 1].tolist() if self.count else []
        first_row = step - self.count + (1 if pending else 0)  # the step of rows[0]
        self.count = 0
        bad = [j for j, row in enumerate(rows) if not _finite(row[-1:] if self.loss_only else row)]
        if not bad:
            if self.buffers:
                torch._foreach_copy_(self.clean_buffers, self.buffers)
            self._maybe_snapshot(trainer, step, scheduled=pending)
            return
        seen_before = self.bad_steps
        self.bad_steps += len(bad)
        if seen_before:  # warn mode going on: the first bad step said it all
            return
        j = bad[0]
        row, bad_step = rows[j], first_row + j
        names = [self.params[i].name for i in self.layout]
        first = next(
            (n for n, v in zip(names, row[:-1], strict=True) if not math.isfinite(v)), "the loss"
        )
        message = bad_step_text(bad_step, first, row) + self._keep_last_good(
            trainer, pl_module, bad_step, exact=pending and j == len(rows) - 1
        )
        if self.on_nan == "warn":
            log.warning("stats: %s; going on (stats.on_nan=warn)", message)
            return
        stop = NonFiniteTraining(message + "; stopped (stats.on_nan=stop)")
        raise hand_over(self.run_dir, stop, trainer.world_size)

    def _maybe_snapshot(self, trainer: pl.Trainer, step: int, scheduled: bool) -> None:
        """Copy the checked state, unless copying it that often would cost more than its share
        of the training time."""
        if self.found is not None or self.bad_steps:
            return  # a fused optimizer skips bad steps itself; after a bad step nothing is good
        if self.snapshot.step is None:
            self.snapshot.take(step)
            self.first_copy = (time.perf_counter(), step)
            return
        if self.copy_every is None:
            # Decided at a scheduled check (every rank makes it, at the same step), once the
            # steps' pace is known: rank 0's answer for all.
            if not scheduled or step + 1 - self.start_step < self.every:
                if step > self.snapshot.step:  # early on: every clean check (a few, cheap)
                    self.snapshot.take(step)
                return
            start, first = self.first_copy
            pace = (time.perf_counter() - start) / max(1, step - first)
            every = math.ceil(self.snapshot.cost / (_SNAPSHOT_SHARE * pace)) if pace > 0 else 1
            self.copy_every = max(1, int(trainer.strategy.broadcast(every)))
        if step - self.snapshot.step >= self.copy_every:
            self.snapshot.take(step)

    def _keep_last_good(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, bad_step: int, exact: bool
    ) -> str:
        """Save a state from before `bad_step` as last-good.ckpt when one is worth keeping, and
        say what was kept or what the cause is."""
        live = exact or self.found is not None
        if bad_step == self.start_step:
            return first_step_text(resumed=bool(self.start_step))
        kept_step = bad_step if live else self.snapshot.step
        if kept_step is None or kept_step == self.start_step:
            return (
                f"no clean state after the start of this fit was copied before step {bad_step}; "
                "nothing saved (the state it started with would only reproduce this)"
            )
        saved = self.run_dir / "checkpoints" / "last-good.ckpt"
        # The kept state, live for the check and the save: the live weights with the last clean
        # check's buffers (a bad forward has fed BatchNorm), or the clean copy; applied once.
        kept = _swapped(self.buffers, self.clean_buffers) if live else self.snapshot.applied()
        with kept:
            now = _norm([t.tensor for t in self.params])
            good = worth_keeping(self.start_norm, now)
            if good:
                self._saving = True
                try:
                    trainer.save_checkpoint(saved, weights_only=False)
                finally:
                    self._saving = False
        if not good:
            return grown_text(self.start_norm, now, kept_step - self.start_step, self.optimizer)
        if self.on_nan == "stop":  # the run ends on the good state, not the bad one
            if not live:
                self.snapshot.restore()
            elif self.buffers:
                torch._foreach_copy_(self.buffers, self.clean_buffers)
        if kept_step == bad_step:
            return f"the weights before this step are saved in {saved}"
        return (
            f"the weights of step {kept_step} (the last clean copy before it) are saved in {saved}"
        )


def bad_step_text(bad_step: int, first: str, row: list[float]) -> str:
    """The head of the message for a non-finite step: `row` holds the gradient norms of the
    step's parameters, then its loss; `first` names the first bad one ("the loss" for it)."""
    what = "loss" if first == "the loss" else "gradient"
    norm = math.sqrt(sum(v * v for v in row[:-1]))
    return (
        f"non-finite {what} at optimizer step {bad_step}: first in {first} (the loss is "
        f"{row[-1]:.4g}, the global gradient norm {norm}); "
    )


def first_step_text(resumed: bool) -> str:
    cause = "the checkpoint" if resumed else "the initialization (init=...)"
    return (
        "the very first step of this fit fails, from the weights it started with: look at "
        f"{cause} and the data; nothing saved (it would only reproduce this)"
    )


def worth_keeping(start_norm: float, now: float) -> bool:
    """Whether weights of norm `now` (from `start_norm`) are a good state to save."""
    grown = now / start_norm if start_norm > 0 else 1.0
    return math.isfinite(now) and grown <= _EXPLODED


def grown_text(start_norm: float, now: float, steps: int, optimizer: torch.optim.Optimizer) -> str:
    return (
        f"the weights' norm grew from {start_norm:.3g} to {now:.3g} in {steps} step(s): the "
        f"learning rate (lr={_learning_rate(optimizer)}) is likely too high; nothing saved "
        "(those weights are not a good state)"
    )


@contextlib.contextmanager
def _swapped(live: list[torch.Tensor], clean: list[torch.Tensor]) -> Iterator[None]:
    """`clean`'s values in the `live` tensors for the duration of the `with`."""
    if not live:
        yield
        return
    kept = [t.detach().clone() for t in live]
    with torch.no_grad():
        torch._foreach_copy_(live, clean)
        try:
            yield
        finally:
            torch._foreach_copy_(live, kept)


def _finite(values: list[float]) -> bool:
    return all(math.isfinite(v) for v in values)


def _norm(tensors: list[torch.Tensor]) -> float:
    """The L2 norm of all the tensors together (one host read)."""
    if not tensors:
        return 0.0
    return float(torch.stack(torch._foreach_norm([t.detach() for t in tensors])).norm())


def _learning_rate(optimizer: torch.optim.Optimizer) -> str:
    return ", ".join(f"{g['lr']:g}" for g in optimizer.param_groups)
