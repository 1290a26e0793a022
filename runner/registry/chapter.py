"""The chapter's custom layers and blocks; runner.registry.layers makes them usable by name."""

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.modules.lazy import LazyModuleMixin
from torch.nn.parameter import UninitializedParameter


class CenteredLayer(nn.Module):
    """Subtracts the mean of its whole input: a layer without parameters."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - x.mean()


class MyDense(nn.Module):
    """The book's hand-written dense layer: relu(x @ weight + bias), weight of shape (in, units).

    Leave `in_units` out in YAML and it is inferred from the first input (LazyMyDense).
    """

    def __init__(self, in_units: int, units: int):
        super().__init__()
        self.in_units, self.units = in_units, units
        self.weight = nn.Parameter(torch.empty(in_units, units))
        self.bias = nn.Parameter(torch.empty(units))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # The book draws both from N(0, 1).
        with torch.no_grad():
            self.weight.normal_()
            self.bias.normal_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x @ self.weight + self.bias)  # (B, in_units) → (B, units)

    def extra_repr(self) -> str:
        return f"in_units={self.in_units}, units={self.units}"


class LazyMyDense(LazyModuleMixin, MyDense):
    """MyDense whose `in_units` comes from the first input; becomes a MyDense after it."""

    cls_to_become = MyDense

    def __init__(self, units: int):
        super().__init__(0, units)
        self.weight = UninitializedParameter()  # type: ignore[assignment]
        self.bias = UninitializedParameter()  # type: ignore[assignment]

    def reset_parameters(self) -> None:
        if not self.has_uninitialized_params() and self.in_units != 0:
            super().reset_parameters()

    def initialize_parameters(self, x: torch.Tensor) -> None:
        if self.has_uninitialized_params():
            with torch.no_grad():
                self.in_units = x.shape[-1]
                self.weight.materialize((self.in_units, self.units))  # type: ignore[attr-defined]
                self.bias.materialize((self.units,))  # type: ignore[attr-defined]
                self.reset_parameters()


class FixedHiddenMLP(nn.Module):
    """The chapter's block with a constant weight, a layer used twice and a while loop.

    `rand_weight` is a buffer: saved and moved with the model, never trained. The forward
    returns one scalar per batch, so this block is for inspection, not training.
    """

    rand_weight: torch.Tensor

    def __init__(self, features: int = 20, in_features: int | None = None):
        super().__init__()
        self.register_buffer("rand_weight", torch.empty(features, features))
        # As in the book, the input size is inferred unless given.
        self.linear = (
            nn.LazyLinear(features) if in_features is None else nn.Linear(in_features, features)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw the constant: the reset hook that lets a meta-device build restore it."""
        with torch.no_grad():
            self.rand_weight.uniform_(0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.linear(x)
        x = F.relu(x @ self.rand_weight + 1)
        x = self.linear(x)  # the same parameters a second time
        while x.abs().sum() > 1:  # control flow on the values themselves
            x = x / 2
        return x.sum()


# Registered under their class names (the lazy variant too: `MyDense` without `in_units`).
CHAPTER_LAYERS = (CenteredLayer, MyDense, LazyMyDense, FixedHiddenMLP)
