"""The logger group: loggers by name, each with its own options, checked before anything runs.

    logger=csv                    # the default: logs/metrics.csv
    logger=[csv,mlflow]           # several at once
    logger=none                   # none (logger=[] too): result.json and the plots remain
    logger.mlflow.tracking_uri=http://mlflow.lab:5000

The trackers (mlflow, wandb) and tensorboard are optional dependencies: a missing one is named
with the command that installs it.
"""

import importlib.util
from typing import Any

from runner.config.values import show
from runner.errors import Problems, did_you_mean, one_of

# Each logger's options: name → (the types allowed, as the message says them).
_TEXT = ((str, type(None)), "a string or null")
OPTIONS: dict[str, dict[str, tuple[tuple[type, ...], str]]] = {
    "csv": {},
    "tensorboard": {},
    "mlflow": {
        "tracking_uri": _TEXT,  # null: sqlite:///outputs/mlflow.db
        "experiment_name": _TEXT,  # null: 'runner', or one experiment per sweep
        "run_name": _TEXT,  # null: the run directory, or the job's overrides in a sweep
        "tags": ((dict, type(None)), "a mapping of tag → value, e.g. {team: vision}, or null"),
    },
    "wandb": {
        "project": _TEXT,
        "name": _TEXT,
        "group": _TEXT,
        "tags": ((list, type(None)), "a list of strings, e.g. [baseline,cpu], or null"),
        "offline": ((bool,), "true or false"),
    },
}
LOGGERS = tuple(OPTIONS)
# Loggers whose packages are optional dependencies: the module imported, and the extra.
EXTRAS = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}
# MLflow's tracking stores by URI scheme (MLflow 3 retired the plain-directory file store).
URI_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks")
URI_EXAMPLES = "sqlite:///path/to/mlflow.db, http://host:5000, postgresql://…"


def check_loggers(section: dict[str, Any], problems: Problems) -> None:
    """Loggers by name, their options, and their packages; `logger.NAME=null` is off."""
    for name, options in section.items():
        path = f"logger.{name}"
        if name not in OPTIONS:
            problems.add(
                path, f"unknown logger; allowed: {one_of(LOGGERS)}" + did_you_mean(name, LOGGERS)
            )
            continue
        if options is None:
            continue
        if not isinstance(options, dict):
            problems.add(path, f"expected a mapping or null; got {show(options)}")
            continue
        allowed = OPTIONS[name]
        for key, value in options.items():
            if key not in allowed:
                problems.add(
                    f"{path}.{key}",
                    f"the {name} logger takes no option {key!r}; allowed: "
                    f"{one_of(allowed) or 'none'}" + did_you_mean(key, allowed),
                )
            elif not isinstance(value, allowed[key][0]):
                problems.add(f"{path}.{key}", f"expected {allowed[key][1]}; got {show(value)}")
            else:
                _check_value(f"{path}.{key}", key, value, problems)
        if name in EXTRAS and importlib.util.find_spec(name) is None:
            problems.add(path, f"{name} is not installed; {_install(name)}")
        elif name == "mlflow" and _sqlite(options) and _missing("sqlalchemy", "alembic"):
            problems.add(
                path,
                "MLflow's SQLite store needs sqlalchemy and alembic; not installed: "
                f"{', '.join(_missing('sqlalchemy', 'alembic'))}; {_install(name)}",
            )


def _check_value(path: str, key: str, value: Any, problems: Problems) -> None:
    """What the type check cannot see: the URI's scheme, the tags' items."""
    if key == "tracking_uri" and isinstance(value, str):
        scheme = value.split(":", 1)[0] if ":" in value else ""
        if scheme not in URI_SCHEMES:
            retired = (
                " (MLflow 3 no longer keeps runs in a plain directory)"
                if (scheme in ("", "file"))
                else ""
            )
            problems.add(
                path,
                f"not a tracking URI MLflow can store runs in{retired}; got {show(value)}; "
                f"allowed: a URI of {one_of(URI_SCHEMES)}, e.g. {URI_EXAMPLES}"
                + did_you_mean(scheme, URI_SCHEMES),
            )
        elif scheme == "sqlite" and not value.startswith("sqlite:///"):
            problems.add(path, f"a SQLite URI is sqlite:///<path>; got {show(value)}")
    if key == "tags" and isinstance(value, list):
        for i, tag in enumerate(value):
            if not isinstance(tag, str):
                problems.add(f"{path}[{i}]", f"expected a string; got {show(tag)}")
    if key == "tags" and isinstance(value, dict):
        for tag, tag_value in value.items():
            if not isinstance(tag_value, str | int | float | bool):
                problems.add(f"{path}.{tag}", f"expected a string or number; got {show(tag_value)}")


def _sqlite(options: dict[str, Any]) -> bool:
    uri = options.get("tracking_uri")
    return uri is None or str(uri).startswith("sqlite:")


def _missing(*modules: str) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


def _install(extra: str) -> str:
    return f"pip install 'runner[{extra}]' (or make setup EXTRAS={extra})"
