"""`all_combinations`: every option of chosen config groups, as pytest parameters."""

import itertools
from pathlib import Path
from typing import Any

from runner.errors import did_you_mean
from runner.testing.settings import config_dir as find_config_dir

NOT_CHOICES = ("schema", "hydra")  # folders in conf/ that are not groups to choose from


def options(group: str, config_dir: str | Path | None = None) -> list[str]:
    """The options of `group` (e.g. "model"), from runner's conf/ and your config folder."""
    from runner.config import config_dir as runner_conf

    folders = [runner_conf(), *filter(None, [find_config_dir(config_dir)])]
    found = sorted({p.stem for f in folders for p in (f / group).glob("*.yaml")})
    if not found:
        groups = sorted(
            {d.name for f in folders for d in f.iterdir() if d.is_dir()} - set(NOT_CHOICES)
        )
        raise ValueError(
            f"all_combinations: no config group {group!r}; there are: {', '.join(groups)}"
            + did_you_mean(group, groups)
        )
    return found


def all_combinations(
    groups: list[str], config_dir: str | Path | None = None, **fixed: str
) -> list[Any]:
    """One pytest parameter per combination of the options of `groups`, each a list of
    overrides (`["model=mlp", "init=xavier"]`) with a readable id; `fixed` adds overrides to
    every combination (`all_combinations(["init"], model="rgnet")`)."""
    import pytest

    choices = [[f"{g}={o}" for o in options(g, config_dir)] for g in groups]
    base = [f"{k}={v}" for k, v in fixed.items()]
    return [
        pytest.param([*base, *combo], id="-".join(combo)) for combo in itertools.product(*choices)
    ]
