"""One optimizer step for N members at once: torch's SGD, Adam and AdamW arithmetic applied to
the members' parameters flattened into one (N, T) tensor, each member with its own
hyperparameters (learning rate, momentum, betas, eps, weight decay) read from its own torch
optimizer, which its own scheduler drives. The arithmetic follows torch.optim's single-tensor
code (the CPU default) operation by operation, so a member ends where the same job trained alone
ends, within float32 round-off (the members' scalars are float32 tensors here, Python floats
there). A member that is not `active` keeps its parameters and state as they were: its run
stopped at a non-finite step."""

from dataclasses import dataclass
from typing import Any

import torch

# The optimizers whose update is elementwise with per-member hyperparameters.
VECTORIZED = (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW)
# Settings that change the update's formula, not its numbers: one value per group.
FORMULA_KEYS = ("nesterov", "maximize", "amsgrad", "decoupled_weight_decay", "momentum_on")


def formula(optimizer: torch.optim.Optimizer) -> tuple[Any, ...]:
    """What must be equal across members for one vectorized update (class and switches)."""
    group = optimizer.param_groups[0]
    switches = {**group, "momentum_on": bool(group.get("momentum", 0))}
    return (type(optimizer).__name__, *(switches.get(k) for k in FORMULA_KEYS))


@dataclass
class _Scalars:
    """Per-member hyperparameters as (N, 1) float32 columns (they broadcast over T)."""

    lr: torch.Tensor
    weight_decay: torch.Tensor
    extra: dict[str, torch.Tensor]
    decay: bool  # any member's weight decay is not 0 (else its two ops are skipped)


