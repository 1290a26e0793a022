"""GraphSpec → a torch.fx GraphModule: a generated Python `forward` (`print(net.code)`), so a
graph runs as fast as the same class written by hand, and its module nodes are children named
as the YAML names them (a dotted name nests, as the book's `net.0` does in DenseBlock).

Parameter-free operations are calls to torch functions in the generated code: no module, no
state_dict key. A failure in one (a merge of mismatched shapes) is traced back to its node by
`failing_node`.
"""

import copy
import operator
from collections.abc import Callable
from contextlib import suppress
from functools import lru_cache, reduce
from typing import Any

import torch
from torch import fx, nn
from torch.nn import functional as F

from runner.config.model_spec import GraphSpec, Node, OpSpec

PATHS = "runner_paths"  # GraphModule.meta key: fx node name → the config path it came from


def build_graph(spec: GraphSpec, build: Callable[[Node], nn.Module]) -> fx.GraphModule:
    """The graph's modules built by `build` (in node order, so state_dict keys follow the
    YAML), wired by a generated forward. Graphs of the same wiring (GoogLeNet's nine Inception
    blocks, a repeated residual) share one generated class, as the book's blocks share a Python
    class: the code is generated and compiled once, each graph gets its own modules and paths."""
    template, fx_names = _compiled(_wiring(spec))
    module = object.__new__(type(template))  # not GraphModule.__new__: it makes a new class
    state = {
        k: copy.copy(v) if isinstance(v, list | dict) else v for k, v in vars(template).items()
    }
    module.__dict__.update(state)  # the generated code and the (read-only, shared) fx.Graph
    nn.Module.__init__(module)  # its own children, parameters, buffers and hooks
    for node in spec.nodes:
        if not isinstance(node.node, OpSpec):
            _attach(module, node.name, build(node.node))
    module.meta = {PATHS: {fx_names[k]: n.node.path for k, n in enumerate(spec.nodes)}}
    return module


_Op = tuple[str, tuple[tuple[str, Any], ...]]  # an operation and its keyword arguments
_Wiring = tuple[str, str, tuple[tuple[str, tuple[str, ...], _Op | None], ...]]


def _wiring(spec: GraphSpec) -> _Wiring:
    """What the generated code depends on: names, reads and operations, not the modules."""
    nodes = tuple(
        (n.name, n.reads, _op_key(n.node) if isinstance(n.node, OpSpec) else None)
        for n in spec.nodes
    )
    return spec.input, spec.out, nodes


def _op_key(op: OpSpec) -> _Op:
    return op.op, tuple(sorted(op.kwargs.items()))  # kwargs: an int dim at most


@lru_cache(maxsize=1024)
def _compiled(wiring: _Wiring) -> tuple[fx.GraphModule, tuple[str, ...]]:
    """A GraphModule of this wiring with empty placeholder modules (it never leaves this
    module: those are replaced in every copy), and the fx name of each node in order."""
    input_name, out, nodes = wiring
    graph = fx.Graph()
    values = {input_name: graph.placeholder(input_name)}
    placeholders: dict[str, nn.Module] = {}
    for name, reads, op in nodes:
        args = [values[r] for r in reads]
        if op is not None:  # an unnamed one reads as its operation: add, cat_1
            label = op[0] if name.isdigit() else name
            values[name] = _op(graph, OpSpec("", op[0], dict(op[1])), args, _identifier(label))
        else:
            placeholders[name] = nn.Module()
            values[name] = graph.create_node(
                "call_module", name, tuple(args), {}, name=_identifier(name)
            )
    graph.output(values[out])
    template = fx.GraphModule(placeholders, graph, class_name="Graph")
    return template, tuple(values[name].name for name, _, _ in nodes)


def _op(graph: fx.Graph, op: OpSpec, args: list[fx.Node], name: str) -> fx.Node:
    def call(fn: Callable[..., Any], *a: Any, **kw: Any) -> fx.Node:
        return graph.create_node("call_function", fn, a, kw, name=name)

    if op.op == "cat":
        return call(torch.cat, tuple(args), dim=op.kwargs["dim"])
    if op.op == "relu":
        return call(F.relu, args[0])
    if op.op == "mean":
        total = reduce(lambda a, b: graph.call_function(operator.add, (a, b)), args)
        return call(operator.truediv, total, len(args))
    fn = operator.add if op.op == "add" else operator.mul
    last = reduce(lambda a, b: graph.call_function(fn, (a, b)), args[:-1])
    return call(fn, last, args[-1])


def _attach(root: nn.Module, dotted: str, module: nn.Module) -> None:
    """`root.<dotted> = module`, with plain nn.Module parents for a dotted name's parts (they
    hold children only, as the book's `self.net` holds DenseBlock's convolution blocks)."""
    *parents, leaf = dotted.split(".")
    for part in parents:
        if not hasattr(root, part):
            root.add_module(part, nn.Module())
        root = getattr(root, part)
    root.add_module(leaf, module)


def _identifier(name: str) -> str:
    text = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    return text if text and not text[0].isdigit() else f"n{text}"


def failing_node(module: fx.GraphModule, args: tuple[Any, ...]) -> tuple[str, str] | None:
    """(config path, operation) of the node whose call fails on `args`, or None: the dry pass
    knows only that the graph's forward failed, not at which of its operations."""
    paths = module.meta.get(PATHS, {})
    failed: list[fx.Node] = []

    class _Finder(fx.Interpreter):
        def run_node(self, n: fx.Node) -> Any:
            try:
                return super().run_node(n)
            except Exception:
                failed.append(n)
                raise

    with suppress(Exception):  # the failure being explained
        _Finder(module).run(*args)
    if not failed or failed[0].name not in paths:
        return None
    n = failed[0]
    what = n.target if isinstance(n.target, str) else getattr(n.target, "__name__", str(n.target))
    return paths[n.name], str(what)
