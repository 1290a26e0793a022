"""The whole sweep's own settings, checked once before anything is written, as a Hydra
callback listed first in conf/hydra/runner.yaml: before the run directory guard probes, and so
makes, the sweep's directory. A mistake in them leaves no directory behind."""

import sys
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, ListConfig, OmegaConf

from runner.config.arguments import is_int
from runner.config.run_keys import check_sweep
from runner.errors import ConfigError, Problems
from runner.sweep.stop import say


class SweepSettings(Callback):
    """The sweep section, the launcher's keys and Optuna's settings."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            _check_sweep_section(config)
            _check_launcher(config.hydra.launcher)
            _check_optuna(config.hydra.sweeper)
        except ConfigError as e:
            say(f"config error: {e}")
            sys.exit(2)


def _check_sweep_section(config: DictConfig) -> None:
    """The sweep section (resume, objective, direction) is the whole sweep's: a mistake in it
    is refused before any job runs, not by every job."""
    section = config.get("sweep")
    problems = Problems()
    if isinstance(section, DictConfig):
        check_sweep(OmegaConf.to_container(section, resolve=True), problems)
    problems.raise_if_any()


def _check_launcher(launcher: DictConfig) -> None:
    """A key the launcher's class does not take (`+hydra.launcher.max_member=4`, which Hydra's
    instantiation refuses only with a TypeError, the directory made), and the vectorized
    launcher's own settings (it checks them again, for a caller other than the runner's CLI)."""
    import inspect

    from hydra.utils import get_class

    target = str(launcher.get("_target_", ""))
    if target.startswith("hydra_plugins.runner_vectorized"):
        from runner.sweep.vectorized import check_max_members

        check_max_members(launcher.get("max_members"))
    try:
        taken = inspect.signature(get_class(target)).parameters
    except Exception:  # not importable: Hydra says so when it instantiates it
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in taken.values()):
        return  # it takes any keyword (joblib's, submitit's launchers)
    problems = Problems()
    problems.unknown_keys("hydra.launcher", list(launcher), ["_target_", *taken])
    problems.raise_if_any()


def _check_optuna(sweeper: DictConfig) -> None:
    """Hydra's Optuna sweeper's settings (hparams_search=optuna): Optuna refused these only
    once the sweep's directory was made, in its own words ("No trials are completed yet" for
    n_trials=0, "division by zero" for n_jobs=0, an AssertionError)."""
    if "optuna" not in str(sweeper.get("_target_", "")):
        return
    problems = Problems()
    for key in ("n_trials", "n_jobs"):
        value = sweeper.get(key)
        if not is_int(value) or value < 1:
            problems.add(f"hydra.sweeper.{key}", f"got {value!r}; allowed: an integer ≥ 1")
    rate = sweeper.get("max_failure_rate")
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
        problems.add(
            "hydra.sweeper.max_failure_rate",
            f"got {rate!r}; allowed: a number from 0 to 1 (the share of failed trials that "
            "ends the study)",
        )
    given = sweeper.get("direction")
    for d in given if isinstance(given, ListConfig | list) else [given]:
        if str(getattr(d, "name", d)) not in ("minimize", "maximize"):
            problems.add(
                "hydra.sweeper.direction",
                f"got {d!r}; allowed: minimize, maximize (or set sweep.direction=min|max, "
                "from which the runner's hparams_search=optuna derives it)",
            )
    problems.raise_if_any()
