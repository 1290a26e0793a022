"""The model section → a ModelSpec (the spec types are in model_spec.py): the grammar's parser.

The grammar (see README, "Writing a model"):
    entry  := "ReLU"                              a layer with no arguments
            | {type: Linear, <kwargs>...}         a layer: torch.nn, runner or dotted-path class
            | {block: NAME}                       a fresh copy of model.blocks.NAME
            | {seq: [entry, ...]}                 an inline nn.Sequential
            | {ref: NAME}                         the one shared instance model.shared.NAME
    Any entry in a list may add `name:` (its child name; `{i}` counts repeats) and `repeat: N`.
"""

from dataclasses import fields, replace
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException
from torch import nn

from runner.config.arguments import check_arguments, is_int
from runner.config.model_spec import LayerSpec, ModelSpec, Node, RefSpec, SeqSpec
from runner.config.schema import ModelConfig
from runner.config.shapes import check_budget, check_features, check_sizes
from runner.config.ties import parse_ties
from runner.config.values import error_key, error_text
from runner.errors import Problems, did_you_mean, one_of
from runner.registry import layers as registry

_KINDS = ("type", "block", "seq", "ref")
MAX_REPEAT = 10_000  # copies of one entry: each is a module object (and a name) before any size
_PLACEMENT = ("name", "repeat")


def parse_model(model_cfg: DictConfig) -> ModelSpec:
    """Validate the `model` section alone. Raises ConfigError listing every problem."""
    problems = Problems()
    spec = parse_model_section(model_cfg, problems)
    problems.raise_if_any()
    assert spec is not None
    return spec


def parse_model_section(cfg: DictConfig, problems: Problems) -> ModelSpec | None:
    try:
        resolved = (
            OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
            if isinstance(cfg, DictConfig | ListConfig)
            else cfg  # a file's config with no model section, or a bare value for one
        )
    except MissingMandatoryValue as e:
        problems.add(error_key("model", e), "required, and no value was given")
        return None
    except OmegaConfBaseException as e:
        problems.add(error_key("model", e), f"cannot resolve the value: {error_text(e)}")
        return None
    if not isinstance(resolved, dict):  # a model file that is a list, or a bare value
        problems.add(
            "model",
            f"expected a mapping with a net: entry (and input_shape, blocks, …); got "
            f"{type(resolved).__name__} {_short(resolved)}; a model file lists its layers "
            "under net:, e.g. `net: [ReLU]`",
        )
        return None
    raw: dict[str, Any] = {str(k): v for k, v in resolved.items()}
    # `+model.key=…` slips past the schema: catch it here
    problems.unknown_keys("model", raw, [f.name for f in fields(ModelConfig)])
    tables = {}
    for table in ("blocks", "shared"):
        value = raw.get(table) or {}
        if not isinstance(value, dict):
            problems.add(f"model.{table}", f"expected a mapping of names to entries; got {value!r}")
            value = {}
        tables[table] = value
    parser = _ModelParser(tables["blocks"], tables["shared"], problems)
    input_shape = _input_shape(raw.get("input_shape"), problems)
    if raw.get("net") in (None, []):
        problems.add("model.net", "empty: a model needs at least one entry, e.g. net: [ReLU]")
        return None
    net = parser.node(raw["net"], "model.net")
    for name in parser.shared_defs:  # report problems in unused shared instances too
        parser.named("shared", name, f"model.shared.{name}")
    if net is None:
        return None
    ties = parse_ties(raw.get("tie") or [], problems)
    spec = ModelSpec(net, parser.shared, input_shape, raw.get("num_outputs"), ties)
    _check_lazy_has_input(spec, parser.lazy_paths, problems)
    if not check_budget(spec, problems):  # before any walk over the expanded model
        return None
    return replace(spec, shapes_verified=check_features(spec, problems))


def _input_shape(value: Any, problems: Problems) -> tuple[int, ...] | None:
    if value is None:
        return None
    if isinstance(value, list) and value and all(is_int(v) and v > 0 for v in value):
        return tuple(value)
    problems.add(
        "model.input_shape",
        f"expected a list of positive integers, one sample's shape such as [20]; got {value!r}",
    )
    return None


def _check_lazy_has_input(spec: ModelSpec, lazy_paths: list[str], problems: Problems) -> None:
    if lazy_paths and spec.input_shape is None:
        problems.add(
            "model.input_shape",
            f"needed to infer the input size left out at {', '.join(lazy_paths)}; "
            "set the shape of one sample, e.g. model.input_shape=[20]",
        )


