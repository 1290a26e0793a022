"""The run directory: one run per directory (lock), result.json and the runner's other files
written without following anything in their place, an earlier run set aside (previous/<n>/),
and the command that resumes a run."""

from runner.rundir.files import read_json, read_result, replace_file, write_json, write_result
from runner.rundir.guard import RunDirGuard
from runner.rundir.latest import latest_checkpoint, point_latest
from runner.rundir.lock import LOCK, claim, in_use, unwritable
from runner.rundir.previous import HYDRA_FILES, RUN_FILES, followed, set_aside_previous
from runner.rundir.resume import resume_command

__all__ = [
    "HYDRA_FILES",
    "LOCK",
    "RUN_FILES",
    "RunDirGuard",
    "claim",
    "followed",
    "in_use",
    "latest_checkpoint",
    "point_latest",
    "read_json",
    "read_result",
    "replace_file",
    "resume_command",
    "set_aside_previous",
    "unwritable",
    "write_json",
    "write_result",
]
