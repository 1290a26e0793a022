"""One run directory, one run: a lock that holds the owner's pid, and result.json written whole.

The lock is an OS file lock (flock) on `.runner.lock`: the kernel releases it when its process
ends however it ends, so the lock of a killed run is taken over by the next one without any
clean-up. A Hydra callback checks the lock before Hydra writes `.hydra/` and the log into a
directory that a live run is using, so that run's files are not overwritten.
"""

import fcntl
import json
import os
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from runner.errors import ConfigError, stamped

LOCK = ".runner.lock"


@contextmanager
def claim(run_dir: Path) -> Iterator[None]:
    """Hold `run_dir` for this process. Raises ConfigError when a live run holds it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError([_busy(run_dir, os.pread(fd, 64, 0))]) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def in_use(run_dir: Path) -> str | None:
    """Why `run_dir` cannot be used now (a live run holds it), or None."""
    try:
        fd = os.open(run_dir / LOCK, os.O_RDONLY)
    except OSError:
        return None  # no lock file (or no directory): free
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _busy(run_dir, os.pread(fd, 64, 0))
    finally:
        os.close(fd)
    return None


def _busy(run_dir: Path, owner: bytes) -> str:
    pid = owner.decode(errors="replace").strip() or "unknown"
    return (
        f"hydra.run.dir: {str(run_dir)!r} is in use by a live run (pid {pid}); choose another "
        "directory (hydra.run.dir=...) or wait for that run to end"
    )


# What a run leaves in its directory (Hydra's own .hydra/ and the log are Hydra's to write).
RUN_FILES = (
    "result.json",
    "checkpoints",
    "logs",
    "param_stats.csv",
    "plots",
    "params.csv",
    "init.csv",
)


def set_aside_previous(
    run_dir: Path, folder: str = "previous", names: tuple[str, ...] = RUN_FILES
) -> Path | None:
    """Move an earlier run's files (`names`) out of the way, into <folder>/<n>/, before a new
    run writes into the same directory: nothing a run made is overwritten. Returns where they
    went, or None when there was nothing to move."""
    present = [run_dir / name for name in names if (run_dir / name).exists()]
    if not present:
        return None
    n = 1
    while (run_dir / folder / str(n)).exists():
        n += 1
    target = run_dir / folder / str(n)
    target.mkdir(parents=True)
    for path in present:
        os.replace(path, target / path.name)
    return target


def read_result(run_dir: Path) -> dict[str, Any]:
    """A run's result.json as written by write_result; {} when there is none (yet) or it is not
    a JSON object."""
    try:
        value = json.loads((run_dir / "result.json").read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def write_result(run_dir: Path, result: dict[str, Any]) -> Path:
    """result.json, written to a temp file and renamed: a reader never sees half of it."""
    path = run_dir / "result.json"
    tmp = run_dir / f".result.json.{os.getpid()}.tmp"
    try:
        tmp.write_text(json.dumps(result, indent=2) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def resume_command(last: Path, note: str = "", changes: dict[str, Any] | None = None) -> str:
    """The command line that continues this run from `last`: the same overrides, but for
    `ckpt_path`, which points at `last`, and `changes` (key → value: a finished run's raised
    max_epochs), each key once."""
    overrides: list[str] = []
    try:
        from hydra.core.hydra_config import HydraConfig

        # Not the run directory: the resumed run gets a fresh one and leaves this one whole.
        replaced = ("ckpt_path=", "hydra.run.dir=", "hydra.sweep.dir=", "hydra.sweep.subdir=")
        overrides = [o for o in HydraConfig.get().overrides.task if not o.startswith(replaced)]
    except ValueError:  # run() called from Python, not from the command line
        pass
    changed = [f"{key}={value}" for key, value in (changes or {}).items()]
    keys = {o.split("=", 1)[0] for o in changed}
    latest = {o.split("=", 1)[0].lstrip("+~"): o for o in overrides}  # Hydra: the last one wins
    overrides = [o for o in latest.values() if o.split("=", 1)[0].lstrip("+~") not in keys]
    parts = ["python -m runner", *(f"--config-dir {shlex.quote(d)}" for d in _config_dirs())]
    parts += map(shlex.quote, [*overrides, *changed])
    command = " ".join([*parts, shlex.quote(f"ckpt_path={last.resolve()}")])
    return f"{command}   # {note}" if note else command


def unwritable(directory: Path, key: str) -> str | None:
    """Why `directory` cannot take a run's files (checked by writing a probe), or None."""
    probe = directory / f".runner-probe.{os.getpid()}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        where = e.filename if e.filename and str(e.filename) != str(probe) else directory
        return f"{key}: {str(directory)!r} cannot be written ({where}: {e.strerror})"
    return None


def _config_dirs() -> list[str]:
    """The --config-dir folders this run was given (they hold the options it chose)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        sources = HydraConfig.get().runtime.config_sources
    except ValueError:
        return []
    return [
        str(s.path).removeprefix("file://")
        for s in sources
        if s.provider == "command-line" and str(s.schema) == "file"
    ]


class RunDirGuard(Callback):
    """Refuses, before Hydra writes into it, a run directory that a live run holds or that
    cannot be written (and a sweep directory that cannot be written)."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        run_dir = Path(str(config.hydra.run.dir))
        _refuse(unwritable(run_dir, "hydra.run.dir") or in_use(run_dir))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _refuse(unwritable(Path(str(config.hydra.sweep.dir)), "hydra.sweep.dir"))


def _refuse(problem: str | None) -> None:
    if problem is not None:
        print(stamped(f"config error: {problem}"), file=sys.stderr)
        sys.exit(2)
