"""The parameter-statistics callback, for training.

Statistics (runner.params.stats) at init, every `stats.every_n_steps` optimizer steps and at the
end: appended to `param_stats.csv` (long format: step, kind, name, block, stat, value; written
once per epoch, at the end, and when the run fails), per-block
norm / gradient norm / update ratio to the loggers (weight and gradient histograms too with
logger=tensorboard), and plots in `plots/` when training ends. Records start where the fit
starts (a resumed run goes on counting from its checkpoint's step). The statistics also
diagnose (runner.params.diagnosis): a warning, once, names a block whose gradient norm is
exactly 0 in consecutive records and a ReLU layer most of whose units are dead.

Gradient norms come from the NaN/Inf guard (runner.train.callbacks.guard), which computes them at
every optimizer step anyway; a record first lets the guard check the steps since its last check.
"""

import csv
import logging
import math
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from runner.params import stats
from runner.params.diagnosis import Diagnosis, ReluWatch, activation_rows
from runner.train.callbacks.guard import NonFiniteGuard

log = logging.getLogger("runner")

CSV_COLUMNS = ("step", "kind", "name", "block", "stat", "value")
LOGGED = ("norm", "grad_norm", "update_ratio")  # per block, to the Lightning loggers
_SAMPLE = 20_000  # values per tensor kept for the init-vs-end histograms


class ParameterStats(pl.Callback):
    def __init__(
        self,
        run_dir: Path,
        every_n_steps: int,
        wanted: list[str],
        plots: bool,
        guard: NonFiniteGuard,
    ):
        self.run_dir = run_dir
        self.every = every_n_steps
        self.wanted = tuple(wanted)
        self.plots, self.guard = plots, guard
        self.csv = run_dir / "param_stats.csv"
        self.rows: list[tuple[int, str, str, str, str, float]] = []
        self.pending: list[tuple[int, str, str, str, str, float]] = []  # not on disk yet
        self.initial: dict[str, torch.Tensor] = {}
        self.diagnosis = Diagnosis()
        self.relus: ReluWatch | None = None

    @property
    def recording(self) -> bool:
        return bool(self.wanted)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Not on_fit_start: a resumed run's step counter is restored only after it.
        net: torch.nn.Module = pl_module.net  # type: ignore[assignment]
        self.params = stats.tracked_parameters(net)
        self.block_by_name = {t.name: t.block for t in self.params}
        self.last = trainer.global_step  # every rank keeps the cadence: the guard checks on all
        if not (self.recording and trainer.is_global_zero):
            return
        grads, updates = "grad_norm" in self.wanted, "update_ratio" in self.wanted
        self.computer = stats.StatsComputer(self.params, with_grads=grads, with_updates=updates)
        buffers = stats.tracked_buffers(net)
        self.buffers = stats.StatsComputer(buffers, False, False) if buffers else None
        with self.csv.open("w", newline="") as f:
            csv.writer(f).writerow(CSV_COLUMNS)
        if "dead_units" in self.wanted:
            self.relus = ReluWatch(net)
        if self.plots:
            self.initial = {t.name: _sample(t.tensor) for t in self.params}
        self._record(trainer, init=True)

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any
    ) -> None:
        # Arm the ReLU hooks only for a batch whose end is a record: free on other steps.
        if self.relus is not None and self._due(
            trainer, ahead=getattr(pl_module, "steps_per_batch", 1)
        ):
            self.relus.armed = True

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if not (self.recording and self._due(trainer)):
            return
        self.last = trainer.global_step
        self.guard.check(trainer, args[0])  # on every rank; in stop mode no record of a bad state
        if trainer.is_global_zero:
            self._record(trainer)

    def _due(self, trainer: pl.Trainer, ahead: int = 0) -> bool:
        """Whether a record is due once `ahead` more optimizer steps are done."""
        return bool(self.every) and trainer.global_step + ahead - self.last >= self.every

    def _flush(self) -> None:
        """Append the pending rows: once per epoch, at the end, and when the run fails, so a
        crash keeps everything up to the last epoch without a file write per record."""
        if self.pending:
            with self.csv.open("a", newline="") as f:
                csv.writer(f).writerows(self.pending)
            self.pending = []

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._flush()

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self._flush()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not (self.recording and trainer.is_global_zero):
            return
        if trainer.global_step != self.last:  # the guard checked at its own on_train_end
            self._record(trainer)
        self._flush()
        if self.relus is not None:
            self.relus.remove()
        if self.plots:
            self._plot()

    def _plot(self) -> None:
        from runner.params.plots import plot

        try:
            final = {t.name: _sample(t.tensor) for t in self.params}
            written = plot(self.rows, self.initial, final, self.run_dir / "plots")
        except Exception as e:  # pictures are a view of the CSV: never lose the run for them
            log.warning("stats: plots not drawn (%s: %s); the CSV is whole", type(e).__name__, e)
            return
        names = ", ".join(p.name for p in written)
        log.info("stats: %d rows in %s; plots: %s", len(self.rows), self.csv.name, names)

    def _record(self, trainer: pl.Trainer, init: bool = False) -> None:
        step = trainer.global_step
        self.last = step
        values = self.computer.compute(None if init else self._grad_norms())
        new = []
        for row_name, row in values.items():
            kind, name = (
                ("block", row_name[6:])
                if row_name.startswith("block:")
                else ("parameter", row_name)
            )
            block = name if kind == "block" else self.block_by_name[name]
            for stat in self.wanted:
                if stat not in row or (init and stat in ("grad_norm", "update_ratio")):
                    continue
                if stat == "grad_norm" and math.isnan(row[stat]):
                    continue  # no gradient (frozen, or unused by the loss): absent, not 0
                new.append((step, kind, name, block, stat, row[stat]))
        if self.buffers is not None:
            for name, row in self.buffers.compute().items():
                if not name.startswith("block:"):
                    block = stats.block_of(name)
                    new += [
                        (step, "buffer", name, block, s, row[s]) for s in self.wanted if s in row
                    ]
        if self.relus is not None:
            new += activation_rows(step, self.relus.take())
        for finding in self.diagnosis.update(new):
            log.warning("stats: %s", finding.text)
        self.rows += new
        self.pending += new
        metrics = {f"stats/{n}/{s}": v for _, k, n, _, s, v in new if k == "block" and s in LOGGED}
        for logger in trainer.loggers:
            if metrics:
                logger.log_metrics(metrics, step=step)
            if isinstance(logger, pl.loggers.TensorBoardLogger):
                for t in self.params:
                    logger.experiment.add_histogram(
                        f"weights/{t.name}", t.tensor.detach().float().cpu(), step
                    )
                    if t.tensor.grad is not None:
                        logger.experiment.add_histogram(
                            f"grads/{t.name}", t.tensor.grad.float().cpu(), step
                        )

    def _grad_norms(self) -> torch.Tensor | None:
        """Per tracked tensor, its gradient's norm at the last optimizer step (NaN: none)."""
        # Kept by the guard: after the last step the gradients may be gone, and the final
        # record must not show 0 for them.
        last = self.guard.last_grad_norms()
        if last is None:
            return None
        have, norms = last
        full = torch.full((len(self.params),), float("nan"), dtype=norms.dtype, device=norms.device)
        full[have] = norms
        return full


def _sample(t: torch.Tensor) -> torch.Tensor:
    flat = t.detach().reshape(-1).float()
    if flat.numel() > _SAMPLE:  # an evenly spaced sample: enough for a histogram
        flat = flat[:: flat.numel() // _SAMPLE]
    return flat.cpu().clone()
