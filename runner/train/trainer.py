"""The Trainer's arguments from the spec: where it runs (the device group) and the trainer
group (the logger group: runner.trackers)."""

from typing import Any

from runner.config.device import DeviceSpec, Placement
from runner.config.sections import TrainerSpec


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
