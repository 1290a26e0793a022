"""The device section → a DeviceSpec, and that spec → a torch.device with the reason for the
choice (the chapter's try_gpu)."""

import os
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import DictConfig

from runner.errors import ConfigError, Problems, did_you_mean, one_of

ACCELERATORS = ("auto", "cpu", "gpu")
PRECISIONS = ("32", "bf16-mixed", "16-mixed")


@dataclass(frozen=True)
class DeviceSpec:
    accelerator: str
    index: int | None
    devices: Any
    strategy: str
    precision: str


def parse_device(cfg: DictConfig, problems: Problems) -> DeviceSpec:
    """Check the device section's values (whether a GPU is there is resolve_device's job)."""
    accelerator = cfg.accelerator
    if accelerator not in ACCELERATORS:
        problems.add(
            "device.accelerator",
            f"unknown accelerator {accelerator!r}; allowed: {one_of(ACCELERATORS)}"
            + did_you_mean(accelerator, ACCELERATORS),
        )
    precision = str(cfg.precision)
    if precision not in PRECISIONS:
        problems.add(
            "device.precision",
            f"unsupported precision {precision!r}; allowed: {one_of(PRECISIONS)}"
            + did_you_mean(precision, PRECISIONS),
        )
    if cfg.index is not None and cfg.index < 0:
        problems.add("device.index", f"expected a GPU number ≥ 0; got {cfg.index}")
    return DeviceSpec(accelerator, cfg.index, cfg.devices, cfg.strategy, precision)


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
