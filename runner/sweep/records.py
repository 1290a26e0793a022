"""A sweep directory read back: one record per job, from each job's result.json.

Every job directory (`hydra.sweep.dir/<job number>`) holds Hydra's `.hydra/` as soon as the job
starts and `result.json` once it ends, however it ends (ok, failed, interrupted). A directory
with no result.json is a job still running (its lock is held) or one that was killed outright.
"""

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.config.arguments import is_int
from runner.config.values import is_number
from runner.rundir import in_use, read_result

STATUSES = ("ok", "failed", "interrupted", "skipped", "running", "killed")
DIAGNOSED = ("no_gradient", "dead_units")  # result.json's stats keys that name what went wrong


@dataclass(frozen=True)
class JobRecord:
    number: int
    status: str  # one of STATUSES; "skipped": done by an earlier invocation, kept (resume)
    overrides: tuple[str, ...]
    metrics: dict[str, float] = field(default_factory=dict)
    parameters: int | None = None
    seconds: float | None = None
    error: str = ""
    directory: Path = Path()
    attempts: int = 1
    task: str = ""
    # What the statistics diagnosed: {"no_gradient": [blocks], "dead_units": [ReLU layers]}.
    diagnosis: dict[str, list[str]] = field(default_factory=dict)
    # hydra/launcher=vectorized: the jobs it was trained with as one, and how long that took.
    group: tuple[int, ...] = ()
    group_seconds: float | None = None
    config_error: bool = False  # it failed on a mistake in its config (a run would exit 2)

    def metric(self, name: str) -> float | None:
        value = self.metrics.get(name)
        return value if value is not None and math.isfinite(value) else None


def read_jobs(sweep_dir: Path) -> list[JobRecord]:
    """Every job of the sweep in `sweep_dir`, by job number."""
    records = []
    for directory in sweep_dir.iterdir() if sweep_dir.is_dir() else []:
        if directory.is_dir() and directory.name.isdigit() and (directory / ".hydra").is_dir():
            records.append(read_job(directory))
    return sorted(records, key=lambda r: r.number)


def read_job(directory: Path, number: int | None = None) -> JobRecord:
    """The job in `directory` (numbered `number`, else by its result or its directory)."""
    result = read_result(directory)
    listed = result.get("overrides")
    overrides = tuple(map(str, listed) if isinstance(listed, list) else _hydra_overrides(directory))
    if number is None:
        number = _count(result.get("job"), None)
        number = int(directory.name) if number is None else number
    if not result:
        if (directory / "result.json").exists() or (directory / "result.json").is_symlink():
            error = "its result.json is unreadable (not a JSON object of the runner's)"
            return JobRecord(number, "failed", overrides, error=error, directory=directory)
        status = "running" if in_use(directory) else "killed"
        return JobRecord(number, status, overrides, directory=directory)
    stats = _mapping(result.get("stats"))
    vectorized = _mapping(result.get("vectorized"))
    jobs = vectorized.get("jobs")
    group = tuple(int(j) for j in jobs if is_int(j)) if isinstance(jobs, list) else ()
    seconds = vectorized.get("group_seconds")
    return JobRecord(
        number=number,
        status=_status(result),
        overrides=overrides,
        metrics={k: v for k, v in _mapping(result.get("metrics")).items() if is_number(v)},
        parameters=_count(result.get("parameters"), None),
        seconds=result.get("seconds") if is_number(result.get("seconds")) else None,
        error=str(result.get("error") or _interruption(result)),
        directory=directory,
        attempts=_count(result.get("attempt"), 1),
        task=str(result.get("task") or ""),
        diagnosis={
            k: [str(x) for x in v] for k in DIAGNOSED if isinstance(v := stats.get(k), list)
        },
        group=group,
        group_seconds=float(seconds)
        if isinstance(seconds, int | float) and is_number(seconds)
        else None,
        config_error=result.get("config_error") is True and _status(result) == "failed",
    )


# A result.json is read as what it holds, whoever wrote it: values of the wrong type (a null
# metric, a text where a count belongs) are left out, not a reason to fail the whole summary.
def _status(result: dict[str, Any]) -> str:
    status = result.get("sweep_status") or result.get("status")
    return status if status in STATUSES else "failed"


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _count(value: Any, default: Any) -> Any:
    return value if is_int(value) else default


def varying(records: list[JobRecord]) -> dict[int, str]:
    """Each job's label: its overrides that not every job shares (`model=rgnet init=xavier`)."""
    if not records:
        return {}
    common = set(records[0].overrides).intersection(*(r.overrides for r in records[1:]))
    return {
        r.number: " ".join(o for o in r.overrides if o not in common) or "(no overrides)"
        for r in records
    }


def _interruption(result: dict[str, Any]) -> str:
    if result.get("status") != "interrupted":
        return ""
    step = result.get("step")
    kept = f"last.ckpt kept at step {step}" if step is not None else "no checkpoint of that step"
    return f"{result.get('signal', 'a signal')}; {kept}; sweep.resume=true finishes it"


def _hydra_overrides(directory: Path) -> list[str]:
    """The job's overrides from Hydra's own record, for a job that never wrote result.json."""
    try:
        lines = (directory / ".hydra" / "overrides.yaml").read_text().splitlines()
    except OSError:
        return []
    return [line[2:].strip().strip("'\"") for line in lines if line.startswith("- ")]
