"""Spec → a ready nn.Module: built on the target device, sized, initialized once, tied, edited.

Two paths, and the stage log says which one ran and why:
- meta (preferred): construct on the `meta` device (no memory), size lazy layers there,
  `to_empty` onto the target, then each module's own `reset_parameters` (skipped for modules
  whose every parameter an init rule sets anyway), then rules → ties → edits.
- direct: when the forward needs real values (FixedHiddenMLP's `while` loop calls `.item()`)
  or a module with its own tensors has no `reset_parameters`: construct on the target device
  (the constructors initialize), size for real, then rules → ties → edits.
`to_empty` gives every parameter new storage, so ties are made after it, never before.
"""

from dataclasses import dataclass, field

import torch
from omegaconf import DictConfig
from torch import nn

from runner.config.device import resolve_device
from runner.config.init import InitSpec, RuleSpec
from runner.config.model_spec import ModelSpec
from runner.config.spec import parse_build
from runner.errors import ConfigError, Problems
from runner.model.compile import DryPassError, check_forward, construct, size_lazy
from runner.model.memory import check_fits
from runner.params import init_rules, tying

META = torch.device("meta")


@dataclass
class Built:
    net: nn.Module
    path: str  # "meta" or "direct"
    why: str  # one line for the stage log
    sized: list[str]  # parameters a dry pass sized (uninitialized before it)
    origins: dict[int, str]  # id(module) → its config path, for diagnostics
    chosen: dict[int, RuleSpec] = field(default_factory=dict)  # id(param) → its rule
    tied_from: dict[int, str] = field(default_factory=dict)  # id(param) → tie note

    def report(self, init: InitSpec) -> list[init_rules.ReportRow]:
        return init_rules.report(self.net, self.chosen, init, self.tied_from)


def build_net(cfg: DictConfig, device: torch.device | str | None = None) -> nn.Module:
    """Compile `cfg.model`, initialized by `cfg.init`, on `device` (default: `cfg.device`'s).

    Seeds torch with `cfg.seed` first, so the same config builds the same parameters on the
    same device. Raises ConfigError for any problem in the config, all of them at once.
    """
    if not isinstance(cfg, DictConfig):
        raise TypeError(f"build_net: cfg is what runner.compose returns; got {type(cfg).__name__}")
    model, init, device_spec = parse_build(cfg)
    target = _device(device) if device is not None else resolve_device(device_spec).device
    seed = cfg.get("seed")
    return assemble(model, init, target, seed if isinstance(seed, int) else None).net


def _device(device: torch.device | str) -> torch.device:
    """The device build_net was given, or a ConfigError saying why it cannot be used."""
    try:
        target = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ConfigError([f"device: {device!r} is not a torch device ({e})"]) from e
    if target.type == "cuda" and not (
        torch.cuda.is_available() and torch.cuda.device_count() > (target.index or 0)
    ):
        raise ConfigError([f"device: {device!r}, but that GPU is not visible here"])
    return target


def assemble(model: ModelSpec, init: InitSpec, device: torch.device, seed: int | None) -> Built:
    """Build, size, initialize once, tie and edit. Raises ConfigError for config problems."""
    built = _on_meta(model, device)
    if isinstance(built, str):  # the reason the meta path cannot work
        if seed is not None:
            torch.manual_seed(seed)
        with device:
            net, origins = construct(model)
        sized = size_lazy(net, model, origins)
        built = Built(net, "direct", f"built directly on {device}: {built}", sized, origins)
    elif device != META:
        _to_empty(built.net, device)

    problems = Problems()  # everything that depends on the built model, reported together
    built.chosen = init_rules.plan(built.net, init, problems)
    tying.check_ties(built.net, model.ties, problems)
    transposed = {n for g in model.ties if g.transpose for n in g.params[1:]}
    init_rules.check_edits(built.net, init.edits, transposed, problems)
    problems.raise_if_any()

    if built.path == "meta":
        if seed is not None:
            torch.manual_seed(seed)
        skipped = _reset(built.net, built.chosen)
        left = f" ({skipped} left to init rules)" if skipped else ""
        built.why += f", then each module's reset_parameters on {device}{left}"
    init_rules.apply_rules(built.net, built.chosen)
    built.tied_from = tying.apply_ties(built.net, model.ties)
    init_rules.apply_edits(built.net, init.edits)
    if built.path == "meta" and not built.sized and not model.shapes_verified:
        # No forward has run and the static check could not cover every layer: check the
        # shapes on the real device (a batch of 2).
        check_forward(built.net, model, built.origins)
    return built


