"""task=train: data → module → Trainer.fit → test → reload the checkpoint and verify it."""

import logging
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from hydra.utils import instantiate

from runner.checkpoint import layout
from runner.checkpoint.files import safe_load
from runner.checkpoint.resume import check_resume
from runner.checkpoint.verify import verify
from runner.config.device import resolve_device
from runner.config.sections import TrainerSpec, TrainingSpec
from runner.config.spec import RunSpec
from runner.errors import ConfigError, Interrupted, RunFailed, first_line
from runner.params.tensors import distinct_parameters
from runner.trackers.tracking import Trackers, ended
from runner.train import outcome, vector_finish
from runner.train.build import build_module
from runner.train.callbacks.assemble import RunCallbacks, assemble_callbacks
from runner.train.callbacks.checkpoints import AtomicCheckpointIO
from runner.train.callbacks.lifecycle import skip_empty_hooks, stop_workers
from runner.train.compiled import compile_failure
from runner.train.data_user import as_runner_data
from runner.train.evaluate import evaluate
from runner.train.failures import forget_handover, handed_over
from runner.train.module import RunnerModule
from runner.train.next_run import resume_for
from runner.train.trainer import lightning_refusal, trainer_arguments, trainer_placement

log = logging.getLogger("runner")


def train(
    spec: RunSpec, run_dir: Path, extra_callbacks: tuple[pl.Callback, ...] = ()
) -> dict[str, Any]:
    """Fit, test, checkpoint, then reload the last checkpoint from itself alone and verify it.

    `extra_callbacks` join the runner's own (benchmarks time steps with one). Experiment
    trackers (MLflow, W&B) get the run's artifacts and its outcome at the end, however it ends.
    Raises ConfigError for what only shows once the model is built, RunFailed when training
    cannot finish (NaN/Inf, torch.compile), Interrupted on SIGINT/SIGTERM.
    """
    training = spec.training
    assert training is not None  # parse_run parses it for task=train
    trackers = Trackers(training.loggers, run_dir)
    trackers.start()  # before anything is built: an unreachable store is a config error
    trained = vector_finish.take(vector_finish.job_number(), spec)  # a vectorized sweep's member
    try:
        if trained is not None:
            result = vector_finish.finish(trained, spec, run_dir, trackers)
        else:
            result = _train(spec, training, run_dir, trackers, extra_callbacks)
    except BaseException as e:
        trackers.finish(ok=False, interrupted=not isinstance(e, Exception), result=ended(e))
        raise
    trackers.finish(ok=result["verification"]["ok"], result=result)
    return result


def _train(
    spec: RunSpec,
    training: TrainingSpec,
    run_dir: Path,
    trackers: Trackers,
    extra_callbacks: tuple[pl.Callback, ...],
) -> dict[str, Any]:
    placement = resolve_device(spec.device)
    log.info("device: %s", placement.reason)
    pl.seed_everything(spec.seed, workers=True, verbose=False)
    data = as_runner_data(instantiate(training.data.section))
    module = build_module(spec, data, placement)
    if spec.ckpt_path is not None:
        _check_resume(spec.ckpt_path, module, training)
    callbacks = assemble_callbacks(run_dir, training, module.log_every, extra_callbacks)
    where = trainer_placement(spec.device, placement)
    trainer = _make_trainer(where, training.trainer, module, trackers, callbacks, run_dir)
    fit_seconds = _fit(trainer, module, data, spec.ckpt_path, callbacks, training, run_dir)
    fit_metrics = outcome.floats(trainer.callback_metrics)
    last = callbacks.last.path
    saved = outcome.trained(last, training.trainer)  # read once: the progress and the verification
    epochs, steps = layout.epochs_done(saved), int(layout.global_step(saved))
    outcome.log_fit(saved, fit_seconds, fit_metrics)
    tested = evaluate(module, data, training.trainer, where, trackers)
    log.info("test: %s", outcome.show(tested))
    learned = outcome.learned(data, module)
    # On the training device and precision (rank 0's device under DDP).
    verification = verify(
        module.net, saved, last, data.probe(), placement.device, spec.device.precision
    )
    outcome.log_verification(last, verification)
    resume = resume_for(last, training.trainer, saved)
    log.info("resume with: %s", resume)
    return {
        "task": "train",
        "parameters": sum(t.numel() for _, t in distinct_parameters(module.net)),
        "device": where,
        "epochs": epochs,
        "global_step": steps,
        "fit_seconds": fit_seconds,
        "metrics": {**fit_metrics, **tested},
        "checkpoints": {"last": str(last), "best": callbacks.best.best_model_path},
        "verification": verification,
        **({"learned": learned} if learned is not None else {}),
        "resume": resume,
        "stats": outcome.stats(callbacks, run_dir),
    }


def _check_resume(ckpt_path: str, module: RunnerModule, training: TrainingSpec) -> None:
    problems = check_resume(module, safe_load(ckpt_path), training)
    if problems:
        raise ConfigError(problems)
    log.info("resume: from %s", ckpt_path)


def _make_trainer(
    where: dict[str, Any],
    settings: TrainerSpec,
    module: RunnerModule,
    trackers: Trackers,
    callbacks: RunCallbacks,
    run_dir: Path,
) -> pl.Trainer:
    try:
        trainer = pl.Trainer(
            **where,
            **trainer_arguments(settings, manual=not module.automatic_optimization),
            logger=trackers.loggers(),
            callbacks=callbacks.all,
            plugins=[AtomicCheckpointIO()],
            default_root_dir=run_dir,
            enable_progress_bar=callbacks.progress_bar,
            enable_model_summary=False,
        )
    except Exception as e:
        refusal = lightning_refusal(e, settings)
        if refusal is None:
            raise
        raise refusal from e
    skip_empty_hooks(trainer, module)
    return trainer


def _fit(
    trainer: pl.Trainer,
    module: RunnerModule,
    data: Any,
    ckpt_path: str | None,
    callbacks: RunCallbacks,
    training: TrainingSpec,
    run_dir: Path,
) -> float:
    """trainer.fit, its failures told apart by type; returns the seconds it took."""
    forget_handover(run_dir)
    start = time.perf_counter()
    try:
        trainer.fit(module, datamodule=data, ckpt_path=ckpt_path)
    except RunFailed:
        raise  # the guard's or the compiled forward's own, raised in this process
    except Interrupted as stop:
        raise stop_workers(trainer, stop, callbacks.last.path) from None
    except Exception as e:
        failed = handed_over(run_dir)  # a DDP worker's, as the type it raised there
        if failed is None and callbacks.compiling:
            failed = compile_failure(e, trainer.global_step)
        if failed is not None:
            raise failed from e
        refusal = None if callbacks.placement.started else lightning_refusal(e, training.trainer)
        if refusal is not None:
            raise refusal from e
        if ckpt_path is not None and not callbacks.placement.started:
            # Lightning restores loops, callbacks, RNG and optimizer state before training
            # starts: a failure there is a checkpoint that cannot be resumed, not a crash.
            raise ConfigError(
                [
                    f"ckpt_path: {ckpt_path!r} cannot be resumed: its training state is "
                    f"damaged or from another version ({type(e).__name__}: "
                    f"{first_line(e, default='')[:200]})"
                ]
            ) from e
        raise
    return time.perf_counter() - start
