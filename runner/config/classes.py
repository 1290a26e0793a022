"""A class a config names by dotted path, looked up with Hydra's own get_class."""

import importlib
import logging
from collections.abc import Callable

from hydra.utils import get_class


def class_at(target: object) -> type:
    """The class `target` names. Raises what get_class raises (ValueError: not a class; an
    ImportError, or whatever importing the module raised: not found), without the error
    get_class logs first: the config error says it once, with a close match."""
    logger = logging.getLogger("hydra.utils")
    disabled, logger.disabled = logger.disabled, True
    try:
        return get_class(str(target))
    finally:
        logger.disabled = disabled


def classes_in(module_name: str, keep: Callable[[type], bool]) -> list[str]:
    """Dotted names of the public classes a module defines or imports that `keep` accepts,
    when the module can be imported (for a close match to a misspelled one)."""
    try:
        module = importlib.import_module(module_name)
    except Exception:  # not a module at all: no suggestion from it
        return []
    return [
        f"{module_name}.{name}"
        for name, obj in vars(module).items()
        if isinstance(obj, type) and not name.startswith("_") and keep(obj)
    ]
