"""summary.png: the jobs of a sweep compared, readable with a dozen jobs or more.

The objective (validation loss by default) against the optimizer step, one line per job labelled
by the overrides that set it apart, read from each job's `logs/metrics.csv`; a bar chart of the
final value where no job has a curve (another logger, or jobs that all failed early).
"""

import csv
import math
from pathlib import Path

from runner.sweep.records import JobRecord


def plot_jobs(records: list[JobRecord], labels: dict[int, str], objective: str, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    curves = {r.number: _curve(r.directory, objective) for r in records}
    curves = {n: c for n, c in curves.items() if c}
    fig, ax = plt.subplots(figsize=(11, 5.5))
    if curves:
        colors = plt.get_cmap("tab20" if len(curves) > 10 else "tab10")
        styles = ("-", "--", ":", "-.")
        for i, (number, points) in enumerate(sorted(curves.items())):
            xs, ys = zip(*points, strict=True)
            style = styles[(i // colors.N) % len(styles)]
            ax.plot(
                xs,
                ys,
                style,
                marker=".",
                color=colors(i % colors.N),
                label=f"{number}: {labels[number]}",
            )
        ax.set_xlabel("optimizer step")
        if all(y > 0 for points in curves.values() for _, y in points):
            ax.set_yscale("log")
        title = f"{objective} per job"
    else:
        finals = [(r.number, r.metric(objective)) for r in records]
        shown = [(n, v) for n, v in finals if v is not None]
        # Positions, then the job numbers as labels (strings as x would be read as categories).
        ax.bar(range(len(shown)), [v for _, v in shown], color="C0")
        ax.set_xticks(range(len(shown)), [str(n) for n, _ in shown])
        ax.set_xlabel("job")
        title = f"final {objective} per job (no curves were logged)"
    failed = [r.number for r in records if r.status in ("failed", "interrupted", "killed")]
    if failed:
        title += f"; failed: {', '.join(map(str, failed))}"
    ax.set_ylabel(objective)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(
            fontsize=8,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            ncols=1 if len(curves) <= 20 else 2,
        )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _curve(directory: Path, objective: str) -> list[tuple[float, float]]:
    """(step, value) of `objective` from the job's Lightning CSV log; [] when there is none."""
    try:
        with (directory / "logs" / "metrics.csv").open(newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, csv.Error):
        return []
    points = []
    for row in rows:
        value, step = row.get(objective) or "", row.get("step") or ""
        try:
            x, y = float(step), float(value)
        except ValueError:
            continue
        if math.isfinite(y):
            points.append((x, y))
    return points
