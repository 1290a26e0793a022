"""Init rules and edits: distributions, precedence, selectors, the report, and mistakes."""

import logging
import math

import pytest
import torch

import runner
from runner import ConfigError
from tests.d2l import REFERENCES

BIG = {  # big enough for distribution checks: 512·256 and 256·64 weights
    "input_shape": [256],
    "net": [
        {"type": "Linear", "in_features": 256, "out_features": 512},
        "ReLU",
        {"type": "Linear", "in_features": 512, "out_features": 64},
    ],
}
INIT_OPTIONS = ["default", "normal", "constant", "xavier", "kaiming", "mixed", "custom"]


def option(name: str, model: str = "rgnet"):
    return runner.build_net(runner.compose(["device=cpu", f"model={model}", f"init={name}"]))


def test_normal_option_gives_std_001_weights_and_zero_biases():
    net = runner.build_net(runner.compose(["device=cpu", "init=normal"]))  # mlp: 256·20
    w = net[0].weight
    assert abs(w.std().item() - 0.01) < 0.001 and abs(w.mean().item()) < 0.001
    assert torch.all(net[0].bias == 0) and torch.all(net[2].bias == 0)


def test_constant_option_is_exact():
    net = option("constant")
    for name, p in net.named_parameters():
        assert torch.all(p == (1.0 if name.endswith("weight") else 0.0)), name


def test_xavier_stays_within_its_bound(assemble_model):
    net = assemble_model(BIG, {"rules": [{"role": "weight", "init": "xavier_uniform"}]}).net
    for layer in (net[0], net[2]):
        fan_out, fan_in = layer.weight.shape
        bound = math.sqrt(6 / (fan_in + fan_out))
        assert layer.weight.abs().max() <= bound
        assert layer.weight.abs().max() > 0.95 * bound  # it uses the whole range


def test_custom_distribution_is_half_zeros_and_the_rest_between_5_and_10(assemble_model):
    w = assemble_model(BIG, {"rules": [{"role": "weight", "init": "d2l_custom"}]}).net[0].weight
    zeros = (w == 0).float().mean().item()
    assert abs(zeros - 0.5) < 0.01
    nonzero = w[w != 0].abs()
    assert nonzero.min() >= 5 and nonzero.max() <= 10
    assert abs((w > 0).float().mean().item() - 0.25) < 0.01  # U(5, 10) w.p. 1/4


def test_mixed_is_xavier_on_the_first_linear_and_42_on_the_last():
    net = option("mixed")
    first, last = net[0][0][0], net[1]
    bound = math.sqrt(6 / (4 + 8))
    assert first.weight.abs().max() <= bound
    assert torch.all(last.weight == 42)
    assert not torch.all(net[0][1][0].weight == 42)  # a middle Linear is untouched


def test_init_report_names_the_rule_for_every_rgnet_parameter(compose, tmp_path):
    from runner.run import run

    run(compose("task=inspect", "model=rgnet", "init=mixed"), tmp_path)
    import csv

    with (tmp_path / "init.csv").open() as f:
        rows = {r["name"]: r for r in csv.DictReader(f)}
    assert len(rows) == 18
    for name, row in rows.items():
        if name == "0.block 0.0.weight":
            assert row["set_by"].startswith("rules[0]: module=Linear role=weight position=first")
        elif name == "1.weight":
            assert row["set_by"].endswith("→ constant(value=42)")
            assert float(row["mean"]) == 42 and float(row["std"]) == 0
        else:
            assert row["set_by"] == "framework default", name


def test_later_rules_override_earlier_ones_and_each_tensor_is_filled_once(
    assemble_model, monkeypatch
):
    calls = []
    monkeypatch.setattr(torch.nn.init, "normal_", lambda t, *a: calls.append(t.shape) or t)
    built = assemble_model(
        BIG,
        {
            "rules": [
                {"init": "normal", "args": {"std": 5.0}},  # everything …
                {"role": "bias", "init": "constant", "args": {"value": 3.0}},  # … but biases
            ]
        },
    )
    assert sorted(calls) == [(64, 512), (512, 256)]  # only the weights got `normal`
    assert torch.all(built.net[0].bias == 3.0)


def test_position_picks_the_first_or_last_matching_module(assemble_model):
    rules = [
        {"param": "*.bias", "position": "last", "init": "ones"},
        {"module": "Linear", "position": "first", "init": "zeros"},
    ]
    net = assemble_model(BIG, {"rules": rules}).net
    assert torch.all(net[0].weight == 0) and torch.all(net[0].bias == 0)
    assert torch.all(net[2].bias == 1) and not torch.all(net[2].weight == 0)


def test_role_and_glob_reach_custom_layers(compose):
    net = runner.build_net(compose("model=mydense", "init=constant"))
    assert torch.all(net[0].weight == 1) and torch.all(net[1].bias == 0)


