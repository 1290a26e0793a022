"""`--help` lists every config group and its options in a fraction of a second.

Hydra's help asks its config loader for the options of each group, and each such question
first deep-copies the whole config repository (Hydra's ConfigStore with it) so that a
`hydra.searchpath` given in the overrides cannot change the original. Help asks with no
overrides and no primary config, so there is nothing to change, but it still pays one copy per
question: about 120 of them for the runner's groups, most of `--help`'s time (issue 13). This
answers those questions from the repository itself; any other question goes to Hydra as before.
"""

from typing import Any

from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.core.object_type import ObjectType

_hydras = ConfigLoaderImpl.get_group_options


def _get_group_options(
    self: ConfigLoaderImpl,
    group_name: str,
    results_filter: ObjectType | None = ObjectType.CONFIG,
    config_name: str | None = None,
    overrides: list[str] | None = None,
) -> Any:
    if config_name is None and not overrides:  # no search path to apply: the repository as is
        return self.repository.get_group_options(group_name, results_filter)
    return _hydras(self, group_name, results_filter, config_name, overrides)


def install() -> None:
    """Answer Hydra's group listings without copying the repository (idempotent)."""
    ConfigLoaderImpl.get_group_options = _get_group_options  # type: ignore[method-assign]
