"""`outputs/latest`: a link to the newest training run (or sweep) under `outputs/`, so the next
command can name it without copying a dated path, and `ckpt_path=latest`, that run's
`checkpoints/last.ckpt`."""

import contextlib
import logging
import os
import re
from pathlib import Path

from runner.errors import ConfigError

log = logging.getLogger("runner")

OUTPUTS = Path("outputs")  # hydra.run.dir's and hydra.sweep.dir's root (conf/hydra/runner.yaml)
LATEST = "latest"


def point_latest(run_dir: Path) -> Path | None:
    """Point `outputs/latest` (in the working directory) at `run_dir`, when the run is under
    `outputs/`; replaced in one rename, so a reader sees the old link or the new one."""
    outputs = OUTPUTS.absolute()
    try:
        target = run_dir.absolute().relative_to(outputs)
    except ValueError:  # a run somewhere else (hydra.run.dir=…): outputs/ is not its root
        return None
    link = outputs / LATEST
    if link.exists() and not link.is_symlink():  # the user's own file or folder: never replaced
        log.warning("outputs/latest: %s is not the runner's link; left as it is", link)
        return None
    tmp = outputs / f".{LATEST}.{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        tmp.symlink_to(target)
        os.replace(tmp, link)
    except OSError:  # a file system without links: nothing to point with
        with contextlib.suppress(OSError):
            tmp.unlink()
        return None
    return link


def latest_checkpoint() -> str:
    """What `ckpt_path=latest` means: the newest training run's last.ckpt. Raises ConfigError
    when there is none, or when the newest is a sweep (which of its jobs is meant?)."""
    link = OUTPUTS / LATEST
    if not link.exists():
        raise ConfigError(
            [
                f"ckpt_path: 'latest' means {link}/checkpoints/last.ckpt, the newest training "
                f"run's, and {str(OUTPUTS.absolute())!r} has no such run yet; allowed: a "
                "checkpoint's path"
            ]
        )
    run_dir = link.resolve()
    last = run_dir / "checkpoints" / "last.ckpt"
    if last.is_file():
        return str(last)
    jobs = sorted((d.name for d in run_dir.iterdir() if d.name.isdigit() and d.is_dir()), key=int)
    if jobs:
        raise ConfigError(
            [
                f"ckpt_path: 'latest' is the sweep {str(run_dir)!r}; name one of its jobs "
                f"({', '.join(jobs)}): ckpt_path={link}/{jobs[0]}/checkpoints/last.ckpt"
            ]
        )
    raise ConfigError([f"ckpt_path: the newest run, {str(run_dir)!r}, left no last.ckpt"])


def run_dir_suffix(task: object, ckpt_path: object) -> str:
    """What a run of a trained model's checkpoint adds to its directory's name, so that its
    outputs say whose they are: `-eval-of-<run>` (the checkpoint's run directory), also for
    export and predict; "" for training and inspection. Never raises: Hydra resolves it before
    the config is checked (a wrong ckpt_path is reported there)."""
    if task not in ("eval", "export", "predict") or not isinstance(ckpt_path, str) or not ckpt_path:
        return ""
    path = Path(ckpt_path)
    if ckpt_path == LATEST:
        path = (OUTPUTS / LATEST).resolve() / "checkpoints" / "last.ckpt"
    run = path.parent.parent.name if path.parent.name == "checkpoints" else path.stem
    name = re.sub(r"[^\w.-]", "_", run)[:60]
    return f"-{task}-of-{name}" if name else f"-{task}"
