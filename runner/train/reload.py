"""A model rebuilt from a file alone: `runner.load` of a checkpoint (`.ckpt`) or an exported
`.safetensors`, and the verification that a run's own checkpoint reproduces the trained model.

What a config embedded in a file names is checked before anything is built
(runner.train.embedded), unless it is the file this very run just wrote.
"""

import importlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from runner.errors import ConfigError
from runner.params.tensors import distinct_parameters
from runner.registry.trust import untrusted
from runner.train.checkpoint import check_state_dict, safe_load
from runner.train.embedded import allowed_imports, embedded_problems
from runner.train.module import RunnerModule


def load(
    path: str | Path,
    device: torch.device | str = "cpu",
    allow: tuple[str, ...] = (),
    key: str = "path",
) -> RunnerModule:
    """Rebuild the model from the checkpoint alone (its embedded config) and load its weights.

    Accepts a Lightning checkpoint (`.ckpt`) or an exported `.safetensors` file. Everything the
    embedded config names must be safe to build (runner.train.embedded): the runner's own layers
    and data, torch's layers and optimizers, registered initializers, and what `allow` adds.
    Raises ConfigError, prefixed with `key`, for an unreadable, unsafe or mismatched file.
    """
    if isinstance(allow, str):  # allow="mypkg." would otherwise allow every one of its letters
        allow = (allow,)
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"runner.load: path must be a file path; got {type(path).__name__}")
    path = Path(path)
    if path.suffix == ".safetensors":
        return load_safetensors(path, device, allow, key)
    return from_checkpoint(safe_load(path, key=key), path, device, allow, key=key)


def from_checkpoint(
    checkpoint: dict[str, Any],
    source: Path,
    device: torch.device | str = "cpu",
    allow: tuple[str, ...] = (),
    trusted: bool = False,
    key: str = "path",
) -> RunnerModule:
    """The model a checkpoint (already read) describes, with its weights. `trusted` skips the
    checks of what its config names: only for a file this run just wrote from the user's own
    config (the user's own dotted paths need no allow-list)."""
    hparams = checkpoint.get("hyper_parameters")
    if not isinstance(hparams, dict) or "config" not in hparams or "state_dict" not in checkpoint:
        raise ConfigError(
            [f"{key}: {str(source)!r} is not a runner checkpoint (no embedded config)"]
        )
    task = hparams.get("task", "regression")
    if trusted:
        module = RunnerModule(hparams["config"], task=task, device=device)
    else:
        module = rebuild(hparams["config"], task, device, allow, f"{key}: {str(source)!r}")
    check_state_dict(module, checkpoint["state_dict"], f"{key}: {str(source)!r}")
    module.load_state_dict(checkpoint["state_dict"], strict=True)
    return module


def rebuild(
    config: Any, task: Any, device: torch.device | str, allow: tuple[str, ...], where: str
) -> RunnerModule:
    """A fresh RunnerModule from an embedded config, once everything it names has been checked
    (nothing is instantiated before). `where` prefixes the problems: `path: 'file'`."""
    problems = embedded_problems(config, task, allow)
    if problems:
        raise ConfigError([f"{where}: its config is refused: {p}" for p in problems])
    for name in allowed_imports(config, allow):  # the caller allowed them: their registrations
        try:
            importlib.import_module(name)
        except Exception as e:
            raise ConfigError(
                [f"{where}: importing {name!r} raised {type(e).__name__}: {e}"]
            ) from e
    with untrusted(allow):
        return RunnerModule(config, task=task, device=device)


def load_safetensors(
    path: Path, device: torch.device | str, allow: tuple[str, ...], key: str = "path"
) -> RunnerModule:
    from safetensors import safe_open
    from safetensors.torch import load_model

    where = f"{key}: {str(path)!r}"
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except Exception as e:
        raise ConfigError([f"{where} is not a readable .safetensors file: {e}"]) from e
    if metadata.get("format") != "runner" or "config" not in metadata:
        raise ConfigError([f"{where} was not exported by the runner (no config in it)"])
    try:
        config = json.loads(metadata["config"])
    except json.JSONDecodeError as e:
        raise ConfigError([f"{where}: its metadata config is not valid JSON ({e})"]) from e
    module = rebuild(config, metadata.get("task", "regression"), device, allow, where)
    missing, unexpected = load_model(module.net, str(path), strict=False, device=str(device))
    if missing or unexpected:
        raise ConfigError(
            [f"{where} does not fit its own config: missing {missing}, unexpected {unexpected}"]
        )
    return module


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
    # NaN where the trained model has NaN (a run the guard let go on) is a faithful reload.
    same = (
        torch.equal(a.view(torch.int32), b.view(torch.int32))
        if bitwise
        else torch.allclose(a, b, atol=atol, rtol=rtol, equal_nan=True)
    )
    both = torch.isfinite(a) & torch.isfinite(b)
    ties_ok = sharing(trained.net) == sharing(fresh.net)
    return {
        "ok": bool(same and ties_ok),
        "checkpoint": str(path),
        "device": str(device),
        "precision": precision,
        "comparison": "bitwise" if bitwise else f"allclose(atol={atol}, rtol={rtol})",
        "max_abs_diff": float((a - b)[both].abs().max()) if both.any() else 0.0,
        "shared_tensors_intact": ties_ok,
        "probe_shape": list(probe.shape),
    }


def _autocast(device: torch.device, precision: str) -> Any:
    if precision == "32":
        return torch.autocast(device.type, enabled=False)
    dtype = torch.bfloat16 if precision.startswith("bf16") else torch.float16
    return torch.autocast(device.type, dtype=dtype)
