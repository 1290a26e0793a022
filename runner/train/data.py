"""In-memory datasets as LightningDataModules, batched by slicing tensors on the device: they
move there once, and each batch is one index gather (training) or one slice (evaluation), with
no per-sample `__getitem__` or collate. Training order is a permutation drawn from (seed, epoch
as the trainer reads it); under DDP each rank takes its own equal-sized part of it."""

import math
from typing import Any

import pytorch_lightning as pl
import torch

from runner.checkpoint.preprocessing import Preprocessing, standardizer
from runner.train.data_batches import Batch, Batches, tensors_of


class InMemoryData(pl.LightningDataModule):
    """Base: subclasses make (X, y) in `make()`; this splits, moves and batches them."""

    task = "regression"  # or "classification": picks the loss and the metrics

    def __init__(self, batch_size: int, val_fraction: float, test_fraction: float, seed: int):
        super().__init__()
        self.batch_size = batch_size
        self.fractions = (val_fraction, test_fraction)
        self.seed = seed
        self.steps_per_batch = 1  # > 1: training batches come in chunks of this many (fast mode)
        self.splits: dict[str, Batch] = {}
        self._on_device: dict[tuple[str, torch.device], Batch] = {}

    def make(self) -> Batch:
        raise NotImplementedError

    @classmethod
    def values_per_sample(cls, args: dict[str, Any]) -> int | None:
        """Numbers per sample (input, target), to size the data before allocating; None: unknown."""
        return None

    def fit(self, X: torch.Tensor, y: torch.Tensor) -> None:
        """Learn any preprocessing from the training split (digits: its mean and std)."""

    def transform(self, X: torch.Tensor, y: torch.Tensor) -> Batch:
        """Apply that preprocessing to a split."""
        return X, y

    def preprocessing(self) -> Preprocessing | None:
        """What `fit` learned, to save with the model and apply to raw inputs (None: nothing)."""
        return None

    def use_preprocessing(self, preprocessing: Preprocessing) -> None:
        """task=eval of a checkpoint that carries preprocessing: data that has some applies
        the checkpoint's instead of fitting its own (the same numbers as task=predict)."""

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        X, y = self.make()
        order = torch.randperm(len(X), generator=torch.Generator().manual_seed(self.seed))
        n_val, n_test = (math.floor(f * len(X)) for f in self.fractions)
        parts = {
            "val": order[:n_val],
            "test": order[n_val : n_val + n_test],
            "train": order[n_val + n_test :],
        }
        self.fit(X[parts["train"]], y[parts["train"]])  # statistics of the training split only
        self.splits = {name: self.transform(X[idx], y[idx]) for name, idx in parts.items()}

    def tensors(self, split: str, device: torch.device) -> Batch:
        """The split on `device`, moved there once and kept."""
        key = (split, device)
        if key not in self._on_device:
            X, y = self.splits[split]
            self._on_device[key] = (X.to(device), y.to(device))
        return self._on_device[key]

    def transfer_batch_to_device(
        self, batch: Any, device: torch.device, dataloader_idx: int
    ) -> Any:
        # Batches are slices of tensors already on the device: skip Lightning's generic walk
        # over the batch, which costs more than a small model's whole step.
        if all(t.device == device for t in tensors_of(batch)):
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def train_dataloader(self) -> Batches:
        return Batches(self, "train", shuffle=True)

    def val_dataloader(self) -> Batches:
        return Batches(self, "val", shuffle=False)

    def test_dataloader(self) -> Batches:
        return Batches(self, "test", shuffle=False)

    def loader(self, split: str) -> Batches:
        """One split, in order, for evaluation."""
        return Batches(self, split, shuffle=False)

    def probe(self, n: int = 16) -> torch.Tensor:
        """A fixed batch of inputs (the first test samples) for checking a reloaded model."""
        self.setup()
        return self.splits["test"][0][:n]


