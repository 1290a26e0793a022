"""The sections a run uses besides model, init and device, as typed specs.

Parsed once the whole config is valid (runner.config.spec), and from a checkpoint's embedded
config when its module is rebuilt: the same functions, so each key is read in one place.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# The metric the runner watches unless told otherwise: the best checkpoint, ReduceLROnPlateau,
# a sweep's ranking and a search's objective.
DEFAULT_OBJECTIVE = "val/loss"
# The trainer group's keys that the runner reads itself: they are not Trainer arguments
# (runner.config.training checks their values).
RUNNER_TRAINER_KEYS = ("steps_per_batch", "checkpoint_every_n_steps", "compile")
LIGHTNING_LOG_EVERY = 50  # Lightning's own default for log_every_n_steps


@dataclass(frozen=True)
class DataSpec:
    """The data section: `section` is what Hydra instantiates (resolved, with `_target_`);
    `template` keeps its `${...}` interpolations, which task=eval resolves against a
    checkpoint's model instead of this config's."""

    section: dict[str, Any]
    template: dict[str, Any]

    @property
    def target(self) -> str:
        return str(self.section.get("_target_"))


@dataclass(frozen=True)
class OptimSpec:
    """The optimizer and the optional schedule, as partial Hydra targets."""

    optimizer: dict[str, Any]
    scheduler: dict[str, Any] | None = None


@dataclass(frozen=True)
class TrainerSpec:
    """The trainer group: Lightning's own Trainer arguments, and the runner's own keys."""

    lightning: dict[str, Any] = field(default_factory=dict)
    steps_per_batch: int = 1  # fast mode: optimizer steps per Lightning step
    checkpoint_every_n_steps: int = 0  # 0: last.ckpt at each epoch's end only
    compile: str | None = None  # a torch.compile mode; None: eager

    @property
    def log_every_n_steps(self) -> int:
        """How often training metrics are written, in optimizer steps."""
        return int(self.lightning.get("log_every_n_steps") or LIGHTNING_LOG_EVERY)

    @property
    def max_epochs(self) -> Any:
        return self.lightning.get("max_epochs")

    @property
    def max_steps(self) -> Any:
        return self.lightning.get("max_steps")

    @property
    def clip(self) -> tuple[Any, Any]:
        """(gradient_clip_val, gradient_clip_algorithm), as Lightning takes them."""
        return self.lightning.get("gradient_clip_val"), self.lightning.get(
            "gradient_clip_algorithm"
        )


@dataclass(frozen=True)
class StatsSpec:
    every_n_steps: int
    stats: tuple[str, ...]
    plots: bool
    on_nan: str  # stop | warn


@dataclass(frozen=True)
class TrainingSpec:
    """What training and evaluation run with: parsed for task=train and task=eval only (their
    checks load Lightning, which task=inspect must not)."""

    data: DataSpec
    optim: OptimSpec
    trainer: TrainerSpec
    stats: StatsSpec
    loggers: dict[str, dict[str, Any]]  # logger name → its options; {} for logger=none
    callbacks: tuple[tuple[str, dict[str, Any]], ...]  # (name, Hydra target), in order


@dataclass(frozen=True)
class EvalSpec:
    split: str = "test"
    data: str = "auto"  # auto | checkpoint | given (runner.config.spec resolves auto)


DIRECTIONS = ("max", "min")
# Words of a metric's name that say which way is better: `val/acc`, `test/f1` are maximized,
# `val/loss`, `train/mse` minimized. A name with neither needs `sweep.direction`.
_HIGHER = ("acc", "accuracy", "f1", "auc", "auroc", "precision", "recall", "r2", "iou", "score")
_LOWER = ("loss", "error", "err", "mse", "mae", "rmse", "nll", "perplexity", "ppl")


def infer_direction(metric: str) -> str | None:
    """ "max" for an accuracy-like metric, "min" for a loss-like one, None when its name says
    neither (or both)."""
    words = set(re.split(r"[^a-z0-9]+", metric.lower()))
    higher, lower = bool(words & set(_HIGHER)), bool(words & set(_LOWER))
    return None if higher == lower else ("max" if higher else "min")


@dataclass(frozen=True)
class SweepSpec:
    resume: bool = False
    objective: str = DEFAULT_OBJECTIVE
    direction: str | None = None  # max | min; None: inferred from the objective's name

    @property
    def goal(self) -> str:
        """The direction that ranks jobs: the given one, else the inferred one (a config whose
        objective says neither is refused by runner.config.spec)."""
        return self.direction or infer_direction(self.objective) or "min"


def parse_optim(section: Mapping[str, Any]) -> OptimSpec:
    scheduler = section.get("scheduler")
    return OptimSpec(dict(section["optimizer"]), dict(scheduler) if scheduler else None)


def parse_trainer(section: Mapping[str, Any]) -> TrainerSpec:
    lightning = {k: v for k, v in section.items() if k not in RUNNER_TRAINER_KEYS}
    mode = section.get("compile", False)
    return TrainerSpec(
        lightning=lightning,
        steps_per_batch=int(section.get("steps_per_batch") or 1),
        checkpoint_every_n_steps=int(section.get("checkpoint_every_n_steps") or 0),
        # true is torch.compile's default mode
        compile=None if mode in (False, None) else ("default" if mode is True else str(mode)),
    )


def parse_stats(section: Mapping[str, Any]) -> StatsSpec:
    return StatsSpec(
        every_n_steps=int(section.get("every_n_steps", 0)),
        stats=tuple(section.get("stats") or ()),
        plots=bool(section.get("plots", True)),
        on_nan=str(section.get("on_nan")),
    )


def parse_training(config: Mapping[str, Any], template: Mapping[str, Any]) -> TrainingSpec:
    """The training sections of a valid, resolved config (`template`: the data section before
    its interpolations were resolved)."""
    loggers = config.get("logger") or {}
    callbacks = config.get("callbacks") or {}
    return TrainingSpec(
        data=DataSpec(dict(config["data"]), dict(template)),
        optim=parse_optim(config["optim"]),
        trainer=parse_trainer(config["trainer"]),
        stats=parse_stats(config["stats"]),
        loggers={name: dict(opts) for name, opts in loggers.items() if opts is not None},
        callbacks=tuple(
            (name, dict(target)) for name, target in callbacks.items() if target is not None
        ),
    )


def parse_sweep(section: Any) -> SweepSpec:
    """The sweep section (read by multirun jobs and the summary); defaults where it is absent."""
    section = section if isinstance(section, Mapping) else {}
    return SweepSpec(
        resume=bool(section.get("resume", False)),
        objective=str(section.get("objective") or DEFAULT_OBJECTIVE),
        direction=str(section["direction"]) if section.get("direction") else None,
    )


def optuna_direction(objective: str, direction: str | None) -> str:
    """Optuna's word for the sweep's direction (the resolver in conf/hparams_search/optuna.yaml)."""
    goal = SweepSpec(objective=str(objective), direction=direction or None).goal
    return "maximize" if goal == "max" else "minimize"
