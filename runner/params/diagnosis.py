"""What the statistics say is wrong: blocks that stopped learning, ReLU layers whose units died.

The chapter's reason to look at parameters is diagnosis. Two symptoms are certain, not
heuristic, and both end learning for good:

- a block whose gradient norm is exactly 0.0 in two consecutive records: nothing flows back
  into it (a ReLU before or inside it outputs 0 for every sample, or it is cut off);
- a ReLU layer most of whose units output 0 for a whole batch ("dead units"): a unit that is
  off for every input gets no gradient and stays off.

`ReluWatch` measures the second on the batches a record follows (forward hooks that do nothing
on other steps); `Diagnosis` turns records into findings, each made once, naming the block or
layer. It reads the same rows `param_stats.csv` holds, so a finished run's file can be replayed
(DDP workers record; the launching process reads). No Lightning here.
"""

import csv
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from runner.params.stats import block_of

Row = tuple[int, str, str, str, str, float]  # step, kind, name, block, stat, value
DEAD_SHARE = 0.5  # "most units": more than this share of a ReLU layer is off for the batch
ACTIVATIONS = (nn.ReLU, nn.ReLU6)  # layers whose "off" is an exact 0 with no gradient


class ReluWatch:
    """Forward hooks on every ReLU module of `net` that, when armed, measure the share of units
    (features; every dimension but the batch) that output 0 for all samples of the batch."""

    def __init__(self, net: nn.Module):
        self.armed = False
        self.dead: dict[str, torch.Tensor] = {}  # layer name → share of dead units (on device)
        self.layers = [(n, m) for n, m in net.named_modules() if isinstance(m, ACTIVATIONS)]
        self.handles = [m.register_forward_hook(self._hook(n)) for n, m in self.layers]

    def _hook(self, name: str):
        def measure(module: nn.Module, inputs: object, out: torch.Tensor) -> None:
            if self.armed and out.dim() >= 2 and out.shape[0] > 0:
                alive = (out.detach() > 0).flatten(1).any(0)  # (units,)
                self.dead[name] = 1.0 - alive.float().mean()

        return measure

    def take(self) -> dict[str, torch.Tensor]:
        """The shares measured since the last take, and disarm."""
        dead, self.dead, self.armed = self.dead, {}, False
        return dead

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def activation_rows(step: int, dead: dict[str, torch.Tensor]) -> list[Row]:
    """CSV rows for the measured shares (one host read for all layers)."""
    if not dead:
        return []
    values = torch.stack(list(dead.values())).cpu().tolist()
    return [
        (step, "activation", name, block_of(name + ".x"), "dead_units", value)
        for name, value in zip(dead, values, strict=True)
    ]


@dataclass(frozen=True)
class Finding:
    kind: str  # "no_gradient" (a block) or "dead_units" (a ReLU layer)
    where: str  # the block's or the layer's name
    step: int  # the record that made it certain
    text: str  # the warning, whole


def summarize(findings: list[Finding]) -> dict[str, list[str]]:
    """{kind: [where, …]}: what result.json and a sweep's summary show."""
    out: dict[str, list[str]] = {}
    for f in findings:
        out.setdefault(f.kind, []).append(f.where)
    return out


class Diagnosis:
    """Turns statistics records into findings, each made once per block or layer."""

    def __init__(self) -> None:
        self.zero_since: dict[str, int] = {}  # block → step of the record where its gradient hit 0
        self.said: set[tuple[str, str]] = set()

    def update(self, rows: Iterable[Row]) -> list[Finding]:
        """The new findings in one record's rows (or in any rows, in step order)."""
        found = []
        for step, kind, name, block, stat, value in rows:
            if kind == "block" and stat == "grad_norm" and math.isfinite(value):
                found += self._gradient(step, name, value)
            elif kind == "activation" and stat == "dead_units" and value > DEAD_SHARE:
                found += self._dead(step, name, block, value)
        return found

    def _dead(self, step: int, layer: str, block: str, share: float) -> list[Finding]:
        if ("dead_units", layer) in self.said:
            return []
        self.said.add(("dead_units", layer))
        text = (
            f"ReLU layer {layer!r} (block {block!r}): {share:.0%} of its units output 0 for "
            f"every sample of the batch at step {step}: dead units get no gradient and stay off"
        )
        return [Finding("dead_units", layer, step, text)]

    def _gradient(self, step: int, block: str, value: float) -> list[Finding]:
        if value != 0.0:
            self.zero_since.pop(block, None)
            return []
        since = self.zero_since.setdefault(block, step)
        if since == step or ("no_gradient", block) in self.said:
            return []
        self.said.add(("no_gradient", block))
        text = (
            f"block {block!r}: gradient norm exactly 0 at every record from step {since} to "
            f"{step}: it stopped learning (is a ReLU at or before it dead? try another init= or "
            "a lower learning rate)"
        )
        return [Finding("no_gradient", block, step, text)]

    @classmethod
    def replay(cls, csv_path: Path) -> list[Finding]:
        """Every finding a finished run's `param_stats.csv` holds, in order."""
        if not csv_path.is_file():
            return []
        with csv_path.open(newline="") as f:
            rows = [
                (int(r["step"]), r["kind"], r["name"], r["block"], r["stat"], float(r["value"]))
                for r in csv.DictReader(f)
            ]
        return cls().update(rows)
