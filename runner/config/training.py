"""The training sections → problems found before anything runs: trainer, data, statistics and
logger. The trainer group is checked against Lightning's own `Trainer` signature; Lightning is
imported for that only when the task trains (task=inspect never loads it)."""

from typing import Any

from hydra.utils import get_class
from omegaconf import DictConfig

from runner.config.arguments import check_arguments
from runner.config.tree import plain
from runner.errors import Problems, did_you_mean, one_of

# The base class of the runner's data modules, named rather than imported: it lives in the
# training code (runner.train.data), which sits above this package. A test keeps the name true.
DATA_BASE = "runner.train.data.InMemoryData"
VALUE_STATS = ("mean", "std", "min", "max", "norm", "zero_frac", "nonfinite")
ALL_STATS = (*VALUE_STATS, "grad_norm", "update_ratio")  # what `stats.stats` may list
ON_NAN = ("stop", "warn")  # what the NaN/Inf guard does

# Trainer arguments the trainer group may not set, and who owns them instead.
OWNED = {
    "accelerator": "the device group",
    "devices": "the device group",
    "strategy": "the device group",
    "precision": "the device group",
    "logger": "the logger group",
    "callbacks": "the runner",
    "plugins": "the runner",
    "default_root_dir": "the runner (Hydra's run directory)",
    "enable_checkpointing": "the runner",
    "enable_progress_bar": "the runner (shown when stderr is a terminal)",
    "enable_model_summary": "the runner (task=inspect shows the model)",
}
LOGGERS = ("csv", "tensorboard")


def check_training(cfg: DictConfig, problems: Problems) -> None:
    """Problems in the trainer, data and logger groups, found before anything runs."""
    import pytorch_lightning as pl  # only for a training run: inspect never loads Lightning

    trainer = plain(cfg.trainer)
    for key in trainer:
        if key in OWNED:
            problems.add(f"trainer.{key}", f"set by {OWNED[key]}, not by the trainer group")
    k = trainer.pop("steps_per_batch", 1)
    if not (isinstance(k, int) and k >= 1):
        problems.add("trainer.steps_per_batch", f"expected an integer ≥ 1; got {k!r}")
    elif k > 1 and trainer.get("accumulate_grad_batches", 1) != 1:
        problems.add(
            "trainer.accumulate_grad_batches",
            "cannot be combined with trainer.steps_per_batch > 1 (every minibatch is a step)",
        )
    rest = {k: v for k, v in trainer.items() if k not in OWNED}
    check_arguments(pl.Trainer, rest, "trainer", "Trainer", problems, hidden=tuple(OWNED))
    data = plain(cfg.data)
    target = data.pop("_target_", None)
    try:
        data_cls = get_class(str(target))
        assert DATA_BASE in (f"{c.__module__}.{c.__qualname__}" for c in data_cls.__mro__)
    except Exception:
        problems.add(
            "data._target_", f"{target!r} is not a runner data module (runner.train.data.*)"
        )
    else:
        checked = check_arguments(data_cls, data, "data", data_cls.__name__, problems)
        for key in checked[1] if checked else []:
            problems.add(f"data.{key}", f"{data_cls.__name__} needs {key!r}; it is missing")
    _check_stats(plain(cfg.stats), problems)
    if cfg.logger.name not in LOGGERS:
        problems.add(
            "logger.name",
            f"unknown logger {cfg.logger.name!r}; allowed: {one_of(LOGGERS)}"
            + did_you_mean(cfg.logger.name, LOGGERS),
        )


def _check_stats(cfg: dict[str, Any], problems: Problems) -> None:
    known = ("every_n_steps", "stats", "plots", "on_nan")
    for key in cfg:
        if key not in known:
            problems.add(
                f"stats.{key}", f"unknown key; allowed: {one_of(known)}{did_you_mean(key, known)}"
            )
    every = cfg.get("every_n_steps", 0)
    if not (isinstance(every, int) and not isinstance(every, bool) and every >= 0):
        problems.add(
            "stats.every_n_steps",
            f"expected an integer ≥ 0 (0: only at init and end); got {every!r}",
        )
    for i, name in enumerate(cfg.get("stats") or []):
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
