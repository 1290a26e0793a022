"""Lightning's checkpoint dict, read in one place: where the model's weights, the embedded
config and the training progress sit. Lightning writes it (runner.train); everything that reads
a checkpoint goes through these accessors, so a change of Lightning's layout is one edit."""

from typing import Any

import torch

# RunnerModule keeps the compiled network as `.net`: its state_dict keys carry this prefix.
NET_PREFIX = "net."


def hyperparameters(checkpoint: dict[str, Any]) -> dict[str, Any] | None:
    """The runner's hyperparameters (`config`, `task`), or None when it is no runner file."""
    hparams = checkpoint.get("hyper_parameters")
    if not isinstance(hparams, dict) or "config" not in hparams or "state_dict" not in checkpoint:
        return None
    return hparams


def embedded_config(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The composed config the checkpoint was trained with; {} when it holds none."""
    hparams = checkpoint.get("hyper_parameters") or {}
    config = hparams.get("config") if isinstance(hparams, dict) else None
    return config if isinstance(config, dict) else {}


def module_state(checkpoint: dict[str, Any]) -> Any:
    """The LightningModule's state_dict: the net's tensors under NET_PREFIX."""
    return checkpoint.get("state_dict")


def net_state(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    """`net`'s state_dict as the module's (keys with NET_PREFIX), to compare with a checkpoint."""
    return {NET_PREFIX + k: v for k, v in net.state_dict().items()}


def strip_net_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k.removeprefix(NET_PREFIX): v for k, v in state.items()}


def global_step(checkpoint: dict[str, Any]) -> Any:
    return checkpoint.get("global_step")


def fit_loop(checkpoint: dict[str, Any]) -> dict[str, Any]:
    loops = checkpoint.get("loops")
    loop = loops.get("fit_loop") if isinstance(loops, dict) else None
    return loop if isinstance(loop, dict) else {}


def epoch_progress(checkpoint: dict[str, Any]) -> dict[str, Any]:
    progress = fit_loop(checkpoint).get("epoch_progress")
    return progress if isinstance(progress, dict) else {}


def epochs_done(checkpoint: dict[str, Any]) -> int:
    """Epochs processed. last.ckpt is saved as an epoch ends, before Lightning counts it
    completed: `processed` is the count that includes it."""
    total = epoch_progress(checkpoint).get("total") or {}
    return int(total.get("processed", checkpoint.get("epoch", 0)))


def at_epoch_end(checkpoint: dict[str, Any]) -> bool:
    """Whether the checkpoint was taken at an epoch's end (not part-way through one)."""
    batches = fit_loop(checkpoint).get("epoch_loop.batch_progress") or {}
    return bool(batches.get("is_last_batch", True))


def optimizer_states(checkpoint: dict[str, Any]) -> list[Any]:
    return list(checkpoint.get("optimizer_states") or [])


def callback_states(checkpoint: dict[str, Any]) -> dict[str, Any]:
    states = checkpoint.get("callbacks")
    return states if isinstance(states, dict) else {}
