"""`runner.load`: a trained model as a LightningModule, rebuilt from its file alone
(runner.checkpoint.restore reads and checks the file)."""

from pathlib import Path

import torch

from runner.checkpoint.restore import Restored, restore, restore_checkpoint_of
from runner.config.spec import RunSpec
from runner.train.module import RunnerModule


def load(
    path: str | Path,
    device: torch.device | str = "cpu",
    allow: tuple[str, ...] = (),
    key: str = "path",
) -> RunnerModule:
    """Rebuild the model from the checkpoint alone (its embedded config) and load its weights.

    Accepts a Lightning checkpoint (`.ckpt`) or an exported `.safetensors` file. The data's
    preprocessing comes with it: `module.predict(raw)` applies it to raw inputs. Everything the
    embedded config names must be safe to build (runner.checkpoint.embedded): the runner's own
    layers and data, torch's layers and optimizers, registered initializers, and what `allow`
    adds. Raises ConfigError, prefixed with `key`, for an unreadable, unsafe or mismatched file.
    """
    return _module(restore(path, device, allow, key))


def load_checkpoint_of(spec: RunSpec, device: torch.device | str = "cpu") -> RunnerModule:
    """The checkpoint a task names (`ckpt_path`), loaded as `load` does, with the modules the
    config imports allowed."""
    return _module(restore_checkpoint_of(spec, device))


def _module(restored: Restored) -> RunnerModule:
    return RunnerModule(
        restored.config,
        task=restored.task,
        net=restored.net,
        preprocessing=restored.preprocessing,
    )
