"""The statistics as pictures: weight histograms at init vs at the end, and per-block
trajectories of the weight norm, the gradient norm and the update ratio."""

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
        ("norm", "weight L2 norm"),
        ("grad_norm", "gradient L2 norm"),
        ("update_ratio", "‖Δw‖ / ‖w‖ since last record\n(log scale; zeros not drawn)"),
    ]
    panels = [(s, label) for s, label in panels if any(r[4] == s and r[1] == "block" for r in rows)]
    blocks = list(dict.fromkeys(r[2] for r in rows if r[1] == "block"))
    colors = plt.get_cmap("tab20" if len(blocks) > 10 else "tab10")
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(10, 3 * len(panels)), sharex=True, squeeze=False
    )
    for ax, (stat, label) in zip(axes[:, 0], panels, strict=True):
        for i, block in enumerate(blocks):
            points = [
                (r[0], r[5]) for r in rows if r[1] == "block" and r[2] == block and r[4] == stat
            ]
            points = [(x, y) for x, y in points if math.isfinite(y)]
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, ys, marker=".", color=colors(i % colors.N), label=block)
        ax.set_ylabel(label, fontsize=9)
        drawn = [y for line in ax.get_lines() for y in line.get_ydata()]
        if stat == "update_ratio" and any(y > 0 for y in drawn):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("optimizer step")
    axes[0, 0].legend(
        title="block",
        fontsize=8,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        ncols=1 if len(blocks) <= 20 else 2,
    )
    fig.suptitle("Per-block trajectories")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
