"""The summary as a Hydra callback (configured in conf/hydra/runner.yaml), so it works under every
launcher: after each job, wherever that job ran, the table so far; when the sweep ends, the
table and the plot, one line per outcome, and a non-zero exit when any job failed. Before the
first job, the experiment trackers' store (MLflow's database) is made once."""

import sys
from pathlib import Path
from typing import Any, NoReturn

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, ListConfig

from runner.config.sections import parse_sweep
from runner.errors import ConfigError, Interrupted
from runner.rundir import point_latest
from runner.sweep.job import hold_sweep
from runner.sweep.output import write_summary
from runner.sweep.stop import SweepStop, in_process, release, resume_hint, say, watch
from runner.sweep.summary import Objective
from runner.sweep.vectorized import group_pending
from runner.trackers.tracking import prepare_sweep


class SweepSettings(Callback):
    """The whole sweep's own settings (the sweep section, the launcher's), checked once before
    anything is written: this callback comes first (conf/hydra/runner.yaml), before the run
    directory guard probes, and so makes, the sweep's directory."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            _check_sweep_section(config)
            _check_launcher(config)
            _check_optuna(config.hydra.sweeper)
        except ConfigError as e:
            _refuse(e)


class SweepSummary(Callback):
    # Whether a sweep started in this process, and where: an error once a job of it has ended
    # that is not Hydra's own config error is the sweeper's (runner.__main__).
    started = False
    sweep_dir: Path | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        launcher = str(config.hydra.launcher.get("_target_", ""))
        # The sweep's lock first (a live sweep's directory is refused with nothing written),
        # then a signal stops the sweep whole.
        watch(config, in_process=in_process(launcher))
        overrides = tuple(
            o for o in config.hydra.overrides.task if not o.startswith("sweep.resume=")
        )
        try:
            hold_sweep(_sweep_dir(config), overrides, parse_sweep(config.get("sweep")).resume)
        except ConfigError as e:  # another sweep's directory: refused before any job runs
            _refuse(e)
        SweepSummary.started = True
        SweepSummary.sweep_dir = _sweep_dir(config)
        # The experiment trackers' store, made once before parallel jobs would race to it.
        prepare_sweep(config.get("logger"), str(config.hydra.sweep.dir))

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        if HydraConfig.get().mode == RunMode.MULTIRUN and not group_pending():
            write_summary(_sweep_dir(config), _objective(config), plot=False)
        _stop_if_asked()  # a signal between in-process jobs: stop before the next one

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        _stop_if_asked()
        sweep_dir = _sweep_dir(config)
        summary = write_summary(sweep_dir, _objective(config))
        point_latest(sweep_dir)  # outputs/latest: the newest run or sweep
        _stop_if_asked()  # one that came while the summary was written
        release()
        records, failed = summary.records, summary.failed
        say(f"sweep: {len(records)} job(s) in {sweep_dir}; summary: {sweep_dir / 'summary.md'}")
        best, name = summary.best, summary.objective.name
        missing = summary.missing_objective()
        if best is not None:
            first = summary.configs[0]
            spread = first.metrics[name]
            over = f"mean {spread.mean:.4g} over {spread.n} seeds" if spread.n > 1 else ""
            value = over or f"{best.metric(name):.4g}"
            say(f"sweep: best by {summary.objective.says}: {first.label}: {value}")
            if summary.resolution.startswith("**Not resolved"):
                say("sweep: " + summary.resolution.replace("**", ""))
        elif missing is not None:
            say(f"config error: {missing}")
        if failed:
            numbers = ", ".join(str(r.number) for r in failed)
            say(f"sweep: {len(failed)} of {len(records)} jobs failed: {numbers}")
            refused = [str(r.number) for r in failed if r.config_error]
            if refused:  # a rerun as it stands would be refused again
                jobs = f"job{'s' if len(refused) > 1 else ''} {', '.join(refused)}"
                say(
                    f"sweep: {jobs} refused the config (each job's message says why): "
                    "fix the config files or the overrides first"
                )
            say(f"sweep: rerun the failed ones with: {resume_hint(sweep_dir)}")
            # Every job refused its config: the sweep's mistake, as a single run's would be.
            mistakes = len(failed) == len(records) and all(r.config_error for r in failed)
            sys.exit(2 if mistakes else 1)
        if missing is not None:
            sys.exit(2)


def _stop_if_asked() -> None:
    if SweepStop.signum is not None:
        raise Interrupted(SweepStop.signum)  # runner.__main__ writes the summary so far


def _refuse(error: ConfigError) -> NoReturn:
    say(f"config error: {error}")
    sys.exit(2)


def _sweep_dir(config: DictConfig) -> Path:
    return Path(str(config.hydra.sweep.dir))


def _objective(config: DictConfig) -> Objective:
    return Objective.of(parse_sweep(config.get("sweep")))


def _check_launcher(config: DictConfig) -> None:
    """The launcher's settings, refused before the sweep's directory is made: a key its class
    does not take (`+hydra.launcher.max_member=4`, which Hydra's instantiation refuses only
    with a TypeError, the directory made), and the vectorized launcher's own (it checks them
    again, for a caller other than the runner's CLI)."""
    launcher = config.hydra.launcher
    _check_launcher_keys(launcher)
    if str(launcher.get("_target_", "")).startswith("hydra_plugins.runner_vectorized"):
        from runner.sweep.vectorized import check_max_members

        check_max_members(launcher.get("max_members"))


def _check_launcher_keys(launcher: DictConfig) -> None:
    import inspect

    from hydra.utils import get_class

    from runner.errors import Problems

    try:
        taken = inspect.signature(get_class(str(launcher.get("_target_")))).parameters
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
    from runner.errors import Problems

    if "optuna" not in str(sweeper.get("_target_", "")):
        return
    problems = Problems()
    for key in ("n_trials", "n_jobs"):
        value = sweeper.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
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


def _check_sweep_section(config: DictConfig) -> None:
    """The sweep section (resume, objective, direction) is the whole sweep's: a mistake in it
    is refused before any job runs."""
    from omegaconf import OmegaConf

    from runner.config.run_keys import check_sweep
    from runner.errors import Problems

    section = config.get("sweep")
    problems = Problems()
    if isinstance(section, DictConfig):
        check_sweep(OmegaConf.to_container(section, resolve=True), problems)
    problems.raise_if_any()
