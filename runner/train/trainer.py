"""The Trainer's arguments from the spec: where it runs (the device group) and the trainer
group (the logger group: runner.trackers)."""

import re
from typing import Any

from lightning_fabric.utilities.exceptions import MisconfigurationException

from runner.config.device import DeviceSpec, Placement
from runner.config.sections import TrainerSpec
from runner.config.values import show
from runner.errors import ConfigError, first_line


def trainer_placement(spec: DeviceSpec, placement: Placement) -> dict[str, Any]:
    """The Trainer's accelerator/devices/strategy/precision for this device spec (the
    validation refused what cannot run where it lands: runner.config.device.place)."""
    on_gpu = placement.device.type == "cuda"
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


def trainer_arguments(trainer: TrainerSpec, manual: bool) -> dict[str, Any]:
    """The trainer group as Trainer kwargs: in fast mode without clipping (the module clips
    itself there; Lightning refuses it) and with Lightning's log interval at every chunk (the
    module logs every log_every_n_steps)."""
    args = dict(trainer.lightning)
    if manual:
        args.pop("gradient_clip_val", None)
        args.pop("gradient_clip_algorithm", None)
        args["log_every_n_steps"] = 1  # the module keeps the cadence, in optimizer steps
    return args


def lightning_refusal(error: BaseException, trainer: TrainerSpec) -> ConfigError | None:
    """Lightning's refusal of the trainer group's values, as a config error that names the key;
    None for any other error. The validation checks each value on its own; Lightning refuses
    some only as a Trainer is made or once it has counted the batches (a `val_check_interval`
    past the epoch, a `limit_val_batches` fraction of too few batches)."""
    text = first_line(error, default="")
    found = {key: re.search(rf"\b{re.escape(key)}\b", text) for key in trainer.lightning}
    named = sorted((m.start(), key) for key, m in found.items() if m)  # the first one it names
    if not named and not isinstance(error, MisconfigurationException):
        return None
    if named:
        key = named[0][1]
        where = f"trainer.{key}: Lightning refuses {show(trainer.lightning[key])} here"
    else:
        where = "trainer: Lightning refuses this run's settings"
    return ConfigError([f"{where}: {text.strip()}"])