class RandomData(InMemoryData):
    """Standard-normal inputs of the model's input shape; targets from a fixed random teacher
    (flatten → Linear → tanh → Linear, drawn from `seed`) in the model's output shape, which the
    runner sets as `output_shape` before training. Target column j's teacher weights depend on
    seed and j alone: models of one input shape see the same inputs and the same target
    columns, whatever their number of outputs (one with k outputs learns the first k). Inputs
    are centred, so no first-layer ReLU unit is off for every sample (the book's uniform
    `torch.rand` left whole rgnet blocks without gradient); targets are standardized: a loss
    of 1.0 is predicting the mean."""

    def __init__(
        self,
        input_shape: list[int],
        num_samples: int = 2048,
        batch_size: int = 256,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        seed: int = 0,
        hidden: int = 32,
    ):
        super().__init__(batch_size, val_fraction, test_fraction, seed)
        self.input_shape = tuple(input_shape)
        self.num_samples, self.hidden = num_samples, hidden
        self.output_shape: tuple[int, ...] | None = None

    @classmethod
    def values_per_sample(cls, args: dict[str, Any]) -> int | None:
        return math.prod(args["input_shape"]) + 1  # at least one target value

    def make(self) -> Batch:
        assert self.output_shape is not None, "set output_shape from the model first"
        g = torch.Generator().manual_seed(self.seed)
        X = torch.randn(self.num_samples, *self.input_shape, generator=g)
        n_in, n_out = math.prod(self.input_shape), math.prod(self.output_shape)
        w1 = torch.randn(n_in, self.hidden, generator=g) / math.sqrt(n_in)
        # Column 0: the generator's next draws, as the teacher always drew one output's (a
        # 1-output model's data is what it was); column j ≥ 1: from (seed, j) alone.
        first = torch.randn(self.hidden, generator=g) / math.sqrt(self.hidden)
        columns = [first, *(self._column(j) for j in range(1, n_out))]
        w2 = torch.stack(columns, dim=1)  # (hidden, n_out)
        y = torch.tanh(X.flatten(1) @ w1) @ w2
        y = (y - y.mean(0)) / y.std(0).clamp(min=1e-12)  # (n, n_out): zero mean, unit variance
        return X, y.reshape(self.num_samples, *self.output_shape)

    def _column(self, j: int) -> torch.Tensor:
        """The teacher's output weights for target column j ≥ 1: from (seed, j) only."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + j + 1)
        return torch.randn(self.hidden, generator=g) / math.sqrt(self.hidden)


class SyntheticRegression(InMemoryData):
    """The book's linear-regression data: y = Xw + b + noise, X ~ N(0, 1)."""

    def __init__(
        self,
        w: list[float],
        b: float,
        noise: float = 0.01,
        num_samples: int = 1000,
        batch_size: int = 32,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        seed: int = 0,
    ):
        super().__init__(batch_size, val_fraction, test_fraction, seed)
        self.w = torch.tensor(w, dtype=torch.float32)  # YAML [2, 3] is ints
        self.b, self.noise, self.num_samples = b, noise, num_samples

    def learned(self, net: torch.nn.Module) -> dict[str, Any] | None:
        """The learned w and b next to the true ones, for one Linear layer; else None."""
        linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
        if len(linears) != 1 or sum(1 for _ in net.parameters()) > 2:
            return None
        (linear,) = linears
        if linear.bias is None or linear.weight.shape != (1, len(self.w)):
            return None
        return {
            "w": linear.weight.detach().reshape(-1).cpu().tolist(),
            "w_true": self.w.tolist(),
            "b": float(linear.bias.detach().reshape(-1)[0]),
            "b_true": float(self.b),
        }

    @classmethod
    def values_per_sample(cls, args: dict[str, Any]) -> int | None:
        return len(args["w"]) + 1

    def make(self) -> Batch:
        g = torch.Generator().manual_seed(self.seed)
        X = torch.randn(self.num_samples, len(self.w), generator=g)
        y = X @ self.w + self.b + self.noise * torch.randn(self.num_samples, generator=g)
        return X, y.reshape(-1, 1)


class Digits(InMemoryData):
    """scikit-learn's bundled 8×8 digits: 1,797 samples, 64 features, 10 classes."""

    task = "classification"
    fixed_source = True  # the same 1,797 images whatever the seed: reseeding reshuffles them

    def __init__(
        self,
        batch_size: int = 32,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        seed: int = 0,
    ):
        super().__init__(batch_size, val_fraction, test_fraction, seed)
        self.prep: Preprocessing | None = None
        self.fitted: Preprocessing | None = None

    def make(self) -> Batch:
        from sklearn.datasets import load_digits

        digits: Any = load_digits()
        X = torch.tensor(digits.data, dtype=torch.float32)
        return X, torch.tensor(digits.target, dtype=torch.long)

    def use_preprocessing(self, preprocessing: Preprocessing) -> None:
        self.fitted, self.splits = preprocessing, {}

    def fit(self, X: torch.Tensor, y: torch.Tensor) -> None:
        if self.fitted is not None:
            self.prep = self.fitted
            return
        mean, std = standardizer(X)  # blank pixels in every training image: std 1
        classes = tuple(str(c) for c in range(10))
        self.prep = Preprocessing(shape=tuple(X.shape[1:]), mean=mean, std=std, classes=classes)

    def transform(self, X: torch.Tensor, y: torch.Tensor) -> Batch:
        assert self.prep is not None
        return self.prep.encode(X), y

    def preprocessing(self) -> Preprocessing | None:
        return self.prep
