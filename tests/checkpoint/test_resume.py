"""Resuming with a config that differs from the checkpoint's: the config wins where it can (and
the log says so), and what cannot carry over is refused before training starts."""

import json
import logging
import re
import shlex
from pathlib import Path

import pytest
import torch

import runner
from runner import ConfigError
from runner.checkpoint.files import safe_load
from runner.run import run

STEP_LR = "+optim.scheduler={_target_: torch.optim.lr_scheduler.StepLR, _partial_: true, step_size: 1, gamma: 0.5}"


def train(out: Path, *overrides: str) -> dict:
    return run(runner.compose(["model=mlp", "device=cpu", *overrides]), out)


@pytest.fixture(scope="module")
def two_epochs(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("base")
    return Path(train(out, "trainer.max_epochs=2")["checkpoints"]["last"])


def state(path: Path) -> dict:
    return safe_load(path)


def test_a_changed_learning_rate_wins_and_is_logged(two_epochs, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="runner"):
        result = train(
            tmp_path, "trainer.max_epochs=3", "optim.optimizer.lr=0.0", f"ckpt_path={two_epochs}"
        )
    assert (
        "optim.optimizer.lr is 0.1 in the checkpoint and 0.0 in the config: the config wins"
        in caplog.text
    )
    after = state(Path(result["checkpoints"]["last"]))
    assert after["optimizer_states"][0]["param_groups"][0]["lr"] == 0.0
    before = state(two_epochs)["state_dict"]
    assert all(torch.equal(before[k], after["state_dict"][k]) for k in before)  # lr 0: no change
    assert after["hyper_parameters"]["config"]["optim"]["optimizer"]["lr"] == 0.0  # as recorded


def test_a_running_schedule_keeps_its_progress_under_a_new_base_rate(tmp_path):
    first = train(tmp_path / "a", "trainer.max_epochs=2", STEP_LR)
    assert state(Path(first["checkpoints"]["last"]))["optimizer_states"][0]["param_groups"][0][
        "lr"
    ] == pytest.approx(0.025)
    resumed = train(
        tmp_path / "b",
        "trainer.max_epochs=3",
        STEP_LR,
        "optim.optimizer.lr=0.2",
        f"ckpt_path={first['checkpoints']['last']}",
    )
    after = state(Path(resumed["checkpoints"]["last"]))
    assert after["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(0.025)  # 0.2 × ½³
    assert after["lr_schedulers"][0]["base_lrs"] == [0.2]


def test_another_optimizer_class_is_refused_naming_the_one_to_use(two_epochs, tmp_path):
    with pytest.raises(ConfigError) as refused:
        train(tmp_path, "trainer.max_epochs=3", "optim=adam", f"ckpt_path={two_epochs}")
    assert refused.value.problems == [
        "optim.optimizer._target_: the checkpoint was trained with torch.optim.SGD and this config uses "
        "torch.optim.Adam; its optimizer state does not carry over to another class. Resume with "
        "optim.optimizer._target_=torch.optim.SGD"
    ]


def test_fast_mode_from_an_epoch_end_keeps_the_step_count_and_the_result(two_epochs, tmp_path):
    default = train(tmp_path / "default", "trainer.max_epochs=3", f"ckpt_path={two_epochs}")
    fast = train(
        tmp_path / "fast",
        "trainer.max_epochs=3",
        "trainer.steps_per_batch=4",
        f"ckpt_path={two_epochs}",
    )
    assert fast["global_step"] == default["global_step"] == 21
    a, b = (state(Path(r["checkpoints"]["last"]))["state_dict"] for r in (default, fast))
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_fast_mode_from_the_middle_of_an_epoch_is_refused(two_epochs, tmp_path):
    mid = state(two_epochs)
    mid["loops"]["fit_loop"]["epoch_loop.batch_progress"]["is_last_batch"] = False
    torch.save(mid, tmp_path / "mid.ckpt")
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "taken in the middle of an epoch with steps_per_batch=1; resume with trainer.steps_per_batch=1"
        ),
    ):
        train(
            tmp_path / "run",
            "trainer.max_epochs=3",
            "trainer.steps_per_batch=4",
            f"ckpt_path={tmp_path / 'mid.ckpt'}",
        )


def test_other_data_under_a_mid_epoch_checkpoint_is_refused(two_epochs, tmp_path):
    mid = state(two_epochs)
    mid["loops"]["fit_loop"]["epoch_loop.batch_progress"]["is_last_batch"] = False
    torch.save(mid, tmp_path / "mid.ckpt")
    with pytest.raises(ConfigError, match=re.escape("data.batch_size: 256 then, 128 now")):
        train(
            tmp_path / "run",
            "trainer.max_epochs=3",
            "data.batch_size=128",
            f"ckpt_path={tmp_path / 'mid.ckpt'}",
        )


def test_a_finished_run_says_so(two_epochs, tmp_path, cli):
    done = cli("model=mlp", "device=cpu", "trainer.max_epochs=2", f"ckpt_path={two_epochs}")
    assert done.returncode == 2
    assert (
        "ckpt_path: already at max_epochs=2 (2 epochs done); raise trainer.max_epochs to train further, e.g. trainer.max_epochs=4"
        in done.stderr
    )
    assert "Traceback" not in done.stderr and "no checkpoint file" not in done.stderr


