"""Config files with a YAML mistake (a syntax error, a tab, a duplicate key) are reported as the
file, the line and the problem, with no traceback.

Hydra reads `file://` config folders (the shipped conf/ and `--config-dir`) through its
FileConfigSource, and a YAML error there escapes as a traceback. This subclass reports it as
a compact Hydra error instead. It keeps Hydra's class name: Hydra registers config sources by
name and keeps the one it already has, so whichever registers first, this one stays.
"""

from typing import Any

import yaml
from hydra._internal.core_plugins.file_config_source import FileConfigSource as _HydraFileSource
from hydra._internal.sources_registry import SourcesRegistry
from hydra.errors import ConfigCompositionException


class FileConfigSource(_HydraFileSource):
    def load_config(self, config_path: str) -> Any:
        try:
            return super().load_config(config_path)
        except yaml.YAMLError as e:
            where = f"{self.path}/{self._normalize_file_name(config_path)}"
            raise ConfigCompositionException(f"config error: {describe(e, where)}") from None


def describe(e: yaml.YAMLError, where: str) -> str:
    """`conf/model/x.yaml, line 3, column 1: found duplicate key net (while constructing a
    mapping at line 1)`."""
    if not isinstance(e, yaml.MarkedYAMLError) or e.problem_mark is None:
        return f"{where}: not valid YAML ({e})"
    mark = e.problem_mark
    text = f"{where}, line {mark.line + 1}, column {mark.column + 1}: {e.problem}"
    if e.context and e.context_mark is not None:
        text += f" ({e.context} at line {e.context_mark.line + 1})"
    return text


def install() -> None:
    """Read `file://` config folders through this source (idempotent)."""
    SourcesRegistry.instance().types["file"] = FileConfigSource
