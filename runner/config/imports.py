"""`imports: [mypkg.layers]`: the user's modules, imported before the config is checked, so the
layers and initializers they register (`@runner.register_layer`) can be named in YAML.

The user's own command line or config names them: that is their permission to run that code.
A config read from a file someone else wrote is another matter (runner.checkpoint.embedded).
"""

import importlib
import pkgutil
import re
import sys
from typing import Any

from runner.config.values import UNRESOLVED, show
from runner.errors import Problems, did_you_mean

_DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def import_modules(names: Any, problems: Problems) -> None:
    """Import every module `imports` lists; a name that is not a module path, or a module that
    cannot be imported (or raises while it is), is a problem naming `imports[i]`."""
    if names in (None, UNRESOLVED):
        return
    if not isinstance(names, list):
        problems.add(
            "imports", f"expected a list of module names such as [mypkg.layers]; got {show(names)}"
        )
        return
    for i, name in enumerate(names):
        key = f"imports[{i}]"
        if not (isinstance(name, str) and _DOTTED.fullmatch(name)):
            problems.add(
                key, f"expected a dotted module name such as mypkg.layers; got {show(name)}"
            )
            continue
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:
            problems.add(key, f"cannot import {name!r}: {e}" + _close_module(name, e.name))
        except Exception as e:  # the user's module raised while it was imported
            problems.add(key, f"importing {name!r} raised {type(e).__name__}: {e}")
        except KeyboardInterrupt:  # raised by the module: a signal is Interrupted, not this
            problems.add(key, f"importing {name!r} raised KeyboardInterrupt")
        except SystemExit as e:  # sys.exit() at import: a config error, not the runner's exit
            problems.add(
                key,
                f"importing {name!r} called sys.exit({e.code!r}); a module to "
                "import must define layers or initializers, not end the program",
            )


def _close_module(name: str, missing: str | None) -> str:
    """A close match among the modules next to the one that is missing."""
    if not missing or not name.startswith(missing):
        return ""
    parent, _, leaf = missing.rpartition(".")
    try:
        where = sys.modules[parent].__path__ if parent else None
    except (KeyError, AttributeError):
        return ""
    return did_you_mean(leaf, (m.name for m in pkgutil.iter_modules(where)))
