"""Tie groups (runner.config.ties) → one nn.Parameter per group.

`model.tie: [["0.weight", "4.weight"]]` makes every listed name hold the first member's
Parameter object: one tensor, so the optimizer sees it once and gradients from every use add
up. `{params: ["0.weight", "6.weight"], transpose: true}` makes `6.weight` compute as
`0.weight.T` (a parametrization whose `original` is the first member's Parameter), for
encoder/decoder tying of 2-D weights. Ties run after init rules (the first member's values win)
and before edits; they survive `.to(device)` and reloading, since rebuilding re-ties.
"""

import torch
from torch import nn
from torch.nn.utils import parametrize

from runner.config.ties import TieGroup
from runner.errors import Problems, did_you_mean, one_of


def check_ties(net: nn.Module, groups: tuple[TieGroup, ...], problems: Problems) -> None:
    """Names exist, shapes agree (reversed for transpose), no name in two groups."""
    params = dict(net.named_parameters(remove_duplicate=False))
    seen: dict[str, str] = {}
    for group in groups:
        for j, name in enumerate(group.params):
            if name not in params:
                problems.add(
                    f"{group.label}[{j}]",
                    f"no parameter named {name!r}{did_you_mean(name, params)}; "
                    f"allowed: {one_of(params, limit=20)}",
                )
            elif name in seen:
                problems.add(f"{group.label}[{j}]", f"{name!r} is already tied in {seen[name]}")
            seen.setdefault(name, group.label)
        if not all(n in params for n in group.params):
            continue
        first = group.params[0]
        want = tuple(params[first].shape)
        if group.transpose:
            if len(want) != 2:
                problems.add(
                    group.label, f"transpose needs 2-D weights; {first} has shape {list(want)}"
                )
                continue
            want = want[::-1]
        for name in group.params[1:]:
            shape = tuple(params[name].shape)
            if shape != want:
                problems.add(
                    group.label,
                    f"shapes differ: {first} is {list(params[first].shape)}, {name} is "
                    f"{list(shape)}"
                    + (" (transposed, it must be the reverse)" if group.transpose else ""),
                )


def apply_ties(net: nn.Module, groups: tuple[TieGroup, ...]) -> dict[int, str]:
    """Tie every group. Returns, per tied Parameter (by id), a note for the init report."""
    notes = {}
    for group in groups:
        source = net.get_parameter(group.params[0])
        for name in group.params[1:]:
            owner_name, _, attr = name.rpartition(".")
            owner = net.get_submodule(owner_name)
            if group.transpose:
                parametrize.register_parametrization(owner, attr, _Transpose(), unsafe=True)
                owner.parametrizations[attr].original = source  # type: ignore[union-attr,index]
            else:
                setattr(owner, attr, source)
        notes[id(source)] = f"{group.label}: values of {group.params[0]}"
    return notes


class _Transpose(nn.Module):
    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight.T
