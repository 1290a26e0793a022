"""run(cfg): validate → build → the task's work → result.json, one log line per stage."""

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from runner.errors import ConfigError

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
        run(cfg, Path(hydra_cfg.runtime.output_dir))
    except ConfigError as e:
        log.error("config error: %s", e)
        sys.exit(2)


def run(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Run the task `cfg.task` with its files in `run_dir`; return what result.json holds.

    Raises ConfigError (all problems at once) before anything is built.
    """
    from runner.spec import parse_run

    spec = parse_run(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    result = TASKS[spec.task](cfg, spec, run_dir)
    (run_dir / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def inspect(cfg: DictConfig, spec: Any, run_dir: Path) -> dict[str, Any]:
    """Build the model and show every parameter and buffer (the chapter's parameter access)."""
    from dataclasses import asdict

    from runner import summary
    from runner.compile import compile_model
    from runner.devices import resolve_device

    placement = resolve_device(spec.device)
    log.info("device: %s", placement.reason)
    start = time.perf_counter()
    net = compile_model(spec.model, placement.device, seed=spec.seed)
    total = summary.totals(net)
    seconds = time.perf_counter() - start
    log.info(
        "build: %s parameters on %s in %.0f ms",
        f"{total.parameters:,}",
        placement.device,
        seconds * 1e3,
    )
    rows = summary.tensor_rows(net)
    summary.print_report(net, rows, total)
    table_path = run_dir / "params.csv"
    summary.write_csv(rows, table_path)
    log.info("inspect: wrote %s", table_path)
    return {
        "task": "inspect",
        "device": str(placement.device),
        "totals": asdict(total),
        "files": {"params": str(table_path)},
    }


TASKS = {"inspect": inspect}


def _is_user_group(name: str) -> bool:
    return not name.startswith(("hydra", "schema")) and "/" not in name
