"""The data and the model are checked against each other before fit and before eval: a sample
shape the model does not take, or outputs that do not match the targets (which MSE would
broadcast into a meaningless loss), is a config error naming both sides."""

import pytest

import runner
from runner import ConfigError
from runner.run import run

MISMATCHES = {
    "digits into a 20-input model": (
        ("model=mlp", "data=digits", "model.input_shape=[20]"),
        "data: the data (Digits) has samples of shape [64], but model.input_shape is [20]; "
        "allowed: data whose samples are [20], or a model for [64]",
    ),
    "10 outputs for 1 regression target": (
        ("model=mlp", "data=synthetic", "model.num_outputs=10"),
        "model: outputs [10] per sample, but the data (SyntheticRegression) has targets of "
        "shape [1], which the loss would broadcast against them; allowed: outputs of shape [1] "
        "(model.num_outputs=1)",
    ),
    "5 outputs for 10 classes": (
        ("model=mlp", "data=digits", "model.num_outputs=5"),
        "model: outputs [5] per sample, but the data (Digits) has labels 0 to 9; allowed: one "
        "output per class, [10] (model.num_outputs=10)",
    ),
    "w of another length than the model's input": (
        ("model=linear", "data=synthetic", "data.w=[1,2,3]"),
        "data: the data (SyntheticRegression) has samples of shape [3], but model.input_shape "
        "is [2]",
    ),
}


@pytest.mark.parametrize("case", MISMATCHES)
def test_data_and_model_that_do_not_fit_are_refused_before_fit(compose, tmp_path, case):
    overrides, message = MISMATCHES[case]
    with pytest.raises(ConfigError) as refused:
        run(compose(*overrides, "trainer.max_epochs=1"), tmp_path)
    (problem,) = refused.value.problems
    assert problem.startswith(message)
    assert not (tmp_path / "checkpoints").exists()  # refused before fit wrote anything


def test_eval_of_a_model_whose_outputs_do_not_match_the_targets_is_refused(compose, tmp_path):
    trained = run(
        compose("model=mlp", "data.num_samples=64", "trainer.max_epochs=1", "logger=none"),
        tmp_path / "train",
    )  # 20 inputs → 10 outputs, regression
    twenty = "[" + ",".join(["1.0"] * 20) + "]"
    cfg = runner.compose(
        [
            "task=eval",
            f"ckpt_path={trained['checkpoints']['last']}",
            "device=cpu",
            "data=synthetic",
            f"data.w={twenty}",
            "logger=none",
        ]
    )
    with pytest.raises(ConfigError) as refused:
        run(cfg, tmp_path / "eval")
    assert refused.value.problems == [
        "model: outputs [10] per sample, but the data given here has targets of shape [1], "
        "which the loss would broadcast against them; allowed: outputs of shape [1] "
        "(model.num_outputs=1)"
    ]


def test_more_outputs_than_classes_trains_with_a_warning(compose, tmp_path, caplog):
    """The extra outputs are never a target: it trains, and the log says which and what fits."""
    with caplog.at_level("WARNING", logger="runner"):
        done = run(
            compose("model=mlp", "data=digits", "model.num_outputs=12", "trainer.max_epochs=1"),
            tmp_path,
        )
    assert done["status"] == "ok"
    assert (
        "model: 12 outputs per sample, but the data (Digits) has labels 0 to 9: outputs 10 to 11 "
        "are never a target (model.num_outputs=10 fits it)" in caplog.text
    )
    caplog.clear()
    with caplog.at_level("WARNING", logger="runner"):
        run(compose("model=mlp", "data=digits", "trainer.max_epochs=1"), tmp_path / "fits")
    assert "never a target" not in caplog.text
