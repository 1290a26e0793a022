"""task=train: data → module → Trainer.fit → test → reload the checkpoint and verify it."""

import logging
import sys
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from runner.checkpoint.files import safe_load
from runner.checkpoint.resume import check_resume
from runner.checkpoint.verify import verify
from runner.config.device import resolve_device
from runner.config.spec import RunSpec
from runner.config.tree import plain
from runner.errors import ConfigError, RunFailed
from runner.params.diagnosis import Diagnosis, summarize
from runner.params.tensors import distinct_parameters
from runner.rundir import resume_command
from runner.trackers.tracking import Trackers, ended
from runner.train.callbacks.checkpoints import AtomicCheckpointIO, LastCheckpoint, RNGState
from runner.train.callbacks.guard import NonFiniteGuard, NonFiniteTraining
from runner.train.callbacks.lifecycle import (
    GracefulStop,
    ProgressBar,
    ReportPlacement,
    WorkerLogging,
    skip_empty_hooks,
)
from runner.train.callbacks.stats import ParameterStats
from runner.train.compiled import CompileNet, compile_failure, compile_mode
from runner.train.data import RandomData
from runner.train.evaluate import evaluate
from runner.train.module import RunnerModule
from runner.train.trainer import checkpoint_every, trainer_arguments, trainer_placement

log = logging.getLogger("runner")


def train(
    cfg: DictConfig, spec: RunSpec, run_dir: Path, extra_callbacks: tuple[pl.Callback, ...] = ()
) -> dict[str, Any]:
    """Fit, test, checkpoint, then reload the last checkpoint from itself alone and verify it.

    `extra_callbacks` join the runner's own (benchmarks time steps with one). Experiment
    trackers (MLflow, W&B) get the run's artifacts and its outcome at the end, however it ends.
    """
    trackers = Trackers(cfg.get("logger"), run_dir)
    trackers.start()  # before anything is built: an unreachable store is a config error
    try:
        result = _train(cfg, spec, run_dir, trackers, extra_callbacks)
    except BaseException as e:
        trackers.finish(ok=False, interrupted=not isinstance(e, Exception), result=ended(e))
        raise
    trackers.finish(ok=result["verification"]["ok"], result=result)
    return result


