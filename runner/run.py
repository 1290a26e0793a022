"""run(cfg): validate → build → the task's work → result.json, one log line per stage."""

import logging
import signal
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from runner.config.spec import RunSpec, parse_run
from runner.errors import ConfigError, Interrupted, RunFailed
from runner.rundir import claim, resume_command, write_result

log = logging.getLogger("runner")


def main(cfg: DictConfig) -> None:
    """Hydra's entry point: run in Hydra's run directory. A config mistake exits 2, a failed run
    1, a signal 128 + its number (130 for Ctrl-C, 143 for SIGTERM); none with a traceback."""
    from hydra.core.hydra_config import HydraConfig

    hydra_cfg = HydraConfig.get()
    # Hydra lists the choices last group first; show them in config.yaml's order.
    picked = reversed(list(hydra_cfg.runtime.choices.items()))
    choices = " ".join(f"{k}={v}" for k, v in picked if v is not None and _is_user_group(k))
    log.info("compose: task=%s %s", cfg.get("task"), choices)
    previous = signal.signal(signal.SIGTERM, _raise_interrupted)  # Ctrl-C raises on its own
    try:
        result = run(cfg, Path(hydra_cfg.runtime.output_dir))
    except ConfigError as e:
        log.error("config error: %s", e)
        sys.exit(2)
    except RunFailed as e:
        log.error("run failed: %s", e)
        sys.exit(1)
    except Interrupted as e:
        log.error("interrupted by %s: %s", e.name, _kept(e))
        sys.exit(128 + e.signum)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if not result.get("verification", {}).get("ok", True):
        log.error("the reloaded checkpoint does not reproduce the trained model: see result.json")
        sys.exit(1)


def run(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Run the task `cfg.task` with its files in `run_dir`; return what result.json holds.

    Raises ConfigError (all problems at once) before anything is built, or when a live run
    holds `run_dir`; RunFailed when a started run cannot finish; Interrupted on SIGINT or
    SIGTERM. result.json then says why (status "failed" or "interrupted").
    """
    spec = parse_run(cfg)
    with claim(run_dir):
        try:
            result = {"status": "ok", **TASKS[spec.task](cfg, spec, run_dir)}
        except RunFailed as e:
            _record(run_dir, {"status": "failed", "task": spec.task, "error": str(e)})
            raise
        except OSError as e:  # a full disk, a read-only or vanished directory
            failed = RunFailed(f"cannot write {e.filename or run_dir}: {e.strerror or e}")
            _record(run_dir, {"status": "failed", "task": spec.task, "error": str(failed)})
            raise failed from e
        except (Interrupted, KeyboardInterrupt) as e:
            stop = e if isinstance(e, Interrupted) else Interrupted(signal.SIGINT)
            record: dict[str, Any] = {
                "status": "interrupted",
                "task": spec.task,
                "signal": stop.name,
            }
            if stop.checkpoint is not None:
                record |= {"step": stop.step, "checkpoint": str(stop.checkpoint)}
                record["resume"] = resume_command(Path(str(stop.checkpoint)))
            _record(run_dir, record)
            raise stop from None
        _record(run_dir, result)
    return result


def _record(run_dir: Path, result: dict[str, Any]) -> None:
    try:
        write_result(run_dir, result)
    except OSError as e:  # a full or read-only disk must not hide the run's own outcome
        log.error("could not write %s: %s", run_dir / "result.json", e.strerror)


def _raise_interrupted(signum: int, frame: Any) -> None:
    raise Interrupted(signum)


def _kept(stop: Interrupted) -> str:
    if stop.checkpoint is None:
        return "stopped before any checkpoint was saved; nothing to resume from"
    when = f"at step {stop.step}" if stop.step is not None else "before the interruption"
    resume = resume_command(Path(str(stop.checkpoint)))
    return f"kept {stop.checkpoint} (saved {when}); resume with: {resume}"


def inspect(cfg: DictConfig, spec: RunSpec, run_dir: Path) -> dict[str, Any]:
    from runner.model.inspect import inspect as inspect_task  # torch, but not Lightning

    return inspect_task(cfg, spec, run_dir)


def train(cfg: DictConfig, spec: RunSpec, run_dir: Path) -> dict[str, Any]:
    from runner.train.fit import train as train_task  # Lightning loads only for training

    return train_task(cfg, spec, run_dir)


def export(cfg: DictConfig, spec: RunSpec, run_dir: Path) -> dict[str, Any]:
    from runner.train.export import export as export_task

    return export_task(cfg, spec, run_dir)


TASKS = {"train": train, "inspect": inspect, "export": export}


def _is_user_group(name: str) -> bool:
    return not name.startswith(("hydra", "schema")) and "/" not in name
