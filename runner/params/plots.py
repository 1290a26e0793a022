"""The statistics as pictures: weight histograms at init vs at the end, and per-block
trajectories of the weight norm, the gradient norm and the update ratio (and, per ReLU layer,
the share of dead units)."""

import functools
import math
from pathlib import Path
from typing import Any

import torch


def plot(
    rows: list[tuple[int, str, str, str, str, float]],
    initial: dict[str, torch.Tensor],
    final: dict[str, torch.Tensor],
    out_dir: Path,
) -> list[Path]:
    """Write the PNGs into `out_dir`; return their paths."""
    pyplot()
    out_dir.mkdir(parents=True, exist_ok=True)
    return [
        _histograms(initial, final, out_dir / "weights.png"),
        _trajectories(rows, out_dir / "blocks.png"),
    ]


def _histograms(
    initial: dict[str, torch.Tensor], final: dict[str, torch.Tensor], path: Path
) -> Path:
    """One panel per tensor: its values at init (grey, filled) and at the end (blue line), in
    40 shared bins, each panel's value range written under it.

    All panels are drawn into one invisible Axes, each in its own cell: an Axes per panel, with
    its ticks and spines, was most of the drawing time (matplotlib's `hist` with a patch per
    bin, before that, cost seconds)."""
    plt = pyplot()

    names = list(initial)
    cols = min(4, len(names))
    rows = math.ceil(len(names) / cols)
    fig = plt.figure(figsize=(4 * cols, 2.2 * rows + 0.5))
    ax = fig.add_axes((0.0, 0.0, 1.0, 1 - 0.5 / (2.2 * rows + 0.5)))
    ax.set_xlim(0, cols)
    ax.set_ylim(0, rows)
    ax.axis("off")
    frames, fills, lines = [], [], []
    for k, name in enumerate(names):
        start, end = initial[name], final[name]
        bad = int((~torch.isfinite(end)).sum())
        edges, counts = _shared_bins(start, end)
        # The panel's cell: x in [x0, x0 + w], y in [y0, y0 + h], in cell units.
        x0, y0 = k % cols + 0.04, rows - 1 - k // cols + 0.16
        w, h = 0.92, 0.68
        lo, hi = edges[0], edges[-1]
        xs = [x0 + w * (e - lo) / (hi - lo) for e in edges]
        top = max(max(counts[0]), max(counts[1])) * 1.25 or 1
        fills.append(_steps(xs, [y0 + h * v / top for v in counts[0]], y0))
        lines.append(_steps(xs, [y0 + h * v / top for v in counts[1]], y0))
        frames.append([(x0, y0), (x0 + w, y0), (x0 + w, y0 + h), (x0, y0 + h), (x0, y0)])
        title = name if len(name) <= 40 else "…" + name[-39:]
        note = f"\n({bad} NaN/Inf at the end, not drawn)" if bad else ""
        ax.text(x0 + 0.01, y0 + h - 0.02, title + note, va="top", fontsize=8)
        ax.text(x0, y0 - 0.02, f"{lo:.3g}", va="top", ha="left", fontsize=7)
        ax.text(x0 + w, y0 - 0.02, f"{hi:.3g}", va="top", ha="right", fontsize=7)
    from matplotlib.collections import LineCollection, PolyCollection

    # All panels' histograms as three artists, not two per panel: each artist's drawing has
    # a fixed cost, and a network has tens of tensors.
    ax.add_collection(PolyCollection(fills, facecolors="0.6", edgecolors="none", alpha=0.7))
    ax.add_collection(LineCollection(lines, colors="C0", linewidths=1.5))
    ax.add_collection(LineCollection(frames, colors="0.3", linewidths=0.8))
    fig.suptitle(
        "Parameter values: at init (grey) and at the end (blue); under each panel its range"
    )
    save_png(fig, path, dpi=110)
    plt.close(fig)
    return path


def _steps(xs: list[float], ys: list[float], base: float) -> list[tuple[float, float]]:
    """A histogram's outline: up from the baseline at the first edge, across each bin at its
    height, down to the baseline at the last edge (what `stairs` draws)."""
    points = [(xs[0], base)]
    for left, right, y in zip(xs, xs[1:], ys, strict=False):
        points += [(left, y), (right, y)]
    return [*points, (xs[-1], base)]


def _shared_bins(
    start: torch.Tensor, end: torch.Tensor, bins: int = 40
) -> tuple[list[float], list[list[float]]]:
    """Bin edges over the finite values of both, and each one's counts (NaN/Inf left out)."""
    import numpy as np

    values = [t[torch.isfinite(t)].numpy() for t in (start, end)]
    both = np.concatenate(values)
    lo, hi = (float(both.min()), float(both.max())) if both.size else (-1.0, 1.0)
    if hi <= lo:  # one value (a constant init): one bin around it
        lo, hi, bins = lo - 0.5, hi + 0.5, 1
    edges = np.linspace(lo, hi, bins + 1)
    counts = [np.histogram(v, edges)[0].tolist() for v in values]
    return edges.tolist(), counts