def _on_meta(model: ModelSpec, device: torch.device) -> Built | str:
    """The net built and sized on meta, or why that cannot work for this model. Raises
    ConfigError when its tensors cannot fit in `device`'s free memory."""
    with META:
        net, origins = construct(model)
    check_fits(net, device, origins)
    for name, module in net.named_modules():
        where, kind = origins.get(id(module), name), type(module).__name__
        plain = _plain_tensor_attribute(module)
        if plain is not None:
            # to_empty moves only parameters and buffers: a plain tensor would stay on meta.
            return f"{kind} ({where}) keeps a tensor in a plain attribute ({plain})"
        if _own_tensors(module) and _reset_hook(module) is None:
            return f"{kind} ({where}) has tensors of its own but no reset_parameters()"
    try:
        sized = size_lazy(net, model, origins)
    except DryPassError as e:
        return f"the forward of {e.layer} ({e.where}) needs real values ({e.cause})"
    if sized:
        check_fits(net, device, origins)  # now with the inferred sizes
    how = "sized on meta, " if sized else ""
    return Built(net, "meta", f"built on meta, {how}materialized with to_empty", sized, origins)


def _reset(net: nn.Module, chosen: dict[int, RuleSpec]) -> int:
    """Each module's own reset, as its constructor would have run it; returns how many were
    skipped because init rules set every one of their parameters (no double initialization)."""
    skipped = 0
    with torch.no_grad():
        for module in net.modules():
            params = list(module.parameters(recurse=False))
            if not _own_tensors(module):
                continue
            ruled = all(id(p) in chosen and chosen[id(p)].init != "default" for p in params)
            if params and ruled and not list(module.buffers(recurse=False)):
                skipped += 1
                continue
            hook = _reset_hook(module)
            assert hook is not None  # checked before choosing the meta path
            hook()
    return skipped


def _to_empty(net: nn.Module, device: torch.device) -> None:
    """`net.to_empty(device=device)`, without `empty_like` on meta tensors: that first call
    imports torch's meta registrations (~0.3 s), a third of a small model's whole inspect."""
    net._apply(lambda t: torch.empty(t.shape, dtype=t.dtype, device=device))


# nn.Module's own tables (parameters, buffers, children, hooks): a third of a conv's attributes,
# looked into for every module of every build
_MODULE_TABLES = frozenset(vars(nn.Module()))


def _plain_tensor_attribute(module: nn.Module) -> str | None:
    """The name of a tensor the module keeps outside its parameters and buffers (like the book's
    `self.rand_weight = torch.rand(20, 20)`), looking into lists, tuples and dicts too."""

    def holds_tensor(value: object, depth: int = 0) -> bool:
        if isinstance(value, torch.Tensor):
            return True
        if depth < 3 and isinstance(value, list | tuple | set):
            return any(holds_tensor(v, depth + 1) for v in value)
        if depth < 3 and isinstance(value, dict):
            return any(holds_tensor(v, depth + 1) for v in value.values())
        return False

    for attr, value in vars(module).items():
        if attr not in _MODULE_TABLES and holds_tensor(value):
            return f"self.{attr}"
    return None


def _own_tensors(module: nn.Module) -> bool:
    return any(True for _ in module.parameters(recurse=False)) or any(
        True for _ in module.buffers(recurse=False)
    )


def _reset_hook(module: nn.Module):
    return getattr(module, "reset_parameters", None) or getattr(module, "_reset_parameters", None)
