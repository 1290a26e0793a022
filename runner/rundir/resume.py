"""The command line that continues a run from its checkpoint."""

import shlex
from contextvars import ContextVar
from pathlib import Path
from typing import Any

# A run started from Python (runner.run.run): the overrides that compose its config, which the
# command line would have given (set by run(); Hydra's record has them otherwise).
PYTHON_OVERRIDES: ContextVar[tuple[str, ...]] = ContextVar("python_overrides", default=())


def resume_command(last: Path, note: str = "", changes: dict[str, Any] | None = None) -> str:
    """The command line that continues this run from `last`: the same overrides, but for
    `ckpt_path`, which points at `last`, and `changes` (key → value: a finished run's raised
    max_epochs), each key once."""
    overrides: list[str] = []
    try:
        from hydra.core.hydra_config import HydraConfig

        # Not the run directory: the resumed run gets a fresh one and leaves this one whole.
        replaced = ("ckpt_path=", "hydra.run.dir=", "hydra.sweep.dir=", "hydra.sweep.subdir=")
        overrides = [o for o in HydraConfig.get().overrides.task if not o.startswith(replaced)]
    except ValueError:  # run() called from Python, not from the command line
        overrides = list(PYTHON_OVERRIDES.get())
    changed = [f"{key}={value}" for key, value in (changes or {}).items()]
    keys = {o.split("=", 1)[0] for o in changed}
    latest = {o.split("=", 1)[0].lstrip("+~"): o for o in overrides}  # Hydra: the last one wins
    overrides = [o for o in latest.values() if o.split("=", 1)[0].lstrip("+~") not in keys]
    parts = ["python -m runner", *(f"--config-dir {shlex.quote(d)}" for d in _config_dirs())]
    parts += map(shlex.quote, [*overrides, *changed])
    command = " ".join([*parts, shlex.quote(f"ckpt_path={last.resolve()}")])
    return f"{command}   # {note}" if note else command


def _config_dirs() -> list[str]:
    """The --config-dir folders this run was given (they hold the options it chose)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        sources = HydraConfig.get().runtime.config_sources
    except ValueError:
        return []
    return [
        str(s.path).removeprefix("file://")
        for s in sources
        if s.provider == "command-line" and str(s.schema) == "file"
    ]
