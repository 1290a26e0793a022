"""The config tree: where conf/ lives, `compose()` as the CLI would, and `plain()` sections."""

import json
import re
import weakref
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from runner.config import schema, yaml_files

_PACKAGE = Path(__file__).resolve().parents[1]  # runner/
yaml_files.install()  # a YAML mistake in a config file: its file and line, no traceback


def config_dir() -> Path:
    """The shipped `conf/`: inside the package when installed, at the repo's top otherwise."""
    candidates = (_PACKAGE / "conf", _PACKAGE.parent / "conf")
    for candidate in candidates:
        if (candidate / "config.yaml").is_file():
            return candidate
    looked = " and ".join(str(c) for c in candidates)
    raise FileNotFoundError(f"runner's conf/ is missing: looked in {looked}")


def compose(overrides: list[str] | None = None) -> DictConfig:
    """Compose the experiment config exactly as `python -m runner` would, without running it.

    `overrides` are command-line style (`["model=rgnet", "seed=1"]`). Usable any number of times
    in one process. Your own config folders join with `hydra.searchpath=[file:///abs/dir]`.
    Raises Hydra's errors for unknown options or keys.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if overrides is not None and not (
        isinstance(overrides, list | tuple) and all(isinstance(o, str) for o in overrides)
    ):
        raise TypeError(
            "runner.compose: overrides are a list of strings such as ['model=rgnet', 'seed=1']; "
            f"got {overrides!r}"
        )
    schema.register()
    overrides = list(overrides or [])
    if GlobalHydra.instance().is_initialized():
        # Inside a running Hydra app (or an outer `initialize`): reuse its search path.
        return hydra_compose(config_name="config", overrides=overrides)
    directory = str(config_dir())
    with initialize_config_dir(config_dir=directory, version_base="1.3", job_name="runner"):
        cfg = hydra_compose(config_name="config", overrides=overrides)
    _COMPOSED[id(cfg)] = overrides
    weakref.finalize(cfg, _COMPOSED.pop, id(cfg), None)
    return cfg


def in_defaults_list(group: str) -> bool:
    """Whether conf/config.yaml's defaults list chooses `group` (an option of it is then set
    with `group=NAME`, not added with `+group=NAME`)."""
    root = OmegaConf.load(config_dir() / "config.yaml")
    defaults = root.get("defaults", []) if isinstance(root, DictConfig) else []
    return group in {str(next(iter(d))) for d in defaults if not isinstance(d, str)}


# The overrides each config that compose() returned was made from (by id, while it lives): a
# run started from Python prints the same resume command as the command line would.
_COMPOSED: dict[int, list[str]] = {}


def overrides_of(cfg: DictConfig) -> list[str]:
    """The command-line overrides that compose `cfg`: those compose() was given, then a
    `key=value` for every value changed since (`+key=value` for a key added). A config not
    made by compose(): [] and its changes from the default config."""
    given = list(_COMPOSED.get(id(cfg), []))
    # As written, not resolved: a value the run fills in later (data=table's model sizes from
    # its file) cannot be resolved yet, and the overrides are what was written.
    now, then = (_leaves(OmegaConf.to_container(c)) for c in (cfg, compose(given)))
    changed = [
        f"{'' if key in then else '+'}{key}={_value(value)}"
        for key, value in now.items()
        if key not in then or then[key] != value
    ]
    return given + [o for o in changed if not o.lstrip("+").startswith("ckpt_path=")]


def _leaves(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict) and tree:
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out |= _leaves(value, f"{prefix}{key}.")
        return out
    return {prefix.rstrip("."): tree}


def _value(value: Any) -> str:
    """A value as Hydra's override grammar reads it back."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str) and not re.fullmatch(r"[\w./:-]+", value):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return json.dumps(value) if isinstance(value, list | dict) else str(value)


def plain(cfg: DictConfig) -> dict[str, Any]:
    """A config section as resolved plain containers (what checkpoints and kwargs hold)."""
    container = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(container, dict)
    return {str(k): v for k, v in container.items()}
