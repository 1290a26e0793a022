"""The command that trains further from a checkpoint, valid as printed: every limit the
checkpoint has reached (the trainer group's max_epochs, max_steps) is raised in it, since a
resume that is already at its end is refused (runner.checkpoint.resume)."""

from pathlib import Path
from typing import Any

from runner.checkpoint import layout
from runner.checkpoint.files import safe_load
from runner.config.sections import TrainerSpec
from runner.rundir import resume_command


def resume_for(last: Path, trainer: TrainerSpec, saved: dict[str, Any] | None = None) -> str:
    """`saved`: `last` already read (the end of a run reads it once for several uses)."""
    saved = safe_load(last) if saved is None else saved
    epochs, steps = layout.epochs_done(saved), int(layout.global_step(saved))
    max_epochs, max_steps = trainer.max_epochs, trainer.max_steps
    raised: dict[str, int] = {}
    if isinstance(max_steps, int) and max_steps > 0 and steps >= max_steps:
        raised["trainer.max_steps"] = 2 * steps
    # Lightning counts an epoch that max_steps cut short as processed: its limit is reached too.
    if isinstance(max_epochs, int) and max_epochs > 0 and epochs >= max_epochs:
        raised["trainer.max_epochs"] = 2 * epochs
    if not raised:
        return resume_command(last, "continues to the configured end")
    if list(raised) == ["trainer.max_epochs"]:
        note = f"{_more(epochs, 'epoch')}; set trainer.max_epochs"
    elif list(raised) == ["trainer.max_steps"]:
        note = f"{_more(steps, 'step')}; set trainer.max_steps"
    else:
        note = "max_steps and max_epochs were reached: both raised"
    return resume_command(last, note, raised)


def _more(n: int, unit: str) -> str:
    return f"{n} more {unit}{'' if n == 1 else 's'}"
