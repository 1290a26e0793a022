"""The vectorized launcher's plan and work (hydra/launcher=vectorized; the Hydra plugin is
hydra_plugins/runner_vectorized): a sweep's training jobs whose models have the same structure
are trained together as one batched model (runner.train.vector_fit), then every job runs through
Hydra's own `run_job`, as the basic launcher runs it — its directory, `.hydra/`, log, callbacks
and result.json — writing what the group trained for it. Jobs that cannot join a group run one
by one, with a line saying why."""

import copy
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from runner.config.arguments import is_int
from runner.config.sections import parse_sweep
from runner.config.spec import RunSpec, parse_run
from runner.errors import ConfigError, Interrupted, first_line
from runner.sweep import job as sweep_job

log = logging.getLogger("runner")


# Jobs of the group being written out that have not run yet: the sweep's summary waits for the
# group's last job (its members finish within moments of each other).
_WAITING: set[int] = set()


def group_pending() -> bool:
    """Whether jobs of a vectorized group are still to be written (this process)."""
    return bool(_WAITING)


@dataclass
class Plan:
    """The sweep's jobs: groups trained as one (job numbers), and the rest with the reason."""

    groups: list[list[int]] = field(default_factory=list)
    alone: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SweepJob:
    number: int
    overrides: tuple[str, ...]
    config: DictConfig  # the job's whole config, hydra node included


def task_config(config: DictConfig) -> DictConfig:
    """What the task function receives: the job's config without the hydra node."""
    task = copy.deepcopy(config)
    with read_write(task), open_dict(task):
        del task["hydra"]
    return task


def _spec(job: SweepJob) -> RunSpec:
    HydraConfig.instance().set_config(job.config)  # ${hydra:...} resolves as in the job
    return parse_run(task_config(job.config))


_DONE = "it ended ok in an earlier run of this sweep"


def _skipped_by_resume(job: SweepJob, spec: RunSpec) -> str | None:
    """With sweep.resume=true: why the job is not trained in a group (done, or resuming)."""
    if not parse_sweep(spec.config.get("sweep")).resume:
        return None
    directory = Path(str(job.config.hydra.sweep.dir)) / str(job.config.hydra.sweep.subdir)
    overrides = tuple(o for o in job.overrides if not o.startswith("sweep.resume="))
    try:
        plan = sweep_job.plan(sweep_job.Job(job.number, overrides, {}, directory))
    except ConfigError:
        return "its directory holds another sweep's job"
    if plan.action == "skip":
        return _DONE
    if plan.action == "resume" and sweep_job.finished(plan.checkpoint, job.config.get("trainer")):
        return "it trains again (stopped after its last checkpoint, while it wrote its run)"
    if plan.action == "resume":
        return "it resumes from its checkpoint"
    return None


def _candidate(job: SweepJob) -> tuple[Any, str]:
    """The job's member, built as its run builds it; else None and why it runs alone."""
    from runner.train.vector_members import make_member, member_refusal, refusal

    try:
        spec = _spec(job)
        why = refusal(spec) or _skipped_by_resume(job, spec)
        if why is not None:
            return None, why
        member = make_member(spec, job.number)
        why = member_refusal(member)
        return (None, why) if why is not None else (member, "")
    except ConfigError as e:
        # The first problem itself: the rendered error's first line is only "N problems in ...:".
        first = e.problems[0] if e.problems else first_line(e, default="")
        more = f"; {len(e.problems) - 1} more in its log" if len(e.problems) > 1 else ""
        first = first if len(first) <= 160 else first[:159] + "…"
        return None, f"its config has a mistake ({first}{more})"
    except Exception as e:  # the user's code, run as the job is built: its own run reports it
        return (
            None,
            f"it could not be built ({type(e).__name__}: {first_line(e, default='')[:120]})",
        )


def plan(jobs: Sequence[SweepJob], max_members: int | None) -> tuple[Plan, dict[int, Any]]:
    """Group the jobs (building each candidate's model and data as its run would); returns the
    plan and the members built for the groups."""
    from runner.train.vector_members import group_key

    result, members = Plan(), {}
    keys: dict[tuple[Any, ...], list[int]] = {}
    for job in jobs:
        member, why = _candidate(job)
        if member is None:
            result.alone[job.number] = why
            continue
        members[job.number] = member
        keys.setdefault(group_key(member), []).append(job.number)
    for numbers in keys.values():
        if len(numbers) == 1:
            result.alone[numbers[0]] = "no other job has its model structure and data shapes"
            continue
        step = max_members or len(numbers)
        for start in range(0, len(numbers), step):
            chunk = numbers[start : start + step]
            if len(chunk) == 1:
                result.alone[chunk[0]] = "the last of its kind past hydra.launcher.max_members"
            else:
                result.groups.append(chunk)
    return result, members


