"""Every callback a training run gets, in one place and in the order they must run: the
checkpoints first, the guard before the statistics (it checks before they record), the user's
own after the runner's."""

import sys
from dataclasses import dataclass
from pathlib import Path

import pytorch_lightning as pl
from hydra.utils import instantiate
from pytorch_lightning.callbacks import ModelCheckpoint

from runner.config.sections import DEFAULT_OBJECTIVE, TrainingSpec
from runner.train.callbacks.checkpoints import LastCheckpoint, RNGState
from runner.train.callbacks.guard import NonFiniteGuard
from runner.train.callbacks.lifecycle import (
    GracefulStop,
    ProgressBar,
    ReportPlacement,
    WorkerLogging,
)
from runner.train.callbacks.stats import ParameterStats
from runner.train.compiled import CompileNet


@dataclass(frozen=True)
class RunCallbacks:
    """The callbacks the run reads back after fit, and the whole list for the Trainer."""

    best: ModelCheckpoint
    last: LastCheckpoint
    guard: NonFiniteGuard
    stats: ParameterStats
    placement: ReportPlacement
    compiling: bool
    progress_bar: bool  # shown when stderr is a terminal
    all: list[pl.Callback]


def assemble_callbacks(
    run_dir: Path,
    training: TrainingSpec,
    log_every: int,
    extra: tuple[pl.Callback, ...] = (),
) -> RunCallbacks:
    """The runner's callbacks for a fit into `run_dir`, the callbacks group's, then `extra`
    (benchmarks time steps with one). `log_every`: the module's cadence, in optimizer steps."""
    checkpoints = run_dir / "checkpoints"
    stats = training.stats
    guard = NonFiniteGuard(run_dir, stats.on_nan, every_n_steps=log_every)
    parameter_stats = ParameterStats(
        run_dir,
        every_n_steps=stats.every_n_steps,
        wanted=list(stats.stats),
        plots=stats.plots,
        guard=guard,
    )
    best = ModelCheckpoint(
        dirpath=checkpoints,
        filename="best-epoch{epoch:03d}-step{step:06d}",  # no '=': Hydra can parse the path
        auto_insert_metric_name=False,
        monitor=DEFAULT_OBJECTIVE,
    )
    last = LastCheckpoint(checkpoints, every_n_steps=training.trainer.checkpoint_every_n_steps)
    placement = ReportPlacement()
    mode = training.trainer.compile
    progress_bar = sys.stderr.isatty()
    return RunCallbacks(
        best=best,
        last=last,
        guard=guard,
        stats=parameter_stats,
        placement=placement,
        compiling=mode is not None,
        progress_bar=progress_bar,
        all=[
            best,
            last,
            GracefulStop(last),
            RNGState(),
            placement,
            *([CompileNet(mode, run_dir)] if mode else []),
            guard,  # before the statistics: it checks before they record
            parameter_stats,
            WorkerLogging(),
            *([ProgressBar()] if progress_bar else []),
            *(instantiate(target) for _, target in training.callbacks),
            *extra,
        ],
    )
