"""Config unit tests for your own configs, in pytest: what a config *means*, one line each.

    from runner.testing import Model, all_combinations

    def test_my_mlp():
        m = Model("model=my_mlp", "init=small")   # composed with your folder, built on the CPU
        m.assert_parameters(count=1_290)
        m.assert_init("*.weight", std=0.01, rtol=0.2)
        m.assert_forward()
        m.assert_trains()

Your config folder is `runner_config_dir` in your pytest configuration (relative to its
rootdir), `--runner-config-dir` on pytest's command line, or `config_dir=` here. The pytest
plugin that reads them is registered when runner is installed. `import runner.testing` loads
no torch: the names below load on first use.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runner.testing.combinations import all_combinations
    from runner.testing.model import Model

__all__ = ["Model", "all_combinations"]

_LAZY = {"Model": "runner.testing.model", "all_combinations": "runner.testing.combinations"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'runner.testing' has no attribute {name!r}")
