"""Layers by name: torch.nn's classes, the runner's own, and the user's.

A model YAML names a layer with `type:`: a registered name (`CenteredLayer`), a torch.nn class
(`Linear`), or a dotted path to any nn.Module class (`mypkg.blocks.Gate`).
"""

import importlib
from functools import cache
from typing import Any, TypeVar

from torch import nn

from runner.errors import did_you_mean
from runner.registry.chapter import CHAPTER_LAYERS
from runner.registry.trust import check_import

M = TypeVar("M", bound=type[nn.Module])

# Containers are not layers: their children come from the YAML (`seq:`, `block:`), not from kwargs.
_NOT_LAYERS = {"Module", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict", "Container"}

_registered: dict[str, type[nn.Module]] = {c.__name__: c for c in CHAPTER_LAYERS}


def register_layer(cls: M | None = None, *, name: str | None = None) -> Any:
    """Class decorator: make an nn.Module usable as `type: <name>` (default: the class name).

    Raises ValueError when the name already belongs to another class or to torch.nn.
    """

    def add(c: M) -> M:
        if not (isinstance(c, type) and issubclass(c, nn.Module)):
            raise TypeError(f"register_layer expects an nn.Module subclass, got {c!r}")
        key = name or c.__name__
        if key in torch_layers():
            raise ValueError(f"layer name {key!r} is torch.nn.{key}; register under another name")
        old = _registered.get(key)
        # Re-running a notebook cell redefines the class: same module and name is the same layer.
        if old is not None and (old.__module__, old.__qualname__) != (c.__module__, c.__qualname__):
            raise ValueError(
                f"layer name {key!r} is already registered to {old.__module__}.{old.__qualname__}"
            )
        _registered[key] = c
        return c

    return add(cls) if cls is not None else add


@cache
def torch_layers() -> dict[str, type[nn.Module]]:
    found = {}
    for attr in dir(nn):
        obj = getattr(nn, attr)
        if isinstance(obj, type) and issubclass(obj, nn.Module) and attr not in _NOT_LAYERS:
            found[attr] = obj
    return found


def runner_layers() -> dict[str, type[nn.Module]]:
    return dict(_registered)


def layer_names() -> list[str]:
    return sorted({**torch_layers(), **runner_layers()})


def resolve_layer(type_name: str) -> type[nn.Module]:
    """The class a `type:` value names. Raises LookupError with a message for the user."""
    ours = runner_layers()
    if type_name in ours:
        return ours[type_name]
    if type_name in torch_layers():
        return torch_layers()[type_name]
    if "." in type_name:
        return _import_layer(type_name)
    chapter = {c.__name__ for c in CHAPTER_LAYERS}
    own = ", ".join(sorted(n for n in ours if n in chapter and not n.startswith("Lazy")))
    users = sorted(n for n in ours if n not in chapter)
    registered = f" ({', '.join(users)})" if users else ""
    raise LookupError(
        f"unknown layer {type_name!r}; allowed: a torch.nn layer (Linear, ReLU, …), a runner "
        f"layer ({own}), one registered with @runner.register_layer{registered} (in a module "
        f"listed in imports: [...]), or a dotted path to an nn.Module class"
        f"{did_you_mean(type_name, layer_names())}"
    )


def lazy_variant(cls: type[nn.Module]) -> type[nn.Module] | None:
    """`LazyLinear` for `Linear`, `LazyMyDense` for `MyDense`: infers its input size."""
    lazy_name = "Lazy" + cls.__name__
    for table in (runner_layers(), torch_layers()):
        if table.get(cls.__name__) is cls and lazy_name in table:
            return table[lazy_name]
    return None


def _import_layer(dotted: str) -> type[nn.Module]:
    check_import(dotted)
    module_name, _, attr = dotted.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise LookupError(f"cannot import {module_name!r} for layer {dotted!r}: {e}") from e
    obj = getattr(module, attr, None)
    if obj is None:
        names = [n for n in dir(module) if not n.startswith("_")]
        raise LookupError(f"module {module_name!r} has no {attr!r}{did_you_mean(attr, names)}")
    if not (isinstance(obj, type) and issubclass(obj, nn.Module)):
        raise LookupError(f"{dotted!r} is not an nn.Module class (it is {type(obj).__name__})")
    return obj
