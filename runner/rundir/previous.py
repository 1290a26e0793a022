"""A directory taken over: an earlier run's files move to previous/<n>/ before the new run
writes anything, so nothing a run made is overwritten or mistaken for the new run's. The paths
inside a moved result.json follow the move, so its resume command still works."""

import os
import re
from pathlib import Path
from typing import Any

from runner.errors import ConfigError
from runner.rundir.files import kind_of, read_json, write_json

# What a run leaves in its directory: its own files, and Hydra's `.hydra/` (the exact config)
# and log (`hydra.job.name` + .log; conf/hydra/runner.yaml names the job `runner`).
RUN_FILES = (
    "result.json",
    "checkpoints",
    "logs",
    "param_stats.csv",
    "plots",
    "params.csv",
    "init.csv",
    "report.html",
)
HYDRA_FILES = (".hydra", "runner.log")


def set_aside_previous(
    run_dir: Path, folder: str = "previous", names: tuple[str, ...] = RUN_FILES + HYDRA_FILES
) -> Path | None:
    """Move an earlier run's files (`names`) out of the way, into <folder>/<n>/, before a new
    run writes into the same directory: nothing a run made is overwritten, and a link in the
    place of one is moved, never followed. Returns where they went, or None when there was
    nothing to move. Raises ConfigError when <folder> is not a directory of the runner's."""
    present = [run_dir / name for name in names if os.path.lexists(run_dir / name)]
    if not present:
        return None
    parent = run_dir / folder
    if os.path.lexists(parent) and not (parent.is_dir() and not parent.is_symlink()):
        kind = kind_of(parent) or "a file"
        raise ConfigError(
            [
                f"hydra.run.dir: {str(parent)!r} is {kind}, not the folder where the runner "
                f"keeps an earlier run's files; allowed: a directory named {folder!r} or "
                "nothing there (move it away, or choose another directory)"
            ]
        )
    parent.mkdir(exist_ok=True)
    n = 1
    while os.path.lexists(parent / str(n)):
        n += 1
    target = parent / str(n)
    target.mkdir()
    for path in present:
        os.replace(path, target / path.name)
    _follow_in_record(target / "result.json", run_dir, target, [p.name for p in present])
    return target


def _follow_in_record(record: Path, run_dir: Path, target: Path, moved: list[str]) -> None:
    """Rewrite the paths in a moved result.json that point at the moved files (checkpoints,
    statistics, the resume command's ckpt_path) to where they are now."""
    value = read_json(record)
    if not value:
        return  # none, or not a record the runner can read: kept as it is
    names = "|".join(re.escape(n) for n in moved)
    roots = {str(run_dir), str(run_dir.absolute()), os.path.realpath(run_dir)}
    old = "|".join(re.escape(r) for r in sorted(roots, key=len, reverse=True))
    pattern = re.compile(rf"(?:{old})/(?=(?:{names})(?:$|[/\s'\"]))")

    def follow(item: Any) -> Any:
        if isinstance(item, str):
            return pattern.sub(lambda m: str(target.absolute()) + "/", item)
        if isinstance(item, list):
            return [follow(i) for i in item]
        if isinstance(item, dict):
            return {k: follow(v) for k, v in item.items()}
        return item

    write_json(record, follow(value))


def followed(ckpt_path: Any, run_dir: Path, kept: Path) -> str | None:
    """Where `ckpt_path` is now when it pointed into the files just moved to `kept` (a run
    resuming from its own directory's checkpoint); None when it did not."""
    if not isinstance(ckpt_path, str):
        return None
    path = Path(ckpt_path).resolve()
    root = run_dir.resolve()
    if root not in path.parents or path.relative_to(root).parts[0] not in _names(kept):
        return None
    return str(kept / path.relative_to(root))


def _names(kept: Path) -> set[str]:
    return {p.name for p in kept.iterdir()}
