"""The Hydra task function behind `python -m runner`: one run, or one job of a sweep.

A single run ends with the documented exit code: 2 for a config mistake, 1 for a failed run,
128 + the signal for an interrupted one (130 for Ctrl-C, 143 for SIGTERM), none with a
traceback. A job of a sweep never ends the sweep: whatever happens is recorded in its
result.json and the next job runs (the summary counts the failures at the end); it returns its
objective (`sweep.objective`, val/loss by default) for a search such as Optuna, None when it
failed (Optuna records a failed trial). A signal stops an in-process sweep, after writing
its summary, so that `sweep.resume=true` can finish it.
"""

import logging
import math
import signal
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from runner import STOP_SIGNALS, ending
from runner.config.sections import parse_sweep
from runner.errors import RAISED_IN_RUN, ConfigError, Interrupted, RunFailed, did_you_mean, one_of
from runner.run import run
from runner.rundir import resume_command, write_result
from runner.sweep import job as sweep_job
from runner.sweep.stop import in_process, requested

log = logging.getLogger("runner")


def _eval_data_from_command_line(cfg: DictConfig, overrides: Any) -> None:
    """task=eval with eval.data=auto: data given on the command line (even `data=random`, the
    default) is evaluated; otherwise the data the checkpoint was trained on."""
    section = cfg.get("eval")
    if cfg.get("task") != "eval" or not isinstance(section, DictConfig):
        return
    if section.get("data") == "auto":
        given = any(o.lstrip("+~").split("=")[0].split(".")[0] == "data" for o in overrides)
        with open_dict(cfg):
            cfg.eval.data = "given" if given else "checkpoint"


# What a task on a checkpoint takes from it (its network, trained weights and data, with the
# data's preprocessing), not from the config groups chosen.
_FROM_CHECKPOINT = ("model", "init", "data")


def _compose_line(cfg: DictConfig, choices: dict[str, str]) -> str:
    """`task=train model=mlp …`; for a task on a checkpoint, without the groups it takes
    from there (task=eval named model=mlp while it evaluated the checkpoint's own model)."""
    task, shown = cfg.get("task"), choices
    if task in ("eval", "export", "predict") and cfg.get("ckpt_path"):
        own_data = task == "eval" and OmegaConf.select(cfg, "eval.data") == "given"
        taken = [k for k in _FROM_CHECKPOINT if not (k == "data" and own_data)]
        shown = {k: v for k, v in choices.items() if k not in taken}
        return f"task={task} " + " ".join(
            [*(f"{k}={v}" for k, v in shown.items()), f"({', '.join(taken)} from ckpt_path)"]
        )
    return f"task={task} " + " ".join(f"{k}={v}" for k, v in shown.items())


def main(cfg: DictConfig) -> float | None:
    hydra_cfg = HydraConfig.get()
    # Hydra lists the choices last group first; show them in config.yaml's order.
    choices = {k: str(v) for k, v in reversed(list(hydra_cfg.runtime.choices.items()))}
    choices = {k: v for k, v in choices.items() if v != "None" and _is_user_group(k)}
    _eval_data_from_command_line(cfg, hydra_cfg.overrides.task)
    log.info("compose: %s", _compose_line(cfg, choices))
    run_dir = Path(hydra_cfg.runtime.output_dir)
    sweep = parse_sweep(cfg.get("sweep"))
    job = None
    if hydra_cfg.mode == RunMode.MULTIRUN:
        overrides = tuple(o for o in hydra_cfg.overrides.task if not o.startswith("sweep.resume="))
        job = sweep_job.Job(int(hydra_cfg.job.num), overrides, choices, run_dir)
    if job is not None and _stopping(job, hydra_cfg):
        return None
    if job is not None and not _in_process(hydra_cfg):
        _one_gpu_each(cfg, job)
    fields: dict[str, Any] = job.record if job else {}
    if job is not None and sweep.resume:
        done = _resume_job(cfg, job, fields, _in_process(hydra_cfg))
        if done is not None:
            return done.value
    return _run(cfg, run_dir, job, fields, hydra_cfg, sweep.objective)


@dataclass(frozen=True)
class _Done:
    """A sweep job that sweep.resume=true ends before it runs, with its objective value."""

    value: float | None


def _resume_job(
    cfg: DictConfig, job: sweep_job.Job, fields: dict[str, Any], in_process: bool
) -> _Done | None:
    """sweep.resume=true: skip a job that ended ok, resume an interrupted one from its
    checkpoint (ckpt_path is set), rerun a failed one. _Done when the job is over already."""
    try:
        plan = sweep_job.plan(job)
    except ConfigError as e:  # another sweep's directory: stop before touching it
        log.error("config error: %s", e)
        if in_process:
            sys.exit(2)
        return _Done(None)
    if plan.action == "skip":
        sweep_job.restore_hydra_record(job)
        log.info("sweep: job %d ended ok in an earlier run of this sweep: skipped", job.number)
        write_result(job.directory, {**plan.previous, "sweep_status": "skipped"})
        return _Done(_objective(plan.previous, parse_sweep(cfg.get("sweep")).objective))
    sweep_job.set_aside(job)
    fields["attempt"] = plan.attempt
    if plan.action == "resume" and sweep_job.finished(plan.checkpoint, cfg.get("trainer")):
        log.info(
            "sweep: job %d stopped after its last epoch's checkpoint, while it wrote its run: "
            "it runs again (resumed, it would be refused as already at max_epochs)",
            job.number,
        )
    elif plan.action == "resume":
        log.info("sweep: job %d resumes from %s", job.number, plan.checkpoint)
        with open_dict(cfg):
            cfg.ckpt_path = str(plan.checkpoint)
    return None


