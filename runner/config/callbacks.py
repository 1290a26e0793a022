"""The callbacks group: the user's Lightning callbacks next to the runner's own, by `_target_`,
checked like every other section before anything is built.

    callbacks=[early_stopping,lr_monitor]      # shipped options, combined
    +callbacks.mine._target_=mypkg.MyCallback  # your own

Each option sits under its own name (`callbacks.early_stopping`), so options combine and any
of them can be switched off with `callbacks.early_stopping=null`.
"""

from typing import Any

from runner.config.arguments import check_arguments
from runner.config.data import data_task
from runner.config.optim import resolve_class
from runner.config.values import show
from runner.errors import Problems, did_you_mean, one_of

HOME = "pytorch_lightning.callbacks"


def check_callbacks(section: Any, data: Any, trainer: Any, problems: Problems) -> None:
    """Problems in the callbacks section: what each target is, its arguments, and the metric
    a monitoring callback watches (one the run logs)."""
    if section is None:
        return
    if not isinstance(section, dict):
        problems.add(
            "callbacks",
            f"expected callbacks by name, e.g. callbacks=[early_stopping]; got {show(section)}",
        )
        return
    import pytorch_lightning as pl  # only when a task trains: task=inspect stays light

    logged = logged_metrics(data, trainer)
    unvalidated = no_validation(data, trainer)
    for name, raw in section.items():
        path = f"callbacks.{name}"
        if raw is None:  # switched off: callbacks.early_stopping=null
            continue
        if not (isinstance(raw, dict) and isinstance(raw.get("_target_"), str)):
            problems.add(path, f"expected {{_target_: {HOME}.<class>, ...}}; got {show(raw)}")
            continue
        kind = "a Lightning callback"
        cls = resolve_class(
            raw["_target_"], f"{path}._target_", kind, (pl.Callback,), HOME, problems
        )
        if cls is None:
            continue
        kwargs = {k: v for k, v in raw.items() if k != "_target_"}
        checked = check_arguments(cls, kwargs, path, cls.__name__, problems)
        for missing in checked[1] if checked else []:
            problems.add(f"{path}.{missing}", f"{cls.__name__} needs {missing!r}; it is missing")
        monitor = kwargs.get("monitor")
        if isinstance(monitor, str) and monitor not in logged:
            why = f" ({unvalidated}: no validation)" if unvalidated and "val/" in monitor else ""
            problems.add(
                f"{path}.monitor",
                f"the run logs no {monitor!r}{why}; it logs: {one_of(logged)}"
                + did_you_mean(monitor, logged),
            )


def no_validation(data: Any, trainer: Any) -> str | None:
    """The setting that leaves the run without a validation stage, or None when it has one:
    nothing then logs `val/…`, so nothing may watch it."""
    if isinstance(data, dict) and data.get("val_fraction") == 0:
        return "data.val_fraction=0"
    if isinstance(trainer, dict) and trainer.get("limit_val_batches") == 0:
        return "trainer.limit_val_batches=0"
    return None


def logged_metrics(data: Any, trainer: Any = None) -> tuple[str, ...]:
    """The metrics a callback can watch: the epoch means the module logs, by split."""
    splits = ("train",) if no_validation(data, trainer) else ("train", "val")
    names = ["loss"]
    try:
        task = data_task(data) if isinstance(data, dict) else None
        if task == "classification":
            names.append("acc")
    except Exception:  # a data problem is reported by the data check
        pass
    return tuple(f"{split}/{n}" for split in splits for n in names)