def _trajectories(rows: list[tuple[int, str, str, str, str, float]], path: Path) -> Path:
    plt = pyplot()

    panels = [
        ("block", "norm", "weight L2 norm"),
        ("block", "grad_norm", "gradient L2 norm"),
        ("block", "update_ratio", "update ratio ‖Δw‖ / ‖w‖\n(log scale; zeros not drawn)"),
        ("activation", "dead_units", "dead ReLU units\n(share of the layer)"),
    ]
    panels = [p for p in panels if any(r[1] == p[0] and r[4] == p[1] for r in rows)]
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(10, 3 * len(panels)), sharex=True, squeeze=False
    )
    for ax, (kind, stat, label) in zip(axes[:, 0], panels, strict=True):
        # One line per block (per ReLU layer in the dead-units panel).
        names = list(dict.fromkeys(r[2] for r in rows if r[1] == kind))
        colors = plt.get_cmap("tab20" if len(names) > 10 else "tab10")
        for i, name in enumerate(names):
            points = [(r[0], r[5]) for r in rows if r[1] == kind and r[2] == name and r[4] == stat]
            points = [(x, y) for x, y in points if math.isfinite(y)]
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, ys, marker=".", color=colors(i % colors.N), label=name)
        ax.set_ylabel(label, fontsize=9)
        # Aligned at a fixed place, left of the widest tick labels (6×10⁻¹): align_ylabels
        # measured every panel's tick labels for every panel, most of the picture's cost.
        ax.yaxis.set_label_coords(-0.11, 0.5)
        drawn = [y for line in ax.get_lines() for y in line.get_ydata()]
        step_axis(ax)
        if stat == "update_ratio" and any(y > 0 for y in drawn):
            log_axis(ax, drawn)
        elif stat != "dead_units":
            linear_axis(ax)
        if stat == "dead_units":
            ax.set_ylim(-0.05, 1.05)
        ax.grid(alpha=0.3)
        if ax is axes[0, 0] or kind == "activation":
            ax.legend(
                title="block" if kind == "block" else "ReLU layer",
                fontsize=8,
                loc="upper left",
                bbox_to_anchor=(1.01, 1.0),
                ncols=1 if len(names) <= 20 else 2,
            )
    axes[-1, 0].set_xlabel("optimizer step")
    fig.suptitle("Per-block trajectories")
    # Fixed margins (the legends sit right of the panels) instead of tight_layout, which
    # measures every label first.
    height = 3 * len(panels)
    # The left margin holds a log axis's widest tick labels (6×10⁻¹) and a two-line label.
    fig.subplots_adjust(left=0.14, right=0.78, bottom=0.5 / height, top=1 - 0.5 / height)
    save_png(fig, path, dpi=110)
    plt.close(fig)
    return path


# Each tick is a handful of artists, made anew for every picture: they were most of a tiny
# run's drawing. The axes below keep to the ticks a reader needs.


def log_axis(ax: Any, values: list[float]) -> None:
    """A log y axis. When its positive values span more than a decade, the minor ticks sit at
    2× and 5× each power of ten, not at all eight (within one decade matplotlib labels them:
    all stay)."""
    ax.set_yscale("log")
    positive = [v for v in values if v > 0]
    if positive and max(positive) > 10 * min(positive):
        from matplotlib.ticker import LogLocator

        ax.yaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))


def step_axis(ax: Any) -> None:
    """An x axis of optimizer steps: at most seven ticks, on whole steps."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))


def linear_axis(ax: Any) -> None:
    """A linear y axis with at most six ticks (a 3-inch panel got nine)."""
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(nbins=5))


def pyplot() -> Any:
    """matplotlib.pyplot, drawing into files only (Agg, no display), its math text parsed once
    per process."""
    import matplotlib

    matplotlib.use("Agg")
    _share_math_text_parses()
    import matplotlib.pyplot as plt

    return plt


@functools.cache
def _share_math_text_parses() -> None:
    """Agg gives each renderer (one per picture) a math-text parser of its own, and matplotlib
    caches parses per parser, so a log axis's labels (10⁻¹, 10⁻², …) were parsed anew for every
    picture, tens of ms each time (a sweep draws three pictures per job). Renderers share one
    parser per output type: the same parses (a parse depends only on the text, the size and
    the font), each done once per process."""
    from matplotlib.backends.backend_agg import RendererAgg

    shared: dict[str, Any] = {}
    init = RendererAgg.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        parser = self.mathtext_parser
        self.mathtext_parser = shared.setdefault(getattr(parser, "_output_type", ""), parser)

    RendererAgg.__init__ = __init__  # type: ignore[method-assign]


def save_png(fig: Any, path: Path, dpi: int) -> Path:
    """`fig` as a PNG at `path`, replacing whatever is there (a link is never written through),
    with zlib's fastest level (~1.4x the bytes, a fraction of the time)."""
    from runner.rundir import replace_file

    return replace_file(
        path, lambda f: fig.savefig(f, format="png", dpi=dpi, pil_kwargs={"compress_level": 1})
    )