class _ModelParser:
    def __init__(self, blocks: dict[str, Any], shared: dict[str, Any], problems: Problems):
        self.block_defs, self.shared_defs = blocks, shared
        self.problems = problems
        self.blocks: dict[str, Node | None] = {}
        self.shared: dict[str, Node] = {}
        self.lazy_paths: list[str] = []
        self._stack: list[str] = []  # block/shared names being parsed, to catch cycles

    def node(self, raw: Any, path: str) -> Node | None:
        """One entry, or a list of entries (a sequence)."""
        if isinstance(raw, list):
            return self.sequence(raw, path)
        if isinstance(raw, dict):
            extra = [k for k in _PLACEMENT if k in raw]
            if extra:
                self.problems.add(
                    f"{path}.{extra[0]}", "only entries inside a list can be named or repeated"
                )
        return self.entry(raw, path)

    def sequence(self, raw: list[Any], path: str) -> SeqSpec | None:
        children: list[tuple[str, Node]] = []
        used: set[str] = set()  # the names so far (a set: a repeat adds up to MAX_REPEAT)
        ok = True
        for i, item in enumerate(raw):
            item_path = f"{path}[{i}]"
            node = self.entry(item, item_path)
            if node is None:
                ok = False
                continue
            for name in self._child_names(item, item_path, start=len(children)):
                if name in used:
                    self.problems.add(f"{item_path}.name", f"child name {name!r} is used twice")
                    ok = False
                used.add(name)
                children.append((name, node))
        return SeqSpec(path, tuple(children)) if ok else None

    def _child_names(self, item: Any, path: str, start: int) -> list[str]:
        repeat = item.get("repeat", 1) if isinstance(item, dict) else 1
        if not (is_int(repeat) and 1 <= repeat <= MAX_REPEAT):
            self.problems.add(
                f"{path}.repeat", f"expected an integer from 1 to {MAX_REPEAT:,}; got {repeat!r}"
            )
            return []
        pattern = item.get("name") if isinstance(item, dict) else None
        if pattern is None:  # positional, like nn.Sequential's own "0", "1", …
            return [str(start + i) for i in range(repeat)]
        pattern = str(pattern)
        if repeat > 1 and "{i}" not in pattern:
            self.problems.add(
                f"{path}.name",
                f"{pattern!r} would name all {repeat} repeats alike; put {{i}} where the count "
                f"goes, e.g. '{pattern} {{i}}'",
            )
            return []
        names = [pattern.replace("{i}", str(i)) for i in range(repeat)]
        for name in names:
            if not name or "." in name or hasattr(nn.Sequential(), name):
                self.problems.add(
                    f"{path}.name",
                    f"{name!r} cannot name a submodule: names must be non-empty, contain no '.', "
                    "and not clash with an nn.Module attribute",
                )
                return []
        return names

    def entry(self, raw: Any, path: str) -> Node | None:
        if isinstance(raw, str):
            return self.layer(raw, {}, path)
        if not isinstance(raw, dict):
            self.problems.add(
                path,
                f"expected an entry such as {{type: Linear, ...}} or a layer name; got {raw!r}",
            )
            return None
        kinds = [k for k in _KINDS if k in raw]
        if len(kinds) != 1:
            found = " and ".join(kinds) if kinds else one_of(raw)
            hints = [did_you_mean(k, _KINDS) for k in raw if not kinds and k not in _PLACEMENT]
            hint = next((h for h in hints if h), "")
            self.problems.add(
                path, f"an entry needs exactly one of type, block, seq, ref; it has {found}{hint}"
            )
            return None
        kind = kinds[0]
        value = raw[kind]
        rest = {k: v for k, v in raw.items() if k not in (kind, *_PLACEMENT)}
        if kind == "type":
            if not isinstance(value, str):
                self.problems.add(f"{path}.type", f"expected a layer name; got {value!r}")
                return None
            return self.layer(value, rest, path)
        if rest:
            key = next(iter(rest))
            self.problems.add(
                f"{path}.{key}", f"unexpected key next to {kind!r}; allowed: {kind}, name, repeat"
            )
        if kind == "seq":
            if not isinstance(value, list):
                self.problems.add(f"{path}.seq", f"expected a list of entries; got {value!r}")
                return None
            return self.sequence(value, f"{path}.seq")
        table = "blocks" if kind == "block" else "shared"
        defs = self.block_defs if kind == "block" else self.shared_defs
        if value not in defs:
            what = "block" if kind == "block" else "shared instance"
            allowed = one_of(defs) if defs else f"none defined (add model.{table}.{value})"
            self.problems.add(
                f"{path}.{kind}",
                f"no {what} named {value!r} in model.{table}; allowed: {allowed}"
                + did_you_mean(value, defs),
            )
            return None
        node = self.named(table, value, f"model.{table}.{value}")
        if node is None:
            return None
        return node if kind == "block" else RefSpec(path, value)

    def named(self, table: str, name: str, path: str) -> Node | None:
        """A block or shared definition, parsed once however often it is used."""
        done = self.blocks if table == "blocks" else self.shared
        if name in done:
            return done[name]
        key = f"{table}.{name}"
        if key in self._stack:
            cycle = " → ".join([*self._stack[self._stack.index(key) :], key])
            self.problems.add(path, f"{name!r} contains itself ({cycle})")
            return None
        self._stack.append(key)
        defs = self.block_defs if table == "blocks" else self.shared_defs
        node = self.node(defs[name], path)
        self._stack.pop()
        if table == "blocks":
            self.blocks[name] = node
        elif node is not None:
            self.shared[name] = node
        return node

    def layer(self, type_name: str, kwargs: dict[str, Any], path: str) -> LayerSpec | None:
        try:
            cls = registry.resolve_layer(type_name)
        except LookupError as e:
            self.problems.add(f"{path}.type", str(e))
            return None
        checked = check_arguments(cls, kwargs, path, type_name, self.problems)
        if checked is None:
            return None
        kwargs, missing = checked
        if not check_sizes(path, type_name, kwargs, self.problems):
            return None
        if missing:
            lazy = registry.lazy_variant(cls)
            lazy_checked = (
                check_arguments(lazy, kwargs, path, type_name, Problems()) if lazy else None
            )
            if lazy is not None and lazy_checked is not None and not lazy_checked[1]:
                self.lazy_paths.append(path)
                return LayerSpec(path, type_name, lazy, kwargs)
            for key in missing:
                self.problems.add(f"{path}.{key}", f"{type_name} needs {key!r}; it is missing")
            return None
        return LayerSpec(path, type_name, cls, kwargs)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
