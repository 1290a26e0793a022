"""Templates in model YAML: `"{out_channels * 4}"`, `"b{i + 2}"`, evaluated by a small safe
evaluator over Python's expression syntax (parsed by `ast`, never run by `eval`).

Allowed: numbers, strings, booleans, null, lists; the names in scope (a block's parameters, `i`
in a repeat); `+ - * / // % **`, comparisons, `and or not`, `a if c else b`, indexing, and
`min`, `max`, `len`, `int`. Nothing else: no attributes, no other calls, so a config read from
a checkpoint still cannot run code. Sizes are bounded (a `**` cannot build a huge number).
"""

import ast
import operator
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

MAX_LENGTH = 200  # characters in one expression
MAX_INT = 10**12  # larger results are refused: no layer has that many of anything
TEMPLATE = re.compile(r"\{([^{}]*)\}")

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_FUNCTIONS: dict[str, Callable[..., Any]] = {"min": min, "max": max, "len": len, "int": int}


class ExpressionError(ValueError):
    """An expression that is not allowed, or fails; the message says which and why."""


class Unset:
    """A required block parameter with no value: a block no entry uses is still checked, with
    its required parameters unset; anything computed from one is unset too."""

    def __repr__(self) -> str:
        return "<unset>"


UNSET = Unset()
FAILED = object()  # a template that could not be rendered (its problem is already reported)


def render(value: Any, scope: Mapping[str, Any]) -> Any:
    """`value` with every template evaluated in `scope`: a string that is one `{expr}` becomes
    the expression's value (an int stays an int); `{expr}` inside a longer string is formatted
    into it. Lists and mappings are rendered item by item. Raises ExpressionError."""
    if isinstance(value, list):
        return [render(v, scope) for v in value]
    if isinstance(value, dict):
        return {k: render(v, scope) for k, v in value.items()}
    if not isinstance(value, str) or "{" not in value:
        return value
    whole = TEMPLATE.fullmatch(value)
    if whole:
        return evaluate(whole.group(1), scope)
    parts = [evaluate(m.group(1), scope) for m in TEMPLATE.finditer(value)]
    if any(p is UNSET for p in parts):
        return UNSET
    texts = iter(str(p) for p in parts)
    return TEMPLATE.sub(lambda _: next(texts), value)


def has_template(value: Any) -> bool:
    """Whether `value` (or anything inside it) holds a `{…}` template."""
    if isinstance(value, list):
        return any(has_template(v) for v in value)
    if isinstance(value, dict):
        return any(has_template(v) for v in value.values())
    return isinstance(value, str) and TEMPLATE.search(value) is not None


def evaluate(text: str, scope: Mapping[str, Any]) -> Any:
    """The value of one expression. Raises ExpressionError saying what is wrong."""
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"longer than {MAX_LENGTH} characters")
    return _Evaluator(scope).value(_parse(text.strip()))


@lru_cache(maxsize=4096)  # a block used N times renders the same templates N times
def _parse(text: str) -> ast.expr:
    try:
        return ast.parse(text, mode="eval").body
    except SyntaxError as e:
        raise ExpressionError(f"not an expression ({e.msg})") from None


