"""A user's own layer, found by its dotted path: `type: tests.user_layers.Scale`."""

import torch
from torch import nn


class Scale(nn.Module):
    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.factor * x


NOT_A_MODULE = 3
