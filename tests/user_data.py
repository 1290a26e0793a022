"""A user's own LightningDataModule, found by its dotted path: `data._target_=tests.user_data.Blobs`.
Plain Lightning: its own TensorDatasets and DataLoaders, nothing from the runner."""

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from runner.train.data import InMemoryData


class Blobs(pl.LightningDataModule):
    """Two Gaussian blobs in `features` dimensions, labelled 0 and 1 (no `task` declared: the
    runner reads it from the integer targets)."""

    def __init__(self, features: int = 8, samples: int = 256, batch_size: int = 32, seed: int = 0):
        super().__init__()
        self.features, self.samples, self.batch_size, self.seed = (
            features,
            samples,
            batch_size,
            seed,
        )
        self.sets: dict[str, TensorDataset] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.sets:
            return
        g = torch.Generator().manual_seed(self.seed)
        y = torch.randint(0, 2, (self.samples,), generator=g)
        x = torch.randn(self.samples, self.features, generator=g) + 2.0 * y[:, None].float()
        n = self.samples // 4
        self.sets = {
            "train": TensorDataset(x[2 * n :], y[2 * n :]),
            "val": TensorDataset(x[:n], y[:n]),
            "test": TensorDataset(x[n : 2 * n], y[n : 2 * n]),
        }

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.sets["train"], batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.sets["val"], batch_size=self.batch_size)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.sets["test"], batch_size=self.batch_size)


class Levels(Blobs):
    """The same inputs with a float target per sample: regression, declared."""

    task = "regression"

    def setup(self, stage: str | None = None) -> None:
        super().setup(stage)
        self.sets = {
            name: TensorDataset(x, x.mean(1, keepdim=True))
            for name, (x, _) in ((k, s.tensors) for k, s in self.sets.items())
        }


class Gappy(Blobs):
    """Blobs with every other training sample's first input missing (NaN): refused before
    training, not trained into non-finite gradients."""

    def setup(self, stage: str | None = None) -> None:
        super().setup(stage)
        x, y = self.sets["train"].tensors
        x = x.clone()
        x[::2, 0] = float("nan")
        self.sets["train"] = TensorDataset(x, y)


class Overflowing(InMemoryData):
    """The runner's own kind of in-memory data, made by the user, with one infinite target in
    a split the runner draws: refused before training."""

    def __init__(self, batch_size: int = 16, seed: int = 0):
        super().__init__(batch_size, val_fraction=0.25, test_fraction=0.25, seed=seed)

    def make(self) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(64, 3, generator=torch.Generator().manual_seed(0))
        y = x.sum(1, keepdim=True)
        y[10] = float("inf")
        return x, y
