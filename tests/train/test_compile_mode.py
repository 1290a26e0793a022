"""trainer.compile: training steps through torch.compile, with the eager run's checkpoints,
statistics and numbers (within rounding); a bad value or a failing compiler is one line."""

import csv
import logging
from pathlib import Path

import pytest
import torch

import runner
from runner import ConfigError
from runner.checkpoint.files import safe_load
from runner.errors import RunFailed
from runner.run import run
from runner.train.compiled import compile_failure, compiled_forward

FAST = ("task=train", "device=cpu", "model=mlp", "trainer.max_epochs=1")


def train(tmp_path: Path, name: str, *overrides: str) -> dict:
    return run(runner.compose([*FAST, *overrides]), tmp_path / name)


def weights(result: dict) -> dict[str, torch.Tensor]:
    return safe_load(result["checkpoints"]["last"])["state_dict"]


def stats(result: dict, stat: str) -> list[float]:
    with open(result["stats"]["csv"]) as f:
        return [float(row["value"]) for row in csv.DictReader(f) if row["stat"] == stat]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("reduce_overhead", "got 'reduce_overhead'; allowed: false (eager), true ("),
        ("reduce_overhead", "; did you mean 'reduce-overhead'?"),
        ("1", "trainer.compile: unknown choice; got 1; allowed: false (eager)"),
        ("yes", "'max-autotune' (also searches for the fastest kernels; compiles longest)"),
    ],
)
def test_a_wrong_compile_value_names_the_key_and_what_is_allowed(tmp_path, value, expected):
    with pytest.raises(ConfigError, match=r"trainer\.compile") as raised:
        train(tmp_path, "run", f"trainer.compile={value}")
    assert expected in str(raised.value)


def test_compile_with_fsdp_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(ConfigError) as raised:
        train(tmp_path, "run", "device=fsdp", "device.accelerator=cpu", "trainer.compile=true")
    assert "trainer.compile: cannot be combined with device.strategy=fsdp" in str(raised.value)


@pytest.mark.slow  # compiling takes 10-30 s here
def test_compiled_forward_and_backward_match_eager_for_the_same_weights():
    module = runner.build(runner.compose(["model=rgnet", "device=cpu"]))
    net = module.net
    keys = list(module.state_dict())
    x = torch.randn(16, *runner.compose(["model=rgnet"]).model.input_shape)
    module.compiled = compiled_forward(net, "default")  # as trainer.compile sets it
    out = module.compiled(x)
    out.square().mean().backward()
    compiled_grads = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    eager = net(x)
    eager.square().mean().backward()
    assert torch.allclose(out, eager, atol=1e-5, rtol=1e-4)
    for got, expected in zip(compiled_grads, (p.grad for p in net.parameters()), strict=True):
        assert torch.allclose(got, expected, atol=1e-5, rtol=1e-4)
    assert list(module.state_dict()) == keys  # nothing registered, nothing renamed


@pytest.mark.slow
def test_a_compiled_run_matches_the_eager_run_and_reloads_bitwise(tmp_path, caplog):
    every = "stats.every_n_steps=2"  # records with gradients and dead units, hooks armed
    eager = train(tmp_path, "eager", every)
    with caplog.at_level(logging.INFO, logger="runner"):
        compiled = train(tmp_path, "compiled", every, "trainer.compile=true")
    assert "compile: torch.compile (mode default): the first training step took" in caplog.text
    verification = compiled["verification"]
    assert verification["ok"] and verification["comparison"] == "bitwise"
    a, b = weights(eager), weights(compiled)
    assert list(a) == list(b) and not any("_orig_mod" in k for k in b)
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    for stat in ("grad_norm", "dead_units"):
        assert stats(compiled, stat) == pytest.approx(stats(eager, stat), abs=1e-5)
    # Validation and test ran eagerly: the test loss is what task=eval of the file gives.
    assert compiled["metrics"]["val/loss"] == pytest.approx(eager["metrics"]["val/loss"], 1e-5)
    evaluated = run(
        runner.compose(["task=eval", "device=cpu", f"ckpt_path={compiled['checkpoints']['last']}"]),
        tmp_path / "eval",
    )
    assert evaluated["metrics"]["test/loss"] == compiled["metrics"]["test/loss"]


