"""The data section → problems found before anything runs: a runner data module, its
arguments, and splits that each get samples; the model's sizes from data that describes
itself (data=table)."""

import math
import os
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, open_dict

from runner.config.arguments import check_arguments, signature_defaults
from runner.config.classes import class_at
from runner.config.data_modules import is_data_module, not_a_data_module
from runner.config.values import UNRESOLVED, Check, Choice, Number, Numbers, resolve
from runner.errors import ConfigError, Problems, did_you_mean

# Data modules with a fixed number of samples (scikit-learn's digits); the others take
# `num_samples`. A test keeps the size true.
FIXED_SIZES = {
    "runner.train.data.Digits": 1797,
    "runner.train.data_digit_images.DigitImages": 1797,
}
DATA_VALUES: dict[str, Check] = {
    "batch_size": Number(lo=1, integer=True),
    "seed": Number(lo=0, hi=2**32 - 1, integer=True),  # as the run's seed
    "num_samples": Number(lo=1, integer=True),
    "val_fraction": Number(lo=0, hi=1, hi_open=True, note="0: no validation"),
    # The runner tests on this split and checks the reloaded checkpoint on its first samples.
    "test_fraction": Number(lo=0, hi=1, lo_open=True, hi_open=True, note="the runner tests on it"),
    # data=table: what the target is (auto: read from it) and what a missing value does.
    "task": Choice(
        (
            ("auto", "classes for text, booleans or few integers; else regression"),
            ("classification", "cross-entropy over the target's classes"),
            ("regression", "mean squared error on the target's values"),
        )
    ),
    "missing": Choice(
        (
            ("error", "a missing or infinite feature value is refused"),
            ("impute", "the training mean of the finite values; a missing category: zeros"),
        )
    ),
}
# The runner's data modules' own numbers, by class (a test keeps the names true).
CLASS_VALUES: dict[str, dict[str, Check]] = {
    "runner.train.data.RandomData": {
        "input_shape": Numbers(Number(lo=1, integer=True)),
        "hidden": Number(lo=1, integer=True, note="the teacher network's width"),
    },
    "runner.train.data.SyntheticRegression": {
        "w": Numbers(Number()),
        "b": Number(),
        "noise": Number(lo=0, note="the standard deviation of the noise added to y"),
    },
}
# What a data module's `task` may be: it picks the loss (runner.train.module).
LEARNING_TASKS = ("regression", "classification")


def check_data(data: dict[str, Any], problems: Problems) -> None:
    """The data section: a runner data module, its arguments, and splits that all get samples."""
    data = dict(data)
    target = data.pop("_target_", None)
    try:
        data_cls = class_at(target)
    except Exception:
        data_cls = type(None)
    if not is_data_module(data_cls):
        problems.add("data._target_", not_a_data_module(target, data_cls))
        return
    name = data_cls.__name__
    task = getattr(data_cls, "task", "regression")
    if isinstance(task, str) and task not in LEARNING_TASKS:  # it picks the loss
        problems.add(
            "data._target_",
            f"{name}.task is {task!r}; allowed: {', '.join(LEARNING_TASKS)}"
            + did_you_mean(task, LEARNING_TASKS),
        )
    before = len(problems.items)
    checked = check_arguments(data_cls, data, "data", name, problems, values=values_of(data_cls))
    for key in checked[1] if checked else []:
        problems.add(f"data.{key}", f"{name} needs {key!r}; it is missing")
    sized = ("num_samples", "val_fraction", "test_fraction")
    if checked and all(DATA_VALUES[k].problem(data[k]) is None for k in sized if k in data):
        _check_splits(f"{data_cls.__module__}.{data_cls.__qualname__}", data, data_cls, problems)
    if checked and not checked[1] and len(problems.items) == before:
        _check_memory({**signature_defaults(data_cls), **data}, data_cls, problems)


def values_of(data_cls: type) -> dict[str, Check]:
    """The value checks of a data module's arguments: the ones every data module shares, and
    the runner's own modules' own."""
    return {**DATA_VALUES, **CLASS_VALUES.get(f"{data_cls.__module__}.{data_cls.__qualname__}", {})}


def data_task(section: Mapping[str, Any]) -> str:
    """The learning task of a data section (declared_task); regression when undeclared."""
    return declared_task(section) or "regression"


def declared_task(section: Mapping[str, Any]) -> str | None:
    """The learning task a data section declares: its `task` (data=table, once the runner has
    read the target), else its class's `task` attribute; None when neither says (a user's
    LightningDataModule whose batches tell)."""
    task = section.get("task")
    if task in LEARNING_TASKS:
        return str(task)
    kind = getattr(class_at(section["_target_"]), "task", None)
    return kind if kind in LEARNING_TASKS else None


def fill_from_data(cfg: DictConfig, problems: Problems) -> bool:
    """Data that describes itself (data=table reads its file: a `describe(args)` class method)
    sets what the model must fit where the config leaves it open: model.input_shape and
    model.num_outputs when null, data.task when auto. Its problems (a missing file, no such
    column) are added, each at its data key. Returns False when the data was to say but could
    not (the model's sizes are then missing for a reason already reported)."""
    section = resolve(cfg, "data", problems)
    if section is UNRESOLVED or not isinstance(section, dict):
        return section is not UNRESOLVED
    args = dict(section)
    try:
        data_cls = class_at(args.pop("_target_", None))
    except Exception:
        return False  # check_data reports it
    describe = getattr(data_cls, "describe", None)
    if describe is None:
        return True
    found = Problems()
    values = values_of(data_cls)
    checked = check_arguments(data_cls, args, "data", data_cls.__name__, found, values=values)
    if checked is None or checked[1] or found.items:
        return False  # check_data reports the arguments' problems
    try:
        facts = describe(args)
    except ConfigError as e:
        problems.items.extend(e.problems)
        return False
    with open_dict(cfg):
        for key in ("input_shape", "num_outputs"):
            if cfg.model.get(key) is None:
                cfg.model[key] = facts[key]
        if cfg.data.get("task") == "auto":
            cfg.data.task = facts["task"]
        for key, value in facts.get("data", {}).items():
            cfg.data[key] = value
    return True


