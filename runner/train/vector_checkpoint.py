"""A member's checkpoint, as its single run's Lightning writes it at an epoch's end: the same
keys, the same loop counters, the optimizer and scheduler state in torch's layout, the same
callback states. So `runner.load`, task=eval and task=export read it, and a single run resumes
from it, as from the single run's own file. (Lightning's layout is pinned by a test that
compares the two files key by key.)"""

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from runner.checkpoint.files import atomic_save
from runner.train.callbacks.checkpoints import RNGState
from runner.train.module import RunnerModule


def _progress(n: int, started: bool = True, processed: bool = True) -> dict[str, int]:
    counts = {"ready": n, "completed": n}
    if started:
        counts["started"] = n
    if processed:
        counts["processed"] = n
    return counts


def _batch_progress(total: int, current: int, last: bool) -> dict[str, Any]:
    return {"total": _progress(total), "current": _progress(current), "is_last_batch": last}


def _idle_loop(last_key: bool = True) -> dict[str, Any]:
    progress: dict[str, Any] = {"total": _progress(0), "current": _progress(0)}
    if last_key:
        progress["is_last_batch"] = False
    return {"state_dict": {}, "batch_progress": progress}


def fit_loop_state(
    epoch: int,
    step: int,
    per_epoch: int,
    val_batches: int,
    scheduled: bool,
    done: int | None = None,
) -> dict[str, Any]:
    """Lightning's fit-loop counters at the end of epoch `epoch` (from 0), after `step` optimizer
    steps of `per_epoch` batches each, a validation of `val_batches` batches, and (`scheduled`)
    an epoch-interval scheduler stepped once per epoch. `done`: batches done in epoch `epoch`
    when it stopped part-way (a member's last-good state)."""
    if done is not None and done < per_epoch:
        return _part_way(epoch, step, done, val_batches if epoch else 0, scheduled)
    epochs = epoch + 1
    optimizer = {
        "step": {
            "total": _progress(step, False, False),
            "current": _progress(per_epoch, False, False),
        },
        "zero_grad": {
            "total": _progress(step, processed=False),
            "current": _progress(per_epoch, processed=False),
        },
    }
    schedules = epochs if scheduled else 0
    return {
        "state_dict": {"combined_loader": [{"epoch": epoch, "done": per_epoch}]},
        "epoch_loop.state_dict": {"_batches_that_stepped": step},
        "epoch_loop.batch_progress": _batch_progress(step, per_epoch, True),
        "epoch_loop.scheduler_progress": {
            "total": _progress(schedules, False, False),
            "current": _progress(1 if scheduled else 0, False, False),
        },
        "epoch_loop.automatic_optimization.state_dict": {},
        "epoch_loop.automatic_optimization.optim_progress": {"optimizer": optimizer},
        "epoch_loop.manual_optimization.state_dict": {},
        "epoch_loop.manual_optimization.optim_step_progress": {
            "total": _progress(0, False, False),
            "current": _progress(0, False, False),
        },
        "epoch_loop.val_loop.state_dict": {},
        "epoch_loop.val_loop.batch_progress": _batch_progress(
            val_batches, val_batches, val_batches > 0
        ),
        "epoch_progress": {
            "total": {"ready": epochs, "completed": epoch, "started": epochs, "processed": epochs},
            "current": {
                "ready": epochs,
                "completed": epoch,
                "started": epochs,
                "processed": epochs,
            },
        },
    }


def _part_way(epoch: int, step: int, done: int, val_batches: int, scheduled: bool):
    state = fit_loop_state(epoch - 1, step, max(done, 1), val_batches, scheduled) if epoch else None
    state = state or fit_loop_state(0, step, max(done, 1), 0, False)
    state["state_dict"] = {"combined_loader": [{"epoch": epoch, "done": done}]}
    state["epoch_loop.batch_progress"] = _batch_progress(step, done, False)
    counts = {"ready": epoch + 1, "completed": epoch, "started": epoch + 1, "processed": epoch}
    state["epoch_progress"] = {"total": counts, "current": dict(counts)}
    return state


def member_checkpoint(
    module: RunnerModule,
    params: torch.Tensor,
    at: Any,
    callbacks: dict[str, Any],
    counts: tuple[int, int, bool],
) -> dict[str, Any]:
    """The checkpoint dict of `module` with its net's parameters set to `params` (a snapshot's
    flat row), at snapshot `at`. `counts`: (batches per epoch, validation batches, whether a
    scheduler steps per epoch)."""
    per_epoch, val_batches, scheduled = counts
    return {
        "epoch": at.epoch,
        "global_step": at.step,
        "pytorch-lightning_version": pl.__version__,
        "state_dict": _state_with(module, params, at.buffers),
        "loops": {
            "fit_loop": fit_loop_state(at.epoch, at.step, per_epoch, val_batches, scheduled),
            "validate_loop": _idle_loop(),
            "test_loop": _idle_loop(),
            "predict_loop": _idle_loop(last_key=False),
        },
        "callbacks": {"RNGState": RNGState().state_dict(), **callbacks},
        "optimizer_states": [at.optimizer],
        "lr_schedulers": [at.scheduler] if at.scheduler is not None else [],
        "hparams_name": None,
        "hyper_parameters": dict(module.hparams),
    }


def _state_with(
    module: RunnerModule, params: torch.Tensor, buffers: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """The module's state_dict with its distinct parameters read from `params`, in order (tied
    names share one tensor, as in the module), and its net's buffers from `buffers`."""
    from runner.params.tensors import distinct_parameters

    state = module.state_dict()
    offset, shared = 0, {}
    for names, tensor in distinct_parameters(module.net):
        size = tensor.numel()
        value = params[offset : offset + size].view(tensor.shape).clone()
        offset += size
        for name in names:
            shared["net." + name] = value
    shared |= {"net." + name: value.clone() for name, value in buffers.items()}
    return {k: shared.get(k, v) for k, v in state.items()}


def write(checkpoint: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_save(checkpoint, path)
    return path