def _train(
    cfg: DictConfig,
    spec: RunSpec,
    run_dir: Path,
    trackers: Trackers,
    extra_callbacks: tuple[pl.Callback, ...],
) -> dict[str, Any]:
    from pytorch_lightning.callbacks import ModelCheckpoint

    placement = resolve_device(spec.device)
    log.info("device: %s", placement.reason)
    trainer_args = trainer_placement(spec.device, placement)
    distributed = str(spec.device.strategy).startswith("ddp")
    pl.seed_everything(spec.seed, workers=True, verbose=False)

    data = instantiate(cfg.data)
    config = plain(cfg)
    # Built where it will train; with DDP the workers receive it, so it starts on the CPU.
    start = time.perf_counter()
    module = RunnerModule(
        config,
        task=data.task,
        device="cpu" if distributed else placement.device,
    )
    output_shape = _output_shape(module, spec)
    log.info(
        "build: %s parameters, output %s, in %.0f ms",
        f"{sum(p.numel() for p in module.parameters()):,}",
        list(output_shape),
        (time.perf_counter() - start) * 1e3,
    )
    if isinstance(data, RandomData):
        data.output_shape = output_shape
    data.steps_per_batch = module.steps_per_batch
    if cfg.ckpt_path is not None:
        problems = check_resume(module, safe_load(cfg.ckpt_path), config)
        if problems:
            raise ConfigError(problems)
        log.info("resume: from %s", cfg.ckpt_path)

    checkpoints = run_dir / "checkpoints"
    stats_cfg = plain(cfg.stats)
    guard = NonFiniteGuard(run_dir, stats_cfg["on_nan"], every_n_steps=module.log_every)
    parameter_stats = ParameterStats(
        run_dir,
        every_n_steps=stats_cfg["every_n_steps"],
        wanted=list(stats_cfg["stats"]),
        plots=stats_cfg["plots"],
        guard=guard,
    )
    best = ModelCheckpoint(
        dirpath=checkpoints,
        filename="best-epoch{epoch:03d}-step{step:06d}",  # no '=': Hydra can parse the path
        auto_insert_metric_name=False,
        monitor="val/loss",
    )
    last_checkpoint = LastCheckpoint(checkpoints, every_n_steps=checkpoint_every(cfg))
    placement_report = ReportPlacement()
    mode = compile_mode(cfg.trainer.get("compile"))
    trainer = pl.Trainer(
        **trainer_args,
        **trainer_arguments(cfg, manual=not module.automatic_optimization),
        logger=trackers.loggers(),
        callbacks=[
            best,
            last_checkpoint,
            GracefulStop(last_checkpoint),
            RNGState(),
            placement_report,
            *([CompileNet(mode)] if mode else []),
            guard,  # before the statistics: it checks before they record
            parameter_stats,
            WorkerLogging(),
            *([ProgressBar()] if sys.stderr.isatty() else []),
            *_user_callbacks(cfg),  # after the runner's own: the guard and checkpoints first
            *extra_callbacks,
        ],
        plugins=[AtomicCheckpointIO()],
        default_root_dir=run_dir,
        enable_progress_bar=sys.stderr.isatty(),
        enable_model_summary=False,
    )
    skip_empty_hooks(trainer, module)
    fit_start = time.perf_counter()
    try:
        trainer.fit(module, datamodule=data, ckpt_path=cfg.ckpt_path)
    except NonFiniteTraining as e:
        raise RunFailed(str(e)) from e
    except Exception as e:  # from a DDP worker the guard's error arrives wrapped
        if NonFiniteTraining.__name__ in str(e):
            raise RunFailed(str(e).strip().splitlines()[-1].split(": ", 1)[-1]) from e
        failed = compile_failure(e, trainer.global_step) if mode else None
        if failed is not None:
            raise failed from e
        if cfg.ckpt_path is not None and not placement_report.started:
            # Lightning restores loops, callbacks, RNG and optimizer state before training
            # starts: a failure there is a checkpoint that cannot be resumed, not a crash.
            reason = str(e).strip().splitlines()[0] if str(e).strip() else ""
            raise ConfigError(
                [
                    f"ckpt_path: {str(cfg.ckpt_path)!r} cannot be resumed: its training state "
                    f"is damaged or from another version ({type(e).__name__}: {reason[:200]})"
                ]
            ) from e
        raise
    fit_seconds = time.perf_counter() - fit_start
    fit_metrics = _floats(trainer.callback_metrics)
    last = checkpoints / "last.ckpt"
    # Progress comes from the checkpoint: with ddp_spawn this process's trainer never stepped.
    saved = safe_load(last)  # read once: for the progress counters and the verification
    # `processed`: last.ckpt is saved as an epoch ends, before Lightning counts it completed.
    epochs = saved["loops"]["fit_loop"]["epoch_progress"]["total"]["processed"]
    steps = saved["global_step"]
    log.info(
        "fit: %d epochs, %d steps in %.1f s; %s", epochs, steps, fit_seconds, _show(fit_metrics)
    )
    tested = evaluate(module, data, cfg, trainer_args, trackers)
    log.info("test: %s", _show(tested))
    learned = data.learned(module.net) if hasattr(data, "learned") else None
    if learned is not None:
        log.info(
            "result: w %s (true %s), b %.4f (true %g)",
            "[" + ", ".join(f"{v:.4f}" for v in learned["w"]) + "]",
            "[" + ", ".join(f"{v:g}" for v in learned["w_true"]) + "]",
            learned["b"],
            learned["b_true"],
        )

    # On the training device and precision (rank 0's device under DDP).
    verification = verify(
        module.net, saved, last, data.probe(), placement.device, spec.device.precision
    )
    verdict = "ok" if verification["ok"] else "FAILED"
    log.info(
        "verify: reloaded %s from itself alone: outputs %s (%s), shared tensors %s: %s",
        last.name,
        "match"
        if verification["max_abs_diff"] == 0
        else f"differ by ≤ {verification['max_abs_diff']:.3g}",
        verification["comparison"],
        "intact" if verification["shared_tensors_intact"] else "BROKEN",
        verdict,
    )
    resume = _resume(last, cfg, epochs, steps)
    log.info("resume with: %s", resume)
    return {
        "task": "train",
        "parameters": sum(t.numel() for _, t in distinct_parameters(module.net)),
        "device": trainer_args,
        "epochs": epochs,
        "global_step": steps,
        "fit_seconds": fit_seconds,
        "metrics": {**fit_metrics, **tested},
        "checkpoints": {"last": str(last), "best": best.best_model_path},
        "verification": verification,
        **({"learned": learned} if learned is not None else {}),
        "resume": resume,
        "stats": {
            "csv": str(parameter_stats.csv) if parameter_stats.recording else None,
            "plots": sorted(str(p) for p in (run_dir / "plots").glob("*.png")),
            # Steps with NaN/Inf gradients that stats.on_nan=warn let through (this process).
            "non_finite_steps": guard.bad_steps,
            # From the CSV, not the callback: under DDP the workers recorded it.
            **_diagnosis(parameter_stats.csv),
        },
    }


