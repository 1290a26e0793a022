"""A comparison summarized: its jobs' records, the objective and its direction, the
configurations ranked by their mean over seeds (runner.sweep.output writes it to files)."""

from dataclasses import dataclass
from pathlib import Path

from runner.config.sections import SweepSpec, infer_direction
from runner.errors import ConfigError, did_you_mean, one_of
from runner.sweep.records import JobRecord, varying
from runner.sweep.seeds import Configuration, configurations, ranked, resolution

FAILING = ("failed", "interrupted", "killed")


@dataclass(frozen=True)
class Objective:
    """The metric that ranks, and which way is better."""

    name: str
    goal: str  # max | min
    given: bool  # sweep.direction (or --direction) said so; else inferred from the name

    @classmethod
    def of(cls, sweep: SweepSpec) -> "Objective":
        return cls(sweep.objective, sweep.goal, sweep.direction is not None)

    @property
    def says(self) -> str:
        way = "higher" if self.goal == "max" else "lower"
        why = "as sweep.direction says" if self.given else "inferred from its name"
        return f"{self.name}, {way} is better ({why})"


@dataclass(frozen=True)
class Summary:
    records: list[JobRecord]
    objective: Objective
    configs: list[Configuration]  # ranked, best first
    labels: dict[int, str]
    files: tuple[Path, ...] = ()

    @property
    def failed(self) -> list[JobRecord]:
        return [r for r in self.records if r.status in FAILING]

    @property
    def best(self) -> JobRecord | None:
        """The best job of the best configuration, of those its mean counts (a failed job's
        metrics are in none)."""
        name = self.objective.name
        jobs = self.configs[0].jobs if self.configs else ()
        scored = [r for r in jobs if r.status in ("ok", "skipped") and r.metric(name) is not None]
        sign = 1.0 if self.objective.goal == "max" else -1.0
        return max(scored, key=lambda r: sign * (r.metric(name) or 0.0)) if scored else None

    @property
    def resolution(self) -> str:
        return resolution(self.configs, self.objective.name)

    def missing_objective(self) -> ConfigError | None:
        """The objective logged by no job although a training job ended ok: a typo."""
        trained = [r for r in self.records if r.status in ("ok", "skipped") and r.task == "train"]
        if not trained or any(r.metric(self.objective.name) is not None for r in self.records):
            return None
        logged = sorted({m for r in trained for m in r.metrics})
        return ConfigError(
            [
                f"sweep.objective: no job logged {self.objective.name!r}; the jobs logged "
                f"{one_of(logged) or 'no metrics'}{did_you_mean(self.objective.name, logged)}"
            ]
        )


def summarize(records: list[JobRecord], objective: Objective) -> Summary:
    labels = varying(records)
    configs = ranked(configurations(records, labels), objective.name, objective.goal)
    return Summary(records, objective, configs, labels)


def objective_for(name: str, direction: str | None) -> Objective:
    """The objective of `runner.sweep` or `runner.compare`: --direction, else inferred.
    Raises ConfigError when the name says neither way."""
    if direction is None and infer_direction(name) is None:
        raise ConfigError(
            [
                f"--objective: cannot tell from the name {name!r} whether higher or lower is "
                "better; allowed: --direction max or --direction min"
            ]
        )
    return Objective.of(SweepSpec(objective=name, direction=direction))
