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


Node = LayerSpec | SeqSpec | RefSpec


@dataclass(frozen=True)
class ModelSpec:
    net: Node
    shared: dict[str, Node]
    input_shape: tuple[int, ...] | None
    num_outputs: int | None
    ties: tuple[TieGroup, ...] = ()
    shapes_verified: bool = False  # the static check covered every layer (runner.config.shapes)
