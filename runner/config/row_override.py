"""An override that reaches inside a string entry: `model.net.0.out_channels=8` where
model.net[0] is a row of calls (`LazyConv2d(6, kernel_size=5), Sigmoid()`) or a bare layer
name. OmegaConf cannot set a key inside a string (it would replace the row by the one key, and
the entry would then be refused), so the message says what works: replacing the whole entry,
shown as it is now, with the value written into its call where the call is plain to see.
"""

import ast
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from runner.config.calls import CallError, expand


def inside_a_string(cfg: DictConfig, key: str, value: str) -> str | None:
    """The message for an override of `key` (dotted, as on the command line) whose path passes
    through a string entry of `cfg`; None when it does not."""
    found = _string_on_the_way(cfg, key.split("."))
    if found is None:
        return None
    prefix, text, rest = found
    python = _python_value(value)
    blocks = _blocks(cfg)
    changed = _written_into(text, rest[0], python, blocks) if len(rest) == 1 else None
    replace = f"'{'.'.join(prefix)}=\"{changed or text}\"'"
    what = "a row of calls" if "(" in text or "," in text else "a layer name"
    how = f"replace the whole entry: {replace}"
    if changed is None:
        how += f", with {'.'.join(rest)}={python!r} written into its call"
    return (
        f"{key}: unknown key: {'.'.join(prefix)} is {what}, one string ({text!r}), and an "
        f"override cannot reach a value inside it; {how}"
    )


def _string_on_the_way(cfg: Any, parts: list[str]) -> tuple[list[str], str, list[str]] | None:
    """(the path to the string, the string, the parts after it), or None."""
    node = cfg
    for k, part in enumerate(parts[:-1]):
        try:
            if isinstance(node, ListConfig) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            elif isinstance(node, DictConfig) and part in node:
                node = node[part]
            else:
                return None
        except Exception:  # an interpolation that does not resolve: no hint to give
            return None
        if isinstance(node, str):
            return parts[: k + 1], node, parts[k + 1 :]
    return None


def _blocks(cfg: DictConfig) -> dict[str, Any]:
    try:
        blocks = OmegaConf.to_container(cfg.model.blocks, resolve=True)
    except Exception:
        return {}
    return {str(k): v for k, v in blocks.items()} if isinstance(blocks, dict) else {}


def _python_value(text: str) -> Any:
    """The override's value as Python writes it in a row (`false` → False)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        return OverridesParser.create().parse_override(f"k={text}").value()
    except Exception:
        return text


def _written_into(text: str, key: str, value: Any, blocks: dict[str, Any]) -> str | None:
    """`text` with `key` set to `value` in the one call of the row that has it (or in the row's
    only call); None when no call, or more than one, could be meant."""
    try:
        body = ast.parse(text.strip(), mode="eval").body
        entries = expand(text, blocks)
    except (SyntaxError, ValueError, RecursionError, CallError):
        return None
    nodes = body.elts if isinstance(body, ast.Tuple) else [body]
    hits = [k for k, entry in enumerate(entries) if key in _arguments(entry)]
    source, new = text.strip(), repr(value)
    if len(hits) == 1 and isinstance(call := nodes[hits[0]], ast.Call):
        keyword = next((w.value for w in call.keywords if w.arg == key), None)
        arguments = list(_arguments(entries[hits[0]]))
        position = arguments.index(key)
        node = keyword or (call.args[position] if position < len(call.args) else None)
        return None if node is None else _replaced(source, node, new)
    if hits or len(nodes) != 1:
        return None
    only = nodes[0]
    if isinstance(only, ast.Name):
        return f"{only.id}({key}={new})"
    if isinstance(only, ast.Call):  # before its closing parenthesis
        end = _offset(source, only.end_lineno or 1, only.end_col_offset or 0) - 1
        comma = ", " if only.args or only.keywords else ""
        return f"{source[:end]}{comma}{key}={new}{source[end:]}"
    return None


def _arguments(entry: Any) -> dict[str, Any]:
    """A mapping entry's arguments: a layer's keys but `type`, a block use's `args`."""
    if not isinstance(entry, dict) or "seq" in entry:
        return {}
    if "block" in entry:
        return dict(entry.get("args") or {})
    return {k: v for k, v in entry.items() if k != "type"}


def _replaced(source: str, node: ast.expr, new: str) -> str:
    start = _offset(source, node.lineno, node.col_offset)
    end = _offset(source, node.end_lineno or node.lineno, node.end_col_offset or 0)
    return source[:start] + new + source[end:]


def _offset(source: str, line: int, column: int) -> int:
    """ast's (line, UTF-8 byte column) as an index into `source`."""
    lines = source.splitlines(keepends=True)
    before = sum(len(each) for each in lines[: line - 1])
    return before + len(lines[line - 1].encode()[:column].decode(errors="ignore"))
