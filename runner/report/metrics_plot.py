"""plots/metrics.png: a run's loss (and accuracy) against the optimizer step, the epoch on the
top axis; training per logged step, validation per epoch, the trivial baseline dashed."""

import math
from pathlib import Path
from typing import Any

from runner.params.plots import log_axis, pyplot, save_png, step_axis
from runner.report.curves import Point, baselines, read_curves


def plot_metrics(run_dir: Path, config: dict[str, Any]) -> Path | None:
    """Write `run_dir/plots/metrics.png`; None when the run logged no curve to read."""
    curves = read_curves(run_dir)
    kinds = [k for k in ("loss", "acc") if any(n.endswith("/" + k) for n in curves)]
    if not kinds:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, len(kinds), figsize=(6 * len(kinds), 4), squeeze=False)
    lines = baselines(config, list(curves))
    losses = [p.value for n, c in curves.items() if n.endswith("/loss") for p in c]
    for ax, kind in zip(axes[0], kinds, strict=True):
        for i, name in enumerate(n for n in sorted(curves) if n.endswith("/" + kind)):
            points = curves[name]
            many = len(points) > 30
            ax.plot(
                [p.step for p in points],
                [p.value for p in points],
                marker="" if many else "o",
                markersize=3,
                lw=1 if many else 1.6,
                color=f"C{i}",
                label=name,
            )
            if name in lines and name.startswith("val/"):
                value, what = lines[name]
                ax.axhline(value, color="0.4", ls="--", lw=1, label=f"{what}: {value:.3g}")
        step_axis(ax)
        if kind == "loss" and _decades(losses) > 1:
            log_axis(ax, losses)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(kind)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        epochs = _epoch_axis(ax, [p for c in curves.values() for p in c])  # alike in each
    fig.suptitle(f"{run_dir.name}: metrics", fontsize=10)
    _margins(fig, len(kinds), epochs)
    path = run_dir / "plots" / "metrics.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_png(fig, path, dpi=100)
    plt.close(fig)
    return path


def _margins(fig: Any, panels: int, epoch_axis: bool) -> None:
    """Fixed margins, in inches, that hold the tick labels, the axis labels, the epoch axis on
    top and the title. tight_layout measured them by drawing the whole figure once more, which
    was half of the picture's cost, paid by every run of a sweep."""
    width, height = fig.get_size_inches()
    left, right, gap = 1.05, 0.2, 1.15  # room for a log axis's labels (6×10⁻¹) and its name
    panel = (width - left - right - gap * (panels - 1)) / panels
    fig.subplots_adjust(
        left=left / width,
        right=1 - right / width,
        bottom=0.6 / height,
        top=1 - (0.8 if epoch_axis else 0.5) / height,
        wspace=gap / panel,
    )


def _decades(values: list[float]) -> float:
    """How many powers of ten the values span (0 when one is not positive: no log axis)."""
    if not values or min(values) <= 0:
        return 0.0
    return math.log10(max(values) / min(values))


def _epoch_axis(ax: Any, points: list[Point]) -> bool:
    """The epoch on the top axis, from the (step, epoch) pairs the log holds; whether there
    was one (a single epoch has no scale to show)."""
    import numpy as np

    ends: dict[float, float] = {}  # epoch → its last step: epoch e + 1 begins there
    for p in points:
        if p.epoch is not None:
            ends[p.epoch] = max(ends.get(p.epoch, p.step), p.step)
    if len(ends) < 2:
        return False
    steps = np.array([0.0, *(ends[e] for e in sorted(ends))])
    epochs = np.array([0.0, *(e + 1 for e in sorted(ends))])

    def along(x: Any, xs: Any, ys: Any) -> Any:
        """Piecewise linear through the points, and on past both ends (np.interp would clamp
        there, and the axis's margins would squeeze every tick out of place)."""
        x = np.asarray(x, dtype=float)
        first = (ys[1] - ys[0]) / (xs[1] - xs[0])
        last = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
        inside = np.interp(x, xs, ys)
        return np.where(
            x < xs[0],
            ys[0] + (x - xs[0]) * first,
            np.where(x > xs[-1], ys[-1] + (x - xs[-1]) * last, inside),
        )

    top = ax.secondary_xaxis(
        "top", functions=(lambda x: along(x, steps, epochs), lambda e: along(e, epochs, steps))
    )
    from matplotlib.ticker import MaxNLocator

    top.xaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))  # not 0.25, 0.5, …
    top.set_xlabel("epoch", fontsize=8)
    return True
