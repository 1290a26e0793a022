"""Init rules → parameters, direct edits, and the init report.

Precedence: rules are read in order and a later rule overrides an earlier one for every
parameter both match, so each tensor is filled exactly once, by the last rule that matches it.
A tensor no rule matches keeps its module's own initialization ("framework default").
Edits come after rules and ties, in order.
"""

import fnmatch
import logging
from dataclasses import dataclass

import torch
from torch import nn

from runner.config.arguments import is_int
from runner.config.init import EditSpec, InitSpec, RuleSpec
from runner.errors import Problems, did_you_mean, one_of
from runner.params.tensors import distinct_parameters
from runner.registry.initializers import NEEDS_2D

log = logging.getLogger("runner")


@dataclass(frozen=True)
class Entry:
    """One distinct parameter tensor, under every name it has."""

    names: tuple[str, ...]
    owner: nn.Module
    role: str
    tensor: torch.Tensor


def entries(net: nn.Module) -> list[Entry]:
    """Every distinct parameter, in state_dict order, with all its names."""
    result = []
    for names, p in distinct_parameters(net):
        owner_name, _, role = names[0].rpartition(".")
        result.append(Entry(names, net.get_submodule(owner_name), role, p))
    return result


def plan(net: nn.Module, spec: InitSpec, problems: Problems) -> dict[int, RuleSpec]:
    """Which rule fills which tensor (keyed by id of the parameter): the last rule matching it."""
    if not spec.rules:  # the usual case: no walk over every parameter's names
        return {}
    all_entries = entries(net)
    chosen: dict[int, RuleSpec] = {}
    for rule in spec.rules:
        matched = _matches(rule, all_entries)
        if not matched:
            _unmatched(rule, all_entries, spec.strict, problems)
        for e in matched:
            chosen[id(e.tensor)] = rule
    for rule in spec.rules:
        if rule.init not in NEEDS_2D:
            continue
        flat = [e for e in all_entries if chosen.get(id(e.tensor)) is rule and e.tensor.dim() < 2]
        if flat:
            problems.add(
                rule.path,
                f"{rule.init} needs tensors of 2 or more dimensions, but it matches "
                f"{flat[0].names[0]} of shape {list(flat[0].tensor.shape)}; add `role: weight` "
                "or `min_ndim: 2`",
            )
    return chosen


def _matches(rule: RuleSpec, all_entries: list[Entry]) -> list[Entry]:
    s = rule.selectors
    matched = [
        e
        for e in all_entries
        if ("param" not in s or any(fnmatch.fnmatchcase(n, s["param"]) for n in e.names))
        and (rule.module_cls is None or isinstance(e.owner, rule.module_cls))
        and ("role" not in s or e.role == s["role"])
        and ("min_ndim" not in s or e.tensor.dim() >= s["min_ndim"])
    ]
    if "position" in s and matched:
        owners = list(dict.fromkeys(id(e.owner) for e in matched))  # in model order
        keep = owners[0] if s["position"] == "first" else owners[-1]
        matched = [e for e in matched if id(e.owner) == keep]
    return matched


def _unmatched(rule: RuleSpec, all_entries: list[Entry], strict: bool, problems: Problems) -> None:
    names = [n for e in all_entries for n in e.names]
    hint = did_you_mean(rule.selectors["param"], names) if "param" in rule.selectors else ""
    got = ", ".join(f"{k}={v!r}" for k, v in rule.selectors.items())  # as the user wrote them
    message = (
        f"matches no parameter; got {got or 'no selector'}; "
        f"the parameters are {one_of(names, limit=20)}{hint}"
    )
    if strict:
        problems.add(rule.path, message + " (init.strict: false makes this a warning)")
    else:
        log.warning("%s: %s", rule.path, message)


def apply_rules(net: nn.Module, chosen: dict[int, RuleSpec]) -> int:
    """Fill each chosen tensor once. Returns how many tensors were filled."""
    filled = 0
    if not chosen:
        return filled
    with torch.no_grad():
        for e in entries(net):
            rule = chosen.get(id(e.tensor))
            if rule is not None and rule.init != "default":
                rule.fn(e.tensor, **rule.args)
                filled += 1
    return filled


def check_edits(
    net: nn.Module, edits: tuple[EditSpec, ...], transposed: set[str], problems: Problems
) -> None:
    """Edits name existing parameters (not a transposed tie's copy) and indices within them."""
    params = dict(net.named_parameters(remove_duplicate=False))
    for edit in edits:
        path = f"init.edits[{edit.index}]"
        if edit.param in transposed:
            problems.add(
                f"{path}.param",
                f"{edit.param!r} is computed from a transposed tie; edit the group's first member",
            )
            continue
        if edit.param not in params:
            problems.add(
                f"{path}.param",
                f"no parameter named {edit.param!r}{did_you_mean(edit.param, params)}; "
                f"allowed: {one_of(params, limit=20)}",
            )
            continue
        shape = tuple(params[edit.param].shape)
        at = edit.at or ()
        if len(at) > len(shape) or any(
            not is_int(i) or not -n <= i < n for i, n in zip(at, shape, strict=False)
        ):
            problems.add(
                f"{path}.index", f"{list(at)} is outside {edit.param} of shape {list(shape)}"
            )


def apply_edits(net: nn.Module, edits: tuple[EditSpec, ...]) -> None:
    """The chapter's direct edits: `net[0].weight.data[:] += 1`, `...[0, 0] = 42`."""
    params = dict(net.named_parameters(remove_duplicate=False))
    with torch.no_grad():
        for edit in edits:
            view = params[edit.param][edit.at] if edit.at else params[edit.param]
            if edit.op == "set":
                view.fill_(edit.value)
            elif edit.op == "add":
                view.add_(edit.value)
            else:
                view.mul_(edit.value)


@dataclass(frozen=True)
class ReportRow:
    name: str
    aliases: tuple[str, ...]  # the tensor's other names (shared modules, ties)
    shape: tuple[int, ...]
    set_by: str  # the rule's text, or "framework default"
    tied_from: str  # the name whose values a tie copied in, or ""
    edits: tuple[str, ...]
    stats: dict[str, float]  # runner.params.stats' value statistics; empty on the meta device


def report(
    net: nn.Module, chosen: dict[int, RuleSpec], spec: InitSpec, tied_from: dict[int, str]
) -> list[ReportRow]:
    """One row per distinct parameter, with its value statistics (runner.params.stats)."""
    from runner.params.stats import snapshot

    all_entries = entries(net)
    on_meta = bool(all_entries) and all_entries[0].tensor.device.type == "meta"
    stats = {} if on_meta else snapshot(net)
    rows = []
    for e in all_entries:
        rule = chosen.get(id(e.tensor))
        rows.append(
            ReportRow(
                name=e.names[0],
                aliases=e.names[1:],
                shape=tuple(e.tensor.shape),
                set_by=rule.text() if rule and rule.init != "default" else "framework default",
                tied_from=tied_from.get(id(e.tensor), ""),
                edits=tuple(x.text() for x in spec.edits if x.param in e.names),
                stats=stats.get(" = ".join(e.names), {}),
            )
        )
    return rows
