"""Graph entries compose with everything else: blocks, seq, ref, repeat, names, lazy sizes,
ties, init rules and edits, the parameter report, runner.testing, task=inspect."""

import copy

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn
from torch.nn import functional as F

import runner
from runner.errors import ConfigError
from runner.testing import Model

RESIDUAL_MLP = {  # y = x + f(x), twice, then a head: the smallest residual network
    "input_shape": [6],
    "blocks": {
        "res": {
            "params": {"hidden": 8},
            "graph": [
                {"name": "fc1", "type": "Linear", "out_features": "{hidden}"},
                {"op": "relu"},
                {"name": "fc2", "type": "Linear", "out_features": 6},
                {"op": "add", "in": ["x", "fc2"]},
            ],
        }
    },
    "net": [
        {"block": "res", "repeat": 2, "name": "res{i}", "args": {"hidden": "{4 * (i + 1)}"}},
        {"type": "Linear", "out_features": 3},
    ],
}


def test_a_residual_block_computes_x_plus_f_x_with_the_keys_its_yaml_names(assemble_model):
    net = assemble_model(RESIDUAL_MLP).net
    assert [n for n, _ in net.named_parameters()] == [
        "res0.fc1.weight", "res0.fc1.bias", "res0.fc2.weight", "res0.fc2.bias",
        "res1.fc1.weight", "res1.fc1.bias", "res1.fc2.weight", "res1.fc2.bias",
        "2.weight", "2.bias",
    ]  # fmt: skip
    assert net.res0.fc1.weight.shape == (4, 6) and net.res1.fc1.weight.shape == (8, 6)
    X = torch.randn(5, 6)
    h = X + net.res0.fc2(F.relu(net.res0.fc1(X)))
    h = h + net.res1.fc2(F.relu(net.res1.fc1(h)))
    assert torch.equal(net(X), net[2](h))


def test_ties_refs_init_rules_and_edits_reach_into_graphs(assemble_model):
    model = {
        "input_shape": [4],
        "shared": {"proj": {"type": "Linear", "in_features": 4, "out_features": 4}},
        "net": {
            "graph": [
                {"name": "a", "ref": "proj"},
                {"name": "b", "ref": "proj", "in": "x"},
                {"name": "c", "type": "Linear", "out_features": 4, "in": "x"},
                {"op": "mean", "in": ["a", "b", "c"]},
                {"name": "inner", "seq": [{"graph": [{"name": "d", "type": "Linear", "out_features": 4}, {"op": "mul", "in": ["x", "d"]}]}]},
            ]
        },
        "tie": [["c.weight", "inner.0.d.weight"]],
    }  # fmt: skip
    init = {
        "rules": [{"param": "*.bias", "init": "constant", "args": {"value": 0.5}}],
        "edits": [{"param": "c.weight", "index": [0, 0], "value": 7}],
    }
    built = assemble_model(model, init)
    net = built.net
    assert net.a is net.b  # one shared instance, at two nodes
    assert net.c.weight is net.inner[0].d.weight and net.c.weight[0, 0] == 7
    assert torch.all(net.c.bias == 0.5) and torch.all(net.inner[0].d.bias == 0.5)
    X = torch.randn(3, 4)
    m = (net.a(X) + net.a(X) + net.c(X)) / 3
    assert torch.allclose(net(X), m * net.inner[0].d(m))
    rows = {r.name: r for r in built.report(_init_spec(init))}  # by the YAML's names
    assert set(rows) == {"a.weight", "a.bias", "c.weight", "c.bias", "inner.0.d.bias"}
    assert set(rows["a.weight"].aliases) == {"b.weight"}
    assert set(rows["c.weight"].aliases) == {"inner.0.d.weight"}
    assert rows["c.bias"].set_by.startswith("rules[0]: param=*.bias")


def _init_spec(init):
    from omegaconf import OmegaConf

    from runner.config.init import parse_init
    from runner.errors import Problems

    return parse_init(OmegaConf.create(init), Problems())


