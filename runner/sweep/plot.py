"""summary.png: the configurations of a comparison side by side, readable with a dozen or more.

One panel per logged metric (the objective's first), each configuration a line: the mean over
its seeds, with a band from the lowest to the highest seed. Colours and line styles in ranking
order, labelled by rank and by the overrides that set the configuration apart (short keys,
rounded numbers); a log scale only where a panel spans more than a decade; the trivial baseline
(chance, predicting the mean) dashed. Where no job logged a curve: the final objective per
configuration, with its min–max over seeds.
"""

import re
from pathlib import Path
from typing import Any

from runner.params.plots import save_png
from runner.report.curves import baselines, read_curves
from runner.sweep.records import JobRecord
from runner.sweep.seeds import Configuration
from runner.sweep.summary import Summary

_PANELS = ("val/loss", "val/acc", "train/loss", "train/acc")
_STYLES = ("-", "--", "-.", ":")


def plot_configurations(summary: Summary, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    objective = summary.objective.name
    curves = {r.number: read_curves(r.directory) for r in summary.records}
    logged = {m for c in curves.values() for m in c}
    panels = [objective] if objective in logged else []
    panels += [m for m in _PANELS if m in logged and m != objective]
    if not panels:
        return _bars(summary, path, plt)
    cols = min(2, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.2 * cols + 3.2, 3.6 * rows), squeeze=False)
    colors = plt.get_cmap("tab10" if len(summary.configs) <= 10 else "tab20")
    lines = baselines(_config(summary.records), panels)
    for ax, metric in zip(axes.flat, panels, strict=False):
        _panel(ax, summary, curves, metric, lines.get(metric), colors)
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    handles, names = _legend_entries(axes.flat[: len(panels)])
    fig.legend(
        handles,
        names,
        loc="upper left",
        bbox_to_anchor=(1 - 3.0 / fig.get_figwidth(), 0.98),
        fontsize=8,
        ncols=1 if len(names) <= 24 else 2,
        title="best first; band: min–max over seeds",
        title_fontsize=8,
    )
    fig.suptitle(_title(summary), fontsize=10)
    fig.subplots_adjust(
        left=0.07,
        right=1 - 3.2 / fig.get_figwidth(),
        top=1 - 0.75 / fig.get_figheight(),
        hspace=0.35,
        wspace=0.25,
    )
    save_png(fig, path, dpi=100)
    plt.close(fig)
    return path


def _panel(
    ax: Any,
    summary: Summary,
    curves: dict[int, dict[str, Any]],
    metric: str,
    baseline: tuple[float, str] | None,
    colors: Any,
) -> None:
    """One metric: each configuration's mean line and band, the baseline, the scale."""
    # Worst first, so that the best configurations' lines are drawn on top.
    for rank, config in reversed(list(enumerate(summary.configs))):
        mean = _mean_curve(config, curves, metric)
        if not mean:
            continue
        steps, low, middle, high = zip(*mean, strict=True)
        color, style = colors(rank % colors.N), _STYLES[(rank // colors.N) % len(_STYLES)]
        ax.plot(steps, middle, style, color=color, lw=1.5, label=_legend(rank, config))
        if len(config.jobs) > 1:
            ax.fill_between(steps, low, high, color=color, alpha=0.15, lw=0)
    if baseline is not None:
        value, what = baseline
        ax.axhline(value, color="0.3", ls=(0, (4, 3)), lw=1, label=f"{what}: {value:.3g}")
    values = [y for line in ax.get_lines() for y in line.get_ydata()]
    if values and min(values) > 0 and max(values) / min(values) > 10:
        ax.set_yscale("log")
    way = "higher" if summary.objective.goal == "max" else "lower"
    ax.set_title(
        metric + (f" (ranks: {way} is better)" if metric == summary.objective.name else "")
    )
    ax.set_xlabel("optimizer step", fontsize=8)
    ax.grid(alpha=0.3)


def _mean_curve(
    config: Configuration, curves: dict[int, dict[str, Any]], metric: str
) -> list[tuple[float, float, float, float]]:
    """(step, lowest, mean, highest) over the configuration's seeds, at the steps all of them
    logged (a seed that failed early would otherwise pull the mean at its last steps)."""
    by_step: dict[float, list[float]] = {}
    done = [r for r in config.jobs if r.status in ("ok", "skipped")]
    seeds = [s for r in done if (s := curves[r.number].get(metric))]
    for points in seeds:
        for p in points:
            by_step.setdefault(p.step, []).append(p.value)
    return [
        (step, min(v), sum(v) / len(v), max(v))
        for step, v in sorted(by_step.items())
        if len(v) == len(seeds)
    ]


def _legend(rank: int, config: Configuration) -> str:
    n = len([r for r in config.jobs if r.status in ("ok", "skipped")])
    seeds = f" ({n} seeds)" if n > 1 else ""
    return f"#{rank + 1} {short(config.label)}{seeds}"


def _legend_entries(axes: Any) -> tuple[list[Any], list[str]]:
    """Each label once, over every panel (a configuration missing from one panel may be in
    another)."""
    entries: dict[str, Any] = {}
    for ax in axes:
        for handle, name in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(name, handle)
    names = sorted(entries, key=lambda n: (0, int(n[1:].split()[0])) if n[:1] == "#" else (1, 0))
    return [entries[n] for n in names], names


def short(label: str) -> str:
    """`optim.optimizer.lr=0.0123456789 init=xavier` → `lr=0.0123 init=xavier`: the last part
    of each key, numbers to 3 significant digits."""
    parts = []
    for override in label.split():
        key, _, value = override.partition("=")
        key = key.lstrip("+~").rsplit(".", 1)[-1] if "=" in override else key
        value = re.sub(r"-?\d+\.\d+(e-?\d+)?|\d+e-?\d+", lambda m: f"{float(m[0]):.3g}", value)
        parts.append(f"{key}={value}" if "=" in override else override)
    return " ".join(parts)


def _title(summary: Summary) -> str:
    failed = [r.number for r in summary.failed]
    title = f"{len(summary.configs)} configuration(s), {len(summary.records)} job(s)"
    if failed:
        title += f"; failed jobs: {', '.join(map(str, failed))}"
    return title


def _config(records: list[JobRecord]) -> dict[str, Any]:
    """The first job's composed config (for the baselines), read as plain YAML."""
    from omegaconf import OmegaConf

    for r in records:
        try:
            loaded = OmegaConf.to_container(
                OmegaConf.load(r.directory / ".hydra" / "config.yaml"), resolve=True
            )
        except Exception:  # unreadable or unresolvable here: no baselines
            continue
        if isinstance(loaded, dict):
            return {str(k): v for k, v in loaded.items()}
    return {}


def _bars(summary: Summary, path: Path, plt: Any) -> Path:
    name = summary.objective.name
    shown = [c for c in summary.configs if name in c.metrics and c.metrics[name].n]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(shown) + 3), 4.5))
    means = [c.metrics[name].mean for c in shown]
    low = [m - min(c.metrics[name].values) for m, c in zip(means, shown, strict=True)]
    high = [max(c.metrics[name].values) - m for m, c in zip(means, shown, strict=True)]
    ax.bar(range(len(shown)), means, yerr=[low, high], color="C0", capsize=3)
    ax.set_xticks(range(len(shown)), [f"#{i + 1}" for i in range(len(shown))])
    ax.set_ylabel(name)
    ax.set_title(f"final {name} per configuration, best first (no curves were logged)", fontsize=9)
    fig.tight_layout()
    save_png(fig, path, dpi=100)
    plt.close(fig)
    return path
