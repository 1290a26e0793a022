"""The run's own keys at the top of the config, each checked on its own: the checkpoint a task
reads (`ckpt_path`), the `eval` section (task=eval) and the `sweep` section (multirun jobs)."""

from pathlib import Path
from typing import Any

from runner.config.sections import DEFAULT_OBJECTIVE, DIRECTIONS, infer_direction
from runner.config.values import UNRESOLVED, show
from runner.errors import Problems, did_you_mean, one_of

EVAL_SPLITS = ("test", "val", "train")
EVAL_DATA = ("auto", "checkpoint", "given")


def _section(name: str, section: Any, keys: tuple[str, ...], problems: Problems) -> bool:
    """Whether `section` is a mapping to check key by key (its unknown keys reported); a
    section left out or unresolved is not checked, anything else is a problem."""
    if section in (None, UNRESOLVED):
        return False
    if not isinstance(section, dict):
        shown = ", ".join(keys[:2])
        problems.add(name, f"expected a mapping ({shown}); got {show(section)}")
        return False
    problems.unknown_keys(name, section, keys)
    return True


def check_sweep(section: Any, problems: Problems) -> None:
    """The `sweep` section (read by multirun jobs): resume on or off, and the objective."""
    if not _section("sweep", section, ("resume", "objective", "direction"), problems):
        return
    if not isinstance(section.get("resume", False), bool):
        problems.add("sweep.resume", f"expected true or false; got {show(section['resume'])}")
    objective = section.get("objective", DEFAULT_OBJECTIVE)
    if not (isinstance(objective, str) and objective):
        problems.add(
            "sweep.objective",
            f"expected a metric name such as val/loss or val/acc; got {show(objective)}",
        )
    direction = section.get("direction")
    if direction is not None and direction not in DIRECTIONS:
        problems.add(
            "sweep.direction",
            f"got {show(direction)}; allowed: max, min, or null (inferred from sweep.objective)",
        )
    elif direction is None and isinstance(objective, str) and not infer_direction(objective):
        problems.add(
            "sweep.direction",
            f"cannot tell from the name {objective!r} (sweep.objective) whether higher or lower "
            "is better; allowed: sweep.direction=max or sweep.direction=min",
        )


def check_ckpt_path(ckpt_path: Any, task: Any, problems: Problems) -> None:
    if ckpt_path is None and task in ("export", "eval", "predict"):
        what = {"export": "to export", "eval": "to evaluate", "predict": "to predict with"}[task]
        problems.add("ckpt_path", f"task={task} needs the checkpoint {what}: ckpt_path=PATH")
    elif ckpt_path is not None and ckpt_path is not UNRESOLVED and not isinstance(ckpt_path, str):
        problems.add(
            "ckpt_path",
            f"expected the path of one checkpoint file; got {show(ckpt_path)}; allowed: a "
            "path such as ckpt_path=outputs/<date>/<time>/checkpoints/last.ckpt",
        )
    elif isinstance(ckpt_path, str) and not Path(ckpt_path).is_file():
        path = Path(ckpt_path)
        folders = (path / "checkpoints", path)
        inside = [f / "last.ckpt" for f in folders if (f / "last.ckpt").is_file()]
        if inside:  # a run's directory, or its checkpoints/ folder
            hint = f"; did you mean {str(inside[0])!r}?"
        else:
            near = [str(n) for n in path.parent.iterdir()] if path.parent.is_dir() else []
            hint = did_you_mean(ckpt_path, near)
        what = "a directory" if path.is_dir() else "nothing"
        problems.add("ckpt_path", f"no checkpoint file at {ckpt_path!r} ({what} there){hint}")


def check_eval(section: Any, problems: Problems) -> None:
    """The `eval` section (read by task=eval): which split to evaluate."""
    if not _section("eval", section, ("split", "data"), problems):
        return
    data = section.get("data", "auto")
    if data not in EVAL_DATA:
        problems.add(
            "eval.data",
            f"unknown choice {show(data)}; allowed: {one_of(EVAL_DATA)}"
            + did_you_mean(str(data), EVAL_DATA),
        )
    split = section.get("split", "test")
    if split not in EVAL_SPLITS:
        problems.add(
            "eval.split",
            f"unknown split {show(split)}; allowed: {one_of(EVAL_SPLITS)}"
            + did_you_mean(str(split), EVAL_SPLITS),
        )
