import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import runner

ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU; none is visible")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def compose():
    """runner.compose, pinned to the CPU so results don't depend on the machine."""

    def _compose(*overrides: str):
        return runner.compose(["device=cpu", *overrides])

    return _compose


@pytest.fixture
def cli(tmp_path):
    """Run `python -m runner ARGS` in a fresh process, its run directory in tmp_path."""

    def _cli(*args: str, run_dir: Path | None = None, env: dict | None = None):
        run_dir = run_dir or tmp_path / "run"
        command = [sys.executable, "-m", "runner", *args]
        if "-m" not in args and "--multirun" not in args:
            command.append(f"hydra.run.dir={run_dir}")
        return subprocess.run(
            command,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
            timeout=300,
        )

    return _cli


@pytest.fixture
def assemble_model():
    """Build a model from plain dicts: `assemble_model(model, init=None, seed=0)` → Built."""
    from omegaconf import OmegaConf

    from runner.config.grammar import parse_model
    from runner.config.init import parse_init
    from runner.errors import Problems
    from runner.model.assemble import assemble

    def _assemble(model: dict, init: dict | None = None, seed: int | None = 0, device="cpu"):
        problems = Problems()
        init_spec = parse_init(OmegaConf.create(init or {}), problems)
        problems.raise_if_any()
        return assemble(parse_model(OmegaConf.create(model)), init_spec, torch.device(device), seed)

    return _assemble
