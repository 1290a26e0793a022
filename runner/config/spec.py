"""The whole config → a RunSpec: every section checked, every problem found, before anything runs.

Sections are checked in config.yaml's order of concern, each by its own module: the device
(`device`), the model and its ties (`grammar`, `ties`, `shapes`), the init rules (`init`), and
for training the trainer, data, optimizer, statistics and logger sections (`training`).
"""

from dataclasses import dataclass

from omegaconf import DictConfig

from runner.config.arguments import is_int
from runner.config.device import DeviceSpec, parse_device
from runner.config.grammar import parse_model_section
from runner.config.init import InitSpec, parse_init
from runner.config.model_spec import ModelSpec
from runner.config.training import check_training
from runner.errors import Problems, did_you_mean, one_of

TASKS = ("train", "inspect", "export")


@dataclass(frozen=True)
class RunSpec:
    task: str
    seed: int
    model: ModelSpec
    init: InitSpec
    device: DeviceSpec


def parse_run(cfg: DictConfig) -> RunSpec:
    """Validate the whole config. Raises ConfigError listing every problem."""
    problems = Problems()
    task = cfg.get("task")
    if task not in TASKS:
        problems.add(
            "task", f"unknown task {task!r}; allowed: {one_of(TASKS)}{did_you_mean(task, TASKS)}"
        )
    seed = cfg.get("seed")
    if not is_int(seed):
        problems.add("seed", f"expected an integer; got {seed!r}")
    if cfg.get("ckpt_path") is not None and task == "inspect":
        problems.add(
            "ckpt_path",
            f"{cfg.ckpt_path!r} given, but task=inspect builds from the config and reads no "
            "checkpoint; remove the override",
        )
    if cfg.get("ckpt_path") is None and task == "export":
        problems.add("ckpt_path", "task=export needs the checkpoint to export: ckpt_path=PATH")
    if task == "train":
        check_training(cfg, problems)
    model, init, device = _parse_build(cfg, problems)
    problems.raise_if_any()
    assert model is not None
    return RunSpec(task=str(task), seed=int(seed), model=model, init=init, device=device)


def parse_build(cfg: DictConfig) -> tuple[ModelSpec, InitSpec, DeviceSpec]:
    """Validate what building a net needs: model, init and device, all problems at once."""
    problems = Problems()
    model, init, device = _parse_build(cfg, problems)
    problems.raise_if_any()
    assert model is not None
    return model, init, device


def _parse_build(
    cfg: DictConfig, problems: Problems
) -> tuple[ModelSpec | None, InitSpec, DeviceSpec]:
    # Device first: problems are reported in config.yaml's order of concern.
    device = parse_device(cfg.device, problems)
    return parse_model_section(cfg.model, problems), parse_init(cfg.get("init"), problems), device
