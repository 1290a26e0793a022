"""The chapter's "parameter access", as a table: every named parameter and buffer, and totals.

Shared tensors (one module used at several positions, or tied parameters) appear under every
name they have, and are counted once in the totals.
"""

import csv
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn.parameter import is_lazy

from runner.params.init_rules import ReportRow
from runner.params.tensors import by_identity

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

CSV_COLUMNS = ("name", "kind", "shape", "dtype", "device", "numel", "trainable", "shared_with")


@dataclass(frozen=True)
class TensorRow:
    name: str  # the state_dict key
    kind: str  # "parameter" or "buffer"
    shape: str  # "[256, 20]", or "uninitialized" for a lazy parameter not sized yet
    dtype: str
    device: str
    numel: int
    trainable: bool
    shared_with: tuple[str, ...]  # the other names of the same tensor


@dataclass(frozen=True)
class Totals:
    parameters: int  # distinct parameter tensors' elements: each shared tensor counted once
    trainable: int
    non_trainable: int
    buffers: int  # elements of distinct buffers (constants, running statistics)
    parameter_bytes: int
    buffer_bytes: int
    shared_saving: int  # elements that counting every name separately would add


def tensor_rows(net: nn.Module) -> list[TensorRow]:
    """One row per parameter name, then one per buffer name, in state_dict order."""
    rows = []
    for kind, named in (
        ("parameter", net.named_parameters(remove_duplicate=False)),
        ("buffer", net.named_buffers(remove_duplicate=False)),
    ):
        items = list(named)
        names_of = {id(tensor): names for names, tensor in by_identity(items)}
        for name, tensor in items:  # every name in its own state_dict position
            others = tuple(n for n in names_of[id(tensor)] if n != name)
            lazy = is_lazy(tensor)
            rows.append(
                TensorRow(
                    name=name,
                    kind=kind,
                    shape="uninitialized" if lazy else str(list(tensor.shape)),
                    dtype=str(tensor.dtype).removeprefix("torch."),
                    device=str(tensor.device),
                    numel=0 if lazy else tensor.numel(),
                    trainable=kind == "parameter" and tensor.requires_grad,
                    shared_with=others,
                )
            )
    return rows


def totals(net: nn.Module) -> Totals:
    params = list(net.parameters())  # each distinct Parameter once
    buffers = list(net.buffers())
    every_name = sum(_numel(p) for _, p in net.named_parameters(remove_duplicate=False))
    trainable = sum(_numel(p) for p in params if p.requires_grad)
    total = sum(_numel(p) for p in params)
    return Totals(
        parameters=total,
        trainable=trainable,
        non_trainable=total - trainable,
        buffers=sum(_numel(b) for b in buffers),
        parameter_bytes=sum(_numel(p) * p.element_size() for p in params),
        buffer_bytes=sum(_numel(b) * b.element_size() for b in buffers),
        shared_saving=every_name - total,
    )


def _numel(t: torch.Tensor) -> int:
    return 0 if is_lazy(t) else t.numel()


def write_csv(rows: list[TensorRow], path: Path) -> None:
    _write(path, CSV_COLUMNS, [{**asdict(r), "shared_with": " ".join(r.shared_with)} for r in rows])


