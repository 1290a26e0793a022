"""Files the runner writes in a run directory, opened so that nothing in their place is followed:
a symbolic link, a FIFO or a directory where the runner expects its own file is refused, and a
JSON record is written to a fresh temp file and renamed over the old one (a rename replaces a
link itself, never what it points to)."""

import errno
import json
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from runner.errors import ConfigError

KINDS = {
    stat.S_IFLNK: "a symbolic link",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFDIR: "a directory",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a device",
    stat.S_IFBLK: "a device",
}


def not_a_file(path: Path, kind: str, key: str = "hydra.run.dir") -> ConfigError:
    """The refusal of `path` when something else than a regular file is in its place."""
    return ConfigError(
        [
            f"{key}: {str(path)!r} is {kind}, not a file the runner wrote; refused (the runner "
            "never writes through a link or into something that is not its own file); "
            "allowed: a regular file or nothing there (move it away, or choose another directory)"
        ]
    )


def kind_of(path: Path) -> str | None:
    """What `path` is when it is not a regular file ("a symbolic link", ...); None when it is
    one or nothing is there."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    return None if stat.S_ISREG(mode) else KINDS.get(stat.S_IFMT(mode), "not a regular file")


def open_own(path: Path, flags: int, key: str = "hydra.run.dir") -> int:
    """os.open of the runner's own file `path` that follows no link and blocks on no FIFO.
    Raises ConfigError when a link, FIFO or directory is in its place; OSError otherwise."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
    except OSError as e:
        kind = kind_of(path) if e.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO) else None
        if kind is not None:
            raise not_a_file(path, kind, key) from None
        raise
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise not_a_file(path, KINDS.get(stat.S_IFMT(mode), "not a regular file"), key)
    return fd


def write_json(path: Path, value: Any) -> Path:
    """`value` as JSON at `path`, written to a fresh temp file (O_EXCL: nothing there is
    followed) and renamed: a reader never sees half of it. Raises OSError."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(value, indent=2) + "\n")
        os.chmod(tmp, new_file_mode())  # mkstemp makes 0o600; others may read a record
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def new_file_mode() -> int:
    """The mode a new file gets here: 0o666 less the process's umask."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: read it by setting it, and put it back
    os.umask(mask)
    return 0o666 & ~mask


def read_json(path: Path) -> dict[str, Any]:
    """The JSON object at `path`; {} when there is none (yet), it is not a JSON object, or
    something else than a regular file is in its place (a FIFO is not waited on)."""
    try:
        fd = open_own(path, os.O_RDONLY)
    except (OSError, ConfigError):
        return {}
    try:
        with os.fdopen(fd, "rb") as f:
            value = json.loads(f.read())
    except (OSError, ValueError, RecursionError):  # RecursionError: arrays nested 10⁵ deep
        return {}
    return value if isinstance(value, dict) else {}


def read_result(run_dir: Path) -> dict[str, Any]:
    """A run's result.json as written by write_result (read_json)."""
    return read_json(run_dir / "result.json")


def write_result(run_dir: Path, result: dict[str, Any]) -> Path:
    """result.json, written whole (write_json)."""
    return write_json(run_dir / "result.json", result)


def replace_file(path: Path, write: Callable[[IO[Any]], Any], text: bool = False) -> Path:
    """`path` written through a fresh temp file beside it (mkstemp: O_EXCL, nothing in its
    place is followed) and renamed into place: a link, FIFO or file that was there is replaced,
    never written through, and a reader never sees half. Raises OSError."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="") if text else os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, new_file_mode())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path
