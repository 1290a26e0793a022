"""What training's statistics say: honest gradients, steps that go on after a resume, the
diagnosis of dead blocks, default data every trainable model learns from, and the runner's
lines wherever it runs."""

import csv
import json
import subprocess
import sys

import pytest

import runner
from runner.run import run


def train(tmp_path, *overrides, name="run"):
    return run(runner.compose(["device=cpu", "stats.plots=false", *overrides]), tmp_path / name)


def rows(result):
    with open(result["stats"]["csv"]) as f:
        return list(csv.DictReader(f))


def test_the_final_record_has_the_last_steps_gradients_not_zeros(tmp_path):
    # 2 epochs of 7 steps: records at 0, 5, 10 and the final one at 14, between intervals.
    result = train(
        tmp_path, "model=rgnet", "init=kaiming", "trainer.max_epochs=2", "stats.every_n_steps=5"
    )
    grads = [r for r in rows(result) if r["stat"] == "grad_norm" and r["kind"] == "parameter"]
    assert sorted({int(r["step"]) for r in grads}) == [5, 10, 14]
    final = [float(r["value"]) for r in grads if r["step"] == "14"]
    assert len(final) == 18 and all(v > 0 for v in final)


def test_a_resumed_run_goes_on_counting_steps(tmp_path):
    first = train(tmp_path, "model=mlp", "trainer.max_epochs=2", "stats.every_n_steps=5", name="a")
    resumed = train(
        tmp_path,
        "model=mlp",
        "trainer.max_epochs=4",
        "stats.every_n_steps=5",
        f"ckpt_path={first['checkpoints']['last']}",
        name="b",
    )
    steps = sorted({int(r["step"]) for r in rows(resumed)})
    assert steps == [14, 19, 24, 28]  # starts where the checkpoint stopped, then every 5


def test_every_trainable_zoo_model_learns_from_the_default_data(tmp_path):
    models = ["mlp", "lazy_mlp", "rgnet", "nested", "shared", "centered", "mydense", "linear"]
    for model in models:
        # At seed 0 PyTorch's default init leaves rgnet's block 1 off for every input, which no
        # data can change (test_dead_blocks_are_named… shows the diagnosis); Kaiming's does not.
        init = "kaiming" if model == "rgnet" else "default"
        # The book's MyDense draws its weights from N(0, 1), unscaled: its first outputs are ~100
        # times too large, and one step at lr 0.1 turns its last ReLU off for good (the
        # diagnosis says so). At lr 0.01 it learns.
        lr = 0.01 if model == "mydense" else 0.1
        overrides = (f"init={init}", f"optim.optimizer.lr={lr}", "stats.every_n_steps=1")
        result = train(tmp_path, f"model={model}", *overrides, name=model)
        # Targets are standardized: predicting their mean scores 1.0; the model must beat its
        # own start, and every block must get a gradient at every step.
        losses = _train_losses(tmp_path / model)
        assert losses[-1] < 0.9 * losses[0], (model, losses[0], losses[-1])
        zero = [
            r
            for r in rows(result)
            if r["kind"] == "block" and r["stat"] == "grad_norm" and float(r["value"]) == 0
        ]
        assert zero == [], (model, zero[:3])
        assert "no_gradient" not in result["stats"], model


def _train_losses(run_dir):
    with open(run_dir / "logs" / "metrics.csv") as f:
        return [float(r["train/loss_step"]) for r in csv.DictReader(f) if r.get("train/loss_step")]


def test_dead_blocks_are_named_in_the_log_the_result_and_the_csv(tmp_path, caplog):
    # init=normal (std 0.01) on rgnet: the signal vanishes through 8 layers and the ReLUs die.
    with caplog.at_level("WARNING", logger="runner"):
        result = train(tmp_path, "model=rgnet", "init=normal", "stats.every_n_steps=10")
    stats = result["stats"]
    assert stats["no_gradient"] == ["0.block 0", "0.block 1", "0.block 2", "0.block 3"]
    assert stats["dead_units"] and all(name.startswith("0.block ") for name in stats["dead_units"])
    logged = [r.getMessage() for r in caplog.records if "gradient norm exactly 0" in r.getMessage()]
    assert len(logged) == 4 and "block '0.block 0'" in logged[0]
    dead = [r for r in rows(result) if r["stat"] == "dead_units"]
    assert dead and {r["kind"] for r in dead} == {"activation"}


def test_the_final_record_measures_dead_units_between_intervals(tmp_path):
    """40 steps, records every 50: the final one is the only one after training, and the
    report's 'no layer of dead units' rests on it (it was never measured there)."""
    result = train(tmp_path, "model=mlp", "data=digits", "trainer.max_epochs=1")
    dead = [(r["step"], r["name"]) for r in rows(result) if r["stat"] == "dead_units"]
    assert dead == [("40", "1")]  # the ReLU of mlp's one hidden layer, on the last batch


def test_run_from_python_prints_its_stage_lines():
    code = (
        "import runner, tempfile; from runner.run import run; "
        "run(runner.compose(['model=linear', 'data=synthetic', 'device=cpu', 'stats.plots=false', "
        "'trainer.max_epochs=1']), tempfile.mkdtemp())"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for stage in ("build:", "fit:", "test:", "verify:"):
        assert stage in done.stderr


@pytest.mark.slow
def test_ddp_workers_log_the_runners_lines_once(cli_process, tmp_path):
    done = cli_process(
        "model=rgnet",
        "init=default",
        "device=ddp_cpu",
        "trainer.max_epochs=3",
        "stats.every_n_steps=5",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.count("fit: 18 tensors on cpu; 2 process(es)") == 1  # rank 0 only
    assert done.stderr.count("stats: ") >= 1
    log = (tmp_path / "run" / "runner.log").read_text()
    assert "fit: 18 tensors on cpu; 2 process(es)" in log
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["stats"][
        "no_gradient"
    ]  # init=default at seed 0 leaves blocks dead; the workers recorded it
