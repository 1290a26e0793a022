"""`python -m runner.sweep DIR`: rebuild the summary of a sweep that was interrupted or is
still running (summary.csv, .json, .md, .png and report.html in DIR)."""

import argparse
import sys
from pathlib import Path

from runner.config.sections import DEFAULT_OBJECTIVE, DIRECTIONS
from runner.errors import ConfigError
from runner.sweep.output import write_summary
from runner.sweep.stop import say
from runner.sweep.summary import Summary, objective_for


def arguments(parser: argparse.ArgumentParser) -> None:
    """The options runner.sweep and runner.compare share."""
    parser.add_argument("--objective", default=DEFAULT_OBJECTIVE, help="what to rank and plot by")
    parser.add_argument(
        "--direction",
        choices=DIRECTIONS,
        help="max or min: which way is better (default: inferred from the objective's name)",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runner.sweep", description=__doc__)
    parser.add_argument("dir", type=Path, help="the sweep's directory (its hydra.sweep.dir)")
    arguments(parser)
    args = parser.parse_args(argv)
    if not args.dir.is_dir():
        say(f"config error: DIR: no sweep directory at {str(args.dir)!r}")
        return 2
    if not any(d.name.isdigit() and (d / ".hydra").is_dir() for d in args.dir.iterdir()):
        say(
            f"config error: DIR: {str(args.dir)!r} holds no job directories (0/, 1/, …); "
            "to compare runs that were not one sweep: python -m runner.compare DIR DIR …"
        )
        return 2
    try:
        objective = objective_for(args.objective, args.direction)
    except ConfigError as e:
        say(f"config error: {e}")
        return 2
    return ended(write_summary(args.dir, objective), args.dir, "sweep")


def ended(summary: Summary, directory: Path, who: str) -> int:
    """The summary's lines and the exit code: 2 when no job logged the objective, 1 when a
    job failed."""
    counts = ", ".join(
        f"{n} {s}"
        for s in dict.fromkeys(r.status for r in summary.records)
        if (n := sum(r.status == s for r in summary.records))
    )
    say(f"{who}: {len(summary.records)} job(s): {counts}; summary: {directory / 'summary.md'}")
    missing = summary.missing_objective()
    if missing is not None:
        say(f"config error: {missing}")
        return 2
    if summary.configs and summary.best is not None:
        say(f"{who}: ranked by {summary.objective.says}; best: {summary.configs[0].label}")
        if summary.resolution:
            say(f"{who}: " + summary.resolution.replace("**", "").replace("`", ""))
    say(f"{who}: report: {directory / 'report.html'}")
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
