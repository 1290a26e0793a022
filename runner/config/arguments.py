"""Keyword arguments from YAML, checked against the signature of what they will be passed to."""

import inspect
import typing
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, TypeGuard

from runner.config.values import Check
from runner.errors import Problems, did_you_mean, one_of

# Annotations are types, or strings under `from __future__ import annotations`.
_SIMPLE: dict[Any, type] = {t: t for t in (int, float, bool, str)}
_SIMPLE.update({t.__name__: t for t in (int, float, bool, str)})


def check_arguments(
    target: Callable[..., Any],
    kwargs: dict[str, Any],
    path: str,
    label: str,
    problems: Problems,
    skip_first: bool = False,
    hidden: tuple[str, ...] = (),
    values: Mapping[str, Check] | None = None,
    unions: bool = False,
) -> tuple[dict[str, Any], list[str]] | None:
    """Check `kwargs` for `target(**kwargs)`; add a problem for each unknown or mistyped one.

    Returns the kwargs (a `null` for a required argument counts as left out) and the names of
    required arguments still missing, or None when an argument is unknown. `skip_first` skips
    the first parameter (the tensor an initializer fills); `hidden` arguments are set by someone
    else and left out of the allowed list. `values` checks the value of the arguments it names
    (instead of their annotated type), where the target takes them. `unions`: also check
    `Optional[int]`, `Union[str, dict, None]` and `Literal` annotations (Lightning's Trainer
    accepts such values unchecked and fails on them later).
    """
    params = _keyword_params(target, skip_first)
    if params is None:  # takes **kwargs: anything goes
        return kwargs, []
    params = {k: p for k, p in params.items() if k not in hidden}
    kwargs = {
        k: v
        for k, v in kwargs.items()
        if not (v is None and k in params and params[k].default is params[k].empty)
    }
    unknown = [k for k in kwargs if k not in params]
    for key in unknown:
        problems.add(
            f"{path}.{key}",
            f"{label} takes no argument {key!r}; allowed: {one_of(params) or 'none'}"
            + did_you_mean(key, list(params)),
        )
    for key, value in kwargs.items():
        if key in unknown:
            continue
        check = (values or {}).get(key)
        wrong = check.problem(value) if check is not None else None
        if wrong:
            problems.add(f"{path}.{key}", wrong)
        if check is None and unions and _in_union(params[key].annotation, value) is False:
            allowed = _union_names(params[key].annotation)
            problems.add(f"{path}.{key}", f"{label} expects {allowed} for {key}; got {value!r}")
            continue
        expected = _expected(params[key].annotation)
        if check is None and expected is not None and not _fits(value, *expected):
            kind, item = expected
            name = f"a list of {item.__name__}" if item else kind.__name__
            problems.add(f"{path}.{key}", f"{label} expects {name} for {key}; got {value!r}")
    if unknown:
        return None
    missing = [n for n, p in params.items() if p.default is p.empty and n not in kwargs]
    return kwargs, missing


def signature_defaults(target: Callable[..., Any]) -> dict[str, Any]:
    """The default of each keyword argument `target` has one for."""
    params = _keyword_params(target, skip_first=False) or {}
    return {k: p.default for k, p in params.items() if p.default is not p.empty}


@lru_cache(maxsize=1024)  # a model checks the same few classes hundreds of times; read-only
def _keyword_params(
    target: Callable[..., Any], skip_first: bool
) -> dict[str, inspect.Parameter] | None:
    try:
        signature = _signature(target)
    except (TypeError, ValueError):
        return None
    params = {}
    for i, p in enumerate(signature.parameters.values()):
        if skip_first and i == 0:
            continue
        if p.kind is p.VAR_KEYWORD:
            return None
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            params[p.name] = p
    return params


@lru_cache(maxsize=1024)
def _signature(target: Callable[..., Any]) -> inspect.Signature:
    return inspect.signature(target)


def _expected(annotation: Any) -> tuple[type, type | None] | None:
    """(type, item type) for an annotation the YAML can be checked against: a simple type, or
    `list[int]`-like (`list[float]` from YAML: a list of numbers); None for anything else."""
    if annotation in _SIMPLE:
        return _SIMPLE[annotation], None
    if typing.get_origin(annotation) is list:
        (item,) = typing.get_args(annotation) or (None,)
        if item in _SIMPLE:
            return list, _SIMPLE[item]
    return None


# What a YAML value can be: a class outside these (timedelta, a Profiler) never matches one.
_YAML_TYPES = (int, float, bool, str, list, dict, type(None))


def _union_options(annotation: Any) -> list[Any] | None:
    """The options of a Union/Optional/Literal annotation; None for any other annotation."""
    origin = typing.get_origin(annotation)
    if origin is typing.Union or type(annotation).__name__ == "UnionType":
        return list(typing.get_args(annotation))
    if origin is typing.Literal:
        return [annotation]
    return None


def _in_union(annotation: Any, value: Any) -> bool | None:
    """Whether `value` fits one option of a union annotation; None when it cannot be told (not
    a union, or an option this check does not read, such as a generic it does not know)."""
    options = _union_options(annotation)
    if options is None:
        return None
    for option in options:
        origin = typing.get_origin(option)
        if option is type(None):
            fits: bool | None = value is None
        elif origin is typing.Literal:
            fits = any(value == v and type(value) is type(v) for v in typing.get_args(option))
        elif option in _SIMPLE:
            fits = _matches(value, _SIMPLE[option])
        elif origin in (list, tuple, dict):
            fits = isinstance(value, dict if origin is dict else list)
        elif isinstance(option, type) and not issubclass(option, _YAML_TYPES):
            fits = False  # a class a YAML value never is (str may still match another option)
        else:
            return None
        if fits:
            return True
    return False


def _union_names(annotation: Any) -> str:
    names = []
    for option in _union_options(annotation) or []:
        origin = typing.get_origin(option)
        if option is type(None):
            names.append("null")
        elif origin is typing.Literal:
            names += [repr(v) for v in typing.get_args(option)]
        elif option in _SIMPLE:
            names.append(f"a {_SIMPLE[option].__name__}")
        elif origin in (list, tuple, dict):
            names.append("a mapping" if origin is dict else "a list")
    return " or ".join(names) or "another value"


def _fits(value: Any, kind: type, item: type | None) -> bool:
    if item is None:
        return _matches(value, kind)
    return isinstance(value, list) and all(_matches(v, item) for v in value)


def _matches(value: Any, expected: type) -> bool:
    if expected is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if expected is int:
        return is_int(value)
    return isinstance(value, expected)


def is_int(value: Any) -> TypeGuard[int]:
    """An int that is not a bool (YAML's true/false would pass isinstance(value, int))."""
    return isinstance(value, int) and not isinstance(value, bool)
