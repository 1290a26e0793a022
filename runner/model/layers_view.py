"""task=inspect's view of the layers: every module's output shape on a batch of
`model.input_shape` (what a CNN's reader needs), and each graph's wiring: which node reads
which, and the shape each node gives."""

from dataclasses import dataclass
from typing import Any

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

BATCH = 2  # as the sizing pass: BatchNorm needs more than one sample per channel


@dataclass(frozen=True)
class NodeRow:
    node: str
    op: str  # the module's type, or the function an operation calls
    reads: str
    shape: str


def layer_shapes(
    net: nn.Module, input_shape: tuple[int, ...]
) -> tuple[list[tuple[str, str, str]], dict[str, list[NodeRow]]]:
    """(name, type, output shape) per module in `net.named_modules()` order, and per graph
    module (by name) its nodes. One forward pass on zeros, in eval mode, without gradients."""
    shapes: dict[str, str] = {}
    wiring: dict[str, list[NodeRow]] = {}
    modules = dict(net.named_modules())
    names = {id(m): n for n, m in modules.items()}

    def record(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        shapes.setdefault(names[id(module)], _shape(output))
        if isinstance(module, fx.GraphModule) and names[id(module)] not in wiring:
            wiring[names[id(module)]] = _graph_rows(module, args)

    hooks = [m.register_forward_hook(record) for m in modules.values()]
    device = next((t.device for t in [*net.parameters(), *net.buffers()]), None)
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            net(torch.zeros(BATCH, *input_shape, device=device))
    finally:
        for h in hooks:
            h.remove()
        net.train(was_training)
    rows = [
        (n or "(model)", type(m).__name__, shapes.get(n, "not run")) for n, m in modules.items()
    ]
    return rows, wiring


def _graph_rows(module: fx.GraphModule, args: tuple[Any, ...]) -> list[NodeRow]:
    ShapeProp(module).propagate(*args)  # each node's output shape into node.meta
    shown = {  # a module node by its child name (net.0), an operation by its fx name (add_1)
        n.name: str(n.target) if n.op == "call_module" else n.name for n in module.graph.nodes
    }
    rows = []
    for node in module.graph.nodes:
        meta = node.meta.get("tensor_meta")
        shape = _shape(meta) if meta is not None else ""
        reads = ", ".join(shown[a.name] for a in node.all_input_nodes)
        if node.op == "call_module":
            kind = type(module.get_submodule(str(node.target))).__name__
        elif node.op == "call_function":
            kind = getattr(node.target, "__name__", str(node.target))
        else:
            kind = "input" if node.op == "placeholder" else "returns"
        rows.append(NodeRow(shown[node.name], kind, reads, shape))
    return rows


def _shape(value: Any) -> str:
    shape = getattr(value, "shape", None)
    if shape is not None:
        return str(list(shape))
    if isinstance(value, tuple | list) and value:
        return ", ".join(_shape(v) for v in value)
    return type(value).__name__


def print_layers(net: nn.Module, input_shape: tuple[int, ...] | None) -> None:
    """The layer table and each graph's wiring, on the console (rich)."""
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = max(console.width, 140)
    if input_shape is None:
        console.print("Output shapes: set model.input_shape to see them")
        return
    rows, wiring = layer_shapes(net, input_shape)
    table = Table(
        title=f"Layers and output shapes (a batch of {BATCH} of model.input_shape "
        f"{list(input_shape)})",
        title_justify="left",
    )
    for column in ("name", "type", "output shape"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    for name, nodes in wiring.items():
        graph = Table(
            title=f"Graph {name or '(model)'}: which node reads which", title_justify="left"
        )
        for column in ("node", "module or operation", "reads", "output shape"):
            graph.add_column(column, overflow="fold")
        for node in nodes:
            graph.add_row(node.node, node.op, node.reads, node.shape)
        console.print(graph)
