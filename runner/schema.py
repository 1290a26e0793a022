"""Structured-config schemas for the model, init and device groups.

Each option file in those groups starts its defaults list with `/schema/<group>@_here_`, so a
misspelled key fails when Hydra composes the config, with Hydra's own message. The schemas live
in the ConfigStore group `schema`, apart from the groups' choosable options. Only the shape of the
config is checked here; what the values mean is checked by `runner.spec`.
"""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class ModelConfig:
    # The shape of one input sample, without the batch dimension: [20] for 20 features.
    # Needed to infer omitted input sizes; data that knows its shape may set it.
    input_shape: list[int] | None = None
    # The size of the output, for models whose last layer reads it by interpolation.
    num_outputs: int | None = None
    # One entry (the model is that module) or a list of entries (an nn.Sequential).
    net: Any = MISSING
    # Named blocks: each use builds a fresh copy (`{block: name}`).
    blocks: dict[str, Any] = field(default_factory=dict)
    # Named instances: every use is the same module object (`{ref: name}`).
    shared: dict[str, Any] = field(default_factory=dict)


@dataclass
class InitConfig:
    """`init=default`: parameters keep the values their modules' constructors gave them."""


@dataclass
class DeviceConfig:
    accelerator: str = "auto"  # auto | cpu | gpu
    index: int | None = None  # which GPU with accelerator=gpu (None: the first)
    devices: Any = 1  # how many devices (or "auto"), for the trainer
    strategy: str = "auto"  # Lightning's strategy name, e.g. ddp
    precision: str = "32"  # 32 | bf16-mixed | 16-mixed


def register() -> None:
    """Put the schemas into Hydra's ConfigStore (idempotent)."""
    store = ConfigStore.instance()
    store.store(group="schema", name="model", node=ModelConfig)
    store.store(group="schema", name="init", node=InitConfig)
    store.store(group="schema", name="device", node=DeviceConfig)
