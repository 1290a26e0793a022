"""data=table: the user's own table files (CSV with a header, Parquet, .npz, .npy), their
columns chosen by name, the model's sizes following from them, the preprocessing fitted on the
training split and carried by the checkpoint, the export and task=predict. Every mistake with
the files, columns or values is a config error naming its key: a row of tests/test_mistakes.py's
table; here, what a mistake leaves the run and the values' other choices."""

import json
import os

import numpy as np
import pandas as pd
import pytest
import torch

import runner
from runner import ConfigError
from runner.run import run
from tests.user_tables import penguins

FAST = ("device=cpu", "trainer.max_epochs=3", "logger=none", "stats=off")


def train_on(tmp_path, *overrides):
    return run(runner.compose(["data=table", *FAST, *overrides]), tmp_path)


@pytest.fixture(scope="module")
def csv_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("csv")
    penguins().to_csv(root / "penguins.csv", index=False)
    result = train_on(
        root / "run", f"data.path={root / 'penguins.csv'}", "data.target=species", "optim=adam"
    )
    return root, result


def test_a_csv_with_a_header_trains_a_classifier_sized_by_its_columns(csv_run):
    _, result = csv_run
    assert result["status"] == "ok"
    module = runner.load(result["checkpoints"]["last"])
    config = module.hparams["config"]
    # bill, flipper, and island one-hot over its 3 values: 5 inputs; 2 classes out.
    assert config["model"]["input_shape"] == [5]
    assert config["model"]["num_outputs"] == 2
    assert config["data"]["task"] == "classification"
    assert module.preprocessing.classes == ("Adelie", "Gentoo")
    assert module.preprocessing.categories == {"island": ("Biscoe", "Dream", "Torgersen")}
    assert result["metrics"]["test/acc"] > 0.8  # learnable: the label is a function of the row


def test_raw_rows_through_load_the_export_and_task_predict_give_evals_accuracy(csv_run, tmp_path):
    _, trained = csv_run
    ckpt = trained["checkpoints"]["last"]
    evaluated = run(
        runner.compose(["task=eval", f"ckpt_path={ckpt}", "device=cpu"]), tmp_path / "e"
    )
    exported = run(runner.compose(["task=export", f"ckpt_path={ckpt}"]), tmp_path / "x")
    test_rows = _test_rows(penguins(), seed=0)
    test_rows.to_csv(tmp_path / "raw.csv", index=False)
    truth = test_rows["species"].tolist()
    for source in (ckpt, exported["file"]):
        predicted = runner.load(source).predict(test_rows.drop(columns=["species"]))
        accuracy = np.mean([p == t for p, t in zip(predicted, truth, strict=True)])
        assert accuracy == pytest.approx(evaluated["metrics"]["test/acc"], abs=1e-6)
    predicted = run(
        runner.compose(
            [
                "task=predict",
                f"ckpt_path={exported['file']}",
                "data=table",
                f"data.path={tmp_path / 'raw.csv'}",
                "data.target=species",
            ]
        ),
        tmp_path / "p",
    )
    assert predicted["metrics"]["acc"] == pytest.approx(evaluated["metrics"]["test/acc"], abs=1e-6)
    written = pd.read_csv(predicted["file"])
    assert list(written.columns) == ["row", "prediction", "p(Adelie)", "p(Gentoo)"]
    assert written["prediction"].tolist() == runner.load(ckpt).predict(test_rows)


def _test_rows(frame: pd.DataFrame, seed: int, val: float = 0.15, test: float = 0.15):
    """The rows the runner tests on: the permutation's second part (runner.train.data_table)."""
    order = torch.randperm(len(frame), generator=torch.Generator().manual_seed(seed)).numpy()
    n_val, n_test = int(val * len(frame)), int(test * len(frame))
    return frame.iloc[np.sort(order[n_val : n_val + n_test])].reset_index(drop=True)