class StackedOptimizer:
    """The update of `flat` (N, T, a leaf whose .grad the backward filled) for the members'
    optimizers `members` (one param group each, over the member's own parameters)."""

    def __init__(
        self,
        flat: torch.Tensor,
        members: list[torch.optim.Optimizer],
        grad: torch.Tensor | None = None,
    ):
        self.flat, self.members = flat, members
        self.grad = grad  # where the gradients are (default: flat.grad)
        self.kind = type(members[0])
        group = members[0].param_groups[0]
        self.maximize = bool(group.get("maximize", False))
        self.nesterov = bool(group.get("nesterov", False))
        self.amsgrad = bool(group.get("amsgrad", False))
        self.momentum_on = bool(group.get("momentum", 0))
        self.decoupled = self.kind is torch.optim.AdamW or bool(
            group.get("decoupled_weight_decay", False)
        )
        self.steps = 0
        self.state: dict[str, torch.Tensor] = {}
        self._cached: tuple[tuple[Any, ...], _Scalars] | None = None

    def _scalars(self) -> _Scalars:
        """The members' hyperparameters as columns, made anew only when one changed (a
        scheduler's step) or, for Adam's bias corrections, every step."""
        groups = [m.param_groups[0] for m in self.members]
        keys = ("lr", "weight_decay", "momentum", "dampening", "betas", "eps")
        now = (
            self.steps if self.kind is not torch.optim.SGD else 0,
            *(g.get(k) for g in groups for k in keys),
        )
        if self._cached is None or self._cached[0] != now:
            self._cached = now, self._columns(groups)
        return self._cached[1]

    def _columns(self, groups: list[dict[str, Any]]) -> _Scalars:

        def column(values: list[float]) -> torch.Tensor:
            return torch.tensor(values, dtype=self.flat.dtype, device=self.flat.device)[:, None]

        extra: dict[str, torch.Tensor] = {}
        if self.kind is torch.optim.SGD:
            extra["momentum"] = column([g["momentum"] for g in groups])
            extra["keep"] = column([1 - g["dampening"] for g in groups])
        else:
            n = self.steps
            # torch computes these in Python floats (double): so here, then stored in float32.
            b1 = [g["betas"][0] for g in groups]
            b2 = [g["betas"][1] for g in groups]
            extra["one_minus_beta1"] = column([1 - b for b in b1])
            extra["beta2"] = column(b2)
            extra["one_minus_beta2"] = column([1 - b for b in b2])
            extra["neg_step_size"] = column(
                [-(g["lr"] / (1 - b**n)) for g, b in zip(groups, b1, strict=True)]
            )
            extra["bias_correction2_sqrt"] = column([(1 - b**n) ** 0.5 for b in b2])
            extra["eps"] = column([g["eps"] for g in groups])
        return _Scalars(
            lr=column([g["lr"] for g in groups]),
            weight_decay=column([g["weight_decay"] for g in groups]),
            extra=extra,
            decay=any(g["weight_decay"] != 0 for g in groups),
        )

    @torch.no_grad()
    def step(self, active: torch.Tensor) -> None:
        """Update the active members (`active`: (N, 1) bool) from `flat.grad`."""
        grad = self.grad if self.grad is not None else self.flat.grad
        assert grad is not None
        self.steps += 1
        s = self._scalars()
        grad = -grad if self.maximize else grad
        if self.kind is torch.optim.SGD:
            new = self._sgd(grad, s, active)
        else:
            new = self._adam(grad, s, active)
        self.flat.copy_(torch.where(active, new, self.flat))

    def _sgd(self, grad: torch.Tensor, s: _Scalars, active: torch.Tensor) -> torch.Tensor:
        param = self.flat
        if s.decay:
            grad = grad + s.weight_decay * param
        if self.momentum_on:
            buf = self.state.get("momentum_buffer")
            if buf is None:
                buf = grad.clone()
            else:
                buf = buf * s.extra["momentum"] + grad * s.extra["keep"]
            self.state["momentum_buffer"] = self._kept("momentum_buffer", buf, active)
            grad = grad + buf * s.extra["momentum"] if self.nesterov else buf
        return param - s.lr * grad

    def _adam(self, grad: torch.Tensor, s: _Scalars, active: torch.Tensor) -> torch.Tensor:
        param = self.flat
        if self.decoupled and s.decay:
            param = param * (1 - s.lr * s.weight_decay)
        elif s.decay:
            grad = grad + s.weight_decay * param
        zeros = torch.zeros_like(param)
        exp_avg = self.state.get("exp_avg", zeros)
        exp_avg_sq = self.state.get("exp_avg_sq", zeros)
        exp_avg = exp_avg + (grad - exp_avg) * s.extra["one_minus_beta1"]  # lerp
        exp_avg_sq = exp_avg_sq * s.extra["beta2"] + grad * grad * s.extra["one_minus_beta2"]
        self.state["exp_avg"] = self._kept("exp_avg", exp_avg, active)
        self.state["exp_avg_sq"] = self._kept("exp_avg_sq", exp_avg_sq, active)
        second = exp_avg_sq
        if self.amsgrad:
            second = torch.maximum(self.state.get("max_exp_avg_sq", zeros), exp_avg_sq)
            self.state["max_exp_avg_sq"] = self._kept("max_exp_avg_sq", second, active)
        denom = second.sqrt() / s.extra["bias_correction2_sqrt"] + s.extra["eps"]
        return param + s.extra["neg_step_size"] * exp_avg / denom

    def _kept(self, name: str, new: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
        old = self.state.get(name)
        return new if old is None else torch.where(active, new, old)

    def member_state(
        self, i: int, params: list[torch.nn.Parameter], slices: list[slice], steps: int
    ) -> None:
        """Write member i's slice of the state into its own optimizer, in torch's layout, so
        its checkpoint resumes as a single run's would. `steps`: the steps it took (a member
        stopped at a non-finite step took fewer than the group)."""
        optimizer = self.members[i]
        for param, where in zip(params, slices, strict=True):
            shape = param.shape
            state: dict[str, Any] = {}
            if self.kind is torch.optim.SGD:
                buf = self.state.get("momentum_buffer")
                if self.momentum_on:
                    state["momentum_buffer"] = None if buf is None else _slice(buf, i, where, shape)
            else:
                state["step"] = torch.tensor(float(steps))
                for name in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
                    if name in self.state:
                        state[name] = _slice(self.state[name], i, where, shape)
            if state and steps:
                optimizer.state[param] = state


def _slice(t: torch.Tensor, i: int, where: slice, shape: torch.Size) -> torch.Tensor:
    return t[i, where].reshape(shape).clone()
