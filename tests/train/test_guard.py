"""The NaN/Inf guard never keeps bad weights, names the cause when there is nothing good to keep,
and a run it lets go on (stats.on_nan=warn) still ends with its files and result.json."""

import json
import logging
from pathlib import Path

import pytest
import torch

import runner
from runner import RunFailed
from runner.run import run
from runner.train.checkpoint import safe_load

NAN_AT_4 = (
    "model.net=[{type: Linear, in_features: 20, out_features: 8}, "
    "{type: tests.user_layers.NaNAfter, steps: 4}, {type: Linear, in_features: 8, out_features: 10}]"
)


def train(tmp_path: Path, *overrides: str) -> dict:
    return run(runner.compose(["device=cpu", "trainer.max_epochs=2", *overrides]), tmp_path)


def test_warn_keeps_the_state_before_the_first_bad_step_and_the_run_ends_whole(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="runner"):
        result = train(tmp_path, "model=mlp", NAN_AT_4, "stats.on_nan=warn")
    saved = safe_load(tmp_path / "checkpoints" / "last-good.ckpt")
    assert saved["global_step"] == 4  # the first bad step; later ones did not overwrite it
    assert all(torch.isfinite(t).all() for t in saved["state_dict"].values())
    assert result["status"] == "ok" and result["stats"]["non_finite_steps"] > 1
    assert {Path(p).name for p in result["stats"]["plots"]} == {"weights.png", "blocks.png"}
    assert result["verification"]["ok"]  # NaN outputs reproduced exactly are a faithful reload
    assert caplog.text.count("non-finite gradient at optimizer step") == 1
    assert "optimizer step(s) had NaN/Inf gradients" in caplog.text


def test_weights_blown_up_by_the_learning_rate_are_not_called_good(tmp_path):
    with pytest.raises(RunFailed) as failed:
        train(tmp_path, "model=rgnet", "optim.optimizer.lr=1e10")
    message = str(failed.value)
    assert "the learning rate (lr=1e+10) is likely too high; nothing saved" in message
    assert "the weights' norm grew from" in message
    assert not (tmp_path / "checkpoints" / "last-good.ckpt").exists()
    assert json.loads((tmp_path / "result.json").read_text())["status"] == "failed"


def test_a_first_step_that_fails_blames_the_initial_weights(tmp_path):
    huge = "init.rules=[{init: constant, args: {value: 1e30}}]"
    with pytest.raises(RunFailed) as failed:
        train(tmp_path, "model=rgnet", huge)
    message = str(failed.value)
    assert "at optimizer step 0" in message
    assert "the very first step of this fit fails, from the weights it started with" in message
    assert not (tmp_path / "checkpoints" / "last-good.ckpt").exists()
