"""Resuming from a checkpoint with a config that may differ from the one it was trained with.

The config wins where it can, and says so: changed optimizer hyperparameters (lr, momentum,
weight decay, …) replace the checkpoint's before Lightning restores the optimizer (with a
schedule running, its progress is kept: the scheduled lr scales with the new base lr); a
change of fast mode (`trainer.steps_per_batch`) keeps the optimizer-step count. What cannot
carry over is refused before training starts: another optimizer or scheduler class (their
state means something else), a fast-mode change in the middle of an epoch, and a checkpoint
that has already reached the configured end.
"""

import logging
from typing import Any

from runner.checkpoint import layout
from runner.checkpoint.files import check_state_dict
from runner.config.sections import OptimSpec, TrainingSpec

log = logging.getLogger("runner")

_NOT_HYPERPARAMETERS = ("_target_", "_partial_", "_convert_", "_recursive_", "_args_")


def check_resume(module: Any, checkpoint: dict[str, Any], training: TrainingSpec) -> list[str]:
    """Every reason `checkpoint` cannot resume into `module` trained as `training` says."""
    # Raises on its own: a model that does not fit is no resume problem among others.
    check_state_dict(module.state_dict(), layout.module_state(checkpoint), "ckpt_path")
    damage = _damaged(checkpoint) or _misshapen_state(checkpoint, list(module.parameters()))
    if damage:
        return [f"ckpt_path: cannot be resumed: {damage}"]
    old = layout.embedded_config(checkpoint)
    problems = []
    for part in ("optimizer", "scheduler"):
        was, now = _target(old, part), _spec_target(training.optim, part)
        if was is not None and now is not None and was != now:
            problems.append(
                f"optim.{part}._target_: the checkpoint was trained with {was} and this config "
                f"uses {now}; its {part} state does not carry over to another class. Resume "
                f"with optim.{part}._target_={was}"
            )
    was_k, now_k = _steps_per_batch(old), training.trainer.steps_per_batch
    if was_k != now_k and not layout.at_epoch_end(checkpoint):
        problems.append(
            f"trainer.steps_per_batch: the checkpoint was taken in the middle of an epoch with "
            f"steps_per_batch={was_k}; resume with trainer.steps_per_batch={was_k} (a change "
            "is fine from a checkpoint taken at an epoch's end)"
        )
    if old.get("data") != training.data.section and not layout.at_epoch_end(checkpoint):
        problems.append(
            "data: the checkpoint was taken in the middle of an epoch with other data settings "
            f"({_differences(old.get('data'), training.data.section)}); the epoch's position would "
            "mean other samples. Resume with the checkpoint's data settings to finish the epoch"
        )
    reached = limit_reached(checkpoint, training.trainer.max_epochs, training.trainer.max_steps)
    if reached is not None:
        name, limit, done = reached
        unit = name.removeprefix("max_")
        problems.append(
            f"ckpt_path: already at {name}={limit} ({done} {unit} done); raise "
            f"trainer.{name} to train further, e.g. trainer.{name}={2 * done}"
        )
    return problems


def limit_reached(
    checkpoint: dict[str, Any], max_epochs: Any, max_steps: Any
) -> tuple[str, int, int] | None:
    """The trainer limit `checkpoint` is already at ("max_epochs" or "max_steps", the limit,
    how many are done), where resuming from it would train nothing; None when it is not."""
    epochs_done, steps_done = layout.epochs_done(checkpoint), int(layout.global_step(checkpoint))
    if isinstance(max_epochs, int) and max_epochs >= 0 and epochs_done >= max_epochs:
        return "max_epochs", max_epochs, epochs_done
    if isinstance(max_steps, int) and max_steps > 0 and steps_done >= max_steps:
        return "max_steps", max_steps, steps_done
    return None


def carry_over(checkpoint: dict[str, Any], optim: OptimSpec, automatic: bool) -> None:
    """Rewrite `checkpoint` (as Lightning is about to restore it) so that what the config says
    wins: its optimizer hyperparameters (`optim`), and the step count under the current fast
    mode."""
    old = layout.embedded_config(checkpoint)
    was = {k: v for k, v in _section(old, "optimizer").items() if k not in _NOT_HYPERPARAMETERS}
    now = {k: v for k, v in optim.optimizer.items() if k not in _NOT_HYPERPARAMETERS}
    changed = {k: v for k, v in now.items() if was.get(k) != v}
    schedulers = checkpoint.get("lr_schedulers") or []
    for state in layout.optimizer_states(checkpoint):
        for group in state.get("param_groups", []):
            for key, value in changed.items():
                if (
                    key == "lr"
                    and schedulers
                    and isinstance(was.get("lr"), int | float)
                    and was["lr"]
                ):
                    value = group["lr"] * value / was["lr"]  # keep the schedule's progress
                if key in group:
                    group[key] = tuple(value) if isinstance(group[key], tuple) else value
            if "lr" in changed and "initial_lr" in group:
                group["initial_lr"] = changed["lr"]
    if "lr" in changed:
        for scheduler in schedulers:
            if "base_lrs" in scheduler:
                scheduler["base_lrs"] = [changed["lr"]] * len(scheduler["base_lrs"])
    for key, value in changed.items():
        log.info(
            "resume: optim.optimizer.%s is %r in the checkpoint and %r in the config: the config "
            "wins",
            key,
            was.get(key),
            value,
        )
    _count_steps_as(checkpoint, automatic)
    _forget_paths(checkpoint)


