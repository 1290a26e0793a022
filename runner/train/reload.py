"""`runner.load`: a trained model as a LightningModule, rebuilt from its file alone
(runner.checkpoint.restore reads and checks the file)."""

from pathlib import Path

import torch

from runner.checkpoint.restore import restore, restore_checkpoint_of
from runner.config.spec import RunSpec
from runner.train.module import RunnerModule


def load(
    path: str | Path,
    device: torch.device | str = "cpu",
    allow: tuple[str, ...] = (),
    key: str = "path",
) -> RunnerModule:
    """Rebuild the model from the checkpoint alone (its embedded config) and load its weights.

    Accepts a Lightning checkpoint (`.ckpt`) or an exported `.safetensors` file. Everything the
    embedded config names must be safe to build (runner.checkpoint.embedded): the runner's own
    layers and data, torch's layers and optimizers, registered initializers, and what `allow`
    adds. Raises ConfigError, prefixed with `key`, for an unreadable, unsafe or mismatched file.
    """
    restored = restore(path, device, allow, key)
    return RunnerModule(restored.config, task=restored.task, net=restored.net)


def load_checkpoint_of(spec: RunSpec, device: torch.device | str = "cpu") -> RunnerModule:
    """The checkpoint a task names (`ckpt_path`), loaded as `load` does, with the modules the
    config imports allowed."""
    restored = restore_checkpoint_of(spec, device)
    return RunnerModule(restored.config, task=restored.task, net=restored.net)
