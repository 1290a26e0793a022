"""The everyday path from one run to the next: `outputs/latest` and `ckpt_path=latest`, a
directory per run even in the same second, and a closed stdout (`| head`) that is no error."""

import json
import os
import subprocess
import sys

import pytest

import runner
from tests.conftest import ROOT

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def test_latest_points_at_the_newest_training_run_and_ckpt_path_latest_reads_it(cli, tmp_path):
    outputs = tmp_path / "outputs"
    first = cli("model=linear", "data=synthetic", "trainer.max_epochs=1", run_dir=outputs / "a")
    assert first.returncode == 0, first.stderr
    assert (outputs / "latest").resolve() == (outputs / "a").resolve()
    evaluated = cli("task=eval", "ckpt_path=latest", run_dir=outputs / "b")
    assert evaluated.returncode == 0, evaluated.stderr
    # its compose line names no model or data of the config's: they are the checkpoint's
    assert "compose: task=eval device=auto optim=sgd" in evaluated.stderr
    assert "(model, init, data from ckpt_path)" in evaluated.stderr
    result = json.loads((outputs / "b" / "result.json").read_text())
    assert result["source"] == str((outputs / "a" / "checkpoints" / "last.ckpt").resolve())
    assert (outputs / "latest").resolve() == (
        outputs / "a"
    ).resolve()  # eval is not a run to continue
    again = cli("model=linear", "data=synthetic", "trainer.max_epochs=1", run_dir=outputs / "c")
    assert again.returncode == 0 and (outputs / "latest").resolve() == (outputs / "c").resolve()


def test_ckpt_path_latest_with_no_run_yet_is_a_config_error(cli, tmp_path):
    done = cli("task=eval", "ckpt_path=latest")
    assert done.returncode == 2
    assert "ckpt_path: 'latest' means outputs/latest/checkpoints/last.ckpt" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_two_runs_started_in_the_same_second_get_two_directories(tmp_path):
    script = (
        f"for i in 1 2 3; do {sys.executable} -m runner task=inspect model=linear "
        "> /dev/null 2>&1 & done; wait"
    )
    subprocess.run(["bash", "-c", script], cwd=tmp_path, env=ENV, timeout=300, check=True)
    runs = [d for d in (tmp_path / "outputs").glob("*/*") if (d / "result.json").is_file()]
    assert len(runs) == 3
    assert not list((tmp_path / "outputs").glob("*/*/previous"))  # none set another aside


@pytest.mark.parametrize("args", [["--help"], ["task=inspect", "model=rgnet"]])
def test_a_closed_stdout_is_not_an_error(tmp_path, args):
    command = f"{sys.executable} -m runner {' '.join(args)} | head -1; exit ${{PIPESTATUS[0]}}"
    done = subprocess.run(
        ["bash", "-c", command], cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 1
    assert "Broken pipe" not in done.stderr and "error" not in done.stderr.lower()


def test_the_python_apis_resume_command_is_the_command_lines(cli, tmp_path):
    from omegaconf import open_dict

    import runner
    from runner.run import run

    args = ("model=linear", "data=synthetic", "trainer.max_epochs=1", "optim.optimizer.lr=0.05")
    done = cli(*args, run_dir=tmp_path / "cli")
    assert done.returncode == 0, done.stderr
    by_cli = json.loads((tmp_path / "cli" / "result.json").read_text())["resume"]
    by_python = run(runner.compose(list(args)), tmp_path / "py")["resume"]
    assert by_python == by_cli.replace(str(tmp_path / "cli"), str(tmp_path / "py"))
    cfg = runner.compose(list(args[:3]))
    with open_dict(cfg):  # edited after compose: the edit is in the command too
        cfg.optim.optimizer.lr = 0.05
    edited = run(cfg, tmp_path / "edited")["resume"]
    assert edited == by_cli.replace(str(tmp_path / "cli"), str(tmp_path / "edited"))


def test_a_run_of_a_checkpoint_names_the_run_it_read(tmp_path):
    from runner.rundir.latest import run_dir_suffix

    last = tmp_path / "outputs" / "2026-01-01" / "10-00-00-000001" / "checkpoints" / "last.ckpt"
    assert run_dir_suffix("eval", str(last)) == "-eval-of-10-00-00-000001"
    assert run_dir_suffix("export", "my model.safetensors") == "-export-of-my_model"
    assert run_dir_suffix("train", str(last)) == "" and run_dir_suffix("eval", None) == ""
    assert run_dir_suffix("eval", 5) == ""  # refused later by the config check, never here


def test_the_latest_link_never_replaces_a_users_own_file(tmp_path, monkeypatch):
    from runner.rundir.latest import point_latest

    monkeypatch.chdir(tmp_path)
    (tmp_path / "outputs" / "2026-01-01" / "run").mkdir(parents=True)
    (tmp_path / "outputs" / "latest").write_text("mine")
    assert point_latest(tmp_path / "outputs" / "2026-01-01" / "run") is None
    assert (tmp_path / "outputs" / "latest").read_text() == "mine"


def test_a_comparison_never_writes_into_a_run_or_a_file(tmp_path):
    from runner.compare import _check_out

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "result.json").write_text("{}")
    (tmp_path / "file.csv").write_text("x")
    for out, said in (
        (tmp_path / "run", "is a run's or a sweep's folder"),
        (tmp_path / "file.csv", "is not a directory"),
    ):
        with pytest.raises(runner.ConfigError, match=said):
            _check_out(out)


def test_a_run_given_twice_is_compared_once(tmp_path):
    from runner.sweep.compare import read_runs

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "result.json").write_text('{"status": "ok", "task": "train"}')
    again = tmp_path / "b" / ".." / "a"
    records = read_runs([tmp_path / "a", tmp_path / "b", again])
    assert [r.directory.name for r in records] == ["a", "b"]


def test_ckpt_path_latest_on_a_sweep_lists_its_jobs_in_number_order(tmp_path, monkeypatch):
    from runner.errors import ConfigError
    from runner.rundir.latest import latest_checkpoint

    monkeypatch.chdir(tmp_path)
    sweep = tmp_path / "outputs" / "multirun" / "s"
    for job in range(12):
        (sweep / str(job)).mkdir(parents=True)
    (tmp_path / "outputs" / "latest").symlink_to(sweep)
    with pytest.raises(ConfigError, match=r"\(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11\)"):
        latest_checkpoint()
