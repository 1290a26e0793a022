"""A network rebuilt from a file alone: a checkpoint (`.ckpt`) or an exported `.safetensors`.

What a config embedded in a file names is checked before anything is built
(runner.checkpoint.embedded), unless it is the file this very run just wrote. The result is the
bare network with its config and learning task; `runner.load` wraps it in a LightningModule.
"""

import importlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from torch import nn

from runner.checkpoint import layout
from runner.checkpoint.embedded import allowed_imports, embedded_problems, rebuilt_sections
from runner.checkpoint.files import check_state_dict, safe_load
from runner.checkpoint.preprocessing import Preprocessing
from runner.config.spec import RunSpec, check_embedded
from runner.errors import ConfigError
from runner.model.assemble import build_net
from runner.params.tensors import distinct_parameters
from runner.registry.trust import untrusted


@dataclass(frozen=True)
class Restored:
    """What a file describes: the network with its weights, the composed config it was
    trained with (plain containers) and its learning task."""

    net: nn.Module
    config: dict[str, Any]
    task: str
    preprocessing: Preprocessing | None = None  # what the data fitted, for raw inputs


def restore(
    path: str | Path,
    device: torch.device | str = "cpu",
    allow: tuple[str, ...] = (),
    key: str = "path",
) -> Restored:
    """Rebuild the network a checkpoint or an exported `.safetensors` file describes.

    Everything its embedded config names must be safe to build (runner.checkpoint.embedded):
    the runner's own layers and data, torch's layers and optimizers, registered initializers,
    and what `allow` adds. Raises ConfigError, prefixed with `key`, for an unreadable, unsafe or
    mismatched file; TypeError when `path` is no path.
    """
    if isinstance(allow, str):  # allow="mypkg." would otherwise allow every one of its letters
        allow = (allow,)
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"runner.load: path must be a file path; got {type(path).__name__}")
    path = Path(path)
    if path.suffix == ".safetensors":
        return _from_safetensors(path, device, allow, key)
    return from_checkpoint(safe_load(path, key=key), path, device, allow, key=key)


def restore_checkpoint_of(spec: RunSpec, device: torch.device | str = "cpu") -> Restored:
    """The checkpoint a task names (`ckpt_path`), restored with the modules the config imports
    allowed. Raises ConfigError naming `ckpt_path`."""
    assert spec.ckpt_path is not None  # parse_run requires it for the tasks that read one
    return restore(spec.ckpt_path, device, allow=spec.imports, key="ckpt_path")


def from_checkpoint(
    checkpoint: dict[str, Any],
    source: Path,
    device: torch.device | str = "cpu",
    allow: tuple[str, ...] = (),
    trusted: bool = False,
    key: str = "path",
) -> Restored:
    """The network a checkpoint (already read) describes, with its weights. `trusted` skips the
    checks of what its config names: only for a file this run just wrote from the user's own
    config (the user's own dotted paths need no allow-list)."""
    where = f"{key}: {str(source)!r}"
    hparams = layout.hyperparameters(checkpoint)
    if hparams is None:
        raise ConfigError([f"{where} is not a runner checkpoint (no embedded config)"])
    config, task = rebuilt_sections(hparams["config"]), hparams.get("task", "regression")
    net = _build(config, device) if trusted else _rebuild(config, task, device, allow, where)
    state = layout.module_state(checkpoint)
    check_state_dict(layout.net_state(net), state, where)
    net.load_state_dict(layout.strip_net_prefix(state), strict=True)
    return Restored(net, config, str(task), _preprocessing(hparams.get("preprocessing"), where))


def _preprocessing(raw: Any, where: str) -> Preprocessing | None:
    return None if raw is None else Preprocessing.from_dict(raw, where)


def _build(config: dict[str, Any], device: torch.device | str) -> nn.Module:
    return build_net(OmegaConf.create(config), device=device)


def _rebuild(
    config: Any, task: Any, device: torch.device | str, allow: tuple[str, ...], where: str
) -> nn.Module:
    """A fresh network from an embedded config, once everything it names has been checked
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
        check_embedded(config, str(task), where)  # the command line's checks, before building
        return _build(config, device)


def _from_safetensors(
    path: Path, device: torch.device | str, allow: tuple[str, ...], key: str
) -> Restored:
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
        config = rebuilt_sections(json.loads(metadata["config"]))
    except (json.JSONDecodeError, RecursionError) as e:  # RecursionError: nested 10⁵ deep
        raise ConfigError([f"{where}: its metadata config is not valid JSON ({e})"]) from None
    task = metadata.get("task", "regression")
    try:
        prep = json.loads(metadata["preprocessing"]) if "preprocessing" in metadata else None
    except json.JSONDecodeError as e:
        raise ConfigError([f"{where}: its metadata preprocessing is not valid JSON ({e})"]) from e
    preprocessing = _preprocessing(prep, where)
    net = _rebuild(config, task, device, allow, where)
    _check_shapes(net, path, where)
    missing, unexpected = load_model(net, str(path), strict=False, device=str(device))
    if missing or unexpected:
        raise ConfigError(
            [f"{where} does not fit its own config: missing {missing}, unexpected {unexpected}"]
        )
    return Restored(net, config, str(task), preprocessing)


def _check_shapes(net: nn.Module, path: Path, where: str) -> None:
    """Every tensor in the file has the shape its config's model gives it (load_model would
    raise a bare RuntimeError); missing and unexpected names are load_model's to report."""
    from safetensors import safe_open

    own = net.state_dict()
    with safe_open(str(path), framework="pt") as f:
        stored = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
        kinds = {k: str(f.get_slice(k).get_dtype()) for k in f.keys()}  # noqa: SIM118
    wrong = [
        f"{where}: does not fit its own config: shape mismatch at {k}: {list(shape)} in the "
        f"file, {list(own[k].shape)} in the model"
        for k, shape in stored.items()
        if k in own and shape != tuple(own[k].shape)
    ]
    # Integers loaded into a floating parameter would be cast without a word (and the other way).
    wrong += [
        f"{where}: does not fit its own config: {k} holds {kinds[k]} numbers, the model's "
        f"{k} is {str(own[k].dtype).removeprefix('torch.')}"
        for k in stored
        if k in own and kinds[k].startswith(("F", "BF")) != own[k].is_floating_point()
    ]
    if wrong:
        raise ConfigError(wrong)


def sharing(net: nn.Module) -> list[tuple[str, ...]]:
    """Groups of names that are one tensor (shared modules and ties), for comparing models."""
    return sorted(names for names, _ in distinct_parameters(net) if len(names) > 1)
