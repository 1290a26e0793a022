"""A chain of Linear layers and elementwise activations (the MLPs, the chapter's rgnet) for N
members at once, on activations held feature-major, (N, features, rows): a Linear is one
batched matmul, weight @ h, and one add of its bias along the rows' contiguous dim (in the
(N, rows, features) layout, the bias's broadcast add cost more than the matmul).

Its training step has a hand-written backward: per Linear, two batched matmuls and a sum,
written straight into the group's gradient buffer; per activation, its own aten backward op.
For networks this small the autograd engine's bookkeeping (a graph node per op, its gradient
accumulation, the leaves' copies) cost more than the arithmetic. The first batch checks it
against autograd (GroupFit.check_stacked); a chain with an activation not in `_BACKWARD`, or
a loss on shapes other than the plain ones, trains through autograd instead."""

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

aten = torch.ops.aten
# Each activation's backward from (gradient, its input, its output), as autograd computes it.
_BACKWARD: dict[type[nn.Module], Callable[..., torch.Tensor]] = {
    nn.Identity: lambda m, g, x, y: g,
    nn.ReLU: lambda m, g, x, y: aten.threshold_backward(g, y, 0),
    nn.Sigmoid: lambda m, g, x, y: aten.sigmoid_backward(g, y),
    nn.Tanh: lambda m, g, x, y: aten.tanh_backward(g, y),
    nn.SiLU: lambda m, g, x, y: aten.silu_backward(g, x),
    nn.GELU: lambda m, g, x, y: aten.gelu_backward(g, x, approximate=m.approximate),
    nn.LeakyReLU: lambda m, g, x, y: aten.leaky_relu_backward(g, x, m.negative_slope, False),
}

_IN_PLACE: dict[type[nn.Module], Callable[[torch.Tensor], torch.Tensor]] = {
    nn.ReLU: torch.relu_,
    nn.Sigmoid: torch.sigmoid_,
    nn.Tanh: torch.tanh_,
}


@dataclass
class Linear:
    """One Linear layer of all members: weight (N, out, in) and bias (N, out, 1) leaves, whose
    .grad are views of the group's gradient buffer."""

    weight: torch.Tensor
    bias: torch.Tensor | None

    def __call__(self, h: torch.Tensor) -> torch.Tensor:
        if self.bias is None:
            return torch.bmm(self.weight, h)
        return torch.bmm(self.weight, h).add_(self.bias)  # faster here than baddbmm


Layer = Linear | nn.Module


