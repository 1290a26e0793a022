"""Spec → nn.Module: construct every layer, then size the ones whose input size was left out.

Names follow PyTorch's own conventions, so the compiled model has exactly the `state_dict` keys
of the same network written by hand: list positions are "0", "1", …; `name:` sets a child's name.
"""

from collections import OrderedDict
from typing import Any

import torch
from torch import nn
from torch.nn.parameter import is_lazy

from runner.config.model_spec import GraphSpec, LayerSpec, ModelSpec, Node, RefSpec, SeqSpec
from runner.errors import ConfigError
from runner.model.graph_module import build_graph, failing_node

_PROBE_BATCH = 2  # BatchNorm needs more than one sample per channel in a forward pass


def construct(spec: ModelSpec) -> tuple[nn.Module, dict[int, str]]:
    """Build the modules on the current default device (`with torch.device(...)`).

    Returns the net and, for diagnostics, the config path each module came from.
    Raises ConfigError when constructors reject the values, naming every such layer.
    """
    builder = _Builder(spec)
    net = builder.build(spec.net)
    if builder.errors:
        raise ConfigError(builder.errors)
    return net, builder.origins


def size_lazy(net: nn.Module, spec: ModelSpec, origins: dict[int, str]) -> list[str]:
    """Size every lazy layer with one dry forward pass; return the names it sized.

    Runs only when something is unsized, on the net's own device (meta included). Raises
    DryPassError when the pass fails, ConfigError when a lazy layer is left unsized.
    """
    pending = [n for n, p in net.named_parameters() if is_lazy(p)]
    if pending and spec.input_shape is not None:
        check_forward(net, spec, origins)
    _check_materialized(net, origins)
    return pending


def check_forward(net: nn.Module, spec: ModelSpec, origins: dict[int, str]) -> None:
    """One forward pass on a zero batch of `model.input_shape`, on the net's device.

    Runs in eval mode without gradients, so BatchNorm statistics and autograd are untouched.
    Raises DryPassError naming the innermost layer that was running and the shape it received.
    """
    if spec.input_shape is None:
        return
    device = next((t.device for t in [*net.parameters(), *net.buffers()]), None)
    _dry_forward(net, spec.input_shape, origins, device)


class DryPassError(ConfigError):
    """The zero-batch forward pass failed; `where` and `cause` say in which layer and why."""

    def __init__(self, message: str, where: str, layer: str, cause: Exception):
        super().__init__([message])
        self.where, self.layer, self.cause = where, layer, cause


class _Builder:
    def __init__(self, spec: ModelSpec):
        self.spec = spec
        self.shared: dict[str, nn.Module] = {}
        self.origins: dict[int, str] = {}  # id(module) → the config path it came from
        self.errors: list[str] = []

    def build(self, node: Node) -> nn.Module:
        if isinstance(node, SeqSpec):
            children = OrderedDict((name, self.build(child)) for name, child in node.children)
            module: nn.Module = nn.Sequential(children)
        elif isinstance(node, GraphSpec):
            module = build_graph(node, self.build)
        elif isinstance(node, RefSpec):
            if node.name not in self.shared:  # built at its first use, then reused as is
                self.shared[node.name] = self.build(self.spec.shared[node.name])
            return self.shared[node.name]
        else:
            module = self._layer(node)
        self.origins.setdefault(id(module), node.path)
        return module

    def _layer(self, layer: LayerSpec) -> nn.Module:
        try:
            return layer.cls(**layer.kwargs)
        except Exception as e:  # a constructor rejected the values: report it with the path
            args = ", ".join(f"{k}={v!r}" for k, v in layer.kwargs.items())
            self.errors.append(
                f"{layer.path}: {layer.type_name}({args}) failed: {type(e).__name__}: {e}"
            )
            return nn.Identity()


def _dry_forward(
    net: nn.Module,
    input_shape: tuple[int, ...],
    origins: dict[int, str],
    device: torch.device | None,
) -> None:
    """One forward pass on a zero batch: infers lazy sizes and checks every shape on the way.

    Runs in eval mode without gradients, so BatchNorm statistics and autograd are untouched.
    On failure, names the innermost layer that was running and the shape it received.
    """
    running: list[tuple[nn.Module, Any]] = []

    def enter(module: nn.Module, args: tuple[Any, ...]) -> None:
        running.append((module, args))

    def leave(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        running.pop()

    hooks = [m.register_forward_pre_hook(enter) for m in net.modules()]
    hooks += [m.register_forward_hook(leave) for m in net.modules()]
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            net(torch.zeros(_PROBE_BATCH, *input_shape, device=device))
    except Exception as e:
        raise _forward_failure(net, running, input_shape, origins, e) from e
    finally:
        for h in hooks:
            h.remove()
        net.train(was_training)


def _forward_failure(
    net: nn.Module,
    running: list[tuple[nn.Module, Any]],
    input_shape: tuple[int, ...],
    origins: dict[int, str],
    error: Exception,
) -> DryPassError:
    batch = (_PROBE_BATCH, *input_shape)
    where, layer, detail = "model", type(net).__name__, ""
    if running:
        module, args = running[-1]
        names = {id(m): n for n, m in net.named_modules(remove_duplicate=False)}
        where = next((origins[id(m)] for m, _ in reversed(running) if id(m) in origins), "model")
        layer = type(module).__name__
        shapes = [tuple(a.shape) for a in args if isinstance(a, torch.Tensor)]
        detail = (
            f" in {layer} (submodule {names.get(id(module)) or '<root>'!r}), "
            f"which received input of shape {shapes[0] if len(shapes) == 1 else shapes}"
        )
        node = _graph_node(module, args)
        if node is not None:  # inside a graph, at one of its own operations (a merge)
            where, layer = node
            detail = (
                f" in {layer} (a graph node; the graph received {detail.split('received ')[1]})"
            )
    message = (
        f"{where}: the shape check (a forward pass on zeros of shape {batch}, from "
        f"model.input_shape) failed{detail}: {type(error).__name__}: {error}"
    )
    return DryPassError(message, where, layer, error)


def _graph_node(module: nn.Module, args: tuple[Any, ...]) -> tuple[str, str] | None:
    if not isinstance(module, torch.fx.GraphModule):
        return None
    with torch.no_grad():
        return failing_node(module, args)


def _check_materialized(net: nn.Module, origins: dict[int, str]) -> None:
    """Every lazy layer must have met an input; one the forward pass skipped cannot be sized."""
    pending = [
        origins.get(id(m), name)
        for name, m in net.named_modules()
        if any(is_lazy(t) for t in [*m.parameters(recurse=False), *m.buffers(recurse=False)])
    ]
    if pending:
        raise ConfigError(
            [
                f"{path}: its input size is left out, but no input reached it to infer it from; "
                "set model.input_shape, or give the size explicitly"
                for path in pending
            ]
        )
