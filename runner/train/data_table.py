"""data=table: a CSV/TSV, Parquet, .npy or .npz file as training data. Columns are picked by
name (or position); text columns are one-hot encoded with the categories of the training split;
every input value is standardized with the training split's statistics; classification or
regression follows from the target (text, booleans, or integers with at most CLASS_LIMIT
distinct values are classes) unless `task` says. All of it is the model's preprocessing
(runner.checkpoint.preprocessing), saved with the checkpoint. Every problem with the files or
columns is a ConfigError naming its key, found when the config is validated (`describe`)."""

import logging
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from runner.checkpoint.preprocessing import Preprocessing, class_names, standardizer
from runner.errors import ConfigError, Problems
from runner.train.data import InMemoryData
from runner.train.data_files import column, read_table
from runner.train.data_table_checks import check_roles, check_values, picked

log = logging.getLogger("runner")
CLASS_LIMIT = 50  # an integer target with more distinct values is read as regression
SPLITS = ("train", "val", "test")


class TableData(InMemoryData):
    """One file split by the runner (`val_fraction`, `test_fraction` of its rows, drawn with
    `seed`), or given validation and test files with the same columns (`val_path`,
    `test_path`). `missing`: error (refuse a file with missing feature values) or impute (the
    training mean; a missing category encodes as zeros). A missing target is always refused."""

    fixed_source = True  # the file's rows whatever the seed: reseeding reshuffles them

    def __init__(
        self,
        path: str,
        target: Any = None,
        features: list[Any] | None = None,
        task: str = "auto",
        categorical: list[Any] | None = None,
        missing: str = "error",
        val_path: str | None = None,
        test_path: str | None = None,
        batch_size: int = 64,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        seed: int = 0,
    ):
        super().__init__(batch_size, val_fraction, test_fraction, seed)
        self.paths = {"train": path, "val": val_path, "test": test_path}
        self.target, self.features, self.kind = target, features, task
        self.given_categorical, self.missing = list(categorical or []), missing
        self.categorical: list[Any] = []  # the columns one-hot encoded: text, and those named
        self.prep: Preprocessing | None = None
        self.fitted: Preprocessing | None = None  # use_preprocessing: a checkpoint's

    @property
    def task(self) -> str:
        """classification or regression: as configured, else what the target column holds."""
        if self.kind != "auto":
            return self.kind
        frame = read_table(self.paths["train"], "data.path")
        return _kind(frame[column(frame, self.target, "data.target", self.paths["train"])])

    @task.setter
    def task(self, value: str) -> None:
        self.kind = value

    @classmethod
    def describe(cls, args: dict[str, Any]) -> dict[str, Any]:
        """What the model must fit, from the data itself: input_shape, num_outputs, task.
        Raises ConfigError naming the data keys at fault."""
        data = cls(**args)
        data.setup()
        assert data.prep is not None
        outputs = len(data.prep.classes) if data.prep.classes is not None else 1
        keys = {"train": "path", "val": "val_path", "test": "test_path"}
        absolute = {
            keys[k]: str(Path(v).expanduser().resolve()) for k, v in data.paths.items() if v
        }
        return {
            "input_shape": list(data.prep.shape),
            "num_outputs": outputs,
            "task": data.task,
            "data": absolute,  # a checkpoint's data is found again from any directory
        }

    def preprocessing(self) -> Preprocessing | None:
        return self.prep

    def use_preprocessing(self, preprocessing: Preprocessing) -> None:
        """Apply a checkpoint's preprocessing instead of fitting one (task=eval)."""
        self.fitted, self.splits = preprocessing, {}

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        whole, given, target, features = self._frames()
        parts = self._parts(len(whole), given)
        problems = Problems()
        kind = self._check(whole, given, parts, target, features, problems)
        problems.raise_if_any()
        order = torch.cat(list(parts.values())).numpy()  # the splits' rows, train last
        if self.fitted is not None:  # a checkpoint's own preprocessing: applied, not refitted
            self.prep = self.fitted
            x = _encoded(self.prep, whole.iloc[order], "data.path")
        else:
            classes = _classes([whole, *given.values()], target) if kind != "regression" else None
            self.prep, x = _fit(whole, order, len(parts["train"]), features, self.categorical, self)
            self.prep = replace(self.prep, classes=classes)
        y = _targets(whole[target].iloc[order], self.prep.classes, "data.path")
        bounds = np.cumsum([0, *(len(idx) for idx in parts.values())]).tolist()
        self.splits = {
            name: (x[a:b], y[a:b]) for name, a, b in zip(parts, bounds, bounds[1:], strict=False)
        }
        for name, frame in given.items():
            key = f"data.{name}_path"
            self.splits[name] = (
                _encoded(self.prep, frame, key),
                _targets(frame[target], self.prep.classes, key),
            )

    def _frames(self) -> tuple[pd.DataFrame, dict[str, pd.DataFrame], Any, list[Any]]:
        """The file's rows, the given validation and test files' rows, the target column and
        the feature columns (those to one-hot encode into self.categorical)."""
        path = self.paths["train"]
        whole = read_table(path, "data.path")
        if self.target is None:
            raise ConfigError(
                [f"data.target: required: the column to learn; allowed: one of {_names(whole)}"]
            )
        target = column(whole, self.target, "data.target", path)
        chosen = self.features if self.features is not None else _others(whole, target)
        problems = Problems()
        if not chosen:
            problems.add("data.features", "empty; allowed: at least one input column")
        picks = picked(whole, chosen, "data.features", path, problems)
        categorical = picked(whole, self.given_categorical, "data.categorical", path, problems)
        check_roles(target, picks, categorical, (chosen, self.given_categorical), problems)
        problems.raise_if_any()
        features = list(picks)
        self.categorical = [f for f in features if f in categorical or _is_text(whole[f])]
        given = {
            s: read_table(self.paths[s], f"data.{s}_path") for s in SPLITS[1:] if self.paths[s]
        }
        for split, frame in given.items():
            for name in [target, *features]:
                column(frame, name, f"data.{split}_path", self.paths[split])
        return whole, given, target, features

    def _parts(self, n: int, given: dict[str, pd.DataFrame]) -> dict[str, torch.Tensor]:
        """The runner's splits of the file's n rows (as InMemoryData splits made data):
        validation, then test, from one permutation drawn with `seed`; the rest trains. Each
        split's rows in the permutation's order, as InMemoryData's."""
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed))
        n_val, n_test = (
            0 if split in given else math.floor(f * n)
            for split, f in zip(SPLITS[1:], self.fractions, strict=True)
        )
        parts = {"val": order[:n_val], "test": order[n_val : n_val + n_test]}
        parts = {k: v for k, v in parts.items() if k not in given}
        parts["train"] = order[n_val + n_test :]
        return parts

    def _check(
        self,
        whole: pd.DataFrame,
        given: dict[str, pd.DataFrame],
        parts: dict[str, torch.Tensor],
        target: Any,
        features: list[Any],
        problems: Problems,
    ) -> str:
        """Problems with the rows: empty splits, missing values, a task the target can't be."""
        sizes = {**{k: len(v) for k, v in parts.items()}, **{k: len(v) for k, v in given.items()}}
        rows = sum(sizes.values())
        for split, key in (
            ("train", "val_fraction"),
            ("val", "val_fraction"),
            ("test", "test_fraction"),
        ):
            wanted = split != "val" or self.fractions[0] > 0  # val_fraction=0: no validation
            if sizes.get(split) == 0 and wanted:
                problems.add(
                    f"data.{key}",
                    f"leaves the {split} split empty ({rows} rows in all); allowed: fractions "
                    "that give every split at least one row",
                )
        files = {"data.path": (self.paths["train"], whole)}
        files.update({f"data.{s}_path": (self.paths[s], frame) for s, frame in given.items()})
        numeric = [f for f in features if f not in self.categorical]
        check_values(files, target, numeric, self.categorical, self.missing == "impute", problems)
        kind = self.kind if self.kind != "auto" else _kind(whole[target])
        if kind == "regression" and _is_text(whole[target]):
            problems.add(
                "data.task",
                f"regression, but column {target!r} holds text; allowed: classification, auto",
            )
        return kind


