"""hydra/launcher=vectorized through the CLI, against Hydra's basic launcher running the same
sweep: every member is the run its job makes alone (weights, metrics, checkpoint layout, files),
and loads, evaluates and resumes like it. The other cases: test_vectorized_cases.py."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from runner.checkpoint.files import safe_load
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

SWEEP = ("model=rgnet", "init=default,xavier", "seed=0,1", "optim=adamw", "trainer.max_epochs=2")
FIXED = ("device=cpu",)


def _sweep(directory: Path, *args: str, launcher: str = "vectorized", wait: bool = True):
    command = [
        sys.executable,
        "-m",
        "runner",
        "-m",
        f"hydra/launcher={launcher}",
        *args,
        *FIXED,
        f"hydra.sweep.dir={directory}",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if not wait:
        return subprocess.Popen(
            command, cwd=directory.parent, env=env, stderr=subprocess.PIPE, text=True
        )
    return subprocess.run(
        command, cwd=directory.parent, capture_output=True, text=True, env=env, timeout=600
    )


def _run(run_dir: Path, *args: str) -> None:
    """One run of `python -m runner ARGS` into `run_dir`, which must end well."""
    command = [sys.executable, "-m", "runner", *args, *FIXED, f"hydra.run.dir={run_dir}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """The same 4-job sweep (init × seed, AdamW with its cosine schedule) by both launchers."""
    root = tmp_path_factory.mktemp("vectorized")
    vectorized = _sweep(root / "vectorized", *SWEEP)
    assert vectorized.returncode == 0, vectorized.stderr
    basic = _sweep(root / "basic", *SWEEP, launcher="basic")
    assert basic.returncode == 0, basic.stderr
    return root / "vectorized", root / "basic", vectorized.stderr


def _result(job_dir: Path) -> dict:
    return json.loads((job_dir / "result.json").read_text())


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return safe_load(path)["state_dict"]


def test_the_jobs_are_trained_as_one_group_and_each_equals_its_run_alone(pair):
    vectorized, basic, stderr = pair
    assert "vectorized: group 0 trains jobs 0,1,2,3 as one" in stderr
    assert "Detected call of `lr_scheduler.step()`" not in stderr  # the stacked one steps them
    for n in range(4):
        mine, alone = _result(vectorized / str(n)), _result(basic / str(n))
        assert mine["status"] == alone["status"] == "ok"
        assert mine["vectorized"]["jobs"] == [0, 1, 2, 3] and "vectorized" not in alone
        group = mine["vectorized"]["group_seconds"]
        assert mine["fit_seconds"] == pytest.approx(group / 4)  # its share, as its seconds
        assert (mine["epochs"], mine["global_step"]) == (alone["epochs"], alone["global_step"])
        assert mine["metrics"].keys() == alone["metrics"].keys()
        for name, value in alone["metrics"].items():
            assert mine["metrics"][name] == pytest.approx(value, rel=1e-4), name
        want = _weights(basic / str(n) / "checkpoints" / "last.ckpt")
        got = _weights(vectorized / str(n) / "checkpoints" / "last.ckpt")
        assert got.keys() == want.keys()
        for key, value in want.items():
            torch.testing.assert_close(got[key], value, rtol=1e-5, atol=1e-6)
        assert (
            mine["verification"]["ok"] and mine["stats"]["warnings"] == alone["stats"]["warnings"]
        )


def _files(job_dir: Path) -> set[str]:
    return {str(p.relative_to(job_dir)) for p in job_dir.rglob("*") if p.is_file()}


def test_every_member_has_the_files_of_a_run_alone(pair):
    vectorized, basic, _ = pair
    for n in range(4):
        assert _files(vectorized / str(n)) == _files(basic / str(n))
        for name in ("logs/metrics.csv", "param_stats.csv"):
            mine = (vectorized / str(n) / name).read_text().splitlines()
            alone = (basic / str(n) / name).read_text().splitlines()
            assert mine[0] == alone[0] and len(mine) == len(alone), name  # same columns, rows
            steps = [line.split(",")[0] for line in mine]
            assert steps == [line.split(",")[0] for line in alone], name
    summary = (vectorized / "summary.md").read_text()
    assert "4 job(s): 4 ok." in summary and "over 2 seeds" in summary
    assert "Trained as one (hydra/launcher=vectorized): jobs 0, 1, 2, 3, in " in summary
    assert "Trained as one" in (vectorized / "report.html").read_text()
    assert "Trained as one" not in (basic / "summary.md").read_text()


def test_a_members_checkpoint_has_its_run_alones_layout(pair):
    vectorized, basic, _ = pair
    mine = safe_load(vectorized / "1" / "checkpoints" / "last.ckpt")
    alone = safe_load(basic / "1" / "checkpoints" / "last.ckpt")
    assert mine.keys() == alone.keys()
    assert mine["loops"] == alone["loops"]
    assert (mine["epoch"], mine["global_step"]) == (alone["epoch"], alone["global_step"])
    assert mine["lr_schedulers"] == alone["lr_schedulers"]
    assert mine["hyper_parameters"] == alone["hyper_parameters"]
    assert mine["callbacks"].keys() == alone["callbacks"].keys()
    for key, state in alone["callbacks"].items():
        if key == "RNGState":
            continue
        assert mine["callbacks"][key].keys() == state.keys()
        for field, value in state.items():
            ours = mine["callbacks"][key][field]
            if isinstance(value, str):
                assert ours.replace(str(vectorized), "") == value.replace(str(basic), ""), field
    (want,), (got,) = alone["optimizer_states"], mine["optimizer_states"]
    assert got["param_groups"] == want["param_groups"]
    for index, state in want["state"].items():
        for name, value in state.items():
            torch.testing.assert_close(got["state"][index][name], value, rtol=1e-5, atol=1e-6)
    best = _result(vectorized / "1")["checkpoints"]["best"]
    assert Path(best).name == Path(_result(basic / "1")["checkpoints"]["best"]).name


def test_a_member_loads_evaluates_and_resumes_as_its_run_alone(pair):
    import runner

    vectorized, basic, _ = pair
    mine, alone = (d / "2" / "checkpoints" / "last.ckpt" for d in (vectorized, basic))
    x = torch.randn(16, 4)
    torch.testing.assert_close(runner.load(mine).net(x), runner.load(alone).net(x))
    evaluated, resumed = {}, {}
    for name, ckpt in (("mine", mine), ("alone", alone)):
        _run(vectorized.parent / f"eval-{name}", "task=eval", f"ckpt_path={ckpt}")
        evaluated[name] = _result(vectorized.parent / f"eval-{name}")["metrics"]
        run_dir = vectorized.parent / f"resumed-{name}"
        again = ("model=rgnet", "init=xavier", "seed=0", "optim=adamw", "trainer.max_epochs=3")
        _run(run_dir, *again, f"ckpt_path={ckpt}")
        resumed[name] = _weights(run_dir / "checkpoints" / "last.ckpt")
        assert _result(run_dir)["global_step"] == 21
    assert evaluated["mine"] == pytest.approx(evaluated["alone"], rel=1e-5)
    for key, value in resumed["alone"].items():
        torch.testing.assert_close(resumed["mine"][key], value, rtol=1e-5, atol=1e-6)
