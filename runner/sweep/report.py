"""A comparison's report.html: the headline (direction, best, what the seeds resolve), the
ranked configurations with their spreads, summary.png, and every job linked to its own report."""

import os
from pathlib import Path

from runner.report.html import Page
from runner.sweep.markdown import findings, headline, job_rows, ranking_rows
from runner.sweep.summary import Summary


def write_report(summary: Summary, directory: Path, title: str, metrics: list[str]) -> Path:
    page = Page(title)
    for line in headline(summary):
        page.paragraph(line.replace("**", "").replace("`", ""))
    header, rows = ranking_rows(summary, metrics)
    if rows:
        page.heading("Configurations, best first")
        page.table(header, rows)
    page.heading("Curves")
    page.image(directory / "summary.png", "the configurations compared, metric by metric")
    page.heading("Jobs")
    header, rows = job_rows(summary, metrics)
    links = {}
    for i, r in enumerate(summary.records):
        if (r.directory / "report.html").is_file():
            links[i] = os.path.relpath(r.directory / "report.html", directory)
    page.table(header, rows, links)
    diagnosed = [r for r in summary.records if r.diagnosis]
    if diagnosed:
        page.heading("What the statistics found")
        for r in diagnosed:
            page.paragraph(f"job {r.number} ({summary.labels[r.number]}): {findings(r)}")
    if summary.failed:
        page.heading("Failed jobs")
        for r in summary.failed:
            page.paragraph(
                f"job {r.number} ({summary.labels[r.number]}), {r.status}: {r.error}", css="bad"
            )
    return page.write(directory / "report.html")
