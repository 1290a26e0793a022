"""Batches of an in-memory data module's split: slices of tensors already on the device."""

import itertools
import math
from collections.abc import Iterator
from typing import Any

import torch

Batch = tuple[torch.Tensor, torch.Tensor]


def tensors_of(batch: Any) -> Iterator[torch.Tensor]:
    if isinstance(batch, torch.Tensor):
        yield batch
    elif isinstance(batch, list | tuple):
        for item in batch:
            yield from tensors_of(item)
    else:
        raise TypeError(f"unexpected batch element {type(batch).__name__}")


class Batches:
    """An iterable of (x, y) batches over one split of `data` (an InMemoryData); Lightning
    takes it as a dataloader. Resumable: Lightning saves `state_dict()` with every checkpoint,
    so a run resumed in the middle of an epoch continues that epoch's order where it stopped."""

    def __init__(self, data: Any, split: str, shuffle: bool):
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
        if order is None:  # a copy of the split's rows: a first layer in place writes into them
            for start in range(0, len(X), size):
                yield X[start : start + size].clone(), y[start : start + size]
            return
        order = order.to(device)
        for start in range(0, len(order), size):
            idx = order[start : start + size]
            yield X[idx], y[idx]
