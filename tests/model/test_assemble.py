"""Build on meta then on the target device, initialize once; or build directly, and say why."""

import pytest
import torch
from torch import nn

import runner

LINEAR = {"type": "Linear", "in_features": 4, "out_features": 8}


def test_a_plain_model_is_built_on_meta(assemble_model):
    built = assemble_model({"input_shape": [4], "net": [LINEAR, "ReLU"]})
    assert built.path == "meta"
    assert built.why.startswith("built on meta, materialized with to_empty")
    assert built.net[0].weight.device.type == "cpu"


def test_a_forward_that_needs_values_builds_directly_and_says_why(compose):
    from runner.config.spec import parse_run
    from runner.model.assemble import assemble

    spec = parse_run(compose("model=fixed_hidden"))
    built = assemble(spec.model, spec.init, torch.device("cpu"), seed=0)
    assert built.path == "direct"
    assert built.why == (
        "built directly on cpu: the forward of FixedHiddenMLP (model.net) needs real values "
        "(Tensor.item() cannot be called on meta tensors)"
    )


class NoReset(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(3))

    def forward(self, x):
        return x * self.scale


def test_a_module_without_reset_hook_builds_directly(assemble_model):
    built = assemble_model(
        {"input_shape": [3], "net": [{"type": "tests.model.test_assemble.NoReset"}]}
    )
    assert built.path == "direct"
    assert built.why.endswith(
        "NoReset (model.net[0]) has tensors of its own but no reset_parameters()"
    )
    assert torch.equal(built.net[0].scale, torch.ones(3))


def test_batchnorm_statistics_are_correct_after_a_meta_build(assemble_model):
    built = assemble_model({"input_shape": [6], "net": [{"type": "BatchNorm1d"}]})  # lazy
    assert built.path == "meta" and built.sized == ["0.weight", "0.bias"]
    bn = built.net[0]
    assert torch.equal(bn.running_mean, torch.zeros(6)) and torch.equal(
        bn.running_var, torch.ones(6)
    )
    assert bn.num_batches_tracked.item() == 0
    assert torch.equal(bn.weight, torch.ones(6)) and torch.equal(bn.bias, torch.zeros(6))


def test_fixed_hidden_constant_is_restored_by_its_reset_hook_after_a_meta_build(assemble_model):
    model = {"net": [{"type": "FixedHiddenMLP", "in_features": 20}]}  # sized: no forward needed
    built = assemble_model(model, seed=3)
    assert built.path == "meta"
    w = built.net[0].rand_weight
    assert w.shape == (20, 20) and w.min() >= 0 and w.max() < 1 and w.std() > 0.2
    again = assemble_model(model, seed=3).net[0].rand_weight
    assert torch.equal(w, again)


@pytest.mark.parametrize("model", ["rgnet", "fixed_hidden", "lazy_mlp", "shared"])
def test_a_seeded_build_gives_the_same_parameters_every_time(compose, model):
    cfg = compose(f"model={model}", "init=xavier", "seed=7")
    a, b = runner.build_net(cfg), runner.build_net(cfg)
    assert all(
        torch.equal(x, y)
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )
    c = runner.build_net(compose(f"model={model}", "init=xavier", "seed=8"))
    assert not all(
        torch.equal(x, y)
        for x, y in zip(a.state_dict().values(), c.state_dict().values(), strict=True)
    )


def test_each_tensor_is_initialized_once_on_the_meta_path(compose, monkeypatch):
    resets = []  # resets that write real memory (the constructors' ones on meta cost nothing)
    original = nn.Linear.reset_parameters

    def counting(self):
        if self.weight.device.type != "meta":
            resets.append(self)
        original(self)

    monkeypatch.setattr(nn.Linear, "reset_parameters", counting)
    runner.build_net(compose("model=rgnet", "init=kaiming"))  # rules set every weight and bias
    assert resets == []
    runner.build_net(compose("model=rgnet", "init=mixed"))  # rules set 2 weights: reset all 9
    assert len(resets) == 9


def test_lazy_mlp_comes_out_with_pytorchs_shapes(compose):
    net = runner.build_net(compose("model=lazy_mlp"))
    assert [tuple(p.shape) for p in net.parameters()] == [(256, 20), (256,), (10, 256), (10,)]
    assert all(type(m) is not nn.LazyLinear for m in net.modules())


def test_a_shape_error_is_still_found_on_the_meta_path(assemble_model):
    from runner import ConfigError

    model = {
        "input_shape": [4],
        "net": [{"type": "Conv1d", "in_channels": 1, "out_channels": 1, "kernel_size": 9}],
    }
    with pytest.raises(ConfigError, match=r"model.net\[0\]: the shape check .* failed in Conv1d"):
        assemble_model(model)


def test_inspect_shows_lazy_parameters_before_and_after_sizing(cli):
    result = cli("task=inspect", "model=lazy_mlp", "device=cpu")
    assert result.returncode == 0, result.stderr
    assert "0.weight: uninitialized → [256, 20]" in result.stdout
    assert "2.bias: uninitialized → [10]" in result.stdout
    assert "sized on meta" in result.stderr


@pytest.mark.gpu
def test_build_on_the_gpu_never_touches_cpu_memory_for_parameters(compose):
    net = runner.build_net(compose("model=rgnet", "init=xavier"), device="cuda")
    assert {p.device.type for p in net.parameters()} == {"cuda"}


def test_a_forward_runs_only_where_the_static_check_cannot_see(assemble_model, monkeypatch):
    from runner.model import compile as compile_module

    calls = []
    real = compile_module._dry_forward
    monkeypatch.setattr(compile_module, "_dry_forward", lambda *a: calls.append(1) or real(*a))
    assemble_model({"input_shape": [4], "net": [LINEAR, "ReLU", {**LINEAR, "in_features": 8}]})
    assert calls == []  # Linear → ReLU → Linear: verified statically
    conv = {"type": "Conv1d", "in_channels": 1, "out_channels": 1, "kernel_size": 1}
    assemble_model({"input_shape": [1, 4], "net": [conv]})
    assert calls == [1]


def test_a_plain_tensor_attribute_takes_the_direct_path_and_equals_the_hand_built(assemble_model):
    from tests.user_layers import FixedNoLoop

    model = {"input_shape": [20], "net": [{"type": "tests.user_layers.FixedNoLoop"}]}
    builds = [assemble_model(model, seed=7) for _ in range(3)]
    assert builds[0].path == "direct"
    assert "keeps a tensor in a plain attribute (self.rand_weight)" in builds[0].why
    torch.manual_seed(7)
    by_hand = FixedNoLoop()
    x = torch.ones(2, 20)
    for built in builds:
        assert built.net[0].rand_weight.device.type == "cpu"
        assert torch.equal(built.net(x), by_hand(x))
