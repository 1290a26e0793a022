"""Structured-config schemas for the model, init and device groups.

Each option file in those groups starts its defaults list with `/schema/<group>@_here_`, so a
misspelled key fails when Hydra composes the config, with Hydra's own message. The schemas live
in the ConfigStore group `schema`, apart from the groups' choosable options. Only the shape of the
config is checked here; what the values mean is checked by `runner.config.spec` and the section
modules beside it.
"""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from runner.config.sections import optuna_direction
from runner.rundir.latest import run_dir_suffix


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
    # The model's own parameters (name → value), for "{...}" templates in net and shared:
    # the zoo's CNNs scale with them (model.args.width=64). Only names the file declares.
    args: dict[str, Any] = field(default_factory=dict)
    # Parameter groups that become one tensor: [["0.weight", "4.weight"]], or
    # {params: [...], transpose: true} for a 2-D weight used transposed (encoder/decoder).
    tie: list[Any] = field(default_factory=list)


@dataclass
class InitRule:
    """Which parameters (all selectors must hold; a missing one matches all) and how to set them."""

    param: str | None = None  # a glob over dotted names: "0.weight", "*.bias", "0.block 1.*"
    module: str | None = None  # the owning module's type, subclasses included: Linear
    role: str | None = None  # the parameter's own name in its module: weight, bias
    min_ndim: int | None = None  # only tensors with at least this many dimensions
    position: str | None = None  # first | last: only the first/last module among the matches
    init: str = MISSING  # an initializer: normal, xavier_uniform, …, or a dotted path
    args: dict[str, Any] = field(default_factory=dict)


@dataclass
class InitEdit:
    """A direct edit after init and ties: `{param: "0.weight", index: [0, 0], value: 42}`."""

    param: str = MISSING  # one parameter's dotted name
    op: str = "set"  # set | add | mul
    value: float = MISSING
    index: list[int] | None = None  # one element (or row); None: the whole tensor


@dataclass
class InitConfig:
    # Unmatched rules are errors; model-agnostic rule sets say `strict: false` (a warning).
    strict: bool = True
    rules: list[InitRule] = field(default_factory=list)  # later rules override earlier ones
    edits: list[InitEdit] = field(default_factory=list)  # applied last, in order


@dataclass
class DeviceConfig:
    accelerator: str = "auto"  # auto | cpu | gpu | mps
    index: int | None = None  # which GPU with accelerator=gpu (None: the first)
    devices: Any = 1  # how many devices (or "auto"), for the trainer
    strategy: str = "auto"  # Lightning's strategy name, e.g. ddp
    precision: str = "32"  # 32 | bf16-mixed | 16-mixed


def register() -> None:
    """Put the schemas into Hydra's ConfigStore (idempotent)."""
    store = ConfigStore.instance()
    # ${sweep_direction:...}: Optuna's direction from sweep.objective and sweep.direction.
    # ${run_dir_suffix:...}: a run of a checkpoint names the run it reads (conf/hydra/runner.yaml).
    if not OmegaConf.has_resolver("run_dir_suffix"):
        OmegaConf.register_new_resolver("run_dir_suffix", run_dir_suffix)
    if not OmegaConf.has_resolver("sweep_direction"):
        OmegaConf.register_new_resolver("sweep_direction", optuna_direction)
    store.store(group="schema", name="model", node=ModelConfig)
    store.store(group="schema", name="init", node=InitConfig)
    store.store(group="schema", name="device", node=DeviceConfig)