def _write(path: Path, columns: tuple[str, ...], records: list[dict[str, object]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(records)


def print_report(
    net: nn.Module,
    rows: list[TensorRow],
    total: Totals,
    sized: list[str],
    init_rows: list[ReportRow],
) -> None:
    """The module tree (as print(net) shows it), the tables, and Keras-style totals."""
    from rich.table import Table

    console = _console()
    if not console.is_terminal:
        console.width = max(console.width, 140)  # a pipe or a file: don't wrap the table
    console.rule("Module tree")
    console.print(str(net), markup=False)
    table = Table(title="Parameters and buffers", title_justify="left")
    for column, justify in [
        ("name", "left"),
        ("kind", "left"),
        ("shape", "right"),
        ("dtype", "left"),
        ("device", "left"),
        ("numel", "right"),
        ("trainable", "center"),
        ("shares storage with", "left"),
    ]:
        table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for r in rows:
        table.add_row(
            r.name,
            r.kind,
            r.shape,
            r.dtype,
            r.device,
            f"{r.numel:,}",
            "yes" if r.trainable else "no",
            ", ".join(r.shared_with),
        )
    console.print(table)
    for line in totals_lines(total):
        console.print(line, markup=False)
    if sized:
        console.print()
        console.print("Deferred initialization: sized by one dry forward pass", markup=False)
        shapes = {r.name: r.shape for r in rows}
        for name in sized:
            console.print(f"  {name}: uninitialized → {shapes.get(name, '?')}", markup=False)
    if init_rows:
        console.print(_init_table(init_rows))


def _init_table(init_rows: list[ReportRow]) -> "Table":
    from rich.table import Table

    table = Table(title="Initialization (later rules win) and values at init", title_justify="left")
    for column, justify in [("name", "left"), ("shape", "right"), ("set by", "left")]:
        table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    table.add_column("then", overflow="fold")
    for stat in INIT_STATS:
        table.add_column(stat.replace("_", " "), justify="right")
    for r in init_rows:
        then = "; ".join(x for x in (r.tied_from, *r.edits) if x)
        table.add_row(
            " = ".join((r.name, *r.aliases)),
            str(list(r.shape)),
            r.set_by,
            then,
            *(_num(r.stats.get(stat)) for stat in INIT_STATS),
        )
    return table


def _num(x: float | None) -> str:
    return "" if x is None else f"{x + 0.0:.4g}"  # + 0.0: no "-0" for a negative zero


INIT_STATS = ("mean", "std", "min", "max", "zero_frac")
INIT_CSV_COLUMNS = ("name", "aliases", "shape", "set_by", "tied_from", "edits", *INIT_STATS)


def write_init_csv(init_rows: list[ReportRow], path: Path) -> None:
    records = [
        {
            **{k: v for k, v in asdict(r).items() if k != "stats"},
            **{stat: r.stats.get(stat) for stat in INIT_STATS},
            "aliases": " ".join(r.aliases),
            "shape": str(list(r.shape)),
            "edits": "; ".join(r.edits),
        }
        for r in init_rows
    ]
    _write(path, INIT_CSV_COLUMNS, records)


def totals_lines(t: Totals) -> list[str]:
    lines = [
        f"Total params: {t.parameters:,} ({_size(t.parameter_bytes)})",
        f"Trainable params: {t.trainable:,}",
        f"Non-trainable params: {t.non_trainable:,}",
        f"Buffers: {t.buffers:,} ({_size(t.buffer_bytes)})",
    ]
    if t.shared_saving:
        lines.append(
            f"Shared: {t.shared_saving:,} params appear under more than one name and are "
            f"counted once (every name counted: {t.parameters + t.shared_saving:,})"
        )
    return lines


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.2f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def print_values(net: nn.Module, source: str, small: int = 8) -> None:
    """A checkpoint's parameters: each tensor's value statistics, and the values themselves
    for tensors of at most `small` elements (as the book prints `net[2].state_dict()`)."""
    from rich.table import Table

    from runner.params.stats import snapshot

    console = _console()
    if not console.is_terminal:
        console.width = max(console.width, 140)
    values = snapshot(net)
    table = Table(title=f"Values in {source}", title_justify="left")
    table.add_column("name", overflow="fold")
    table.add_column("shape", justify="right")
    for stat in INIT_STATS:
        table.add_column(stat.replace("_", " "), justify="right")
    table.add_column("values", overflow="fold")
    for name, row in values.items():
        if name.startswith("block:"):
            continue
        tensor = net.get_parameter(name.split(" = ")[0])
        shown = tensor.detach().reshape(-1).cpu().tolist() if tensor.numel() <= small else None
        table.add_row(
            name,
            str(list(tensor.shape)),
            *(_num(row.get(stat)) for stat in INIT_STATS),
            "" if shown is None else "[" + ", ".join(f"{v + 0.0:.6g}" for v in shown) + "]",
        )
    console.print(table)


def _console() -> "Console":
    """Rich's console on stdout, for which a closed pipe (`| head`) is not an error: the rest
    of the tables goes nowhere and the run ends as it would have (rich would exit(1))."""
    import os

    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.file.fileno())
            os.close(devnull)

    return _Console(highlight=False)
