"""hydra/launcher=vectorized through the CLI, case by case: jobs that cannot be grouped run
alone, two architectures make two groups, a diverging member fails as alone while the others
finish, an interrupted sweep resumes, hydra.launcher.max_members caps a group."""

import re
import signal
import time

import pytest
import torch

from tests.sweep.test_vectorized import _result, _sweep, _weights

pytestmark = pytest.mark.slow


def _same_weights(vectorized, basic, jobs) -> None:
    """Each job's final weights by the two launchers, equal within float32 round-off."""
    for n in jobs:
        want = _weights(basic / str(n) / "checkpoints" / "last.ckpt")
        got = _weights(vectorized / str(n) / "checkpoints" / "last.ckpt")
        for key, value in want.items():
            torch.testing.assert_close(got[key], value, rtol=1e-5, atol=1e-6)


def test_jobs_that_cannot_be_grouped_run_alone_and_two_architectures_make_two_groups(tmp_path):
    args = (
        "model=mlp,rgnet",
        "seed=0,1",
        "trainer.gradient_clip_val=0,0.5",
        "trainer.max_epochs=1",
    )
    done = _sweep(tmp_path / "mixed", *args)
    assert done.returncode == 0, done.stderr
    assert "vectorized: group 0 trains jobs 0,2 as one" in done.stderr  # mlp, no clipping
    assert "vectorized: group 1 trains jobs 4,6 as one" in done.stderr  # rgnet, no clipping
    for n in (1, 3, 5, 7):
        assert (
            f"vectorized: job {n} runs alone: trainer.gradient_clip_val=0.5 is not vectorized"
            in done.stderr
        )
    for n in range(8):
        result = _result(tmp_path / "mixed" / str(n))
        assert result["status"] == "ok", result
        assert ("vectorized" in result) == (n in (0, 2, 4, 6))
        assert (tmp_path / "mixed" / str(n) / "report.html").is_file()
        assert (tmp_path / "mixed" / str(n) / ".hydra" / "overrides.yaml").is_file()


def test_a_diverging_member_fails_as_alone_while_the_others_finish(tmp_path):
    args = ("model=rgnet", "optim.optimizer.lr=0.1,1e30,0.05", "trainer.max_epochs=2")
    vectorized = _sweep(tmp_path / "v", *args)
    basic = _sweep(tmp_path / "b", *args, launcher="basic")
    assert vectorized.returncode == basic.returncode == 1, vectorized.stderr
    statuses = [_result(tmp_path / "v" / str(n))["status"] for n in range(3)]
    assert statuses == ["ok", "failed", "ok"]
    mine, alone = _result(tmp_path / "v" / "1"), _result(tmp_path / "b" / "1")
    assert mine["status"] == alone["status"] == "failed"
    # The same step, loss and verdict; which parameter's gradient turns NaN first once the
    # weights are infinite depends on the kernels' order of operations (batched or not).
    first = re.compile(r"first in [^(]*\(")
    assert first.sub("", mine["error"]) == first.sub("", alone["error"])
    assert "non-finite gradient at optimizer step 1" in mine["error"]
    # It trained in the group until it stopped: its seconds count its share of the group's
    # training, as the others' do (its result said nothing of the group, and 0.03 s)
    for n in range(3):
        group = _result(tmp_path / "v" / str(n))["vectorized"]
        assert group["jobs"] == [0, 1, 2]
        assert _result(tmp_path / "v" / str(n))["seconds"] >= group["group_seconds"] / 3
    assert (
        "Trained as one (hydra/launcher=vectorized): jobs 0, 1, 2"
        in (tmp_path / "v" / "summary.md").read_text()
    )
    _same_weights(tmp_path / "v", tmp_path / "b", (0, 2))


def test_an_interrupted_vectorized_sweep_resumes(tmp_path):
    sweep_dir = tmp_path / "sweep"
    args = ("model=rgnet", "seed=0,1,2,3", "trainer.max_epochs=1")
    process = _sweep(sweep_dir, *args, wait=False)
    deadline = time.monotonic() + 300
    while not (sweep_dir / "1" / "result.json").is_file() and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 143, stderr
    before = {
        n: _result(sweep_dir / str(n))["status"]
        for n in range(4)
        if (sweep_dir / str(n) / "result.json").is_file()
    }
    assert before.get("0") == "ok" or before.get(0) == "ok"
    again = _sweep(sweep_dir, *args, "sweep.resume=true")
    assert again.returncode == 0, again.stderr
    assert (
        "vectorized: job 0 is skipped: it ended ok in an earlier run of this sweep" in again.stderr
    )
    statuses = [
        _result(sweep_dir / str(n)).get("sweep_status", _result(sweep_dir / str(n))["status"])
        for n in range(4)
    ]
    assert statuses[0] == "skipped" and all(s in ("ok", "skipped") for s in statuses)


