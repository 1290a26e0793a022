"""A sweep's jobs are composed once each, not twice.

Hydra's basic sweeper composes every job of a batch to check that all of them can be
(`validate_batch_is_legal`, so that a typo in the fifth job stops the sweep before the first
runs), throws those configs away, and the launcher composes each job again as it starts it:
two compositions per job, about 0.1 s each for the runner's config (issue 25). This keeps the
configs the check composed, and the launcher takes each one instead of composing it again:
the same call with the same master config and overrides, composed by the same loader, before
any job ran. A config is handed out once (the launcher then writes its job number into it);
a job that was not checked (another sweeper, a second launch) is composed as before.

Only for launchers that run the jobs in this process (the basic and the vectorized one):
joblib's and submitit's compose each job in its worker, which gets the loader pickled, so
nothing is kept for them (and nothing kept travels with the loader). At most KEEP_AT_MOST
configs wait at a time (about 160 kB each): a larger batch composes the rest twice, as Hydra
does.
"""

import weakref
from collections.abc import Sequence
from typing import Any

from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig

_hydras_load = ConfigLoaderImpl.load_sweep_config
IN_PROCESS = ("BasicLauncher", "VectorizedLauncher")  # launchers that run jobs in this process
KEEP_AT_MOST = 256
# Per loader: overrides → (master config, composed). Beside the loader, not in it: a loader
# pickled for a worker process leaves them behind.
_checked: "weakref.WeakKeyDictionary[Any, dict[tuple[str, ...], tuple[DictConfig, DictConfig]]]"
_checked = weakref.WeakKeyDictionary()


def _validate_batch_is_legal(self: Any, batch: Sequence[Sequence[str]]) -> None:
    """Sweeper.validate_batch_is_legal, keeping what it composes."""
    context = getattr(self, "hydra_context", None)  # (as Hydra's: a sweeper may have none)
    loader = context.config_loader if context is not None else self.config_loader
    config = self.config
    keep = type(getattr(self, "launcher", None)).__name__ in IN_PROCESS
    checked = _checked.setdefault(loader, {})
    for overrides in batch:
        composed = _hydras_load(loader, config, list(overrides))
        if keep and len(checked) < KEEP_AT_MOST:
            checked[tuple(overrides)] = (config, composed)


def _load_sweep_config(
    self: ConfigLoaderImpl, master_config: DictConfig, sweep_overrides: list[str]
) -> DictConfig:
    kept = _checked.get(self, {}).pop(tuple(sweep_overrides), None)
    if kept is not None and kept[0] is master_config:
        return kept[1]
    return _hydras_load(self, master_config, sweep_overrides)


def install() -> None:
    """Keep the configs a sweeper's check composes for the launcher (idempotent)."""
    Sweeper.validate_batch_is_legal = _validate_batch_is_legal  # type: ignore[method-assign]
    ConfigLoaderImpl.load_sweep_config = _load_sweep_config  # type: ignore[method-assign]