def _output_shape(module: RunnerModule, spec: RunSpec) -> tuple[int, ...]:
    """The model's output shape for one sample; refuses models that can't be trained."""
    shape = spec.model.input_shape
    if shape is None:
        raise ConfigError(["model.input_shape: training needs the shape of one input sample"])
    if not any(True for _ in module.parameters()):
        raise ConfigError(
            [
                "model.net: the network has no parameters, so there is nothing to train; "
                "task=inspect shows it. Add a layer with parameters, e.g. {type: Linear, ...}"
            ]
        )
    device = next(module.parameters()).device
    module.eval()
    with torch.no_grad():
        out = module(torch.zeros(2, *shape, device=device))
    module.train()
    if out.dim() == 0 or out.shape[0] != 2:
        raise ConfigError(
            [
                f"model: for a batch of 2 its forward returns shape {list(out.shape)}, not one "
                "output per sample (like FixedHiddenMLP's one scalar per batch): it can be "
                "inspected (task=inspect) but not trained"
            ]
        )
    return tuple(out.shape[1:])


def _user_callbacks(cfg: DictConfig) -> list[pl.Callback]:
    """The callbacks group's callbacks (checked by runner.config.callbacks), in order."""
    section = cfg.get("callbacks") or {}
    return [instantiate(section[name]) for name in section if section[name] is not None]


def _resume(last: Path, cfg: DictConfig, epochs: int, steps: int) -> str:
    """The command that trains further from `last`, working as printed: a run that reached
    its max_epochs (or max_steps) gets that limit doubled in the command."""
    max_epochs, max_steps = cfg.trainer.get("max_epochs"), cfg.trainer.get("max_steps")
    if isinstance(max_steps, int) and max_steps > 0 and steps >= max_steps:
        return resume_command(
            last, f"{steps} more steps; set trainer.max_steps", {"trainer.max_steps": 2 * steps}
        )
    if isinstance(max_epochs, int) and max_epochs > 0 and epochs >= max_epochs:
        more = {"trainer.max_epochs": 2 * epochs}
        return resume_command(last, f"{epochs} more epochs; set trainer.max_epochs", more)
    return resume_command(last, "continues to the configured end")


def _diagnosis(csv_path: Path) -> dict[str, Any]:
    """The warnings the statistics made (blocks without gradient, dead ReLU units)."""
    findings = Diagnosis.replay(csv_path)
    return {"warnings": [f.text for f in findings], **summarize(findings)}


def _floats(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if not k.endswith("_step")}


def _show(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.4g}" for k, v in sorted(metrics.items()))
