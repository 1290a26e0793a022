"""MLflow's tracking store, as the runner uses it: the default SQLite file under outputs/, its
experiments (made once, under a lock, restored when deleted in the UI), and a first contact that
fails in seconds, not after MLflow's minutes of retries. MLflow is imported only when chosen."""

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger("runner")

# MLflow's default store: a SQLite file next to the runs (`mlflow ui --backend-store-uri
# sqlite:///outputs/mlflow.db` opens it), its artifacts beside it.
DEFAULT_TRACKING_URI = "sqlite:///outputs/mlflow.db"


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


def quiet_mlflow() -> None:
    """MLflow and its database migrations log at INFO on the console: the runner says where
    the run went in one line instead. After the import, which sets MLflow's own levels."""
    import mlflow  # noqa: F401

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


@contextlib.contextmanager
def fail_fast() -> Iterator[None]:
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


def reason(error: BaseException) -> str:
    """An exception's first line, short: what a message can quote."""
    text = str(error).strip().splitlines()
    first = text[0] if text else type(error).__name__
    return first if len(first) <= 200 else first[:199] + "…"
