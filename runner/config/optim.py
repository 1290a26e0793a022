"""The optim section: `optimizer` and `scheduler` are `_partial_` Hydra targets, each resolved
to its class with Hydra's own `get_class` (nothing is instantiated), its arguments checked
against the constructor's signature and, for the usual ones, their values."""

from typing import Any

import torch

from runner.config.arguments import check_arguments
from runner.config.classes import class_at, classes_in
from runner.config.values import Check, Number, Pair, show
from runner.errors import Problems, did_you_mean, one_of

# Values torch checks only when it builds the optimizer (with a traceback), or never (momentum
# above 1 diverges quietly). Any optimizer class taking one of these names gets its check.
OPTIMIZER_VALUES: dict[str, Check] = {
    "lr": Number(lo=0),
    "weight_decay": Number(lo=0),
    "momentum": Number(lo=0, hi=1),
    "eps": Number(lo=0),
    "betas": Pair(Number(lo=0, hi=1, hi_open=True)),
}
# The same for schedulers: torch takes StepLR(step_size=-1) or gamma=nan and schedules nonsense.
SCHEDULER_VALUES: dict[str, Check] = {
    "step_size": Number(lo=1, integer=True),
    "gamma": Number(lo=0, lo_open=True),
    "T_max": Number(lo=1),
    "eta_min": Number(lo=0),
    "factor": Number(lo=0, hi=1, lo_open=True, hi_open=True),
    "patience": Number(lo=0, integer=True),
}
_SCHEDULERS = (torch.optim.lr_scheduler.LRScheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
# (key, what it must be, its base classes, where to look for a close match, what the runner
# passes itself: it calls optimizer(params=...) and scheduler(optimizer)).
_TARGETS = (
    (
        "optimizer",
        "a torch.optim.Optimizer subclass",
        (torch.optim.Optimizer,),
        "torch.optim",
        "params",
    ),
    (
        "scheduler",
        "a torch.optim.lr_scheduler.LRScheduler subclass or ReduceLROnPlateau",
        _SCHEDULERS,
        "torch.optim.lr_scheduler",
        "optimizer",
    ),
)


def check_optim(optim: dict[str, Any], problems: Problems) -> None:
    """Problems in the optim section: its targets, their arguments and values."""
    problems.unknown_keys("optim", optim, [key for key, *_ in _TARGETS])
    for key, kind, bases, home, supplied in _TARGETS:
        raw = optim.get(key)
        if key == "scheduler" and not raw:  # none: the learning rate stays as it is
            continue
        path = f"optim.{key}"
        if not (isinstance(raw, dict) and isinstance(raw.get("_target_"), str)):
            problems.add(
                path,
                f"expected a _partial_ target such as {{_target_: {home}.<class>, _partial_: "
                f"true, ...}}; got {show(raw)}",
            )
            continue
        kwargs = {k: v for k, v in raw.items() if k not in ("_target_", "_partial_")}
        if raw.get("_partial_") is not True:
            problems.add(
                f"{path}._partial_",
                f"must be true: the runner passes {supplied} itself; "
                f"got {show(raw.get('_partial_'))}",
            )
        cls = resolve_class(raw["_target_"], f"{path}._target_", kind, bases, home, problems)
        if cls is None:
            continue
        values = OPTIMIZER_VALUES if key == "optimizer" else SCHEDULER_VALUES
        label = cls.__name__
        checked = check_arguments(
            cls, kwargs, path, label, problems, hidden=(supplied,), values=values
        )
        for name in checked[1] if checked else []:
            problems.add(f"{path}.{name}", f"{label} needs {name!r}; it is missing")


def resolve_class(
    target: str, path: str, kind: str, bases: tuple[type, ...], home: str, problems: Problems
) -> type | None:
    """The class `target` names, or None with a problem (and the closest class in its module)."""
    try:
        cls = class_at(target)
    except ValueError:  # found, but not a class (a function, a module)
        problems.add(path, f"not {kind}; got {target!r}, which is not a class; allowed: {kind}")
        return None
    except Exception:  # ImportError, or whatever importing the module raised: not found
        module, _, _ = target.rpartition(".")
        candidates = _classes(module, bases) or _classes(home, bases)
        names = one_of(c.rpartition(".")[2] for c in _classes(home, bases))
        problems.add(
            path,
            f"cannot import {target!r}; allowed: {kind} ({names}) or "
            "your own by dotted path" + did_you_mean(target, candidates),
        )
        return None
    if not issubclass(cls, bases):
        problems.add(
            path,
            f"not {kind}; got {target!r}, the class {cls.__module__}.{cls.__qualname__}; "
            f"allowed: {kind}",
        )
        return None
    return cls


def _classes(module_name: str, bases: tuple[type, ...]) -> list[str]:
    """Dotted names of the public `bases` subclasses in a module (not the base itself)."""
    return classes_in(module_name, lambda c: issubclass(c, bases) and c is not bases[0])
