"""`python -m runner.compare DIR DIR …`: the summary and report of runs that were not one sweep
(single runs, jobs of several sweeps), ranked as a sweep's are, in a directory of its own.
Runs that cannot be compared (other data, an objective one of them did not log, a task other
than training) are refused with the reason, exit code 2."""

import argparse
import sys
import time
from pathlib import Path

from runner.errors import ConfigError
from runner.sweep.__main__ import arguments, ended
from runner.sweep.compare import check_comparable, read_runs
from runner.sweep.output import write_files
from runner.sweep.stop import say
from runner.sweep.summary import objective_for, summarize


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runner.compare", description=__doc__)
    parser.add_argument("dirs", type=Path, nargs="+", metavar="DIR", help="run or sweep dirs")
    parser.add_argument(
        "--out",
        type=Path,
        help="where the summary goes (default: outputs/compare/<date>/<time>)",
    )
    arguments(parser)
    args = parser.parse_args(argv)
    out = args.out or Path("outputs", "compare", time.strftime("%Y-%m-%d/%H-%M-%S-%f"))
    try:
        objective = objective_for(args.objective, args.direction)
        records = read_runs(args.dirs)
        check_comparable(records, objective.name)
        _check_out(out)
    except ConfigError as e:
        say(f"config error: {e}")
        return 2
    out.mkdir(parents=True, exist_ok=True)
    summary = write_files(summarize(records, objective), out, f"Comparison of {len(records)} runs")
    return ended(summary, out, "compare")


def _check_out(out: Path) -> None:
    """--out is a folder of the comparison's own: not a file, not a run's or a sweep's folder
    (their report.html and summary would be replaced)."""
    if out.exists() and not out.is_dir():
        raise ConfigError([f"--out: {str(out)!r} is not a directory; allowed: a new folder"])
    theirs = [n for n in ("result.json", ".runner-sweep.json", ".hydra") if (out / n).exists()]
    if theirs:
        raise ConfigError(
            [
                f"--out: {str(out)!r} is a run's or a sweep's folder (it holds {theirs[0]}), "
                "whose report and summary the comparison would replace; allowed: a new folder"
            ]
        )


if __name__ == "__main__":
    sys.exit(main())
