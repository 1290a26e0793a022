"""The training sections → problems found before anything runs: data, optimizer, trainer,
statistics and logger, and the device's strategy. The trainer group is checked against
Lightning's own `Trainer` signature and the strategy against Lightning's registry; Lightning is
imported for that only when the task trains (task=inspect never loads it)."""

from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig

from runner.config.arguments import check_arguments
from runner.config.callbacks import check_callbacks
from runner.config.data import check_data
from runner.config.device import DeviceSpec
from runner.config.loggers import LOGGERS, check_loggers
from runner.config.optim import check_optim
from runner.config.sections import RUNNER_TRAINER_KEYS
from runner.config.values import UNRESOLVED, Check, Choice, Number, resolve, show
from runner.errors import Problems, did_you_mean, one_of

VALUE_STATS = ("mean", "std", "min", "max", "norm", "zero_frac", "nonfinite")
# What `stats.stats` may list. dead_units: per ReLU layer, the share of units that output 0 for
# a whole batch (measured on the batches a record follows).
ALL_STATS = (*VALUE_STATS, "grad_norm", "update_ratio", "dead_units")
ON_NAN = ("stop", "warn")  # what the NaN/Inf guard does

# Trainer arguments the trainer group may not set, and who owns them instead.
OWNED = {
    "accelerator": "the device group",
    "devices": "the device group",
    "strategy": "the device group",
    "precision": "the device group",
    "logger": "the logger group",
    "callbacks": "the callbacks group (callbacks=[early_stopping,lr_monitor])",
    "plugins": "the runner",
    "default_root_dir": "the runner (Hydra's run directory)",
    "enable_checkpointing": "the runner",
    "enable_progress_bar": "the runner (shown when stderr is a terminal)",
    "enable_model_summary": "the runner (task=inspect shows the model)",
}
# The trainer group's numbers: what Lightning 2.6 accepts (Trainer's docstring, its loops),
# narrowed where the runner needs more. Lightning checks some only once fit has started (with a
# traceback), some never (a negative clip value disables clipping silently).
TRAINER_VALUES: dict[str, Check] = {
    # Lightning also takes 0, which trains nothing: the run would end with no checkpoint.
    "max_epochs": Number(
        lo=1,
        integer=True,
        special=(
            (-1, "no epoch limit: max_steps decides"),
            (None, "Lightning's default: 1000, unless max_steps is set"),
        ),
    ),
    "max_steps": Number(lo=1, integer=True, special=((-1, "no step limit"),)),
    # Lightning reads 0 as "never log within an epoch", but the runner's module, which keeps
    # the cadence itself, would read it as 50: refused rather than meaning two things.
    "log_every_n_steps": Number(lo=1, integer=True, special=((None, "Lightning's default: 50"),)),
    "check_val_every_n_epoch": Number(
        lo=1, integer=True, special=((None, "validate by trainer.val_check_interval batches"),)
    ),
    "gradient_clip_val": Number(lo=0, note="0: no clipping", special=((None, "no clipping"),)),
    "accumulate_grad_batches": Number(lo=1, integer=True),
}
# trainer.compile: the training steps' forward through torch.compile (runner.train.compiled),
# in one of its modes; true is its default mode.
COMPILE = Choice(
    (
        (False, "eager"),
        (True, "torch.compile's default mode"),
        ("default", "the same"),
        ("reduce-overhead", "CUDA graphs: fewer kernel launches, for small models on a GPU"),
        ("max-autotune", "also searches for the fastest kernels; compiles longest"),
        ("max-autotune-no-cudagraphs", "max-autotune without CUDA graphs"),
    )
)
# Keys of the trainer group that the runner reads itself, not Lightning (runner.config.sections).
RUNNER_VALUES: dict[str, Check] = {
    "steps_per_batch": Number(lo=1, integer=True, note="fast mode: optimizer steps per batch"),
    "checkpoint_every_n_steps": Number(lo=0, integer=True, note="0: at each epoch's end only"),
    "compile": COMPILE,
}
assert tuple(RUNNER_VALUES) == RUNNER_TRAINER_KEYS  # one list of the runner's own keys
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
    check_callbacks(callbacks, resolve(cfg, "data", problems), problems)
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


