"""The init section → an InitSpec: rules (selectors, an initializer and its arguments) and
direct edits, checked before anything is built. runner.params.init_rules applies them."""

from dataclasses import dataclass, fields
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from torch import nn

from runner.config.arguments import check_arguments, signature_defaults
from runner.config.schema import InitConfig, InitEdit, InitRule
from runner.config.values import check_finite, check_limits, error_key, error_text, show
from runner.errors import Problems, did_you_mean, one_of
from runner.registry import layers as registry
from runner.registry.initializers import LIMITS, Initializer, resolve_initializer

POSITIONS = ("first", "last")
OPS = ("set", "add", "mul")
_SELECTORS = ("param", "module", "role", "min_ndim", "position")


@dataclass(frozen=True)
class RuleSpec:
    index: int
    selectors: dict[str, Any]  # only the ones given
    module_cls: type[nn.Module] | None
    init: str
    fn: Initializer
    args: dict[str, Any]

    @property
    def label(self) -> str:
        """How the init report names the rule."""
        return f"rules[{self.index}]"

    @property
    def path(self) -> str:
        """Its full config key, for problems."""
        return f"init.{self.label}"

    def text(self) -> str:
        """`rules[1]: module=Linear position=last role=weight → constant(value=42)`."""
        where = " ".join(f"{k}={v}" for k, v in self.selectors.items()) or "every parameter"
        args = ", ".join(f"{k}={v}" for k, v in self.args.items())
        return f"{self.label}: {where} → {self.init}({args})"


@dataclass(frozen=True)
class EditSpec:
    index: int
    param: str
    op: str
    value: float
    at: tuple[int, ...] | None

    def text(self) -> str:
        where = self.param + (str(list(self.at)) if self.at is not None else "")
        return f"edits[{self.index}]: {where} {self.op} {self.value}"


@dataclass(frozen=True)
class InitSpec:
    strict: bool
    rules: tuple[RuleSpec, ...]
    edits: tuple[EditSpec, ...]


def parse_init(cfg: DictConfig | None, problems: Problems) -> InitSpec:
    """Check the init section before building: initializers, their arguments, selectors.
    No init section means each module's own initialization."""
    try:  # merged into the schema: fills defaults; catches keys added past it (`+init.x=…`)
        merged = OmegaConf.merge(OmegaConf.structured(InitConfig), cfg or {})
        raw = OmegaConf.to_container(merged, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as e:
        problems.add(error_key("init", e), error_text(e))
        return InitSpec(True, (), ())
    assert isinstance(raw, dict)
    before = len(problems.items)
    for section, schema in (("rules", InitRule), ("edits", InitEdit)):
        known = [f.name for f in fields(schema)]
        for i, item in enumerate(raw[section]):  # `+init.rules.0.key=…` gets past the schema
            problems.unknown_keys(f"init.{section}[{i}]", item, known)
    if len(problems.items) > before:
        return InitSpec(True, (), ())
    rules = []
    for i, rule in enumerate(raw.get("rules") or []):
        parsed = _parse_rule(i, rule, problems)
        if parsed is not None:
            rules.append(parsed)
    edits = [_parse_edit(i, edit, problems) for i, edit in enumerate(raw.get("edits") or [])]
    return InitSpec(bool(raw.get("strict", True)), tuple(rules), tuple(edits))


def _parse_edit(i: int, edit: dict[str, Any], problems: Problems) -> EditSpec:
    path = f"init.edits[{i}]"
    if edit["op"] not in OPS:
        problems.add(
            f"{path}.op",
            f"unknown op; got {show(edit['op'])}; allowed: {one_of(OPS)}"
            + did_you_mean(edit["op"], OPS),
        )
    check_finite(path, {"value": edit["value"]}, problems)
    at = edit.get("index")
    if at is not None and not at:
        problems.add(
            f"{path}.index",
            "an empty index; got []; allowed: one integer per leading dimension, e.g. [0, 0] "
            "for one element or [0] for a row; leave it out to edit the whole tensor",
        )
    return EditSpec(i, edit["param"], edit["op"], edit["value"], tuple(at) if at else None)


def _parse_rule(i: int, rule: dict[str, Any], problems: Problems) -> RuleSpec | None:
    path = f"init.rules[{i}]"
    ok = True
    try:
        fn = resolve_initializer(rule["init"])
    except LookupError as e:
        problems.add(f"{path}.init", str(e))
        return None
    given = rule.get("args") or {}
    before = len(problems.items)
    checked = check_arguments(fn, given, f"{path}.args", rule["init"], problems, True)
    if checked is None:
        ok = False
    elif checked[1]:
        for key in checked[1]:
            problems.add(f"{path}.args.{key}", f"{rule['init']} needs {key!r}; it is missing")
        ok = False
    elif rule["init"] in LIMITS:  # a built-in: its values are checked too
        args = {**signature_defaults(fn), **checked[0]}
        check_finite(f"{path}.args", checked[0], problems)
        if len(problems.items) == before:  # types and finiteness first, then the limits
            check_limits(f"{path}.args", rule["init"], args, given, LIMITS[rule["init"]], problems)
    ok = ok and len(problems.items) == before
    module_cls = None
    if rule.get("module") is not None:
        try:
            module_cls = registry.resolve_layer(rule["module"])
        except LookupError as e:
            problems.add(f"{path}.module", str(e))
            ok = False
    position = rule.get("position")
    if position is not None and position not in POSITIONS:
        problems.add(
            f"{path}.position",
            f"unknown position {position!r}; allowed: {one_of(POSITIONS)}"
            + did_you_mean(position, POSITIONS),
        )
        ok = False
    if not ok:
        return None
    selectors = {k: rule[k] for k in _SELECTORS if rule.get(k) is not None}
    return RuleSpec(i, selectors, module_cls, rule["init"], fn, dict(checked[0]) if checked else {})
