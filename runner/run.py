"""run(cfg, run_dir): validate → the task's work → result.json, whatever the outcome."""

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, open_dict

from runner import STOP_SIGNALS, ignore
from runner.config.spec import RunSpec, parse_run
from runner.errors import LOG_FORMAT, TIME_FORMAT, ConfigError, Interrupted, RunFailed
from runner.rundir import (
    HYDRA_FILES,
    RUN_FILES,
    claim,
    followed,
    latest_checkpoint,
    point_latest,
    resume_command,
    set_aside_previous,
    write_result,
)
from runner.rundir.resume import PYTHON_OVERRIDES

log = logging.getLogger("runner")


@contextlib.contextmanager
def _console_log() -> Iterator[None]:
    """Called from Python with no logging set up, the run's stage lines go to stderr, as on the
    command line (otherwise a 20 s run shows nothing until it returns). Set-up logging wins."""
    if log.hasHandlers():
        yield
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT, TIME_FORMAT))
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


@contextlib.contextmanager
def _overrides(cfg: DictConfig) -> Iterator[None]:
    """Called from Python, the overrides that compose `cfg`, for the resume command (the
    command line's come from Hydra's record)."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        yield
        return
    from runner.config.tree import overrides_of

    token = PYTHON_OVERRIDES.set(tuple(overrides_of(cfg)))
    try:
        yield
    finally:
        PYTHON_OVERRIDES.reset(token)


def run(cfg: DictConfig, run_dir: Path, job: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the task `cfg.task` with its files in `run_dir`; return what result.json holds.

    Raises ConfigError (all problems at once) before anything is built, or when a live run
    holds `run_dir`; RunFailed when a started run cannot finish (or its checkpoint does not
    reproduce it); Interrupted on SIGINT or SIGTERM (further ones are then ignored: the process
    is ending). result.json says which (`status`: ok, failed, interrupted), with the wall time
    and, in a sweep, the `job` fields given.
    """
    if not isinstance(cfg, DictConfig):
        raise TypeError(f"runner.run: cfg is what runner.compose returns; got {type(cfg).__name__}")
    if not isinstance(run_dir, str | os.PathLike):
        raise TypeError(f"runner.run: run_dir is a directory path; got {type(run_dir).__name__}")
    start, run_dir = time.perf_counter(), Path(run_dir)
    # A live run's directory is refused before anything is written (on the command line, the
    # run directory's callback took it, and set an earlier run aside, before Hydra wrote).
    with claim(run_dir) as fresh, _console_log(), _overrides(cfg):
        started: list[RunSpec] = []  # the run's spec, once it is valid

        def record(outcome: dict[str, Any]) -> dict[str, Any]:
            outcome = _timed({**outcome, **(job or {})}, start)
            _record(run_dir, outcome)
            if started and outcome["status"] != "ok":  # a training run that failed: how far
                _report(started[0], run_dir, outcome)  # it got, the error, the curves so far
            return outcome

        if fresh and not (job or {}).get("attempt"):  # a sweep's resume sets attempts aside
            _keep_previous(cfg, run_dir)
        task = cfg.get("task")
        spec: RunSpec | None = None
        try:
            spec = parse_run(_latest(cfg))
            started.append(spec)
            result = record({"status": "ok", **TASKS[spec.task](spec, run_dir)})
        except (ConfigError, RunFailed) as e:
            record(_failed(e, task))
            raise
        except OSError as e:  # a full disk, a read-only or vanished directory
            failed = RunFailed(f"cannot write {e.filename or run_dir}: {e.strerror or e}")
            record({"status": "failed", "task": task, "error": str(failed)})
            raise failed from e
        except SystemExit as e:  # sys.exit() in the user's code (a layer, a data module)
            if isinstance(e.__context__, KeyboardInterrupt):  # Lightning's exit(1) on Ctrl-C
                raise _interrupted(record, e.__context__, run_dir, spec, task) from None
            failed = RunFailed(f"the run's code called sys.exit({e.code!r}) during task={task}")
            record({"status": "failed", "task": task, "error": str(failed)})
            raise failed from e
        except (Interrupted, KeyboardInterrupt) as e:
            raise _interrupted(record, e, run_dir, spec, task) from None
        except Exception as e:  # a bug in the run's code or the runner's: recorded, then shown
            record({"status": "failed", "task": task, "error": f"{type(e).__name__}: {e}"[:2000]})
            raise
        if not result.get("verification", {}).get("ok", True):
            message = "the reloaded checkpoint does not reproduce the trained model"
            record({**result, "status": "failed", "error": f"{message}: see verification"})
            raise RunFailed(f"{message}: see {run_dir / 'result.json'}")
        if spec.task == "train":
            _trained(spec, run_dir, result, in_sweep="job" in (job or {}))
    return result


def _interrupted(
    record: Callable[[dict[str, Any]], Any],
    e: BaseException,
    run_dir: Path,
    spec: RunSpec | None,
    task: Any,
) -> Interrupted:
    """Record how a signal stopped the run; returns it to raise."""
    _ignore_signals()  # stopping: a second signal must not cut the record short
    stop = _stopped(e, run_dir, spec)
    interrupted: dict[str, Any] = {"status": "interrupted", "task": task, "signal": stop.name}
    if stop.checkpoint is not None:
        interrupted |= {"step": stop.step, "checkpoint": str(stop.checkpoint)}
        interrupted["resume"] = stop.resume
    record(interrupted)
    return stop


