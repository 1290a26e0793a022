"""The pytest plugin (entry point `pytest11`): the `runner_config_dir` setting and fixture."""

from pathlib import Path

import pytest

from runner.testing import settings


def pytest_addoption(parser: pytest.Parser) -> None:
    help_text = "the folder with your runner configs (same layout as runner's conf/)"
    parser.addini("runner_config_dir", help_text + ", relative to the rootdir")
    parser.addoption("--runner-config-dir", default=None, help=help_text)


def pytest_configure(config: pytest.Config) -> None:
    chosen = config.getoption("--runner-config-dir") or config.getini("runner_config_dir")
    if chosen:
        base = Path.cwd() if config.getoption("--runner-config-dir") else config.rootpath
        settings.configured_dir = (base / chosen).resolve()


@pytest.fixture
def runner_config_dir() -> Path | None:
    """The config folder runner.testing composes with (None: runner's own conf/ only)."""
    return settings.config_dir(None)
