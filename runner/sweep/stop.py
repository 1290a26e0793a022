"""A signal to a sweep: it stops whole, at any point, with the summary so far and the command
that finishes it.

In-process jobs (Hydra's basic launcher): a signal during a job stops that job (runner.cli
records it); between jobs or during the summary it is noted here, and the sweep stops at the
next job's edge, never in the middle of Hydra's own code. Parallel launchers (joblib): the
launching process passes the signal on to its worker processes, whose jobs record themselves
as interrupted, and a `.stop` file in the sweep directory keeps them from starting another.
"""

import contextlib
import fcntl
import logging
import os
import shlex
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from runner import STOP_SIGNALS, ignore
from runner.config.sections import SweepSpec, parse_sweep
from runner.errors import Interrupted, stamped
from runner.rundir import LOCK, in_use, replace_file

log = logging.getLogger("runner")

SWEEP_LOCK = ".runner-sweep.lock"  # held by the launching process while the sweep runs
STOP_FILE = ".stop"  # in the sweep directory: the signal's name, while a parallel sweep stops
SIGNALS = STOP_SIGNALS
WORKER_GRACE_S = 60.0  # how long a parallel sweep's jobs get to record themselves


class SweepStop:
    """The state of this process's sweep (one at a time)."""

    sweep_dir: Path | None = None
    planned: int | None = None  # the number of jobs, where the sweeper says it up front
    sweep: SweepSpec = SweepSpec()  # its objective and direction
    signum: int | None = None  # the signal that stops the sweep, once one came
    lock: int | None = None  # the sweep directory's lock, held while the sweep runs


# Launchers that run the jobs in this very process (Hydra's basic one and the runner's vectorized
# one): a signal stops the whole sweep there.
IN_PROCESS_LAUNCHERS = ("BasicLauncher", "VectorizedLauncher")


def in_process(launcher_target: str) -> bool:
    """Whether the launcher named by its `_target_` runs the jobs in this process."""
    return launcher_target.rsplit(".", 1)[-1] in IN_PROCESS_LAUNCHERS


def watch(config: DictConfig, in_process: bool) -> None:
    """Called as the sweep starts: where it writes, how many jobs it plans, and the signal
    handlers of the launching process (main thread only; Python allows no other)."""
    SweepStop.sweep_dir = Path(str(config.hydra.sweep.dir))
    _hold(SweepStop.sweep_dir)
    SweepStop.planned = planned_jobs(config)
    SweepStop.sweep = parse_sweep(config.get("sweep"))
    SweepStop.signum = None
    (SweepStop.sweep_dir / STOP_FILE).unlink(missing_ok=True)  # an earlier invocation's
    if threading.current_thread() is not threading.main_thread():
        return
    handler = _note if in_process else _stop_workers
    for signum in SIGNALS:
        signal.signal(signum, handler)


def _hold(sweep_dir: Path) -> None:
    """One sweep per directory at a time: a second one into a live sweep's directory is
    refused before it launches anything (it dropped a job and merged the two summaries)."""
    release()
    sweep_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(sweep_dir / SWEEP_LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        say(
            f"config error: hydra.sweep.dir: {str(sweep_dir)!r} is in use by a live sweep "
            f"(pid {owner}); give this sweep its own hydra.sweep.dir, or wait for that one to "
            "end (then sweep.resume=true adds to it)"
        )
        sys.exit(2)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    SweepStop.lock = fd


def release() -> None:
    """Let go of the sweep directory (the process's end does it too)."""
    if SweepStop.lock is not None:
        os.close(SweepStop.lock)
        SweepStop.lock = None


def requested(sweep_dir: Path) -> int | None:
    """The signal that stopped this sweep, if one did: noted in this process, or, in a
    parallel launcher's worker, in the sweep directory's stop file."""
    if SweepStop.signum is not None:
        return SweepStop.signum
    try:
        name = (sweep_dir / STOP_FILE).read_text().strip()
    except OSError:
        return None
    return int(getattr(signal.Signals, name, signal.SIGTERM))


def planned_jobs(config: DictConfig) -> int | None:
    """How many jobs the sweep runs: a search's n_trials, or the basic sweeper's grid (parsed
    the way Hydra's BasicSweeper parses it); None for another sweeper."""
    sweeper = config.hydra.sweeper
    if sweeper.get("n_trials") is not None:
        return int(sweeper.n_trials)
    if not str(sweeper.get("_target_", "")).endswith("BasicSweeper"):
        return None
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()]
    arguments = [*params, *config.hydra.overrides.task]
    overrides = OverridesParser.create().parse_overrides(arguments)
    return sum(len(batch) for batch in BasicSweeper.split_arguments(overrides, None))


