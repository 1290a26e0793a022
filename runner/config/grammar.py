"""The model section → a ModelSpec (the spec types are in model_spec.py): the grammar's parser.

The grammar (see README, "Writing a model"):
    entry  := "ReLU"                              a layer with no arguments
            | {type: Linear, <kwargs>...}         a layer: torch.nn, runner or dotted-path class
            | {block: NAME, args: {...}}          a fresh copy of model.blocks.NAME
            | {seq: [entry, ...]}                 an inline nn.Sequential
            | {ref: NAME}                         the one shared instance model.shared.NAME
            | {graph: [node, ...], out: NAME}     named values, merges (runner.config.graphs)
    row    := "LazyConv2d(6, kernel_size=5), ReLU()"   in a list: one entry per call, the
              book's PyTorch as it is written (runner.config.calls)
    Any entry in a list may add `name:` (its child name; `{i}` counts repeats) and `repeat: N`
    (for a block, also a list of argument sets). A block may declare `params:` (name →
    default); `"{expr}"` templates in its body use them (runner.config.expressions).
"""

from dataclasses import fields, replace
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from runner.config.arguments import is_int
from runner.config.block_args import check_params, defined, split_definition, unused_scope
from runner.config.entries import MAX_REPEAT, EntryParser
from runner.config.model_spec import ModelSpec
from runner.config.schema import ModelConfig
from runner.config.shapes import check_budget, check_features
from runner.config.ties import parse_ties
from runner.config.values import error_key, error_text
from runner.errors import Problems

__all__ = ["MAX_REPEAT", "parse_model", "parse_model_section"]


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
    parser = EntryParser(tables["blocks"], tables["shared"], problems)
    input_shape = _input_shape(raw.get("input_shape"), problems)
    if raw.get("net") in (None, []):
        problems.add("model.net", "empty: a model needs at least one entry, e.g. net: [ReLU]")
        return None
    parser.model_args = parser.scope = _model_args(raw.get("args"), problems)
    net = parser.node(raw["net"], "model.net")
    _check_unused(parser)
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


def _model_args(value: Any, problems: Problems) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.add("model.args", f"expected a mapping of names to values; got {value!r}")
        return {}
    for key in value:
        if not (isinstance(key, str) and key.isidentifier()) or key == "i":
            problems.add(f"model.args.{key}", "a name is an identifier (letters, digits, _), not i")
    return dict(value)


def _check_unused(parser: EntryParser) -> None:
    """Problems in shared instances and blocks no entry uses (or whose every use was refused)
    are reported too, a block's required parameters unset: a typo should not wait for its
    first use."""
    for name in parser.shared_defs:
        if defined(parser, parser.shared_defs, "shared", name, "model.shared"):
            parser.named("shared", name, f"model.shared.{name}", parser.model_args, "")
    for name, raw in parser.block_defs.items():
        check_params(parser, name, raw)
        if name not in parser.parsed_blocks:  # unused, or every use refused: check it alone
            scope = unused_scope(split_definition(raw)[0])
            parser.named("blocks", name, f"model.blocks.{name}", scope, "")


def _check_lazy_has_input(spec: ModelSpec, lazy_paths: list[str], problems: Problems) -> None:
    if lazy_paths and spec.input_shape is None:
        problems.add(
            "model.input_shape",
            f"needed to infer the input size left out at {', '.join(lazy_paths)}; "
            "set the shape of one sample, e.g. model.input_shape=[20]",
        )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
