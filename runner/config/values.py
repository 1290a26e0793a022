"""Value checks the section checkers share: what a number may be (`Number`, `Pair`), which of a
few named values a setting takes (`Choice`), the initializers' argument limits (`check_limits`,
the table in runner.registry.initializers), and a section resolved to plain data with its
failed interpolations reported, not raised."""

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from runner.errors import Problems, did_you_mean, one_of
from runner.registry.initializers import Limit

# What `resolve` returns for a value it could not read (a problem says why).
UNRESOLVED = object()


def resolve(cfg: DictConfig, key: str, problems: Problems) -> Any:
    """`cfg[key]` as plain data, interpolations resolved; UNRESOLVED, with a problem at its full
    key, when an interpolation fails or a required value is missing. Absent keys read as None."""
    try:
        value = cfg.get(key)
        if isinstance(value, DictConfig | ListConfig):
            value = OmegaConf.to_container(value, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as e:
        problems.add(error_key(key, e), "required, and no value was given")
        return UNRESOLVED
    except OmegaConfBaseException as e:
        problems.add(error_key(key, e), f"cannot resolve the value: {error_text(e)}")
        return UNRESOLVED
    return value


def error_key(section: str, error: Exception) -> str:
    """The full config key of an OmegaConf error. Its `full_key` is already full when the node
    sits in the whole config (`model.net`), relative when the section was created on its own
    (`net`): prefix the section only then, so no key reads `model.model.net`."""
    key = str(getattr(error, "full_key", None) or "")
    if key == section or key.startswith((f"{section}.", f"{section}[")):
        return key
    return f"{section}.{key}" if key else section


def error_text(error: Exception) -> str:
    """The first line of an OmegaConf error's own message (its `msg` is None for some)."""
    return str(getattr(error, "msg", None) or error).splitlines()[0]


def show(value: Any) -> str:
    """A value as the user wrote it in YAML: null, true and false; quotes around strings."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    return repr(value)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class Number:
    """What a numeric setting may be: a finite number in [lo, hi] (an end open when said), an
    integer when `integer`, or one of the `special` values, each with what it means."""

    lo: float = -math.inf
    hi: float = math.inf
    lo_open: bool = False
    hi_open: bool = False
    integer: bool = False
    special: tuple[tuple[Any, str], ...] = ()
    note: str = ""  # why the range is narrower than the library's, when that is not obvious

    def allowed(self) -> str:
        kind = "an integer" if self.integer else "a number"
        lo, hi = _bound(self.lo), _bound(self.hi)
        if self.lo > -math.inf and self.hi < math.inf:
            kind += f" in {'(' if self.lo_open else '['}{lo}, {hi}{')' if self.hi_open else ']'}"
        elif self.lo > -math.inf:
            kind += f" {'>' if self.lo_open else '≥'} {lo}"
        elif self.hi < math.inf:
            kind += f" {'<' if self.hi_open else '≤'} {hi}"
        items = [kind + (f" ({self.note})" if self.note else "")]
        items += [f"{show(v)} ({meaning})" for v, meaning in self.special]
        return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]

    def problem(self, value: Any) -> str | None:
        """`what is wrong; got X; allowed: Y`, or None when `value` is allowed."""
        if any(value is v or (type(value) is type(v) and value == v) for v, _ in self.special):
            return None
        if not is_number(value) or (self.integer and not isinstance(value, int)):
            wrong = "not an integer" if self.integer else "not a number"
        elif not math.isfinite(value):
            wrong = "not a finite number"
        elif (
            value < self.lo
            or value > self.hi
            or (self.lo_open and value == self.lo)
            or (self.hi_open and value == self.hi)
        ):
            wrong = "out of range"
        else:
            return None
        return f"{wrong}; got {show(value)}; allowed: {self.allowed()}"


@dataclass(frozen=True)
class Pair:
    """Two numbers, each a `Number` (Adam's betas)."""

    item: Number

    def problem(self, value: Any) -> str | None:
        if isinstance(value, list | tuple) and len(value) == 2:
            if all(self.item.problem(v) is None for v in value):
                return None
            wrong = "out of range"
        else:
            wrong = "not a pair of numbers"
        return f"{wrong}; got {show(value)}; allowed: two numbers, each {self.item.allowed()}"


@dataclass(frozen=True)
class Numbers:
    """A list of at least one number, each a `Number` (a data set's weights, a shape)."""

    item: Number

    def problem(self, value: Any) -> str | None:
        if not isinstance(value, list | tuple):
            wrong = "not a list of numbers"
        elif not value:
            wrong = "an empty list"
        else:
            problems = ((i, self.item.problem(v)) for i, v in enumerate(value))
            bad = next(((i, why) for i, why in problems if why is not None), None)
            if bad is None:
                return None
            wrong = f"item {bad[0]} is {bad[1].split(';')[0]}"
        each = self.item.allowed()
        return f"{wrong}; got {show(value)}; allowed: a list of one or more, each {each}"


def _bound(x: float) -> str:
    """A range's end as written: whole numbers in full (4294967295, not 4.29497e+09)."""
    return str(int(x)) if math.isfinite(x) and x == int(x) and abs(x) < 1e16 else f"{x:g}"


@dataclass(frozen=True)
class Choice:
    """One of a few named values (booleans, strings), each with what it means."""

    options: tuple[tuple[Any, str], ...]

    def allowed(self) -> str:
        return ", ".join(f"{show(v)} ({meaning})" for v, meaning in self.options)

    def problem(self, value: Any) -> str | None:
        if any(value is v or (type(value) is type(v) and value == v) for v, _ in self.options):
            return None
        names = [v for v, _ in self.options if isinstance(v, str)]
        return f"unknown choice; got {show(value)}; allowed: {self.allowed()}" + did_you_mean(
            value, names
        )


Check = Number | Pair | Numbers | Choice

_COMPARE: dict[str, tuple[Callable[[Any, Any], bool], str]] = {
    "<": (operator.lt, "<"),
    "<=": (operator.le, "≤"),
    ">": (operator.gt, ">"),
    ">=": (operator.ge, "≥"),
}


def check_limits(
    path: str,
    label: str,
    args: Mapping[str, Any],
    given: Mapping[str, Any],
    limits: tuple[Limit, ...],
    problems: Problems,
) -> None:
    """Add a problem for each limit `args` break (see runner.registry.initializers.LIMITS).

    `args` are the values the function will get (defaults included); `given` the ones the user
    wrote, where a problem is reported. Values of the wrong type are left to the type check.
    """
    for name, op, bound in limits:
        value = args.get(name)
        if op == "in":
            assert isinstance(bound, tuple)
            if value not in bound:
                problems.add(
                    f"{path}.{name}",
                    f"unknown {name} for {label}; got {show(value)}; allowed: {one_of(bound)}"
                    + did_you_mean(value, bound),
                )
            continue
        compare, symbol = _COMPARE[op]
        if isinstance(bound, str):  # a relation between two arguments: a < b
            other = args.get(bound)
            if is_number(value) and is_number(other) and not compare(value, other):
                key = name if name in given or bound not in given else bound
                problems.add(
                    f"{path}.{key}",
                    f"an empty range for {label}; got {name}={show(value)}, {bound}={show(other)}"
                    f"; allowed: {name} {symbol} {bound}",
                )
        elif is_number(value) and not compare(value, bound):
            problems.add(
                f"{path}.{name}",
                f"out of range for {label}; got {show(value)}; allowed: {name} {symbol} {bound:g}",
            )


def check_finite(path: str, args: Mapping[str, Any], problems: Problems) -> None:
    """NaN and ±Inf would fill a tensor with them: a problem for each such float."""
    for name, value in args.items():
        if isinstance(value, float) and not math.isfinite(value):
            problems.add(
                f"{path}.{name}",
                f"not a finite number; got {show(value)}; allowed: a finite number",
            )
