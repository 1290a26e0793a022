"""The module a training run trains: built from the spec where it will train, checked
trainable, and checked against its data (shapes, classes) before anything trains; the data told
what it needs of the model (RandomData's output shape, fast mode's chunks)."""

import logging
import time
from typing import Any

from runner.config.device import Placement
from runner.config.spec import RunSpec
from runner.errors import ConfigError
from runner.train.data import RandomData
from runner.train.fits import check_fits
from runner.train.module import RunnerModule, output_shape

log = logging.getLogger("runner")


def build_module(spec: RunSpec, data: Any, placement: Placement) -> RunnerModule:
    """The module, built where it will train (with DDP the workers receive it, so it starts on
    the CPU), checked trainable; the data told what it needs of the model."""
    distributed = str(spec.device.strategy).startswith("ddp")
    start = time.perf_counter()
    module = RunnerModule(
        spec.config, task=data.task, device="cpu" if distributed else placement.device
    )
    shape = _trainable_output_shape(module, spec)
    log.info(
        "build: %s parameters, output %s, in %.0f ms",
        f"{sum(p.numel() for p in module.parameters()):,}",
        list(shape),
        (time.perf_counter() - start) * 1e3,
    )
    if isinstance(data, RandomData):
        data.output_shape = shape  # its teacher network answers in the model's shape
    if module.steps_per_batch > 1 and not hasattr(data, "splits"):
        raise ConfigError(
            [
                f"trainer.steps_per_batch: {module.steps_per_batch}, but fast mode batches "
                f"in-memory data on the device, and {type(data.inner).__name__} brings its own "
                "dataloaders; allowed: 1 with a LightningDataModule of your own"
            ]
        )
    data.steps_per_batch = module.steps_per_batch
    origin = f"the data ({type(getattr(data, 'inner', data)).__name__})"  # a user's: its own
    check_fits(data, module.net, spec.model.input_shape or (), origin)
    preprocessing = data.preprocessing() if hasattr(data, "preprocessing") else None
    if preprocessing is not None:  # fitted on the training split: saved with every checkpoint
        module.carry(preprocessing)
    if distributed:  # spawned workers get the data module pickled: without its splits
        data.splits = {}
    return module


def _trainable_output_shape(module: RunnerModule, spec: RunSpec) -> tuple[int, ...]:
    """The model's output shape for one sample; refuses models that can't be trained."""
    shape = spec.model.input_shape
    if shape is None:
        raise ConfigError(["model.input_shape: training needs the shape of one input sample"])
    if not any(True for _ in module.parameters()):
        raise ConfigError(
            [
                "model.net: the network has no parameters, so there is nothing to train; "
                "task=inspect shows it. Add a layer with parameters, e.g. {type: Linear, ...}"
            ]
        )
    out = output_shape(module.net, shape, batch=2)
    if not out or out[0] != 2:
        raise ConfigError(
            [
                f"model: for a batch of 2 its forward returns shape {list(out)}, not one "
                "output per sample (like FixedHiddenMLP's one scalar per batch): it can be "
                "inspected (task=inspect) but not trained"
            ]
        )
    return out[1:]