def _stopped(e: BaseException, run_dir: Path, spec: RunSpec | None) -> Interrupted:
    """The signal that stopped the run, with the checkpoint it kept and the command that
    resumes from it (valid as printed: a run stopped in its test stage has reached its end)."""
    stop = e if isinstance(e, Interrupted) else Interrupted(signal.SIGINT)
    last = run_dir / "checkpoints" / "last.ckpt"
    if stop.checkpoint is None and last.is_file():  # stopped after training (test, verify)
        stop = Interrupted(stop.signum, checkpoint=last, step=None)
    if stop.checkpoint is None:
        return stop
    checkpoint = Path(str(stop.checkpoint))
    try:
        if spec is None or spec.training is None:
            raise ValueError("no trainer settings to read the limits from")
        from runner.train.next_run import resume_for

        stop.resume = resume_for(checkpoint, spec.training.trainer)
    except Exception:  # an unreadable checkpoint: the plain command, which says why it fails
        stop.resume = resume_command(checkpoint)
    return stop


def _latest(cfg: DictConfig) -> DictConfig:
    """`ckpt_path=latest`: the newest training run's last.ckpt (outputs/latest)."""
    if cfg.get("ckpt_path") == "latest":
        with open_dict(cfg):
            cfg.ckpt_path = latest_checkpoint()
    return cfg


def _trained(spec: RunSpec, run_dir: Path, result: dict[str, Any], in_sweep: bool) -> None:
    """After a training run: plots/metrics.png and report.html (`report: false` skips them; a
    failure to draw is a warning, never the run's), and outputs/latest pointed at it (a
    sweep's jobs leave that to the sweep)."""
    if not in_sweep:
        point_latest(run_dir)
    _report(spec, run_dir, result)


def _report(spec: RunSpec, run_dir: Path, result: dict[str, Any]) -> None:
    """A training run's report.html and plots/metrics.png, however it ended."""
    if spec.task != "train" or not spec.report:
        return
    from runner.report.run_report import write_run_report

    try:
        write_run_report(run_dir, result, spec.config)
        log.info("report: %s", run_dir / "report.html")
    except Exception as e:
        log.warning("report: not written (%s: %s)", type(e).__name__, e)


def _ignore_signals() -> None:
    """From here on the run only records how it stopped and ends: SIGINT and SIGTERM are
    ignored (a scheduler's or an impatient user's repeats), in the main thread where possible."""
    if threading.current_thread() is threading.main_thread():
        for signum in STOP_SIGNALS:
            signal.signal(signum, ignore)  # (SIG_IGN: a signal pending now would raise)


def _keep_previous(cfg: DictConfig, run_dir: Path) -> None:
    from hydra.core.hydra_config import HydraConfig

    # In a Hydra job (a sweep's), Hydra has just written this run's .hydra/ and log: they stay.
    names = RUN_FILES if HydraConfig.initialized() else RUN_FILES + HYDRA_FILES
    kept = set_aside_previous(run_dir, names=names)
    if kept is None:
        return
    log.info("run dir: an earlier run's files were moved to %s", kept)
    ckpt = followed(cfg.get("ckpt_path"), run_dir, kept)
    if ckpt is not None:  # resuming from a checkpoint that was just moved: follow it
        with open_dict(cfg):
            cfg.ckpt_path = ckpt


def _record(run_dir: Path, result: dict[str, Any]) -> None:
    try:
        write_result(run_dir, result)
    except OSError as e:  # a full or read-only disk must not hide the run's own outcome
        log.error("could not write %s: %s", run_dir / "result.json", e.strerror)


def inspect(spec: RunSpec, run_dir: Path) -> dict[str, Any]:
    if spec.ckpt_path is not None:  # a trained model: read it the way runner.load does
        from runner.checkpoint.restore import restore_checkpoint_of
        from runner.model.inspect import inspect_checkpoint

        net = restore_checkpoint_of(spec).net
        return inspect_checkpoint(net, Path(spec.ckpt_path), "cpu", run_dir)
    from runner.model.inspect import inspect as inspect_task  # torch, but not Lightning

    return inspect_task(spec, run_dir)


def train(spec: RunSpec, run_dir: Path) -> dict[str, Any]:
    from runner.train.fit import train as train_task  # Lightning loads only for training

    return train_task(spec, run_dir)


def export(spec: RunSpec, run_dir: Path) -> dict[str, Any]:
    from runner.checkpoint.export import export as export_task

    return export_task(spec, run_dir)


def evaluate(spec: RunSpec, run_dir: Path) -> dict[str, Any]:
    from runner.train.evaluate import eval_task

    return eval_task(spec, run_dir)


def predict(spec: RunSpec, run_dir: Path) -> dict[str, Any]:
    from runner.train.predict import predict_task

    return predict_task(spec, run_dir)


TASKS = {
    "train": train,
    "inspect": inspect,
    "export": export,
    "eval": evaluate,
    "predict": predict,
}


def _timed(outcome: dict[str, Any], start: float) -> dict[str, Any]:
    """The outcome with its wall time; a vectorized member's counts its share of its group's
    training, which ran before its job did, so that it compares with a job trained alone."""
    group = outcome.get("vectorized") or {}
    jobs, seconds = group.get("jobs") or [], group.get("group_seconds")
    share = seconds / len(jobs) if jobs and isinstance(seconds, int | float) else 0.0
    return {**outcome, "seconds": time.perf_counter() - start + share}


def _failed(e: ConfigError | RunFailed, task: Any) -> dict[str, Any]:
    """A refused config or a run that could not finish, as result.json records it: whether it
    was a config mistake (a sweep of nothing but mistakes exits 2), and what the failure adds
    (a vectorized member's group)."""
    mistake = isinstance(e, ConfigError)
    outcome = {"status": "failed", "task": task, "error": str(e), "config_error": mistake}
    return {**outcome, **getattr(e, "outcome", {})}
