"""The members of a vectorized group: each job's module, data and optimizer made exactly as its
single run makes them (same seed, same init, same data splits), what keeps a job out of a group,
and what jobs must share to be trained as one."""

import logging
from dataclasses import dataclass, field
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from torch import fx

from runner.config.device import resolve_device
from runner.config.spec import RunSpec
from runner.params.recorder import StatsRecorder
from runner.params.tensors import distinct_parameters
from runner.train.build import build_module
from runner.train.data import InMemoryData
from runner.train.data_user import as_runner_data
from runner.train.module import RunnerModule
from runner.train.vector_optim import VECTORIZED, formula

log = logging.getLogger("runner")

# The trainer keys a group follows, with the values it supports (None: any value).
_TRAINER = {
    "max_epochs": None,
    "max_steps": (-1, None),
    "log_every_n_steps": None,
    "check_val_every_n_epoch": (1, None),
    "gradient_clip_val": (None, 0, 0.0),
    "gradient_clip_algorithm": None,
    "accumulate_grad_batches": (1, None),
    "deterministic": None,
    "benchmark": None,
}
# Layers that draw random numbers in training: a member's draws would not be its single run's.
_RANDOM = (torch.nn.Dropout, torch.nn.Dropout1d, torch.nn.Dropout2d, torch.nn.Dropout3d)
_RANDOM_ALSO = (torch.nn.AlphaDropout, torch.nn.FeatureAlphaDropout, torch.nn.RReLU)


@dataclass
class Member:
    """One job of a group: built as its single run builds it."""

    spec: RunSpec
    module: RunnerModule
    data: InMemoryData
    optimizer: torch.optim.Optimizer
    scheduler: Any | None
    job: int  # the sweep's job number
    stats: StatsRecorder | None = None
    findings: list[str] = field(default_factory=list)


def make_member(spec: RunSpec, job: int) -> Member:
    """The module, data, optimizer and scheduler of `spec`'s run, made in the order its single
    run makes them (the seed first: init and data draw from it)."""
    training = spec.training
    assert training is not None
    pl.seed_everything(spec.seed, workers=True, verbose=False)
    data = as_runner_data(instantiate(training.data.section))
    module = build_module(spec, data, resolve_device(spec.device))
    optimizer = instantiate(module.optim.optimizer)(params=module.parameters())
    scheduler = instantiate(module.optim.scheduler)(optimizer) if module.optim.scheduler else None
    return Member(spec, module, data, optimizer, scheduler, job)


def refusal(spec: RunSpec) -> str | None:
    """Why the job of `spec` is trained alone (before anything is built); None if it may join
    a group."""
    training = spec.training
    if spec.task != "train" or training is None:
        return f"task={spec.task}: only training is vectorized"
    if spec.ckpt_path is not None:
        return "it resumes from a checkpoint"
    if resolve_device(spec.device).device.type != "cpu" and spec.device.devices not in (1, None):
        return "it trains on several devices"
    if str(spec.device.strategy).startswith("ddp") or str(spec.device.precision) != "32":
        return f"device.strategy={spec.device.strategy}, precision={spec.device.precision}"
    if training.callbacks:
        return "it has callbacks of its own (each needs its own Trainer)"
    if not training.data.target.startswith("runner.train."):
        return f"its data module {training.data.target} is its own (it brings its own loaders)"
    trainer = training.trainer
    if trainer.steps_per_batch != 1 or trainer.checkpoint_every_n_steps or trainer.compile:
        return "trainer.steps_per_batch, checkpoint_every_n_steps or compile is set"
    for key, value in trainer.lightning.items():
        allowed = _TRAINER.get(key, ())
        if allowed is not None and value not in allowed:
            return f"trainer.{key}={value} is not vectorized"
    return None


def member_refusal(member: Member) -> str | None:
    """Why a built member is trained alone: its data, layers or optimizer."""
    if not isinstance(member.data, InMemoryData):
        return "its data module brings its own dataloaders"
    if not isinstance(member.optimizer, VECTORIZED):
        return f"optim: {type(member.optimizer).__name__} is not vectorized (SGD, Adam, AdamW are)"
    if len(member.optimizer.param_groups) != 1:
        return "its optimizer has several parameter groups"
    net = member.module.net
    randoms = [n for n, m in net.named_modules() if isinstance(m, _RANDOM + _RANDOM_ALSO)]
    if randoms:
        kind = type(net.get_submodule(randoms[0])).__name__
        return f"layer {randoms[0]!r} ({kind}) draws random numbers in training"
    if any(p.dtype != torch.float32 or not p.requires_grad for p in net.parameters()):
        return "its parameters are not all trainable float32 tensors"
    users = [n for n, m in net.named_modules() if not _known(type(m))]
    if users:
        return f"layer {users[0]!r} is user code ({type(net.get_submodule(users[0])).__name__})"
    return None


def _known(cls: type) -> bool:
    """torch's layers and the runner's (its graphs, the chapter's layers) vectorize; a user's
    layer may do anything in its forward (a random draw, a host read, a side effect)."""
    module = cls.__module__
    return module.startswith(("torch.", "runner.")) or module == "torch"


def group_key(member: Member) -> tuple[Any, ...]:
    """Members with equal keys train as one: the same network structure and parameter shapes,
    the same data shapes and batching, the same loss, epochs and optimizer formula."""
    net = member.module.net
    training = member.spec.training
    assert training is not None
    y = member.data.splits["train"][1]
    sizes = tuple((k, tuple(v[0].shape), tuple(v[1].shape)) for k, v in member.data.splits.items())
    return (
        structure(net),
        tuple((names, tuple(t.shape)) for names, t in distinct_parameters(net)),
        sizes,
        str(y.dtype),
        member.data.batch_size,
        member.module.classification,
        training.trainer.max_epochs,
        member.module.log_every,
        formula(member.optimizer),
        member.module.device.type,
    )


def structure(net: torch.nn.Module) -> tuple[Any, ...]:
    """What decides a network's forward besides its tensors: each module's class and plain
    settings (not all are in its repr: MultiheadAttention's num_heads), and each graph's
    generated code (its parameter-free operations, add or mul, are in no repr)."""
    return tuple(
        (name, type(m).__qualname__, m.code if isinstance(m, fx.GraphModule) else "", _settings(m))
        for name, m in net.named_modules()
    )


def _settings(module: torch.nn.Module) -> tuple[tuple[str, str], ...]:
    plain = (
        (k, repr(v))
        for k, v in vars(module).items()
        if not k.startswith("_") and not isinstance(v, torch.Tensor | torch.nn.Module)
    )
    return tuple(sorted(plain))