def _note(signum: int, frame: Any) -> None:
    """Between in-process jobs: stop at the next job's edge (a second signal: at once)."""
    if SweepStop.signum is not None:
        raise Interrupted(SweepStop.signum)
    SweepStop.signum = signum
    log.warning("sweep: %s received: stopping before the next job", signal.Signals(signum).name)


def _stop_workers(signum: int, frame: Any) -> None:
    """The launching process of a parallel sweep: no new job starts (the stop file), the
    running ones get the signal and record themselves, and the launcher stops."""
    for s in SIGNALS:  # stopping: a repeat must not cut the workers' records short
        signal.signal(s, ignore)  # (SIG_IGN: a signal pending now would raise)
    SweepStop.signum = signum
    sweep_dir = SweepStop.sweep_dir
    if sweep_dir is not None:
        name = signal.Signals(signum).name.encode()
        replace_file(sweep_dir / STOP_FILE, lambda f: f.write(name))
    running = _running_jobs(sweep_dir) if sweep_dir is not None else []
    for pid in running:  # the workers' jobs: each records itself as interrupted
        _kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + WORKER_GRACE_S
    while running and time.monotonic() < deadline:
        time.sleep(0.2)
        running = _running_jobs(sweep_dir) if sweep_dir is not None else []
    for pid in running:  # past the grace: killed (sweep.resume=true resumes their last.ckpt)
        _kill(pid, signal.SIGKILL)
    raise Interrupted(signum)


def _running_jobs(sweep_dir: Path) -> list[int]:
    """The processes running a job of this sweep: the pids in the locks they hold."""
    pids = []
    for directory in (d for d in sweep_dir.iterdir() if d.is_dir() and d.name.isdigit()):
        if in_use(directory):
            with contextlib.suppress(OSError, ValueError):
                pids.append(int((directory / LOCK).read_text().split()[0]))
    return pids


def _kill(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def stopped(signum: int) -> None:
    """The sweep stopped by `signum`: its summary so far, how far it got, and how to finish."""
    from runner.sweep.output import write_summary
    from runner.sweep.summary import Objective

    sweep_dir = SweepStop.sweep_dir
    if sweep_dir is None:
        return
    (sweep_dir / STOP_FILE).unlink(missing_ok=True)
    summary = write_summary(sweep_dir, Objective.of(SweepStop.sweep))
    done = sum(r.status in ("ok", "failed", "skipped") for r in summary.records)
    of = f" of {SweepStop.planned}" if SweepStop.planned is not None else ""
    name = signal.Signals(signum).name
    say(f"sweep: stopped by {name} after {done}{of} job(s); summary so far: {sweep_dir}/summary.md")
    say(f"sweep: finish it with: {resume_hint(sweep_dir)}")


def say(line: str) -> None:
    """A line on stderr like the runner's log (the sweep's own process has no job logging)."""
    print(stamped(line), file=sys.stderr)


def resume_hint(sweep_dir: Path) -> str:
    """The command that resumes this sweep: the same one, with its directory and resume on."""
    args = [a for a in sys.argv[1:] if not a.startswith(("hydra.sweep.dir=", "sweep.resume="))]
    parts = [*args, f"hydra.sweep.dir={sweep_dir.resolve()}", "sweep.resume=true"]
    return " ".join(["python -m runner", *map(shlex.quote, parts)])
