"""Property: whatever a user writes in the model and init sections — right or wrong types,
sizes, names and nesting — the runner either builds it or raises ConfigError. Never another
exception, never a traceback.

The default profile runs in seconds; `HYPOTHESIS_PROFILE=long pytest tests/model/test_fuzz.py`
runs thousands of examples (by hand, before a release).
"""

import contextlib
import os
import traceback

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

import runner
from runner import ConfigError

settings.register_profile(
    "default", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "long", max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# Values of every YAML kind, leaning to the ones that matter: sizes near the edges (0, -1, a
# size far beyond memory), plausible small ones, wrong types.
SIZES = st.sampled_from([0, -1, 1, 2, 3, 4, 8, 10**12]) | st.integers(1, 64)
SCALARS = (
    SIZES
    | st.none()
    | st.booleans()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(["", "abc", "ReLU", "${oc.env:HOME}", "{i}", "a.b"])
)
LAYER_TYPES = st.sampled_from(
    [
        "Linear",
        "LazyLinear",
        "ReLU",
        "Tanh",
        "Dropout",
        "BatchNorm1d",
        "LayerNorm",
        "Flatten",
        "Identity",
        "Conv1d",
        "Sequential",
        "ModuleList",
        "CenteredLayer",
        "MyDense",
        "FixedHiddenMLP",
        "Lineer",
        "linear",
        "torch.nn.Linear",
        "os.system",
        "nope.Layer",
        "tests.user_layers.Scale",
        "tests.user_layers.NOT_A_MODULE",
        "runner.checkpoint.files.torch.save",
    ]
)
KWARG_NAMES = st.sampled_from(
    [
        "in_features",
        "out_features",
        "p",
        "num_features",
        "normalized_shape",
        "in_units",
        "units",
        "factor",
        "bias",
        "kernel_size",
        "in_channels",
        "out_channels",
        "bogus",
    ]
)


def layer() -> st.SearchStrategy:
    kwargs = st.dictionaries(KWARG_NAMES, SCALARS, max_size=3)
    return st.builds(lambda t, kw: {"type": t, **kw}, LAYER_TYPES | SCALARS, kwargs) | LAYER_TYPES


def entry(children: st.SearchStrategy) -> st.SearchStrategy:
    placed = st.fixed_dictionaries(
        {},
        optional={
            "name": st.sampled_from(["body", "b {i}", "", "a.b", "forward", 7]),
            "repeat": SIZES,
        },
    )
    kinds = st.one_of(
        layer(),
        st.builds(lambda name: {"block": name}, st.sampled_from(["b1", "b2", "missing", 3])),
        st.builds(lambda name: {"ref": name}, st.sampled_from(["s1", "missing"])),
        st.builds(lambda xs: {"seq": xs}, st.lists(children, max_size=3) | SCALARS),
        st.builds(lambda: {"type": "Linear", "block": "b1"}),
    )
    return st.builds(lambda e, p: {**e, **p} if isinstance(e, dict) else e, kinds, placed) | SCALARS


ENTRIES = st.recursive(layer(), lambda children: entry(children), max_leaves=8)
NET = st.lists(ENTRIES, max_size=5) | ENTRIES

MODELS = st.fixed_dictionaries(
    {"net": NET},
    optional={
        "input_shape": st.lists(SIZES, min_size=0, max_size=3) | SCALARS,
        "blocks": st.dictionaries(st.sampled_from(["b1", "b2"]), NET, max_size=2),
        "shared": st.dictionaries(st.sampled_from(["s1"]), ENTRIES, max_size=1),
        "tie": st.lists(
            st.lists(st.sampled_from(["0.weight", "2.weight", "0.bias", "9.weight"]), max_size=3)
            | st.builds(
                lambda ps, t: {"params": ps, "transpose": t},
                st.lists(st.sampled_from(["0.weight", "2.weight"]), max_size=2),
                st.booleans(),
            ),
            max_size=2,
        ),
    },
)
RULES = st.lists(
    st.fixed_dictionaries(
        {
            "init": st.sampled_from(
                [
                    "normal",
                    "xavier_uniform",
                    "constant",
                    "kaiming_normal",
                    "uniform",
                    "trunc_normal",
                    "nope",
                    "os.remove",
                    "d2l_custom",
                ]
            )
        },
        optional={
            "param": st.sampled_from(["*.weight", "0.weight", "*", "[", "zzz"]),
            "module": st.sampled_from(["Linear", "ReLU", "Lineer"]),
            "role": st.sampled_from(["weight", "bias", "gamma"]),
            "position": st.sampled_from(["first", "last", "middle"]),
            "min_ndim": SIZES,
            "args": st.dictionaries(
                st.sampled_from(["std", "mean", "value", "a", "b", "gain", "mode"]),
                SCALARS,
                max_size=2,
            ),
        },
    ),
    max_size=3,
)
EDITS = st.lists(
    st.fixed_dictionaries(
        {"param": st.sampled_from(["0.weight", "2.bias", "zzz"]), "value": SCALARS},
        optional={
            "op": st.sampled_from(["set", "add", "mul", "pow"]),
            "index": st.lists(SIZES, max_size=3),
        },
    ),
    max_size=2,
)


@st.composite
def near_valid(draw):
    """A model that would build — sizes chained, some left out, a repeated block, a tie — then,
    often, one field made wrong: these reach the meta build, the sizing pass, the init rules and
    the ties, which random configs rarely do."""
    width = draw(st.integers(1, 16))
    net, block = [], []
    for _ in range(draw(st.integers(1, 5))):
        out = draw(st.integers(1, 16))
        kind = draw(
            st.sampled_from(
                [
                    "Linear",
                    "lazy",
                    "MyDense",
                    "ReLU",
                    "Tanh",
                    "BatchNorm1d",
                    "LayerNorm",
                    "Dropout",
                    "CenteredLayer",
                ]
            )
        )
        if kind == "Linear":
            net.append({"type": "Linear", "in_features": width, "out_features": out})
        elif kind == "lazy":
            net.append({"type": "Linear", "out_features": out})
        elif kind == "MyDense":
            net.append({"type": "MyDense", "in_units": width, "units": out})
        elif kind == "BatchNorm1d":
            net.append({"type": "BatchNorm1d", "num_features": width})
        elif kind == "LayerNorm":
            net.append({"type": "LayerNorm", "normalized_shape": width})
        else:
            net.append(kind)
        width = out if kind in ("Linear", "lazy", "MyDense") else width
    block = [{"type": "Linear", "in_features": width, "out_features": width}, "ReLU"]
    net.append({"block": "b1", "repeat": draw(st.integers(1, 3)), "name": "rep {i}"})
    model = {
        "input_shape": [draw(st.integers(1, 16)) if draw(st.booleans()) else net_input(net)],
        "net": net,
        "blocks": {"b1": block},
    }
    if draw(st.booleans()):
        model["tie"] = [
            ["rep 0.0.weight", "rep 0.0.weight" if draw(st.booleans()) else "rep 1.0.weight"]
        ]
    if draw(st.booleans()):  # one field made wrong
        victim = draw(st.sampled_from(net[:-1] or net))
        if isinstance(victim, dict):
            key = draw(st.sampled_from(sorted(k for k in victim if k != "type") or ["type"]))
            victim[key] = draw(SCALARS)
    return model


def net_input(net: list) -> int:
    first = net[0]
    if isinstance(first, dict):
        return (
            first.get("in_features")
            or first.get("in_units")
            or first.get("num_features")
            or first.get("normalized_shape")
            or 4
        )
    return 4


GOOD_RULES = st.lists(
    st.fixed_dictionaries(
        {
            "init": st.sampled_from(
                [
                    "normal",
                    "xavier_uniform",
                    "constant",
                    "zeros",
                    "kaiming_normal",
                    "d2l_custom",
                    "default",
                ]
            )
        },
        optional={
            "role": st.sampled_from(["weight", "bias"]),
            "position": st.sampled_from(["first", "last"]),
            "module": st.sampled_from(["Linear", "MyDense"]),
        },
    ).map(
        lambda r: (
            {**r, "args": {"value": 0.5}}
            if r["init"] == "constant"
            else ({**r, "min_ndim": 2} if r["init"] in ("xavier_uniform", "kaiming_normal") else r)
        )
    ),
    max_size=3,
)


@given(model=near_valid(), rules=GOOD_RULES | RULES)
def test_a_nearly_right_model_builds_or_raises_config_error(base, model, rules):
    cfg = with_sections(base, model, {"strict": False, "rules": rules, "edits": []})
    try:
        net = runner.build_net(cfg)
    except ConfigError as e:
        assert e.problems and all(isinstance(p, str) and ":" in p for p in e.problems)
        return
    import torch

    width = model["input_shape"][0]
    net.eval()
    with torch.no_grad():  # what was built runs on its declared input: the shape checks hold
        out = net(torch.zeros(2, width))
    assert out.shape[0] == 2


@pytest.fixture(scope="module")
def base():
    return runner.compose(["device=cpu"])


def with_sections(base, model: dict, init: dict):
    cfg = OmegaConf.to_container(base, resolve=True)
    cfg["model"], cfg["init"] = model, init
    return OmegaConf.create(cfg)


@given(model=MODELS, rules=RULES, edits=EDITS)
def test_any_model_and_init_section_builds_or_raises_config_error(base, model, rules, edits):
    try:
        cfg = with_sections(base, model, {"strict": False, "rules": rules, "edits": edits})
    except Exception:
        return  # not even a config OmegaConf can hold: nothing a user could compose
    try:
        runner.build_net(cfg)
    except ConfigError as e:
        assert e.problems and all(isinstance(p, str) and ":" in p for p in e.problems)


OVERRIDE_KEYS = st.sampled_from(
    [
        "model.net",
        "model.input_shape",
        "init.rules",
        "device.accelerator",
        "device.devices",
        "device.precision",
        "seed",
        "task",
        "trainer.max_epochs",
        "data.batch_size",
        "optim.optimizer.lr",
        "stats.on_nan",
        "logger",
    ]
)
OVERRIDE_VALUES = st.sampled_from(
    [
        "0",
        "-1",
        "abc",
        "null",
        "[]",
        "{}",
        "1e309",
        "nan",
        "[1, 2]",
        "{type: Linear}",
        "cpu",
        "gpu",
        "true",
    ]
)


@given(overrides=st.lists(st.tuples(OVERRIDE_KEYS, OVERRIDE_VALUES), max_size=3))
def test_any_overrides_compose_with_hydras_error_or_validate_with_config_error(overrides):
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from runner.config.spec import parse_run

    try:
        cfg = runner.compose(["device=cpu", *(f"{k}={v}" for k, v in overrides)])
    except (HydraException, OmegaConfBaseException):
        return  # Hydra's own message for an unknown key or a type the schema refuses
    except (ValueError, TypeError) as e:  # Hydra's defaults list trips on `logger=[1, 2]`
        assert "/hydra/" in traceback.extract_tb(e.__traceback__)[-1].filename  # not ours
        return
    with contextlib.suppress(ConfigError):  # anything else fails the test
        parse_run(cfg)
