"""A user's own layer, found by its dotted path: `type: tests.user_layers.Scale`."""

import os
import threading
import time
from typing import ClassVar

import pytorch_lightning as pl
import torch
from torch import nn


class Scale(nn.Module):
    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.factor * x


NOT_A_MODULE = 3


class NaNAfter(nn.Module):
    """Passes its input through, until its `steps`-th training forward, which returns NaN."""

    def __init__(self, steps: int):
        super().__init__()
        self.steps, self.calls = steps, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.calls += 1
            if self.calls > self.steps:
                return x * float("nan")
        return x


class FixedNoLoop(nn.Module):
    """The book's FixedHiddenMLP without its `while` loop: its constant is a plain attribute,
    not a buffer, so the meta path cannot move it (`type: tests.user_layers.FixedNoLoop`)."""

    def __init__(self):
        super().__init__()
        self.rand_weight = torch.rand((20, 20))
        self.linear = nn.Linear(20, 20)

    def forward(self, x):
        x = self.linear(x)
        x = torch.relu(x @ self.rand_weight + 1)
        return self.linear(x).sum(dim=1, keepdim=True)


class SignalAt(nn.Module):
    """Sends `signum` to its own process at the `at`-th training forward of the process: a
    deterministic stand-in for Ctrl-C, `timeout`'s SIGTERM or a kill -9 at a chosen step."""

    calls = 0
    eval_calls = 0

    def __init__(
        self,
        at: int,
        signum: int = 15,
        seconds: float = 0.0,
        once: str = "",
        eval_at: int = 0,
        burst: int = 1,
    ):
        super().__init__()
        self.at, self.signum, self.seconds, self.once = at, signum, seconds, once
        self.eval_at = eval_at  # > 0: at that evaluation forward instead (validation, test, verify)
        self.burst = burst  # > 1: that many signals, 1 ms apart (a scheduler or a user insisting)

    def forward(self, x):
        if not self.training and self.eval_at:
            SignalAt.eval_calls += 1
            if SignalAt.eval_calls == self.eval_at:
                os.kill(os.getpid(), self.signum)
        if self.training:
            SignalAt.calls += 1
            time.sleep(self.seconds)  # > 0: a slow run, for tests that race a second one
            if SignalAt.calls == self.at and not (self.once and os.path.exists(self.once)):
                if self.once:  # signal in one process only, however often the run repeats
                    open(self.once, "w").close()
                threading.Thread(target=self._send, daemon=True).start()
        return x

    def _send(self) -> None:
        for _ in range(self.burst):
            os.kill(os.getpid(), self.signum)
            time.sleep(0.001)


class EpochCounter(pl.Callback):
    """A user's own callback: counts the training epochs it sees (in this process)."""

    seen: ClassVar[list[int]] = []

    def __init__(self, label: str = "mine"):
        self.label = label

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        EpochCounter.seen.append(trainer.current_epoch)


class NumpyState(pl.Callback):
    """A user's callback whose state a checkpoint cannot hold: a numpy array, not a tensor."""

    def state_dict(self) -> dict:
        import numpy as np

        return {"rows": np.zeros(3)}


class Unused(nn.Module):
    """Passes its input through; holds a Linear the loss never reaches (no gradient)."""

    def __init__(self, features: int):
        super().__init__()
        self.spare = nn.Linear(features, features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class HugeLossAt(nn.Module):
    """At its `at`-th training forward only, adds 1.9e19 to one output (a constant: gradients
    stay finite), so that forward's squared-error loss overflows to Inf."""

    def __init__(self, at: int):
        super().__init__()
        self.at, self.calls = at, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.calls += 1
            if self.calls == self.at:
                bump = torch.zeros_like(x)
                bump.view(-1)[0] = 1.9e19
                return x + bump
        return x


class RaiseAt(nn.Module):
    """Raises at the `at`-th training forward: a bug in the user's own layer (ValueError), or
    Ctrl-C as user code meets it (KeyboardInterrupt: a notebook's interrupt, a library that
    re-raises it), which Lightning turns into exit(1)."""

    def __init__(self, at: int, error: str = "ValueError"):
        super().__init__()
        self.at, self.error, self.calls = at, error, 0

    def forward(self, x):
        if self.training:
            self.calls += 1
            if self.calls == self.at:
                if self.error == "KeyboardInterrupt":
                    raise KeyboardInterrupt
                raise ValueError("a bug in my layer")
        return x
