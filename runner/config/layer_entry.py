"""A layer entry (`{type: Conv2d, out_channels: 8, ...}`) → a LayerSpec: the class resolved,
its arguments rendered and checked against the constructor, a lazy variant where an input
size is left out."""

import re
from typing import Any, Protocol

from runner.config.arguments import check_arguments
from runner.config.expressions import FAILED, UNSET
from runner.config.model_spec import LayerSpec
from runner.config.shapes import check_sizes
from runner.errors import Problems, did_you_mean, one_of
from runner.registry import layers as registry

_ENTRY_KINDS = ("type", "block", "seq", "ref", "graph")


class _Parser(Protocol):
    problems: Problems
    lazy_paths: list[str]
    at: str

    def add(self, path: str, message: str) -> None: ...

    def spend(self, path: str) -> bool: ...

    def render(self, value: Any, path: str, scope: dict[str, Any] | None = None) -> Any: ...


def parse_layer(
    parser: _Parser, type_name: str, raw_kwargs: dict[str, Any], path: str
) -> LayerSpec | None:
    """The layer, or None after adding its problems (through `parser.add`)."""
    if not parser.spend(path):
        return None
    try:
        cls = registry.resolve_layer(type_name)
    except LookupError as e:
        parser.add(
            f"{path}.type", _or_a_block(str(e), type_name, getattr(parser, "block_defs", {}))
        )
        return None
    for key, value in raw_kwargs.items():
        if isinstance(value, dict) and any(k in value for k in _ENTRY_KINDS):
            parser.add(
                f"{path}.{key}",
                f"{type_name} would get the entry {value!r} as a plain mapping, not a module; "
                "an entry goes into a list, a seq or a graph, not into a layer's arguments",
            )
            return None
    kwargs = {k: parser.render(v, f"{path}.{k}") for k, v in raw_kwargs.items()}
    if any(v is FAILED for v in kwargs.values()):
        return None
    # Values unset (a block no entry uses) are checked by name only.
    unset = {k for k, v in kwargs.items() if v is UNSET}
    known = {k: v for k, v in kwargs.items() if k not in unset}
    local = Problems()
    checked = check_arguments(cls, {**known, **dict.fromkeys(unset, 0)}, path, type_name, local)
    reported = [
        item.partition(": ")
        for item in local.items
        if item.partition(": ")[0].rpartition(".")[2] not in unset or "takes no argument" in item
    ]
    for key, _, message in reported:
        parser.add(key, message)
    if checked is None:
        return None
    checked_kwargs, missing = checked
    if not check_sizes(path, type_name, known, _Forward(parser)):
        return None
    kwargs = {**known, **{k: UNSET for k in unset}} if unset else checked_kwargs
    if missing:
        lazy = registry.lazy_variant(cls)
        stand_ins = {**known, **dict.fromkeys(unset, 0)}
        lazy_checked = (
            check_arguments(lazy, stand_ins, path, type_name, Problems()) if lazy else None
        )
        if lazy is not None and lazy_checked is not None and not lazy_checked[1]:
            parser.lazy_paths.append(path + parser.at)
            return LayerSpec(path + parser.at, type_name, lazy, kwargs)
        for key in missing:
            parser.add(f"{path}.{key}", f"{type_name} needs {key!r}; it is missing")
        return None
    return LayerSpec(path + parser.at, type_name, cls, kwargs)


def _or_a_block(message: str, type_name: str, blocks: dict[str, Any]) -> str:
    """An unknown layer's message, with the model's own blocks among what is allowed: a row's
    `blok1()` or a bare `blok1` may mean a block, and the close match is looked for in both."""
    if not blocks or "." in type_name:
        return message
    if type_name in blocks:  # a bare name is a layer's: a block is used by a call or `block:`
        return (
            f"{type_name!r} is a block of model.blocks, and a bare name stands for a layer; "
            f"allowed: {{block: {type_name}}} or {type_name}() to use the block"
        )
    message = re.sub(r"; did you mean '[^']*'\?$", "", message)
    message = message.replace(
        "allowed: ", f"allowed: a block of model.blocks ({one_of(blocks)}), ", 1
    )
    return message + did_you_mean(type_name, [*blocks, *registry.layer_names()])


class _Forward(Problems):
    """Problems that go through the parser (which adds the block use to the path)."""

    def __init__(self, parser: _Parser):
        super().__init__()
        self.parser = parser

    def add(self, path: str, message: str) -> None:
        self.parser.add(path, message)
