"""Table files → pandas DataFrames, read by pandas and pyarrow (never a parser of ours), each
failure a ConfigError naming the config key that gave the path. A file is read once per process
(config validation and training read the same one), and again when it changes on disk."""

import errno
import functools
import os
import stat as statmod
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from runner.errors import ConfigError, did_you_mean, first_line
from runner.rundir.files import KINDS

# Suffix → what reads it (pandas: its C parser for CSV/TSV, pyarrow for Parquet; NumPy).
FORMATS = {
    ".csv": "CSV",
    ".tsv": "TSV",
    ".parquet": "Parquet",
    ".pq": "Parquet",
    ".npy": "NumPy array",
    ".npz": "NumPy archive",
}
ALLOWED = ", ".join(FORMATS)


def read_table(path: Any, key: str) -> pd.DataFrame:
    """The file at `path` as a DataFrame (shared: do not modify it). Raises ConfigError at
    `key` for a path that is not a readable table file."""
    file = Path(str(path)).expanduser()
    kind = _not_a_file(file)
    if kind is not None:  # found by stat alone: a FIFO is never opened, so never waited on
        raise ConfigError(
            [
                f"{key}: {str(path)!r} is {kind}; allowed: a regular file that can be read "
                f"({ALLOWED}){_tables_in(file) if kind == KINDS[statmod.S_IFDIR] else ''}"
            ]
        )
    if file.suffix.lower() not in FORMATS:
        raise ConfigError(
            [
                f"{key}: {str(path)!r} is not a table file this runner reads; allowed: "
                f"{ALLOWED} files"
            ]
        )
    if not file.is_file():
        siblings = [p.name for p in file.parent.glob("*")] if file.parent.is_dir() else []
        others = [name for name in siblings if name != file.name]
        raise ConfigError([f"{key}: no file {str(path)!r}{did_you_mean(file.name, others)}"])
    stat = file.stat()
    try:
        frame = _read(str(file.resolve()), stat.st_mtime_ns, stat.st_size)
    except Exception as e:  # whatever pandas, pyarrow or NumPy raise for a damaged file
        kind = FORMATS[file.suffix.lower()]
        raise ConfigError([f"{key}: cannot read {str(path)!r} as {kind}: {first_line(e)}"]) from e
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ConfigError([f"{key}: {str(path)!r} holds no rows or no columns"])
    return frame


def _not_a_file(file: Path) -> str | None:
    """What `file` is when something is there that is not a readable regular file (a
    directory, a FIFO, a link loop, a file this user may not read); None when it is one or
    nothing is there (the caller says "no file")."""
    try:
        mode = os.stat(file).st_mode  # follows links: a link to a table file is that file
    except FileNotFoundError:
        if not os.path.islink(file):
            return None
        return f"a symbolic link to nothing (it points to {os.readlink(file)!r})"
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "a symbolic link loop (its links never reach a file)"
        if e.errno == errno.EACCES:
            return "in a directory this user may not search (permission denied)"
        return None  # ENOTDIR, ENAMETOOLONG: nothing there by that name
    if not statmod.S_ISREG(mode):
        return KINDS.get(statmod.S_IFMT(mode), "not a regular file")
    if not os.access(file, os.R_OK):
        return "a file this user may not read (permission denied)"
    return None


def _tables_in(folder: Path) -> str:
    """`; table files in it: a.csv, b.parquet` (the first few), or ""."""
    try:
        names = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in FORMATS)
    except OSError:
        return ""
    if not names:
        return ""
    return "; table files in it: " + ", ".join(names[:5]) + (", …" if len(names) > 5 else "")


@functools.lru_cache(maxsize=4)
def _read(path: str, mtime_ns: int, size: int) -> pd.DataFrame:
    suffix = Path(path).suffix.lower()
    if suffix in (".csv", ".tsv"):
        return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if suffix == ".npy":
        return _from_array(np.load(path, allow_pickle=False), "")  # no pickle: no code runs
    with np.load(path, allow_pickle=False) as archive:
        parts = [_from_array(archive[name], name) for name in archive.files]
    return pd.concat(parts, axis=1)


def _from_array(array: np.ndarray, name: str) -> pd.DataFrame:
    """A 2-D array's columns are 0..k-1 (`name_0`… inside an archive), a 1-D array is one
    column (`name`), a structured array's fields are its columns."""
    if array.dtype.names:
        return pd.DataFrame(array)
    if array.ndim == 1:
        return pd.DataFrame({name or 0: array})
    if array.ndim != 2:
        raise ValueError(f"array {name or ''} has {array.ndim} dimensions; a table has 1 or 2")
    columns = [f"{name}_{i}" for i in range(array.shape[1])] if name else None
    return pd.DataFrame(array, columns=columns)


def column(frame: pd.DataFrame, choice: Any, key: str, path: Any) -> Any:
    """The column `choice` names (a name, or a position counted from 0), or ConfigError at `key`
    with a close match."""
    if choice in frame.columns:
        return choice
    width = frame.shape[1]
    if isinstance(choice, int) and not isinstance(choice, bool) and -width <= choice < width:
        return frame.columns[choice]
    names = [str(c) for c in frame.columns]
    shown = ", ".join(names[:12]) + (", …" if len(names) > 12 else "")
    raise ConfigError(
        [
            f"{key}: no column {choice!r} in {Path(str(path)).name}; allowed: a column name "
            f"({shown}) or a position from 0 to {len(names) - 1}{did_you_mean(choice, names)}"
        ]
    )
