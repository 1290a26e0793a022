"""task=predict: a checkpoint's (or export's) predictions for a file of raw inputs, written to
`predictions.csv`. The inputs get the preprocessing the model was trained with (saved in its
file: runner.checkpoint.preprocessing), so the file holds raw values, as the training file did."""

import logging
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from runner.checkpoint.files import atomic_write
from runner.checkpoint.preprocessing import finite
from runner.config.spec import RunSpec
from runner.errors import ConfigError
from runner.train.data_files import read_table
from runner.train.reload import load_checkpoint_of

log = logging.getLogger("runner")


def predict_task(spec: RunSpec, run_dir: Path) -> dict[str, Any]:
    """Predict for every row of `data.path`; with `data.target` naming a column of it, also
    score the predictions against it (accuracy, or mean squared error)."""
    module = load_checkpoint_of(spec)
    section = spec.config["data"]
    frame = read_table(section["path"], "data.path")
    target = _target_column(frame, section.get("target"))
    inputs = frame.drop(columns=[target]) if target is not None else frame
    outputs = _outputs(module, inputs, str(section["path"]))
    prep = module.preprocessing
    table = pd.DataFrame({"row": range(len(frame))})
    if prep is not None:
        table["prediction"] = prep.labels(outputs)
    else:
        table["prediction"] = (
            outputs.argmax(-1).tolist() if module.classification else outputs[:, 0].tolist()
        )
    if module.classification:
        names = prep.classes if prep is not None and prep.classes else range(outputs.shape[1])
        for name, p in zip(names, outputs.softmax(-1).T.tolist(), strict=True):
            table[f"p({name})"] = p
    file = run_dir / "predictions.csv"
    atomic_write(file, lambda tmp: table.to_csv(tmp, index=False))
    log.info("predict: %d rows of %s → %s", len(frame), section["path"], file)
    result: dict[str, Any] = {
        "task": "predict",
        "source": str(spec.ckpt_path),
        "input": str(section["path"]),
        "file": str(file),
        "rows": len(frame),
    }
    notes = prep.unseen(inputs) if prep is not None else []
    if notes:  # logged by prep.encode as well
        result["warnings"] = notes
    if target is not None:
        result["metrics"] = _score(table["prediction"], frame[target], module.classification)
        log.info("predict: against %r: %s", target, result["metrics"])
    return result


def _outputs(module: Any, frame: pd.DataFrame, path: str) -> torch.Tensor:
    """The network's outputs for the file's rows (the training columns, by name, for a table
    model; every column but the target, as numbers, otherwise)."""
    prep = module.preprocessing
    try:
        if prep is not None:
            x = prep.encode(frame)
        else:
            shape = module.hparams["config"]["model"]["input_shape"]
            x = finite(torch.as_tensor(frame.to_numpy(dtype="float32")).reshape(len(frame), *shape))
    except (ValueError, RuntimeError, TypeError) as e:
        raise ConfigError([f"data.path: {path!r} does not fit the model's inputs: {e}"]) from e
    module.net.eval()
    with torch.no_grad():
        return module.net(x).cpu()


def _target_column(frame: pd.DataFrame, target: Any) -> Any:
    if target is None:
        return None
    if target in frame.columns:
        return target
    by_name = {str(c): c for c in frame.columns}
    return by_name.get(str(target))


def _score(predicted: pd.Series, truth: pd.Series, classification: bool) -> dict[str, float]:
    if classification:
        return {"acc": float((predicted.astype(str) == truth.astype(str)).mean())}
    error = predicted.to_numpy(dtype=float) - truth.to_numpy(dtype=float)
    return {"mse": float((error**2).mean())}
