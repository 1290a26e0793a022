"""The checkpoint file: Lightning's whole checkpoint dict as a safetensors file, no pickle.

Every tensor anywhere in the dict goes into the safetensors tensor table, named by where it
sits (`state_dict/net.0.weight`); tensors that are one (a tied weight under two keys) are stored
once and read back as one tensor. The rest of the dict goes into the header's metadata as JSON
that refers to the tensors by name: dicts (any keys JSON can hold, such as the optimizer
state's ints), lists, tuples, str, int, float (inf and nan too), bool and None. Anything else is
refused when saving, naming where it is. Reading parses JSON and copies bytes: nothing in the
file can run code, and any safetensors reader can open it.

    8 bytes: the header's length n (little-endian) | n bytes: the JSON header | the tensors' bytes
"""

import ctypes
import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from runner.errors import ConfigError, RunFailed

FORMAT, VERSION = "runner-checkpoint", 1
_DTYPES = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
    torch.float8_e4m3fn: "F8_E4M3",
    torch.float8_e5m2: "F8_E5M2",
}
_BY_NAME = {name: dtype for dtype, name in _DTYPES.items()}
_MAX_HEADER = 100 << 20  # safetensors' own limit; also tells random bytes from a header
_CHUNK = 32 << 20  # reads this large run in parallel threads: page-cache copies scale with cores
_WRITE = 1 << 20  # written in pieces: one huge write() stalls on dirty-page limits (measured)
_WRITEBACK = 16 << 20  # then handed to the disk: the fsync at the end finds little left to do
_sync_file_range: Any = None
try:  # Linux: start writing a range to disk without waiting (a hint; fsync still decides)
    _sync_file_range = ctypes.CDLL(None, use_errno=True).sync_file_range
    _sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
except (OSError, AttributeError):
    pass  # elsewhere the fsync at the end does all the work
_TAGS = ("tensor", "tuple", "dict", "items", "float")


def is_checkpoint(head: bytes) -> bool:
    """Whether a file's first 9 bytes start a safetensors file: a plausible header length, `{`."""
    return len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < _MAX_HEADER


