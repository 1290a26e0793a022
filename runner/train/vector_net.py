"""The group's network as one plain module over all N members, for the common layers, in one
of two forms:

- a chain of Linear layers and activations (the MLPs, the chapter's rgnet) becomes plain calls
  on feature-major activations, with a hand-written backward (runner.train.vector_chain);
- any other network of covered layers (convolutions, BatchNorm, LayerNorm, pooling, flatten,
  a graph's add and cat) runs on one batch of N·B rows, member-major: the layers that compute
  each sample on its own run on it unchanged, and each layer with tensors is replaced by its
  stacked form (runner.train.vector_layers).

Either costs about one model's forward and backward in op count, where torch.func.vmap over
functional_call pays its batching machinery on every op. A network with a layer not covered
(another layer with parameters, one that mixes a batch's samples, such as the chapter's
CenteredLayer) stays on vmap's path, which is correct for any module; `stack` says why."""

import operator

import torch
from torch import fx, nn
from torch.nn import functional as F

from runner.train.vector_chain import chain
from runner.train.vector_layers import STACKED, Tensors

# Layers without tensors that compute each sample on its own (along dim 0 nothing mixes).
_PER_SAMPLE: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Sigmoid, nn.Tanh, nn.Softplus, nn.Softsign, nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh,
    nn.Tanhshrink, nn.LogSigmoid, nn.Identity,
    nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d, nn.LPPool1d, nn.LPPool2d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d,
    nn.LocalResponseNorm, nn.ZeroPad2d, nn.ConstantPad1d, nn.ConstantPad2d,
)  # fmt: skip
# Of those, the ones that act on each number alone (on any shape: no batch dim needed).
_ELEMENTWISE = tuple(
    c for c in _PER_SAMPLE if c.__module__ == "torch.nn.modules.activation" or c is nn.Identity
)
# Graph operations (runner.model.graph_module) that act on each sample: the `dim` of a cat or
# a flatten is checked apart.
_PER_SAMPLE_FUNCTIONS = {operator.add, operator.mul, operator.truediv, F.relu, torch.relu}


def stack(net: nn.Module, leaves: Tensors, buffers: Tensors, n: int) -> nn.Module | str:
    """A module that runs all `n` members at once on (n, B, ...) inputs, reading member i's
    tensors from row i of `leaves` (by every name of each parameter, ties included) and
    `buffers`; or, when some layer is not covered, the reason (the group then uses vmap)."""
    refused = _refusal(net)
    if refused:
        return refused
    members_chain = chain(net, leaves, _ELEMENTWISE)
    if members_chain is not None:
        return members_chain
    return _Folded(_stacked_copy(net, leaves, buffers, n), n)


class _Folded(nn.Module):
    """The members' batches as one of n·B rows, for the stacked copy of the network."""

    def __init__(self, net: nn.Module, n: int):
        super().__init__()
        self.net, self.n = net, n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x.reshape(-1, *x.shape[2:]))
        return out.reshape(self.n, -1, *out.shape[1:])


def _stacked_copy(net: nn.Module, leaves: Tensors, buffers: Tensors, n: int) -> nn.Module:
    """A copy of `net` with each layer that has tensors replaced by its stacked form."""
    import copy

    net = copy.deepcopy(net)
    built: dict[int, nn.Module] = {}
    for path, module in net.named_modules():  # each module once, by its first name
        prefix = f"{path}." if path else ""
        make = STACKED.get(type(module))
        if make is not None:
            own = {k: leaves[prefix + k] for k, p in module.named_parameters(recurse=False)}
            own |= {k: buffers[prefix + k] for k, _ in module.named_buffers(recurse=False)}
            built[id(module)] = make(module, own, n)
    for module in list(net.modules()):  # every place a stacked one sits (a shared one: all)
        for name, child in list(module._modules.items()):
            if child is not None and id(child) in built:
                module._modules[name] = built[id(child)]
    return built.get(id(net), net)


def _refusal(net: nn.Module) -> str:
    for path, module in net.named_modules():
        kind = type(module)
        where = f"layer {path!r} ({kind.__name__})" if path else kind.__name__
        if kind in STACKED:
            why = _unstackable(module)
        elif isinstance(module, fx.GraphModule):
            why = _graph_refusal(module)
        elif kind in (nn.Sequential, nn.Module) or kind in _PER_SAMPLE:
            why = ""
        elif kind in (nn.Flatten, nn.Unflatten):
            dim = getattr(module, "start_dim", getattr(module, "dim", 0))
            why = "" if dim >= 1 else f"it works on dim {dim}"
        elif kind in (nn.Softmax, nn.LogSoftmax):  # dim -2 of a (B, F) activation is B's
            dim = module.dim
            why = "" if dim is not None and (dim >= 1 or dim == -1) else f"it works on dim {dim}"
        else:
            why = "it is not one of the stacked layers"
        if why:
            return f"{where}: {why}"
    return ""


def _unstackable(module: nn.Module) -> str:
    if isinstance(module, nn.Conv1d | nn.Conv2d) and module.padding_mode != "zeros":
        return f"padding_mode={module.padding_mode}"
    return ""


def _graph_refusal(graph: fx.GraphModule) -> str:
    for node in graph.graph.nodes:
        if node.op != "call_function":
            continue
        if node.target in (torch.cat, torch.flatten):
            dim = node.kwargs.get("dim", node.kwargs.get("start_dim", 1))
            if not isinstance(dim, int) or dim < 1:
                return f"its {node.name} works on dim {dim}"
        elif node.target not in _PER_SAMPLE_FUNCTIONS:
            return f"its operation {node.name} is not a per-sample one"
    return ""


def stacked_losses(
    net: nn.Module, x: torch.Tensor, y: torch.Tensor, classification: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each member's loss and accuracy on its own batch (x: (N, B, ...)), (N,) each: the means
    its single run's F.cross_entropy or F.mse_loss takes over its batch."""
    n, b = x.shape[:2]
    out = net(x)
    if not classification:  # (n, B, *S) both: no reshape that would broadcast across rows
        loss = F.mse_loss(out, y, reduction="none")
        return loss.reshape(n, -1).mean(1), torch.zeros(n, device=x.device)
    out = out.reshape(n * b, -1)
    flat_y = y.reshape(n * b)
    loss = F.cross_entropy(out, flat_y, reduction="none").reshape(n, b).mean(1)
    acc = (out.argmax(-1) == flat_y).float().reshape(n, b).mean(1)
    return loss, acc