class _Evaluator:
    def __init__(self, scope: Mapping[str, Any]):
        self.scope = scope

    def value(self, node: ast.AST) -> Any:
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            raise ExpressionError(
                f"{_describe(node)} is not allowed; allowed: numbers, names, + - * / // % **, "
                "comparisons, and/or/not, x if c else y, [i], min, max, len, int"
            )
        result = method(node)
        if isinstance(result, int) and not isinstance(result, bool) and abs(result) > MAX_INT:
            raise ExpressionError(f"the result is larger than {MAX_INT:,}")
        return result

    def _Constant(self, node: ast.Constant) -> Any:
        if node.value is None or isinstance(node.value, bool | int | float | str):
            return node.value
        raise ExpressionError(f"the constant {node.value!r} is not allowed")

    def _Name(self, node: ast.Name) -> Any:
        if node.id in self.scope:
            return self.scope[node.id]
        known = ", ".join(sorted(self.scope)) or "none here"
        raise ExpressionError(f"unknown name {node.id!r}; allowed: {known}")

    def _List(self, node: ast.List) -> Any:
        return [self.value(e) for e in node.elts]

    _Tuple = _List

    def _BinOp(self, node: ast.BinOp) -> Any:
        left, right = self.value(node.left), self.value(node.right)
        if left is UNSET or right is UNSET:
            return UNSET
        if isinstance(node.op, ast.Pow) and not (
            isinstance(right, int | float) and abs(right) <= 64 and abs(left) <= 10**6
        ):
            raise ExpressionError(f"{left!r} ** {right!r} is too large")
        if isinstance(node.op, ast.Mult) and isinstance(left, str | list) != isinstance(
            right, str | list
        ):
            count = right if isinstance(left, str | list) else left
            if isinstance(count, int) and count > 1000:
                raise ExpressionError(f"a repetition {count:,} times is too long")
        return self._apply(_BINARY, node.op, left, right)

    def _UnaryOp(self, node: ast.UnaryOp) -> Any:
        operand = self.value(node.operand)
        if operand is UNSET:
            return UNSET
        ops: dict[type, Callable[..., Any]] = {
            ast.USub: operator.neg,
            ast.UAdd: operator.pos,
            ast.Not: operator.not_,
        }
        return self._apply(ops, node.op, operand)

    def _BoolOp(self, node: ast.BoolOp) -> Any:
        values = [self.value(v) for v in node.values]
        if any(v is UNSET for v in values):
            return UNSET
        result = values[0]
        for v in values[1:]:
            result = (result and v) if isinstance(node.op, ast.And) else (result or v)
        return result

    def _Compare(self, node: ast.Compare) -> Any:
        left = self.value(node.left)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = self.value(right_node)
            if left is UNSET or right is UNSET:
                return UNSET
            if not self._apply(_COMPARE, op, left, right):
                return False
            left = right
        return True

    def _IfExp(self, node: ast.IfExp) -> Any:
        test = self.value(node.test)
        if test is UNSET:
            return UNSET
        return self.value(node.body if test else node.orelse)

    def _Subscript(self, node: ast.Subscript) -> Any:
        container, index = self.value(node.value), self.value(node.slice)
        if container is UNSET or index is UNSET:
            return UNSET
        if not isinstance(container, list | str) or not isinstance(index, int):
            raise ExpressionError(f"cannot index {container!r} with {index!r}")
        if not -len(container) <= index < len(container):
            raise ExpressionError(f"index {index} is out of range for {container!r}")
        return container[index]

    def _Call(self, node: ast.Call) -> Any:
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in _FUNCTIONS or node.keywords:
            raise ExpressionError(
                f"{_describe(node.func)}(…) is not allowed; allowed calls: " + ", ".join(_FUNCTIONS)
            )
        args = [self.value(a) for a in node.args]
        if any(a is UNSET for a in args):
            return UNSET
        try:
            return _FUNCTIONS[name](*args)
        except (TypeError, ValueError) as e:
            raise ExpressionError(f"{name}: {e}") from None

    @staticmethod
    def _apply(table: Mapping[type, Callable[..., Any]], op: ast.AST, *args: Any) -> Any:
        fn = table.get(type(op))
        if fn is None:
            raise ExpressionError(f"the operator {type(op).__name__} is not allowed")
        try:
            return fn(*args)
        except (TypeError, ValueError, ZeroDivisionError, OverflowError) as e:
            raise ExpressionError(f"{type(e).__name__}: {e}") from None


def _describe(node: ast.AST) -> str:
    try:
        return repr(ast.unparse(node))
    except Exception:  # an unparsable fragment: its kind is enough
        return type(node).__name__
