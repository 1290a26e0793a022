"""Any LightningDataModule as the runner's data (`data._target_: mypkg.MyDataModule`): its own
dataloaders feed training, evaluation and sweeps, unchanged. What the runner needs of it beyond
them, it reads from attributes the module declares or from one batch: the kind of task
(`task`, else integer targets are classes and floating ones regression), one sample's shape
and the targets, checked against the model before fit (runner.train.fits)."""

from typing import Any

import pytorch_lightning as pl
import torch

from runner.config.data import LEARNING_TASKS
from runner.errors import ConfigError

Batch = tuple[torch.Tensor, torch.Tensor]


def as_runner_data(data: Any) -> Any:
    """`data` as the runner drives it: the runner's own data modules as they are, any other
    LightningDataModule wrapped in UserData."""
    from runner.train.data import InMemoryData

    return data if isinstance(data, InMemoryData) else UserData(data)


class UserData(pl.LightningDataModule):
    """A user's LightningDataModule, its hooks passed through. Its batches must be (x, y)."""

    def __init__(self, inner: pl.LightningDataModule):
        super().__init__()
        self.inner = inner
        self.steps_per_batch = 1  # fast mode's chunks exist for in-memory data only
        self.name = type(inner).__name__
        self._example: Batch | None = None

    @property
    def task(self) -> str:
        """The module's declared `task`, else what one training batch's targets are."""
        declared = getattr(self.inner, "task", None)
        if declared in LEARNING_TASKS:
            return str(declared)
        _, y = self.example()
        return "regression" if y.is_floating_point() else "classification"

    def example(self) -> Batch:
        """The first training batch (kept): what the model is checked against."""
        if self._example is None:
            self.setup("fit")
            self._example = self._first(self.inner.train_dataloader(), "train_dataloader")
        return self._example

    def probe(self, n: int = 16) -> torch.Tensor:
        """A fixed batch of inputs (the first test batch's) for checking a reloaded model."""
        self.setup("test")
        return self._first(self.inner.test_dataloader(), "test_dataloader")[0][:n]

    def loader(self, split: str) -> Any:
        """The module's own dataloader of `split` (train, val, test), for evaluation."""
        self.setup("test" if split == "test" else "fit")
        return getattr(self.inner, f"{split}_dataloader")()

    def _first(self, loader: Any, hook: str) -> Batch:
        batch = next(iter(loader), None)
        if not (isinstance(batch, list | tuple) and len(batch) == 2):
            raise ConfigError(
                [
                    f"data._target_: {self.name}.{hook}() gives batches of "
                    f"{type(batch).__name__}; allowed: (inputs, targets) pairs of tensors"
                ]
            )
        x, y = batch
        return torch.as_tensor(x), torch.as_tensor(y)

    # Lightning's hooks, passed through to the user's module.
    def prepare_data(self) -> None:
        self.inner.prepare_data()

    def setup(self, stage: str | None = None) -> None:
        self.inner.trainer = self.trainer
        self.inner.setup(stage)  # type: ignore[arg-type]

    def teardown(self, stage: str | None = None) -> None:
        self.inner.teardown(stage)  # type: ignore[arg-type]

    def train_dataloader(self) -> Any:
        return self.inner.train_dataloader()

    def val_dataloader(self) -> Any:
        return self.inner.val_dataloader()

    def test_dataloader(self) -> Any:
        return self.inner.test_dataloader()

    def transfer_batch_to_device(self, batch: Any, device: torch.device, index: int) -> Any:
        return self.inner.transfer_batch_to_device(batch, device, index)

    def state_dict(self) -> dict[str, Any]:
        return self.inner.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.inner.load_state_dict(state_dict)
