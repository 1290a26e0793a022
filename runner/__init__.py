"""runner: declarative deep-learning experiments. YAML in, a PyTorch model (and run) out.

    cfg = runner.compose(["model=rgnet"])   # the config `python -m runner model=rgnet` would use
    net = runner.build_net(cfg)             # the compiled nn.Module
    module = runner.build(cfg)              # a LightningModule whose .net is that module
    module = runner.load("outputs/…/checkpoints/last.ckpt")   # rebuilt from the checkpoint alone

`import runner` stays light (no torch, no Hydra): the names below load their modules on first
use.
"""

import importlib
import signal
import sys
import time
from typing import TYPE_CHECKING, Any


def early_signals() -> None:
    """For the commands only (`python -m runner`, `runner`): a signal while Python loads Hydra,
    torch and the runner (the first fraction of a second, before the runner's own handlers)
    ends the process as a signal before a run does later: one line, 128 + the signal, no
    traceback. The first signal decides; later ones are ignored. (Before Python runs this, in
    its own start-up, a Ctrl-C is Python's: a KeyboardInterrupt.)"""

    def end(signum: int, frame: object) -> None:
        for each in (signal.SIGINT, signal.SIGTERM):
            signal.signal(each, signal.SIG_IGN)
        # errors.stamped's format, written here: runner.errors may be half-imported right now.
        when, name = time.strftime("%H:%M:%S"), signal.Signals(signum).name
        print(f"[{when}] interrupted by {name} before the run started", file=sys.stderr)
        raise SystemExit(128 + signum)

    for each in (signal.SIGINT, signal.SIGTERM):
        signal.signal(each, end)


# `python -m runner…`: runpy imports this package first, with sys.argv[0] still "-m".
if sys.argv[:1] == ["-m"]:
    early_signals()

from runner.errors import ConfigError, RunFailed  # noqa: E402

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