def _run(
    cfg: DictConfig,
    run_dir: Path,
    job: sweep_job.Job | None,
    fields: dict[str, Any],
    hydra_cfg: Any,
    objective: str,
) -> float | None:
    """The run itself, its outcome turned into the exit code (a single run) or a record (a
    sweep's job). An unexpected error is marked as the run's own: the CLI shows its traceback."""
    # SIGTERM, and Ctrl-C outside training (where Lightning would exit(1) on KeyboardInterrupt),
    # raise Interrupted; during training GracefulStop takes both over.
    previous = {s: signal.signal(s, _raise_interrupted) for s in STOP_SIGNALS}
    stopping = False  # a single run ending on a signal: further ones are ignored from here
    try:
        result = run(cfg, run_dir, fields)
    except ConfigError as e:
        return _ended(job, "config error: %s", e, 2)
    except RunFailed as e:
        return _ended(job, "run failed: %s", e, 1)
    except Interrupted as e:
        log.error("interrupted by %s: %s", e.name, _kept(e))
        if job is not None and not _in_process(hydra_cfg):
            return None  # its own process: the other jobs go on
        if job is not None:
            raise  # runner.__main__ stops the sweep, with its summary so far
        stopping = True
        ending()
        sys.exit(128 + e.signum)
    except Exception as e:  # a bug: a run shows its traceback; a sweep records it and goes on
        if job is None:
            setattr(e, RAISED_IN_RUN, True)
            raise
        log.error("job %d failed:\n%s", job.number, traceback.format_exc())
        write_result(run_dir, {"status": "failed", "error": f"{type(e).__name__}: {e}", **fields})
        return None
    finally:
        for signum, handler in previous.items() if not stopping else ():
            signal.signal(signum, handler)
    return _objective(result, objective) if job is not None else None


def _ended(job: sweep_job.Job | None, what: str, error: Exception, code: int) -> float | None:
    log.error(what, error)
    if job is None:
        sys.exit(code)
    log.info("sweep: job %d recorded as failed; the sweep goes on", job.number)
    return None


def _objective(result: dict[str, Any], name: str) -> float | None:
    """A sweep job's value for a search: its final `sweep.objective` metric; None when
    missing (with a warning when a training job that ended ok did not log it)."""
    metrics = result.get("metrics") or {}
    value = metrics.get(name)
    trained = result.get("task") == "train" and result.get("status") == "ok"
    if name not in metrics and trained:  # a typo would rank nothing
        log.warning(
            "sweep.objective: the job reported no %r; its metrics: %s%s",
            name,
            one_of(metrics) or "none",
            did_you_mean(name, metrics),
        )
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _one_gpu_each(cfg: DictConfig, job: sweep_job.Job) -> None:
    """In a parallel sweep, a job asking for one GPU (not a given one) takes its own."""
    device = cfg.device
    if device.accelerator not in ("gpu", "auto") or device.devices != 1 or device.index is not None:
        return
    import torch

    gpu = sweep_job.gpu_for(job, torch.cuda.device_count() if torch.cuda.is_available() else 0)
    if gpu is None:
        return
    with open_dict(cfg):
        cfg.device.accelerator, cfg.device.index = "gpu", gpu
    log.info("sweep: job %d takes GPU %d (one GPU per job, round-robin)", job.number, gpu)


def _in_process(hydra_cfg: Any) -> bool:
    """Whether the sweep's jobs run in this very process (the basic or vectorized launcher)."""
    return in_process(str(hydra_cfg.launcher.get("_target_", "")))


def _stopping(job: sweep_job.Job, hydra_cfg: Any) -> bool:
    """A job that starts after a signal stopped its sweep: recorded as not run (so that
    sweep.resume=true runs it), and, in-process, the sweep stops here."""
    signum = requested(Path(str(hydra_cfg.sweep.dir)))
    if signum is None:
        return False
    name = signal.Signals(signum).name
    write_result(
        job.directory,
        {
            "status": "interrupted",
            "signal": name,
            "error": f"not started: the sweep was stopped by {name}",
            **job.record,
        },
    )
    if _in_process(hydra_cfg):
        raise Interrupted(signum)
    return True


def _raise_interrupted(signum: int, frame: Any) -> None:
    raise Interrupted(signum)


def _kept(stop: Interrupted) -> str:
    if stop.checkpoint is None:
        return "stopped before any checkpoint was saved; nothing to resume from"
    when = f"at step {stop.step}" if stop.step is not None else "before the interruption"
    resume = stop.resume or resume_command(Path(str(stop.checkpoint)))
    return f"kept {stop.checkpoint} (saved {when}); resume with: {resume}"


def _is_user_group(name: str) -> bool:
    return not name.startswith(("hydra", "schema")) and "/" not in name
