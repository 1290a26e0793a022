"""The NaN/Inf guard never keeps bad weights, names the cause when there is nothing good to keep,
and a run it lets go on (stats.on_nan=warn) still ends with its files and result.json."""

import collections
import csv
import json
import logging
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

import runner
from runner import RunFailed
from runner.checkpoint.files import safe_load
from runner.run import run

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


def nan_at(step: int) -> str:
    return NAN_AT_4.replace("steps: 4", f"steps: {step}")


def weights_after(tmp_path: Path, steps: int, *overrides: str) -> dict[str, torch.Tensor]:
    """The state_dict of the same run stopped cleanly after `steps` optimizer steps."""
    reference = tmp_path / f"reference-{steps}"
    train(reference, "model=mlp", nan_at(10_000), f"trainer.max_steps={steps}", *overrides)
    saved = safe_load(reference / "checkpoints" / "last.ckpt")
    return saved["state_dict"]


@pytest.mark.parametrize("on_nan", ["stop", "warn"])
def test_a_bad_step_between_checks_keeps_the_exact_state_of_the_last_check(
    tmp_path, monkeypatch, caplog, on_nan
):
    # log_every_n_steps=5: the guard reads back during steps 0, 1, 3, 4, 9, ... (after 1, 2, 4,
    # 5, 10 steps); step 6 is bad, so the check during step 9 finds it and keeps the state of
    # the check during step 4: the weights after 4 steps.
    monkeypatch.setattr(
        "runner.train.callbacks.guard._SNAPSHOT_SHARE", 1e9
    )  # a copy at every check
    run_dir = tmp_path / "run"
    with caplog.at_level(logging.WARNING, logger="runner"):
        if on_nan == "stop":
            with pytest.raises(RunFailed) as failed:
                train(run_dir, "model=mlp", nan_at(6))
            message = str(failed.value)
        else:
            result = train(run_dir, "model=mlp", nan_at(6), "stats.on_nan=warn")
            assert result["status"] == "ok" and result["stats"]["non_finite_steps"] > 1
            message = caplog.text.split("stats: ")[1]
    assert message.startswith("non-finite gradient at optimizer step 6: first in 0.weight")
    assert "the weights of step 4 (the last clean copy before it) are saved in" in message
    saved = safe_load(run_dir / "checkpoints" / "last-good.ckpt")
    expected = weights_after(tmp_path, 4)
    assert all(torch.equal(saved["state_dict"][k], v) for k, v in expected.items())


def test_a_fused_optimizer_skips_bad_steps_on_the_device_and_keeps_the_weights_before_them(
    tmp_path,
):
    fused = ("optim=adam", "+optim.optimizer.fused=true")
    with pytest.raises(RunFailed) as failed:
        train(tmp_path / "run", "model=mlp", nan_at(6), *fused)
    message = str(failed.value)
    assert message.startswith("non-finite gradient at optimizer step 6: first in 0.weight")
    assert "the weights before this step are saved in" in message
    saved = safe_load(tmp_path / "run" / "checkpoints" / "last-good.ckpt")
    expected = weights_after(tmp_path, 6, *fused)
    assert all(torch.equal(saved["state_dict"][k], v) for k, v in expected.items())


class _SyncCounter(pl.Callback):
    """Host reads per training batch: from one batch's start to the next one's."""

    def __init__(self, counts: collections.Counter):
        self.counts, self.per_batch, self.before = counts, [], None

    def on_train_batch_start(self, trainer, *args) -> None:
        now = sum(self.counts.values())
        if self.before is not None:
            self.per_batch.append((trainer.global_step, now - self.before))
        self.before = now


