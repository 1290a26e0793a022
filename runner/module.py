"""The LightningModule around a compiled net: loss, metrics, optimizer and schedule from config.

Imports Lightning, so only training paths load it (`task=inspect` does not).
"""

import logging
import warnings
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch.nn import functional as F

from runner.assemble import build_net

TASKS = ("regression", "classification")


def _quiet_lightning() -> None:
    """Keep the stage log readable: Lightning's banners and tips say nothing about the run.
    Done on import, so DDP workers (which import this module to unpickle it) are quiet too."""
    for name in (
        "pytorch_lightning.utilities.rank_zero",
        "lightning.pytorch.utilities.rank_zero",
        "lightning_fabric.utilities.distributed",
    ):
        logging.getLogger(name).setLevel(logging.WARNING)
    # Lightning 2.6 on torch 2.13 calls a deprecated pytree API: not ours to fix or show.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")


_quiet_lightning()


class RunnerModule(pl.LightningModule):
    """Holds the compiled network as `.net`. Its hyperparameters are the whole resolved config
    as plain containers and the learning task, so a checkpoint describes itself.

    `task` picks the loss: mean squared error for regression, cross-entropy (plus accuracy)
    for classification. `device` is where the net is built (default: what the config's device
    group picks); Lightning moves it later if needed.
    """

    def __init__(
        self,
        config: dict[str, Any],
        task: str = "regression",
        device: torch.device | str | None = None,
    ):
        super().__init__()
        assert task in TASKS, task
        self.save_hyperparameters({"config": config, "task": task})
        self.net = build_net(OmegaConf.create(config), device=device)
        self.classification = task == "classification"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        x, y = batch
        out = self.net(x)
        loss = F.cross_entropy(out, y) if self.classification else F.mse_loss(out, y)
        sync = self.trainer.world_size > 1  # epoch metrics averaged over all ranks
        train = stage == "train"
        self.log(f"{stage}/loss", loss, on_step=train, on_epoch=True, prog_bar=True, sync_dist=sync)
        if self.classification:
            accuracy = (out.argmax(-1) == y).float().mean()
            self.log(
                f"{stage}/acc",
                accuracy,
                on_step=False,
                on_epoch=True,
                prog_bar=True,
                sync_dist=sync,
            )
        return loss

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    def configure_optimizers(self) -> Any:
        optim = self.hparams["config"]["optim"]
        # `self.parameters()` lists each tensor once: a tied group is one optimizer entry.
        optimizer = instantiate(optim["optimizer"])(params=self.parameters())
        if not optim.get("scheduler"):
            return optimizer
        scheduler = instantiate(optim["scheduler"])(optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"},
        }


def data_task(cfg: DictConfig | dict[str, Any]) -> str:
    """The learning task of the configured data: its class's `task` attribute."""
    from hydra.utils import get_class

    target = cfg["data"]["_target_"]
    return str(getattr(get_class(target), "task", "regression"))


def build(cfg: DictConfig) -> RunnerModule:
    """Compile the config into a LightningModule whose `.net` is the model.

    Raises ConfigError for any problem in the config, all of them at once.
    """
    from runner.config import plain

    return RunnerModule(plain(cfg), task=data_task(cfg))
