"""The runner's own Lightning callbacks besides statistics: `last.ckpt` kept fresh, a graceful
stop on SIGINT/SIGTERM, and where the parameters live once training starts."""

import logging
import signal
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint

from runner.errors import Interrupted

log = logging.getLogger("runner")


class LastCheckpoint(ModelCheckpoint):
    """`checkpoints/last.ckpt`, rewritten (atomically, by the runner's CheckpointIO) at the end of
    every epoch, or every `every_n_steps` optimizer steps for long epochs, and when training ends.

    Lightning's `save_last` writes only when a top-k checkpoint was saved at the same step, so
    with `save_top_k=0` it wrote once, at the very end: a killed run kept nothing recent. This is
    a ModelCheckpoint that keeps one file under one name.
    """

    def __init__(self, dirpath: Path, every_n_steps: int = 0):
        super().__init__(
            dirpath=dirpath,
            filename="last",
            monitor=None,
            save_top_k=1,
            enable_version_counter=False,  # overwrite last.ckpt, never last-v1.ckpt
            every_n_train_steps=every_n_steps or None,
            every_n_epochs=None if every_n_steps else 1,
        )
        self.path = Path(dirpath) / "last.ckpt"

    @property
    def state_key(self) -> str:
        return "LastCheckpoint"  # stable across step intervals: a resume may change it

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        if self._last_global_step_saved != trainer.global_step or not self.path.exists():
            self._save_checkpoint(trainer, str(self.path))  # ended between two saves


class GracefulStop(pl.Callback):
    """SIGINT (Ctrl-C) and SIGTERM (`timeout`, SLURM and other schedulers before they kill) stop
    training at the end of the current step: `last.ckpt` is saved at that step, then
    `Interrupted` ends the run (the runner writes result.json and exits 128 + the signal).
    A second Ctrl-C stops at once, keeping the last saved checkpoint.

    One process only: under DDP, Lightning's own SIGTERM handling stops every rank together.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, last: LastCheckpoint):
        self.last = last
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.world_size > 1 or threading.current_thread() is not threading.main_thread():
            return
        self.received = None
        for signum in self.SIGNALS:
            self._previous[signum] = signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.received is not None:  # asked twice: stop now, keeping the last save
            kept = self.last.path if self.last.path.exists() else None
            raise Interrupted(signum, checkpoint=kept, step=None)
        self.received = signum
        name = signal.Signals(signum).name
        log.warning("%s received: stopping after this step (again to stop at once)", name)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any
    ) -> None:
        if self.received is None:
            return
        self.last._save_checkpoint(trainer, str(self.last.path))
        raise Interrupted(self.received, checkpoint=self.last.path, step=trainer.global_step)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._restore()
        if self.received is not None:  # it came during the last validation: no step followed
            raise Interrupted(self.received, checkpoint=self.last.path, step=trainer.global_step)

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self._restore()

    def _restore(self) -> None:
        while self._previous:
            signum, handler = self._previous.popitem()
            signal.signal(signum, handler)


class ReportPlacement(pl.Callback):
    """One log line with where the parameters live once training starts (the chapter's
    `x.device`); Lightning moves the module back to the CPU after fit, so look now."""

    started = False  # set once training starts (after a resumed checkpoint is restored)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.started = True
        if trainer.is_global_zero:
            where = Counter(str(p.device) for p in pl_module.parameters())
            places = ", ".join(f"{n} tensors on {d}" for d, n in where.items())
            log.info("fit: %s; %d process(es)", places, trainer.world_size)
