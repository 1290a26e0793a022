"""A run's own checkpoint checked against the model it trained: rebuilt from the file alone,
the same probe batch through both, and every tie still one tensor (the chapter's
`Y_clone == Y`)."""

from pathlib import Path
from typing import Any

import torch
from torch import nn

from runner.checkpoint.restore import from_checkpoint, sharing


def verify(
    trained: nn.Module,
    checkpoint: dict[str, Any],
    path: Path,
    probe: torch.Tensor,
    device: torch.device,
    precision: str,
) -> dict[str, Any]:
    """Rebuild the network from `checkpoint` (read from `path`) and compare it with `trained`.

    Both run the same probe batch on the training device and precision. On the CPU in fp32 the
    outputs must be bitwise equal; elsewhere they must agree within the tolerance recorded in
    the result. Shared and tied tensors must still be shared after the reload.
    """
    fresh = from_checkpoint(checkpoint, path, device, trusted=True).net  # this run wrote it
    outputs = []
    for model in (trained.to(device), fresh):
        model.eval()
        with torch.no_grad(), _autocast(device, precision):
            # each its own copy: a first layer in place (ReLU(inplace=True)) writes into it
            outputs.append(model(probe.to(device, copy=True)).float())
    bitwise = device.type == "cpu" and precision == "32"
    atol, rtol = (0.0, 0.0) if bitwise else ((1e-5, 1e-4) if precision == "32" else (1e-2, 1e-2))
    a, b = outputs
    # NaN where the trained model has NaN (a run the guard let go on) is a faithful reload.
    same = (
        torch.equal(a.view(torch.int32), b.view(torch.int32))
        if bitwise
        else torch.allclose(a, b, atol=atol, rtol=rtol, equal_nan=True)
    )
    both = torch.isfinite(a) & torch.isfinite(b)
    ties_ok = sharing(trained) == sharing(fresh)
    return {
        "ok": bool(same and ties_ok),
        "checkpoint": str(path),
        "device": str(device),
        "precision": precision,
        "comparison": "bitwise" if bitwise else f"allclose(atol={atol}, rtol={rtol})",
        "max_abs_diff": float((a - b)[both].abs().max()) if both.any() else 0.0,
        "shared_tensors_intact": ties_ok,
        "probe_shape": list(probe.shape),
    }


def _autocast(device: torch.device, precision: str) -> Any:
    if precision == "32":
        return torch.autocast(device.type, enabled=False)
    dtype = torch.bfloat16 if precision.startswith("bf16") else torch.float16
    return torch.autocast(device.type, dtype=dtype)