def _fit(
    whole: pd.DataFrame,
    order: np.ndarray,
    n_train: int,
    features: list[Any],
    categorical: list[Any],
    data: TableData,
) -> tuple[Preprocessing, torch.Tensor]:
    """Categories, fill values and statistics from the training rows only (the last `n_train`
    of `order`); with them, the file's rows in `order`, encoded and standardized (n, encoded
    values): encoded once, column by column, each split then a view of it."""
    train = whole.iloc[order[len(order) - n_train :]]
    categories = {str(f): _values(train[f].dropna()) for f in categorical}
    numeric = [f for f in features if f not in categorical]
    fill = {str(f): _finite_mean(train[f]) for f in numeric} if data.missing == "impute" else {}
    names = tuple(str(f) for f in features)
    raw = Preprocessing(shape=(1,), features=names, categories=categories, fill=fill)
    if categories:  # held-out rows with a category the training rows lack: it encodes as zeros
        held_out = whole[list(categorical)].iloc[order[: len(order) - n_train]]
        for note in raw.unseen(held_out):
            log.warning("data: the validation and test rows of data.path: %s", note)
    columns = raw.columns(whole, order)  # (encoded values, n)
    stats = [standardizer(torch.from_numpy(values[-n_train:, None])) for values in columns]
    for values, (mean, std) in zip(columns, stats, strict=True):
        values -= np.float32(mean[0])  # float32, as prep.encode computes it
        values /= np.float32(std[0])
    mean, std = (tuple(s[i][0] for s in stats) for i in (0, 1))
    prep = replace(raw, shape=(len(columns),), mean=mean, std=std)
    return prep, torch.from_numpy(columns.T)


