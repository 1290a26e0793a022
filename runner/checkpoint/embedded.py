"""A config embedded in a file someone else wrote (a checkpoint's hyperparameters, an exported
file's metadata), checked before anything in it is instantiated.

A string prefix says little: Hydra resolves `_target_` by walking attributes, so
`runner.checkpoint.files.torch.save` *is* `torch.save`. So every name that resolves to code is
resolved here, by the same resolver its consumer uses, and the object itself is checked: the
module that defines it must be allowed, and it must be the kind of thing its key needs (an
nn.Module class for a layer, an Optimizer class, a scheduler class, a runner data module, a
registered initializer). Only allow-listed modules are imported while resolving
(runner.registry.trust). A `_target_` anywhere else, and any `${...}` interpolation (which
OmegaConf would evaluate on access), is refused.
"""

import sys
from collections.abc import Callable, Iterator
from typing import Any

import torch
from hydra._internal.utils import _locate  # the very resolver instantiate() uses
from torch import nn

from runner.config.data import LEARNING_TASKS
from runner.config.data_modules import is_data_module
from runner.errors import first_line
from runner.registry import initializers, layers
from runner.registry.trust import check_import, untrusted

# Modules whose classes a file's config may name, by kind; `allow` adds the caller's prefixes.
_DEFINED_IN = {
    "layer": ("torch.nn.",),  # and the runner's registered layers, by identity (not by module:
    # a runner class such as RunnerModule builds a whole nested config of its own)
    "optimizer": ("torch.optim.",),
    "scheduler": ("torch.optim.",),
    "data module": ("runner.train.data",),
}
_SCHEDULERS = (torch.optim.lr_scheduler.LRScheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
_KINDS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "optim.optimizer": ("optimizer", lambda o: _subclass(o, torch.optim.Optimizer)),
    "optim.scheduler": ("scheduler", lambda o: _subclass(o, _SCHEDULERS)),
    "data": ("data module", is_data_module),
}


# The sections a file's network is rebuilt, evaluated and resumed with. The others (logger,
# callbacks, stats, sweep, eval, ckpt_path) configured the run that wrote the file; a reader's
# own config decides them, so they are dropped unread: nothing in them is imported or checked.
REBUILT_FROM = ("model", "init", "device", "data", "optim", "trainer", "seed", "imports", "task")


def rebuilt_sections(config: Any) -> Any:
    """`config` with only the sections in REBUILT_FROM (anything else is left as it is, for
    embedded_problems to refuse)."""
    if not isinstance(config, dict):
        return config
    return {key: value for key, value in config.items() if key in REBUILT_FROM}


def embedded_problems(config: Any, task: Any, allow: tuple[str, ...] = ()) -> list[str]:
    """Every problem with what an embedded config names; empty when it is safe to build."""
    problems = []
    if task not in LEARNING_TASKS:
        problems.append(f"task: {task!r} is not one of {', '.join(LEARNING_TASKS)}")
    if not isinstance(config, dict):
        return [*problems, f"config: expected a mapping; got {type(config).__name__}"]
    problems += _imports_problems(config.get("imports"), allow)
    with untrusted(allow):
        for path, key, value in _walk(config, ""):
            where = f"{path}.{key}" if path else key
            if isinstance(value, str) and "${" in value:
                problems.append(
                    f"{where}: interpolations are not allowed in a config read from a file"
                )
            elif key == "_target_":
                problems += _target_problem(path, value, allow)
            elif isinstance(value, str) and "." in value and _names_code(path, key):
                problems += _name_problem(where, key, value, allow)
    return problems


def allowed_imports(config: dict[str, Any], allow: tuple[str, ...]) -> list[str]:
    """The modules the config's `imports` lists that are not imported yet and that `allow`
    permits: the caller imports them before building."""
    names = config.get("imports") or []
    return [
        n
        for n in names
        if isinstance(n, str) and n not in sys.modules and any(_covers(a, n) for a in allow)
    ]


def _covers(prefix: str, name: str) -> bool:
    return name == prefix.rstrip(".") or name.startswith(prefix)


