"""The trainer group → problems found before anything runs: Lightning's Trainer arguments
checked against its signature and the values it accepts (narrowed where the runner needs more),
the runner's own keys, and the requests no machine here can meet (more nodes than started)."""

from typing import Any

from runner.config.arguments import check_arguments
from runner.config.sections import RUNNER_TRAINER_KEYS
from runner.config.values import Check, Choice, Number, is_number, show
from runner.errors import Problems, did_you_mean

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
    "min_epochs": Number(lo=0, integer=True, special=((None, "no minimum"),)),
    "min_steps": Number(lo=0, integer=True, special=((None, "no minimum"),)),
    "num_sanity_val_steps": Number(lo=-1, integer=True, note="-1: all", special=((None, "2"),)),
    # A fraction of the batches or a count (Lightning 2.6). 0 would train or test nothing: no
    # checkpoint to verify, no metrics to record; 0 validation batches is "no validation".
    "limit_train_batches": Number(lo=0, lo_open=True, note="a fraction ≤ 1.0, or a count"),
    "limit_test_batches": Number(lo=0, lo_open=True, note="a fraction ≤ 1.0, or a count"),
    "limit_val_batches": Number(lo=0, note="a fraction ≤ 1.0, or a count; 0: no validation"),
    "val_check_interval": Number(
        lo=0,
        lo_open=True,
        note="a fraction of an epoch ≤ 1.0, or a count of batches",
        special=((None, "validate once per epoch"),),
    ),
    "gradient_clip_algorithm": Choice(
        (("norm", "clip the gradients' total norm"), ("value", "clip each element"), (None, "norm"))
    ),
    # Lightning turns logging, checkpoints and callbacks off in barebones mode: a run is those.
    "barebones": Choice(((False, "the runner's run: logs, checkpoints, statistics"),)),
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


def check_trainer(
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
    _check_max_time(trainer.get("max_time"), problems)
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
        unions=True,
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


_DURATION_KEYS = ("weeks", "days", "hours", "minutes", "seconds", "milliseconds", "microseconds")


def _check_max_time(value: Any, problems: Problems) -> None:
    """Lightning's time limit: "DD:HH:MM:SS" or a mapping of timedelta's keys, not negative
    (a negative one ends training before its first step)."""
    if value is None:
        return
    allowed = "allowed: 'DD:HH:MM:SS' such as 00:01:30:00, or a mapping such as {hours: 1}"
    if isinstance(value, str):
        parts = value.split(":")
        if len(parts) != 4 or not all(p.isdigit() for p in parts):
            problems.add("trainer.max_time", f"not a duration; got {show(value)}; {allowed}")
    elif isinstance(value, dict):
        for key, amount in value.items():
            if key not in _DURATION_KEYS:
                problems.add(
                    f"trainer.max_time.{key}",
                    f"unknown unit; allowed: {', '.join(_DURATION_KEYS)}"
                    + did_you_mean(str(key), _DURATION_KEYS),
                )
            elif not (is_number(amount) and amount >= 0):
                problems.add(
                    f"trainer.max_time.{key}", f"expected a number ≥ 0; got {show(amount)}"
                )
