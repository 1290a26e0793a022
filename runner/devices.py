"""device config → a torch.device, with the reason for the choice (the chapter's try_gpu)."""

import os
from dataclasses import dataclass
from typing import Any

import torch

from runner.errors import ConfigError
from runner.spec import DeviceSpec


@dataclass(frozen=True)
class Placement:
    device: torch.device
    reason: str  # for the run log: what was asked → what was picked, and why


def resolve_device(spec: DeviceSpec) -> Placement:
    """Pick the device. Raises ConfigError when a GPU is asked for and none can be used."""
    if spec.accelerator == "cpu":
        return Placement(torch.device("cpu"), "cpu")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if spec.accelerator == "auto":
        if count:
            return Placement(torch.device("cuda", 0), f"auto → {_gpu_name(0)}")
        return Placement(torch.device("cpu"), f"auto → cpu: {_no_gpu_reason()}")
    index = spec.index or 0
    if not count:
        raise ConfigError(
            [
                f"device.accelerator: 'gpu', but {_no_gpu_reason()}; use device=auto to fall "
                "back to the CPU, or device=cpu"
            ]
        )
    if index >= count:
        raise ConfigError(
            [f"device.index: {index}, but only {count} GPU(s) are visible; allowed: 0–{count - 1}"]
        )
    return Placement(torch.device("cuda", index), f"gpu → {_gpu_name(index)}")


def _gpu_name(index: int) -> str:
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"


def _no_gpu_reason() -> str:
    if torch.version.cuda is None:
        return f"no GPU is visible (torch {torch.__version__} is a CPU-only build)"
    hidden = os.environ.get("CUDA_VISIBLE_DEVICES")
    if hidden is not None:
        return f"no GPU is visible (CUDA_VISIBLE_DEVICES={hidden!r})"
    return f"no GPU is visible (torch {torch.__version__}, CUDA {torch.version.cuda})"


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
    return {
        "accelerator": "gpu" if on_gpu else "cpu",
        "devices": devices,
        "strategy": spec.strategy,
        "precision": spec.precision,
    }
