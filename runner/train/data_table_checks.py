"""data=table's checks of the columns a config chooses and of the values in them, made when the
config is validated, before anything trains: each problem names its data key, the column and,
for a bad value, the first rows that hold one (a NaN or an infinity would train into non-finite
gradients instead)."""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from runner.errors import ConfigError, Problems
from runner.train.data_files import column

SHOWN = 5  # rows (or values) a message lists


def picked(
    frame: pd.DataFrame, choices: Sequence[Any], key: str, path: Any, problems: Problems
) -> dict[Any, int]:
    """The columns `choices` name (names or positions), each once, with the position of its
    choice: a choice that names no column (with a close match) or a column an earlier choice
    named is a problem at `key[i]`, and is left out."""
    found: dict[Any, int] = {}
    for i, choice in enumerate(choices):
        try:
            name = column(frame, choice, f"{key}[{i}]", path)
        except ConfigError as e:
            problems.items.extend(e.problems)
            continue
        if name in found:
            j = found[name]
            subject = repr(choice) if choice == name else f"{choice!r} (column {name!r})"
            earlier = "" if choices[j] == name else f" ({choices[j]!r})"
            problems.add(
                f"{key}[{i}]",
                f"{subject} repeats {key}[{j}]{earlier}; allowed: each column once",
            )
            continue
        found[name] = i
    return found


def check_roles(
    target: Any,
    features: dict[Any, int],
    categorical: dict[Any, int],
    given: tuple[Sequence[Any], Sequence[Any]],
    problems: Problems,
) -> None:
    """The target is no input, and every categorical column is one of the inputs (each
    column → the position of its choice in `given`: data.features and data.categorical as
    written)."""
    if target in features:
        choice = given[0][features[target]]
        problems.add(
            f"data.features[{features[target]}]",
            f"{choice!r} is the target column (data.target); allowed: the other columns",
        )
    names = [str(f) for f in features if f != target]
    inputs = ", ".join(names[:12]) + (", …" if len(names) > 12 else "")
    for name, i in categorical.items():
        choice = given[1][i]
        if name == target:
            problems.add(
                f"data.categorical[{i}]",
                f"{choice!r} is the target (data.target), not an input; allowed: input columns "
                f"({inputs}); the target's kind is data.task",
            )
        elif name not in features:
            problems.add(
                f"data.categorical[{i}]",
                f"column {name!r} is not an input (not in data.features); allowed: input "
                f"columns ({inputs}), or add it to data.features",
            )


def check_values(
    files: dict[str, tuple[Any, pd.DataFrame]],
    target: Any,
    numeric: list[Any],
    categorical: list[Any],
    impute: bool,
    problems: Problems,
) -> None:
    """Every file (its data key → (path, rows)): a target in every row, finite when a number;
    in the numeric inputs, no missing or infinite value unless `impute` (then both are filled
    with the training mean); in the categorical ones, no missing value unless `impute` (then it
    encodes as zeros)."""
    for key, (path, frame) in files.items():
        file = Path(str(path)).name
        gaps, infinite = bad_rows(frame[target])
        if len(gaps) or len(infinite):
            problems.add(
                key,
                f"column {target!r} of {file} (data.target) has {_counted(gaps, infinite)}; "
                "allowed: a finite target in every row",
            )
        if impute:
            continue
        for name in numeric:
            gaps, infinite = bad_rows(frame[name])
            if len(gaps) or len(infinite):
                problems.add(
                    key,
                    f"column {name!r} of {file} has {_counted(gaps, infinite)}; allowed: finite "
                    "numbers in every row, or data.missing=impute (the training mean of its "
                    "finite values)",
                )
        for name in categorical:
            gaps = np.flatnonzero(frame[name].isna().to_numpy())
            if len(gaps):
                problems.add(
                    key,
                    f"column {name!r} of {file} has {_counted(gaps, gaps[:0])}; allowed: a "
                    "category in every row, or data.missing=impute (a missing category encodes "
                    "as zeros)",
                )


def bad_rows(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The positions of the missing values and of the infinite ones (numbers only: text and
    categories have no infinity)."""
    numpy = isinstance(values.dtype, np.dtype)  # not pandas' nullable Int64, boolean: with NA
    if numpy and values.dtype.kind in "iub":  # NumPy integers and booleans: finite, never missing
        return np.empty(0, np.int64), np.empty(0, np.int64)
    if values.dtype.kind != "f" and not pd.api.types.is_numeric_dtype(values):
        return np.flatnonzero(values.isna().to_numpy()), np.empty(0, np.int64)
    numbers = values.to_numpy(np.float64, na_value=np.nan)
    if np.isfinite(numbers).all():  # the common case: one pass, nothing allocated per row
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.flatnonzero(np.isnan(numbers)), np.flatnonzero(np.isinf(numbers))


def _counted(gaps: np.ndarray, infinite: np.ndarray) -> str:
    """`2 missing values (rows 3, 7) and 1 infinite value (row 5), counting rows from 0`."""
    parts = []
    for what, rows in (("missing", gaps), ("infinite", infinite)):
        if len(rows):
            shown = ", ".join(str(r) for r in rows[:SHOWN]) + (", …" if len(rows) > SHOWN else "")
            s = "s" if len(rows) > 1 else ""
            parts.append(f"{len(rows)} {what} value{s} (row{s} {shown})")
    return " and ".join(parts) + ", counting rows from 0"
