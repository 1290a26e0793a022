"""What a config read from a file someone else wrote may name.

A user's own config may import any dotted path (their layers, their initializers). A config
embedded in a checkpoint may not: while `untrusted()` is active, dotted paths and `_target_`s
resolve only against the runner's registries and the allow-list (the runner's own modules,
torch.optim, and whatever prefixes the caller adds explicitly).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

SAFE_PREFIXES = ("runner.", "torch.optim.")

_allowed: ContextVar[tuple[str, ...] | None] = ContextVar("runner_allowed_imports", default=None)


@contextmanager
def untrusted(extra: tuple[str, ...] = ()) -> Iterator[None]:
    """Within this block, only allow-listed dotted paths may be imported."""
    token = _allowed.set(SAFE_PREFIXES + tuple(extra))
    try:
        yield
    finally:
        _allowed.reset(token)


def check_import(dotted: str) -> None:
    """Raise LookupError when `dotted` may not be imported here."""
    allowed = _allowed.get()
    if allowed is not None and not dotted.startswith(allowed):
        raise LookupError(
            f"{dotted!r} is not on the allow-list for configs read from checkpoints "
            f"({', '.join(allowed)}); nothing was imported. If you trust this file, pass "
            f"allow=({dotted.rsplit('.', 1)[0] + '.'!r},) to runner.load"
        )


def target_problems(node: Any, path: str = "") -> list[str]:
    """Every `_target_` in a (plain) config that the allow-list refuses."""
    problems = []
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{path}.{key}" if path else str(key)
            if key == "_target_" and isinstance(value, str):
                try:
                    check_import(value)
                except LookupError as e:
                    problems.append(f"{where}: {e}")
            else:
                problems += target_problems(value, where)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            problems += target_problems(value, f"{path}[{i}]")
    return problems