def test_edits_apply_after_init_exactly(assemble_model):
    init = {
        "rules": [{"init": "zeros"}],
        "edits": [
            {"param": "0.weight", "op": "add", "value": 1},
            {"param": "0.weight", "index": [0, 0], "value": 42},
            {"param": "2.bias", "index": [3], "op": "mul", "value": 2},
        ],
    }
    net = assemble_model(BIG, init).net
    expected = torch.ones(512, 256)
    expected[0, 0] = 42
    assert torch.equal(net[0].weight, expected)
    assert torch.all(net[2].bias == 0)


def test_lazy_layers_get_custom_init_too(compose):
    net = runner.build_net(compose("model=lazy_mlp", "init=constant"))
    assert [tuple(p.shape) for p in net.parameters()] == [(256, 20), (256,), (10, 256), (10,)]
    assert torch.all(net[0].weight == 1) and torch.all(net[2].bias == 0)


@pytest.mark.parametrize("model", sorted(REFERENCES))
@pytest.mark.parametrize("init", INIT_OPTIONS)
def test_every_shipped_init_option_applies_to_every_zoo_model(model, init):
    net = option(init, model)
    assert all(torch.isfinite(p).all() for p in net.parameters())


def test_user_initializer_by_decorator_and_by_dotted_path(assemble_model, monkeypatch):
    from runner.registry import initializers

    monkeypatch.setattr(initializers, "_registered", dict(initializers._registered))

    @runner.register_initializer
    def sevens(tensor, scale: float = 1.0):
        torch.nn.init.constant_(tensor, 7 * scale)

    built = assemble_model(BIG, {"rules": [{"init": "sevens", "args": {"scale": 2.0}}]})
    assert torch.all(built.net[0].weight == 14)
    dotted = {"rules": [{"role": "bias", "init": "torch.nn.init.ones_"}]}
    assert torch.all(assemble_model(BIG, dotted).net[2].bias == 1)


def test_a_rule_matching_nothing_is_an_error_naming_the_parameters(assemble_model):
    with pytest.raises(ConfigError) as info:
        assemble_model(BIG, {"rules": [{"param": "0.wieght", "init": "zeros"}]})
    (p,) = info.value.problems
    assert p.startswith(
        "init.rules[0]: matches no parameter; got param='0.wieght'; the parameters are 0.bias, 0.weight"
    )
    assert "did you mean '0.weight'?" in p


def test_strict_false_makes_it_a_warning(assemble_model, caplog):
    with caplog.at_level(logging.WARNING, logger="runner"):
        assemble_model(BIG, {"strict": False, "rules": [{"module": "Conv2d", "init": "zeros"}]})
    assert "init.rules[0]: matches no parameter" in caplog.text


def test_unknown_initializer_lists_the_known_ones(compose):
    with pytest.raises(ConfigError) as info:
        runner.build_net(compose("init=normal", "init.rules.0.init=xavier_unifrom"))
    (p,) = info.value.problems
    assert p.startswith(
        "init.rules[0].init: unknown initializer 'xavier_unifrom'; allowed: constant, d2l_custom"
    )
    assert p.endswith("did you mean 'xavier_uniform'?")


def test_bad_initializer_arguments_and_position(compose):
    with pytest.raises(ConfigError) as info:
        runner.build_net(
            compose(
                "init=mixed",
                "~init.rules.1.args.value",
                "+init.rules.1.args.valeu=42",
                "init.rules.0.position=frist",
            )
        )
    assert info.value.problems == [
        "init.rules[0].position: unknown position 'frist'; allowed: first, last; did you mean 'first'?",
        "init.rules[1].args.valeu: constant takes no argument 'valeu'; allowed: value; did you mean 'value'?",
    ]


def test_fan_based_init_on_a_bias_says_how_to_fix_it(assemble_model):
    with pytest.raises(
        ConfigError,
        match=r"xavier_uniform needs tensors of 2 or more dimensions, but it matches 0.bias of shape \[512\]; add `role: weight`",
    ):
        assemble_model(BIG, {"rules": [{"init": "xavier_uniform"}]})


def test_edit_mistakes(assemble_model):
    with pytest.raises(ConfigError) as info:
        assemble_model(
            BIG,
            {
                "edits": [
                    {"param": "0.weigth", "value": 1},
                    {"param": "2.bias", "index": [64], "value": 1},
                ]
            },
        )
    assert info.value.problems[0].startswith(
        "init.edits[0].param: no parameter named '0.weigth'; did you mean '0.weight'?"
    )
    assert info.value.problems[1] == "init.edits[1].index: [64] is outside 2.bias of shape [64]"


def test_a_misspelled_rule_key_is_caught(compose):
    with pytest.raises(ConfigError) as info:
        runner.build_net(compose("init=normal", "+init.rules.0.rol=weight"))
    assert info.value.problems == [
        "init.rules[0].rol: unknown key; allowed: args, init, min_ndim, module, param, position, role; did you mean 'role'?"
    ]