# What task=predict reads its raw inputs with: a table file.
TABLE = "runner.train.data_table.TableData"


# The data section's keys that only split or batch a data set: the same source with others
# reshuffles the same rows (data sets with a fixed source: `fixed_source` on their class).
SPLIT_KEYS = ("seed", "val_fraction", "test_fraction", "batch_size")


def overlap_warning(trained: Mapping[str, Any], given: Mapping[str, Any], split: str) -> str | None:
    """Why `split` of the data given to task=eval overlaps the rows the checkpoint trained on:
    the same fixed data set (digits, a table file), split another way. None when it cannot."""
    if given.get("_target_") != trained.get("_target_"):
        return None
    try:
        fixed = getattr(class_at(given["_target_"]), "fixed_source", False)
    except Exception:
        return None
    same = {k: v for k, v in given.items() if k not in SPLIT_KEYS}
    if not fixed or same != {k: v for k, v in trained.items() if k not in SPLIT_KEYS}:
        return None
    changed = [
        f"data.{k}={given.get(k)!r} (trained with {trained.get(k)!r})"
        for k in ("seed", "val_fraction", "test_fraction")
        if given.get(k) != trained.get(k)
    ]
    if not changed or (split == "test" and given.get("test_path")):
        return None
    return (
        "the data given is the checkpoint's own data set split another way "
        f"({', '.join(changed)}): its {split} split holds rows the model trained on, so its "
        "metrics overstate; evaluate on the checkpoint's own split (leave data as trained) "
        "or on other data"
    )


def check_predict_data(cfg: DictConfig, problems: Problems) -> None:
    """task=predict reads a file of raw inputs (data=table data.path=FILE) and predicts with
    the checkpoint's model: the command's own model section is not built, so sizes it leaves
    to the data (null with data=table) are set to 1 for it to parse."""
    section = resolve(cfg, "data", problems)
    if section is UNRESOLVED:
        return
    if not isinstance(section, dict) or section.get("_target_") != TABLE:
        problems.add(
            "data",
            "task=predict reads raw inputs from a file; allowed: data=table data.path=FILE "
            "(.csv, .tsv, .parquet, .npy, .npz)",
        )
        return
    with open_dict(cfg):
        for key, placeholder in (("input_shape", [1]), ("num_outputs", 1)):
            if cfg.model.get(key) is None:
                cfg.model[key] = placeholder


def _check_memory(args: dict[str, Any], data_cls: Any, problems: Problems) -> None:
    """The samples fit in memory: the data module's values per sample × num_samples float32s,
    twice (the made tensors and their split copies), against what the host has available."""
    sizer = getattr(data_cls, "values_per_sample", None)  # the runner's data modules only
    n, per = args.get("num_samples"), sizer(args) if sizer else None
    free = host_memory_available()
    if not (isinstance(n, int) and per and free):
        return
    need = 2 * 4 * n * per
    if need > free:
        problems.add(
            "data.num_samples",
            f"{n:,} samples of {per:,} values need about {need / 2**30:.1f} GiB in memory (made "
            f"and split), but {free / 2**30:.1f} GiB are available; allowed: at most "
            f"{free // (8 * per):,} samples here",
        )


def host_memory_available() -> int | None:
    """Bytes of host memory available now (Linux's MemAvailable), or None when unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _check_splits(dotted: str, data: dict[str, Any], data_cls: type, problems: Problems) -> None:
    """Every split the run uses gets samples: computed as runner.train.data splits them (the
    first floor(val_fraction·n) samples of a permutation validate, the next floor(test_fraction·n)
    test, the rest train)."""
    args = {**signature_defaults(data_cls), **data}
    n = FIXED_SIZES.get(dotted, args.get("num_samples"))
    val, test = args.get("val_fraction"), args.get("test_fraction")
    if not (isinstance(n, int) and isinstance(val, int | float) and isinstance(test, int | float)):
        return  # a data module of another kind: its own code decides
    n_val, n_test = math.floor(val * n), math.floor(test * n)
    n_train = max(0, n - n_val - n_test)
    if n_train == 0:
        problems.add(
            "data.val_fraction" if val >= test else "data.test_fraction",
            f"leaves 0 training samples of {n}; got val_fraction={val:g}, test_fraction={test:g}; "
            "allowed: fractions that together leave at least one training sample",
        )
    for key, split, count, fraction in (
        ("val_fraction", "validation", n_val, val),
        ("test_fraction", "test", n_test, test),
    ):
        if fraction > 0 and count == 0:
            zero = ", or 0 (no validation)" if key == "val_fraction" else ""
            problems.add(
                f"data.{key}",
                f"gives 0 {split} samples of {n}; got {fraction:g}; allowed: at least "
                f"{_at_least(1 / n):g} for {n} samples{zero}",
            )


def _at_least(x: float) -> float:
    """`x` rounded up to 3 significant digits: a fraction that still gives one sample."""
    scale = 10 ** (2 - math.floor(math.log10(x)))
    return math.ceil(round(x * scale, 6)) / scale
