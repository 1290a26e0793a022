"""The checkpoint file: Lightning's whole checkpoint dict as a safetensors file, no pickle.

Every tensor anywhere in the dict goes into the safetensors tensor table, named by where it
sits (`state_dict/net.0.weight`); tensors that are one (a tied weight under two keys) are stored
once and read back as one tensor. The rest of the dict goes into the header's metadata as JSON
that refers to the tensors by name: dicts (any keys JSON can hold, such as the optimizer
state's ints), lists, tuples, str, int, float (inf and nan too), bool and None. Anything else is
refused when saving, naming where it is. The file is written and read by the safetensors
library (read through its mmap and copied into memory: the next atomic save replaces the file);
reading parses JSON and copies bytes, so nothing in the file can run code, and any safetensors
reader can open it.
"""

import json
import math
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from runner.errors import ConfigError, RunFailed, first_line

FORMAT, VERSION = "runner-checkpoint", 1
_DTYPES = {  # what safetensors stores
    torch.float64,
    torch.float32,
    torch.float16,
    torch.bfloat16,
    torch.int64,
    torch.int32,
    torch.int16,
    torch.int8,
    torch.uint8,
    torch.bool,
    torch.float8_e4m3fn,
    torch.float8_e5m2,
}
_MAX_HEADER = 100 << 20  # safetensors' own limit; also tells random bytes from a header
_TAGS = ("tensor", "tuple", "dict", "items", "float")


def is_checkpoint(head: bytes) -> bool:
    """Whether a file's first 9 bytes start a safetensors file: a plausible header length, `{`."""
    return len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < _MAX_HEADER


def write(checkpoint: dict[str, Any], path: Path) -> None:
    """Write `checkpoint` to the file at `path`. Raises RunFailed naming the place of a value
    that is neither a tensor nor plain data (before anything is written), SafetensorError
    when the write fails (a full disk, ...)."""
    tensors: dict[str, torch.Tensor] = {}
    structure = _encode(checkpoint, (), tensors, {})
    text = json.dumps(structure, separators=(",", ":"), allow_nan=False)
    metadata = {"format": FORMAT, "version": str(VERSION), "structure": text}
    save_file(_stored(tensors), path, metadata=metadata)


def _stored(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """On the CPU, contiguous, and no two sharing memory (safetensors refuses that): a view
    into memory another tensor already covers is copied (the same view twice was one entry)."""
    out, storages = {}, set()
    for name, t in tensors.items():
        t = t.cpu().contiguous()
        storage = t.untyped_storage().data_ptr()
        if storage in storages and t.numel():
            t = t.clone()
        storages.add(storage)
        out[name] = t
    return out


def read(path: Path, where: str) -> dict[str, Any]:
    """The checkpoint dict in the file at `path`, its tensors read into memory. Raises
    ConfigError prefixed with `where` for a file that is truncated, corrupt, or a safetensors
    file without a checkpoint in it."""
    try:
        with safe_open(path, framework="pt") as f:
            metadata = f.metadata() or {}
            if metadata.get("format") != FORMAT:
                raise ConfigError(
                    [f"{where} is not a checkpoint (a safetensors file without a checkpoint in it)"]
                )
            if metadata.get("version") != str(VERSION):
                version = metadata.get("version")
                raise ConfigError(
                    [f"{where} is a checkpoint of format {version!r}; this runner reads {VERSION}"]
                )
            # Copied out of safetensors' mmap: the next atomic save replaces the file, and a
            # resumed optimizer would otherwise keep updating pages of the old one (measured:
            # faster than its pread backend, and than a raw read of the same bytes).
            tensors = {name: t.clone() for name, t in f.get_tensors().items()}
    except (SafetensorError, OSError) as e:
        raise _incomplete(where, first_line(e, default=repr(e))) from e
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
