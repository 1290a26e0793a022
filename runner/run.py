"""run(cfg): validate → build → the task's work → result.json, one log line per stage."""

import json
import logging
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from runner.config.spec import RunSpec, parse_run
from runner.errors import ConfigError, RunFailed

log = logging.getLogger("runner")


def main(cfg: DictConfig) -> None:
    """Hydra's entry point: run in Hydra's run directory; a config mistake exits 2, untraced."""
    from hydra.core.hydra_config import HydraConfig

    hydra_cfg = HydraConfig.get()
    # Hydra lists the choices last group first; show them in config.yaml's order.
    picked = reversed(list(hydra_cfg.runtime.choices.items()))
    choices = " ".join(f"{k}={v}" for k, v in picked if v is not None and _is_user_group(k))
    log.info("compose: task=%s %s", cfg.get("task"), choices)
    try:
        result = run(cfg, Path(hydra_cfg.runtime.output_dir))
    except ConfigError as e:
        log.error("config error: %s", e)
        sys.exit(2)
    except RunFailed as e:
        log.error("run failed: %s", e)
        sys.exit(1)
    if not result.get("verification", {}).get("ok", True):
        log.error("the reloaded checkpoint does not reproduce the trained model: see result.json")
        sys.exit(1)


def run(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Run the task `cfg.task` with its files in `run_dir`; return what result.json holds.

    Raises ConfigError (all problems at once) before anything is built, and RunFailed when a
    started run cannot finish; its result.json then says why (status "failed").
    """
    spec = parse_run(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        result = {"status": "ok", **TASKS[spec.task](cfg, spec, run_dir)}
    except RunFailed as e:
        _write_result(run_dir, {"status": "failed", "task": spec.task, "error": str(e)})
        raise
    _write_result(run_dir, result)
    return result


def _write_result(run_dir: Path, result: dict[str, Any]) -> None:
    (run_dir / "result.json").write_text(json.dumps(result, indent=2) + "\n")


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
