"""The checkpoint as Lightning writes it: `last.ckpt` kept fresh, every file written atomically
in the runner's format (runner.checkpoint), and every RNG state saved with it."""

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.plugins.io import TorchCheckpointIO

from runner.checkpoint.files import atomic_save, safe_load


class LastCheckpoint(ModelCheckpoint):
    """`checkpoints/last.ckpt`, rewritten (atomically, by the runner's CheckpointIO) at the end of
    every epoch, or every `every_n_steps` optimizer steps for long epochs, and when training ends.

    Lightning's `save_last` writes only when a top-k checkpoint was saved at the same step, so
    with `save_top_k=0` it wrote once, at the very end: a killed run kept nothing recent. This is
    a ModelCheckpoint that keeps one file under one name.
    """

    def __init__(self, dirpath: Path, every_n_steps: int = 0):
        super().__init__(
            dirpath=dirpath,
            filename="last",
            monitor=None,
            save_top_k=1,
            enable_version_counter=False,  # overwrite last.ckpt, never last-v1.ckpt
            every_n_train_steps=every_n_steps or None,
            every_n_epochs=None if every_n_steps else 1,
            # At every epoch's end, after its validation, whatever trainer.val_check_interval
            # or check_val_every_n_epoch say (Lightning would save at validation's end: mid
            # epoch, or every other epoch, and before the epoch counts as processed).
            save_on_train_epoch_end=True,
        )
        self.path = Path(dirpath) / "last.ckpt"

    @property
    def state_key(self) -> str:
        return "LastCheckpoint"  # stable across step intervals: a resume may change it

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        if self._last_global_step_saved != trainer.global_step or not self.path.exists():
            self._save_checkpoint(trainer, str(self.path))  # ended between two saves


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO: atomic writes in the runner's format, reads that run no code."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None
    ) -> None:
        atomic_save(checkpoint, Path(path))

    def load_checkpoint(
        self, path: Any, map_location: Any = None, weights_only: Any = None
    ) -> dict[str, Any]:
        return safe_load(path)


class RNGState(pl.Callback):
    """Saves and restores every RNG state (torch, CUDA, numpy, Python) with the checkpoint, which
    Lightning does not do, so a resumed run continues exactly where it stopped."""

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
