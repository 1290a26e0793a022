"""The model section as spec types: what the grammar's parser (runner.config.grammar) produces
and the compiler (runner.model.compile) consumes. Every class is already resolved."""

from dataclasses import dataclass
from typing import Any

from torch import nn

from runner.config.ties import TieGroup


@dataclass(frozen=True)
class LayerSpec:
    path: str  # where the user wrote it, e.g. "model.net[0]"
    type_name: str
    cls: type[nn.Module]  # the lazy variant when an input size was left out
    kwargs: dict[str, Any]

    @property
    def lazy(self) -> bool:
        return self.cls.__name__.startswith("Lazy") and not self.type_name.startswith("Lazy")


@dataclass(frozen=True)
class SeqSpec:
    path: str
    children: tuple[tuple[str, "Node"], ...]  # (child name, node), in forward order


@dataclass(frozen=True)
class RefSpec:
    path: str
    name: str  # a key of ModelSpec.shared


@dataclass(frozen=True)
class OpSpec:
    """A parameter-free operation in a graph (no module, no state_dict keys)."""

    path: str
    op: str  # a key of runner.config.graphs.OPS: add, cat, mul, mean, relu
    kwargs: dict[str, Any]


@dataclass(frozen=True)
class GraphNode:
    name: str  # the value's name; for a module, also its child's (dotted) name in the graph
    reads: tuple[str, ...]  # the values it is called with: the graph's input or earlier nodes
    node: "Node | OpSpec"


@dataclass(frozen=True)
class GraphSpec:
    """Entries that read named values: compiled to a torch.fx GraphModule."""

    path: str
    input: str  # the name of the graph's input
    nodes: tuple[GraphNode, ...]  # in forward order; each reads only earlier values
    out: str  # the node whose value the graph returns (or its input)


Node = LayerSpec | SeqSpec | RefSpec | GraphSpec


@dataclass(frozen=True)
class ModelSpec:
    net: Node
    shared: dict[str, Node]
    input_shape: tuple[int, ...] | None
    num_outputs: int | None
    ties: tuple[TieGroup, ...] = ()
    shapes_verified: bool = False  # the static check covered every layer (runner.config.shapes)


def key_path(path: str, key: str) -> str:
    """`path`'s argument `key`: "model.blocks.b[0] at model.net[1]" → "model.blocks.b[0].out
    at model.net[1]" (a path inside a block use names the use after " at ")."""
    head, at, tail = path.partition(" at ")
    return f"{head}.{key}{at}{tail}"
