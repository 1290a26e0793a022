"""The run's life around the loop: a graceful stop on SIGINT/SIGTERM, where the parameters live
once training starts, the runner's log lines from a DDP worker, the progress bar, and Lightning's
per-step hooks skipped where nothing implements them."""

import logging
import os
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import RichProgressBar

from runner import STOP_SIGNALS
from runner.checkpoint import layout
from runner.checkpoint.files import safe_load
from runner.errors import Interrupted
from runner.train.callbacks.checkpoints import LastCheckpoint

log = logging.getLogger("runner")


class GracefulStop(pl.Callback):
    """SIGINT (Ctrl-C) and SIGTERM (`timeout`, SLURM and other schedulers before they kill) stop
    training at the end of the current step: `last.ckpt` is saved at that step, then
    `Interrupted` ends the run (the runner writes result.json and exits 128 + the signal).
    A second Ctrl-C stops at once, keeping the last saved checkpoint.

    One process only: under DDP, Lightning's own SIGTERM handling stops every rank together.
    """

    SIGNALS = STOP_SIGNALS

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
            # The first signal names the stop (SIGTERM then Ctrl-C: still 143, as a scheduler
            # that sent SIGTERM expects).
            raise Interrupted(self.received, checkpoint=kept, step=None)
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


# How long spawned DDP workers get to stop on a forwarded signal before they are killed.
WORKER_GRACE_S = 20.0


def stop_workers(trainer: pl.Trainer, stop: Interrupted, last: Path) -> Interrupted:
    """A signal to the launching process of spawned DDP workers (device=ddp_cpu): the workers
    get it too (Lightning stops every rank together on SIGTERM) and are waited for, killed past
    WORKER_GRACE_S, so that nothing rewrites `last` once the run is recorded as interrupted.
    Returns the stop with the checkpoint that is on disk then, and its step."""
    procs = getattr(trainer.strategy.launcher, "procs", None) or []
    if not procs:  # not a spawning launcher: this process is rank 0 and stopped its own ranks
        return stop
    if threading.current_thread() is threading.main_thread():
        for signum in GracefulStop.SIGNALS:  # the process is stopping: repeats must not cut it
            signal.signal(signum, signal.SIG_IGN)
    for proc in procs:
        if proc.is_alive() and proc.pid is not None:
            # SIGINT whichever signal came: each rank stops at once (KeyboardInterrupt). Lightning's
            # SIGTERM handler broadcasts from inside the handler, which deadlocked the ranks here.
            os.kill(proc.pid, signal.SIGINT)
    deadline = time.monotonic() + WORKER_GRACE_S
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            log.warning("DDP worker %s did not stop in %.0f s: killed", proc.pid, WORKER_GRACE_S)
            proc.kill()
            proc.join()
    if not last.is_file():
        return Interrupted(stop.signum)
    step = layout.global_step(safe_load(last))
    return Interrupted(stop.signum, checkpoint=last, step=int(step) if step is not None else None)


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


class WorkerLogging(pl.Callback):
    """Rank 0 of a spawned DDP worker set logs the runner's lines where the launching process
    does (the console and `runner.log`): workers start with no logging set up, so the `fit:`
    and `stats:` lines of a `device=ddp_cpu` run were lost. Other ranks stay quiet."""

    def __init__(self) -> None:
        self.parent = os.getpid()
        self.targets: list[
            tuple[str, str, str | None, str | None]
        ] = []  # kind, where, fmt, datefmt
        logger: logging.Logger | None = log
        while logger is not None:  # the handlers a record from `log` reaches (Hydra's on root)
            for h in logger.handlers:
                fmt = h.formatter._fmt if h.formatter else None
                datefmt = h.formatter.datefmt if h.formatter else None
                if isinstance(h, logging.FileHandler):
                    self.targets.append(("file", h.baseFilename, fmt, datefmt))
                elif isinstance(h, logging.StreamHandler) and h.stream in (sys.stderr, sys.stdout):
                    stream = "stdout" if h.stream is sys.stdout else "stderr"
                    self.targets.append(("stream", stream, fmt, datefmt))
            logger = logger.parent if logger.propagate else None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if os.getpid() == self.parent or not trainer.is_global_zero or log.handlers:
            return
        for kind, where, fmt, datefmt in self.targets:
            handler: logging.Handler = (
                logging.FileHandler(where, mode="a")
                if kind == "file"
                else logging.StreamHandler(getattr(sys, where))
            )
            handler.setFormatter(logging.Formatter(fmt, datefmt))
            log.addHandler(handler)
        if self.targets:
            log.setLevel(logging.INFO)
            log.propagate = False  # the worker's root logger has Lightning's own handlers


class ProgressBar(RichProgressBar):
    """Lightning's bar with the current training metrics (the means since the last log write,
    not the previous epoch's) and numbers to 4 significant digits: a loss of 1.8e-4 is not
    "0.000"."""

    def get_metrics(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule
    ) -> dict[str, int | str | float | dict[str, float]]:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.update(getattr(getattr(pl_module, "running", None), "latest", {}))
        return {k: f"{v:.4g}" if isinstance(v, float) else v for k, v in metrics.items()}


# Hooks Lightning calls at every optimizer step or batch. On the module, only the training
# ones: Lightning reads the signatures of its evaluation batch hooks.
MODULE_STEP_HOOKS = (
    "on_train_batch_start",
    "on_train_batch_end",
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_before_zero_grad",
)
CALLBACK_STEP_HOOKS = (
    *MODULE_STEP_HOOKS,
    "on_validation_batch_start",
    "on_validation_batch_end",
    "on_test_batch_start",
    "on_test_batch_end",
)


def skip_empty_hooks(trainer: pl.Trainer, module: pl.LightningModule) -> None:
    """Let Lightning skip the per-step hooks nobody implements.

    Lightning calls each hook on every callback, inherited no-ops included, each inside a
    profiler context: about 25 µs per callback per step here, 15 % of a small model's step with
    the runner's callbacks. It skips a hook that is not callable, so the inherited no-ops are
    set to None on the instances (the classes stay as they are).
    """
    callbacks: list[pl.Callback] = trainer.callbacks  # type: ignore[attr-defined]
    owners = [(c, pl.Callback, CALLBACK_STEP_HOOKS) for c in callbacks]
    for owner, base, hooks in [*owners, (module, pl.LightningModule, MODULE_STEP_HOOKS)]:
        for hook in hooks:
            inherited = getattr(type(owner), hook, None) is getattr(base, hook, None)
            if inherited and hook not in vars(owner):  # one set on the instance is kept
                setattr(owner, hook, None)
