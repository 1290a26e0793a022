"""Every zoo model compiles to the same network as the book's hand-written PyTorch."""

import pytest
import torch

import runner
from tests.d2l import REFERENCES, reference
from tests.d2l_cnn import CNNS


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_zoo_model_equals_hand_written_pytorch(name, compose):
    net = runner.build_net(compose(f"model={name}"))
    ref, X = reference(name)

    assert list(net.state_dict()) == list(ref.state_dict())
    for key, value in ref.state_dict().items():
        assert net.state_dict()[key].shape == value.shape, key
    net.load_state_dict(ref.state_dict(), strict=True)
    assert torch.equal(net(X), ref(X))


def test_every_zoo_option_has_a_reference():
    options = {p.stem for p in (runner.config.config_dir() / "model").glob("*.yaml")}
    assert options == set(REFERENCES) | set(CNNS)


def test_rgnet_has_309_parameters_named_like_the_book(compose):
    net = runner.build_net(compose("model=rgnet"))
    assert sum(p.numel() for p in net.parameters()) == 309
    names = [n for n, _ in net.named_parameters()]
    assert names[0] == "0.block 0.0.weight"
    assert names[-1] == "1.bias"
    assert [n for n, _ in net[0].named_children()] == [f"block {i}" for i in range(4)]


def test_shared_positions_are_one_module(compose):
    net = runner.build_net(compose("model=shared"))
    assert net[2] is net[4]
    with torch.no_grad():
        net[2].weight[0, 0] = 100.0
    assert net[4].weight[0, 0] == 100.0
    assert net.state_dict()["2.weight"].data_ptr() == net.state_dict()["4.weight"].data_ptr()


def test_shared_gradients_add_up_across_uses(compose):
    net = runner.build_net(compose("model=shared"))
    net(torch.rand(3, 4)).sum().backward()
    grad = net[2].weight.grad
    assert grad is not None and grad is net[4].weight.grad  # one tensor, one gradient


def test_fixed_hidden_constant_is_a_buffer_not_a_parameter(compose):
    net = runner.build_net(compose("model=fixed_hidden"))
    assert "rand_weight" in dict(net.named_buffers())
    assert "rand_weight" not in dict(net.named_parameters())
    assert sorted(n for n, _ in net.named_parameters()) == ["linear.bias", "linear.weight"]


def test_fixed_hidden_returns_one_scalar_per_batch(compose):
    net = runner.build_net(compose("model=fixed_hidden"))
    assert net(torch.rand(5, 20)).shape == ()


def test_mlp_sizes_follow_input_shape_and_num_outputs(compose):
    net = runner.build_net(compose("model=mlp", "model.input_shape=[64]", "model.num_outputs=3"))
    shapes = [tuple(p.shape) for p in net.parameters()]
    assert shapes == [(256, 64), (256,), (3, 256), (3,)]
