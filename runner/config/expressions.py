"""Templates in model YAML: `"{out_channels * 4}"`, `"b{i + 2}"`, evaluated by a small safe
evaluator over Python's expression syntax (parsed by `ast`, never run by `eval`).

Allowed: numbers, strings, booleans, null, lists; the names in scope (a block's parameters, `i`
in a repeat); `+ - * / // % **`, comparisons, `and or not`, `a if c else b`, indexing, and
`min`, `max`, `len`, `int`. Nothing else: no attributes, no other calls, so a config read from
a checkpoint still cannot run code.

Every intermediate value is bounded, and an operation that would pass a bound is refused before
it runs: integers up to MAX_INT, strings and lists up to MAX_SIZE (a list counts its items and,
in full, the lists and strings inside, as printing it would). An expression has at most
MAX_LENGTH characters, so about that many operations on bounded values: memory and time are
bounded too, whoever wrote the config.
"""

import ast
import operator
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

MAX_LENGTH = 200  # characters in one expression
MAX_INT = 10**12  # larger results are refused: no layer has that many of anything
MAX_SIZE = 10_000  # characters of a string, items of a list (nested ones counted in full)
MAX_DEPTH = 50  # lists inside lists
TEMPLATE = re.compile(r"\{([^{}]*)\}")

_Fn = Callable[..., Any]
_BINARY: dict[type, _Fn] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_COMPARE: dict[type, _Fn] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_UNARY: dict[type, _Fn] = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_}
_FUNCTIONS: dict[str, _Fn] = {"min": min, "max": max, "len": len, "int": int}


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
    texts, length = [], 0
    for part in parts:  # each part is bounded; so is the whole text, checked as it grows
        texts.append(str(part))
        length += len(texts[-1])
        if length > MAX_SIZE:
            raise ExpressionError(
                f"the text would be longer than {MAX_SIZE:,} characters; allowed: at most that"
            )
    rendered = iter(texts)
    return TEMPLATE.sub(lambda _: next(rendered), value)


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
        raise ExpressionError(f"longer than {MAX_LENGTH} characters; allowed: at most that")
    try:
        return _Evaluator(scope).value(_parse(text.strip()))
    except RecursionError:  # nesting within MAX_LENGTH characters, deep in a parse of blocks
        raise ExpressionError("nested too deeply") from None


@lru_cache(maxsize=4096)  # a block used N times renders the same templates N times
def _parse(text: str) -> ast.expr:
    try:
        return ast.parse(text, mode="eval").body
    except SyntaxError as e:
        raise ExpressionError(f"not an expression ({e.msg})") from None


