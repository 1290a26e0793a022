"""Child names a config may give: what nn.Module (and a torch.fx graph) accepts."""

from functools import cache
from typing import Any


def child_name_ok(name: str, dotted: bool) -> bool:
    """A name nn.Module accepts for a child (a graph's may be a dotted path, as the book's
    `net.0` in DenseBlock); a clash with a module's attribute would hide one of them."""
    parts = name.split(".") if dotted else [name]
    blank = _blank(dotted)
    return all(p and "." not in p and not hasattr(blank, p) for p in parts)


@cache
def _blank(graph: bool) -> Any:
    from torch import fx, nn

    return fx.GraphModule(nn.Module(), fx.Graph()) if graph else nn.Sequential()