def say_plan(result: Plan) -> None:
    for n, group in enumerate(result.groups):
        log.info("vectorized: group %d trains jobs %s as one", n, ",".join(map(str, group)))
    for number, why in sorted(result.alone.items()):
        if why == _DONE:
            log.info("vectorized: job %d is skipped: %s", number, why)
        else:
            log.info("vectorized: job %d runs alone: %s", number, why)


def train_group(numbers: list[int], members: dict[int, Any]) -> bool:
    """Train one group; keep each member for its job to write. False when the group could not
    be trained together (its jobs then run alone; the error is logged)."""
    from runner.train.vector_finish import Trained, keep
    from runner.train.vector_fit import GroupFit
    from runner.train.vector_loop import fit

    chosen = [members.pop(n) for n in numbers]
    try:
        group = GroupFit(chosen)
        _warn_if_busy(group.flat.device)
        seconds = fit(group, stop=_stop_if_asked)
    except Exception as e:  # never a wrong result: the jobs train alone instead
        log.warning(
            "vectorized: jobs %s could not be trained together (%s: %s); they run alone",
            ",".join(map(str, numbers)),
            type(e).__name__,
            first_line(e, default=""),
        )
        return False
    log.info(
        "vectorized: jobs %s trained in %.1f s, %d steps each",
        ",".join(map(str, numbers)),
        seconds,
        max(r.steps for r in group.records),
    )
    keep(
        [Trained(m, r, group, seconds, numbers) for m, r in zip(chosen, group.records, strict=True)]
    )
    return True


def _warn_if_busy(device: Any) -> None:
    """A group's batched operations are large enough for torch to split each over its threads,
    and on a machine whose cores are taken each split waits for a descheduled thread: the group
    trained up to a hundred times slower. Said, not changed: the threads' count sets how sums
    are split, and so the results' last bits."""
    import torch

    threads, cores = torch.get_num_threads(), os.cpu_count() or 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if device.type == "cpu" and threads > 1 and load > cores - 0.5:
        log.warning(
            "vectorized: this machine is busy (load %.1f on %d cores): torch's %d threads per "
            "operation may wait on each other and train the group many times slower; "
            "OMP_NUM_THREADS=1 keeps it steady",
            load,
            cores,
            threads,
        )


def _stop_if_asked() -> None:
    """A signal to the sweep while a group trains: stop at the epoch's end (the jobs have not
    started: `sweep.resume=true` trains them)."""
    from runner.sweep.stop import SweepStop

    if SweepStop.signum is not None:
        raise Interrupted(SweepStop.signum)


def check_max_members(max_members: Any) -> None:
    if max_members is not None and (not is_int(max_members) or max_members < 2):
        raise ConfigError(
            [
                f"hydra.launcher.max_members: {max_members!r} is not a group size; allowed: an "
                "integer ≥ 2 (jobs in one group at most), or null for no limit "
                "(hydra/launcher=basic runs every job alone)"
            ]
        )


def run_all(
    jobs: Sequence[SweepJob], run: Callable[[SweepJob], Any], max_members: int | None
) -> list[Any]:
    """Plan, train each group and run its jobs, then the jobs that run alone; the jobs'
    returns in job order."""
    from runner.train.vector_finish import forget

    check_max_members(max_members)
    by_number = {job.number: job for job in jobs}
    result, members = plan(jobs, max_members)
    say_plan(result)
    returns: dict[int, Any] = {}
    try:
        for numbers in result.groups:
            train_group(numbers, members)
            _WAITING.update(numbers)
            for number in numbers:
                _WAITING.discard(number)
                returns[number] = run(by_number[number])
            forget()  # a member its job did not take is trained alone by that job, not kept
        for number in sorted(result.alone):
            returns[number] = run(by_number[number])
    finally:
        forget()
        _WAITING.clear()
    return [returns[job.number] for job in jobs]


def job_configs(
    base: DictConfig, loader: Any, job_overrides: Sequence[Sequence[str]], first: int
) -> list[SweepJob]:
    """Each job's config, numbered as the basic launcher numbers them."""
    jobs = []
    for offset, overrides in enumerate(job_overrides):
        number = first + offset
        config = loader.load_sweep_config(base, list(overrides))
        with open_dict(config):
            config.hydra.job.id = number
            config.hydra.job.num = number
        OmegaConf.set_readonly(config.hydra, False)
        jobs.append(SweepJob(number, tuple(overrides), config))
    return jobs
