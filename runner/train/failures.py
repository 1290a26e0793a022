"""Failures of a started training run that end it with one line for the user, told apart by
their type where they are raised: NaN/Inf in training (the guard) and torch.compile's errors.

A DDP worker's exception reaches the main process only as traceback text. So a worker that
raises one of these first hands it over in a file of the run directory, and the main process
raises it again as it was (`handed_over`), never reading the traceback.
"""

import json
import os
from pathlib import Path

from runner.errors import RunFailed

HANDOVER = ".worker-failure.json"


class NonFiniteTraining(RunFailed):
    """Training produced NaN/Inf gradients; the message names where and what was saved."""


class CompileFailed(RunFailed):
    """torch.compile could not compile the training steps' forward."""


_KINDS = {cls.__name__: cls for cls in (NonFiniteTraining, CompileFailed)}


def hand_over(run_dir: Path, failure: RunFailed, world_size: int) -> RunFailed:
    """In a DDP worker (`world_size` > 1), leave `failure` for the main process; the first
    rank's stays. Returns `failure`, to be raised."""
    if world_size > 1:
        record = {"kind": type(failure).__name__, "message": str(failure)}
        try:
            with (run_dir / HANDOVER).open("x") as f:
                json.dump(record, f)
        except FileExistsError:
            pass  # another rank stopped first: one message is enough
    return failure


def forget_handover(run_dir: Path) -> None:
    """Before a fit: no earlier fit's failure may be taken for this one's."""
    (run_dir / HANDOVER).unlink(missing_ok=True)


def handed_over(run_dir: Path) -> RunFailed | None:
    """The failure a DDP worker handed over, as the type it raised; None when none did."""
    path = run_dir / HANDOVER
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    os.unlink(path)
    kind = _KINDS.get(str(record.get("kind")), RunFailed)
    return kind(str(record.get("message")))
