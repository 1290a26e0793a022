"""Comparisons that do not mislead: data=random's targets do not depend on the model, and eval
on the checkpoint's own data set split another way warns that it overlaps the training rows."""

import pytest
import torch

import runner
from runner.run import run
from runner.train.data import RandomData


def made(output_shape, input_shape=(20,), seed=0):
    data = RandomData(list(input_shape), num_samples=256, seed=seed)
    data.output_shape = output_shape
    return data.make()


def test_random_data_is_the_same_for_models_of_one_input_shape_whatever_their_outputs():
    X10, y10 = made((10,))
    X1, y1 = made((1,))
    assert torch.equal(X10, X1)
    assert torch.allclose(y1[:, 0], y10[:, 0], atol=1e-5)  # a 1-output model: the first column
    y3 = made((3,))[1]
    assert torch.allclose(y3, y10[:, :3], atol=1e-5)
    assert not torch.allclose(y10[:, 0], y10[:, 1], atol=0.1)  # the columns are different tasks
    other_seed = made((1,), seed=1)[1]
    assert not torch.allclose(other_seed, y1)  # the seed draws another teacher
    assert made((1,), input_shape=(4,))[0].shape == (256, 4)  # another shape: other inputs


@pytest.fixture(scope="module")
def digits_ckpt(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("digits")
    overrides = ["model=mlp", "data=digits", "device=cpu", "trainer.max_epochs=1", "logger=none"]
    return run(runner.compose(overrides), run_dir)["checkpoints"]["last"]


def test_eval_on_the_same_data_set_reshuffled_warns_of_the_overlap(digits_ckpt, tmp_path):
    base = ["task=eval", f"ckpt_path={digits_ckpt}", "device=cpu", "logger=none"]
    own = run(runner.compose(base), tmp_path / "own")
    assert "warnings" not in own
    reshuffled = run(
        runner.compose([*base, "data=digits", "data.seed=3", "eval.data=given"]), tmp_path / "r"
    )
    (warning,) = reshuffled["warnings"]
    assert warning.startswith(
        "the data given is the checkpoint's own data set split another way (data.seed=3 "
        "(trained with 0)): its test split holds rows the model trained on"
    )
    # What the warning is about: most of the reshuffled test split was trained on.
    assert _trained_share(test_seed=3, train_seed=0) > 0.6


def _trained_share(test_seed: int, train_seed: int, n: int = 1797) -> float:
    """The share of one permutation's test rows that another's training rows hold (digits'
    splits: 15 % validation, then 15 % test, then training)."""
    n_val = n_test = int(0.15 * n)

    def order(seed):
        return torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()

    test = set(order(test_seed)[n_val : n_val + n_test])
    train = set(order(train_seed)[n_val + n_test :])
    return len(test & train) / len(test)


def test_eval_on_other_data_of_the_same_kind_does_not_warn(tmp_path):
    trained = run(
        runner.compose(
            ["model=linear", "data=synthetic", "device=cpu", "trainer.max_epochs=1", "logger=none"]
        ),
        tmp_path / "t",
    )
    ckpt = trained["checkpoints"]["last"]
    other = run(
        runner.compose(
            [
                "task=eval",
                f"ckpt_path={ckpt}",
                "device=cpu",
                "data=synthetic",
                "data.seed=5",
                "eval.data=given",
                "logger=none",
            ]
        ),
        tmp_path / "e",
    )
    assert "warnings" not in other  # synthetic draws new samples from its seed: no overlap
