"""The Trainer's arguments from the config: where it runs (the device group) and the trainer
group (the logger group: runner.trackers.tracking)."""

from typing import Any

from omegaconf import DictConfig

from runner.config.device import DeviceSpec, Placement
from runner.config.tree import plain
from runner.errors import ConfigError


def trainer_placement(spec: DeviceSpec, placement: Placement) -> dict[str, Any]:
    """The Trainer's accelerator/devices/strategy/precision for this device spec.

    Raises ConfigError for combinations Lightning cannot run (16-bit mixed precision on a CPU).
    """
    on_gpu = placement.device.type == "cuda"
    if spec.precision == "16-mixed" and not on_gpu:
        raise ConfigError(
            ["device.precision: '16-mixed' needs a GPU; on the CPU use bf16-mixed or 32"]
        )
    devices = spec.devices
    if on_gpu and spec.index is not None and devices == 1:
        devices = [spec.index]  # device=gpu device.index=N: that one GPU
    if placement.device.type == "mps":
        return {"accelerator": "mps", "devices": 1, "strategy": "auto", "precision": "32"}
    return {
        "accelerator": "gpu" if on_gpu else "cpu",
        "devices": devices,
        "strategy": spec.strategy,
        "precision": spec.precision,
    }


# The trainer group's keys that the runner reads itself: they are not Trainer arguments.
RUNNER_KEYS = ("steps_per_batch", "checkpoint_every_n_steps", "compile")


def checkpoint_every(cfg: DictConfig) -> int:
    """`trainer.checkpoint_every_n_steps`: also save last.ckpt every N optimizer steps (0: at
    each epoch's end only)."""
    return int(cfg.trainer.get("checkpoint_every_n_steps") or 0)


def trainer_arguments(cfg: DictConfig, manual: bool) -> dict[str, Any]:
    """The trainer group as Trainer kwargs: without the runner's own `steps_per_batch`; in fast
    mode without clipping (the module clips itself there; Lightning refuses it) and with
    Lightning's log interval at every chunk (the module logs every log_every_n_steps)."""
    args = plain(cfg.trainer)
    for key in RUNNER_KEYS:
        args.pop(key, None)
    if manual:
        args.pop("gradient_clip_val", None)
        args.pop("gradient_clip_algorithm", None)
        args["log_every_n_steps"] = 1  # the module keeps the cadence, in optimizer steps
    return args
