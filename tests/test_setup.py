"""`make setup EXTRAS=…` installs the extras whenever it is asked, also after a first `make`
(its single stamp used to answer "Nothing to be done"). Run in a throwaway copy of the project
whose new virtual environment sees this one's packages (a .pth file), so that only the
extra is downloaded."""

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
def test_make_setup_with_extras_after_a_plain_setup_installs_them(tmp_path):
    copy = tmp_path / "project"
    copy.mkdir()
    for name in ("Makefile", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, copy / name)
    for name in ("runner", "conf", "hydra_plugins"):
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "venv", str(copy / ".venv")], check=True)
    ours = sysconfig.get_paths()["purelib"]
    theirs = next((copy / ".venv" / "lib").glob("python3*/site-packages"))
    (theirs / "parent.pth").write_text(ours + "\n")  # torch and the rest, already installed

    def make(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["make", "setup", *args], cwd=copy, capture_output=True, text=True, timeout=900
        )

    def has_tensorboard() -> bool:
        python = copy / ".venv" / "bin" / "python"
        probe = (
            "import importlib.util, sys; sys.exit(importlib.util.find_spec('tensorboard') is None)"
        )
        return subprocess.run([python, "-c", probe]).returncode == 0

    assert make().returncode == 0
    if has_tensorboard():
        pytest.skip("tensorboard is installed in this environment: nothing to tell apart")
    assert "Nothing to be done" in make().stdout  # a second plain setup: nothing to do
    done = make("EXTRAS=tensorboard")
    assert done.returncode == 0, done.stderr[-2000:]
    assert has_tensorboard()
    assert Path(copy / ".venv" / ".extras-tensorboard").is_file()
