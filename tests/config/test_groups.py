"""The project's own config tests, written with runner.testing as a user would: every model ×
init builds, runs forward and trains one step, and means what the README says; every option
of every group composes; every experiment runs one step."""

from pathlib import Path

import pytest

import runner
from runner.testing import Model, all_combinations
from runner.testing.combinations import options

CONF = Path(__file__).resolve().parents[2] / "conf"
# One scalar per batch (FixedHiddenMLP, and the chimera that ends with it): for inspection.
NOT_TRAINABLE = {"fixed_hidden", "chimera"}
# Image data goes to a model that takes images (the default MLP takes a vector).
TAKES_IMAGES = {"data=digits_images": ["model=lenet"]}
# The book's CNNs (tests/d2l_cnn.py) are checked against the book in tests/model; here with
# their modules' own init and Kaiming's, so the suite grows by a few models, not by every
# initializer of each (all ones, or the book's ±5…10, overflow GoogLeNet's 22 layers anyway).
CNN_INITS = {"default", "kaiming"}


def _model_and_init() -> list:
    from tests.d2l_cnn import CNNS

    def wanted(param) -> bool:
        model, init = (o.partition("=")[2] for o in param.values[0])
        return model not in CNNS or init in CNN_INITS

    return [p for p in all_combinations(groups=["model", "init"]) if wanted(p)]


@pytest.mark.parametrize("overrides", _model_and_init())
def test_every_model_and_init_builds_runs_forward_and_trains(overrides):
    m = Model(*overrides)
    m.assert_device("cpu")
    m.assert_forward()
    if overrides[0].removeprefix("model=") not in NOT_TRAINABLE:
        m.assert_trains()
    else:
        with pytest.raises(AssertionError, match=r"returns shape \[\], not one output per sample"):
            m.assert_trains()


def test_the_zoo_means_what_the_readme_says():
    Model("model=mlp").assert_parameters(
        count=7_946, shapes={"0.weight": (256, 20), "2.weight": (10, 256)}
    )
    Model("model=lazy_mlp").assert_parameters(
        shapes={"0.weight": (256, 20), "0.bias": (256,), "2.weight": (10, 256), "2.bias": (10,)}
    )
    rgnet = Model("model=rgnet").assert_parameters(count=309)
    names = [n for n, _ in rgnet.net.named_parameters()]
    assert names[0] == "0.block 0.0.weight" and names[-1] == "1.bias"
    Model("model=shared").assert_ties(["2.weight", "4.weight"], ["2.bias", "4.bias"])
    Model("model=shared").assert_parameters(count=121)  # the shared 8×8 Linear counted once
    Model("model=nested").assert_parameters(
        shapes={"net.0.weight": (64, 20), "net.2.weight": (32, 64), "linear.weight": (16, 32)}
    )
    Model("model=linear").assert_parameters(count=3, shapes={"0.weight": (1, 2)})
    Model("model=mydense").assert_parameters(shapes={"0.weight": (64, 8), "1.weight": (8, 1)})
    Model("model=centered").assert_parameters(count=8 * 128 + 128)


def test_the_initializers_mean_what_the_readme_says():
    Model("model=mlp", "init=normal").assert_init(
        "*.weight", mean=0, std=0.01, atol=0.002, rtol=0.2
    )
    Model("model=mlp", "init=normal").assert_init("*.bias", mean=0, std=0, min=0, max=0)
    Model("model=rgnet", "init=constant").assert_init("*.weight", mean=1, all_equal=True)
    Model("model=rgnet", "init=constant").assert_init("*.bias", max=0, min=0)
    Model("model=mlp", "init=mixed").assert_init("2.weight", mean=42, all_equal=True)
    # Xavier on the weights, PyTorch's default on the biases (the book's init_xavier).
    m = Model("model=mlp", "init=xavier").assert_init(
        "0.weight", mean=0, std=(2 / 276) ** 0.5, atol=0.01
    )
    m.assert_init("0.bias", all_equal=False)
    Model("model=mlp", "init=kaiming").assert_init("0.weight", std=(2 / 20) ** 0.5, rtol=0.1)


def _group_options():
    for folder in sorted(p for p in CONF.iterdir() if p.is_dir() and p.name != "hydra"):
        for option in options(folder.name):
            yield folder.name, option


@pytest.mark.parametrize(("group", "option"), list(_group_options()))
def test_every_option_of_every_group_composes(group, option):
    cfg = runner.compose([f"{group}={option}"])
    assert cfg is not None
    if group in ("device", "hparams_search") or group == "experiment":
        return  # GPUs and searches are checked where they run; experiments below
    if (group, option) == ("data", "table"):
        return  # sized by the file it names: tests/train/test_table_data.py trains on files
    Model(f"{group}={option}", *TAKES_IMAGES.get(f"{group}={option}", [])).assert_forward()


@pytest.mark.parametrize("name", options("experiment"))
def test_every_experiment_runs_one_fast_step(name):
    m = Model(f"experiment={name}")
    m.assert_forward()
    if m.cfg.task == "train":
        m.assert_trains()
