"""task=export: a checkpoint's weights as `.safetensors`, for software that isn't the runner.

Each shared or tied tensor is stored once; the metadata holds the resolved config and the
groups of names that share a tensor. The plain `safetensors.torch.load_model` loads the file
into a hand-written PyTorch network with the same sharing; `runner.load` rebuilds the model
from the metadata and re-ties it. (Transposed ties are outside this guarantee.)
"""

import json
import logging
import os
from pathlib import Path
from typing import Any

from runner.checkpoint.files import atomic_write
from runner.checkpoint.restore import restore_checkpoint_of, sharing
from runner.config.spec import RunSpec

log = logging.getLogger("runner")


def export(spec: RunSpec, run_dir: Path) -> dict[str, Any]:
    """task=export: `ckpt_path`'s network as `<run_dir>/<name>.safetensors`, named after the
    checkpoint and the run that wrote it (`18-35-03-170864-last`), or `<name>-<n>.safetensors`
    when an earlier export (or anything else) has that name: an export never overwrites a
    file."""
    from safetensors.torch import save_model

    source = Path(str(spec.ckpt_path))
    restored = restore_checkpoint_of(spec)
    metadata = {
        "format": "runner",
        "config": json.dumps(restored.config),
        "task": restored.task,
        "shared": json.dumps(sharing(restored.net)),
    }
    if restored.preprocessing is not None:  # for raw inputs: see the README's two lines
        metadata["preprocessing"] = json.dumps(restored.preprocessing.to_dict())
    stem = _stem(source)
    target = _free_name(run_dir, stem)
    if target.name != f"{stem}.safetensors":
        log.info("export: %s.safetensors is an earlier export (kept)", run_dir / stem)

    def write(tmp: Path) -> None:
        save_model(restored.net, str(tmp), metadata=metadata)

    atomic_write(target, write, replace=False)
    log.info("export: %s → %s (%d shared group(s))", source, target, len(sharing(restored.net)))
    return {
        "task": "export",
        "source": str(source),
        "file": str(target),
        "shared": sharing(restored.net),
    }


def _stem(source: Path) -> str:
    """The export's name: the checkpoint's, after its run's directory where it has one
    (`<run>/checkpoints/last.ckpt` → `<run>-last`), so that exports of several runs side by
    side say which is which."""
    if source.parent.name == "checkpoints" and source.parent.parent.name:
        return f"{source.resolve().parent.parent.name}-{source.stem}"
    return source.stem


def _free_name(run_dir: Path, stem: str) -> Path:
    """`<stem>.safetensors`, or `<stem>-<n>.safetensors` with the first n that nothing holds."""
    target, n = run_dir / f"{stem}.safetensors", 1
    while os.path.lexists(target):
        n += 1
        target = run_dir / f"{stem}-{n}.safetensors"
    return target