class _Evaluator:
    def __init__(self, scope: Mapping[str, Any]):
        self.scope = scope
        self.sizes: dict[int, int] = {}  # id(list) → its size, for lists seen in this evaluation
        self.alive: list[Any] = []  # those lists, kept so that no id is reused meanwhile

    def value(self, node: ast.AST) -> Any:
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            raise ExpressionError(
                f"{_describe(node)} is not allowed; allowed: numbers, names, + - * / // % **, "
                "comparisons, and/or/not, x if c else y, [i], min, max, len, int"
            )
        result = method(node)
        if _is_int(result) and abs(result) > MAX_INT:
            raise ExpressionError(
                f"{_describe(node)} is larger than {MAX_INT:,}; allowed: at most that"
            )
        if not (result is None or result is UNSET or isinstance(result, _VALUES)):
            raise ExpressionError(
                f"{_describe(node)} is a {type(result).__name__}; allowed: "
                "numbers, strings, booleans, null, lists"
            )
        self.bounded(self.size(result), node)
        return result

    def size(self, value: Any, depth: int = 0) -> int:
        """Characters of a string; 1 + its items' sizes for a list (a shared item at each place);
        1 for anything else. Counting stops past MAX_SIZE; a list built here costs its length."""
        if isinstance(value, str):
            return len(value)
        if not isinstance(value, list):
            return 1
        if id(value) in self.sizes:
            return self.sizes[id(value)]
        if depth > MAX_DEPTH:
            raise ExpressionError(f"lists nested more than {MAX_DEPTH} deep; allowed: at most that")
        total = 1
        for item in value:
            total += self.size(item, depth + 1)
            if total > MAX_SIZE:
                total = MAX_SIZE + 1  # "more than MAX_SIZE": counting stopped
                break
        self.sizes[id(value)] = total
        self.alive.append(value)
        return total

    @staticmethod
    def bounded(size: int, node: ast.AST, verb: str = "has") -> None:
        if size > MAX_SIZE:
            count = f"more than {MAX_SIZE:,}" if size == MAX_SIZE + 1 else f"{size:,}"
            raise ExpressionError(
                f"{_describe(node)} {verb} {count} characters or items; allowed: at most "
                f"{MAX_SIZE:,}"
            )

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
        self.bounded(self.result_size(node, left, right), node, "would have")  # before building
        return self._apply(_BINARY, node.op, left, right)

    def result_size(self, node: ast.BinOp, left: Any, right: Any) -> int:
        """What `left op right` would measure, known before it is computed: `'x' * 1000 *
        1000 * 1000` is refused at its second `*`, `2 ** 10 ** 10` before Python works on it."""
        op = node.op
        integers = _is_int(left) and _is_int(right)
        if isinstance(op, ast.Pow) and integers and abs(left) > 1 and right > 64:
            # past MAX_INT, and slow to compute: 2 ** 10 ** 10 has three billion digits
            raise ExpressionError(
                f"{_describe(node)} would be larger than {MAX_INT:,}; allowed: at most that"
            )
        if isinstance(op, ast.Mod) and isinstance(left, str):  # printf-style '%0999999999d'
            raise ExpressionError("% formats a string; allowed: % on numbers only")
        if isinstance(op, ast.Add) and type(left) is type(right) and isinstance(left, str | list):
            header = 1 if isinstance(left, list) else 0  # two lists make one
            return self.size(left) + self.size(right) - header
        if isinstance(op, ast.Mult):
            sequence, count = (left, right) if isinstance(left, str | list) else (right, left)
            if isinstance(sequence, str | list) and _is_int(count):
                header = 1 if isinstance(sequence, list) else 0
                return header + (self.size(sequence) - header) * max(count, 0)
        return 1

    def _UnaryOp(self, node: ast.UnaryOp) -> Any:
        operand = self.value(node.operand)
        return UNSET if operand is UNSET else self._apply(_UNARY, node.op, operand)

    def _BoolOp(self, node: ast.BoolOp) -> Any:
        values = [self.value(v) for v in node.values]
        if any(v is UNSET for v in values):
            return UNSET
        deciding = (lambda v: not v) if isinstance(node.op, ast.And) else bool  # as Python's
        return next((v for v in values if deciding(v)), values[-1])

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
            raise ExpressionError(
                f"cannot index {_describe(node.value)} with {_describe(node.slice)}"
            )
        if not -len(container) <= index < len(container):
            raise ExpressionError(f"index {index} is out of range for {_describe(node.value)}")
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
    def _apply(table: Mapping[Any, Callable[..., Any]], op: ast.AST, *args: Any) -> Any:
        fn = table.get(type(op))
        if fn is None:
            raise ExpressionError(f"the operator {type(op).__name__} is not allowed")
        try:
            return fn(*args)
        except (TypeError, ValueError, ZeroDivisionError, OverflowError) as e:
            raise ExpressionError(f"{type(e).__name__}: {e}") from None


_VALUES = (bool, int, float, str, list)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _describe(node: ast.AST) -> str:
    try:
        return repr(ast.unparse(node))
    except Exception:  # an unparsable fragment: its kind is enough
        return type(node).__name__
