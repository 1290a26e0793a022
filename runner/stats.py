"""Parameter statistics, computed in bulk on the parameters' device, read back in one transfer.

Per distinct parameter (a shared or tied tensor once, named by all its names) and per block:
mean, std, min, max, L2 norm, fraction of exact zeros, count of NaN/Inf, gradient norm, and
the update-to-weight ratio ‖w − w_prev‖ / ‖w‖ since the previous call (that one keeps a copy
of the weights: one extra parameter's worth of memory). Buffers get the value statistics only.

A block is a direct child of the model, or a module the YAML named (`name: "block {i}"`), so
rgnet's `0.block 2.0.weight` belongs to block `0.block 2`. No Lightning here: task=inspect uses it.
"""

from dataclasses import dataclass

import torch
from torch import nn

VALUE_STATS = ("mean", "std", "min", "max", "norm", "zero_frac", "nonfinite")
ALL_STATS = (*VALUE_STATS, "grad_norm", "update_ratio")


@dataclass(frozen=True)
class Tracked:
    name: str  # all names of the tensor, joined with " = "
    block: str
    tensor: torch.Tensor


def tracked_parameters(net: nn.Module) -> list[Tracked]:
    """Each distinct parameter once, in state_dict order, with all its names and its block."""
    names: dict[int, list[str]] = {}
    first: dict[int, torch.Tensor] = {}
    for name, p in net.named_parameters(remove_duplicate=False):
        names.setdefault(id(p), []).append(name)
        first.setdefault(id(p), p)
    return [Tracked(" = ".join(names[k]), block_of(names[k][0]), t) for k, t in first.items()]


def tracked_buffers(net: nn.Module) -> list[Tracked]:
    return [Tracked(n, block_of(n), b) for n, b in net.named_buffers() if b.is_floating_point()]


def block_of(name: str) -> str:
    """The deepest enclosing module that is a direct child or carries a name (not a number)."""
    parts = name.split(".")[:-1]
    block = parts[0] if parts else "(root)"
    for depth in range(2, len(parts) + 1):
        if not parts[depth - 1].isdigit():
            block = ".".join(parts[:depth])
    return block


class StatsComputer:
    """Computes the statistics of a fixed list of tensors, reusing its index buffers."""

    def __init__(self, items: list[Tracked], with_grads: bool, with_updates: bool):
        self.items = items
        self.with_grads, self.with_updates = with_grads, with_updates
        self.blocks = list(dict.fromkeys(t.block for t in items))
        device = items[0].tensor.device if items else torch.device("cpu")
        numels = torch.tensor([t.tensor.numel() for t in items], device=device)
        self.segment = torch.repeat_interleave(torch.arange(len(items), device=device), numels)
        block_index = {b: i for i, b in enumerate(self.blocks)}
        self.block_of = torch.tensor([block_index[t.block] for t in items], device=device)
        self.numel = numels.double()
        self.previous: list[torch.Tensor] | None = None

    @torch.no_grad()
    def compute(self) -> dict[str, dict[str, float]]:
        """{tensor or block name: {stat: value}}; blocks are keyed `block:<name>`."""
        if not self.items:
            return {}
        tensors = [t.tensor.detach() for t in self.items]
        flat = torch.cat([t.reshape(-1) for t in tensors]).double()
        p, seg = len(tensors), self.segment
        sums = torch.zeros(p, dtype=flat.dtype, device=flat.device).index_add_(0, seg, flat)
        squares = torch.zeros_like(sums).index_add_(0, seg, flat * flat)
        zeros = torch.zeros_like(sums).index_add_(0, seg, (flat == 0).double())
        nonfinite = torch.zeros_like(sums).index_add_(0, seg, (~torch.isfinite(flat)).double())
        lo = torch.full_like(sums, float("inf")).scatter_reduce_(0, seg, flat, "amin")
        hi = torch.full_like(sums, float("-inf")).scatter_reduce_(0, seg, flat, "amax")
        columns = {"sum": sums, "sq": squares, "zeros": zeros, "nonfinite": nonfinite}
        columns |= {"min": lo, "max": hi, "n": self.numel}
        if self.with_grads:
            grads = [
                t.tensor.grad if t.tensor.grad is not None else torch.zeros_like(t.tensor)
                for t in self.items
            ]
            columns["grad_sq"] = torch.stack(torch._foreach_norm(grads)).double() ** 2
        if self.with_updates:
            if self.previous is None:
                columns["delta_sq"] = torch.full_like(sums, float("nan"))
            else:
                deltas = torch._foreach_sub(tensors, self.previous)
                columns["delta_sq"] = torch.stack(torch._foreach_norm(deltas)).double() ** 2
            self.previous = [t.clone() for t in tensors]
        per_tensor = torch.stack(list(columns.values()), dim=1)  # (P, C)
        per_block = self._per_block(columns)  # (B, C)
        table = torch.cat([per_tensor, per_block]).cpu()  # the one transfer to the host
        keys = list(columns)
        rows = [t.name for t in self.items] + [f"block:{b}" for b in self.blocks]
        return {
            row: _finish(dict(zip(keys, values.tolist(), strict=True)))
            for row, values in zip(rows, table, strict=True)
        }

    def _per_block(self, columns: dict[str, torch.Tensor]) -> torch.Tensor:
        b = len(self.blocks)
        out = []
        for key, values in columns.items():
            if key == "min":
                agg = torch.full((b,), float("inf"), dtype=values.dtype, device=values.device)
                out.append(agg.scatter_reduce_(0, self.block_of, values, "amin"))
            elif key == "max":
                agg = torch.full((b,), float("-inf"), dtype=values.dtype, device=values.device)
                out.append(agg.scatter_reduce_(0, self.block_of, values, "amax"))
            else:  # sums of sums: counts, squares, squared norms all add up
                agg = torch.zeros(b, dtype=values.dtype, device=values.device)
                out.append(agg.index_add_(0, self.block_of, values))
        return torch.stack(out, dim=1)


def _finish(raw: dict[str, float]) -> dict[str, float]:
    n = raw["n"]
    mean = raw["sum"] / n
    stats = {
        "mean": mean,
        "std": max(raw["sq"] / n - mean * mean, 0.0) ** 0.5,  # population std
        "min": raw["min"],
        "max": raw["max"],
        "norm": raw["sq"] ** 0.5,
        "zero_frac": raw["zeros"] / n,
        "nonfinite": raw["nonfinite"],
    }
    if "grad_sq" in raw:
        stats["grad_norm"] = raw["grad_sq"] ** 0.5
    if "delta_sq" in raw:
        stats["update_ratio"] = raw["delta_sq"] ** 0.5 / stats["norm"] if stats["norm"] else 0.0
    return stats


def snapshot(net: nn.Module) -> dict[str, dict[str, float]]:
    """Value statistics of every parameter and block of `net` right now (task=inspect)."""
    return StatsComputer(tracked_parameters(net), with_grads=False, with_updates=False).compute()
