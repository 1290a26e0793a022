"""task=export: a checkpoint's weights as `.safetensors`, for software that isn't the runner.

Each shared or tied tensor is stored once; the metadata holds the resolved config and the
groups of names that share a tensor. The plain `safetensors.torch.load_model` loads the file
into a hand-written PyTorch network with the same sharing; `runner.load` rebuilds the model
from the metadata and re-ties it. (Transposed ties are outside this guarantee.)
"""

import json
import logging
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from runner.checkpoint import load, rebuild, sharing
from runner.errors import ConfigError
from runner.module import RunnerModule
from runner.spec import RunSpec

log = logging.getLogger("runner")


def export(cfg: DictConfig, spec: RunSpec, run_dir: Path) -> dict[str, Any]:
    from safetensors.torch import save_model

    source = Path(cfg.ckpt_path)
    module = load(source)
    target = run_dir / f"{source.stem}.safetensors"
    metadata = {
        "format": "runner",
        "config": json.dumps(module.hparams["config"]),
        "task": module.hparams["task"],
        "shared": json.dumps(sharing(module.net)),
    }
    save_model(module.net, str(target), metadata=metadata)
    log.info("export: %s → %s (%d shared group(s))", source, target, len(sharing(module.net)))
    return {
        "task": "export",
        "source": str(source),
        "file": str(target),
        "shared": sharing(module.net),
    }


def load_safetensors(
    path: Path, device: torch.device | str, allow: tuple[str, ...]
) -> RunnerModule:
    from safetensors import safe_open
    from safetensors.torch import load_model

    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except Exception as e:
        raise ConfigError([f"path: {str(path)!r} is not a readable .safetensors file: {e}"]) from e
    if metadata.get("format") != "runner" or "config" not in metadata:
        raise ConfigError([f"path: {str(path)!r} was not exported by the runner (no config in it)"])
    module = rebuild(
        json.loads(metadata["config"]), metadata.get("task", "regression"), device, allow
    )
    missing, unexpected = load_model(module.net, str(path), strict=False, device=str(device))
    if missing or unexpected:
        raise ConfigError(
            [
                f"path: {str(path)!r} does not fit its own config: missing {missing}, "
                f"unexpected {unexpected}"
            ]
        )
    return module
