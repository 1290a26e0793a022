"""Config files with a YAML mistake (a syntax error, a tab, a duplicate key), or past what a
config needs (bytes that are not UTF-8, aliases expanding past MAX_NODES, nesting past MAX_DEPTH)
are reported as the file, the line and the problem, with no traceback, before OmegaConf expands
anything (it copies every alias: a 500-byte file can ask for 10^9 nodes).

Hydra reads `file://` config folders (the shipped conf/ and `--config-dir`) through its
FileConfigSource, and a YAML error there escapes as a traceback. This subclass reports it as
a compact Hydra error instead. It keeps Hydra's class name: Hydra registers config sources by
name and keeps the one it already has, so whichever registers first, this one stays.

Hydra reads and parses every file again for each composition, once per job of a sweep; here
a file's text (and that of Hydra's own `pkg://` configs) is parsed once per process, keyed by
the text itself (an edited file is read anew), and each composition gets its own copy.
"""

import copy
import functools
import io
import os
from typing import Any

import yaml
from hydra._internal.core_plugins.file_config_source import FileConfigSource as _HydraFileSource
from hydra._internal.core_plugins.importlib_resources_config_source import (
    ImportlibResourcesConfigSource as _HydraPackageSource,
)
from hydra._internal.sources_registry import SourcesRegistry
from hydra.errors import ConfigCompositionException
from hydra.plugins.config_source import ConfigResult, ConfigSource
from omegaconf import DictConfig, ListConfig, OmegaConf

MAX_NODES = 100_000  # values, lists and mappings once every alias is expanded
MAX_DEPTH = 64  # lists and mappings inside each other (a `seq` in a `seq` is two); OmegaConf
# recurses per level and fails past about 90 (Hydra's merge adds its own frames)


class FileConfigSource(_HydraFileSource):
    def load_config(self, config_path: str) -> Any:
        normalized = self._normalize_file_name(config_path)
        where = f"{self.path}/{normalized}"
        full_path = os.path.realpath(os.path.join(self.path, normalized))
        if not os.path.exists(full_path):
            return super().load_config(config_path)  # Hydra's own error for a missing file
        try:
            return _result(self, _read(full_path))
        except yaml.YAMLError as e:
            raise ConfigCompositionException(f"config error: {describe(e, where)}") from None
        except OutOfBounds as e:
            raise ConfigCompositionException(f"config error: {where}{e}") from None


class ImportlibResourcesConfigSource(_HydraPackageSource):
    """Hydra's `pkg://` configs (its own `hydra/...`, a plugin's), parsed once per process as
    well; what Hydra ships is read as Hydra reads it, errors included."""

    def _read_config(self, res: Any) -> ConfigResult:
        return _result(self, res.read_bytes().decode("utf-8"))


def _result(source: ConfigSource, text: str) -> ConfigResult:
    """What Hydra's sources return for a file's `text`: its config (a copy of the one parsed
    once) and its `# @package` header."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")  # text mode's newlines, as Hydra's
    return ConfigResult(
        config=copy.deepcopy(_parsed(text)),
        path=f"{source.scheme()}://{source.path}",
        provider=source.provider,
        header=ConfigSource._get_header_dict(text[:512]),  # Hydra reads the first 512
    )


@functools.lru_cache(maxsize=512)
def _parsed(text: str) -> DictConfig | ListConfig:
    """The file's config, as Hydra's OmegaConf.load makes it, once its bounds are checked;
    shared by every caller (they copy it). A YAML error is raised anew on each call."""
    check_bounds(text)
    return OmegaConf.load(io.StringIO(text))


class OutOfBounds(ValueError):
    """A file past a limit: its text says where (`, line 3, column 5: …`)."""


def _read(path: str) -> str:
    """The file as text, or OutOfBounds: `, line N, column M: not UTF-8 text …`."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise OutOfBounds(
            f", line {line}, column {column}: not UTF-8 text (byte 0x{data[e.start]:02x}); "
            "allowed: UTF-8 only; save the file as UTF-8"
        ) from None


def check_bounds(text: str) -> None:
    """Raise OutOfBounds when `text`, every alias expanded, has more than MAX_NODES nodes or
    nests deeper than MAX_DEPTH; counted on the parser's events (no recursion, nothing copied):
    an alias adds its anchor's nodes, and its depth below where it stands."""
    count, depth, reach = 0, 0, 0
    open_at: list[list[Any]] = []  # [anchor, count at its start, its level, deepest inside]
    anchors: dict[str, tuple[int, int]] = {}  # anchor → (nodes, levels it spans)
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent) and event.anchor in anchors:
            nodes, levels = anchors[event.anchor]
            count, reach = count + nodes, depth + levels
        elif isinstance(event, yaml.ScalarEvent):
            count, reach = count + 1, depth
            if event.anchor:
                anchors[event.anchor] = (1, 0)
        elif isinstance(event, yaml.CollectionStartEvent):
            count, depth, reach = count + 1, depth + 1, depth + 1
            open_at.append([event.anchor, count - 1, depth, depth])
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, start, level, inside = open_at.pop()
            if anchor:
                anchors[anchor] = (count - start, inside - level + 1)
            depth, reach = depth - 1, inside
        if open_at:
            open_at[-1][3] = max(open_at[-1][3], reach)
        if count > MAX_NODES or reach > MAX_DEPTH:
            mark = event.start_mark
            what = (
                f"{count:,} values once its aliases are expanded; allowed: at most {MAX_NODES:,}"
                if count > MAX_NODES
                else f"nested {reach} lists and mappings deep; allowed: at most {MAX_DEPTH}"
            )
            raise OutOfBounds(f", line {mark.line + 1}, column {mark.column + 1}: {what}")


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
    """Read `file://` config folders and `pkg://` packages through these sources
    (idempotent)."""
    SourcesRegistry.instance().types["file"] = FileConfigSource
    SourcesRegistry.instance().types["pkg"] = ImportlibResourcesConfigSource
