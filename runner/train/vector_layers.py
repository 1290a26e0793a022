"""The stacked forms of the layers with tensors (runner.train.vector_net): each applies every
member's own tensors to that member's rows of an (N·B, ...) batch in one call — Linear as one
batched matmul; a convolution as one grouped convolution, the members side by side in the
channels; BatchNorm likewise, each member's statistics over its own rows; LayerNorm per sample,
then each member's affine."""

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

Tensors = dict[str, torch.Tensor]


def _members_to_channels(x: torch.Tensor, n: int) -> torch.Tensor:
    """(n·B, C, *S) → (B, n·C, *S): member i's channels at [i·C, (i+1)·C)."""
    b = x.shape[0] // n
    return x.reshape(n, b, *x.shape[1:]).transpose(0, 1).reshape(b, n * x.shape[1], *x.shape[2:])


def _channels_to_members(x: torch.Tensor, n: int) -> torch.Tensor:
    """The inverse of _members_to_channels."""
    b, c = x.shape[0], x.shape[1] // n
    return x.reshape(b, n, c, *x.shape[2:]).transpose(0, 1).reshape(n * b, c, *x.shape[2:])


class Stacked(nn.Module):
    """A layer's stacked form: its members' tensors (N, *shape) are views the group owns, held
    as plain attributes (not parameters: the group's optimizer updates them)."""

    def __init__(self, layer: nn.Module, tensors: Tensors, n: int):
        super().__init__()
        self.__dict__["layer"] = layer  # for its settings (not a child: its tensors are unused)
        self.n, self.tensors = n, tensors

    def extra_repr(self) -> str:
        return f"{self.n} members"


class _Linear(Stacked):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight, bias = self.tensors["weight"], self.tensors.get("bias")
        rows = x.reshape(self.n, -1, x.shape[-1])
        out = torch.bmm(rows, weight.transpose(1, 2))
        if bias is not None:
            out = out + bias.unsqueeze(1)
        return out.reshape(*x.shape[:-1], weight.shape[1])


class _Conv(Stacked):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv: Any = self.layer
        weight, bias = self.tensors["weight"], self.tensors.get("bias")
        convolve: Callable[..., torch.Tensor] = (
            F.conv1d if isinstance(conv, nn.Conv1d) else F.conv2d
        )
        out = convolve(
            _members_to_channels(x, self.n),
            weight.reshape(-1, *weight.shape[2:]),
            None if bias is None else bias.reshape(-1),
            conv.stride,
            conv.padding,
            conv.dilation,
            conv.groups * self.n,
        )
        return _channels_to_members(out, self.n)


class _BatchNorm(Stacked):
    """Each member's statistics over its own rows; its running statistics updated in place in
    the group's buffers (their (N, C) rows are (N·C,) channels here)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bn: Any = self.layer
        t = self.tensors
        mean, var = t.get("running_mean"), t.get("running_var")
        factor = 0.0 if bn.momentum is None else bn.momentum
        if self.training and bn.track_running_stats:
            count = t["num_batches_tracked"]
            count.add_(1)
            if bn.momentum is None:  # a cumulative mean: the active members took the same
                # steps (a stopped member's count lags, and its statistics are restored anyway)
                factor = 1.0 / float(count.max())
        batch_stats = self.training or mean is None
        out = F.batch_norm(
            _members_to_channels(x, self.n),
            None if mean is None else mean.view(-1),
            None if var is None else var.view(-1),
            None if "weight" not in t else t["weight"].reshape(-1),
            None if "bias" not in t else t["bias"].reshape(-1),
            batch_stats,
            factor,
            bn.eps,
        )
        return _channels_to_members(out, self.n)


class _LayerNorm(Stacked):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ln: Any = self.layer
        shape = tuple(ln.normalized_shape)
        out = F.layer_norm(x, shape, None, None, ln.eps)
        weight, bias = self.tensors.get("weight"), self.tensors.get("bias")
        if weight is None and bias is None:
            return out
        rows = out.reshape(self.n, -1, *shape)
        if weight is not None:
            rows = rows * weight.unsqueeze(1)
        if bias is not None:
            rows = rows + bias.unsqueeze(1)
        return rows.reshape(x.shape)


STACKED: dict[type[nn.Module], type[Stacked]] = {
    nn.Linear: _Linear,
    nn.Conv1d: _Conv,
    nn.Conv2d: _Conv,
    nn.BatchNorm1d: _BatchNorm,
    nn.BatchNorm2d: _BatchNorm,
    nn.LayerNorm: _LayerNorm,
}