def _finite_mean(values: pd.Series) -> float:
    """The mean of a column's finite values (what a missing or infinite one is filled with);
    0 when the training rows have none (the standardized column is then all zeros)."""
    numbers = values.to_numpy(np.float64, na_value=np.nan)
    finite = numbers[np.isfinite(numbers)]
    return float(finite.mean()) if len(finite) else 0.0


def _encoded(prep: Preprocessing, frame: pd.DataFrame, key: str) -> torch.Tensor:
    try:
        return prep.encode(frame)
    except ValueError as e:  # a checkpoint's columns missing from the file given to it
        raise ConfigError([f"{key}: does not fit the checkpoint's preprocessing: {e}"]) from e


def _classes(frames: list[pd.DataFrame], target: Any) -> tuple[str, ...]:
    values = pd.concat([frame[target] for frame in frames])
    return class_names(sorted(values.unique().tolist()))


def _targets(values: pd.Series, classes: tuple[str, ...] | None, key: str) -> torch.Tensor:
    if classes is None:
        return torch.tensor(values.to_numpy(dtype=np.float32)).reshape(-1, 1)
    codes = pd.Categorical(values.astype(str), categories=list(classes)).codes
    if (codes < 0).any():
        unknown = sorted(set(values.astype(str)) - set(classes))
        raise ConfigError(
            [
                f"{key}: labels {unknown[:5]} are none of the model's classes; allowed: "
                f"{', '.join(classes)}"
            ]
        )
    return torch.tensor(codes, dtype=torch.long)


def _kind(target: pd.Series) -> str:
    if _is_text(target) or pd.api.types.is_bool_dtype(target):
        return "classification"
    if pd.api.types.is_integer_dtype(target) and target.nunique() <= CLASS_LIMIT:
        return "classification"
    return "regression"


def _is_text(values: pd.Series) -> bool:
    return not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values))


def _values(values: pd.Series) -> tuple[str, ...]:
    return tuple(sorted({str(v) for v in values.tolist()}))


def _others(frame: pd.DataFrame, target: Any) -> list[Any]:
    return [c for c in frame.columns if c != target]


def _names(frame: pd.DataFrame) -> str:
    names = [str(c) for c in frame.columns]
    return ", ".join(names[:12]) + (", …" if len(names) > 12 else "")