DAMAGE = {
    "a step count that is text": (
        lambda c: c.__setitem__("global_step", "x"),
        "global_step is 'x', not a step count",
    ),
    "an epoch counter that is text": (
        lambda c: c["loops"]["fit_loop"]["epoch_progress"]["total"].__setitem__("processed", "abc"),
        "the epoch counter total.processed is 'abc'",
    ),
    "a learning rate that is text": (
        lambda c: c["optimizer_states"][0]["param_groups"][0].__setitem__("lr", "evil"),
        "the optimizer's lr is 'evil', not a number",
    ),
    "a step count past what a tensor holds": (
        lambda c: c.__setitem__("global_step", 10**30),
        "global_step is 1000000000000000000000000000000, not a step count",
    ),
    "a negative epoch counter": (
        lambda c: c["loops"]["fit_loop"]["epoch_progress"]["total"].__setitem__("processed", -5),
        "the epoch counter total.processed is -5, not a count",
    ),
    "an optimizer state of another shape": (
        lambda c: c["optimizer_states"][0]["state"].__setitem__(
            0, {"momentum_buffer": torch.zeros(3)}
        ),
        "the optimizer's momentum_buffer of parameter 0 has shape [3]",
    ),
    "an RNG state missing a part": (
        lambda c: c["callbacks"]["RNGState"].pop("numpy"),
        "cannot be resumed: its training state is damaged or from another version (KeyError: 'numpy')",
    ),
    "callback states that are a list": (
        lambda c: c.__setitem__("callbacks", [1, 2]),
        "cannot be resumed: its training state is damaged",
    ),
    "another Lightning's loops": (
        lambda c: c.__setitem__("pytorch-lightning_version", "0.0.1"),
        "cannot be resumed: its training state is damaged or from another version",
    ),
}


@pytest.mark.parametrize("case", DAMAGE)
def test_a_damaged_training_state_is_refused_naming_ckpt_path(two_epochs, tmp_path, case):
    damage, message = DAMAGE[case]
    checkpoint = state(two_epochs)
    damage(checkpoint)
    torch.save(checkpoint, tmp_path / "damaged.ckpt")
    with pytest.raises(ConfigError) as refused:
        train(tmp_path / "run", "trainer.max_epochs=3", f"ckpt_path={tmp_path / 'damaged.ckpt'}")
    assert refused.value.problems[0].startswith("ckpt_path:")
    assert message in refused.value.problems[0]


def test_the_printed_resume_command_works_as_printed_from_another_directory(tmp_path, cli):
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    user = tmp_path / "project"
    (user / "conf" / "model").mkdir(parents=True)
    (user / "conf" / "model" / "tiny.yaml").write_text(
        "defaults:\n  - /schema/model@_here_\n  - _self_\n"
        "input_shape: [2]\nnet:\n  - {type: Linear, in_features: 2, out_features: 1}\n"
    )
    first = cli(  # the run that prints the command; the command itself runs in a shell below
        "--config-dir",
        "conf",
        "model=tiny",
        "data=synthetic",
        "trainer.max_epochs=1",
        "trainer.max_epochs=2",
        "device=cpu",
        cwd=user,
    )
    assert first.returncode == 0, first.stderr
    line = next(x for x in first.stderr.splitlines() if "resume with: " in x)
    command = line.split("resume with: ", 1)[1]
    assert "--config-dir " + str(user / "conf") in command  # absolute: works from anywhere
    assert command.count("trainer.max_epochs=") == 1 and "trainer.max_epochs=4" in command
    assert command.endswith("# 2 more epochs; set trainer.max_epochs")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    again = subprocess.run(
        ["bash", "-c", command.replace("python -m runner", f"{sys.executable} -m runner", 1)],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr
    assert "fit: 4 epochs" in again.stderr


def test_resuming_a_finished_run_says_how_to_train_further(tmp_path):
    first = run(
        runner.compose(["model=linear", "data=synthetic", "device=cpu", "trainer.max_epochs=2"]),
        tmp_path / "a",
    )
    with pytest.raises(runner.ConfigError) as info:
        run(
            runner.compose(
                [
                    "model=linear",
                    "data=synthetic",
                    "device=cpu",
                    "trainer.max_epochs=2",
                    f"ckpt_path={first['checkpoints']['last']}",
                ]
            ),
            tmp_path / "b",
        )
    assert info.value.problems == [
        "ckpt_path: already at max_epochs=2 (2 epochs done); raise trainer.max_epochs to train further, e.g. trainer.max_epochs=4"
    ]


def test_a_run_stopped_by_max_steps_mid_epoch_resumes_with_the_printed_command(tmp_path, cli):
    # 7 batches an epoch: 5 steps end part-way through the first one, which Lightning counts as
    # processed, so the printed command raises both limits; the resumed run finishes the 7.
    first = cli("model=mlp", "device=cpu", "trainer.max_epochs=1", "trainer.max_steps=5")
    assert first.returncode == 0, first.stderr
    assert "fit: 1 epochs, the last of them cut short, 5 steps" in first.stderr
    command = json.loads((tmp_path / "run" / "result.json").read_text())["resume"]
    assert "trainer.max_steps=10" in command and "trainer.max_epochs=2" in command
    again = cli(*shlex.split(command.split("   #")[0])[3:], run_dir=tmp_path / "again")
    assert again.returncode == 0, again.stderr
    resumed = json.loads((tmp_path / "again" / "result.json").read_text())
    assert resumed["global_step"] == 7
