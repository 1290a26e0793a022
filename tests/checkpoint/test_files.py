"""Checkpoint and export files are written without following or overwriting anything: the
write goes to a private temp directory (the safetensors library's own temp file too), so what a
killed writer left is removed by the next save; a link in a checkpoint's place is replaced,
never followed. (An export never overwrites an earlier file: tests/checkpoint/test_trust.py.)"""

import os
import subprocess
import sys

import pytest
import torch

from runner.checkpoint.files import atomic_save, safe_load
from tests.conftest import ROOT

KILLED_MID_WRITE = """
import os, sys
from pathlib import Path
from runner.checkpoint import files

def write(checkpoint, path):  # as safetensors does: its own temp file next to the target
    (Path(path).parent / ".tmpA1B2C3").write_bytes(b"half a checkpoint")
    os._exit(9)  # killed mid-write

files.checkpoint_format.write = write
files.atomic_save({"x": 1}, Path(sys.argv[1]))
"""


def test_what_a_killed_write_left_is_removed_by_the_next_save(tmp_path):
    path = tmp_path / "checkpoints" / "last.ckpt"
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_MID_WRITE, str(path)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
    )
    assert killed.returncode == 9, killed.stderr
    assert list(path.parent.rglob(".tmp*")), "the killed writer left its temp file"
    atomic_save({"x": torch.ones(1)}, path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]
    assert torch.equal(safe_load(path)["x"], torch.ones(1))


def test_a_link_in_a_checkpoints_place_is_replaced_and_a_directory_refused(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    path = tmp_path / "last.ckpt"
    path.symlink_to(victim)
    atomic_save({"x": torch.ones(1)}, path)
    assert victim.read_text() == "precious\n" and not path.is_symlink()
    other = tmp_path / "best.ckpt"
    (other / "inside").mkdir(parents=True)
    with pytest.raises(OSError, match=r"best\.ckpt"):
        atomic_save({"x": torch.ones(1)}, other)
    assert (other / "inside").is_dir() and sorted(os.listdir(tmp_path)) == [
        "best.ckpt",
        "last.ckpt",
        "victim.txt",
    ]
