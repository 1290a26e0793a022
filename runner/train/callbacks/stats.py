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

import logging
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from runner.params.recorder import StatsRecorder
from runner.train.callbacks.guard import NonFiniteGuard

log = logging.getLogger("runner")


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
        self.recorder: StatsRecorder | None = None

    @property
    def recording(self) -> bool:
        return bool(self.wanted)

    @property
    def rows(self) -> list[Any]:
        return self.recorder.rows if self.recorder is not None else []

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Not on_fit_start: a resumed run's step counter is restored only after it.
        self.last = trainer.global_step  # every rank keeps the cadence: the guard checks on all
        if not (self.recording and trainer.is_global_zero):
            return
        net: torch.nn.Module = pl_module.net  # type: ignore[assignment]
        self.recorder = StatsRecorder(net, self.wanted, self.plots)
        self.recorder.start(self.csv)
        self._record(trainer, init=True)

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        # Arm the ReLU hooks only for a batch whose end is a record (the run's last batch is
        # the final record's): free on other steps.
        relus = self.recorder.relus if self.recorder is not None else None
        ahead = getattr(pl_module, "steps_per_batch", 1)
        if relus is not None and (
            self._due(trainer, ahead) or _last_batch(trainer, batch_idx, ahead)
        ):
            relus.armed = True

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
        # Once per epoch, at the end, and when the run fails: a crash keeps everything up to
        # the last epoch without a file write per record.
        if self.recorder is not None:
            self.recorder.flush()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._flush()

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self._flush()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not (self.recording and trainer.is_global_zero) or self.recorder is None:
            return
        if trainer.global_step != self.last:  # the guard checked at its own on_train_end
            self._record(trainer)
        self._flush()
        if self.recorder.relus is not None:
            self.recorder.relus.remove()
        if self.plots:
            draw_plots(self.recorder, self.run_dir)

    def _record(self, trainer: pl.Trainer, init: bool = False) -> None:
        assert self.recorder is not None
        step = trainer.global_step
        self.last = step
        new, metrics = self.recorder.record(step, None if init else self._grad_norms(), init)
        for text in self.recorder.findings(new):
            log.warning("stats: %s", text)
        for logger in trainer.loggers:
            if metrics:
                logger.log_metrics(metrics, step=step)
            if isinstance(logger, pl.loggers.TensorBoardLogger):
                for t in self.recorder.params:
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
        assert self.recorder is not None
        last = self.guard.last_grad_norms()
        if last is None:
            return None
        have, norms = last
        full = torch.full(
            (len(self.recorder.params),), float("nan"), dtype=norms.dtype, device=norms.device
        )
        full[have] = norms
        return full


def draw_plots(recorder: StatsRecorder, run_dir: Path) -> None:
    """plots/weights.png and blocks.png from the record; a failure to draw is a warning."""
    from runner.params.plots import plot

    try:
        written = plot(recorder.rows, recorder.initial, recorder.final_samples(), run_dir / "plots")
    except Exception as e:  # pictures are a view of the CSV: never lose the run for them
        log.warning("stats: plots not drawn (%s: %s); the CSV is whole", type(e).__name__, e)
        return
    names = ", ".join(p.name for p in written)
    log.info("stats: %d rows in param_stats.csv; plots: %s", len(recorder.rows), names)


def _last_batch(trainer: pl.Trainer, batch_idx: int, ahead: int) -> bool:
    """Whether the run's training ends after this batch (as planned: an early stop is not
    known ahead, and its final record has no dead-unit measure)."""
    if trainer.max_steps > 0 and trainer.global_step + ahead >= trainer.max_steps:
        return True
    last_epoch = trainer.max_epochs is not None and trainer.current_epoch >= trainer.max_epochs - 1
    return last_epoch and batch_idx >= trainer.num_training_batches - 1
