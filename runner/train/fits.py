"""The data and the model checked against each other, before fit and before eval: one sample's
shape, and the model's outputs against the targets (task=eval checks the kind of task first).
A regression target of another shape would broadcast against the output into a loss that means
nothing; a class label past the outputs fails inside the loss."""

import logging
from collections.abc import Sequence
from typing import Any

import torch

from runner.errors import ConfigError
from runner.train.module import output_shape  # the one probe of a net's output shape

log = logging.getLogger("runner")


def check_fits(
    data: Any,
    net: torch.nn.Module,
    input_shape: Sequence[int],
    origin: str,
    model: str = "model.input_shape",
) -> None:
    """Raise ConfigError unless `data` (`origin` names it: `the data (Digits)`; an InMemoryData
    or a UserData) has samples of
    `input_shape` (`model` names where that shape comes from) and targets that `net`'s outputs
    match (as many classes, or the regression target's shape). Sets the data up (its splits
    are made once and kept)."""
    if hasattr(data, "example"):  # a user's LightningDataModule: one training batch tells
        X, y = data.example()
        labels = y
    else:
        data.setup("fit")
        X, y = data.splits["train"]  # never empty (the validator checks the fractions)
        labels = torch.cat([t for _, t in data.splits.values()])  # a class may be in one only
    splits = {"first training batch": (X, y)} if hasattr(data, "example") else data.splits
    problem = _non_finite(splits, origin)
    if problem:
        raise ConfigError([problem])
    sample, expected = list(X.shape[1:]), list(input_shape)
    if sample != expected:
        raise ConfigError(
            [
                f"data: {origin} has samples of shape {sample}, but {model} is {expected}; "
                f"allowed: data whose samples are {expected}, or a model for {sample}"
            ]
        )
    out = list(output_shape(net, expected))[1:]
    problem = _targets_problem(
        out, labels if data.task == "classification" else y, data.task, origin
    )
    if problem:
        raise ConfigError([problem])
    if data.task == "classification" and not hasattr(data, "example"):  # every label seen
        _warn_unused_outputs(out[0], int(labels.max()) + 1, origin)


def _warn_unused_outputs(outputs: int, classes: int, origin: str) -> None:
    """More outputs than classes trains, but the extra ones are never a target: their logits
    only learn to stay low, and the accuracy counts them as possible answers."""
    if outputs > classes:
        log.warning(
            "model: %d outputs per sample, but %s has labels 0 to %d: outputs %d to %d are "
            "never a target (model.num_outputs=%d fits it)",
            outputs,
            origin,
            classes - 1,
            classes,
            outputs - 1,
            classes,
        )


def _non_finite(splits: dict[str, Any], origin: str) -> str | None:
    """NaN or ±inf in the inputs or the targets (a float's) would train into non-finite
    gradients: where the first is. data=table names its column and rows itself, earlier."""
    for split, tensors in splits.items():
        for what, t in zip(("inputs", "targets"), tensors, strict=True):
            if not t.is_floating_point() or bool(torch.isfinite(t).all()):
                continue
            bad = (~torch.isfinite(t)).reshape(len(t), -1).any(1).nonzero().flatten().tolist()
            where = f"its {split}" + ("" if split == "first training batch" else " split")
            shown = ", ".join(map(str, bad[:5])) + (", …" if len(bad) > 5 else "")
            return (
                f"data: {origin} has NaN or infinite {what} in {where}: {len(bad)} sample(s) "
                f"(at {shown} in it, counting from 0); allowed: finite inputs and targets"
            )
    return None


def _targets_problem(out: list[int], y: torch.Tensor, kind: str, origin: str) -> str | None:
    if kind == "classification":
        classes = int(y.max()) + 1 if len(y) else 0
        if len(out) == 1 and out[0] >= classes:
            return None
        return (
            f"model: outputs {out} per sample, but {origin} has labels 0 to {classes - 1}; "
            f"allowed: one output per class, [{classes}] (model.num_outputs={classes})"
        )
    target = list(y.shape[1:])
    if out == target:
        return None
    hint = f" (model.num_outputs={target[0]})" if len(target) == 1 else ""
    return (
        f"model: outputs {out} per sample, but {origin} has targets of shape {target}, "
        f"which the loss would broadcast against them; allowed: outputs of shape {target}{hint}"
    )
