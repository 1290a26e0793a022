"""Seeds as an axis: the jobs of one configuration (the same overrides but for `seed`) pooled,
each final metric as mean, standard deviation, min–max and a 95 % confidence interval (Student's
t: a handful of seeds is not a normal sample), configurations ranked by the mean in the
objective's direction, and whether the best is told apart from the next by these seeds."""

import math
import statistics
from dataclasses import dataclass, field

from runner.sweep.records import JobRecord

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Spread:
    """One metric over the seeds of a configuration."""

    values: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float | None:
        """The sample standard deviation (n - 1); None for one seed."""
        return statistics.stdev(self.values) if self.n > 1 else None

    @property
    def interval(self) -> tuple[float, float] | None:
        """The 95 % confidence interval of the mean; None for one seed."""
        if self.std is None:
            return None
        half = t_quantile(self.n - 1) * self.std / math.sqrt(self.n)
        return self.mean - half, self.mean + half


@dataclass(frozen=True)
class Configuration:
    """The jobs that differ only in their seed."""

    label: str  # the overrides that set it apart from the others, less the seed
    jobs: tuple[JobRecord, ...]
    metrics: dict[str, Spread] = field(default_factory=dict)  # over the jobs that ended ok

    @property
    def seeds(self) -> list[str]:
        return [seed_of(r) for r in self.jobs]


def seed_of(record: JobRecord) -> str:
    return next((o.split("=", 1)[1] for o in record.overrides if _is_seed(o)), "")


def _is_seed(override: str) -> bool:
    return override.lstrip("+~").split("=", 1)[0] == "seed"


def configurations(records: list[JobRecord], labels: dict[int, str]) -> list[Configuration]:
    """The jobs grouped by their overrides less `seed`, in the order of their first job."""
    groups: dict[tuple[str, ...], list[JobRecord]] = {}
    for r in records:
        groups.setdefault(tuple(o for o in r.overrides if not _is_seed(o)), []).append(r)
    out = []
    for jobs in groups.values():
        label = " ".join(o for o in labels[jobs[0].number].split() if not _is_seed(o))
        if not label and len(groups) == 1:  # one configuration: what it is, not what differs
            label = " ".join(o for o in jobs[0].overrides if not _is_seed(o))
        done = [r for r in jobs if r.status in ("ok", "skipped")]
        names = dict.fromkeys(k for r in done for k in r.metrics)
        metrics = {
            m: Spread(tuple(v for r in done if (v := r.metric(m)) is not None)) for m in names
        }
        out.append(Configuration(label or "(no overrides)", tuple(jobs), metrics))
    return out


def ranked(configs: list[Configuration], objective: str, goal: str) -> list[Configuration]:
    """Best first by the objective's mean over seeds; configurations without it last."""
    sign = -1.0 if goal == "max" else 1.0

    def key(c: Configuration) -> tuple[int, float]:
        spread = c.metrics.get(objective)
        return (1, 0.0) if spread is None or not spread.n else (0, sign * spread.mean)

    return sorted(configs, key=key)


def resolution(configs: list[Configuration], objective: str) -> str:
    """What these seeds say about the best configuration against the next one (ranked list)."""
    scored = [c for c in configs if c.metrics.get(objective) and c.metrics[objective].n]
    if len(scored) < 2:
        return ""
    best, next_ = scored[0].metrics[objective], scored[1].metrics[objective]
    names = f"`{scored[0].label}` and `{scored[1].label}`"
    if best.interval is None or next_.interval is None:
        single = [c.label for c, s in zip(scored, (best, next_), strict=False) if s.n < 2]
        return (
            f"One seed for {' and '.join(f'`{x}`' for x in single)}: no spread, so nothing "
            f"tells whether the difference between {names} is more than seed-to-seed noise. "
            "Add seeds (`'seed=range(5)'`) to find out."
        )
    (lo1, hi1), (lo2, hi2) = best.interval, next_.interval
    if hi1 < lo2 or hi2 < lo1:
        return (
            f"The best, `{scored[0].label}`, is resolved from the next, `{scored[1].label}`: "
            f"their {CONFIDENCE:.0%} confidence intervals over {best.n} and {next_.n} seeds "
            "do not overlap."
        )
    need = seeds_to_resolve(best, next_)
    more = f"roughly {need} seeds each" if need is not None else "many more seeds"
    return (
        f"**Not resolved by these seeds:** the {CONFIDENCE:.0%} confidence intervals of "
        f"{names} overlap ({best.n} and {next_.n} seeds); at the spread measured, {more} "
        "would be needed to tell them apart."
    )


def seeds_to_resolve(a: Spread, b: Spread) -> int | None:
    """Roughly how many seeds each would separate the two intervals, if the means and standard
    deviations stayed as measured: n with t·(s_a + s_b)/√n < |mean_a - mean_b|."""
    difference = abs(a.mean - b.mean)
    spread = (a.std or 0.0) + (b.std or 0.0)
    if difference == 0.0:
        return None
    n = max(a.n, b.n)
    while n < 10_000:
        n += 1
        if t_quantile(n - 1) * spread / math.sqrt(n) < difference:
            return n
    return None


def t_quantile(df: int) -> float:
    """The two-sided 95 % quantile of Student's t with `df` degrees of freedom."""
    from scipy import stats  # scikit-learn's dependency: in every install

    return float(stats.t.ppf(0.5 + CONFIDENCE / 2, df))
