"""Parameter statistics, computed in bulk on the parameters' device, read back in one transfer.

Per distinct parameter (a shared or tied tensor once, named by all its names) and per block:
mean, std, min, max, L2 norm, fraction of exact zeros, count of NaN/Inf, gradient norm, and
the update-to-weight ratio ‖w − w_prev‖ / ‖w‖ since the previous call (that one keeps a copy
of the weights: one extra parameter's worth of memory). Buffers get the value statistics only.

A block is a direct child of the model, or a module the YAML named (`name: "block {i}"`), so
rgnet's `0.block 2.0.weight` belongs to block `0.block 2`. No Lightning here: task=inspect uses it.
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from runner.params.host_stats import host_table
from runner.params.tensors import distinct_parameters


@dataclass(frozen=True)
class Tracked:
    name: str  # all names of the tensor, joined with " = "
    block: str
    tensor: torch.Tensor


def tracked_parameters(net: nn.Module) -> list[Tracked]:
    """Each distinct parameter once, in state_dict order, with all its names and its block."""
    return [Tracked(" = ".join(n), block_of(n[0]), t) for n, t in distinct_parameters(net)]


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
        numels = torch.tensor([t.tensor.numel() for t in items], dtype=torch.long, device=device)
        self.segment = torch.repeat_interleave(torch.arange(len(items), device=device), numels)
        block_index = {b: i for i, b in enumerate(self.blocks)}
        self.block_of = torch.tensor([block_index[t.block] for t in items], device=device)
        self.numel = numels.double()
        self.previous: list[torch.Tensor] | None = None  # the weights at the last call
        self.previous_flat: torch.Tensor | None = None  # the same, as one flat copy
        self.flat_limit = 1 << 24  # elements: above this, no flat copy of the whole model
        # Small models on the CPU: the same table in numpy (runner.params.host_stats).
        sizes = [t.tensor.numel() for t in items]
        self.on_host = device.type == "cpu" and 0 < sum(sizes) <= 1 << 20 and min(sizes) > 0
        if self.on_host:
            self.starts = np.cumsum([0, *sizes[:-1]])
            self.block_of_host = self.block_of.numpy()
            self.previous_host: np.ndarray | None = None

    @torch.no_grad()
    def table(
        self, grad_norms: torch.Tensor | None = None
    ) -> tuple[list[str], list[str], list[list[float]]]:
        """(row names, statistic names, values): rows are the tensors, then `block:<name>`.

        `grad_norms`, one per tensor (NaN: no gradient), replaces reading `.grad`: after the
        last step an optimizer's `zero_grad(set_to_none=True)` may have dropped them. A tensor
        without a gradient gets grad_norm NaN (absent, never a made-up 0), and so does a block
        none of whose tensors has one.
        """
        tensors = [t.tensor.detach() for t in self.items]
        if self.on_host:
            return self._host_table(tensors, grad_norms)
        b = len(self.blocks)
        # Per tensor, columns that add up (sum, sum of squares, zeros, NaN/Inf, numel, …),
        # and min/max. Small models: one flat copy and segment reductions, a handful of ops in
        # all. Large ones: reductions per tensor, so no copy of the whole model is made.
        flat = None
        if self.numel.sum() <= self.flat_limit:
            flat, additive, lo, hi = self._flat_reductions(tensors)
        else:
            additive, lo, hi = self._per_tensor_reductions(tensors)
        extra = self._counted_columns(tensors, flat, additive, grad_norms)
        additive = torch.cat([additive, torch.stack(extra, 1)], 1)
        # Per block: the same columns summed over the block's tensors (one op), min/max of them.
        per_block = additive.new_zeros(b, additive.shape[1]).index_add_(0, self.block_of, additive)
        a = torch.cat([additive, per_block])
        s, sq, zeros, nonfinite, n = (a[:, i] for i in range(5))
        mean, norm = s / n, sq.sqrt()
        columns = {
            "mean": mean,
            "std": (sq / n - mean * mean).clamp(min=0).sqrt(),  # population std
            "min": torch.cat(
                [lo, lo.new_full((b,), float("inf")).scatter_reduce_(0, self.block_of, lo, "amin")]
            ),
            "max": torch.cat(
                [hi, hi.new_full((b,), float("-inf")).scatter_reduce_(0, self.block_of, hi, "amax")]
            ),
            "norm": norm,
            "zero_frac": zeros / n,
            "nonfinite": nonfinite,
        }
        if self.with_grads:  # columns 5 and 6: the squared norm, how many tensors have one
            columns["grad_norm"] = torch.where(a[:, 6] > 0, a[:, 5].sqrt(), float("nan"))
        if self.with_updates:
            ratio = a[:, -1].sqrt() / norm
            columns["update_ratio"] = torch.where(norm > 0, ratio, torch.zeros_like(ratio))
        values = torch.stack(list(columns.values()), 1).cpu().tolist()  # the one transfer
        rows = [t.name for t in self.items] + [f"block:{name}" for name in self.blocks]
        return rows, list(columns), values

    def _counted_columns(
        self,
        tensors: list[torch.Tensor],
        flat: torch.Tensor | None,
        additive: torch.Tensor,
        grad_norms: torch.Tensor | None,
    ) -> list[torch.Tensor]:
        """Per tensor, the additive columns past the value sums: numel, then the squared
        gradient norm and whether there is one, then the squared update since the last call."""
        extra = [self.numel.to(additive.device)]
        if self.with_grads:
            norms = self.grad_norms() if grad_norms is None else grad_norms
            norms = norms.to(additive.device, torch.float64)
            present = ~torch.isnan(norms)
            extra += [torch.where(present, norms**2, 0.0), present.double()]
        if self.with_updates:
            nothing_yet = additive.new_full((len(tensors),), float("nan"))
            extra.append(
                self._delta_sq(tensors, nothing_yet)
                if flat is None
                else self._flat_delta_sq(flat, nothing_yet)
            )
        return extra

    def _host_table(
        self, tensors: list[torch.Tensor], grad_norms: torch.Tensor | None
    ) -> tuple[list[str], list[str], list[list[float]]]:
        flat = torch.cat([t.reshape(-1) for t in tensors]).double().numpy()
        norms = None
        if self.with_grads:
            given = self.grad_norms() if grad_norms is None else grad_norms
            norms = given.to("cpu", torch.float64).numpy()
        previous = self.previous_host
        if self.with_updates:
            self.previous_host = flat
        names, values = host_table(
            flat,
            self.starts,
            self.block_of_host,
            len(self.blocks),
            norms,
            previous,
            self.with_updates,
        )
        rows = [t.name for t in self.items] + [f"block:{name}" for name in self.blocks]
        return rows, names, values

    def grad_norms(self) -> torch.Tensor:
        """The L2 norm of each tensor's `.grad` now, NaN where it has none (on their device)."""
        have = [i for i, t in enumerate(self.items) if t.tensor.grad is not None]
        norms = self.numel.new_full((len(self.items),), float("nan"))
        if len(have) == len(self.items) and self.numel.sum() <= self.flat_limit:
            # Every tensor has one, and they are small: one flat copy, one segment reduction.
            flat = torch.cat([t.tensor.grad.reshape(-1) for t in self.items]).double()  # type: ignore[union-attr]
            squares = norms.new_zeros(len(self.items)).index_add_(0, self.segment, flat * flat)
            return squares.sqrt()
        if have:
            grads = [self.items[i].tensor.grad for i in have]
            values = torch.stack(torch._foreach_norm(grads))  # type: ignore[arg-type]
            norms[have] = values.to(norms.device, norms.dtype)
        return norms

    def _flat_reductions(
        self, tensors: list[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        flat = torch.cat([t.reshape(-1) for t in tensors]).double()
        seg, p = self.segment, len(tensors)
        parts = [flat, flat * flat, (flat == 0).double(), (~torch.isfinite(flat)).double()]
        additive = flat.new_zeros(p, 4).index_add_(0, seg, torch.stack(parts, 1))
        lo = flat.new_full((p,), float("inf")).scatter_reduce_(0, seg, flat, "amin")
        hi = flat.new_full((p,), float("-inf")).scatter_reduce_(0, seg, flat, "amax")
        return flat, additive, lo, hi

    def _flat_delta_sq(self, flat: torch.Tensor, nothing_yet: torch.Tensor) -> torch.Tensor:
        """‖w − w_prev‖² per tensor from the flat copy: a few ops for any number of tensors
        (a norm per tensor costs more than the arithmetic for small models)."""
        previous, self.previous_flat = self.previous_flat, flat
        if previous is None:
            return nothing_yet
        delta = flat - previous
        return nothing_yet.new_zeros(len(self.items)).index_add_(0, self.segment, delta * delta)

    def _per_tensor_reductions(
        self, tensors: list[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        sums = torch.stack([t.sum(dtype=torch.float64) for t in tensors])
        squares = torch.stack(torch._foreach_norm(tensors)).double() ** 2
        zeros = torch.stack([t.numel() - torch.count_nonzero(t) for t in tensors]).double()
        nonfinite = torch.stack([(~torch.isfinite(t)).sum() for t in tensors]).double()
        lows, highs = zip(*(torch.aminmax(t) for t in tensors), strict=True)
        additive = torch.stack([sums, squares, zeros, nonfinite], 1)
        return additive, torch.stack(lows).double(), torch.stack(highs).double()

    def _delta_sq(self, tensors: list[torch.Tensor], nothing_yet: torch.Tensor) -> torch.Tensor:
        """‖w − w_prev‖² per tensor, then remember w (in buffers allocated once)."""
        if self.previous is None:
            self.previous = [t.clone() for t in tensors]
            return nothing_yet
        deltas = torch._foreach_sub(tensors, self.previous)
        torch._foreach_copy_(self.previous, tensors)
        return torch.stack(torch._foreach_norm(deltas)).double() ** 2

    def compute(self, grad_norms: torch.Tensor | None = None) -> dict[str, dict[str, float]]:
        """{tensor or block name: {stat: value}}; blocks are keyed `block:<name>`."""
        if not self.items:
            return {}
        rows, names, values = self.table(grad_norms)
        return {row: dict(zip(names, v, strict=True)) for row, v in zip(rows, values, strict=True)}


def snapshot(net: nn.Module) -> dict[str, dict[str, float]]:
    """Value statistics of every parameter and block of `net` right now (task=inspect)."""
    return StatsComputer(tracked_parameters(net), with_grads=False, with_updates=False).compute()