@pytest.mark.slow
def test_fast_mode_compiles_too(tmp_path):
    fast = ("trainer.steps_per_batch=3", "trainer.gradient_clip_val=0.5")
    eager = train(tmp_path, "eager", *fast)
    compiled = train(tmp_path, "compiled", *fast, "trainer.compile=reduce-overhead")
    assert compiled["verification"]["ok"] and compiled["global_step"] == eager["global_step"]
    a, b = weights(eager), weights(compiled)
    assert list(a) == list(b) and all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


@pytest.mark.slow
@pytest.mark.gpu
def test_reduce_overhead_on_a_gpu_matches_eager(tmp_path):
    """CUDA graphs: gradients, statistics and the guard read tensors the graphs write."""
    for per_batch in (1, 4):  # the default mode, and fast mode
        gpu = ("device=gpu", "stats=every_step", f"trainer.steps_per_batch={per_batch}")
        eager = train(tmp_path, f"eager-{per_batch}", *gpu)
        compiled = train(tmp_path, f"graphs-{per_batch}", *gpu, "trainer.compile=reduce-overhead")
        assert compiled["verification"]["ok"] and compiled["stats"]["non_finite_steps"] == 0
        a, b = weights(eager), weights(compiled)
        assert all(torch.allclose(a[k], b[k], atol=1e-4, rtol=1e-3) for k in a)
        for stat in ("grad_norm", "dead_units"):
            assert stats(compiled, stat) == pytest.approx(stats(eager, stat), abs=1e-4)


@pytest.mark.slow
def test_ddp_on_the_cpu_compiles_in_each_worker_and_syncs_gradients(tmp_path):
    eager = train(tmp_path, "eager", "device=ddp_cpu")
    compiled = train(tmp_path, "compiled", "device=ddp_cpu", "trainer.compile=true")
    assert compiled["verification"]["ok"]
    a, b = weights(eager), weights(compiled)  # unsynced gradients would part the ranks' weights
    assert list(a) == list(b) and all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


@pytest.mark.slow
def test_a_compiler_that_fails_ends_the_run_with_one_line(cli_process, tmp_path):
    env = {
        "CXX": str(tmp_path / "no-such-g++"),  # inductor's C++ compiler
        "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor"),  # nothing compiled before
        "OMP_NUM_THREADS": "1",
    }
    done = cli_process(
        "model=mlp", "device=cpu", "trainer.max_epochs=1", "trainer.compile=true", env=env
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    (line,) = [line for line in done.stderr.splitlines() if "run failed" in line]
    assert "trainer.compile: torch.compile failed at the first training step: " in line
    assert "InvalidCxxCompiler: No working C++ compiler" in line
    assert line.endswith("train without it: trainer.compile=false")


def test_a_compile_error_in_a_ddp_worker_reaches_the_main_process_as_its_type(tmp_path):
    from torch._inductor.exc import InductorError, InvalidCxxCompiler

    from runner.train.failures import CompileFailed, hand_over, handed_over

    error = InductorError(InvalidCxxCompiler(), None)  # what inductor raises without g++
    failed = compile_failure(error, step=0, in_worker=True)
    assert failed is not None
    hand_over(tmp_path, failed, world_size=2)  # the worker, before it raises
    again = handed_over(tmp_path)  # the main process, instead of the worker's traceback text
    assert isinstance(again, CompileFailed) and isinstance(again, RunFailed)
    assert str(again).startswith(
        "trainer.compile: torch.compile failed in a DDP worker: InvalidCxxCompiler: "
        "No working C++ compiler found"
    )
    assert str(again).endswith("; train without it: trainer.compile=false")
    assert handed_over(tmp_path) is None  # taken once
    assert compile_failure(RuntimeError("shape mismatch"), step=3) is None
