"""Which modules may be imported while resolving names from a file someone else wrote.

A user's own config may import any dotted path (their layers, their initializers). A config
embedded in a checkpoint may not: while `untrusted()` is active, the registries import only
modules under the allow-list (the runner's own, torch.nn, torch.optim, and whatever prefixes
the caller adds). This gate only stops imports; runner.checkpoint.embedded then checks what each
name resolved to.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

SAFE_PREFIXES = ("runner.", "torch.nn.", "torch.optim.")

_allowed: ContextVar[tuple[str, ...] | None] = ContextVar("runner_allowed_imports", default=None)


@contextmanager
def untrusted(extra: tuple[str, ...] = ()) -> Iterator[None]:
    """Within this block, only allow-listed dotted paths may be imported."""
    extra = (extra,) if isinstance(extra, str) else tuple(extra)  # a prefix, not its letters
    token = _allowed.set(SAFE_PREFIXES + extra)
    try:
        yield
    finally:
        _allowed.reset(token)


def check_import(dotted: str) -> None:
    """Raise LookupError when `dotted` may not be imported here."""
    allowed = _allowed.get()
    if allowed is not None and not dotted.startswith(allowed):
        module = dotted.rsplit(".", 1)[0]
        raise LookupError(
            f"{dotted!r} is not on the allow-list for configs read from checkpoints "
            f"({', '.join(allowed)}); nothing was imported. If you trust this file, allow its "
            f"module: imports=[{module}] on the command line, or "
            f"runner.load(path, allow=({module!r},)) in Python"
        )
