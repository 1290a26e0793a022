"""The config: composed by Hydra from conf/, checked section by section into a RunSpec.

Light on import (no torch), so `--help` and `--cfg job` stay fast: the validators are in
`runner.config.spec` (the whole config) and one module per section.
"""

from runner.config.tree import compose, config_dir, plain

__all__ = ["compose", "config_dir", "plain"]
