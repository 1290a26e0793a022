"""The sweep's summary, in its root: `summary.csv` (one row per job), `summary.md` (the same
table with the best job and the failures spelled out) and `summary.png` (the jobs compared)."""

import csv
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.config.sections import DEFAULT_OBJECTIVE
from runner.sweep.records import DIAGNOSED, JobRecord, read_jobs, varying

log = logging.getLogger("runner")

FAILING = ("failed", "interrupted", "killed")
_ORDER = ("train/loss", "val/loss", "test/loss", "train/acc", "val/acc", "test/acc")


@dataclass(frozen=True)
class Summary:
    records: list[JobRecord]
    objective: str
    files: tuple[Path, ...]

    @property
    def failed(self) -> list[JobRecord]:
        return [r for r in self.records if r.status in FAILING]

    @property
    def best(self) -> JobRecord | None:
        scored = [r for r in self.records if r.metric(self.objective) is not None]
        return min(scored, key=lambda r: r.metric(self.objective) or 0.0) if scored else None


def write_summary(
    sweep_dir: Path, objective: str = DEFAULT_OBJECTIVE, plot: bool = True
) -> Summary:
    """Read every job of the sweep in `sweep_dir` and (re)write its summary files."""
    records = read_jobs(sweep_dir)
    labels = varying(records)
    metrics = _metric_columns(records)
    files = [_write_csv(sweep_dir, records, labels, metrics)]
    summary = Summary(records, objective, ())
    files.append(_write_markdown(sweep_dir, summary, labels, metrics))
    if plot and records:
        from runner.sweep.plot import plot_jobs

        try:
            files.append(plot_jobs(records, labels, objective, sweep_dir / "summary.png"))
        except Exception as e:  # a picture of the CSV: never lose the summary for it
            log.warning("sweep: summary.png not drawn (%s: %s)", type(e).__name__, e)
    return Summary(records, objective, tuple(files))


def _metric_columns(records: list[JobRecord]) -> list[str]:
    names = {k for r in records for k in r.metrics if not k.endswith("_step")}
    return [m for m in _ORDER if m in names] + sorted(names - set(_ORDER))


def _write_csv(
    sweep_dir: Path, records: list[JobRecord], labels: dict[int, str], metrics: list[str]
) -> Path:
    columns = [
        "job",
        "status",
        "overrides",
        *metrics,
        "parameters",
        "seconds",
        *DIAGNOSED,
        "error",
        "dir",
    ]
    rows = [
        {
            "job": r.number,
            "status": r.status,
            "overrides": " ".join(r.overrides),
            **{m: r.metrics.get(m, "") for m in metrics},
            "parameters": r.parameters if r.parameters is not None else "",
            "seconds": f"{r.seconds:.2f}" if r.seconds is not None else "",
            **{k: " ".join(r.diagnosis.get(k, [])) for k in DIAGNOSED},
            "error": r.error,
            "dir": str(r.directory),
        }
        for r in records
    ]
    return _atomic(sweep_dir / "summary.csv", lambda f: _csv(f, columns, rows))


def _csv(f: Any, columns: list[str], rows: list[dict[str, Any]]) -> None:
    writer = csv.DictWriter(f, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)


def _write_markdown(
    sweep_dir: Path, summary: Summary, labels: dict[int, str], metrics: list[str]
) -> Path:
    records = summary.records
    counts = {
        s: sum(r.status == s for r in records) for s in dict.fromkeys(r.status for r in records)
    }
    lines = [
        f"# Sweep {sweep_dir}",
        "",
        f"{len(records)} job(s): " + ", ".join(f"{n} {s}" for s, n in counts.items()) + ".",
    ]
    best = summary.best
    if best is not None:
        lines.append(
            f"Best by {summary.objective}: job {best.number} ({labels[best.number]}), "
            f"{best.metric(summary.objective):.4g}."
        )
    header = ["job", "status", "overrides", *metrics, "parameters", "seconds"]
    lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in records:
        cells = [
            str(r.number),
            f"**{r.status}**" if r.status in FAILING else r.status,
            f"`{labels[r.number]}`",
            *(_number(r.metrics.get(m)) for m in metrics),
            f"{r.parameters:,}" if r.parameters is not None else "",
            f"{r.seconds:.1f}" if r.seconds is not None else "",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    diagnosed = [r for r in records if r.diagnosis]
    if diagnosed:
        lines += ["", "## What the statistics found", ""]
        lines += [f"- job {r.number} (`{labels[r.number]}`): {_findings(r)}" for r in diagnosed]
    failed = summary.failed
    if failed:
        lines += ["", "## Failed jobs", ""]
        lines += [f"- job {r.number} (`{labels[r.number]}`), {r.status}: {r.error}" for r in failed]
    text = "\n".join(lines) + "\n"
    return _atomic(sweep_dir / "summary.md", lambda f: f.write(text))


def _findings(record: JobRecord) -> str:
    parts = []
    if "no_gradient" in record.diagnosis:
        parts.append("no gradient in " + ", ".join(map(repr, record.diagnosis["no_gradient"])))
    if "dead_units" in record.diagnosis:
        parts.append("dead ReLU units in " + ", ".join(map(repr, record.diagnosis["dead_units"])))
    return "; ".join(parts) + " (their runner.log says more)"


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def _atomic(path: Path, write: Callable[[Any], Any]) -> Path:
    """Write through a temp file and rename: a reader (or a parallel job) never sees half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", newline="") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