def write(checkpoint: dict[str, Any], f: BinaryIO) -> None:
    """Write `checkpoint` to `f`, a buffered binary file (`open(path, "wb")`: it writes all it
    is given). Raises RunFailed naming the place of a value that is neither a tensor nor plain
    data (before anything is written)."""
    tensors: dict[str, torch.Tensor] = {}
    structure = _encode(checkpoint, (), tensors, {})
    # Widest elements first: each tensor then starts aligned to its element size.
    order = sorted(tensors.items(), key=lambda item: -item[1].element_size())
    header: dict[str, Any] = {}
    offset = 0
    for name, t in order:
        size = t.numel() * t.element_size()
        header[name] = {
            "dtype": _DTYPES[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    text = json.dumps(structure, separators=(",", ":"), allow_nan=False)
    header["__metadata__"] = {"format": FORMAT, "version": str(VERSION), "structure": text}
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the tensors' bytes start 8-byte aligned
    f.write(len(raw).to_bytes(8, "little") + raw)
    try:
        fd: int | None = f.fileno()
    except (AttributeError, OSError):  # not a file (io.UnsupportedOperation is an OSError)
        fd = None
    written = synced = 8 + len(raw)
    for _, t in order:  # as bytes, without a copy when the tensor is on the CPU and contiguous
        data = t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().data
        for i in range(0, len(data), _WRITE):
            written += f.write(data[i : i + _WRITE])
            if fd is not None and _sync_file_range and written - synced >= _WRITEBACK:
                f.flush()  # the disk writes these bytes while the next ones are copied
                _sync_file_range(fd, synced, written - synced, 2)  # SYNC_FILE_RANGE_WRITE
                synced = written


def read(path: Path, where: str) -> dict[str, Any]:
    """The checkpoint dict in the file at `path`, its tensors read into memory (no mmap: the
    next atomic save replaces the file). Raises ConfigError prefixed with `where` for a file
    that is truncated, corrupt, or a safetensors file without a checkpoint in it."""
    with path.open("rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        n = int.from_bytes(f.read(8), "little")
        if n > size - 8:
            raise _incomplete(where, f"its header needs {n} bytes, the file has {size - 8}")
        try:
            header = json.loads(f.read(n))
            metadata = header.pop("__metadata__", None)
        except (ValueError, RecursionError, AttributeError) as e:  # AttributeError: not a dict
            raise _incomplete(where, f"its header is not a JSON object ({e})") from e
        if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
            raise ConfigError(
                [f"{where} is not a checkpoint (a safetensors file without a checkpoint in it)"]
            )
        if metadata.get("version") != str(VERSION):
            version = metadata.get("version")
            raise ConfigError(
                [f"{where} is a checkpoint of format {version!r}; this runner reads {VERSION}"]
            )
        try:
            tensors = _read_tensors(f.fileno(), header, 8 + n, size, where)
        except OSError as e:
            raise _incomplete(where, str(e)) from e
    try:
        checkpoint = _decode(json.loads(metadata["structure"]), tensors)
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as e:
        raise _incomplete(where, f"its structure does not parse ({type(e).__name__}: {e})") from e
    if not isinstance(checkpoint, dict):
        raise ConfigError([f"{where} holds a {type(checkpoint).__name__}, not a checkpoint"])
    return checkpoint


def _encode(
    value: Any, keys: tuple[Any, ...], tensors: dict[str, torch.Tensor], seen: dict[Any, str]
) -> Any:
    """`value` as JSON; tensors go into `tensors` (once per distinct view, via `seen`)."""
    if value is None or type(value) in (bool, int, str):
        return value
    if type(value) is float:
        return value if math.isfinite(value) else {"float": repr(value)}  # nan, inf, -inf
    if isinstance(value, torch.Tensor):
        return {"tensor": _tensor(value, keys, tensors, seen)}
    if isinstance(value, dict):
        if all(type(k) is str for k in value):
            body = {k: _encode(v, (*keys, k), tensors, seen) for k, v in value.items()}
            return {"dict": body}
        items = []
        for k, v in value.items():
            if isinstance(k, torch.Tensor):
                raise _unstorable(keys, f"a tensor as a dict key ({k!r:.40})")
            items.append([_encode(k, keys, tensors, seen), _encode(v, (*keys, k), tensors, seen)])
        return {"items": items}
    if isinstance(value, list | tuple):
        elements = [_encode(v, (*keys, i), tensors, seen) for i, v in enumerate(value)]
        return elements if isinstance(value, list) else {"tuple": elements}
    raise _unstorable(keys, f"a {type(value).__module__}.{type(value).__qualname__}")


def _tensor(
    t: torch.Tensor, keys: tuple[Any, ...], tensors: dict[str, torch.Tensor], seen: dict[Any, str]
) -> str:
    if t.dtype not in _DTYPES or t.layout != torch.strided or t.is_quantized or t.is_meta:
        raise _unstorable(keys, f"a {t.layout} tensor of {t.dtype}")
    t = t.detach()
    view = (t.device, t.untyped_storage().data_ptr(), t.storage_offset(), t.shape, t.stride())
    if (view, t.dtype) in seen:  # the same memory seen the same way: a tied or shared tensor
        return seen[view, t.dtype]
    name = "/".join(str(k) for k in keys) or "checkpoint"
    while name in tensors or name == "__metadata__":
        name += "'"
    tensors[name], seen[view, t.dtype] = t, name
    return name


def _unstorable(keys: tuple[Any, ...], what: str) -> RunFailed:
    place = "checkpoint" + "".join(f"[{k!r}]" for k in keys)
    return RunFailed(
        f"{place} is {what}, which a checkpoint does not hold (allowed: tensors, dicts, lists, "
        "tuples, str, int, float, bool, None; a callback's state_dict must return only those)"
    )


def _read_tensors(
    fd: int, header: dict[str, Any], start: int, size: int, where: str
) -> dict[str, torch.Tensor]:
    """Each tensor in its own memory, read with parallel `preadv`s when the file is large."""
    tensors, jobs, total = {}, [], 0
    for name, entry in header.items():
        dtype, shape, begin, stop = _entry(name, entry, where)
        if start + stop > size:
            raise _incomplete(where, f"tensor {name!r} ends at byte {start + stop} of {size}")
        if stop == begin:  # no elements: nothing to read (and no bytes to view as `dtype`)
            tensors[name] = torch.empty(shape, dtype=dtype)
            continue
        buffer = np.empty(stop - begin, dtype=np.uint8)  # numpy: huge pages for large arrays
        tensors[name] = torch.from_numpy(buffer).view(dtype).reshape(shape)
        memory = buffer.data
        jobs += [(memory[i : i + _CHUNK], start + begin + i) for i in range(0, len(memory), _CHUNK)]
        total += stop - begin
    if total > 2 * _CHUNK:
        with ThreadPoolExecutor(min(4, os.cpu_count() or 1)) as pool:
            list(pool.map(lambda job: _read_into(fd, *job), jobs))
    else:
        for job in jobs:
            _read_into(fd, *job)
    return tensors


def _entry(name: str, entry: Any, where: str) -> tuple[torch.dtype, list[int], int, int]:
    """A tensor's dtype, shape and byte range, checked against each other."""
    try:
        dtype, shape, (begin, stop) = (
            _BY_NAME[entry["dtype"]],
            entry["shape"],
            entry["data_offsets"],
        )
        if (
            isinstance(shape, list)
            and all(type(d) is int and d >= 0 for d in shape)
            and type(begin) is type(stop) is int
            and begin >= 0
            and stop - begin == math.prod(shape) * dtype.itemsize
        ):
            return dtype, shape, begin, stop
    except (KeyError, TypeError, ValueError):
        pass
    raise _incomplete(where, f"tensor {name!r} has a malformed entry {entry!r:.200}")


def _read_into(fd: int, memory: memoryview, offset: int) -> None:
    while len(memory):
        got = os.preadv(fd, [memory], offset)
        if got == 0:
            raise OSError(f"the file ended at byte {offset}")
        memory, offset = memory[got:], offset + got


def _decode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value  # None, bool, int, float, str
    ((tag, body),) = value.items()
    if tag == "tensor":
        return tensors[body]
    if tag == "tuple":
        return tuple(_decode(v, tensors) for v in body)
    if tag == "dict":
        return {k: _decode(v, tensors) for k, v in body.items()}
    if tag == "items":
        return {_decode(k, tensors): _decode(v, tensors) for k, v in body}
    if tag == "float" and body in ("nan", "inf", "-inf"):
        return float(body)
    raise ValueError(f"unknown entry {value!r:.100}; known tags: {', '.join(_TAGS)}")


def _incomplete(where: str, reason: str) -> ConfigError:
    return ConfigError([f"{where} is not a complete checkpoint (truncated or corrupt?): {reason}"])