def test_parquet_regression_is_inferred_and_standardized_on_the_training_file_only(tmp_path):
    rng = np.random.default_rng(1)

    def rows(n, shift):
        x = rng.normal(shift, 1.0, (n, 2))
        return pd.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "y": x @ [2.0, -1.0] + 0.5})

    train, val, test = rows(200, 0.0), rows(40, 5.0), rows(40, -5.0)
    for name, frame in (("train", train), ("val", val), ("test", test)):
        frame.to_parquet(tmp_path / f"{name}.parquet")
    result = train_on(
        tmp_path / "run",
        f"data.path={tmp_path / 'train.parquet'}",
        f"data.val_path={tmp_path / 'val.parquet'}",
        f"data.test_path={tmp_path / 'test.parquet'}",
        "data.target=y",
        "model=linear",
    )
    module = runner.load(result["checkpoints"]["last"])
    assert module.hparams["config"]["data"]["task"] == "regression"
    prep = module.preprocessing
    # The statistics are the training file's alone (the other two are shifted by ±5).
    assert prep.mean == pytest.approx(train[["x0", "x1"]].mean().tolist(), rel=1e-5)
    assert prep.std == pytest.approx(train[["x0", "x1"]].std().tolist(), rel=1e-4)
    assert prep.classes is None


