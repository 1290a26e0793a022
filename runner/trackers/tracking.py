"""The logger group → Lightning loggers, and what experiment trackers need around them.

csv and tensorboard write files into the run directory. MLflow and W&B keep one tracker run per
runner run across its stages (fit, test; eval has its own): the test stage writes into the run
the fit opened. At the end the run's plots, statistics and config go to the tracker as
artifacts, and the tracker's status says how the run ended (MLflow: FINISHED, FAILED or KILLED).

Names, so that `mlflow ui` shows a sweep as one experiment:
- a single run: experiment `runner` (or `logger.mlflow.experiment_name`), run named by its
  directory;
- a sweep: one experiment per sweep, named by its directory, one run per job, named by the
  job's overrides (`0: model=mlp init=xavier`).
"""

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.config.tree import plain
from runner.errors import ConfigError
from runner.trackers.mlflow_store import (
    DEFAULT_TRACKING_URI,
    fail_fast,
    mlflow_experiment,
    quiet_mlflow,
    reason,
    tracking_uri,
)

log = logging.getLogger("runner")

DEFAULT_EXPERIMENT = "runner"
# What a tracker receives from the run directory when the run ends.
TRACKERS = ("mlflow", "wandb")  # one tracker run across the stages of a runner run
ARTIFACTS = ("plots/*.png", "param_stats.csv", ".hydra/config.yaml", ".hydra/overrides.yaml")


@dataclass(frozen=True)
class Naming:
    """Where a run goes in a tracker: its experiment (group), its own name, and tags."""

    experiment: str
    run_name: str
    tags: dict[str, str] = field(default_factory=dict)
    sweep: bool = False


