"""A run's report.html: what it ran (the config), how it went (status, metrics, curves), what
the statistics show (their plots and diagnosis), whether its checkpoint reproduces it (the
verification), and how to continue it (the resume command). Everything read from the run
directory and result.json: the page can be rebuilt from the files alone."""

from pathlib import Path
from typing import Any

import yaml

from runner.report.html import Page, esc
from runner.report.metrics_plot import plot_metrics

_DIAGNOSES = {
    "no_gradient": "no gradient reached these blocks",
    "dead_units": "dead ReLU units (never active on the probe batch) in these layers",
}


def write_run_report(run_dir: Path, result: dict[str, Any], config: dict[str, Any]) -> list[Path]:
    """plots/metrics.png (when the run logged curves) and report.html, in `run_dir`."""
    written = [p for p in [plot_metrics(run_dir, config)] if p is not None]
    page = Page(f"Run {run_dir}")
    status = str(result.get("status", "?"))
    summary = f"task={result.get('task', config.get('task', '?'))}, status {status}"
    if result.get("seconds") is not None:
        summary += f", {float(result['seconds']):.1f} s"
    page.paragraph(summary, css="ok" if status == "ok" else "bad")
    if result.get("error"):
        page.paragraph(f"error: {result['error']}", css="bad")
    metrics = result.get("metrics") or {}
    if metrics:
        page.heading("Final metrics")
        shown = {k: v for k, v in sorted(metrics.items()) if not k.endswith("_step")}
        page.table(["metric", "value"], [[k, f"{float(v):.4g}"] for k, v in shown.items()])
    page.heading("Curves")
    page.image(run_dir / "plots" / "metrics.png", "loss and accuracy against the step")
    if not (run_dir / "plots" / "metrics.png").is_file():
        page.paragraph("No curves: this run logged none to logs/metrics.csv (logger=csv does).")
    _statistics(page, run_dir, result.get("stats") or {})
    _verification(page, result.get("verification"))
    if result.get("resume"):
        page.heading("Continue this run")
        page.code(str(result["resume"]))
    page.heading("Config")
    page.code(yaml.safe_dump(config, sort_keys=False, default_flow_style=None))
    written.append(page.write(run_dir / "report.html"))
    return written


def _statistics(page: Page, run_dir: Path, stats: dict[str, Any]) -> None:
    plots = [run_dir / "plots" / name for name in ("blocks.png", "weights.png")]
    found = [(k, v) for k, v in stats.items() if k in _DIAGNOSES and v]
    warnings = list(stats.get("warnings") or [])
    if not any(p.is_file() for p in plots) and not found and not warnings:
        return
    page.heading("Parameter statistics")
    if found or warnings:
        items = [f"{_DIAGNOSES[k]}: {', '.join(map(str, v))}" for k, v in found]
        page.raw("<ul>" + "".join(f"<li>{esc(t)}</li>" for t in items + warnings) + "</ul>")
    else:
        page.paragraph("Diagnosis: every block received a gradient; no layer of dead units.")
    page.image(plots[0], "per-block trajectories: weight norm, gradient norm, update ratio")
    page.image(plots[1], "parameter values at init and at the end")


def _verification(page: Page, verification: Any) -> None:
    if not isinstance(verification, dict):
        return
    page.heading("Checkpoint verification")
    ok = bool(verification.get("ok"))
    page.paragraph(
        "the reloaded checkpoint reproduces the trained model"
        if ok
        else "it does NOT reproduce it",
        css="ok" if ok else "bad",
    )
    page.table(["", ""], [[str(k), str(v)] for k, v in verification.items()])
