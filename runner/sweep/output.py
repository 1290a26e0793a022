"""A comparison's files, in its directory: `summary.csv` (one row per job), `summary.json` (the
configurations ranked, each metric's spread over seeds), `summary.md` (the ranked table, what
the seeds resolve, every job, the failures spelled out), `summary.png` (the configurations
compared) and `report.html` (all of it in one page)."""

import csv
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runner.rundir import replace_file
from runner.sweep.markdown import markdown
from runner.sweep.records import DIAGNOSED, JobRecord, read_jobs
from runner.sweep.summary import Objective, Summary, summarize

log = logging.getLogger("runner")

_ORDER = ("train/loss", "val/loss", "test/loss", "train/acc", "val/acc", "test/acc")


def write_summary(sweep_dir: Path, objective: Objective, plot: bool = True) -> Summary:
    """Read every job of the sweep in `sweep_dir` and (re)write its summary files (`plot`: the
    picture and the report too, which the end of a sweep draws once)."""
    return write_files(
        summarize(read_jobs(sweep_dir), objective), sweep_dir, f"Sweep {sweep_dir}", plot
    )


def write_files(summary: Summary, directory: Path, title: str, plot: bool = True) -> Summary:
    metrics = _metric_columns(summary.records)
    files = [_write_csv(directory, summary, metrics)]
    files.append(
        _atomic(directory / "summary.json", lambda f: json.dump(_json(summary), f, indent=1))
    )
    files.append(
        _atomic(directory / "summary.md", lambda f: f.write(markdown(summary, title, metrics)))
    )
    if plot and summary.records:
        from runner.sweep.plot import plot_configurations
        from runner.sweep.report import write_report

        for name, draw in (
            ("summary.png", lambda p: plot_configurations(summary, p)),
            ("report.html", lambda p: write_report(summary, directory, title, metrics)),
        ):
            try:
                files.append(draw(directory / name))
            except Exception as e:  # a picture or a page: never lose the summary for it
                log.warning("sweep: %s not written (%s: %s)", name, type(e).__name__, e)
    return Summary(
        summary.records, summary.objective, summary.configs, summary.labels, tuple(files)
    )


def _metric_columns(records: list[JobRecord]) -> list[str]:
    names = {k for r in records for k in r.metrics if not k.endswith("_step")}
    return [m for m in _ORDER if m in names] + sorted(names - set(_ORDER))


def _json(summary: Summary) -> dict[str, Any]:
    return {
        "objective": summary.objective.name,
        "direction": summary.objective.goal,
        "resolution": summary.resolution,
        "configurations": [
            {
                "label": c.label,
                "jobs": [r.number for r in c.jobs],
                "seeds": c.seeds,
                "metrics": {
                    m: {
                        "n": s.n,
                        "mean": s.mean,
                        "std": s.std,
                        "min": min(s.values),
                        "max": max(s.values),
                        "ci95": list(s.interval) if s.interval else None,
                    }
                    for m, s in c.metrics.items()
                    if s.n
                },
            }
            for c in summary.configs
        ],
    }


def _write_csv(directory: Path, summary: Summary, metrics: list[str]) -> Path:
    columns = ["job", "status", "overrides", *metrics, "parameters", "seconds", *DIAGNOSED]
    columns += ["error", "dir"]
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
        for r in summary.records
    ]
    return _atomic(directory / "summary.csv", lambda f: _csv(f, columns, rows))


def _csv(f: Any, columns: list[str], rows: list[dict[str, Any]]) -> None:
    writer = csv.DictWriter(f, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)


def _atomic(path: Path, write: Callable[[Any], Any]) -> Path:
    """Write through a temp file and rename: a reader (or a parallel job) never sees half."""
    return replace_file(path, write, text=True)
