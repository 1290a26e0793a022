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

# The signals that stop a run, each recorded as such (result.json `interrupted`, the checkpoint
# kept, exit 128 + the signal): Ctrl-C, a scheduler's or `timeout`'s SIGTERM, and SIGHUP, the
# terminal of an SSH session closing under the run.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def early_signals() -> None:
    """For the commands only (`python -m runner`, `runner`): a signal while Python loads Hydra,
    torch and the runner (the first fraction of a second, before the runner's own handlers)
    ends the process as a signal before a run does later: one line, 128 + the signal, no
    traceback. The first signal decides; later ones are ignored. (Before Python runs this, in
    its own start-up, a Ctrl-C is Python's: a KeyboardInterrupt.)"""

    def end(signum: int, frame: object) -> None:
        ending()
        # errors.stamped's format, written here: runner.errors may be half-imported right now.
        when, name = time.strftime("%H:%M:%S"), signal.Signals(signum).name
        print(f"[{when}] interrupted by {name} before the run started", file=sys.stderr)
        raise SystemExit(128 + signum)

    for each in STOP_SIGNALS:
        signal.signal(each, end)


def ending() -> None:
    """The command is ending on a signal: the stop signals do nothing from now on, through
    Python's shutdown too (which would put the default handlers back, and a second Ctrl-C
    would kill the process with another exit code)."""
    import atexit

    for each in STOP_SIGNALS:  # not SIG_IGN yet: a signal already pending
        signal.signal(each, ignore)  # would raise "ignored due to race condition"
    atexit.register(_ignore_at_exit)


def ignore(signum: int, frame: object) -> None:
    """A handler that does nothing: a signal after the one that is ending the process."""


def _ignore_at_exit() -> None:
    for each in STOP_SIGNALS:
        signal.signal(each, signal.SIG_IGN)  # kept by Python's shutdown, unlike a function


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
