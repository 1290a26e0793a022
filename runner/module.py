"""The LightningModule around a compiled net. Imports Lightning: only training paths load it."""

from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from runner.assemble import build_net


class RunnerModule(pl.LightningModule):
    """Holds the compiled network as `.net`; its hyperparameters are the whole resolved config.

    The config is stored as plain containers, so a checkpoint describes itself without pickled
    OmegaConf objects.
    """

    def __init__(self, config: dict[str, Any]):
        super().__init__()
        self.save_hyperparameters({"config": config})
        self.net = build_net(OmegaConf.create(config))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def build(cfg: DictConfig) -> RunnerModule:
    """Compile the config into a LightningModule whose `.net` is the model.

    Raises ConfigError for any problem in the config, all of them at once.
    """
    container = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(container, dict)
    return RunnerModule({str(k): v for k, v in container.items()})