def test_an_npz_archive_of_a_feature_matrix_and_labels(tmp_path):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(150, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    np.savez(tmp_path / "data.npz", X=X, y=y)
    result = train_on(tmp_path / "run", f"data.path={tmp_path / 'data.npz'}", "data.target=y")
    config = runner.load(result["checkpoints"]["last"]).hparams["config"]
    assert config["model"]["input_shape"] == [4]  # X_0 … X_3
    assert config["data"]["task"] == "classification"  # two integer values: classes


def test_missing_and_infinite_values_are_refused_or_imputed_by_choice(tmp_path):
    frame = penguins(120)
    frame.loc[[3, 7], "bill"] = np.nan
    frame.loc[[5], "bill"] = np.inf
    frame.loc[[2], "flipper"] = -np.inf
    frame.to_csv(tmp_path / "gaps.csv", index=False)
    args = (f"data.path={tmp_path / 'gaps.csv'}", "data.target=species")
    with pytest.raises(ConfigError) as refused:
        train_on(tmp_path / "a", *args)
    allowed = (
        "allowed: finite numbers in every row, or data.missing=impute (the training mean of "
        "its finite values)"
    )
    assert refused.value.problems == [
        "data.path: column 'bill' of gaps.csv has 2 missing values (rows 3, 7) and 1 infinite "
        f"value (row 5), counting rows from 0; {allowed}",
        "data.path: column 'flipper' of gaps.csv has 1 infinite value (row 2), counting rows "
        f"from 0; {allowed}",
    ]
    result = train_on(tmp_path / "b", *args, "data.missing=impute")
    assert result["status"] == "ok"  # no non-finite gradient: every value was filled
    module = runner.load(result["checkpoints"]["last"])
    finite = frame[np.isfinite(frame["bill"])]
    fill = module.preprocessing.fill["bill"]
    assert np.isfinite(fill)
    assert finite["bill"].mean() == pytest.approx(fill, rel=0.05)  # the training rows' mean
    for row in (3, 5):  # missing, infinite: both filled with it
        raw = frame.iloc[[row]].drop(columns=["species"])
        assert module.predict(raw) == module.predict(raw.assign(bill=fill))


def test_a_missing_value_of_a_nullable_integer_column_is_found_too(tmp_path):
    frame = penguins(120)
    frame["eggs"] = pd.array([2] * 119 + [None], dtype="Int64")  # Parquet keeps the NA
    frame.to_parquet(tmp_path / "eggs.parquet")
    with pytest.raises(ConfigError) as refused:
        train_on(tmp_path / "run", f"data.path={tmp_path / 'eggs.parquet'}", "data.target=species")
    assert refused.value.problems[0].startswith(
        "data.path: column 'eggs' of eggs.parquet has 1 missing value (row 119), counting"
    )


def test_a_model_that_refused_missing_values_refuses_them_in_the_file_it_predicts(
    csv_run, tmp_path
):
    _, trained = csv_run  # data.missing=error
    rows = penguins(20, seed=3)
    rows.loc[[6, 8], "flipper"] = [np.inf, np.nan]
    rows.to_csv(tmp_path / "raw.csv", index=False)
    with pytest.raises(ConfigError) as refused:
        run(
            runner.compose(
                [
                    "task=predict",
                    f"ckpt_path={trained['checkpoints']['last']}",
                    "data=table",
                    f"data.path={tmp_path / 'raw.csv'}",
                ]
            ),
            tmp_path / "p",
        )
    assert "column 'flipper' has 2 missing or infinite value(s), first at row 6" in str(
        refused.value
    )
    assert str(refused.value).startswith("data.path: ")


def test_categories_never_seen_in_training_are_warned_about_wherever_they_are_encoded(
    csv_run, tmp_path, caplog
):
    _, trained = csv_run
    ckpt = trained["checkpoints"]["last"]
    rows = penguins(30, seed=4)
    rows.loc[[1, 2, 5], "island"] = ["Atlantis", "Mars", "Atlantis"]
    rows.to_csv(tmp_path / "new.csv", index=False)
    warning = (
        "column 'island': 3 value(s) never seen in training ('Atlantis', 'Mars') encode as "
        "zeros, no category of the 3 it learned (Biscoe, Dream, Torgersen)"
    )
    with caplog.at_level("WARNING", logger="runner"):
        runner.load(ckpt).predict(rows)
    assert warning in caplog.text
    predicted = run(
        runner.compose(
            ["task=predict", f"ckpt_path={ckpt}", "data=table", f"data.path={tmp_path / 'new.csv'}"]
        ),
        tmp_path / "p",
    )
    assert predicted["warnings"] == [warning]
    caplog.clear()
    with caplog.at_level("WARNING", logger="runner"):  # a validation file with new values
        penguins(60).to_csv(tmp_path / "train.csv", index=False)
        train_on(
            tmp_path / "t",
            f"data.path={tmp_path / 'train.csv'}",
            f"data.val_path={tmp_path / 'new.csv'}",
            "data.target=species",
            "trainer.max_epochs=1",
        )
    assert warning in caplog.text
    caplog.clear()
    whole = penguins(60)
    held_out = _test_rows(whole.assign(row=range(60)), seed=0)["row"].tolist()
    whole.loc[held_out[:2], "island"] = "Mars"  # in the test split only: no category of it
    whole.to_csv(tmp_path / "one.csv", index=False)
    with caplog.at_level("WARNING", logger="runner"):
        one = train_on(tmp_path / "o", f"data.path={tmp_path / 'one.csv'}", "data.target=species")
    assert runner.load(one["checkpoints"]["last"]).preprocessing.categories["island"] == (
        "Biscoe",
        "Dream",
        "Torgersen",
    )
    assert (
        "data: the validation and test rows of data.path: column 'island': 2 value(s) never "
        "seen in training ('Mars') encode as zeros" in caplog.text
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file, whatever its permissions")
def test_a_file_this_user_may_not_read_is_named_so(tmp_path):
    penguins().to_csv(tmp_path / "secret.csv", index=False)
    (tmp_path / "secret.csv").chmod(0)
    with pytest.raises(ConfigError) as refused:
        train_on(tmp_path / "run", f"data.path={tmp_path / 'secret.csv'}", "data.target=species")
    assert "is a file this user may not read (permission denied)" in str(refused.value)


def test_preprocessing_read_from_a_file_is_checked():
    from runner.checkpoint.preprocessing import Preprocessing

    good = {"shape": [2], "mean": [0.0, 1.0], "std": [1.0, 2.0], "classes": ["a", "b"]}
    assert Preprocessing.from_dict(good, "f").classes == ("a", "b")
    for bad in (
        {**good, "mean": [0.0]},
        {**good, "std": ["__import__('os')", 1.0]},
        {**good, "classes": [1, 2]},
        {**good, "code": "x"},
        ["not", "a", "mapping"],
    ):
        with pytest.raises(ConfigError, match=r"^f: its preprocessing is unreadable"):
            Preprocessing.from_dict(bad, "f")


def test_a_checkpoint_with_damaged_preprocessing_is_refused(csv_run, tmp_path):
    from runner.checkpoint import format as ckpt_format

    _, result = csv_run
    saved = ckpt_format.read(result["checkpoints"]["last"], "f")
    saved["hyper_parameters"]["preprocessing"]["mean"] = "oops"
    ckpt_format.write(saved, tmp_path / "damaged.ckpt")
    with pytest.raises(ConfigError, match="its preprocessing is unreadable: mean: expected 5"):
        runner.load(tmp_path / "damaged.ckpt")


def test_raw_digits_pixels_through_the_exported_model_give_evals_accuracy(tmp_path):
    """The issue's report: the export fed raw pixels scored 60.8 %, standardized 98.4 %."""
    from sklearn.datasets import load_digits

    trained = run(runner.compose(["model=mlp", "data=digits", *FAST]), tmp_path / "t")
    ckpt = trained["checkpoints"]["last"]
    evaluated = run(
        runner.compose(["task=eval", f"ckpt_path={ckpt}", "device=cpu"]), tmp_path / "e"
    )
    exported = run(runner.compose(["task=export", f"ckpt_path={ckpt}"]), tmp_path / "x")
    digits = load_digits()
    raw = pd.DataFrame(digits.data)
    raw["digit"] = digits.target
    test_rows = _test_rows(raw, seed=0)
    pixels, truth = test_rows.drop(columns=["digit"]).to_numpy(), test_rows["digit"].astype(str)
    predicted = runner.load(exported["file"]).predict(pixels)
    accuracy = float(np.mean(np.array(predicted) == truth.to_numpy()))
    assert accuracy == pytest.approx(evaluated["metrics"]["test/acc"], abs=1e-6)
    np.save(tmp_path / "raw.npy", pixels)
    done = run(
        runner.compose(
            [
                "task=predict",
                f"ckpt_path={exported['file']}",
                "data=table",
                f"data.path={tmp_path / 'raw.npy'}",
            ]
        ),
        tmp_path / "p",
    )
    assert pd.read_csv(done["file"])["prediction"].astype(str).tolist() == predicted
    # The README's two lines, for software that is not the runner:
    from safetensors import safe_open

    with safe_open(exported["file"], "pt") as f:
        prep = json.loads(f.metadata()["preprocessing"])
    x = (torch.tensor(pixels, dtype=torch.float32) - torch.tensor(prep["mean"])) / torch.tensor(
        prep["std"]
    )
    net = runner.load(exported["file"]).net
    assert [prep["classes"][i] for i in net(x).argmax(-1).tolist()] == predicted
    # Raw numbers with a NaN or an infinity would predict NaN silently: refused.
    pixels = pixels.copy()
    pixels[[2, 5], 10] = [np.nan, np.inf]
    np.save(tmp_path / "bad.npy", pixels)
    with pytest.raises(ConfigError) as refused:
        run(
            runner.compose(
                [
                    "task=predict",
                    f"ckpt_path={ckpt}",
                    "data=table",
                    f"data.path={tmp_path / 'bad.npy'}",
                ]
            ),
            tmp_path / "b",
        )
    assert "2 input row(s) hold NaN or infinity (rows 2, 5, from 0)" in str(refused.value)
    with pytest.raises(ValueError, match=r"rows 2, 5, from 0"):
        runner.load(ckpt).predict(pixels)


def test_eval_on_another_file_applies_the_checkpoints_preprocessing_as_predict_does(
    csv_run, tmp_path
):
    _, trained = csv_run
    ckpt = trained["checkpoints"]["last"]
    other = penguins(200, seed=7)
    other["bill"] += 3.0  # another distribution: refitting would standardize it away
    other.to_csv(tmp_path / "other.csv", index=False)
    evaluated = run(
        runner.compose(
            [
                "task=eval",
                f"ckpt_path={ckpt}",
                "device=cpu",
                "data=table",
                f"data.path={tmp_path / 'other.csv'}",
                "data.target=species",
            ]
        ),
        tmp_path / "e",
    )
    test_rows = _test_rows(other, seed=0)
    predicted = runner.load(ckpt).predict(test_rows)
    accuracy = np.mean([p == t for p, t in zip(predicted, test_rows["species"], strict=True)])
    assert evaluated["metrics"]["test/acc"] == pytest.approx(accuracy, abs=1e-6)