# ModelCheckpoint states name files it may later delete (Lightning removes a former "best" as a
# better one is saved, recursively, and treats other URL schemes as removable). A resumed run
# writes into a new directory and keeps its own: the file paths in the checkpoint are dropped.
_PATH_KEYS = ("best_model_path", "kth_best_model_path", "last_model_path", "dirpath")


def _forget_paths(checkpoint: dict[str, Any]) -> None:
    for state in layout.callback_states(checkpoint).values():
        if isinstance(state, dict):
            for key in _PATH_KEYS:
                if key in state:
                    state[key] = ""
            if "best_k_models" in state:
                state["best_k_models"] = {}


def _count_steps_as(checkpoint: dict[str, Any], automatic: bool) -> None:
    """Lightning counts optimizer steps in one counter per optimization mode (automatic for the
    default, manual for fast mode): give the current mode's counter the checkpoint's count."""
    loop = layout.fit_loop(checkpoint)
    key = (
        "epoch_loop.automatic_optimization.optim_progress"
        if automatic
        else "epoch_loop.manual_optimization.optim_step_progress"
    )
    if key not in loop:
        return
    total = loop[key]["optimizer"]["step"]["total"] if automatic else loop[key]["total"]
    total["ready"] = total["completed"] = layout.global_step(checkpoint)


def _differences(was: Any, now: Any) -> str:
    was, now = was if isinstance(was, dict) else {}, now if isinstance(now, dict) else {}
    keys = [k for k in {**was, **now} if was.get(k) != now.get(k)]
    return ", ".join(f"data.{k}: {was.get(k)!r} then, {now.get(k)!r} now" for k in keys)


def _damaged(checkpoint: dict[str, Any]) -> str:
    """What is wrong with the training state the resume would restore (its counters and the
    optimizer's numbers), or "". Lightning itself restores the rest and its errors are caught."""
    step = layout.global_step(checkpoint)
    if not _is_count(step):
        return f"global_step is {step!r}, not a step count"
    progress = layout.epoch_progress(checkpoint)
    for part in ("total", "current"):
        for key, value in (progress.get(part) or {}).items():
            if not _is_count(value):
                return f"the epoch counter {part}.{key} is {value!r}, not a count"
    for i, state in enumerate(layout.optimizer_states(checkpoint)):
        groups = state.get("param_groups", []) if isinstance(state, dict) else None
        for group in groups if isinstance(groups, list) else [None]:
            if not isinstance(group, dict):
                return f"optimizer state {i} has no parameter groups"
            for key, value in group.items():
                numbers = value if isinstance(value, list | tuple) else [value]
                if key != "params" and any(isinstance(v, str | dict) for v in numbers):
                    return f"the optimizer's {key} is {value!r}, not a number"
    return ""


def _is_count(value: Any) -> bool:
    """A counter Lightning can hold: an integer from 0 to what a 64-bit tensor stores."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63


def _misshapen_state(checkpoint: dict[str, Any], parameters: list[Any]) -> str:
    """An optimizer state tensor (Adam's moments, SGD's momentum) whose shape is not its
    parameter's: torch would fail only at the first step, in the middle of the fit."""
    for state in layout.optimizer_states(checkpoint):
        per_parameter = state.get("state") if isinstance(state, dict) else None
        for index, values in (per_parameter or {}).items():
            if not (isinstance(index, int) and 0 <= index < len(parameters)):
                return f"the optimizer holds state for parameter {index!r} of {len(parameters)}"
            expected = tuple(parameters[index].shape)
            for name, value in (values or {}).items() if isinstance(values, dict) else ():
                shape = tuple(getattr(value, "shape", ()))
                if shape and shape != expected:
                    return (
                        f"the optimizer's {name} of parameter {index} has shape {list(shape)}, "
                        f"the parameter {list(expected)}"
                    )
    return ""


def _section(config: dict[str, Any], part: str) -> dict[str, Any]:
    optim = config.get("optim") or {}
    section = optim.get(part) if isinstance(optim, dict) else None
    return section if isinstance(section, dict) else {}


def _target(config: dict[str, Any], part: str) -> str | None:
    target = _section(config, part).get("_target_")
    return str(target) if target is not None else None


def _steps_per_batch(config: dict[str, Any]) -> int:
    return int((config.get("trainer") or {}).get("steps_per_batch") or 1)


def _spec_target(optim: OptimSpec, part: str) -> str | None:
    section = optim.optimizer if part == "optimizer" else optim.scheduler
    target = (section or {}).get("_target_")
    return str(target) if target is not None else None
