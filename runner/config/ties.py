"""`model.tie` → TieGroups: the form of each group (its names are checked against the built
model by runner.params.tying, which makes the ties)."""

from dataclasses import dataclass
from typing import Any

from runner.errors import Problems


@dataclass(frozen=True)
class TieGroup:
    index: int
    params: tuple[str, ...]  # the first member's tensor becomes everyone's
    transpose: bool

    @property
    def label(self) -> str:
        return f"model.tie[{self.index}]"


def parse_ties(raw: list[Any], problems: Problems) -> tuple[TieGroup, ...]:
    """Check the form of `model.tie` (names are checked against the built model later)."""
    groups = []
    for i, item in enumerate(raw):
        path = f"model.tie[{i}]"
        transpose = False
        if isinstance(item, dict):
            extra = set(item) - {"params", "transpose"}
            if extra:
                problems.add(
                    f"{path}.{sorted(extra)[0]}", "unknown key; allowed: params, transpose"
                )
                continue
            transpose = bool(item.get("transpose", False))
            item = item.get("params")
        if not (
            isinstance(item, list) and len(item) >= 2 and all(isinstance(n, str) for n in item)
        ):
            problems.add(
                path,
                'expected two or more parameter names, e.g. ["0.weight", "4.weight"], or '
                f"{{params: [...], transpose: true}}; got {item!r}",
            )
            continue
        groups.append(TieGroup(i, tuple(item), transpose))
    return tuple(groups)
