"""summary.md: what a comparison supports, in words and tables. The configurations ranked by the
objective's mean over their seeds, with each one's spread; whether the best is resolved from the
next; then every job, what the statistics found, and the failures."""

from runner.sweep.records import JobRecord
from runner.sweep.seeds import Configuration, Spread
from runner.sweep.summary import FAILING, Summary


def headline(summary: Summary) -> list[str]:
    """The counts, the ranking's direction, the best, and what the seeds resolve."""
    records, objective = summary.records, summary.objective
    counts = {
        s: sum(r.status == s for r in records) for s in dict.fromkeys(r.status for r in records)
    }
    lines = [f"{len(records)} job(s): " + ", ".join(f"{n} {s}" for s, n in counts.items()) + "."]
    lines.append(f"Ranked by {objective.says}.")
    best = summary.best
    if best is not None:
        config = summary.configs[0]
        spread = config.metrics[objective.name]
        if spread.n > 1:
            lines.append(
                f"Best by {objective.name}: `{config.label}`, mean {number(spread.mean)} over "
                f"{spread.n} seeds (its best job: {best.number})."
            )
        else:
            lines.append(
                f"Best by {objective.name}: job {best.number} ({summary.labels[best.number]}), "
                f"{number(best.metric(objective.name))}."
            )
    if summary.resolution:
        lines.append(summary.resolution)
    lines += groups(records)
    return lines


def groups(records: list[JobRecord]) -> list[str]:
    """hydra/launcher=vectorized: which jobs were trained together, each group once."""
    seen: dict[tuple[int, ...], float | None] = {}
    for record in records:
        if record.group and record.group not in seen:
            seen[record.group] = record.group_seconds
    return [
        f"Trained as one (hydra/launcher=vectorized): jobs {', '.join(map(str, jobs))}"
        + (f", in {seconds:.2g} s." if seconds is not None else ".")
        for jobs, seconds in seen.items()
    ]


def spread_cells(spread: Spread | None) -> list[str]:
    """mean ± std, the 95 % interval, min–max: one metric over a configuration's seeds."""
    if spread is None or not spread.n:
        return ["", "", ""]
    if spread.std is None or spread.interval is None:
        return [number(spread.mean), "", ""]
    low, high = spread.interval
    return [
        f"{number(spread.mean)} ± {number(spread.std)}",
        f"[{number(low)}, {number(high)}]",
        f"{number(min(spread.values))}–{number(max(spread.values))}",
    ]


def ranking_rows(summary: Summary, metrics: list[str]) -> tuple[list[str], list[list[str]]]:
    """The ranked table: header and rows (the objective's spread, the other metrics' means)."""
    name = summary.objective.name
    others = [m for m in metrics if m != name]
    header = ["rank", "configuration", "seeds", f"{name} mean ± std", "95 % CI", "min–max"]
    header += [f"{m} mean" for m in others] + ["jobs"]
    rows = []
    for rank, c in enumerate(summary.configs, 1):
        spread = c.metrics.get(name)
        rows.append(
            [
                str(rank),
                c.label,
                str(spread.n if spread else 0),
                *spread_cells(spread),
                *(number(c.metrics[m].mean) if _has(c, m) else "" for m in others),
                ", ".join(str(r.number) for r in c.jobs),
            ]
        )
    return header, rows


def _has(config: Configuration, metric: str) -> bool:
    return metric in config.metrics and config.metrics[metric].n > 0


def job_rows(summary: Summary, metrics: list[str]) -> tuple[list[str], list[list[str]]]:
    header = ["job", "status", "overrides", *metrics, "parameters", "seconds"]
    rows = [
        [
            str(r.number),
            r.status,
            summary.labels[r.number],
            *(number(r.metrics.get(m)) for m in metrics),
            f"{r.parameters:,}" if r.parameters is not None else "",
            f"{r.seconds:.1f}" if r.seconds is not None else "",
        ]
        for r in summary.records
    ]
    return header, rows


def markdown(summary: Summary, title: str, metrics: list[str]) -> str:
    lines = [f"# {title}", "", *headline(summary)]
    header, rows = ranking_rows(summary, metrics)
    if rows:
        lines += ["", "## Configurations, best first", "", *_table(header, rows, code=1)]
    header, rows = job_rows(summary, metrics)
    for row in rows:
        row[1] = f"**{row[1]}**" if row[1] in FAILING else row[1]
    lines += ["", "## Jobs", "", *_table(header, rows, code=2)]
    diagnosed = [r for r in summary.records if r.diagnosis]
    if diagnosed:
        lines += ["", "## What the statistics found", ""]
        lines += [
            f"- job {r.number} (`{summary.labels[r.number]}`): {findings(r)}" for r in diagnosed
        ]
    if summary.failed:
        lines += ["", "## Failed jobs", ""]
        lines += [
            f"- job {r.number} (`{summary.labels[r.number]}`), {r.status}: {r.error}"
            for r in summary.failed
        ]
    return "\n".join(lines) + "\n"


def _table(header: list[str], rows: list[list[str]], code: int) -> list[str]:
    """A markdown table; column `code` (the overrides) as code."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [f"`{c}`" if i == code else c for i, c in enumerate(row)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def findings(record: JobRecord) -> str:
    parts = []
    if "no_gradient" in record.diagnosis:
        parts.append("no gradient in " + ", ".join(map(repr, record.diagnosis["no_gradient"])))
    if "dead_units" in record.diagnosis:
        parts.append("dead ReLU units in " + ", ".join(map(repr, record.diagnosis["dead_units"])))
    return "; ".join(parts) + " (their runner.log says more)"


def number(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"
