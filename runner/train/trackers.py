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

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.config.tree import plain
from runner.errors import ConfigError

log = logging.getLogger("runner")

DEFAULT_EXPERIMENT = "runner"
# MLflow's default store: a SQLite file next to the runs (`mlflow ui --backend-store-uri
# sqlite:///outputs/mlflow.db` opens it), its artifacts beside it.
DEFAULT_TRACKING_URI = "sqlite:///outputs/mlflow.db"
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
        _quiet_mlflow()
        name = mlflow.get("experiment_name") or sweep_experiment(sweep_dir)
        with _fail_fast():
            mlflow_experiment(tracking_uri(mlflow), str(name))
    except Exception as e:  # each job checks its config and reports the problem itself
        log.warning("sweep: MLflow's store not prepared (%s); the jobs will say why", _reason(e))


def _quiet_mlflow() -> None:
    """MLflow and its database migrations log at INFO on the console: the runner says where
    the run went in one line instead. After the import, which sets MLflow's own levels."""
    import mlflow  # noqa: F401

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


@contextlib.contextmanager
def _fail_fast() -> Iterator[None]:
    """While a store is first reached: one attempt, 10 s, instead of MLflow's 7 retries with
    back-off (minutes before a server that is down is reported). A user's setting wins."""
    names = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
    added = [name for name in names if name not in os.environ]
    os.environ.update({name: names[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def _reason(error: BaseException) -> str:
    """An exception's first line, short: what a message can quote."""
    text = str(error).strip().splitlines()
    first = text[0] if text else type(error).__name__
    return first if len(first) <= 200 else first[:199] + "…"


def tracking_uri(options: dict[str, Any]) -> str:
    """The MLflow tracking URI; a relative SQLite path is made absolute (from the directory the
    command ran in), and its directory created."""
    uri = str(options.get("tracking_uri") or DEFAULT_TRACKING_URI)
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        path = Path(uri[len(prefix) :]).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        uri = prefix + str(path)
    elif uri.startswith(prefix):
        Path(uri[len(prefix) :]).parent.mkdir(parents=True, exist_ok=True)
    return uri


def mlflow_experiment(uri: str, name: str) -> str:
    """The id of MLflow experiment `name`: created if new (a SQLite store keeps its artifacts
    next to the database, not in ./mlruns of whatever directory the run started in), restored
    if it was deleted in the UI. Safe when several runs reach a new store at once: a SQLite
    store is created under a lock (MLflow's table migrations do not survive a race), and a
    server's "already exists" means another run created the experiment first."""
    from mlflow.tracking import MlflowClient

    location = None
    if uri.startswith("sqlite:///"):
        location = (Path(uri[len("sqlite:///") :]).parent / "mlartifacts").as_uri()
    with _store_lock(uri):
        for attempt in range(3):
            client = MlflowClient(uri)
            found = client.get_experiment_by_name(name)
            if found is not None:
                if found.lifecycle_stage == "deleted":
                    client.restore_experiment(found.experiment_id)
                    log.info("mlflow: experiment %r had been deleted; restored it", name)
                return str(found.experiment_id)
            try:
                return str(client.create_experiment(name, artifact_location=location))
            except Exception as e:
                if attempt == 2 or "already exists" not in str(e).lower():
                    raise
                time.sleep(0.2)  # another run created it: read it back
    raise AssertionError("unreachable")


@contextlib.contextmanager
def _store_lock(uri: str) -> Iterator[None]:
    """An exclusive lock on `<database>.lock` beside a SQLite store (POSIX), held while the
    store is first opened; nothing for other stores."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks here; parallel first runs may race
        yield
        return
    lock = Path(uri[len("sqlite:///") :] + ".lock")
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ended(error: BaseException) -> dict[str, Any]:
    """What a tracker records of a run that did not end well (result.json has the same)."""
    stopped = not isinstance(error, Exception)
    reason = _reason(error) if str(error).strip() else type(error).__name__
    return {"status": "interrupted" if stopped else "failed", "error": reason}


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
                with _fail_fast():
                    self.kept["mlflow"] = self._mlflow(opts)
            except Exception as e:
                key = "logger.mlflow.tracking_uri"
                raise ConfigError(
                    [f"{key}: cannot open MLflow's store at {str(uri)!r}: {_reason(e)}"]
                ) from e
        if "wandb" in self.options:
            opts = self.options["wandb"]
            try:
                logger = self._wandb(opts)
                _ = logger.experiment  # wandb.init: a missing login fails here
                self.kept["wandb"] = logger
            except Exception as e:
                hint = ""
                if not opts.get("offline", True):
                    hint = (
                        " (streaming needs `wandb login`; logger.wandb.offline=true writes it here)"
                    )
                raise ConfigError(
                    [f"logger.wandb: W&B could not start a run: {_reason(e)}{hint}"]
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

        _quiet_mlflow()
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
