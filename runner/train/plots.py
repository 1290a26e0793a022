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
    import matplotlib.pyplot as plt

    names = list(initial)
    cols = min(4, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.6 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        # Only finite values can be binned; a run the NaN/Inf guard let go on has others.
        start, end = (t[torch.isfinite(t)].numpy() for t in (initial[name], final[name]))
        bad = int((~torch.isfinite(final[name])).sum())
        finite = torch.cat([torch.from_numpy(start), torch.from_numpy(end)])
        lo, hi = (finite.min().item(), finite.max().item()) if finite.numel() else (-1.0, 1.0)
        bins = 40 if hi > lo else 1
        ax.hist(
            start,
            bins=bins,
            range=(lo, hi) if hi > lo else None,
            color="0.6",
            alpha=0.7,
            label="init",
        )
        ax.hist(
            end,
            bins=bins,
            range=(lo, hi) if hi > lo else None,
            histtype="step",
            color="C0",
            lw=1.5,
            label="end",
        )
        title = name if len(name) <= 40 else "…" + name[-39:]
        ax.set_title(
            title + (f"\n({bad} NaN/Inf at the end, not drawn)" if bad else ""), fontsize=9
        )
        ax.tick_params(labelsize=7)
        ax.set_xlabel("value", fontsize=8)
        ax.set_ylabel("count", fontsize=8)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle("Parameter values: at init (grey) and at the end (blue)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


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
