"""task=inspect: build the model without training and show every parameter and buffer, and how
each got its values (the chapter's parameter access and initialization). No Lightning."""

import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from runner.config.device import resolve_device
from runner.config.spec import RunSpec
from runner.model.assemble import assemble
from runner.model.layers_view import print_layers
from runner.params import summary

log = logging.getLogger("runner")


def inspect(spec: RunSpec, run_dir: Path) -> dict[str, Any]:
    """Build the model and show every parameter and buffer, and how each got its values
    (the chapter's parameter access and initialization)."""
    placement = resolve_device(spec.device)
    log.info("device: %s", placement.reason)
    start = time.perf_counter()
    built = assemble(spec.model, spec.init, placement.device, spec.seed)
    seconds = time.perf_counter() - start
    total = summary.totals(built.net)
    log.info(
        "build: %s parameters in %.0f ms, %s", f"{total.parameters:,}", seconds * 1e3, built.why
    )
    init_rows = built.report(spec.init)
    ruled = sum(r.set_by != "framework default" for r in init_rows)
    log.info(
        "init: rules set %d of %d parameter tensors (the others keep their module's own init); "
        "then %d tie group(s), %d edit(s)",
        ruled,
        len(init_rows),
        len(spec.model.ties),
        len(spec.init.edits),
    )
    rows = summary.tensor_rows(built.net)
    summary.print_report(built.net, rows, total, built.sized, init_rows)
    print_layers(built.net, spec.model.input_shape)
    files = {"params": run_dir / "params.csv", "init": run_dir / "init.csv"}
    summary.write_csv(rows, files["params"])
    summary.write_init_csv(init_rows, files["init"])
    log.info("inspect: wrote %s and %s", files["params"], files["init"].name)
    return {
        "task": "inspect",
        "device": str(placement.device),
        "build": {"path": built.path, "why": built.why, "seconds": seconds},
        "totals": asdict(total),
        "files": {k: str(v) for k, v in files.items()},
    }


def inspect_checkpoint(net: Any, source: Path, device: str, run_dir: Path) -> dict[str, Any]:
    """task=inspect ckpt_path=…: the parameter table of a trained model, with its values."""
    total = summary.totals(net)
    rows = summary.tensor_rows(net)
    summary.print_report(net, rows, total, [], [])
    summary.print_values(net, str(source))
    files = {"params": run_dir / "params.csv"}
    summary.write_csv(rows, files["params"])
    log.info("inspect: %s; wrote %s", source, files["params"])
    return {
        "task": "inspect",
        "source": str(source),
        "device": device,
        "totals": asdict(total),
        "files": {k: str(v) for k, v in files.items()},
    }
