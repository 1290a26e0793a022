"""Runs that were not one sweep, compared as if they were: read from their directories (a sweep's
directory adds every job of it), checked comparable (trained on the same data, ranked by one
objective they all logged), then summarized like a sweep."""

import logging
from pathlib import Path
from typing import Any

from runner.errors import ConfigError
from runner.sweep.records import JobRecord, read_job

log = logging.getLogger("runner")


def read_runs(directories: list[Path]) -> list[JobRecord]:
    """One record per training run, numbered in the order given. Raises ConfigError for a
    directory that holds no run."""
    runs: list[Path] = []
    for d in directories:
        jobs = (
            sorted(
                (j for j in d.iterdir() if j.name.isdigit() and (j / ".hydra").is_dir()),
                key=lambda j: int(j.name),
            )
            if d.is_dir()
            else []
        )
        if (d / "result.json").is_file():
            runs.append(d)
        elif jobs:
            runs += jobs
        else:
            raise ConfigError(
                [f"DIR: {str(d)!r} is not a run directory (no result.json) nor a sweep's"]
            )
    unique = list({d.resolve(): d for d in runs}.values())  # each run once, in the order given
    if len(unique) < len(runs):  # one run given twice would count as two seeds of it
        log.warning("compare: a run given more than once is compared once")
    records = []
    for number, d in enumerate(unique):
        record = read_job(d, number)
        records.append(
            JobRecord(**{**record.__dict__, "number": number, "overrides": _overrides(record, d)})
        )
    return records


def _overrides(record: JobRecord, directory: Path) -> tuple[str, ...]:
    """A single run's overrides (Hydra's record); a run from Python has none: its directory."""
    return record.overrides or (f"run={directory.name}",)


def check_comparable(records: list[JobRecord], objective: str) -> None:
    """Raises ConfigError naming what sets the runs apart: a task other than training,
    different data, or an objective one of them did not log."""
    problems = []
    others = [r for r in records if r.task and r.task != "train"]
    for r in others:
        problems.append(f"{r.directory}: task={r.task}; only training runs are compared")
    data = {r.number: _data(r.directory) for r in records}
    first = records[0]
    for r in records[1:]:
        if data[r.number] != data[first.number]:
            problems.append(
                f"{r.directory}: trained on other data than {first.directory} "
                f"({_difference(data[first.number], data[r.number])}); runs on different "
                "data are not comparable"
            )
    done = [r for r in records if r.status in ("ok", "skipped")]
    for r in done:
        if r.metric(objective) is None:
            logged = ", ".join(sorted(r.metrics)) or "none"
            problems.append(
                f"{r.directory}: logged no {objective!r} (its metrics: {logged}); a comparison "
                "ranks every run by one objective (--objective NAME)"
            )
    if problems:
        raise ConfigError(problems)


def _data(directory: Path) -> Any:
    """The run's data section as composed (interpolations kept), or the reason it is unknown."""
    from omegaconf import OmegaConf

    path = directory / ".hydra" / "config.yaml"
    try:
        loaded = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    except (OSError, ValueError) as e:
        return f"unknown ({path}: {e})"
    return loaded.get("data") if isinstance(loaded, dict) else None


def _difference(a: Any, b: Any) -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        keys = [k for k in dict.fromkeys([*a, *b]) if a.get(k) != b.get(k)]
        return ", ".join(f"data.{k}: {a.get(k)!r} vs {b.get(k)!r}" for k in keys[:4])
    return f"{a!r} vs {b!r}"
