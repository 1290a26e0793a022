"""The model grammar: sequences, named blocks, repeats, inline seq, shared refs, lazy sizes,
user layers by dotted path or decorator."""

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

import runner
from runner.config.grammar import parse_model
from runner.config.init import InitSpec
from runner.model.assemble import assemble


def build(model: dict, seed: int | None = None) -> nn.Module:
    spec = parse_model(OmegaConf.create(model))
    return assemble(spec, InitSpec(True, (), ()), torch.device("cpu"), seed).net


def test_a_bare_string_is_a_layer_without_arguments():
    net = build(
        {
            "input_shape": [3],
            "net": [{"type": "Linear", "in_features": 3, "out_features": 2}, "Tanh"],
        }
    )
    assert isinstance(net[1], nn.Tanh)


def test_repeat_without_name_continues_the_positional_numbering():
    net = build(
        {"net": [{"type": "Linear", "in_features": 2, "out_features": 2, "repeat": 3}, "ReLU"]}
    )
    assert [n for n, _ in net.named_children()] == ["0", "1", "2", "3"]
    assert net[0] is not net[1]  # repeats are fresh copies


def test_blocks_are_fresh_copies_at_every_use():
    net = build(
        {
            "blocks": {"b": [{"type": "Linear", "in_features": 2, "out_features": 2}]},
            "net": [{"block": "b"}, {"block": "b"}],
        }
    )
    assert net[0][0] is not net[1][0]
    assert net[0][0].weight is not net[1][0].weight


def test_inline_seq_and_names_nest_like_pytorch():
    net = build(
        {
            "net": [
                {"name": "body", "seq": [{"type": "Linear", "in_features": 2, "out_features": 3}]},
                {"name": "head", "type": "Linear", "in_features": 3, "out_features": 1},
            ]
        }
    )
    assert list(net.state_dict()) == ["body.0.weight", "body.0.bias", "head.weight", "head.bias"]


def test_a_single_entry_net_is_the_model_itself():
    net = build({"net": {"type": "Linear", "in_features": 2, "out_features": 1}})
    assert isinstance(net, nn.Linear)


def test_a_shared_block_is_one_instance_everywhere():
    net = build(
        {
            "shared": {"pair": [{"type": "Linear", "in_features": 2, "out_features": 2}, "ReLU"]},
            "net": [{"ref": "pair"}, {"ref": "pair", "repeat": 2}],
        }
    )
    assert net[0] is net[1] is net[2]
    assert sum(p.numel() for p in net.parameters()) == 6


def test_omitted_input_sizes_are_inferred_from_input_shape():
    net = build(
        {
            "input_shape": [20],
            "net": [
                {"type": "Linear", "out_features": 256},
                "ReLU",
                {"type": "Linear", "out_features": 10},
            ],
        }
    )
    assert [tuple(p.shape) for p in net.parameters()] == [(256, 20), (256,), (10, 256), (10,)]
    assert type(net[0]) is nn.Linear  # the lazy layer has become a plain one


def test_mydense_infers_its_input_size():
    net = build({"input_shape": [64], "net": [{"type": "MyDense", "units": 8}]})
    assert type(net[0]).__name__ == "MyDense"
    assert tuple(net[0].weight.shape) == (64, 8)


def test_dry_pass_leaves_batchnorm_statistics_untouched():
    net = build({"input_shape": [4], "net": [{"type": "BatchNorm1d"}]})  # num_features inferred
    bn = net[0]
    assert bn.num_features == 4
    assert torch.equal(bn.running_mean, torch.zeros(4))
    assert bn.num_batches_tracked == 0
    assert net.training


def test_same_seed_builds_the_same_parameters():
    model = {"net": [{"type": "Linear", "in_features": 8, "out_features": 8}]}
    a, b, c = build(model, seed=1), build(model, seed=1), build(model, seed=2)
    assert torch.equal(a[0].weight, b[0].weight)
    assert not torch.equal(a[0].weight, c[0].weight)


def test_user_layer_by_dotted_path():
    net = build({"input_shape": [3], "net": [{"type": "tests.user_layers.Scale", "factor": 2.0}]})
    assert torch.equal(net(torch.ones(1, 3)), torch.full((1, 3), 2.0))


@pytest.fixture
def clean_registry(monkeypatch):
    """Layers registered by a test stay in that test."""
    from runner.registry import layers as registry

    monkeypatch.setattr(registry, "_registered", dict(registry.runner_layers()))


def test_user_layer_by_decorator(clean_registry):
    @runner.register_layer
    class Doubler(nn.Module):
        def forward(self, x):
            return 2 * x

    net = build({"input_shape": [3], "net": ["Doubler"]})
    assert isinstance(net[0], Doubler)


def test_register_layer_refuses_a_taken_name(clean_registry):
    with pytest.raises(ValueError, match=r"torch\.nn\.Linear"):
        runner.register_layer(type("Linear", (nn.Module,), {}))
    with pytest.raises(ValueError, match="already registered"):
        runner.register_layer(type("FixedHiddenMLP", (nn.Module,), {}))


def test_build_places_parameters_on_the_requested_device(compose):
    net = runner.build_net(compose("model=rgnet"), device="meta")
    assert {p.device.type for p in net.parameters()} == {"meta"}


def test_build_returns_a_lightning_module_holding_the_net(compose):
    module = runner.build(compose("model=rgnet"))
    assert sum(p.numel() for p in module.net.parameters()) == 309
    assert module.hparams["config"]["model"]["input_shape"] == [4]
    assert module(torch.rand(2, 4)).shape == (2, 1)


def test_compose_can_be_called_repeatedly(compose):
    assert [compose(f"model={m}").model.input_shape[0] for m in ("mlp", "rgnet", "mlp")] == [
        20,
        4,
        20,
    ]


def test_compose_finds_a_users_own_config_folder(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "tiny.yaml").write_text(
        "defaults: [/schema/model@_here_, _self_]\ninput_shape: [3]\nnet: [{type: Linear, out_features: 2}]\n"
    )
    cfg = runner.compose([f"hydra.searchpath=[file://{tmp_path}]", "model=tiny", "device=cpu"])
    assert runner.build_net(cfg)[0].weight.shape == (2, 3)
