"""`python -m runner.sweep DIR`: rebuild the summary of a sweep that was interrupted or is
still running (summary.csv, summary.md and summary.png in DIR)."""

import argparse
import sys
from pathlib import Path

from runner.config.sections import DEFAULT_OBJECTIVE
from runner.sweep.callback import say
from runner.sweep.summary import write_summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runner.sweep", description=__doc__)
    parser.add_argument("dir", type=Path, help="the sweep's directory (its hydra.sweep.dir)")
    parser.add_argument("--objective", default=DEFAULT_OBJECTIVE, help="what to rank and plot by")
    args = parser.parse_args(argv)
    if not args.dir.is_dir():
        say(f"config error: DIR: no sweep directory at {str(args.dir)!r}")
        return 2
    summary = write_summary(args.dir, args.objective)
    if not summary.records:
        say(f"config error: DIR: {str(args.dir)!r} holds no job directories (0/, 1/, …)")
        return 2
    counts = ", ".join(
        f"{n} {s}"
        for s in dict.fromkeys(r.status for r in summary.records)
        if (n := sum(r.status == s for r in summary.records))
    )
    say(f"sweep: {len(summary.records)} job(s): {counts}; summary: {args.dir / 'summary.md'}")
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
