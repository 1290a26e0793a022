"""The compact form of entries: a string written as the book writes PyTorch, a row of calls.

    - LazyConv2d(6, kernel_size=5, padding=2), Sigmoid(), AvgPool2d(kernel_size=2, stride=2)
    - nin_block(96 // div, kernel_size=stem[0], strides=stem[1], padding=stem[2])
    - Sequential(inception(64, [96, 128], [16, 32], 32, div), MaxPool2d(3, stride=2, padding=1))

Each call of a row is one entry of the list it stands in (a row is not a nested Sequential, so
the keys stay the book's `0.weight`, `3.weight`). A callee is a layer type (its arguments bound
as Python binds them to the constructor), a block of model.blocks (positional arguments in the
order of its `params`), or `Sequential(...)` (a `seq` of the entries it is given); a bare name is
a layer without arguments. An argument is an expression (runner.config.expressions) in the scope
of the block being parsed. The row is parsed by `ast`, never run: it only becomes the mapping
form (`{type: LazyConv2d, out_channels: 6, …}`), checked as that form is.
"""

import ast
import inspect
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from runner.config.block_args import split_definition
from runner.registry import layers as registry

MAX_ROW = 2_000  # characters of one row: a few dozen calls
SEQUENTIAL = "Sequential"


class CallError(ValueError):
    """A row that is not a list of calls; the message says where and why."""


def is_row(text: Any) -> bool:
    """Whether a string entry is in the compact form (a call, or several, not a bare name)."""
    return isinstance(text, str) and ("(" in text or "," in text)


def rows(
    item: Any, path: str, blocks: dict[str, Any], add: Callable[[str, str], None]
) -> list[tuple[str, Any]] | None:
    """(path, entry) for each call of a row, the `k`-th at `path[k]` where there are several;
    any other item as it is. None, after `add`ing the problem, for a row that does not parse."""
    if not is_row(item):
        return [(path, item)]
    try:
        entries = expand(item, blocks)
    except CallError as e:
        add(path, f"{item!r}: {e}")
        return None
    if len(entries) == 1:
        return [(path, entries[0])]
    return [(f"{path}[{k}]", entry) for k, entry in enumerate(entries)]


def single(text: str, path: str, blocks: dict[str, Any], add: Callable[[str, str], None]) -> Any:
    """The one entry a row stands for where one entry goes (a block's body, a `seq`'s item is
    a list's), or None after `add`ing the problem."""
    entries = rows(text, path, blocks, add)
    if entries is not None and len(entries) > 1:
        add(
            path,
            f"{text!r} is a row of {len(entries)} entries where one goes; write them as "
            "a list, or in Sequential(...)",
        )
    return entries[0][1] if entries is not None and len(entries) == 1 else None


def expand(text: str, blocks: dict[str, Any]) -> list[Any]:
    """The entries a row stands for, in the mapping form. Raises CallError."""
    if len(text) > MAX_ROW:
        raise CallError(f"a row longer than {MAX_ROW:,} characters; allowed: at most that")
    try:
        body = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, RecursionError, ValueError) as e:
        message = e.msg if isinstance(e, SyntaxError) else "nested too deeply"
        raise CallError(
            f"not a row of calls such as 'Conv2d(8, kernel_size=3), ReLU()' ({message})"
        ) from None
    calls = body.elts if isinstance(body, ast.Tuple) else [body]
    return [_entry(call, blocks) for call in calls]


def _entry(node: ast.expr, blocks: dict[str, Any]) -> Any:
    call = node if isinstance(node, ast.Call) else ast.Call(node, [], [])
    name = _dotted(call.func)
    if name is None or any(k.arg is None for k in call.keywords):
        raise CallError(f"{_source(node)} is not a call of a layer or block, such as ReLU()")
    keywords = {k.arg: _value(k.value) for k in call.keywords if k.arg is not None}
    if name == SEQUENTIAL:
        if keywords:
            raise CallError(f"{SEQUENTIAL}(…) takes entries only; got {', '.join(keywords)}=…")
        return {"seq": [_entry(a, blocks) for a in call.args]}
    positional = [_value(a) for a in call.args]
    if name in blocks:
        params, _ = split_definition(blocks[name])
        order = list(params or {})
        if len(positional) > len(order):
            raise CallError(
                f"{_source(node)}: block {name!r} takes {len(order)} positional arguments "
                f"({', '.join(order) or 'none'}); it is given {len(positional)}"
            )
        return {"block": name, "args": {**dict(zip(order, positional, strict=False)), **keywords}}
    return {"type": name, **_bind(name, positional, keywords, node)}


def _bind(
    name: str, positional: list[Any], keywords: dict[str, Any], node: ast.expr
) -> dict[str, Any]:
    """The keyword arguments Python would pass: positional ones named by the signature."""
    if not positional:
        return keywords
    try:
        cls: Callable[..., Any] = registry.resolve_layer(name)  # each time: what a file may name
        signature = _signature(cls)
    except LookupError:  # reported, with its suggestions, where the type is resolved
        return keywords
    except (TypeError, ValueError):
        raise CallError(
            f"{_source(node)}: {name} has no signature to bind positional arguments to; name them"
        ) from None
    try:  # keywords are checked, with suggestions, where the mapping form's are
        bound = signature.bind_partial(*positional)
    except TypeError as e:
        raise CallError(f"{_source(node)}: {e}") from None
    twice = [k for k in keywords if k in bound.arguments]
    if twice:
        raise CallError(f"{_source(node)}: {twice[0]!r} is given by position and by name")
    if any(
        p.kind is p.VAR_POSITIONAL
        for p in signature.parameters.values()
        if p.name in bound.arguments
    ):
        raise CallError(
            f"{_source(node)}: {name} takes its positional arguments as *args; name them"
        )
    return {**bound.arguments, **keywords}


@lru_cache(maxsize=1024)
def _signature(cls: Callable[..., Any]) -> inspect.Signature:
    return inspect.signature(cls)


def _value(node: ast.expr) -> Any:
    """A literal as itself; anything else as the template of its expression, rendered where the
    entry is parsed (in the scope of its block)."""
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        source = _source(node)
        if "{" in source or "}" in source:
            raise CallError(f"{source}: braces are not allowed in an argument") from None
        return "{" + ast.unparse(node) + "}"
    return _plain(value, node)


def _plain(value: Any, node: ast.expr) -> Any:
    """A literal as YAML would hold it: (96, 128), as the book writes a pair, is a list."""
    if isinstance(value, tuple | list):
        return [_plain(v, node) for v in value]
    if isinstance(value, str) and ("{" in value or "}" in value):
        raise CallError(f"{value!r}: braces are not allowed in an argument")
    if value is not None and not isinstance(value, bool | int | float | str):
        raise CallError(f"{_source(node)} is not allowed; allowed: numbers, strings, lists, names")
    return value


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return None if head is None else f"{head}.{node.attr}"
    return None


def _source(node: ast.AST) -> str:
    return repr(ast.unparse(node))
