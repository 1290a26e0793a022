"""The epochs of a vectorized group: each member's batches in its single run's order, one step
for all, validation, the epoch's records and checkpoint states, the schedulers. Host reads are
few: the metrics when they are logged, the validation scores once per epoch."""

import time
import warnings
from collections.abc import Callable
from typing import Any

import torch

from runner.params.recorder import StatsRecorder
from runner.train.module import Running
from runner.train.vector_fit import GroupFit

_LIGHTNING_MAX_EPOCHS = 1000  # Lightning's default when neither max_epochs nor max_steps is set


class _State:
    """The loop's running state on the device: who is still training, and the first bad step."""

    def __init__(self, group: GroupFit):
        n, device = len(group.members), group.flat.device
        self.active = torch.ones(n, 1, dtype=torch.bool, device=device)
        self.bad_step = torch.full((n,), -1, dtype=torch.long, device=device)
        self.bad_row = torch.zeros(n, len(group.names) + 1, device=device)
        self.bad_count = torch.zeros(n, dtype=torch.long, device=device)
        self.norms: torch.Tensor | None = None
        self.step = 0
        self.running = Running(logged_at=0)


def fit(group: GroupFit, stop: Callable[[], None] = lambda: None) -> float:
    """Train every member of `group` for its epochs; returns the seconds it took. `stop` is
    called at every epoch's end: it raises to end the training there (a signal to the sweep)."""
    start = time.perf_counter()
    with warnings.catch_warnings():  # gradients are slices of one buffer, by design
        warnings.filterwarnings("ignore", message="grad and param do not obey")
        # The stacked optimizer steps the members' parameters, not their own optimizers, whose
        # schedulers then warn at every epoch's step that they run first (they do not)
        warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)`")
        run_epochs(group, stop)
    return time.perf_counter() - start


def run_epochs(group: GroupFit, stop: Callable[[], None]) -> None:
    members = group.members
    first = members[0]
    training = first.spec.training
    assert training is not None
    epochs = training.trainer.max_epochs or _LIGHTNING_MAX_EPOCHS
    device = group.flat.device
    splits = {name: _stacked(members, name, device) for name in ("train", "val")}
    state = _State(group)
    size = first.data.batch_size
    group.check_stacked(splits["train"][0][:, :size], splits["train"][1][:, :size])
    group.start_stats()
    for i, member in enumerate(members):
        group.records[i].start_norm = float(group.flat[i].detach().norm())
        if member.stats is not None:
            _record_stats(group, i, state, init=True)
    stats_at = [0] * len(members)
    for epoch in range(epochs):
        _train_epoch(group, state, splits["train"], epoch, stats_at, final=epoch == epochs - 1)
        scores = _validate(group, splits["val"])
        _end_epoch(group, state, epoch, scores)
        stop()
        if not bool(state.active.any()):
            break
    _finish(group, state, stats_at)


def _stacked(
    members: list[Any], split: str, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every member's split, (N, n, ...): each member has its own (its seed draws it)."""
    parts = [m.data.tensors(split, device) for m in members]
    return torch.stack([x for x, _ in parts]), torch.stack([y for _, y in parts])


def _train_epoch(
    group: GroupFit,
    state: _State,
    train: tuple[torch.Tensor, torch.Tensor],
    epoch: int,
    stats_at: list[int],
    final: bool,
) -> None:
    X, Y = train
    members = group.members
    n, count = len(members), X.shape[1]
    orders = torch.stack(
        [
            torch.randperm(
                count, generator=torch.Generator().manual_seed(m.data.seed * 100_003 + epoch)
            )
            for m in members
        ]
    ).to(X.device)
    rows = torch.arange(n, device=X.device)[:, None]
    size = members[0].data.batch_size
    state.running.new_epoch()
    for start in range(0, count, size):
        idx = orders[:, start : start + size]
        x, y = X[rows, idx], Y[rows, idx]
        due = [_stats_due(m, state.step + 1, stats_at[i]) for i, m in enumerate(members)]
        last = final and start + size >= count  # the final record's dead units: its forward
        _arm_relus(group, [d or last for d in due], x)
        _step(group, state, x, y)
        for i in range(n):
            if due[i]:
                stats_at[i] = state.step
                _record_stats(group, i, state)
        if state.step - state.running.logged_at >= members[0].module.log_every:
            _log_running(group, state)


def _step(group: GroupFit, state: _State, x: torch.Tensor, y: torch.Tensor) -> None:
    kept = {name: b.clone() for name, b in group.buffers.items()}  # a stopped member's stay
    losses, accs = group.train_losses(x, y)
    norms = group.grad_norms()  # (N, P): each parameter's gradient norm
    row = torch.cat([norms, losses.detach()[:, None]], dim=1)
    bad = state.active & ~torch.isfinite(row).all(1, keepdim=True)  # (N, 1)
    # A member that stops on a bad step is still active only until its first one: `first`.
    first = bad & group.stop_on_bad
    state.bad_step = torch.where(first[:, 0], state.step, state.bad_step)
    state.bad_row = torch.where(first, row, state.bad_row)
    state.bad_count += bad[:, 0]
    state.active = state.active & ~first
    metrics = {"loss": losses.detach()}
    if group.members[0].module.classification:
        metrics["acc"] = accs.detach()
    state.running.add(metrics)
    group.optimizer.step(state.active)
    for name, buffer in group.buffers.items():
        active = state.active.view(-1, *([1] * (buffer.dim() - 1)))
        buffer.copy_(torch.where(active, buffer, kept[name]))
    state.norms = norms.detach()
    state.step += 1


def _log_running(group: GroupFit, state: _State) -> None:
    means = state.running.flush(state.step)
    if not means:
        return
    values = torch.stack(list(means.values())).tolist()  # (metrics, N): one host read
    for i, record in enumerate(group.records):
        row = {f"train/{name}_step": v[i] for name, v in zip(means, values, strict=True)}
        record.rows.append((row, state.step))


def _stats_due(member: Any, step: int, last: int) -> bool:
    every = member.spec.training.stats.every_n_steps
    return member.stats is not None and bool(every) and step - last >= every


def _arm_relus(group: GroupFit, due: list[bool], x: torch.Tensor) -> None:
    """A record's dead-unit shares come from the forward of the step it follows: run it for
    each member due (its own net, its own batch) with the hooks armed."""
    for i, member in enumerate(group.members):
        stats: StatsRecorder | None = member.stats
        if due[i] and stats is not None and stats.relus is not None:
            stats.relus.armed = True
            kept = {name: b[i].clone() for name, b in group.buffers.items()}
            with torch.no_grad():
                member.module.net(x[i].clone())  # in training mode, as its step's forward
                # (on a copy: a first layer in place would write into the step's batch)
                for name, b in group.buffers.items():  # which already fed BatchNorm
                    b[i].copy_(kept[name])


def _record_stats(group: GroupFit, i: int, state: _State, init: bool = False) -> None:
    stats = group.members[i].stats
    assert stats is not None
    norms = None if init or state.norms is None else state.norms[i]
    new, logged = stats.record(state.step, norms, init)
    group.members[i].findings += stats.findings(new)
    if logged:
        group.records[i].rows.append((logged, state.step))


@torch.no_grad()
def _validate(group: GroupFit, val: tuple[torch.Tensor, torch.Tensor]) -> list[dict[str, float]]:
    """Each member's validation metrics: means over its val split, batch means weighted by the
    batch's size (as Lightning's epoch means)."""
    X, Y = val
    count, size = X.shape[1], group.members[0].data.batch_size
    if count == 0:
        return [{} for _ in group.members]
    totals: dict[str, torch.Tensor] = {}
    group.train_mode(False)  # as Lightning validates: BatchNorm on its running statistics
    for start in range(0, count, size):
        # a copy of the split's rows: a first layer in place writes into them
        x, y = X[:, start : start + size].clone(), Y[:, start : start + size]
        losses, accs = group.losses(x, y)
        weight = x.shape[1]
        parts = {"loss": losses} | ({"acc": accs} if group.members[0].module.classification else {})
        for name, value in parts.items():
            totals[name] = totals.get(name, 0) + value * weight
    group.train_mode(True)
    names = list(totals)
    values = (torch.stack([totals[k] for k in names]) / count).tolist()
    return [
        {f"val/{k}": v[i] for k, v in zip(names, values, strict=True)}
        for i in range(len(group.members))
    ]


def _end_epoch(group: GroupFit, state: _State, epoch: int, scores: list[dict[str, float]]) -> None:
    """Log the epoch's rows, keep the best and last states, step the schedulers (as Lightning
    orders them: validation, the best checkpoint, the epoch's means, last.ckpt, schedulers)."""
    state.running.flush(state.step)
    means = state.running.epoch_means()
    names, values = list(means), torch.stack(list(means.values())).tolist() if means else []
    active = state.active[:, 0].tolist()
    for i, (member, record) in enumerate(zip(group.members, group.records, strict=True)):
        if not active[i]:  # stopped at a non-finite step: its run ended there
            continue
        raw = scores[i].get(group.objective())
        score = _ranked(raw)
        epoch_means = {f"train/{k}": v[i] for k, v in zip(names, values, strict=True)}
        if scores[i]:
            record.rows.append(({**scores[i], "epoch": epoch}, state.step - 1))
        record.rows.append(({**epoch_means, "epoch": epoch}, state.step - 1))
        record.metrics = {**epoch_means, **scores[i]}
        record.epochs, record.steps = epoch + 1, state.step
        plateau = isinstance(member.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
        if member.scheduler is not None and not plateau:
            member.scheduler.step()  # Lightning steps these before the epoch's checkpoints
        if score is not None and (
            record.best is None or record.best.score is None or score < record.best.score
        ):
            record.best = group.snapshot(i, epoch, state.step, score)
        record.last = group.snapshot(i, epoch, state.step, score)
        if plateau and member.scheduler is not None:
            member.scheduler.step(raw)  # after them, with the epoch's validation score


def _ranked(score: float | None) -> float | None:
    """The score as Lightning's ModelCheckpoint ranks it (mode min): NaN counts as +inf, so the
    first epoch's checkpoint is kept even when its validation loss is NaN."""
    return float("inf") if score is not None and score != score else score


def _finish(group: GroupFit, state: _State, stats_at: list[int]) -> None:
    """The final statistics records, and what stopped a member."""
    bad_steps = state.bad_step.tolist()
    bad_rows = state.bad_row.tolist()
    counts = state.bad_count.tolist()
    for i, (member, record) in enumerate(zip(group.members, group.records, strict=True)):
        record.bad_steps = counts[i]
        if bad_steps[i] >= 0:
            record.bad = {"step": bad_steps[i], "row": bad_rows[i]}
            continue
        if member.stats is not None and stats_at[i] != state.step:
            _record_stats(group, i, state)