def check_sections(
    cfg: DictConfig, problems: Problems, device: DeviceSpec, keys: tuple[str, ...]
) -> None:
    """The training sections named in `keys`, each by its own check; an absent or mistyped
    section is named with the option to choose (a checkpoint's config gets the same checks)."""
    import pytorch_lightning as pl

    checks: dict[str, Callable[[dict[str, Any], Problems], None]] = {
        "data": check_data,
        "optim": check_optim,
        "trainer": lambda trainer, problems: _check_trainer(
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


def _check_trainer(
    trainer: dict[str, Any], trainer_cls: type, problems: Problems, strategy: str
) -> None:
    for key in trainer:
        if key in OWNED:
            problems.add(f"trainer.{key}", f"set by {OWNED[key]}, not by the trainer group")
    for key, check in RUNNER_VALUES.items():
        wrong = check.problem(trainer[key]) if key in trainer else None
        if wrong:
            problems.add(f"trainer.{key}", wrong)
    if trainer.get("compile", False) is not False and strategy.startswith("fsdp"):
        # FSDP swaps the parameters for flat shards around each forward; compiling a net inside
        # it needs FSDP settings the runner does not make, and no run here has tried it.
        problems.add(
            "trainer.compile",
            f"cannot be combined with device.strategy={strategy}; got "
            f"{show(trainer['compile'])}; allowed: false with FSDP, or a ddp strategy "
            "(device=gpus) with trainer.compile",
        )
    _check_nodes(trainer.get("num_nodes", 1), problems)
    _check_ends(trainer, problems)
    k = trainer.get("steps_per_batch", 1)
    fast = k != 1 and RUNNER_VALUES["steps_per_batch"].problem(k) is None
    if fast and trainer.get("accumulate_grad_batches", 1) != 1:
        problems.add(
            "trainer.accumulate_grad_batches",
            "cannot be combined with trainer.steps_per_batch > 1 (every minibatch is a step)",
        )
    rest = {k: v for k, v in trainer.items() if k not in OWNED and k not in RUNNER_VALUES}
    check_arguments(
        trainer_cls,
        rest,
        "trainer",
        "Trainer",
        problems,
        hidden=tuple(OWNED),
        values=TRAINER_VALUES,
    )


def _check_ends(trainer: dict[str, Any], problems: Problems) -> None:
    """No epoch limit, no step limit and no time limit: it would train until killed."""
    forever = trainer.get("max_epochs") == -1 and trainer.get("max_steps", -1) == -1
    if forever and trainer.get("max_time") is None:
        problems.add(
            "trainer.max_epochs",
            "-1 with trainer.max_steps=-1 never ends; allowed: max_epochs ≥ 1, or "
            "trainer.max_steps ≥ 1, or a time limit such as +trainer.max_time=00:01:00:00",
        )


def _check_nodes(nodes: Any, problems: Problems) -> None:
    """More than one node only where a cluster launcher started this process (Lightning's own
    detection) or NODE_RANK says which node it is: elsewhere the first process waits for the
    other nodes forever, deaf to SIGTERM while it waits."""
    if not (isinstance(nodes, int) and not isinstance(nodes, bool) and nodes > 1):
        return  # Lightning's own check refuses other values
    import os

    from lightning_fabric.plugins.environments import (
        LSFEnvironment,
        MPIEnvironment,
        SLURMEnvironment,
        TorchElasticEnvironment,
    )

    clusters = (TorchElasticEnvironment, SLURMEnvironment, LSFEnvironment, MPIEnvironment)
    if "NODE_RANK" in os.environ or any(env.detect() for env in clusters):
        return
    problems.add(
        "trainer.num_nodes",
        f"{nodes} nodes, but no cluster launcher (SLURM, torchrun, LSF, MPI) started this "
        "process and NODE_RANK is not set, so no other node will join; allowed: 1 here, or "
        "start every node's process with srun or torchrun (conf/hydra/launcher/slurm.yaml)",
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
