"""The Hydra callback that takes a single run's directory before Hydra writes into it.

Hydra calls `on_run_start` before it makes the job's directory, writes `.hydra/` and opens the
log (hydra.core.utils.run_job), so the lock is taken there: a directory a live run holds is
refused with nothing written into it, and an earlier run's files, `.hydra/` and log included,
move to previous/<n>/ before Hydra writes the new ones. A sweep's jobs are taken by run()
itself (Hydra writes a job's `.hydra/` before any callback of the job).
"""

import logging
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict, read_write

from runner.errors import ConfigError, stamped
from runner.rundir.lock import LOCK, acquire, release, unwritable
from runner.rundir.previous import followed, set_aside_previous

log = logging.getLogger("runner")

CLAIMED: list[Path] = []  # the run directories this process took, newest last


class RunDirGuard(Callback):
    """Takes the run directory (refusing one a live run holds, one that cannot be written, and
    one whose runner files are links, FIFOs or directories) and sets an earlier run aside; a
    sweep directory that cannot be written is refused."""

    def __init__(self) -> None:
        self.kept: Path | None = None

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        run_dir = Path(str(config.hydra.run.dir)).absolute()
        had_lock = (run_dir / LOCK).exists() or (run_dir / LOCK).is_symlink()
        try:
            acquire(run_dir)
            CLAIMED.append(run_dir)  # a signal before the run starts still records it here
            self.kept = set_aside_previous(run_dir)
        except ConfigError as e:
            release(run_dir)
            if not had_lock and (run_dir / LOCK).is_file():  # refused: leave nothing of ours
                (run_dir / LOCK).unlink()
            _refuse(str(e))
        except OSError as e:  # Hydra would only warn: refuse, as run() itself would
            release(run_dir)
            _refuse(f"hydra.run.dir: {str(run_dir)!r} cannot be used ({e.filename}: {e.strerror})")
        except Exception:  # a bug here: Hydra warns and goes on, and run() takes the directory
            release(run_dir)
            raise
        if self.kept is None:
            return
        ckpt = followed(config.get("ckpt_path"), run_dir, self.kept)
        if ckpt is not None:  # resuming from a checkpoint that was just moved: follow it
            with read_write(config), open_dict(config):
                config.ckpt_path = ckpt

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if self.kept is not None:  # now that the run's log is set up
            log.info("run dir: an earlier run's files were moved to %s", self.kept)

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        release(Path(str(config.hydra.run.dir)).absolute())

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _refuse(unwritable(Path(str(config.hydra.sweep.dir)), "hydra.sweep.dir"))


def _refuse(problem: str | None) -> None:
    if problem is not None:
        print(stamped(f"config error: {problem}"), file=sys.stderr)
        sys.exit(2)
