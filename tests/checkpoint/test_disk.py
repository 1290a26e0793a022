"""A full or read-only disk: a clear message naming the path, the previous checkpoint whole,
result.json where the disk allows, no traceback. Uses small tmpfs mounts (needs root)."""

import json
import subprocess
from pathlib import Path

import pytest

from runner.checkpoint.files import safe_load

# A model whose checkpoints (~270 kB) fill a 700 kB disk in the second epoch.
WIDE = "model.net=[{type: Linear, in_features: 20, out_features: 2000}, ReLU, {type: Linear, in_features: 2000, out_features: 10}]"


@pytest.fixture
def mounted(tmp_path):
    mounts = []

    def mount(size: str, read_only: bool = False) -> Path:
        where = tmp_path / f"disk{len(mounts)}"
        where.mkdir()
        options = f"size={size}" + (",ro" if read_only else "")
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
        mounts.append(where)
        return where

    yield mount
    for where in mounts:  # lazily: a file the in-process run left open must not keep it mounted
        subprocess.run(["umount", "--lazy", str(where)], capture_output=True)


def test_a_full_disk_fails_clearly_and_keeps_the_previous_checkpoint(cli, mounted):
    run_dir = mounted("700k") / "run"
    done = cli("model=mlp", WIDE, "device=cpu", "trainer.max_epochs=3", run_dir=run_dir)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert f"run failed: cannot write {run_dir}/checkpoints/" in done.stderr
    assert "No space left on device" in done.stderr
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "failed" and "No space left on device" in result["error"]
    saved = safe_load(run_dir / "checkpoints" / "last.ckpt")  # whole
    assert saved["global_step"] == 7  # the first epoch's
    assert not list((run_dir / "checkpoints").glob(".*.tmp"))


def test_a_read_only_run_directory_is_refused_before_anything_runs(cli, mounted):
    run_dir = mounted("1m", read_only=True) / "run"
    done = cli("model=mlp", "device=cpu", run_dir=run_dir)
    assert done.returncode == 2
    assert (
        f"config error: hydra.run.dir: '{run_dir}' cannot be written ({run_dir}: Read-only file system)"
        in done.stderr
    )
    assert "Traceback" not in done.stderr