@pytest.mark.parametrize("steps_per_batch", [1, 10])
def test_steady_training_reads_nothing_back_between_log_points(
    tmp_path, monkeypatch, steps_per_batch
):
    from runner.config.spec import parse_run
    from runner.train.fit import train as fit

    counts: collections.Counter = collections.Counter()
    for name in ("item", "__bool__", "__float__", "__int__", "cpu", "tolist", "numpy"):
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _name=name, _original=original, **kwargs):
            counts[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    counter = _SyncCounter(counts)
    cfg = runner.compose(
        [
            "device=cpu",
            "model=mlp",
            "stats=off",  # statistics records read back by design, every_n_steps apart
            "trainer.max_epochs=1",
            "trainer.log_every_n_steps=20",
            f"trainer.steps_per_batch={steps_per_batch}",
            "data.num_samples=8000",
            "data.batch_size=32",
        ]
    )
    fit(parse_run(cfg), tmp_path, extra_callbacks=(counter,))
    # Each batch's window ends at the next batch's start: global_step there counts its steps.
    synced = {step for step, n in counter.per_batch if n}
    steps = counter.per_batch[-1][0]
    assert steps >= 150
    if steps_per_batch == 1:
        # The guard's checks (after 1, 2, 4, 8, 16 steps, then every 20) and the metric writes
        # (every 20): nothing in between.
        assert synced <= {1, 2, 4, 8, 16, *range(20, steps + 1, 20)}
        assert len(synced) >= steps // 20
    else:  # a chunk of 10 steps: every other chunk holds a check and a write
        assert len(synced) <= len(counter.per_batch) // 2 + 3
    # A check and a write per such batch; a first chunk also holds the checks after 1, 2, 4 steps.
    ramp = 3 if steps_per_batch > 1 else 0
    assert sum(n for _, n in counter.per_batch) <= 2 * len(synced) + ramp


@pytest.mark.slow
def test_under_ddp_every_rank_stops_at_the_same_bad_step_and_last_good_is_kept(
    cli_process, tmp_path
):
    # Each rank counts its own forwards, so both see the bad step; they must agree on what to
    # keep (no rank left waiting in a collective save).
    done = cli_process(
        "model=mlp",
        "device=ddp_cpu",
        "trainer.max_epochs=4",
        nan_at(12),
    )
    assert done.returncode == 1, done.stderr[-3000:]
    assert "non-finite gradient at optimizer step 12: first in 0.weight" in done.stderr
    saved = safe_load(tmp_path / "run" / "checkpoints" / "last-good.ckpt")
    assert saved["global_step"] > 0 and all(
        torch.isfinite(t).all() for t in saved["state_dict"].values()
    )


@pytest.mark.parametrize("optim", [(), ("optim=adam", "+optim.optimizer.fused=true")])
def test_last_good_never_holds_the_bad_forwards_batchnorm_statistics(tmp_path, optim):
    # NaN from step 4 on, checked during step 4 itself: its forward already fed BatchNorm.
    bn = NAN_AT_4.replace(
        "{type: Linear, in_features: 8, out_features: 10}",
        "{type: BatchNorm1d, num_features: 8}, {type: Linear, in_features: 8, out_features: 10}",
    )
    with pytest.raises(RunFailed) as failed:
        train(tmp_path, "model=mlp", bn, *optim)
    assert "the weights before this step are saved" in str(failed.value)
    saved = safe_load(tmp_path / "checkpoints" / "last-good.ckpt")
    assert {"net.2.running_mean", "net.2.running_var"} <= saved["state_dict"].keys()
    assert all(torch.isfinite(t).all() for t in saved["state_dict"].values())


def test_a_fused_optimizer_still_trains_a_model_with_parameters_that_get_no_gradient(tmp_path):
    model = (
        "model.net=[{type: Linear, in_features: 20, out_features: 8}, "
        "{type: tests.user_layers.Unused, features: 8}, "
        "{type: Linear, in_features: 8, out_features: 10}]"
    )
    fused = ("optim=adam", "+optim.optimizer.fused=true", "+trainer.deterministic=true")
    result = train(tmp_path, "model=mlp", model, *fused)
    assert result["status"] == "ok" and result["stats"]["non_finite_steps"] == 0
    with open(result["stats"]["csv"]) as f:
        norms = [r for r in csv.DictReader(f) if r["name"] == "0.weight" and r["stat"] == "norm"]
    assert norms[0]["value"] != norms[-1]["value"]  # not every step skipped


def test_with_gradient_accumulation_every_micro_batchs_loss_counts(tmp_path):
    # Forward 9 is the first of the two micro-batches of optimizer step 4.
    model = (
        "model.net=[{type: Linear, in_features: 20, out_features: 10}, "
        "{type: tests.user_layers.HugeLossAt, at: 9}]"
    )
    with pytest.raises(RunFailed) as failed:
        train(tmp_path, "model=mlp", model, "+trainer.accumulate_grad_batches=2")
    message = str(failed.value)
    assert message.startswith("non-finite loss at optimizer step 4: first in the loss")
    assert "the weights before this step are saved" in message
