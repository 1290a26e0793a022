"""runner: declarative deep-learning experiments. YAML in, a PyTorch model (and run) out.

    cfg = runner.compose(["model=rgnet"])   # the config `python -m runner model=rgnet` would use
    net = runner.build_net(cfg)             # the compiled nn.Module
    module = runner.build(cfg)              # a LightningModule whose .net is that module
    module = runner.load("outputs/…/checkpoints/last.ckpt")   # rebuilt from the checkpoint alone

`import runner` stays light (no torch, no Hydra): the names below load their modules on first
use.
"""

import importlib
from typing import TYPE_CHECKING, Any

from runner.errors import ConfigError, RunFailed

if TYPE_CHECKING:
    from runner.config import compose
    from runner.model.assemble import build_net
    from runner.registry.initializers import register_initializer
    from runner.registry.layers import register_layer
    from runner.train.module import build
    from runner.train.reload import load

__all__ = [
    "ConfigError",
    "RunFailed",
    "build",
    "build_net",
    "compose",
    "load",
    "register_initializer",
    "register_layer",
]

_LAZY = {
    "compose": "runner.config",
    "build": "runner.train.module",
    "build_net": "runner.model.assemble",
    "load": "runner.train.reload",
    "register_layer": "runner.registry.layers",
    "register_initializer": "runner.registry.initializers",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'runner' has no attribute {name!r}")