def _imports_problems(names: Any, allow: tuple[str, ...]) -> list[str]:
    """The run imported these modules for their registered layers and initializers: a file may
    not import them by itself, so each must be imported already or allowed by the caller."""
    if names is None:
        return []
    if not isinstance(names, list):
        return [f"imports: expected a list of module names; got {type(names).__name__}"]
    problems = []
    for i, name in enumerate(names):
        if not isinstance(name, str):
            problems.append(f"imports[{i}]: expected a module name; got {name!r}")
        elif name not in sys.modules and not any(_covers(a, name) for a in allow):
            problems.append(
                f"imports[{i}]: the run that wrote it imported {name!r} (for the layers and "
                f"initializers it registers); import it first, or allow it: "
                f"runner.load(path, allow=({name!r},)), or imports=[{name}] on the command line"
            )
    return problems


def _walk(node: Any, path: str) -> Iterator[tuple[str, str, Any]]:
    """(path of the parent, key, value) for every leaf and every `_target_`."""
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        key = str(key) if isinstance(node, dict) else f"[{key}]"
        child = (f"{path}.{key}" if path else key) if not key.startswith("[") else path + key
        if isinstance(value, dict | list):
            yield from _walk(value, child)
        else:
            yield path, key, value


def _names_code(path: str, key: str) -> bool:
    """Keys the runner resolves to code: layer types in the model, an init rule's initializer
    and module type."""
    in_model = path == "model" or path.startswith(("model.", "model["))
    in_rules = path.startswith("init.rules[")
    return (in_model and key == "type") or (in_rules and key in ("init", "module"))


def _target_problem(path: str, target: Any, allow: tuple[str, ...]) -> list[str]:
    where = f"{path}._target_"
    if path not in _KINDS:
        return [f"{where}: a file's config may name code only at {', '.join(_KINDS)}; refused"]
    kind, fits = _KINDS[path]
    try:
        check_import(str(target))
        obj = _locate(str(target))
    except Exception as e:  # LookupError from the allow-list, ImportError from resolving
        return [f"{where}: {first_line(e)}"]
    return _object_problem(where, str(target), obj, kind, fits(obj), allow)


def _name_problem(where: str, key: str, name: str, allow: tuple[str, ...]) -> list[str]:
    try:
        if key == "init":
            fn = initializers.resolve_initializer(name)
            if any(
                fn is initializers.resolve_initializer(n) for n in initializers.initializer_names()
            ):
                return []
            return _object_problem(where, name, fn, "initializer", callable(fn), allow, own=False)
        cls = layers.resolve_layer(name)
    except LookupError as e:
        return [f"{where}: {first_line(e)}"]
    if any(cls is registered for registered in layers.runner_layers().values()):
        return []
    return _object_problem(where, name, cls, "layer", _subclass(cls, nn.Module), allow)


def _object_problem(
    where: str, name: str, obj: Any, kind: str, fits: bool, allow: tuple[str, ...], own: bool = True
) -> list[str]:
    """`own`: the runner's and torch's modules count as allowed homes for this kind."""
    home = getattr(obj, "__module__", None) or type(obj).__module__
    allowed = (*(_DEFINED_IN.get(kind, ()) if own else ()), *allow)
    if not fits:
        return [f"{where}: {name!r} is {_what(obj)}, not {_a(kind)}; refused, nothing ran"]
    if not (str(home) + ".").startswith(allowed):
        shown = ", ".join(allowed) or "registered initializers only"
        return [
            f"{where}: {name!r} is defined in {home}, which a file's config may not name for "
            f"{_a(kind)} ({shown}); refused, nothing ran. If you trust this file, pass "
            f"allow=({str(home) + '.'!r},) to runner.load"
        ]
    return []


def _a(kind: str) -> str:
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"


def _subclass(obj: Any, base: type | tuple[type, ...]) -> bool:
    return isinstance(obj, type) and issubclass(obj, base)


def _what(obj: Any) -> str:
    if isinstance(obj, type):
        return f"the class {obj.__module__}.{obj.__qualname__}"
    name = getattr(obj, "__qualname__", None)
    module = getattr(obj, "__module__", None)
    return f"{type(obj).__name__} {module}.{name}" if name else f"a {type(obj).__name__}"
