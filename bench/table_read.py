"""data=table: a large CSV into the first training batch, against pandas reading it alone.

Target (issue #23): reading a 1,000,000 × 20 CSV (19 float features and a float target) into
the first training batch (the file read, the columns picked, standardization fitted on the
training split, the splits encoded, the first batch sliced) takes ≤ 1.3× `pandas.read_csv` of
the same file, timed in the same run, alternating, each repetition from a cold read (the
runner's in-process cache of read files is cleared; the OS file cache is warm for both).

    python bench/table_read.py [--rows 1000000] [--repeats 5] [--quick]
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import check, save

from runner.train import data_files
from runner.train.data_table import TableData


def write_csv(path: Path, rows: int) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(rows, 20)), columns=[f"x{i}" for i in range(19)] + ["y"])
    frame.to_csv(path, index=False)


def pandas_alone(path: Path) -> float:
    start = time.perf_counter()
    pd.read_csv(path)
    return time.perf_counter() - start


def to_first_batch(path: Path) -> float:
    data_files._read.cache_clear()  # cold: as a fresh run reads it
    start = time.perf_counter()
    data = TableData(str(path), target="y", task="regression", batch_size=256)
    data.setup("fit")
    x, y = next(iter(data.train_dataloader()))
    assert x.shape == (256, 19) and y.shape == (256, 1)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="200,000 rows, 3 repetitions")
    args = parser.parse_args()
    rows, repeats = (200_000, 3) if args.quick else (args.rows, args.repeats)
    torch.set_num_threads(torch.get_num_threads())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "table.csv"
        write_csv(path, rows)
        pandas_alone(path), to_first_batch(path)  # warm the OS file cache and the imports
        base, ours = [], []
        for _ in range(repeats):  # alternating: both sides see the same machine load
            base.append(pandas_alone(path))
            ours.append(to_first_batch(path))
    print(
        f"{rows:,} × 20 CSV: pandas.read_csv {np.median(base):.3f} s, "
        f"to the first batch {np.median(ours):.3f} s"
    )
    ratios = [o / b for o, b in zip(ours, base, strict=True)]
    checks = [check(f"{rows:,}×20 CSV to the first batch", "pandas.read_csv alone", ratios, 1.3)]
    save(
        "table_read",
        {"rows": rows, "repeats": repeats, "pandas_s": base, "runner_s": ours},
        checks=checks,
    )


if __name__ == "__main__":
    main()
