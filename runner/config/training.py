"""The training sections → problems found before anything runs: data, optimizer, trainer,
statistics and logger, and the device's strategy. The trainer group is checked against
Lightning's own `Trainer` signature and the strategy against Lightning's registry; Lightning is
imported for that only when the task trains (task=inspect never loads it)."""

from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig

from runner.config.callbacks import check_callbacks, no_validation
from runner.config.data import check_data
from runner.config.device import DeviceSpec
from runner.config.loggers import LOGGERS, check_loggers
from runner.config.optim import check_optim
from runner.config.sections import DEFAULT_OBJECTIVE
from runner.config.trainer import check_trainer
from runner.config.values import UNRESOLVED, resolve, show
from runner.errors import Problems, did_you_mean, one_of

VALUE_STATS = ("mean", "std", "min", "max", "norm", "zero_frac", "nonfinite")
# What `stats.stats` may list. dead_units: per ReLU layer, the share of units that output 0 for
# a whole batch (measured on the batches a record follows).
ALL_STATS = (*VALUE_STATS, "grad_norm", "update_ratio", "dead_units")
ON_NAN = ("stop", "warn")  # what the NaN/Inf guard does

# Each training group's default option (conf/config.yaml), to suggest when none is chosen.
DEFAULTS = {
    "data": "random",
    "optim": "sgd",
    "trainer": "default",
    "stats": "default",
    "logger": "csv",
}


def check_training(cfg: DictConfig, problems: Problems, device: DeviceSpec) -> None:
    """Problems in the data, optim, trainer, stats and logger groups and the device's strategy,
    found before anything runs."""
    # Only for a training run: inspect never loads Lightning.
    from pytorch_lightning.strategies import StrategyRegistry

    # Lightning's names, not a list of ours: the installed version and any strategy a user
    # registered are what the Trainer will accept. Checked for training only (the only task
    # that uses a strategy), as importing Lightning is what task=inspect must not do. Exact
    # case, though Lightning lowers it: the runner reads a `ddp` prefix to mean distributed.
    strategies = ("auto", *StrategyRegistry.available_strategies())
    if device.strategy not in strategies:
        shown = [s for s in strategies if "find_unused" not in s]  # variants of the ddp ones
        problems.add(
            "device.strategy",
            f"unknown strategy; got {show(device.strategy)}; allowed: one of Lightning's "
            f"({one_of(shown)}){did_you_mean(device.strategy, strategies)}",
        )
    callbacks = resolve(cfg, "callbacks", problems)
    # Read again, each reported once: the section checks below say what is wrong with them.
    data, trainer, optim = (resolve(cfg, key, Problems()) for key in ("data", "trainer", "optim"))
    check_callbacks(callbacks, data, trainer, problems)
    _check_plateau(optim, no_validation(data, trainer), problems)
    loggers = resolve(cfg, "logger", problems)
    if not any(v is not None for v in (loggers or {}).values()) and isinstance(callbacks, dict):
        for name, raw in callbacks.items():  # callbacks that write to a logger need one
            if isinstance(raw, dict) and str(raw.get("_target_")).endswith("LearningRateMonitor"):
                problems.add(
                    f"callbacks.{name}",
                    "LearningRateMonitor writes to a logger, and logger=none chooses none; "
                    "choose one, e.g. logger=csv",
                )
    check_sections(cfg, problems, device, ("data", "optim", "trainer", "stats", "logger"))


def _check_plateau(optim: Any, unvalidated: str | None, problems: Problems) -> None:
    """ReduceLROnPlateau steps on the validation loss: a run without validation has none."""
    scheduler = optim.get("scheduler") if isinstance(optim, dict) else None
    target = scheduler.get("_target_") if isinstance(scheduler, dict) else None
    if unvalidated and isinstance(target, str) and target.endswith("ReduceLROnPlateau"):
        problems.add(
            "optim.scheduler",
            f"ReduceLROnPlateau steps on {DEFAULT_OBJECTIVE}, which a run without validation "
            f"({unvalidated}) never logs; allowed: validation (data.val_fraction > 0), or a "
            "scheduler that needs no metric, e.g. torch.optim.lr_scheduler.StepLR",
        )


def check_sections(
    cfg: DictConfig, problems: Problems, device: DeviceSpec, keys: tuple[str, ...]
) -> None:
    """The training sections named in `keys`, each by its own check; an absent or mistyped
    section is named with the option to choose (a checkpoint's config gets the same checks)."""
    import pytorch_lightning as pl

    checks: dict[str, Callable[[dict[str, Any], Problems], None]] = {
        "data": check_data,
        "optim": check_optim,
        "trainer": lambda trainer, problems: check_trainer(
            trainer, pl.Trainer, problems, str(device.strategy)
        ),
        "stats": _check_stats,
        "logger": check_loggers,
    }
    for key in keys:
        section = resolve(cfg, key, problems)
        if isinstance(section, dict):
            checks[key](section, problems)
        elif section is None and key == "logger":  # logger=none, logger=[]: no logger
            continue
        elif section is not UNRESOLVED:
            got = f"no {key} section" if section is None else show(section)
            allowed = one_of(LOGGERS) if key == "logger" else f"an option from conf/{key}/"
            example = f"{key}={DEFAULTS[key]}"
            problems.add(
                key, f"no {key} option chosen; got {got}; allowed: {allowed}, e.g. {example}"
            )


def _check_stats(cfg: dict[str, Any], problems: Problems) -> None:
    problems.unknown_keys("stats", cfg, ("every_n_steps", "stats", "plots", "on_nan"))
    if not isinstance(cfg.get("plots", True), bool):
        problems.add("stats.plots", f"expected true or false; got {show(cfg['plots'])}")
    every = cfg.get("every_n_steps", 0)
    if not (isinstance(every, int) and not isinstance(every, bool) and every >= 0):
        problems.add(
            "stats.every_n_steps",
            f"expected an integer ≥ 0 (0: only at init and end); got {every!r}",
        )
    names = cfg.get("stats") or []
    if not isinstance(names, list):
        problems.add(
            "stats.stats",
            f"not a list; got {show(names)}; allowed: a list of {one_of(ALL_STATS)}, or []",
        )
        names = []
    for i, name in enumerate(names):
        if name not in ALL_STATS:
            problems.add(
                f"stats.stats[{i}]",
                f"unknown statistic {name!r}; allowed: {one_of(ALL_STATS)}"
                + did_you_mean(name, ALL_STATS),
            )
    on_nan = cfg.get("on_nan")
    if on_nan not in ON_NAN:
        hint = did_you_mean(str(on_nan), ON_NAN)
        problems.add("stats.on_nan", f"unknown choice {on_nan!r}; allowed: stop, warn{hint}")
