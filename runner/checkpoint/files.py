"""Checkpoint files: written atomically, read safely.

- Format: safetensors, the dict's structure as JSON in its header (runner.checkpoint.format):
  no pickle, and faster to write and read than torch.save.
- Writing: a private temp directory next to the checkpoint, fsync, rename, fsync the directory.
  A crash mid-write leaves the previous checkpoint whole; the next save removes what it left.
- Reading: that format, or an older runner's torch.save file with `torch.load(weights_only=True)`:
  tensors and plain data only, never pickled code.
"""

import errno
import os
import pickle
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError

from runner.checkpoint import format as checkpoint_format
from runner.errors import ConfigError, first_line
from runner.rundir.files import new_file_mode


def atomic_save(checkpoint: dict[str, Any], path: Path) -> None:
    """Write `checkpoint` to `path` (runner.checkpoint.format) so that it is either the
    old file or the whole new one; a link in its place is replaced, never followed. Raises
    OSError naming the file (full disk, a directory in its place, ...), RunFailed for a value a
    checkpoint cannot hold."""
    atomic_write(path, lambda tmp: checkpoint_format.write(checkpoint, tmp))


def atomic_write(path: Path, write: Callable[[Path], None], replace: bool = True) -> None:
    """`write(tmp)` into a private temp directory next to `path` (the safetensors library's own
    temp file lands there too, so a killed write leaves nothing the next save cannot find),
    fsync, then rename to `path` and fsync the directory. `replace=False` never overwrites:
    FileExistsError when anything is at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(path)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}.", dir=path.parent))
    tmp = tmp_dir / path.name
    try:
        write(tmp)
        os.chmod(tmp, new_file_mode())  # safetensors writes 0o600; others may read a checkpoint
        written = os.open(tmp, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            os.fsync(written)
        finally:
            os.close(written)
        if replace:
            os.replace(tmp, path)  # a link at `path` is replaced, not followed
        else:
            os.link(tmp, path)  # fails when anything is there: an earlier file is kept
    except FileExistsError:
        raise
    except (OSError, SafetensorError) as e:  # safetensors names no errno for a full disk
        raise _write_error(e, path) from e
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power cut
    finally:
        os.close(directory)


def _write_error(e: Exception, path: Path) -> OSError:
    """An OSError naming the file, whatever the write raised; the previous file is untouched."""
    code = getattr(e, "errno", None)
    if code is None and shutil.disk_usage(path.parent).free < (1 << 20):
        code = errno.ENOSPC  # the error names no cause, but the disk is full
    reason = os.strerror(code) if code else first_line(e)
    kept = f"; the previous {path.name} is whole" if path.is_file() else ""
    return OSError(code or errno.EIO, f"{reason}{kept}", str(path))


def _remove_stale_temps(path: Path) -> None:
    """Temp directories (and an older runner's temp files) a killed process left behind while
    writing `path`, named by its pid: `.<name>.<pid>.<random>` and `.<name>.<pid>.tmp`."""
    for tmp in path.parent.glob(f".{path.name}.*"):
        pid = tmp.name[len(path.name) + 2 :].split(".")[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.name.endswith(".tmp"):
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def safe_load(path: str | Path, key: str = "ckpt_path") -> dict[str, Any]:
    """Read a checkpoint: the runner's format (told by its first bytes), or an older runner's
    torch.save file with weights_only=True. Raises ConfigError naming `key` when the file is
    missing, is not a checkpoint, is truncated or corrupt, or holds pickled objects (nothing
    in it is executed)."""
    path = Path(path)
    where = f"{key}: {str(path)!r}"
    if not path.is_file():
        raise ConfigError([f"{key}: no checkpoint file at {str(path)!r}"])
    try:
        with path.open("rb") as f:
            head = f.read(9)
        if checkpoint_format.is_checkpoint(head):
            return checkpoint_format.read(path, where)
    except OSError as e:
        raise ConfigError([f"{where} cannot be read: {e.strerror or e}"]) from e
    # torch.save writes a zip archive (PK..); older torch wrote a bare pickle (protocol 2+).
    if not (
        head.startswith(b"PK\x03\x04")
        or (head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"))
    ):
        raise ConfigError(
            [f"{where} is not a checkpoint (not a file the runner or torch.save wrote)"]
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        code = [ln.strip() for ln in str(e).splitlines() if "GLOBAL" in ln.upper()]
        if not code:
            raise ConfigError([f"{where} is not a checkpoint (corrupt, or never one)"]) from e
        raise ConfigError(
            [
                f"{where} is refused: it holds pickled objects, not only tensors and plain "
                f"data; nothing in it was executed ({code[0]})"
            ]
        ) from e
    except Exception as e:
        reason = first_line(e)
        raise ConfigError(
            [f"{where} is not a complete checkpoint (truncated or corrupt?): {reason}"]
        ) from e
    if not isinstance(checkpoint, dict):
        raise ConfigError([f"{where} holds a {type(checkpoint).__name__}, not a checkpoint"])
    return checkpoint


def check_state_dict(own: Mapping[str, torch.Tensor], state: Any, source: str) -> None:
    """Raise ConfigError listing every key of `own` (a model's state_dict) that `state` lacks,
    every unexpected key and every shape mismatch."""
    if not (isinstance(state, dict) and all(isinstance(v, torch.Tensor) for v in state.values())):
        raise ConfigError([f"{source}: its state_dict is not a mapping of names to tensors"])
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k}: {list(state[k].shape)} in the checkpoint, {list(own[k].shape)} in the model"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    where = f"{source}: does not fit this config's model:"
    problems = []
    if missing:
        problems.append(
            f"{where} missing {len(missing)} key(s) the model has: {', '.join(missing[:6])}"
        )
    if unexpected:
        problems.append(f"{where} {len(unexpected)} unexpected key(s): {', '.join(unexpected[:6])}")
    problems += [f"{where} shape mismatch at {s}" for s in shapes]
    if problems:
        raise ConfigError(problems)
