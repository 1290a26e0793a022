"""A run's parameter-statistics record: rows for param_stats.csv at the steps the statistics
are due, the block metrics for the loggers, the diagnosis, and the samples for the init-vs-end
histograms. No Lightning: the statistics callback drives it for a single run, and the
vectorized launcher drives one per member of a group."""

import csv
import math
from pathlib import Path

import torch
from torch import nn

from runner.params import stats
from runner.params.diagnosis import Diagnosis, ReluWatch, activation_rows

CSV_COLUMNS = ("step", "kind", "name", "block", "stat", "value")
LOGGED = ("norm", "grad_norm", "update_ratio")  # per block, to the loggers
_SAMPLE = 20_000  # values per tensor kept for the init-vs-end histograms

Row = tuple[int, str, str, str, str, float]


class StatsRecorder:
    """The statistics `wanted` of `net`'s parameters (and buffers, and ReLU layers' dead units)
    at each `record`, kept as CSV rows; the CSV file gets its header at `start` and the rows
    recorded since at each `flush`."""

    def __init__(self, net: nn.Module, wanted: tuple[str, ...], plots: bool):
        self.wanted = wanted
        self.csv: Path | None = None
        self.params = stats.tracked_parameters(net)
        self.block_by_name = {t.name: t.block for t in self.params}
        grads, updates = "grad_norm" in wanted, "update_ratio" in wanted
        self.computer = stats.StatsComputer(self.params, with_grads=grads, with_updates=updates)
        buffers = stats.tracked_buffers(net)
        self.buffers = stats.StatsComputer(buffers, False, False) if buffers else None
        self.relus = ReluWatch(net) if "dead_units" in wanted else None
        self.initial = {t.name: sample(t.tensor) for t in self.params} if plots else {}
        self.diagnosis = Diagnosis()
        self.rows: list[Row] = []
        self.pending: list[Row] = []  # not on disk yet

    def start(self, csv_path: Path) -> None:
        """Write the CSV's header (a run that fails at once still has the file)."""
        self.csv = csv_path
        with csv_path.open("w", newline="") as f:
            csv.writer(f).writerow(CSV_COLUMNS)

    def record(
        self, step: int, grad_norms: torch.Tensor | None, init: bool = False
    ) -> tuple[list[Row], dict[str, float]]:
        """The rows of this record (kept), and the block metrics to log (`stats/<block>/<stat>`).
        `grad_norms`: per tracked tensor, its gradient's norm at the last step (NaN: none)."""
        values = self.computer.compute(None if init else grad_norms)
        new: list[Row] = []
        for row_name, row in values.items():
            kind, name = (
                ("block", row_name[6:])
                if row_name.startswith("block:")
                else ("parameter", row_name)
            )
            block = name if kind == "block" else self.block_by_name[name]
            for stat in self.wanted:
                if stat not in row or (init and stat in ("grad_norm", "update_ratio")):
                    continue
                if stat == "grad_norm" and math.isnan(row[stat]):
                    continue  # no gradient (frozen, or unused by the loss): absent, not 0
                new.append((step, kind, name, block, stat, row[stat]))
        if self.buffers is not None:
            for name, row in self.buffers.compute().items():
                if not name.startswith("block:"):
                    block = stats.block_of(name)
                    new += [
                        (step, "buffer", name, block, s, row[s]) for s in self.wanted if s in row
                    ]
        if self.relus is not None:
            new += activation_rows(step, self.relus.take())
        self.rows += new
        self.pending += new
        logged = {f"stats/{n}/{s}": v for _, k, n, _, s, v in new if k == "block" and s in LOGGED}
        return new, logged

    def findings(self, new: list[Row]) -> list[str]:
        return [finding.text for finding in self.diagnosis.update(new)]

    def flush(self) -> None:
        """Append the pending rows (once per epoch, at the end, and when the run fails)."""
        if self.pending and self.csv is not None:
            with self.csv.open("a", newline="") as f:
                csv.writer(f).writerows(self.pending)
            self.pending = []

    def final_samples(self) -> dict[str, torch.Tensor]:
        return {t.name: sample(t.tensor) for t in self.params}


def sample(t: torch.Tensor) -> torch.Tensor:
    flat = t.detach().reshape(-1).float()
    if flat.numel() > _SAMPLE:  # an evenly spaced sample: enough for a histogram
        flat = flat[:: flat.numel() // _SAMPLE]
    return flat.cpu().clone()
