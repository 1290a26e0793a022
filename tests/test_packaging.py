"""A regular (non-editable) install ships its configs and runs from anywhere."""

import os
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
def test_wheel_ships_conf_and_runs_outside_the_repo(tmp_path):
    wheels, site, elsewhere = tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", wheels, ROOT], check=True
    )
    (wheel,) = wheels.glob("runner-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "runner/conf/config.yaml" in names
    assert "runner/conf/model/rgnet.yaml" in names
    assert "runner/conf/model/blocks/d2l.yaml" in names

    subprocess.run([*pip, "install", "--no-deps", "--target", site, wheel], check=True)
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run(
        [sys.executable, "-c", "import runner, runner.config; print(runner.config.config_dir())"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.strip() == str(site / "runner" / "conf")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "runner",
            "task=inspect",
            "model=rgnet",
            "device=cpu",
            "hydra.run.dir=out",
        ],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "Total params: 309" in result.stdout
