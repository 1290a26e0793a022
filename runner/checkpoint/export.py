"""task=export: a checkpoint's weights as `.safetensors`, for software that isn't the runner.

Each shared or tied tensor is stored once; the metadata holds the resolved config and the
groups of names that share a tensor. The plain `safetensors.torch.load_model` loads the file
into a hand-written PyTorch network with the same sharing; `runner.load` rebuilds the model
from the metadata and re-ties it. (Transposed ties are outside this guarantee.)
"""

import json
import logging
from pathlib import Path
from typing import Any

from runner.checkpoint.restore import restore_checkpoint_of, sharing
from runner.config.spec import RunSpec

log = logging.getLogger("runner")


def export(spec: RunSpec, run_dir: Path) -> dict[str, Any]:
    """task=export: `ckpt_path`'s network as `<run_dir>/<name>.safetensors`."""
    from safetensors.torch import save_model

    source = Path(str(spec.ckpt_path))
    restored = restore_checkpoint_of(spec)
    target = run_dir / f"{source.stem}.safetensors"
    metadata = {
        "format": "runner",
        "config": json.dumps(restored.config),
        "task": restored.task,
        "shared": json.dumps(sharing(restored.net)),
    }
    save_model(restored.net, str(target), metadata=metadata)
    log.info("export: %s → %s (%d shared group(s))", source, target, len(sharing(restored.net)))
    return {
        "task": "export",
        "source": str(source),
        "file": str(target),
        "shared": sharing(restored.net),
    }
