"""In-memory datasets as LightningDataModules, batched by slicing tensors on the device: they
move there once, and each batch is one index gather (training) or one slice (evaluation), with
no per-sample `__getitem__` or collate. Training order is a permutation drawn from (seed, epoch
as the trainer reads it); under DDP each rank takes its own equal-sized part of it."""

import itertools
import math
from collections.abc import Iterator
from typing import Any

import pytorch_lightning as pl
import torch

Batch = tuple[torch.Tensor, torch.Tensor]


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
        if all(t.device == device for t in _tensors(batch)):
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def train_dataloader(self) -> "Batches":
        return Batches(self, "train", shuffle=True)

    def val_dataloader(self) -> "Batches":
        return Batches(self, "val", shuffle=False)

    def test_dataloader(self) -> "Batches":
        return Batches(self, "test", shuffle=False)

    def probe(self, n: int = 16) -> torch.Tensor:
        """A fixed batch of inputs (the first test samples) for checking a reloaded model."""
        self.setup()
        return self.splits["test"][0][:n]


def _tensors(batch: Any) -> Iterator[torch.Tensor]:
    if isinstance(batch, torch.Tensor):
        yield batch
    elif isinstance(batch, list | tuple):
        for item in batch:
            yield from _tensors(item)
    else:
        raise TypeError(f"unexpected batch element {type(batch).__name__}")


class Batches:
    """An iterable of (x, y) batches over one split; Lightning takes it as a dataloader.
    Resumable: Lightning saves `state_dict()` with every checkpoint, so a run resumed in the
    middle of an epoch continues that epoch's order where it stopped."""

    def __init__(self, data: InMemoryData, split: str, shuffle: bool):
        self.data, self.split, self.shuffle = data, split, shuffle
        self._resume_at: tuple[int, int] | None = None  # (epoch, Lightning batches done)

    def state_dict(self) -> dict[str, int]:
        trainer = self.data.trainer
        if trainer is None:
            return {"epoch": 0, "done": 0}
        # The loop's own count (not what this iterator yielded: Lightning prefetches one).
        progress = trainer.fit_loop.epoch_loop.batch_progress.current  # a _ProcessedTracker
        done = int(getattr(progress, "processed", progress.completed))
        return {"epoch": trainer.current_epoch, "done": done}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume_at = (int(state["epoch"]), int(state["done"]))

    def _placement(self) -> tuple[torch.device, int, int, int]:
        trainer = self.data.trainer
        if trainer is None:
            return torch.device("cpu"), 0, 1, 0
        return (
            trainer.strategy.root_device,
            trainer.global_rank,
            trainer.world_size,
            trainer.current_epoch,
        )

    def _indices(self, n: int) -> torch.Tensor | None:
        """This rank's sample order for this epoch; None means 0..n-1 in order."""
        _, rank, world, epoch = self._placement()
        if not self.shuffle and world == 1:
            return None
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.data.seed * 100_003 + epoch)
            order = torch.randperm(n, generator=generator)
        else:
            order = torch.arange(n)
        per_rank = n // world  # equal shards, so every rank runs the same number of steps
        return order[rank * per_rank : (rank + 1) * per_rank]

    @property
    def chunk(self) -> int:
        return self.data.steps_per_batch if self.shuffle else 1

    def __len__(self) -> int:
        n = len(self.data.splits[self.split][0])
        world = self._placement()[2]
        return math.ceil(math.ceil((n // world) / self.data.batch_size) / self.chunk)

    def __iter__(self) -> Iterator[Any]:
        resume, self._resume_at = self._resume_at, None
        skip = resume[1] if resume is not None and resume[0] == self._placement()[3] else 0
        yield from itertools.islice(self._batches(), skip, None)

    def _batches(self) -> Iterator[Any]:
        if self.chunk == 1:
            yield from self._minibatches()
            return
        chunk: list[Batch] = []
        for minibatch in self._minibatches():
            chunk.append(minibatch)
            if len(chunk) == self.chunk:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def _minibatches(self) -> Iterator[Batch]:
        device = self._placement()[0]
        X, y = self.data.tensors(self.split, device)
        order = self._indices(len(X))
        size = self.data.batch_size
        if order is None:
            for start in range(0, len(X), size):
                yield X[start : start + size], y[start : start + size]
            return
        order = order.to(device)
        for start in range(0, len(order), size):
            idx = order[start : start + size]
            yield X[idx], y[idx]


class RandomData(InMemoryData):
    """Standard-normal inputs of the model's input shape; targets from a fixed random teacher
    (flatten → Linear → tanh → Linear, drawn from `seed`) in the model's output shape, which the
    runner sets as `output_shape` before training. Inputs are centred, so no first-layer ReLU
    unit is off for every sample (the book's uniform `torch.rand` left whole rgnet blocks
    without gradient); targets are standardized: a loss of 1.0 is predicting the mean."""

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
        w2 = torch.randn(self.hidden, n_out, generator=g) / math.sqrt(self.hidden)
        y = torch.tanh(X.flatten(1) @ w1) @ w2
        y = (y - y.mean(0)) / y.std(0).clamp(min=1e-12)  # (n, n_out): zero mean, unit variance
        return X, y.reshape(self.num_samples, *self.output_shape)


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

    def __init__(
        self,
        batch_size: int = 32,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        seed: int = 0,
    ):
        super().__init__(batch_size, val_fraction, test_fraction, seed)
        self.mean: torch.Tensor | None = None
        self.std: torch.Tensor | None = None

    def make(self) -> Batch:
        from sklearn.datasets import load_digits

        digits: Any = load_digits()
        X = torch.tensor(digits.data, dtype=torch.float32)
        return X, torch.tensor(digits.target, dtype=torch.long)

    def fit(self, X: torch.Tensor, y: torch.Tensor) -> None:
        self.mean, self.std = X.mean(0), X.std(0)
        self.std[self.std == 0] = 1.0  # pixels that are blank in every training image

    def transform(self, X: torch.Tensor, y: torch.Tensor) -> Batch:
        assert self.mean is not None and self.std is not None
        return (X - self.mean) / self.std, y
