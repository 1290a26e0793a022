"""One run per directory: an OS file lock (flock) on `.runner.lock`, holding the owner's pid.

The kernel releases the lock when its process ends however it ends, so the lock of a killed
run is taken over by the next one without any clean-up. The CLI takes it in a Hydra callback
before Hydra writes anything into the directory (runner.rundir.guard) and holds it for the
run; `run()` called from Python takes it itself.
"""

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from runner.errors import ConfigError
from runner.rundir.files import open_own

LOCK = ".runner.lock"

_held: dict[str, int] = {}  # run directory (real path) → the open lock this process holds


def acquire(run_dir: Path) -> bool:
    """Hold `run_dir` for this process until release(). False when this process holds it
    already. Raises ConfigError when a live run holds it, when it cannot be written, or when
    the lock's name is taken by a link, FIFO or directory (never followed)."""
    key = os.path.realpath(run_dir)
    if key in _held:
        return False
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd = open_own(run_dir / LOCK, os.O_RDWR | os.O_CREAT)
    except OSError as e:
        where = e.filename if e.filename and str(e.filename) != str(run_dir / LOCK) else run_dir
        raise ConfigError(
            [f"hydra.run.dir: {str(run_dir)!r} cannot be written ({where}: {e.strerror})"]
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = os.pread(fd, 64, 0)
        os.close(fd)
        raise ConfigError([_busy(run_dir, owner)]) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _held[key] = fd
    return True


def release(run_dir: Path) -> None:
    fd = _held.pop(os.path.realpath(run_dir), None)
    if fd is not None:
        os.close(fd)  # releases the lock


@contextmanager
def claim(run_dir: Path) -> Iterator[bool]:
    """Hold `run_dir` for the block; yields whether this call took it (False: this process,
    the CLI's callback, holds it already and set the earlier run aside). Raises as acquire."""
    fresh = acquire(run_dir)
    try:
        yield fresh
    finally:
        if fresh:
            release(run_dir)


def in_use(run_dir: Path) -> str | None:
    """Why `run_dir` cannot be used now (a live run holds it), or None."""
    try:
        fd = open_own(run_dir / LOCK, os.O_RDONLY)
    except (OSError, ConfigError):
        return None  # no lock file (or no directory, or no lock of the runner's): free
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


def unwritable(directory: Path, key: str) -> str | None:
    """Why `directory` cannot take a run's files (checked with a probe file made with O_EXCL
    and removed), or None."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".runner-probe."):
            pass
    except OSError as e:
        where = e.filename if e.filename and ".runner-probe." not in str(e.filename) else directory
        return f"{key}: {str(directory)!r} cannot be written ({where}: {e.strerror})"
    return None