def test_runner_testing_assertions_hold_on_a_graph_model():
    m = Model("model=resnet18", "init=kaiming")
    m.assert_parameters(shapes={"b3.0.conv3.weight": (16, 8, 1, 1), "last.2.weight": (10, 64)})
    m.assert_init("b2.0.conv1.weight", mean=0.0, atol=0.05)
    m.assert_forward()
    m.assert_trains()
    assert isinstance(m.net.b2[0], torch.fx.GraphModule)


def test_inspect_shows_each_layers_output_shape_and_each_graphs_wiring(cli):
    result = cli("task=inspect", "model=resnet18", "device=cpu")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Layers and output shapes" in out
    assert "│ b3.0.conv3 │ Conv2d            │ [2, 16, 2, 2] │" in out
    assert "Graph b3.0: which node reads which" in out
    assert "│ add    │ add                 │ bn2, conv3 │ [2, 16, 2, 2] │" in out
    assert "b2.0.conv1.weight" in out  # the parameter table names nodes as the YAML does


def test_a_graph_is_an_fx_graph_module_with_a_readable_forward(assemble_model):
    net = assemble_model(RESIDUAL_MLP).net
    assert isinstance(net.res0, torch.fx.GraphModule) and isinstance(net.res0, nn.Module)
    assert "add = x + fc2" in net.res0.code


def test_a_repeated_node_chains_its_copies_and_a_group_repeats_several(assemble_model):
    model = {
        "input_shape": [3],
        "net": {
            "graph": [
                {"type": "Linear", "out_features": 3, "repeat": 3, "name": "fc{i}"},
                {"repeat": 2, "nodes": [{"name": "g{i}", "type": "Tanh"}, {"name": "s{i}", "op": "add", "in": ["x", "g{i}"]}]},
            ],
            "out": "s1",
        },
    }  # fmt: skip
    net = assemble_model(model).net
    assert [n for n, _ in net.named_children()] == ["fc0", "fc1", "fc2", "g0", "g1"]
    X = torch.randn(2, 3)
    h = net.fc2(net.fc1(net.fc0(X)))
    s0 = X + torch.tanh(h)
    assert torch.equal(net(X), X + torch.tanh(s0))


def test_graphs_of_one_wiring_share_their_generated_forward_not_their_modules(assemble_model):
    # as the book's residual blocks share one Python class: the code is generated once
    net = assemble_model(RESIDUAL_MLP).net
    assert type(net.res0) is type(net.res1) and net.res0.code == net.res1.code
    assert net.res0.fc1.weight is not net.res1.fc1.weight
    assert [n for n, _ in net.res1.named_parameters()] == [
        "fc1.weight",
        "fc1.bias",
        "fc2.weight",
        "fc2.bias",
    ]
    copied = copy.deepcopy(net)  # a GraphModule's own deepcopy: a class of its own again
    X = torch.randn(3, 6)
    assert torch.equal(copied(X), net(X))
    assert copied.res0.fc1.weight is not net.res0.fc1.weight


def test_a_merge_failing_in_one_use_of_a_shared_wiring_names_that_use(compose):
    model = {
        "input_shape": [1, 8, 8],
        "blocks": {
            "pair": {
                "params": {"c": 3},
                "graph": [
                    {"name": "a", "type": "Conv2d", "out_channels": 3, "kernel_size": 1},
                    {"name": "b", "type": "Conv2d", "out_channels": "{c}", "kernel_size": 1, "in": "x"},
                    {"op": "add", "in": ["a", "b"]},
                ],
            }
        },
        "net": [{"block": "pair"}, {"block": "pair", "args": {"c": 5}}],
    }  # fmt: skip
    cfg = compose()
    cfg.model = OmegaConf.create(model)
    with pytest.raises(ConfigError) as refused:
        runner.build_net(cfg)
    (problem,) = refused.value.problems
    assert problem.startswith("model.blocks.pair.graph[2] at model.net[1]: the shape check")
