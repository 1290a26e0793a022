"""The config tree: where conf/ lives, `compose()` as the CLI would, and `plain()` sections."""

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
        return hydra_compose(config_name="config", overrides=overrides)


def plain(cfg: DictConfig) -> dict[str, Any]:
    """A config section as resolved plain containers (what checkpoints and kwargs hold)."""
    container = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(container, dict)
    return {str(k): v for k, v in container.items()}
