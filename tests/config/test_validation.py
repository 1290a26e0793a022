"""Every kind of config mistake: one clear message per problem, all problems at once."""

import json

import pytest
from omegaconf import OmegaConf

import runner
from runner import ConfigError
from runner.config.grammar import parse_model
from runner.run import run

LIN = {"type": "Linear", "in_features": 4, "out_features": 4}


def problems(model: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        runner.build_net(OmegaConf.create({"model": {"input_shape": [4], **model}, "device": _CPU}))
    return info.value.problems


_CPU = {"accelerator": "cpu", "index": None, "devices": 1, "strategy": "auto", "precision": "32"}


def test_unknown_layer_names_the_path_and_a_close_match():
    (p,) = problems({"net": [{"type": "Lineer", "in_features": 4, "out_features": 4}]})
    assert p.startswith("model.net[0].type: unknown layer 'Lineer'; allowed: a torch.nn layer")
    assert p.endswith("; did you mean 'Linear'?")


def test_unknown_argument_lists_the_allowed_ones():
    (p,) = problems({"net": [{"type": "Linear", "in_features": 4, "out_feature": 4}]})
    assert p.startswith("model.net[0].out_feature: Linear takes no argument 'out_feature'")
    assert "allowed: bias, device, dtype, in_features, out_features" in p
    assert p.endswith("did you mean 'out_features'?")


def test_missing_required_argument():
    (p,) = problems({"net": [{"type": "Linear", "in_features": 4}]})
    assert p == "model.net[0].out_features: Linear needs 'out_features'; it is missing"


def test_wrong_argument_type():
    (p,) = problems({"net": [{"type": "Linear", "in_features": 4, "out_features": "four"}]})
    assert p == "model.net[0].out_features: Linear expects int for out_features; got 'four'"


def test_constructor_failure_is_reported_with_its_path():
    # A value only the constructor checks (sizes are checked before: tests/config/test_values.py).
    (p,) = problems({"net": [{"type": "Dropout", "p": 2.0}]})
    assert p.startswith("model.net[0]: Dropout(p=2.0) failed: ValueError: dropout probability")


def test_unknown_block_and_shared_names_suggest_close_ones():
    ps = problems(
        {
            "blocks": {"body": [LIN]},
            "shared": {"tied": LIN},
            "net": [{"block": "bdy"}, {"ref": "tide"}],
        }
    )
    assert ps == [
        "model.net[0].block: no block named 'bdy' in model.blocks; allowed: body; did you mean 'body'?",
        "model.net[1].ref: no shared instance named 'tide' in model.shared; allowed: tied; "
        "did you mean 'tied'?",
    ]


def test_a_block_that_contains_itself():
    (p,) = problems(
        {"blocks": {"a": [{"block": "b"}], "b": [{"block": "a"}]}, "net": [{"block": "a"}]}
    )
    assert p == "model.blocks.a: 'a' contains itself (blocks.a → blocks.b → blocks.a)"


def test_repeat_needs_a_counter_in_its_name():
    (p,) = problems({"net": [{**LIN, "repeat": 3, "name": "layer"}]})
    assert p.startswith("model.net[0].name: 'layer' would name all 3 repeats alike")
    assert "e.g. 'layer {i}'" in p


def test_bad_repeat_and_duplicate_and_dotted_names():
    ps = problems(
        {
            "net": [
                {**LIN, "repeat": 0},
                {**LIN, "name": "a"},
                {**LIN, "name": "a"},
                {**LIN, "name": "x.y"},
            ]
        }
    )
    assert ps[0] == "model.net[0].repeat: expected an integer from 1 to 10,000; got 0"
    assert ps[1] == "model.net[2].name: child name 'a' is used twice"
    assert ps[2].startswith("model.net[3].name: 'x.y' cannot name a submodule")


def test_entry_kind_mistakes():
    ps = problems({"net": [{"typ": "ReLU"}, {"type": "ReLU", "block": "b"}, 5]})
    assert ps[0] == (
        "model.net[0]: an entry needs exactly one of type, block, seq, ref, graph; it has typ; "
        "did you mean 'type'?"
    )
    assert (
        ps[1]
        == "model.net[1]: an entry needs exactly one of type, block, seq, ref, graph; it has type and block"
    )
    assert ps[2].startswith("model.net[2]: expected an entry such as {type: Linear, ...}")


def test_feature_sizes_are_checked_before_building_even_inside_blocks():
    ps = problems(
        {
            "blocks": {"b": [{"type": "Linear", "in_features": 4, "out_features": 8}, "ReLU"]},
            "net": [{"block": "b"}, {"type": "Linear", "in_features": 5, "out_features": 1}],
            "num_outputs": 2,
        }
    )
    assert ps == [
        "model.net[1].in_features: 5 does not match the 8 features coming in from "
        "model.blocks.b[0].out_features; set it to 8 or leave it out to infer it",
        "model.num_outputs: 2, but the network ends with 1 features (model.net[1].out_features)",
    ]


def test_input_shape_must_be_positive_integers():
    with pytest.raises(ConfigError, match=r"model.input_shape: expected a list of positive"):
        parse_model(OmegaConf.create({"input_shape": [0], "net": [LIN]}))


def test_inferred_sizes_need_an_input_shape():
    with pytest.raises(ConfigError) as info:
        parse_model(OmegaConf.create({"net": [{"type": "Linear", "out_features": 3}]}))
    assert info.value.problems == [
        "model.input_shape: needed to infer the input size left out at model.net[0]; set the "
        "shape of one sample, e.g. model.input_shape=[20]"
    ]


def test_a_shape_error_the_static_check_cannot_see_names_the_layer():
    (p,) = problems(
        {"net": [{"type": "Conv1d", "in_channels": 1, "out_channels": 2, "kernel_size": 9}]}
    )
    assert p.startswith(
        "model.net[0]: the shape check (a forward pass on zeros of shape (2, 4), from "
        "model.input_shape) failed in Conv1d (submodule '0'), which received input of shape (2, 4)"
    )


def test_dotted_path_mistakes():
    ps = problems(
        {
            "net": [
                {"type": "tests.no_such_module.Layer"},
                {"type": "tests.user_layers.Scal", "factor": 1.0},
                {"type": "tests.user_layers.NOT_A_MODULE"},
            ]
        }
    )
    assert ps[0].startswith("model.net[0].type: cannot import 'tests.no_such_module'")
    assert ps[1] == (
        "model.net[1].type: module 'tests.user_layers' has no 'Scal'; did you mean 'Scale'?"
    )
    assert (
        ps[2]
        == "model.net[2].type: 'tests.user_layers.NOT_A_MODULE' is not an nn.Module class (it is int)"
    )


def test_missing_net():
    with pytest.raises(ConfigError, match=r"^model.net: required, and no value was given$"):
        parse_model(OmegaConf.create({"net": "???"}))


def test_all_problems_across_the_config_come_together(compose, tmp_path):
    cfg = compose(
        "model=mlp",
        "task=inspct",
        "seed=one",
        "device.precision=64",
        "device.accelerator=tpu",
        "model.net.0.type=Lineer",
    )
    with pytest.raises(ConfigError) as info:
        run(cfg, tmp_path)
    assert info.value.problems == [
        "task: unknown task 'inspct'; allowed: eval, export, inspect, predict, train; did you mean 'inspect'?",
        "seed: expected an integer from 0 to 4294967295; got 'one'",
        "device.accelerator: unknown accelerator 'tpu'; allowed: auto, cpu, gpu, mps; did you mean 'gpu'?",
        "device.precision: unsupported precision '64'; allowed: 16-mixed, 32, bf16-mixed",
        "model.net[0].type: unknown layer 'Lineer'; allowed: a torch.nn layer (Linear, ReLU, …), "
        "a runner layer (CenteredLayer, FixedHiddenMLP, MyDense), one registered with "
        "@runner.register_layer (in a module listed in imports: [...]), or a dotted path to an "
        "nn.Module class; did you mean 'Linear'?",
    ]
    assert str(info.value).startswith("5 problems in the config:\n  - task: ")
    record = json.loads((tmp_path / "result.json").read_text())  # nothing ran; it says why
    assert record["status"] == "failed" and record["error"] == str(info.value)
    assert not (tmp_path / "checkpoints").exists()


def test_gpu_without_a_gpu_says_what_was_found(compose, tmp_path, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    with pytest.raises(ConfigError) as info:
        run(compose("task=inspect", "device=gpu"), tmp_path)
    (p,) = info.value.problems
    assert p.startswith("device.accelerator: 'gpu', but no GPU is visible")
    assert p.endswith("use device=auto to fall back to the CPU, or device=cpu")


def test_inspect_of_a_missing_checkpoint_says_so(compose, tmp_path):
    with pytest.raises(ConfigError, match=r"^ckpt_path: no checkpoint file at 'x.ckpt'"):
        run(compose("task=inspect", "ckpt_path=x.ckpt"), tmp_path)
