"""Tied-weight groups: one Parameter per group, and the invariants that follow from it."""

import pytest
import torch

from runner import ConfigError

# The chapter's encoder/decoder shape: 0 and 4 are both Linear(8, 8); 6 is Linear(8, 4).
MODEL = {
    "input_shape": [4],
    "net": [
        {"type": "Linear", "in_features": 4, "out_features": 8},
        "ReLU",
        {"type": "Linear", "in_features": 8, "out_features": 8},
        "ReLU",
        {"type": "Linear", "in_features": 8, "out_features": 8},
        "ReLU",
        {"type": "Linear", "in_features": 8, "out_features": 4},
    ],
}
TIED = {**MODEL, "tie": [["2.weight", "4.weight"], ["2.bias", "4.bias"]]}


def test_a_group_is_one_parameter_and_the_first_members_values_win(assemble_model):
    untied = assemble_model(MODEL).net
    net = assemble_model(TIED).net
    assert net[2].weight is net[4].weight and net[2].bias is net[4].bias
    assert torch.equal(net[4].weight, untied[2].weight)  # same seed: 2.weight's values


def test_the_optimizer_sees_a_tied_parameter_once(assemble_model):
    net = assemble_model(TIED).net
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    (group,) = optimizer.param_groups
    assert len(group["params"]) == 6  # 0.w 0.b (2=4).w (2=4).b 6.w 6.b
    assert sum(p.numel() for p in net.parameters()) == 40 + 72 + 36


def test_gradients_from_every_use_add_up(assemble_model):
    tied, untied = assemble_model(TIED).net, assemble_model(TIED).net
    # Make `untied` the same function with separate tensors at 2 and 4.
    untied[4].weight = torch.nn.Parameter(untied[2].weight.detach().clone())
    untied[4].bias = torch.nn.Parameter(untied[2].bias.detach().clone())
    x = torch.rand(5, 4)
    tied(x).pow(2).sum().backward()
    untied(x).pow(2).sum().backward()
    assert torch.allclose(tied[2].weight.grad, untied[2].weight.grad + untied[4].weight.grad)
    assert torch.allclose(tied[2].bias.grad, untied[2].bias.grad + untied[4].bias.grad)


def test_edits_after_tying_are_seen_through_every_name(assemble_model):
    edits = {"edits": [{"param": "4.weight", "index": [1, 2], "value": 42}]}
    net = assemble_model(TIED, edits).net
    assert net[2].weight[1, 2] == 42


def test_ties_survive_a_dtype_move(assemble_model):
    net = assemble_model(TIED).net
    net.to(torch.float64)
    assert net[2].weight is net[4].weight and net[2].weight.dtype == torch.float64


@pytest.mark.gpu
def test_ties_survive_a_move_to_the_gpu_and_back(assemble_model):
    net = assemble_model(TIED).net
    net.to("cuda")
    assert net[2].weight is net[4].weight and net[2].weight.device.type == "cuda"
    net.cpu()
    assert net[2].weight is net[4].weight


@pytest.mark.gpu
def test_ties_hold_when_built_on_the_gpu(assemble_model):
    net = assemble_model(TIED, device="cuda").net
    assert net[2].weight is net[4].weight and net[2].weight.device.type == "cuda"


def test_ties_survive_save_rebuild_and_load(assemble_model, tmp_path):
    net = assemble_model(TIED, seed=1).net
    with torch.no_grad():
        net[4].weight.add_(1)  # a trained state: differs from any fresh build
    torch.save(net.state_dict(), tmp_path / "weights.pt")
    fresh = assemble_model(TIED, seed=2).net
    fresh.load_state_dict(torch.load(tmp_path / "weights.pt", weights_only=True), strict=True)
    assert fresh[2].weight is fresh[4].weight
    assert torch.equal(fresh[2].weight, net[2].weight)
    x = torch.rand(3, 4)
    assert torch.equal(fresh(x), net(x))


def test_transposed_tie_for_encoder_decoder(assemble_model):
    model = {
        "input_shape": [4],
        "net": [
            {"type": "Linear", "in_features": 4, "out_features": 8, "name": "encoder"},
            {"type": "Linear", "in_features": 8, "out_features": 4, "name": "decoder"},
        ],
        "tie": [{"params": ["encoder.weight", "decoder.weight"], "transpose": True}],
    }
    net = assemble_model(model).net
    assert torch.equal(net.decoder.weight, net.encoder.weight.T)
    assert sum(p.numel() for p in net.parameters()) == 32 + 8 + 4  # one 8×4 matrix
    net(torch.rand(2, 4)).sum().backward()
    assert net.encoder.weight.grad is not None


def test_ties_are_visible_in_the_parameter_table(assemble_model):
    from runner.params import summary

    rows = {r.name: r for r in summary.tensor_rows(assemble_model(TIED).net)}
    assert rows["2.weight"].shared_with == ("4.weight",)
    report = {r.name: r for r in assemble_model(TIED).report(_no_init())}
    assert report["2.weight"].aliases == ("4.weight",)
    assert report["2.weight"].tied_from == "model.tie[0]: values of 2.weight"


def _no_init():
    from runner.config.init import InitSpec

    return InitSpec(True, (), ())


def test_tie_mistakes_name_both_paths_and_shapes(assemble_model):
    model = {
        **MODEL,
        "tie": [["0.weight", "2.weight"], ["2.wieght", "4.weight"], ["6.bias", "6.bias"]],
    }
    with pytest.raises(ConfigError) as info:
        assemble_model(model)
    assert (
        info.value.problems[0]
        == "model.tie[0]: shapes differ: 0.weight is [8, 4], 2.weight is [8, 8]"
    )
    assert info.value.problems[1].startswith(
        "model.tie[1][0]: no parameter named '2.wieght'; did you mean '2.weight'?"
    )
    assert info.value.problems[2] == "model.tie[2][1]: '6.bias' is already tied in model.tie[2]"


def test_tie_form_mistakes_are_caught_before_building():
    from omegaconf import OmegaConf

    from runner.config.grammar import parse_model

    with pytest.raises(ConfigError) as info:
        parse_model(
            OmegaConf.create({**MODEL, "tie": [["0.weight"], {"params": ["a", "b"], "flip": True}]})
        )
    assert info.value.problems[0].startswith("model.tie[0]: expected two or more parameter names")
    assert info.value.problems[1] == "model.tie[1].flip: unknown key; allowed: params, transpose"