class Chain(nn.Module):
    """The members' chain: `forward` through autograd (validation, the first-batch check, a
    chain without a hand-written backward), `train_losses` with the hand-written one."""

    def __init__(self, layers: list[Layer]):
        super().__init__()
        self.layers = layers  # a plain list: the leaves are the group's, not this module's
        self.manual = all(isinstance(m, Linear) or type(m) in _BACKWARD for m in layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = _feature_major(x)
        for layer in self.layers:
            # m.forward, not m(): a module call's machinery costs more than a ReLU
            h = layer(h) if isinstance(layer, Linear) else layer.forward(h)
        return _sample_major(h, x)

    @torch.no_grad()
    def train_losses(
        self, x: torch.Tensor, y: torch.Tensor, classification: bool
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Each member's loss and accuracy on its batch, (N,) each, with the gradients added
        to the leaves' .grad (zeroed by the caller); None where the hand-written backward does
        not apply (the caller uses autograd)."""
        if not self.manual or not _plain_targets(x, y, classification, self.layers):
            return None
        h = _feature_major(x)
        saved = []  # each layer's input and output
        for k, layer in enumerate(self.layers):
            if isinstance(layer, Linear):
                out = layer(h)
            else:  # in place on a Linear's output, which its backward does not read
                fresh = k > 0 and isinstance(self.layers[k - 1], Linear)
                out = _activation(layer, h, fresh)
            saved.append((h, out))
            h = out
        out = _sample_major(h, x)
        losses, accs, g = _loss_and_gradient(out, y, classification)
        g = _feature_major(g)
        for k in range(len(self.layers) - 1, -1, -1):
            layer, (h, out) = self.layers[k], saved[k]
            if isinstance(layer, Linear):
                _add_grad(layer.weight, torch.bmm(g, h.transpose(1, 2)))
                if layer.bias is not None:
                    _add_grad(layer.bias, g.sum(2, keepdim=True))
                if k:  # the first layer's input is the data
                    g = torch.bmm(layer.weight.transpose(1, 2), g)
            else:
                g = _BACKWARD[type(layer)](layer, g, h, out)
        return losses, accs


def _feature_major(x: torch.Tensor) -> torch.Tensor:
    """(N, B, ..., F) as (N, F, rows): a Linear acts on the last dim alone, so any dims
    between members and features are rows."""
    return x.reshape(x.shape[0], -1, x.shape[-1]).transpose(1, 2)


def _sample_major(h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return h.transpose(1, 2).reshape(*x.shape[:-1], h.shape[1])


def _activation(layer: nn.Module, h: torch.Tensor, fresh: bool) -> torch.Tensor:
    """The activation's output; in place when `h` is a Linear's output (`fresh`) and the
    activation's backward reads its output alone. Otherwise its input is kept for the
    backward (or is the data), and an in-place module works on a copy."""
    if fresh and type(layer) in _IN_PLACE:
        return _IN_PLACE[type(layer)](h)
    if getattr(layer, "inplace", False):
        h = h.clone()
    return layer.forward(h)


def _add_grad(leaf: torch.Tensor, value: torch.Tensor) -> None:
    assert leaf.grad is not None
    leaf.grad.add_(value)  # added, not copied: a tied weight gets each of its layers' share


def _plain_targets(
    x: torch.Tensor, y: torch.Tensor, classification: bool, layers: list[Layer]
) -> bool:
    """Targets whose loss has the hand-written gradient: one class per sample, or a regression
    target of the output's shape (anything else goes through autograd, as its single run's
    loss would take it)."""
    linears = [m for m in layers if isinstance(m, Linear)]
    if not linears:
        return False
    outputs = linears[-1].weight.shape[1]
    if classification:
        return x.dim() == 3 and y.shape == x.shape[:2]
    return y.shape == (*x.shape[:-1], outputs)


def _loss_and_gradient(
    out: torch.Tensor, y: torch.Tensor, classification: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each member's mean loss and accuracy over its batch, and the gradient of their sum with
    respect to `out`: F.mse_loss's and F.cross_entropy's (mean reduction), as their backward
    computes them."""
    n, b = out.shape[:2]
    if not classification:
        diff = out - y
        losses = diff.square().reshape(n, -1).mean(1)
        return losses, torch.zeros(n, device=out.device), diff * (2.0 / diff[0].numel())
    logp = F.log_softmax(out, dim=-1)
    picked = logp.gather(-1, y.unsqueeze(-1)).squeeze(-1)  # (n, b)
    losses = -picked.mean(1)
    accs = (out.argmax(-1) == y).float().mean(1)
    g = logp.exp()
    g.scatter_add_(-1, y.unsqueeze(-1), torch.full_like(picked, -1.0).unsqueeze(-1))
    return losses, accs, g / b


def chain(
    net: nn.Module, leaves: dict[str, torch.Tensor], elementwise: tuple[type, ...]
) -> Chain | None:
    """`net` as a Chain reading each member's tensors from `leaves`, when it is a sequence of
    Linear layers and `elementwise` activations, each used once; else None."""
    layers = [(name, m) for name, m in net.named_modules() if not isinstance(m, nn.Sequential)]
    if not layers or not all(isinstance(m, (nn.Linear, *elementwise)) for _, m in layers):
        return None
    if len(list(net.modules())) != len(list(net.modules(remove_duplicate=False))):
        return None  # a module used twice: the folded copy keeps its sharing
    steps: list[Layer] = []
    for name, m in layers:
        prefix = f"{name}." if name else ""
        if isinstance(m, nn.Linear):
            bias = leaves.get(prefix + "bias")
            column = None if bias is None else _view_leaf(bias.unsqueeze(2), bias)
            steps.append(Linear(leaves[prefix + "weight"], column))
        else:
            steps.append(m)
    return Chain(steps)


def _view_leaf(view: torch.Tensor, leaf: torch.Tensor) -> torch.Tensor:
    """A leaf of its own over `leaf`'s storage (the same numbers, updated in place by the
    optimizer), whose gradient lands in the same view of `leaf`'s gradient buffer."""
    assert leaf.grad is not None
    other = view.detach().requires_grad_(True)
    other.grad = leaf.grad.as_strided(other.shape, other.stride(), other.storage_offset())
    return other
