"""Training a group of members as one: their parameters flattened into one (N, T) tensor, one
forward and backward for all of them (torch.func.vmap over torch.func.functional_call), one
optimizer step (runner.train.vector_optim). Each member sees its own data in its own order —
the same batches, in the same order, as its single run — and keeps its own record: the metrics
its single run logs, at the same steps, its statistics, its best and last states. A member whose
loss or gradient turns non-finite is frozen before that step is applied (stats.on_nan=stop);
the others go on."""

import copy
import logging
import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.func import functional_call, vmap
from torch.nn import functional as F

from runner.config.sections import DEFAULT_OBJECTIVE
from runner.params.recorder import StatsRecorder
from runner.params.tensors import distinct_parameters
from runner.train.vector_chain import Chain
from runner.train.vector_members import Member
from runner.train.vector_net import stack, stacked_losses
from runner.train.vector_optim import StackedOptimizer

log = logging.getLogger("runner")
_DENSE_SEGMENT_MAX = 1 << 22  # floats in the 0/1 matrix of small networks' gradient norms


@dataclass
class Snapshot:
    """A member's state at an epoch's end, for a checkpoint written later."""

    epoch: int
    step: int
    params: torch.Tensor  # the member's row of the flat parameters
    buffers: dict[str, torch.Tensor]  # its buffers (BatchNorm's running statistics)
    optimizer: dict[str, Any]
    scheduler: dict[str, Any] | None
    score: float | None


@dataclass
class Record:
    """What a member's single run would have logged and kept, collected while training."""

    rows: list[tuple[dict[str, float], int]] = field(default_factory=list)  # (metrics, step)
    metrics: dict[str, float] = field(default_factory=dict)  # as Lightning's callback_metrics
    best: Snapshot | None = None
    last: Snapshot | None = None
    bad: dict[str, Any] | None = None  # the first non-finite step, when it stopped there
    bad_steps: int = 0
    start_norm: float = 0.0
    epochs: int = 0
    steps: int = 0


