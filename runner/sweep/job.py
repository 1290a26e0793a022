"""One job of a sweep: who it is (its number, overrides and the option of every config group),
and, with `sweep.resume=true`, what to do with what an earlier invocation left in its directory:
a job that ended ok is skipped, an interrupted (or killed) one resumes from its last.ckpt, a
failed one runs again. An earlier attempt's files are moved to `attempts/<n>/`, never deleted.
"""

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.errors import ConfigError
from runner.rundir import RUN_FILES, read_json, read_result, set_aside_previous, write_json


@dataclass(frozen=True)
class Job:
    number: int
    overrides: tuple[str, ...]  # as given on the command line, less sweep.resume
    choices: dict[str, str]  # config group → option
    directory: Path

    @property
    def record(self) -> dict[str, Any]:
        """What result.json says about the job, whatever its outcome."""
        return {"job": self.number, "overrides": list(self.overrides), "choices": self.choices}


@dataclass(frozen=True)
class Plan:
    action: str  # "run", "skip" or "resume"
    checkpoint: Path | None = None
    previous: dict[str, Any] = field(default_factory=dict)
    attempt: int = 1


def plan(job: Job) -> Plan:
    """What `sweep.resume=true` does with this job. Raises ConfigError when the directory holds
    another job under the same number (a different sweep)."""
    previous = read_result(job.directory)
    last = job.directory / "checkpoints" / "last.ckpt"
    if not previous:
        return Plan("resume", last) if last.is_file() else Plan("run")  # killed: no record
    was = previous.get("overrides")
    if was is not None and list(was) != list(job.overrides):
        raise ConfigError(
            [
                f"hydra.sweep.dir: job {job.number} in {str(job.directory.parent)!r} ran "
                f"{' '.join(was) or '(no overrides)'}; this sweep's job {job.number} is "
                f"{' '.join(job.overrides) or '(no overrides)'}. Resume a sweep with the same "
                "command, or give this one its own hydra.sweep.dir"
            ]
        )
    attempt = int(previous.get("attempt", 1)) + 1
    status = previous.get("status")
    if status == "ok":
        return Plan("skip", previous=previous, attempt=attempt - 1)
    checkpoint = Path(str(previous.get("checkpoint") or last))
    if status == "interrupted" and checkpoint.is_file():
        return Plan("resume", checkpoint, previous, attempt)
    return Plan("run", previous=previous, attempt=attempt)


def finished(checkpoint: Path | None, trainer: Any) -> bool:
    """Whether `checkpoint` already holds the job's whole training (the `trainer` section's
    max_epochs or max_steps): a job stopped while it tested, verified or reported (a vectorized
    member's job does only that, its training done with its group's). Resumed, it would be
    refused as already there: it runs again instead."""
    from runner.checkpoint.files import safe_load
    from runner.checkpoint.resume import limit_reached

    trainer = trainer or {}
    if checkpoint is None:
        return False
    try:
        saved = safe_load(checkpoint)
        return limit_reached(saved, trainer.get("max_epochs"), trainer.get("max_steps")) is not None
    except Exception:  # damaged or unreadable: the resume says what is wrong with it
        return False


SWEEP_RECORD = ".runner-sweep.json"  # the sweep a directory holds: its command-line overrides


def hold_sweep(sweep_dir: Path, overrides: tuple[str, ...], resume: bool) -> None:
    """Record which sweep `sweep_dir` holds (its overrides, less sweep.resume), before any job
    runs, so that `sweep.resume=true` continues that sweep only: every job's `.hydra/` would be
    rewritten before the job could tell, and a killed job has no result.json to tell by.
    Raises ConfigError when resume is asked with other overrides than the sweep's."""
    _check_job_folders(sweep_dir)
    record = sweep_dir / SWEEP_RECORD
    was = read_json(record).get("overrides")
    if was is None or not resume:  # a new sweep here: it is the one a resume continues
        sweep_dir.mkdir(parents=True, exist_ok=True)
        write_json(record, {"overrides": list(overrides)})
    elif sorted(map(str, was)) != sorted(overrides):
        raise ConfigError(
            [
                f"sweep.resume: {str(sweep_dir)!r} holds the sweep of "
                f"{' '.join(was) or '(no overrides)'}, not of "
                f"{' '.join(overrides) or '(no overrides)'}; allowed: the same overrides as "
                "that sweep (its command plus sweep.resume=true), or another hydra.sweep.dir"
            ]
        )
    if resume:
        keep_hydra_records(sweep_dir)


def _check_job_folders(sweep_dir: Path) -> None:
    """A job's folder (`0/`, `1/`, …) that is a symbolic link or not a directory is refused
    before any job runs: Hydra would write the job through the link, outside the sweep."""
    problems = []
    for entry in sorted(sweep_dir.iterdir()) if sweep_dir.is_dir() else []:
        if not entry.name.isdigit():
            continue
        if entry.is_symlink():
            what = f"a symbolic link (to {str(entry.readlink())!r})"
        elif not entry.is_dir():
            what = "not a directory"
        else:
            continue
        problems.append(
            f"hydra.sweep.dir: {str(entry)!r} is {what}, where job {entry.name} would write; "
            "a sweep writes only into folders it makes: move it away, or choose another "
            "hydra.sweep.dir"
        )
    if problems:
        raise ConfigError(problems)


def gpu_for(job: Job, visible: int) -> int | None:
    """The GPU a one-GPU job of a parallel sweep takes: round-robin by job number, so jobs that
    run at once on a machine with several GPUs do not all land on the first one."""
    return job.number % visible if visible > 1 else None


def set_aside(job: Job) -> Path | None:
    """Move the previous attempt's result and logs into attempts/<n>/ (checkpoints stay: a
    resumed job reads them), with the `.hydra/` that attempt ran with (Hydra has written this
    attempt's own already: keep_hydra_records saved the earlier one)."""
    kept = tuple(name for name in RUN_FILES if name != "checkpoints")
    folder = set_aside_previous(job.directory, folder="attempts", names=kept)
    saved = job.directory / SAVED_HYDRA
    if folder is not None and saved.is_dir() and not saved.is_symlink():
        saved.rename(folder / ".hydra")
    elif saved.is_dir() and not saved.is_symlink():
        shutil.rmtree(saved)
    return folder


# Hydra writes each job's `.hydra/` before any of the runner's code sees the job: with
# sweep.resume=true the earlier attempt's record is copied here first, once for the sweep.
SAVED_HYDRA = ".hydra-before-resume"


def keep_hydra_records(sweep_dir: Path) -> None:
    """Copy each job's `.hydra/` aside before a resumed sweep launches (links stay links)."""
    for directory in sweep_dir.iterdir() if sweep_dir.is_dir() else []:
        hydra = directory / ".hydra"
        if directory.name.isdigit() and not directory.is_symlink() and hydra.is_dir():
            if hydra.is_symlink():
                continue  # not Hydra's: nothing of the job's own to keep
            saved = directory / SAVED_HYDRA
            if saved.is_dir() and not saved.is_symlink():
                shutil.rmtree(saved)  # a copy from a resume that never reached this job
            shutil.copytree(hydra, saved, symlinks=True)


def restore_hydra_record(job: Job) -> None:
    """A job that sweep.resume=true skips keeps the `.hydra/` of the run that made its files."""
    saved = job.directory / SAVED_HYDRA
    if saved.is_dir() and not saved.is_symlink():
        hydra = job.directory / ".hydra"
        if hydra.is_dir() and not hydra.is_symlink():
            shutil.rmtree(hydra)
        saved.rename(hydra)
