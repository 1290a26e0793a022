"""What a data module fitted on its training split, carried with the model: the columns a raw
input has (tables), their category codes and fill values, the standardization statistics and
the class names. Saved in the checkpoint's hyperparameters and in an export's metadata as plain
JSON-able data, read back checked (it comes from a file someone else wrote: numbers and strings
only, nothing that runs), and applied by `RunnerModule.predict` and task=predict.

Kept apart from the network on purpose (not a first layer of it): the network, its state_dict
keys and the export stay exactly the hand-written PyTorch model, and a raw input may be what no
layer takes (a table's text categories in, class names out).
"""

import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from runner.errors import ConfigError, did_you_mean

log = logging.getLogger("runner")
SHOWN = 5  # values a warning lists


@dataclass(frozen=True)
class Preprocessing:
    """`shape`: one encoded sample's shape; `mean`/`std`: per encoded value, flattened (None:
    not standardized). Tables also have `features` (the raw columns, in order), `categories`
    (a categorical column's values, one-hot in this order; an unseen one encodes as zeros) and
    `fill` (a numeric column's value for a missing or infinite one: the training mean of its
    finite values; absent: refused)."""

    shape: tuple[int, ...]
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    classes: tuple[str, ...] | None = None
    features: tuple[str, ...] | None = None
    categories: dict[str, tuple[str, ...]] = field(default_factory=dict)
    fill: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain lists, strings and floats: JSON as it is."""
        plain = asdict(self)
        return {k: _lists(v) for k, v in plain.items()}

    @classmethod
    def from_dict(cls, raw: Any, where: str) -> "Preprocessing":
        """Read back what `to_dict` wrote, checked. Raises ConfigError prefixed with `where`."""
        try:
            return _parse(raw)
        except (TypeError, ValueError, KeyError) as e:
            raise ConfigError([f"{where}: its preprocessing is unreadable: {e}"]) from None

    def encode(self, raw: Any) -> torch.Tensor:
        """Raw inputs → what the network takes: a table's columns picked, categories one-hot,
        missing values filled, then standardized. `raw`: a pandas DataFrame (columns by name),
        or numbers of shape (n, *shape) (a table's encoded columns, in order)."""
        if hasattr(raw, "columns") and self.features is not None:
            x = torch.as_tensor(self.table(raw))
            for note in self.unseen(raw):
                log.warning("preprocessing: %s", note)
        else:  # numbers: a table's encoded columns, or flattened samples (a file of pixels)
            x = finite(torch.as_tensor(np.asarray(raw, dtype=np.float32)))
            if x.ndim == 2 and len(self.shape) > 1 and x.shape[1] == math.prod(self.shape):
                x = x.reshape(len(x), *self.shape)
        if tuple(x.shape[1:]) != self.shape:
            shape = ", ".join(map(str, self.shape))
            raise ValueError(f"inputs of shape {list(x.shape)}; the model takes (n, {shape})")
        if self.mean is None or self.std is None:
            return x
        mean = torch.tensor(self.mean).reshape(self.shape)
        return (x - mean) / torch.tensor(self.std).reshape(self.shape)

    def unseen(self, frame: Any) -> list[str]:
        """A warning per categorical column of the DataFrame `frame` that holds values the
        training split never had: they encode as zeros (no category), which the model never
        saw in training. How many, and the first few."""
        by_name = {str(c): c for c in frame.columns}
        notes = []
        for name, codes in self.categories.items():
            if name not in by_name:
                continue  # table() refuses a missing column
            values = frame[by_name[name]].dropna().astype("string")
            new = values[~values.isin(codes)]
            if len(new):
                kinds = sorted(set(new.tolist()))
                shown = ", ".join(repr(v) for v in kinds[:SHOWN])
                known = ", ".join(codes[:12]) + (", …" if len(codes) > 12 else "")
                notes.append(
                    f"column {name!r}: {len(new)} value(s) never seen in training ("
                    f"{shown}{', …' if len(kinds) > SHOWN else ''}) encode as zeros, no category "
                    f"of the {len(codes)} it learned ({known})"
                )
        return notes

    def table(self, frame: Any, order: np.ndarray | None = None) -> np.ndarray:
        """A DataFrame's feature columns encoded: (n, encoded values), float32, unstandardized;
        with `order`, its rows in that order (gathered column by column, as they are written)."""
        assert self.features is not None, "a table's preprocessing names its features"
        by_name = {str(c): c for c in frame.columns}  # an array's columns are numbers
        absent = [c for c in self.features if c not in by_name]
        if absent:
            raise ValueError(
                f"no column {absent[0]!r} in the inputs{did_you_mean(absent[0], by_name)}"
            )
        return self.columns(frame, order).T

    def columns(self, frame: Any, order: np.ndarray | None = None) -> np.ndarray:
        """The encoded values column by column, (encoded values, n), float32: each column
        written once, contiguously (a row-major array written column by column touches every
        cache line once per column: slower than reading the CSV). Its transpose is the
        (n, encoded values) input, column-major; batches gather its rows as any array's."""
        assert self.features is not None
        by_name = {str(c): c for c in frame.columns}  # an array's columns are numbers
        widths = [len(self.categories.get(name, ())) or 1 for name in self.features]
        rows = len(frame) if order is None else len(order)
        out = np.empty((sum(widths), rows), np.float32)
        start = 0
        for name, width in zip(self.features, widths, strict=True):
            self._column(name, frame[by_name[name]], order, out[start : start + width])
            start += width
        return out

    def _column(self, name: str, column: Any, order: np.ndarray | None, out: np.ndarray) -> None:
        if name in self.categories:  # one-hot: a row per category
            values = column.astype("string").to_numpy(dtype=object, na_value=None)
            values = values if order is None else values[order]
            for row, code in zip(out, self.categories[name], strict=True):
                np.equal(values, code, out=row, casting="unsafe")
            return
        numbers = column.to_numpy(np.float32, na_value=np.nan)
        if order is None:
            out[0] = numbers
        else:
            np.take(numbers, order, out=out[0], mode="clip")  # `order` is in range
        missing = ~np.isfinite(out[0])  # NaN and ±inf: both filled, or both refused
        if not missing.any():
            return
        if name not in self.fill:
            row = int(np.flatnonzero(missing)[0])
            raise ValueError(
                f"column {name!r} has {int(missing.sum())} missing or infinite value(s), first "
                f"at row {row} (counting from 0); the model was trained with data.missing=error"
            )
        out[0][missing] = self.fill[name]

    def labels(self, outputs: torch.Tensor) -> list[Any]:
        """Outputs → predictions: class names (classification) or the values (regression)."""
        if self.classes is not None:
            return [self.classes[i] for i in outputs.argmax(-1).tolist()]
        flat = outputs.reshape(len(outputs), -1)
        return flat[:, 0].tolist() if flat.shape[1] == 1 else flat.tolist()


def _lists(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_lists(v) for v in value]
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    return value


def _parse(raw: Any) -> Preprocessing:
    if not isinstance(raw, dict):
        raise TypeError(f"expected a mapping; got {type(raw).__name__}")
    unknown = set(raw) - set(Preprocessing.__dataclass_fields__)
    if unknown:
        raise KeyError(f"unknown key {sorted(unknown)[0]!r}")
    shape = tuple(_ints(raw["shape"], "shape"))
    size = math.prod(shape)
    mean, std = (_floats(raw.get(k), k, size) for k in ("mean", "std"))
    categories = raw.get("categories") or {}
    if not isinstance(categories, dict):
        raise TypeError("categories: expected a mapping")
    fill = raw.get("fill") or {}
    if not isinstance(fill, dict):
        raise TypeError("fill: expected a mapping")
    return Preprocessing(
        shape=shape,
        mean=mean,
        std=std,
        classes=_strings(raw.get("classes"), "classes"),
        features=_strings(raw.get("features"), "features"),
        categories={str(k): _strings(v, f"categories.{k}") or () for k, v in categories.items()},
        fill={str(k): float(_floats([v], f"fill.{k}", 1)[0]) for k, v in fill.items()},  # type: ignore[index]
    )


def _ints(value: Any, key: str) -> list[int]:
    if not (isinstance(value, list) and all(type(v) is int and v > 0 for v in value)):
        raise ValueError(f"{key}: expected a list of positive integers")
    return value


def _floats(value: Any, key: str, size: int) -> tuple[float, ...] | None:
    if value is None:
        return None
    ok = isinstance(value, list) and all(type(v) in (int, float) for v in value)
    if not ok or len(value) != size:
        raise ValueError(f"{key}: expected {size} numbers")
    return tuple(float(v) for v in value)


def _strings(value: Any, key: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise ValueError(f"{key}: expected a list of strings")
    return tuple(value)


def finite(x: torch.Tensor) -> torch.Tensor:
    """`x` (n, ...), when every value is finite. Raises ValueError naming the first samples
    with a NaN or an infinity (the network would answer NaN for them, silently)."""
    if x.ndim == 0 or bool(torch.isfinite(x).all()):
        return x
    bad = (~torch.isfinite(x)).reshape(len(x), -1).any(1).nonzero().flatten().tolist()
    shown = ", ".join(map(str, bad[:SHOWN])) + (", …" if len(bad) > SHOWN else "")
    raise ValueError(f"{len(bad)} input row(s) hold NaN or infinity (rows {shown}, from 0)")


def standardizer(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-value mean and std of a training split (n, *shape), flattened; a value constant in
    every training sample gets std 1 (digits' blank pixels), so it stays finite."""
    flat = x.reshape(len(x), -1).numpy()
    # NumPy, accumulating in float64: one thread, exact enough, no thread pool to wake.
    mean = flat.mean(0, dtype=np.float64)
    std = flat.std(0, ddof=1, dtype=np.float64) if len(flat) > 1 else np.ones(flat.shape[1])
    std = np.where(std > 0, std, 1.0)
    # Rounded to float32 as stored and applied: the same numbers in training and prediction.
    return tuple(mean.astype(np.float32).tolist()), tuple(std.astype(np.float32).tolist())


def class_names(values: Sequence[Any]) -> tuple[str, ...]:
    return tuple(str(v) for v in values)
