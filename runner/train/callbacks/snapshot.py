"""A copy of a training state in host memory: the module's parameters and buffers and the
optimizer's state, taken at a moment the NaN/Inf guard has checked, to put back if a later step
turns out bad. Host memory, so that a guarded GPU run needs no device memory for it."""

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

_Key = tuple[int, str]  # (the parameter's index in the optimizer, the state's name)


class Snapshot:
    """`take` copies the live state, `restore` puts the copy back, `applied()` puts it back for
    the duration of a `with` (to save it) and then returns to the live state. Copies go into the
    same host buffers while the shapes stay the same."""

    def __init__(self, module: nn.Module, optimizer: torch.optim.Optimizer):
        self.module, self.optimizer = module, optimizer
        self.step: int | None = None  # the optimizer step whose weights it holds (None: none)
        self.cost = 0.0  # seconds the last `take` took
        self._copies: list[torch.Tensor] = []
        self._layout: list[tuple[_Key, torch.device]] = []  # per optimizer state tensor
        self._plain: dict[_Key, Any] = {}  # non-tensor optimizer state (a None momentum, ...)

    def _params(self) -> list[torch.Tensor]:
        return [p for group in self.optimizer.param_groups for p in group["params"]]

    def _live(self) -> tuple[list[torch.Tensor], list[tuple[_Key, torch.device]], dict[_Key, Any]]:
        live = [t.detach() for t in (*self.module.parameters(), *self.module.buffers())]
        layout, plain = [], {}
        for i, p in enumerate(self._params()):
            for key, value in self.optimizer.state.get(p, {}).items():
                if isinstance(value, torch.Tensor):
                    live.append(value.detach())
                    layout.append(((i, key), value.device))
                else:
                    plain[(i, key)] = value
        return live, layout, plain

    def take(self, step: int) -> None:
        start = time.perf_counter()
        live, layout, plain = self._live()
        reuse = layout == self._layout and [(t.shape, t.dtype) for t in live] == [
            (c.shape, c.dtype) for c in self._copies
        ]
        if reuse:
            for copy, t in zip(self._copies, live, strict=True):
                copy.copy_(t)
        else:
            self._copies = [t.to("cpu", copy=True) for t in live]
        if any(t.device.type == "cuda" for t in live):
            torch.cuda.synchronize()  # whole before the next step writes the live tensors
        self._layout, self._plain, self.step = layout, plain, step
        self.cost = time.perf_counter() - start

    def restore(self) -> None:
        """Put the copied state back: weights, buffers and the optimizer's state as it was."""
        live, _, _ = self._live()
        params = self._params()
        fixed = len(self._copies) - len(self._layout)  # parameters and buffers come first
        with torch.no_grad():
            for t, copy in zip(live[:fixed], self._copies[:fixed], strict=True):
                t.copy_(copy)
        for p in params:  # created lazily at the first step: absent then, absent again
            self.optimizer.state.pop(p, None)
        for ((i, key), device), copy in zip(self._layout, self._copies[fixed:], strict=True):
            self.optimizer.state[params[i]][key] = copy.to(device, copy=True)
        for (i, key), value in self._plain.items():
            self.optimizer.state[params[i]][key] = value

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """The copied state, live for the duration of the `with`; the live state after it."""
        current = Snapshot(self.module, self.optimizer)
        current.take(-1)
        self.restore()
        try:
            yield
        finally:
            current.restore()