class GroupFit:
    """Trains `members` (same structure, see vector_members.group_key) together."""

    def __init__(self, members: list[Member]):
        self.members = members
        # The structure the batched forward runs (its own copy: hooks on a member's net, such as
        # the statistics' dead-unit watch, must not see the batched tensors).
        self.net = copy.deepcopy(members[0].module.net)
        self.names = [names for names, _ in distinct_parameters(self.net)]
        shapes = [t.shape for _, t in distinct_parameters(self.net)]
        sizes = [math.prod(s) for s in shapes]
        offsets = [sum(sizes[:i]) for i in range(len(sizes))]
        self.slices = [slice(o, o + n) for o, n in zip(offsets, sizes, strict=True)]
        self.shapes = shapes
        n, total = len(members), sum(sizes)
        device = members[0].module.device
        self.flat = torch.empty(n, total, device=device)
        self.grad = torch.zeros(n, total, device=device)
        for i, member in enumerate(members):
            params = [t for _, t in distinct_parameters(member.module.net)]
            for param, where in zip(params, self.slices, strict=True):
                self.flat[i, where] = param.detach().reshape(-1)
                param.data = self.flat[i, where].view(param.shape)  # the member reads live
        # Each parameter of all members, (N, *shape): a leaf whose storage is its slice of
        # `flat` (the optimizer updates flat in place) and whose .grad is its slice of `grad`
        # (autograd accumulates into it in place), so neither side copies per step.
        self.leaves: dict[str, torch.Tensor] = {}
        for names, where, shape in zip(self.names, self.slices, shapes, strict=True):
            leaf = self.flat[:, where].view(n, *shape).requires_grad_(True)
            leaf.grad = self.grad[:, where].view(n, *shape)
            self.leaves[names[0]] = leaf
        self.tied = any(len(names) > 1 for names in self.names)
        every_name = {name: self.leaves[names[0]] for names in self.names for name in names}
        # Buffers likewise, (N, *shape) each; BatchNorm updates its members' rows in place.
        self.buffers: dict[str, torch.Tensor] = {}
        for name, _ in self.net.named_buffers():
            own = [m.module.net.get_buffer(name) for m in members]
            self.buffers[name] = torch.stack([b.detach() for b in own])
            for i, buffer in enumerate(own):
                buffer.data = self.buffers[name][i]
        # Per-parameter gradient norms of every member: one product (N, T)² @ (T, P) with a
        # 0/1 matrix for a small network (the fastest op there), a segmented sum for a large
        # one, where that matrix would take T·P floats (3.4 GB for a wide ResNet-18).
        self.segment: torch.Tensor | None = None
        self.lengths = torch.tensor(sizes, device=device).expand(n, -1).contiguous()
        if total * len(sizes) <= _DENSE_SEGMENT_MAX:
            self.segment = torch.zeros(total, len(sizes), device=device)
            for j, where in enumerate(self.slices):
                self.segment[where, j] = 1.0
        # The forward: the stacked network where its layers allow it, else vmap's (any module).
        self.stacked = stack(self.net, every_name, self.buffers, n)
        if isinstance(self.stacked, str):
            log.info("vectorized: the members run through torch.func.vmap: %s", self.stacked)
        self.optimizer = StackedOptimizer(self.flat, [m.optimizer for m in members], self.grad)
        self.records = [Record() for _ in members]
        self.stop_on_bad = torch.tensor([_stops(m) for m in members], device=device)[:, None]

    def grad_norms(self) -> torch.Tensor:
        """Each member's gradient norm per parameter, (N, P)."""
        squares = self.grad * self.grad
        if self.segment is not None:
            return (squares @ self.segment).sqrt()
        return torch.segment_reduce(squares, "sum", lengths=self.lengths, axis=1).sqrt()

    def member_params(self, i: int) -> list[torch.nn.Parameter]:
        return [t for _, t in distinct_parameters(self.members[i].module.net)]  # type: ignore[misc]

    def losses(self, x: torch.Tensor, y: torch.Tensor) -> Any:
        """Each member's loss (and accuracy, for a classifier) on its own batch: (N,) each."""
        classification = self.members[0].module.classification
        if isinstance(self.stacked, torch.nn.Module):
            return stacked_losses(self.stacked, x, y, classification)
        return self.vmapped_losses(x, y)

    def train_losses(self, x: torch.Tensor, y: torch.Tensor) -> Any:
        """`losses` with each member's gradients in `grad` (replaced, not added to)."""
        self.grad.zero_()
        if isinstance(self.stacked, Chain):
            done = self.stacked.train_losses(x, y, self.members[0].module.classification)
            if done is not None:
                return done
        return _backward(self.losses(x, y))

    def vmapped_losses(self, x: torch.Tensor, y: torch.Tensor) -> Any:
        classification = self.members[0].module.classification
        net, tied = self.net, self.tied

        def one(params: Any, buffers: Any, x: torch.Tensor, y: torch.Tensor) -> Any:
            out = functional_call(net, (params, buffers), (x,), tie_weights=tied)
            if not classification:
                return F.mse_loss(out, y), torch.zeros((), device=out.device)
            return F.cross_entropy(out, y), (out.argmax(-1) == y).float().mean()

        return vmap(one)(self.leaves, self.buffers, x, y)

    def train_mode(self, on: bool) -> None:
        """Training or evaluation mode (BatchNorm's batch or running statistics) for the
        forward, whichever runs it."""
        self.net.train(on)
        if isinstance(self.stacked, torch.nn.Module):
            self.stacked.train(on)

    def check_stacked(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """The stacked network's training step against vmap's on one batch: its losses and
        gradients, the buffers restored after each. They differ only if a layer mixes samples
        where the stacked network expects none, or the chain's hand-written backward is wrong
        (both are checked first, so this is a guard): the chain then trains through autograd,
        any other stacked network leaves the group on vmap."""
        if not isinstance(self.stacked, torch.nn.Module):
            return
        kept = {name: b.clone() for name, b in self.buffers.items()}
        x, y = x.clone(), y.clone()  # an in-place first layer must not write into the data
        results: list[tuple[torch.Tensor, torch.Tensor] | Exception] = []
        for step in (self.train_losses, self._vmapped_train_losses):
            try:
                losses = step(x, y)[0].detach()
                results.append((losses, self.grad.clone()))
            except Exception as e:  # the stacked path's fault, or vmap's to meet again later
                results.append(e)
            for name, b in self.buffers.items():
                b.copy_(kept[name])
        self.grad.zero_()
        fast, sure = results
        if isinstance(fast, Exception):
            log.warning("vectorized: the stacked network failed (%s); using vmap", fast)
            self.stacked = f"it failed on the first batch: {fast}"
            return
        if isinstance(sure, Exception):
            if isinstance(self.stacked, Chain):  # nothing checked its hand-written backward:
                self.stacked.manual = False  # autograd's, which fails as the single run's does
            return
        if not torch.allclose(fast[0], sure[0], rtol=1e-4, atol=1e-5, equal_nan=True):
            gap = float((fast[0] - sure[0]).abs().nan_to_num().max())
            log.warning(
                "vectorized: the stacked network's losses differ from vmap's by %.3g on the "
                "first batch; the members run through vmap",
                gap,
            )
            self.stacked = "its losses differ from vmap's on the first batch"
        elif not _same_gradients(fast[1], sure[1]):
            self._drop_fast_backward()
            self.check_stacked(x, y)  # once more, the chain now through autograd

    def _vmapped_train_losses(self, x: torch.Tensor, y: torch.Tensor) -> Any:
        self.grad.zero_()
        return _backward(self.vmapped_losses(x, y))

    def _drop_fast_backward(self) -> None:
        if isinstance(self.stacked, Chain) and self.stacked.manual:
            log.warning(
                "vectorized: the chain's hand-written backward differs from autograd's on the "
                "first batch; it trains through autograd"
            )
            self.stacked.manual = False
        else:
            log.warning(
                "vectorized: the stacked network's gradients differ from vmap's on the first "
                "batch; the members run through vmap"
            )
            self.stacked = "its gradients differ from vmap's on the first batch"

    def snapshot(self, i: int, epoch: int, step: int, score: float | None) -> Snapshot:
        member = self.members[i]
        self.optimizer.member_state(i, self.member_params(i), self.slices, step)
        return Snapshot(
            epoch=epoch,
            step=step,
            params=self.flat[i].detach().clone(),
            buffers={name: b[i].clone() for name, b in self.buffers.items()},
            optimizer=_copied(member.optimizer.state_dict()),
            scheduler=_copied(member.scheduler.state_dict()) if member.scheduler else None,
            score=score,
        )

    def start_stats(self) -> None:
        for member in self.members:
            assert member.spec.training is not None
            stats = member.spec.training.stats
            if stats.stats:
                member.stats = StatsRecorder(member.module.net, tuple(stats.stats), stats.plots)

    def objective(self) -> str:
        return DEFAULT_OBJECTIVE


def _backward(losses_and_accs: Any) -> Any:
    """Autograd's backward of the members' summed losses (their gradients are apart: each
    member's loss depends on its own parameters only)."""
    losses_and_accs[0].sum().backward()
    return losses_and_accs


def _same_gradients(fast: torch.Tensor, sure: torch.Tensor) -> bool:
    """Each member's gradients (rows) equal within round-off: non-finite in the same places,
    the rest within 1e-3 of the gradient's norm (sums over a batch in another order, a grouped
    convolution's other algorithm)."""
    finite = torch.isfinite(sure)
    if not torch.equal(torch.isfinite(fast), finite):
        return False
    fast, sure = fast.where(finite, 0), sure.where(finite, 0)
    gap = (fast - sure).norm(dim=1)
    return bool((gap <= 1e-3 * sure.norm(dim=1) + 1e-6).all())


def _stops(member: Member) -> bool:
    """Whether a non-finite step ends the member's run (stats.on_nan=stop)."""
    assert member.spec.training is not None
    return member.spec.training.stats.on_nan == "stop"


def _copied(state: Any) -> Any:
    """A deep copy of a state dict's tensors (the live ones go on changing)."""
    if isinstance(state, torch.Tensor):
        return state.detach().clone()
    if isinstance(state, dict):
        return {k: _copied(v) for k, v in state.items()}
    if isinstance(state, list):
        return [_copied(v) for v in state]
    return state
