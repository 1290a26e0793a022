"""The device section → a DeviceSpec, and that spec → a torch.device with the reason for the
choice (the chapter's try_gpu)."""

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from runner.config.arguments import is_int
from runner.config.values import UNRESOLVED, show
from runner.errors import Problems, did_you_mean, one_of

ACCELERATORS = ("auto", "cpu", "gpu", "mps")  # mps: Apple-silicon GPUs (Metal)
PRECISIONS = ("32", "bf16-mixed", "16-mixed")
DEVICES = (
    "a positive integer (how many), a list of GPU indices such as [0, 1], auto, or -1 (every "
    "visible GPU)"
)


@dataclass(frozen=True)
class DeviceSpec:
    accelerator: str
    index: int | None
    devices: Any
    strategy: str
    precision: str


def parse_device(cfg: Any, problems: Problems) -> DeviceSpec:
    """Check the device section's values (a plain mapping; whether a GPU is there is `place`'s
    job, and the strategy is checked with the training sections, against Lightning's names)."""
    if not isinstance(cfg, Mapping):
        if cfg is not UNRESOLVED:  # else a problem says already why it could not be read
            problems.add(
                "device",
                f"no device option chosen; got {show(cfg)}; allowed: device=auto, cpu, gpu, mps, …",
            )
        return DeviceSpec("auto", None, 1, "auto", "32")
    accelerator, index, devices = cfg.get("accelerator"), cfg.get("index"), cfg.get("devices")
    if accelerator not in ACCELERATORS:
        problems.add(
            "device.accelerator",
            f"unknown accelerator {accelerator!r}; allowed: {one_of(ACCELERATORS)}"
            + did_you_mean(accelerator, ACCELERATORS),
        )
    precision = str(cfg.get("precision"))
    if precision not in PRECISIONS:
        problems.add(
            "device.precision",
            f"unsupported precision {precision!r}; allowed: {one_of(PRECISIONS)}"
            + did_you_mean(precision, PRECISIONS),
        )
    if index is not None and not (is_int(index) and index >= 0):
        problems.add("device.index", f"expected a GPU number ≥ 0; got {show(index)}")
    indices = devices if isinstance(devices, list) and devices else []
    if indices and all(is_int(i) and i >= 0 for i in indices):
        if len(set(indices)) < len(indices):
            problems.add("device.devices", f"a GPU listed twice; got {indices}; allowed: {DEVICES}")
    elif not (devices == "auto" or (is_int(devices) and devices >= -1 and devices != 0)):
        wrong = "not a device choice"
        problems.add("device.devices", f"{wrong}; got {show(devices)}; allowed: {DEVICES}")
    return DeviceSpec(str(accelerator), index, devices, str(cfg.get("strategy")), precision)


@dataclass(frozen=True)
class Placement:
    device: torch.device
    reason: str  # for the run log: what was asked → what was picked, and why


def resolve_device(spec: DeviceSpec) -> Placement:
    """Pick the device. Raises ConfigError when a GPU is asked for and none can be used."""
    problems = Problems()
    placement = place(spec, problems)
    problems.raise_if_any()
    assert placement is not None
    return placement


def place(
    spec: DeviceSpec, problems: Problems, training: bool = False, testing: bool = False
) -> Placement | None:
    """Pick the device, or add a problem when a GPU is asked for and none can be used. For a
    training run, also add one when `devices` or `precision` cannot run where it lands; for an
    evaluation (`testing`), when `precision` cannot."""
    placement = _pick(spec, problems)
    if placement is None or not (training or testing):
        return placement
    devices = spec.devices
    if placement.device.type == "cpu":
        cpu = "the CPU" if spec.accelerator == "cpu" else f"the CPU ({placement.reason})"
        if training and (isinstance(devices, list) or devices == -1):
            problems.add(
                "device.devices",
                f"GPUs asked for, but the run is on {cpu}; got {show(devices)}; "
                "allowed on the CPU: a positive integer (processes) or auto",
            )
        if spec.precision == "16-mixed":
            problems.add(
                "device.precision",
                f"'16-mixed' needs a GPU, but the run is on {cpu}; allowed there: 32, bf16-mixed",
            )
        return placement
    if not training:
        return placement
    if placement.device.type == "mps":
        if devices not in (1, "auto"):
            problems.add("device.devices", f"an Apple GPU is one device; got {show(devices)}")
        if spec.precision != "32":
            problems.add(
                "device.precision",
                f"{spec.precision!r} is not supported on mps by the runner; allowed there: 32",
            )
        return placement
    count = torch.cuda.device_count()
    missing = [i for i in devices if is_int(i) and i >= count] if isinstance(devices, list) else []
    too_many = is_int(devices) and devices > count
    if missing or too_many:
        problems.add(
            "device.devices",
            f"{count} GPU(s) are visible; got {show(devices)}; allowed: 1–{count} GPUs, "
            f"indices 0–{count - 1}, or -1 for all",
        )
    return placement


def _pick(spec: DeviceSpec, problems: Problems) -> Placement | None:
    if spec.accelerator == "cpu":
        if spec.index is not None:
            problems.add(
                "device.index", f"a GPU number, but the accelerator is the CPU; got {spec.index}"
            )
        return Placement(torch.device("cpu"), "cpu")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if spec.accelerator == "auto":
        if count:
            return Placement(torch.device("cuda", 0), f"auto → {_gpu_name(0)}")
        if _mps():
            return Placement(torch.device("mps"), "auto → mps (Apple GPU)")
        return Placement(torch.device("cpu"), f"auto → cpu: {_no_gpu_reason()}")
    if spec.accelerator == "mps":
        if spec.index is not None:
            problems.add("device.index", f"an Apple GPU has no index; got {spec.index}")
        if not _mps():
            problems.add(
                "device.accelerator",
                "'mps', but no Apple GPU is usable (torch.backends.mps.is_available() is "
                "false: it needs an Apple-silicon Mac and a torch build with MPS); use "
                "device=auto to fall back to the CPU, or device=cpu",
            )
            return None
        return Placement(torch.device("mps"), "mps (Apple GPU)")
    index = spec.index if is_int(spec.index) and spec.index > 0 else 0  # (a bad one is reported)
    if not count:
        problems.add(
            "device.accelerator",
            f"'gpu', but {_no_gpu_reason()}; use device=auto to fall back to the CPU, or "
            "device=cpu",
        )
        return None
    if index >= count:
        problems.add(
            "device.index",
            f"{index}, but only {count} GPU(s) are visible; allowed: 0–{count - 1}",
        )
        return None
    return Placement(torch.device("cuda", index), f"gpu → {_gpu_name(index)}")


def _mps() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def _gpu_name(index: int) -> str:
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"


def _no_gpu_reason() -> str:
    if torch.version.cuda is None:
        return f"no GPU is visible (torch {torch.__version__} is a CPU-only build)"
    hidden = os.environ.get("CUDA_VISIBLE_DEVICES")
    if hidden is not None:
        return f"no GPU is visible (CUDA_VISIBLE_DEVICES={hidden!r})"
    return f"no GPU is visible (torch {torch.__version__}, CUDA {torch.version.cuda})"
