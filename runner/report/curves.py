"""A run's logged curves, read back from Lightning's CSV log (`logs/metrics.csv`), and the
trivial baseline each metric is worth comparing with."""

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Point:
    step: float
    epoch: float | None
    value: float


def read_curves(run_dir: Path) -> dict[str, list[Point]]:
    """Metric → its points in step order: `train/loss` from the per-step values where logged
    (`train/loss_step`), else the per-epoch ones; statistics columns left out. {} with no CSV
    log (logger=none, a logger of another kind, a run that failed before its first log)."""
    try:
        with (run_dir / "logs" / "metrics.csv").open(newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, csv.Error):
        return {}
    columns = [c for c in (rows[0] if rows else {}) if "/" in c and not c.startswith("stats/")]
    curves: dict[str, list[Point]] = {}
    for column in columns:
        name = column.removesuffix("_step").removesuffix("_epoch")
        if column == name and f"{name}_step" in columns:
            continue  # the per-epoch mean of a per-step curve: the steps say more
        points = [p for row in rows if (p := _point(row, column)) is not None]
        if points:
            curves[name] = points
    return curves


def _point(row: dict[str, str], column: str) -> Point | None:
    try:
        value, step = float(row.get(column) or "nan"), float(row.get("step") or "nan")
    except ValueError:
        return None
    if not (math.isfinite(value) and math.isfinite(step)):
        return None
    try:
        epoch: float | None = float(row.get("epoch") or "")
    except ValueError:
        epoch = None
    return Point(step, epoch, value)


def baselines(config: dict[str, Any], metrics: list[str]) -> dict[str, tuple[float, str]]:
    """Metric → (value, what scores it) for the model that ignores its input: chance accuracy
    and the uniform prediction's cross-entropy for a classifier, 1.0 for the MSE of a
    regression on standardized targets (data=random: predicting the mean)."""
    data, model = config.get("data"), config.get("model")
    target = str(data.get("_target_", "")) if isinstance(data, dict) else ""
    classes = model.get("num_outputs") if isinstance(model, dict) else None
    out: dict[str, tuple[float, str]] = {}
    classifying = any(m.endswith("/acc") for m in metrics)
    for m in metrics:
        if classifying and isinstance(classes, int) and classes > 1:
            if m.endswith("/acc"):
                out[m] = (1.0 / classes, f"chance ({classes} classes)")
            elif m.endswith("/loss"):
                out[m] = (math.log(classes), "uniform guess")
        elif target.endswith("RandomData") and m.endswith("/loss"):
            out[m] = (1.0, "predicting the mean")
    return out