def test_max_members_caps_a_group_and_is_checked(tmp_path):
    args = ("model=rgnet", "seed=0,1,2", "trainer.max_epochs=1")
    done = _sweep(tmp_path / "capped", *args, "hydra.launcher.max_members=2")
    assert done.returncode == 0, done.stderr
    assert "vectorized: group 0 trains jobs 0,1 as one" in done.stderr
    assert (
        "vectorized: job 2 runs alone: the last of its kind past hydra.launcher.max_members"
        in done.stderr
    )
    wrong = _sweep(tmp_path / "wrong", *args, "hydra.launcher.max_members=0")
    assert wrong.returncode == 2
    assert (
        "hydra.launcher.max_members: 0 is not a group size; allowed: an integer ≥ 2" in wrong.stderr
    )
    assert "Traceback" not in wrong.stderr and not (tmp_path / "wrong").exists()  # nothing


def test_samples_of_several_rows_train_as_one_and_equal_their_runs_alone(tmp_path):
    """rgnet on (3, 4) samples (each Linear acts on each row; targets (B, 3, 1)): the Linear
    chain once failed on them (a 4-D batched matmul) and the group ran alone."""
    args = ("model=rgnet", "model.input_shape=[3,4]", "seed=0,1", "trainer.max_epochs=2")
    vectorized = _sweep(tmp_path / "v", *args)
    basic = _sweep(tmp_path / "b", *args, launcher="basic")
    assert vectorized.returncode == basic.returncode == 0, vectorized.stderr
    assert "vectorized: group 0 trains jobs 0,1 as one" in vectorized.stderr
    assert "could not be trained together" not in vectorized.stderr
    for n in (0, 1):
        assert _result(tmp_path / "v" / str(n))["vectorized"]["jobs"] == [0, 1]
    _same_weights(tmp_path / "v", tmp_path / "b", (0, 1))


def test_a_job_with_a_config_mistake_runs_alone_naming_its_first_problem(tmp_path):
    done = _sweep(tmp_path / "mistake", "model=centered", "data=digits", "seed=0,1")
    assert done.returncode == 2, done.stderr  # every job a config mistake
    for n in (0, 1):
        assert (
            f"vectorized: job {n} runs alone: its config has a mistake (model.net[0].in_features:"
            " 8 does not match the 64 features" in done.stderr
        )
    assert "; 1 more in its log)" in done.stderr  # model.num_outputs, in the job's own error


def test_a_first_layer_in_place_with_statistics_every_step_equals_its_run_alone(tmp_path):
    """The dead-unit watch's forward (each member's own net, on its batch) ran before the step,
    and a first layer in place wrote into the batch the step then trained on: weights 3e-3
    off the basic launcher's."""
    net = (
        "model.net=[{type:LeakyReLU,negative_slope:0.1,inplace:true},"
        "{type:Linear,in_features:20,out_features:8},{type:ReLU},"
        "{type:Linear,in_features:8,out_features:10}]"
    )
    args = (net, "seed=0,1", "trainer.max_epochs=1", "stats=every_step")
    vectorized = _sweep(tmp_path / "v", *args)
    basic = _sweep(tmp_path / "b", *args, launcher="basic")
    assert vectorized.returncode == basic.returncode == 0, vectorized.stderr
    assert "vectorized: group 0 trains jobs 0,1 as one" in vectorized.stderr
    _same_weights(tmp_path / "v", tmp_path / "b", (0, 1))


def test_a_job_stopped_while_it_wrote_its_run_runs_again_on_resume(tmp_path):
    """A signal while a member's job writes its run (its last.ckpt written, its tests, checks
    and report not yet: where a vectorized sweep spends its time once the group has trained)
    left it interrupted with a finished checkpoint; `sweep.resume=true` resumed from it and
    failed: 'ckpt_path: already at max_epochs=1 (1 epochs done)'. It runs again instead."""
    import json

    args = ("model=rgnet", "seed=0,1", "trainer.max_epochs=1")
    done = _sweep(tmp_path / "s", *args)
    assert done.returncode == 0, done.stderr
    record = tmp_path / "s" / "1" / "result.json"
    before = _weights(tmp_path / "s" / "1" / "checkpoints" / "last.ckpt")
    result = json.loads(record.read_text())  # as the signal leaves it (runner.run records it)
    record.write_text(json.dumps({**result, "status": "interrupted", "error": "SIGTERM"}))
    again = _sweep(tmp_path / "s", *args, "sweep.resume=true")
    assert again.returncode == 0, again.stderr
    assert "job 1 stopped after its last epoch's checkpoint" in again.stderr
    assert (  # the plan says what happens to it: not a resume, which would be refused
        "vectorized: job 1 runs alone: it trains again (stopped after its last checkpoint"
        in again.stderr
    )
    assert _result(tmp_path / "s" / "1")["status"] == "ok"
    after = _weights(tmp_path / "s" / "1" / "checkpoints" / "last.ckpt")
    for key, value in before.items():
        torch.testing.assert_close(after[key], value, rtol=1e-5, atol=1e-6)
