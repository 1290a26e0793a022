"""A user's own table files, as the tests write them: a penguins-like CSV, and the files and
things-that-are-not-files that tests/test_mistakes.py names as data.path."""

import os
from pathlib import Path

import numpy as np
import pandas as pd


def penguins(n: int = 240, seed: int = 0) -> pd.DataFrame:
    """Two numeric columns, one of text, and a text label that depends on all three."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "bill": rng.normal(40, 5, n),  # far from 0 and 1: standardization matters
            "flipper": rng.normal(200, 10, n),
            "island": rng.choice(["Biscoe", "Dream", "Torgersen"], n),
        }
    )
    score = (frame.bill - 40) / 5 + (frame.flipper - 200) / 10 + 2 * (frame.island == "Dream")
    frame["species"] = np.where(score > 0.5, "Gentoo", "Adelie")
    return frame


def write_mistaken_tables(folder: Path) -> None:
    """What the mistakes table's data=table rows name, in `folder` (their working directory):
    good files, damaged ones, bad values, and a directory, a FIFO and links in a file's place."""
    penguins().to_csv(folder / "penguins.csv", index=False)
    penguins(3).to_csv(folder / "three.csv", index=False)
    (folder / "broken.parquet").write_bytes(b"PAR1 not really")
    (folder / "penguins.xlsx").write_bytes(b"")
    infinite = penguins()
    infinite.loc[[4, 9], "bill"] = [np.inf, -np.inf]
    infinite.loc[11, "flipper"] = np.nan
    infinite.to_csv(folder / "infinite.csv", index=False)
    target = penguins().drop(columns=["species"])
    target["mass"] = np.where(np.arange(len(target)) == 7, np.inf, 4000.0)
    target.to_csv(folder / "mass.csv", index=False)
    (folder / "tables").mkdir()
    penguins().to_csv(folder / "tables" / "penguins.csv", index=False)
    os.mkfifo(folder / "pipe.csv")  # read, it would wait for a writer forever
    (folder / "loop.csv").symlink_to("loop.csv")
    (folder / "gone.csv").symlink_to("nowhere.csv")
