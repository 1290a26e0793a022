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
from omegaconf import DictConfig

from runner.config.sections import parse_sweep
from runner.errors import ConfigError, Interrupted
from runner.rundir import point_latest
from runner.sweep.job import hold_sweep
from runner.sweep.output import write_summary
from runner.sweep.stop import SweepStop, in_process, release, resume_hint, say, watch
from runner.sweep.summary import Objective
from runner.sweep.vectorized import group_pending
from runner.trackers.tracking import prepare_sweep


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
