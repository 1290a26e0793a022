"""What a finished fit says: the checkpoint it ended with, its log lines (fit, learned
weights, verification) and the fields of result.json that summarize it (metrics, statistics)."""

import logging
from pathlib import Path
from typing import Any

from runner.checkpoint import layout
from runner.checkpoint.files import safe_load
from runner.config.sections import TrainerSpec
from runner.errors import RunFailed
from runner.params.diagnosis import Diagnosis, summarize
from runner.train.callbacks.assemble import RunCallbacks
from runner.train.module import RunnerModule

log = logging.getLogger("runner")


def trained(last: Path, trainer: TrainerSpec) -> dict[str, Any]:
    """The checkpoint the fit ended with. Progress comes from it: with ddp_spawn this
    process's trainer never stepped."""
    if not last.is_file():  # Lightning found nothing to do (resumed past the end of an epoch)
        raise RunFailed(
            "the fit trained no step, so there is no checkpoint: the configured limits "
            f"(trainer.max_epochs={trainer.max_epochs}, trainer.max_steps="
            f"{trainer.max_steps}) were already reached; raise them"
        )
    return safe_load(last)


def log_fit(saved: dict[str, Any], seconds: float, metrics: dict[str, float]) -> None:
    epochs, steps = layout.epochs_done(saved), int(layout.global_step(saved))
    # max_steps may end an epoch part-way, which Lightning then counts as processed.
    part = "" if layout.at_epoch_end(saved) else ", the last of them cut short"
    log.info(
        "fit: %d epochs%s, %d steps in %.1f s; %s", epochs, part, steps, seconds, show(metrics)
    )


def learned(data: Any, module: RunnerModule) -> dict[str, Any] | None:
    """The book's linear regression: the learned weights next to the true ones."""
    learned = data.learned(module.net) if hasattr(data, "learned") else None
    if learned is not None:
        log.info(
            "result: w %s (true %s), b %.4f (true %g)",
            "[" + ", ".join(f"{v:.4f}" for v in learned["w"]) + "]",
            "[" + ", ".join(f"{v:g}" for v in learned["w_true"]) + "]",
            learned["b"],
            learned["b_true"],
        )
    return learned


def log_verification(last: Path, verification: dict[str, Any]) -> None:
    diff = verification["max_abs_diff"]
    log.info(
        "verify: reloaded %s from itself alone: outputs %s (%s), shared tensors %s: %s",
        last.name,
        "match" if diff == 0 else f"differ by ≤ {diff:.3g}",
        verification["comparison"],
        "intact" if verification["shared_tensors_intact"] else "BROKEN",
        "ok" if verification["ok"] else "FAILED",
    )


def stats(callbacks: RunCallbacks, run_dir: Path) -> dict[str, Any]:
    stats = callbacks.stats
    return {
        "csv": str(stats.csv) if stats.recording else None,
        "plots": sorted(str(p) for p in (run_dir / "plots").glob("*.png")),
        # Steps with NaN/Inf gradients that stats.on_nan=warn let through (this process).
        "non_finite_steps": callbacks.guard.bad_steps,
        # From the CSV, not the callback: under DDP the workers recorded it.
        **diagnosis(stats.csv),
    }


def diagnosis(csv_path: Path) -> dict[str, Any]:
    """The warnings the statistics made (blocks without gradient, dead ReLU units)."""
    findings = Diagnosis.replay(csv_path)
    return {"warnings": [f.text for f in findings], **summarize(findings)}


def floats(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if not k.endswith("_step")}


def show(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.4g}" for k, v in sorted(metrics.items()))
