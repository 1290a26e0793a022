"""The statistics as pictures: weight histograms at init vs at the end, and per-block
trajectories of the weight norm, the gradient norm and the update ratio (and, per ReLU layer,
the share of dead units)."""

import math
from pathlib import Path

import torch


def plot(
    rows: list[tuple[int, str, str, str, str, float]],
    initial: dict[str, torch.Tensor],
    final: dict[str, torch.Tensor],
    out_dir: Path,
) -> list[Path]:
    """Write the PNGs into `out_dir`; return their paths."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    out_dir.mkdir(parents=True, exist_ok=True)
    return [
        _histograms(initial, final, out_dir / "weights.png"),
        _trajectories(rows, out_dir / "blocks.png"),
    ]


def _histograms(
    initial: dict[str, torch.Tensor], final: dict[str, torch.Tensor], path: Path
) -> Path:
    """One panel per tensor: its values at init (grey, filled) and at the end (blue line), in
    40 shared bins. Counted with torch and drawn as two step artists per panel: matplotlib's
    `hist` makes a patch per bin, which cost seconds for a model of a few dozen tensors."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    names = list(initial)
    cols = min(4, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.6 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        start, end = initial[name], final[name]
        bad = int((~torch.isfinite(end)).sum())
        edges, counts = _shared_bins(start, end)
        ax.stairs(counts[0], edges, fill=True, color="0.6", alpha=0.7, label="init")
        ax.stairs(counts[1], edges, color="C0", lw=1.5, label="end")
        title = name if len(name) <= 40 else "…" + name[-39:]
        # A label inside the panel, and few ticks: titles and tick labels are most of the
        # drawing time of a figure with many panels.
        ax.text(
            0.02,
            0.97,
            title + (f"\n({bad} NaN/Inf at the end, not drawn)" if bad else ""),
            transform=ax.transAxes,
            va="top",
            fontsize=8,
        )
        ax.set_ylim(0, max(max(counts[0]), max(counts[1])) * 1.3 or 1)
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.set_yticks([])  # counts: the shapes matter, and both share the bins
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    for col in range(cols):  # under the lowest panel of each column
        axes[(len(names) - 1 - col) // cols, col].set_xlabel("value", fontsize=8)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle("Parameter values: at init (grey) and at the end (blue)")
    # Fixed margins instead of tight_layout, which measures every label of every panel.
    fig.subplots_adjust(
        left=0.06,
        right=0.98,
        bottom=0.5 / (2.6 * rows),
        top=1 - 0.55 / (2.6 * rows),
        hspace=0.3,
        wspace=0.25,
    )
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


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
    import matplotlib.pyplot as plt

    panels = [
        ("block", "norm", "weight L2 norm"),
        ("block", "grad_norm", "gradient L2 norm"),
        ("block", "update_ratio", "‖Δw‖ / ‖w‖ since last record\n(log scale; zeros not drawn)"),
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
        drawn = [y for line in ax.get_lines() for y in line.get_ydata()]
        if stat == "update_ratio" and any(y > 0 for y in drawn):
            ax.set_yscale("log")
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
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
