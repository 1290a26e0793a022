"""Models at the edges: too large for memory (refused before allocating, with the bytes it
would need) and with no parameters at all (inspectable, not trainable)."""

import pytest

import runner
from runner import ConfigError
from runner.model import memory
from runner.run import run

HUGE = "model.net=[{type: Linear, in_features: 20, out_features: 1000000000000}]"


@pytest.mark.parametrize("task", ["inspect", "train"])
def test_a_model_too_large_for_memory_fails_with_the_bytes_it_needs(compose, tmp_path, task):
    with pytest.raises(ConfigError) as refused:
        run(compose("model=mlp", HUGE, "model.num_outputs=null", f"task={task}"), tmp_path)
    (problem,) = refused.value.problems
    assert problem.startswith(
        "model: its parameters and buffers need 76.4 TiB (84,000,000,000,000 bytes) on cpu, but "
    )
    assert problem.endswith(
        "the largest: model.net[0].weight [1000000000000, 20] (72.8 TiB), model.net[0].bias [1000000000000] (3.6 TiB)"
    )


def test_the_limit_is_the_free_memory_of_the_device(compose, monkeypatch):
    monkeypatch.setattr(memory, "available", lambda device: 1000)  # 1000 bytes free
    with pytest.raises(
        ConfigError, match=r"need 1\.1 KiB \(1,080 bytes\) on cpu, but 1000 B are free"
    ):
        runner.build_net(
            compose(
                "model=centered", "model.net=[{type: Linear, in_features: 8, out_features: 30}]"
            )
        )
    monkeypatch.setattr(memory, "available", lambda device: 10_000)
    assert runner.build_net(
        compose("model=centered", "model.net=[{type: Linear, in_features: 8, out_features: 30}]")
    )


def test_a_net_without_parameters_is_inspected_and_refused_for_training(compose, tmp_path):
    no_params = ("model=centered", "model.net=[ReLU]", "model.num_outputs=null")
    result = run(compose(*no_params, "task=inspect"), tmp_path / "inspect")
    assert result["totals"]["parameters"] == 0
    with pytest.raises(
        ConfigError,
        match=r"model\.net: the network has no parameters, so there is nothing to train",
    ):
        run(compose(*no_params), tmp_path / "train")


def test_the_whole_model_has_a_module_budget_counted_before_building(compose):
    import time

    # a = ReLU × 10,000 and b = a × 10,000: each repeat is within its limit, the model is not
    bomb = (
        "+model.blocks={a: [{type: ReLU, repeat: 10000}], b: [{block: a, repeat: 10000}]}",
        "model.net=[{block: b}]",
        "model.num_outputs=null",
    )
    start = time.perf_counter()
    with pytest.raises(ConfigError) as refused:
        runner.build_net(compose("model=mlp", *bomb))
    assert time.perf_counter() - start < 10  # was 30-90 s (a loaded machine: slack)
    assert refused.value.problems == [
        "model: 100,010,002 modules once every repeat and block is copied; allowed: at most "
        "20,000, counted before building (the largest: model.net 100,010,002, model.blocks.b "
        "100,010,001, model.blocks.a 10,001); lower a repeat"
    ]