def naming(run_dir: Path, task: str) -> Naming:
    """From Hydra's config when Hydra runs this job; from the run directory otherwise."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    tags = {"runner.run_dir": str(run_dir.resolve()), "runner.task": task}
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        name = run_dir.name if run_dir.parent.name in ("", ".") else "/".join(run_dir.parts[-2:])
        return Naming(DEFAULT_EXPERIMENT, name if task == "train" else f"{task} {name}", tags)
    hydra = HydraConfig.get()
    sweep_dir = str(hydra.sweep.dir)
    # What sets the job apart, not where it logs (logger.*) or how the sweep runs.
    skip = ("sweep.", "logger", "hydra", "+logger", "hydra/")
    overrides = [o for o in hydra.overrides.task if not o.startswith(skip)]
    number = int(hydra.job.num)
    tags |= {"runner.sweep_dir": str(Path(sweep_dir).resolve()), "runner.job": str(number)}
    name = f"{number}: {' '.join(overrides)}"
    return Naming(sweep_experiment(sweep_dir), name, tags, sweep=True)


def sweep_experiment(sweep_dir: str) -> str:
    """The MLflow experiment (W&B group) of the sweep in `sweep_dir`."""
    return f"sweep {sweep_dir}"


def prepare_sweep(section: Any, sweep_dir: str) -> None:
    """Before a sweep's jobs start: MLflow's store and the sweep's experiment, made once, so
    that parallel jobs do not all create the database at the same moment."""
    options = (plain(section) if section is not None else None) or {}
    mlflow = options.get("mlflow")
    if not isinstance(mlflow, dict):
        return
    try:
        quiet_mlflow()
        name = mlflow.get("experiment_name") or sweep_experiment(sweep_dir)
        with fail_fast():
            mlflow_experiment(tracking_uri(mlflow), str(name))
    except Exception as e:  # each job checks its config and reports the problem itself
        log.warning("sweep: MLflow's store not prepared (%s); the jobs will say why", reason(e))


def ended(error: BaseException) -> dict[str, Any]:
    """What a tracker records of a run that did not end well (result.json has the same)."""
    stopped = not isinstance(error, Exception)
    why = reason(error) if str(error).strip() else type(error).__name__
    return {"status": "interrupted" if stopped else "failed", "error": why}


class Trackers:
    """The chosen loggers of one run, stage by stage, and their ending."""

    def __init__(self, section: Any, run_dir: Path, task: str = "train"):
        chosen = (
            plain(section) if section is not None and not isinstance(section, dict) else section
        )
        self.options: dict[str, dict[str, Any]] = {
            name: dict(opts) for name, opts in (chosen or {}).items() if opts is not None
        }
        self.run_dir = run_dir
        self.naming = naming(run_dir, task)
        self.mlflow_run_id: str | None = None
        self.mlflow_uri: str | None = None
        # Trackers' loggers serve every stage: the test stage writes into the fit's run.
        self.kept: dict[str, Any] = {}
        self.wandb_mode = os.environ.get("WANDB_MODE")  # Lightning's offline mode sets it

    def start(self) -> None:
        """Open the trackers' runs now, before anything is built or trained: a store that
        cannot be reached, or a W&B run that cannot start, is a ConfigError naming the key
        (not a traceback once training is under way)."""
        if "mlflow" in self.options:
            opts = self.options["mlflow"]
            uri = opts.get("tracking_uri") or DEFAULT_TRACKING_URI
            try:
                with fail_fast():
                    self.kept["mlflow"] = self._mlflow(opts)
            except Exception as e:
                key = "logger.mlflow.tracking_uri"
                raise ConfigError(
                    [f"{key}: cannot open MLflow's store at {str(uri)!r}: {reason(e)}"]
                ) from e
        if "wandb" in self.options:
            opts = self.options["wandb"]
            try:
                logger = self._wandb(opts)
                _ = logger.experiment  # wandb.init: a missing login fails here
                self.kept["wandb"] = logger
            except Exception as e:
                _restore("WANDB_MODE", self.wandb_mode)  # Lightning set it for offline runs
                hint = ""
                if not opts.get("offline", True):
                    hint = (
                        " (streaming needs `wandb login`; logger.wandb.offline=true writes it here)"
                    )
                raise ConfigError(
                    [f"logger.wandb: W&B could not start a run: {reason(e)}{hint}"]
                ) from e

    def loggers(self, version: str = "") -> list[Any] | bool:
        """Lightning loggers for one stage, the files of csv and tensorboard in
        `run_dir/logs/[version/]`; False for none (Lightning's "no logger"). Missing packages
        were reported by the config check."""
        made = []
        for name, opts in self.options.items():
            logger = self.kept.get(name) or self._make(name, opts, version)
            if name in TRACKERS:
                self.kept[name] = logger
            made.append(logger)
        return made or False

    def _make(self, name: str, opts: dict[str, Any], version: str) -> Any:
        from pytorch_lightning import loggers

        if name == "csv":
            return loggers.CSVLogger(self.run_dir, name="logs", version=version)
        if name == "tensorboard":
            return loggers.TensorBoardLogger(self.run_dir, name="logs", version=version)
        if name == "mlflow":
            return self._mlflow(opts)
        if name == "wandb":
            return self._wandb(opts)
        raise ValueError(f"unknown logger {name!r}")  # the config check lists the names

    def _mlflow(self, opts: dict[str, Any]) -> Any:
        from pytorch_lightning.loggers import MLFlowLogger

        quiet_mlflow()
        self.mlflow_uri = tracking_uri(opts)
        experiment = opts.get("experiment_name") or self.naming.experiment
        mlflow_experiment(self.mlflow_uri, experiment)
        logger = MLFlowLogger(
            experiment_name=experiment,
            run_name=opts.get("run_name") or self.naming.run_name,
            tracking_uri=self.mlflow_uri,
            tags={
                **self.naming.tags,
                **{str(k): str(v) for k, v in (opts.get("tags") or {}).items()},
            },
        )
        self.mlflow_run_id = logger.run_id  # creates the run now: later stages join it
        log.info(
            "mlflow: run %s in experiment %r at %s", logger.run_id, experiment, self.mlflow_uri
        )
        return logger

    def _wandb(self, opts: dict[str, Any]) -> Any:
        import wandb
        from pytorch_lightning.loggers import WandbLogger

        # wandb/ in the run directory: not under logs/, which the csv logger wants to itself.
        self.run_dir.mkdir(parents=True, exist_ok=True)
        return WandbLogger(
            project=opts.get("project") or DEFAULT_EXPERIMENT,
            name=opts.get("name") or self.naming.run_name,
            group=opts.get("group") or (self.naming.experiment if self.naming.sweep else None),
            tags=list(opts.get("tags") or []) or None,
            save_dir=str(self.run_dir),
            offline=bool(opts.get("offline", True)),
            # The runner's stdout holds only its reports: W&B must not capture the console.
            settings=wandb.Settings(console="off", silent=True),
        )

    def finish(self, ok: bool, interrupted: bool = False, result: dict[str, Any] | None = None):
        """Send the run's artifacts and end every tracker run with the run's outcome (`result`:
        what result.json holds, or for a run that did not end well, its error). A tracker that
        cannot be reached is reported, not raised: the run itself is done."""
        from pytorch_lightning.utilities import rank_zero_only

        if getattr(rank_zero_only, "rank", 0) != 0:  # DDP workers: rank 0 speaks for the run
            return
        files = sorted({p for pattern in ARTIFACTS for p in self.run_dir.glob(pattern)})
        if self.mlflow_run_id is not None:
            status = "KILLED" if interrupted else "FINISHED" if ok else "FAILED"
            try:
                self._finish_mlflow(files, status, result)
            except Exception as e:
                log.error("mlflow: could not record the run's end at %s: %s", self.mlflow_uri, e)
        if "wandb" in self.kept:
            try:
                self._finish_wandb(files, ok)
            finally:
                _restore("WANDB_MODE", self.wandb_mode)

    def _finish_mlflow(self, files: list[Path], status: str, result: dict[str, Any] | None):
        from mlflow.tracking import MlflowClient

        client = MlflowClient(self.mlflow_uri)
        run_id = str(self.mlflow_run_id)
        for path in files:
            folder = path.parent.relative_to(self.run_dir).as_posix()
            client.log_artifact(run_id, str(path), None if folder == "." else folder)
        if result is not None:
            client.log_dict(run_id, result, "result.json")
        client.set_terminated(run_id, status)

    def _finish_wandb(self, files: list[Path], ok: bool) -> None:
        import shutil

        import wandb

        run = wandb.run
        if run is None:
            return
        # Files in the run's own files/ directory are what W&B uploads with the run.
        for path in files:
            target = Path(run.dir) / path.relative_to(self.run_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        offline = run.settings.mode in ("offline", "dryrun")
        where = Path(run.dir).parent  # the run's own directory, files/ inside it
        # Lightning's WandbLogger never ends the run: a later run in this process needs its own.
        run.finish(exit_code=0 if ok else 1)
        if offline:
            log.info("wandb: offline run in %s; upload it with: wandb sync %s", where, where)


def _restore(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
