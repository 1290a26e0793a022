"""Initializers by name: functions that fill a tensor in place, `fn(tensor, **args)`.

The built-ins wrap torch.nn.init; the chapter's custom distribution is `d2l_custom`.
Add your own with @runner.register_initializer, or name any such function by dotted path.
"""

import importlib
import inspect
import typing
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from runner.errors import did_you_mean
from runner.registry.trust import check_import

Initializer = Callable[..., Any]

_registered: dict[str, Initializer] = {}
# Fan-based initializers need a tensor of at least 2 dimensions (fan-in and fan-out).
NEEDS_2D = {"xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal", "orthogonal"}

# Every built-in, with what its arguments may be, checked by runner.config.init before anything
# is built (torch checks some only when it fills a tensor, some never: a negative gain flips
# signs silently). A limit is (argument, operator, bound): the bound is a number, another
# argument's name (`a < b`), or the allowed choices (operator "in"). Besides these, a built-in's
# float arguments must be finite. Initializers of your own get their signature checked only.
Limit = tuple[str, str, float | str | tuple[str, ...]]
# The names torch.nn.init.calculate_gain accepts, read from its own annotation (a Literal).
NONLINEARITIES: tuple[str, ...] = typing.get_args(
    typing.get_type_hints(nn.init.calculate_gain)["nonlinearity"]
)
_KAIMING: tuple[Limit, ...] = (
    ("mode", "in", ("fan_in", "fan_out")),
    ("nonlinearity", "in", NONLINEARITIES),
)
LIMITS: dict[str, tuple[Limit, ...]] = {
    "normal": (("std", ">=", 0.0),),
    "uniform": (("a", "<", "b"),),
    "trunc_normal": (("std", ">", 0.0), ("a", "<", "b")),  # std 0 divides by zero in torch
    "xavier_uniform": (("gain", ">=", 0.0),),
    "xavier_normal": (("gain", ">=", 0.0),),
    "orthogonal": (("gain", ">=", 0.0),),
    "kaiming_uniform": _KAIMING,
    "kaiming_normal": _KAIMING,
    "constant": (),
    "default": (),
    "zeros": (),
    "ones": (),
    "d2l_custom": (),
}


def register_initializer(fn: Initializer | None = None, *, name: str | None = None) -> Any:
    """Decorator: make `fn(tensor, **args)` usable as `init: <name>` (default: its name).

    Raises ValueError when the name belongs to another function.
    """

    def add(f: Initializer) -> Initializer:
        key = name or f.__name__
        old = _registered.get(key)
        if old is not None and (old.__module__, old.__qualname__) != (f.__module__, f.__qualname__):
            raise ValueError(f"initializer {key!r} is already registered to {old.__module__}")
        _registered[key] = f
        return f

    return add(fn) if fn is not None else add


def initializer_names() -> list[str]:
    return sorted(_registered)


def resolve_initializer(name: str) -> Initializer:
    """The function an `init:` value names. Raises LookupError with a message for the user."""
    if name in _registered:
        return _registered[name]
    if "." in name:
        check_import(name)
        module_name, _, attr = name.rpartition(".")
        try:
            fn = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as e:
            raise LookupError(f"cannot import initializer {name!r}: {e}") from e
        what = _not_an_initializer(fn)
        if what:
            raise LookupError(
                f"{name!r} is not an initializer; got {what}; allowed: a Python function "
                "fn(tensor, **args) by dotted path, or a registered name "
                f"({', '.join(initializer_names())})"
            )
        return fn
    raise LookupError(
        f"unknown initializer {name!r}; allowed: {', '.join(initializer_names())}, one registered "
        "with @runner.register_initializer, or a dotted path to fn(tensor, **args)"
        + did_you_mean(name, initializer_names())
    )


def _not_an_initializer(obj: object) -> str:
    """What `obj` is when it cannot be an initializer (a function taking a tensor first); ""."""
    if isinstance(obj, type):
        return f"the class {obj.__name__}"
    if inspect.isbuiltin(obj):
        return "a built-in function"  # os.remove, print: written in C, they take no tensor
    if not callable(obj):
        return f"a {type(obj).__name__}, which cannot be called"
    if not inspect.isfunction(obj):
        return f"a {type(obj).__name__} object, not a function"
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params = inspect.signature(obj).parameters.values()
    if not any(p.kind in positional or p.kind is p.VAR_POSITIONAL for p in params):
        return "a function that takes no tensor"
    return ""


# The built-ins. `default` is handled by the rule engine: the module's own reset, untouched.
@register_initializer
def default(tensor: torch.Tensor) -> None:
    """Keep the value the module's own reset_parameters gave (PyTorch's default)."""


@register_initializer
def normal(tensor: torch.Tensor, mean: float = 0.0, std: float = 1.0) -> None:
    nn.init.normal_(tensor, mean, std)


@register_initializer
def uniform(tensor: torch.Tensor, a: float = 0.0, b: float = 1.0) -> None:
    nn.init.uniform_(tensor, a, b)


@register_initializer
def constant(tensor: torch.Tensor, value: float) -> None:
    nn.init.constant_(tensor, value)


@register_initializer
def zeros(tensor: torch.Tensor) -> None:
    nn.init.zeros_(tensor)


@register_initializer
def ones(tensor: torch.Tensor) -> None:
    nn.init.ones_(tensor)


@register_initializer
def xavier_uniform(tensor: torch.Tensor, gain: float = 1.0) -> None:
    nn.init.xavier_uniform_(tensor, gain)


@register_initializer
def xavier_normal(tensor: torch.Tensor, gain: float = 1.0) -> None:
    nn.init.xavier_normal_(tensor, gain)


@register_initializer
def kaiming_uniform(
    tensor: torch.Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"
) -> None:
    nn.init.kaiming_uniform_(tensor, a, mode, nonlinearity)  # type: ignore[arg-type]


@register_initializer
def kaiming_normal(
    tensor: torch.Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"
) -> None:
    nn.init.kaiming_normal_(tensor, a, mode, nonlinearity)  # type: ignore[arg-type]


@register_initializer
def orthogonal(tensor: torch.Tensor, gain: float = 1.0) -> None:
    nn.init.orthogonal_(tensor, gain)


@register_initializer
def trunc_normal(
    tensor: torch.Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0
) -> None:
    nn.init.trunc_normal_(tensor, mean, std, a, b)


@register_initializer
def d2l_custom(tensor: torch.Tensor) -> None:
    """The chapter's custom distribution: U(5, 10) w.p. 1/4, 0 w.p. 1/2, U(-10, -5) w.p. 1/4.

    As the book draws it: U(-10, 10), then zero every value with |w| < 5.
    """
    nn.init.uniform_(tensor, -10, 10)
    with torch.no_grad():
        tensor.mul_(tensor.abs() >= 5)
