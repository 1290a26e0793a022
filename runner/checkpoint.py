"""Checkpoints: written atomically, read safely, reloaded from themselves alone and verified.

- Writing: a temp file in the checkpoint's own directory, fsync, rename, fsync the directory.
  A crash mid-write leaves the previous checkpoint whole.
- Reading: `torch.load(weights_only=True)`: tensors and plain data only, never pickled code.
  The embedded config may name dotted paths and `_target_`s only from the allow-list.
- RNG states (torch, CUDA, numpy, Python) travel in the checkpoint, which Lightning itself
  does not do, so a resumed run continues exactly where it stopped.
"""

import os
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO
from torch import nn

from runner.errors import ConfigError
from runner.module import RunnerModule
from runner.tensors import distinct_parameters
from runner.trust import target_problems, untrusted


def atomic_save(obj: Any, path: Path) -> None:
    """torch.save to `path` so that it is either the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    try:
        with tmp.open("wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power cut
    finally:
        os.close(directory)


def safe_load(path: str | Path, key: str = "ckpt_path") -> dict[str, Any]:
    """Read a checkpoint with weights_only=True. Raises ConfigError naming `key` when the file
    is missing, truncated or corrupt, or holds pickled objects (nothing is executed)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError([f"{key}: no checkpoint file at {str(path)!r}"])
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0]
        raise ConfigError(
            [
                f"{key}: refused {str(path)!r}: it holds pickled objects, not only tensors and "
                f"plain data; nothing in it was executed ({first})"
            ]
        ) from e
    except Exception as e:
        raise ConfigError(
            [f"{key}: {str(path)!r} is not a complete checkpoint (truncated or corrupt?): {e}"]
        ) from e
    if not isinstance(checkpoint, dict):
        raise ConfigError(
            [f"{key}: {str(path)!r} holds a {type(checkpoint).__name__}, not a checkpoint"]
        )
    return checkpoint


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO with atomic writes and weights-only reads."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None
    ) -> None:
        atomic_save(checkpoint, Path(path))

    def load_checkpoint(
        self, path: Any, map_location: Any = None, weights_only: Any = None
    ) -> dict[str, Any]:
        return safe_load(path)


class RNGState(pl.Callback):
    """Saves and restores every RNG state with the checkpoint (Lightning saves none)."""

    def state_dict(self) -> dict[str, Any]:
        name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
        state: dict[str, Any] = {
            "torch": torch.get_rng_state(),
            # as a tensor: numpy arrays are not plain data for a weights-only load
            "numpy": (
                name,
                torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                pos,
                has_gauss,
                cached,
            ),
            "python": random.getstate(),
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["torch"])
        name, keys, pos, has_gauss, cached = state_dict["numpy"]
        np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
        version, internal, gauss = state_dict["python"]
        random.setstate((version, tuple(internal), gauss))
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])


def load(
    path: str | Path, device: torch.device | str = "cpu", allow: tuple[str, ...] = ()
) -> RunnerModule:
    """Rebuild the model from the checkpoint alone (its embedded config) and load its weights.

    Accepts a Lightning checkpoint (`.ckpt`) or an exported `.safetensors` file. Dotted paths in
    the embedded config must be on the allow-list (the runner's own, torch.optim, and the
    prefixes in `allow`). Raises ConfigError for an unreadable, unsafe or mismatched file.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        from runner.export import load_safetensors

        return load_safetensors(path, device, allow)
    return from_checkpoint(safe_load(path, key="path"), path, device, allow)


def from_checkpoint(
    checkpoint: dict[str, Any],
    source: Path,
    device: torch.device | str = "cpu",
    allow: tuple[str, ...] = (),
    trusted: bool = False,
) -> RunnerModule:
    """The model a checkpoint (already read) describes, with its weights. `trusted` skips the
    allow-list: only for a file this run just wrote from the user's own config."""
    hparams = checkpoint.get("hyper_parameters") or {}
    if "config" not in hparams or "state_dict" not in checkpoint:
        raise ConfigError(
            [f"path: {str(source)!r} is not a runner checkpoint (no embedded config)"]
        )
    task = hparams.get("task", "regression")
    if trusted:
        module = RunnerModule(hparams["config"], task=task, device=device)
    else:
        module = rebuild(hparams["config"], task, device, allow)
    check_state_dict(module, checkpoint["state_dict"], str(source))
    module.load_state_dict(checkpoint["state_dict"], strict=True)
    return module


def rebuild(
    config: dict[str, Any], task: str, device: torch.device | str, allow: tuple[str, ...] = ()
) -> RunnerModule:
    """A fresh RunnerModule from an embedded config, importing only allow-listed names."""
    with untrusted(allow):
        problems = target_problems(config)
        if problems:
            raise ConfigError(problems)
        return RunnerModule(config, task=task, device=device)


def check_state_dict(module: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Raise ConfigError listing every missing key, unexpected key and shape mismatch."""
    own = module.state_dict()
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


def sharing(net: nn.Module) -> list[tuple[str, ...]]:
    """Groups of names that are one tensor (shared modules and ties), for comparing models."""
    return sorted(names for names, _ in distinct_parameters(net) if len(names) > 1)


def verify(
    trained: RunnerModule,
    checkpoint: dict[str, Any],
    path: Path,
    probe: torch.Tensor,
    device: torch.device,
    precision: str,
) -> dict[str, Any]:
    """Rebuild the model from `checkpoint` (read from `path`) and compare it with the trained one.

    Both run the same probe batch on the training device and precision (the chapter's
    `Y_clone == Y`). On the CPU in fp32 the outputs must be bitwise equal; elsewhere they must
    agree within the tolerance recorded in the result. Shared and tied tensors must still be
    shared after the reload.
    """
    fresh = from_checkpoint(checkpoint, path, device, trusted=True)  # this run wrote it
    outputs = []
    for model in (trained.to(device), fresh):
        model.eval()
        with torch.no_grad(), _autocast(device, precision):
            outputs.append(model(probe.to(device)).float())
    bitwise = device.type == "cpu" and precision == "32"
    atol, rtol = (0.0, 0.0) if bitwise else ((1e-5, 1e-4) if precision == "32" else (1e-2, 1e-2))
    a, b = outputs
    same = torch.equal(a, b) if bitwise else torch.allclose(a, b, atol=atol, rtol=rtol)
    ties_ok = sharing(trained.net) == sharing(fresh.net)
    return {
        "ok": bool(same and ties_ok),
        "checkpoint": str(path),
        "device": str(device),
        "precision": precision,
        "comparison": "bitwise" if bitwise else f"allclose(atol={atol}, rtol={rtol})",
        "max_abs_diff": float((a - b).abs().max()),
        "shared_tensors_intact": ties_ok,
        "probe_shape": list(probe.shape),
    }


def _autocast(device: torch.device, precision: str) -> Any:
    if precision == "32":
        return torch.autocast(device.type, enabled=False)
    dtype = torch.bfloat16 if precision.startswith("bf16") else torch.float16
    return torch.autocast(device.type, dtype=dtype)
