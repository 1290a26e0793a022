"""A module's tensors by identity: each distinct tensor once, with every name it has.

A shared module (`ref:`) or a tie gives one tensor several state_dict names; the parameter
table, the init report, the statistics and the reload check all count such a tensor once.
"""

from collections.abc import Iterable

import torch
from torch import nn


def by_identity(
    named: Iterable[tuple[str, torch.Tensor]],
) -> list[tuple[tuple[str, ...], torch.Tensor]]:
    """(all names, tensor) for each distinct tensor, in the order of its first name."""
    groups: dict[int, tuple[list[str], torch.Tensor]] = {}
    for name, tensor in named:
        groups.setdefault(id(tensor), ([], tensor))[0].append(name)
    return [(tuple(names), tensor) for names, tensor in groups.values()]


def distinct_parameters(net: nn.Module) -> list[tuple[tuple[str, ...], torch.Tensor]]:
    return by_identity(net.named_parameters(remove_duplicate=False))
