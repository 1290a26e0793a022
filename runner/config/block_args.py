"""Blocks with arguments: a definition declares `params` (name → default; a null default must
be given at every use), a use passes `args`, and the block's templates see the bound values."""

from typing import Any, Protocol

from runner.config.expressions import UNSET
from runner.errors import did_you_mean, one_of

_RESERVED = ("i",)  # the repeat index


class _Reporter(Protocol):
    def add(self, path: str, message: str) -> None: ...


def split_definition(raw: Any) -> tuple[dict[str, Any] | None, Any]:
    """(declared params or None, the body): `{params: {...}, seq: [...]}` → both parts."""
    if isinstance(raw, dict) and "params" in raw:
        params = raw["params"]
        if isinstance(params, list):  # names only: every one required
            params = dict.fromkeys(params)
        return (params if isinstance(params, dict) else {}), {
            k: v for k, v in raw.items() if k != "params"
        }
    return None, raw


def check_params(reporter: _Reporter, name: str, raw: Any) -> None:
    """Problems with the form of `model.blocks.NAME.params`."""
    if not (isinstance(raw, dict) and "params" in raw):
        return
    params = raw["params"]
    path = f"model.blocks.{name}.params"
    if not isinstance(params, dict | list):
        reporter.add(path, f"expected a mapping of parameter names to defaults; got {params!r}")
        return
    for key in params:
        if not (isinstance(key, str) and key.isidentifier()) or key in _RESERVED:
            reporter.add(
                f"{path}.{key}",
                "a parameter's name is an identifier (letters, digits, _) other than i "
                "(the repeat index)",
            )


def bind_arguments(
    reporter: _Reporter, name: str, params: dict[str, Any] | None, args: dict[str, Any], path: str
) -> dict[str, Any] | None:
    """The scope of the block's body at this use: its defaults overridden by `args`. None (and
    a problem for each) when an argument is unknown or a required one missing."""
    if params is None:
        if args:
            reporter.add(
                f"{path}.args",
                f"block {name!r} takes no arguments; declare them in model.blocks.{name}.params",
            )
            return None
        return {}
    ok = True
    for key in args:
        if key not in params:
            reporter.add(
                f"{path}.args.{key}",
                f"block {name!r} takes no argument {key!r}; allowed: {one_of(params) or 'none'}"
                + did_you_mean(str(key), list(params)),
            )
            ok = False
    for key, default in params.items():
        if default is None and key not in args:
            reporter.add(
                f"{path}.args",
                f"block {name!r} needs {key!r} (model.blocks.{name}.params.{key} has no "
                "default); pass it in args",
            )
            ok = False
    return {**params, **args} if ok else None


def unused_scope(params: dict[str, Any] | None) -> dict[str, Any]:
    """The scope a block no entry uses is checked in: its defaults, required ones unset."""
    return {k: UNSET if v is None else v for k, v in (params or {}).items()}


def defined(reporter: _Reporter, defs: dict[str, Any], table: str, name: Any, path: str) -> bool:
    """Whether model.<table> (blocks or shared) defines `name`; a problem where it does not."""
    if isinstance(name, str) and name in defs:
        return True
    kind, what = ("block", "block") if table == "blocks" else ("ref", "shared instance")
    allowed = one_of(defs) if defs else f"none defined (add model.{table}.{name})"
    reporter.add(
        f"{path}.{kind}",
        f"no {what} named {name!r} in model.{table}; allowed: {allowed}"
        + did_you_mean(str(name), defs),
    )
    return False
