"""The whole config → a RunSpec: every section checked, every problem found, before anything
runs; then each section parsed once into its typed spec, which is all the tasks read.

Sections are checked in config.yaml's order of concern, each by its own module: the device
(`device`: its values, then where the run lands), the model and its ties (`grammar`, `ties`,
`shapes`), the init rules (`init`), and for training the data, optimizer, trainer, statistics
and logger sections and the strategy (`training`, `data`, `optim`). Values are checked with the
helpers in `values`; the checked sections are parsed by `sections`.
"""

from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from runner.config.arguments import is_int
from runner.config.data import check_data, check_predict_data, declared_task, fill_from_data
from runner.config.device import ACCELERATORS, DeviceSpec, parse_device, place
from runner.config.grammar import parse_model_section
from runner.config.imports import import_modules
from runner.config.init import InitSpec, parse_init
from runner.config.model_spec import ModelSpec
from runner.config.run_keys import check_ckpt_path, check_eval, check_sweep
from runner.config.sections import (
    EvalSpec,
    SweepSpec,
    TrainingSpec,
    parse_sweep,
    parse_training,
)
from runner.config.training import check_sections, check_training
from runner.config.tree import compose, plain
from runner.config.values import UNRESOLVED, resolve, show
from runner.config.yaml_files import MAX_DEPTH
from runner.errors import ConfigError, Problems, did_you_mean, first_line, one_of

TASKS = ("train", "inspect", "export", "eval", "predict")
# config.yaml's keys: its groups and its own settings (an experiment may only set these too).
TOP_LEVEL = (
    "model",
    "init",
    "device",
    "data",
    "optim",
    "trainer",
    "stats",
    "logger",
    "task",
    "seed",
    "ckpt_path",
    "sweep",
    "eval",
    "imports",
    "callbacks",
    "report",
)


@dataclass(frozen=True)
class RunSpec:
    """The validated config. `config` is the composed config, resolved, as plain containers:
    what a checkpoint embeds, so that a file describes the run that wrote it."""

    task: str
    seed: int
    model: ModelSpec
    init: InitSpec
    device: DeviceSpec
    config: dict[str, Any] = field(repr=False)
    ckpt_path: str | None = None
    imports: tuple[str, ...] = ()
    eval: EvalSpec = field(default_factory=EvalSpec)
    sweep: SweepSpec = field(default_factory=SweepSpec)
    training: TrainingSpec | None = None  # task=train and task=eval only
    report: bool = True  # task=train: plots/metrics.png and report.html in the run directory


def parse_run(cfg: DictConfig) -> RunSpec:
    """Validate the whole config, then parse it. Raises ConfigError listing every problem."""
    problems = Problems()
    task = resolve(cfg, "task", problems)
    if task is not UNRESOLVED and task not in TASKS:
        problems.add(
            "task",
            f"unknown task {show(task)}; allowed: {one_of(TASKS)}{did_you_mean(task, TASKS)}",
        )
    seed = resolve(cfg, "seed", problems)
    if seed is not UNRESOLVED and not (is_int(seed) and 0 <= seed < 2**32):
        problems.add("seed", f"expected an integer from 0 to 4294967295; got {seed!r}")
    ckpt_path = resolve(cfg, "ckpt_path", problems)
    check_ckpt_path(ckpt_path, task, problems)
    eval_section = resolve(cfg, "eval", problems)
    check_eval(eval_section, problems)
    imports = resolve(cfg, "imports", problems)
    import_modules(imports, problems)  # before names are checked
    sweep = resolve(cfg, "sweep", problems)
    check_sweep(sweep, problems)
    report = resolve(cfg, "report", problems)
    if report is not UNRESOLVED and not isinstance(report, bool):
        problems.add("report", f"expected true or false; got {show(report)}")
    problems.unknown_keys("", cfg, TOP_LEVEL, limit=20)  # `+seeed=1`: past the table of contents
    before, filled = len(problems.items), True
    if task in ("train", "eval") or (task == "inspect" and _sized_by_data(cfg, ckpt_path)):
        filled = fill_from_data(cfg, problems)  # data=table: the model's sizes from the file
        if not filled and len(problems.items) == before and task == "inspect":
            check_data(resolve(cfg, "data", problems), problems)  # (training's checks do it)
    elif task == "predict":
        check_predict_data(cfg, problems)
    unfilled, before = not filled or len(problems.items) > before, len(problems.items)
    model, init, device = _parse_build(cfg, problems, task)
    if unfilled:  # the model's sizes never came: its unresolved interpolations say nothing new
        problems.items[before:] = [p for p in problems.items[before:] if not p.startswith("model")]
    if model is not None:
        _check_sharded(model, device, problems)
    if task in ("train", "eval"):  # eval: the trainer, logger and data groups it runs with
        check_training(cfg, problems, device)
    problems.raise_if_any()
    assert model is not None
    config = plain(cfg)
    return RunSpec(
        task=str(task),
        seed=int(seed),
        model=model,
        init=init,
        device=device,
        config=config,
        ckpt_path=None if ckpt_path is None else str(ckpt_path),
        imports=tuple(imports or ()),
        eval=_parse_eval(cfg, eval_section) if task == "eval" else EvalSpec(),
        sweep=parse_sweep(sweep),
        training=_parse_training(cfg, config) if task in ("train", "eval") else None,
        report=report is not False,
    )


def _sized_by_data(cfg: DictConfig, ckpt_path: Any) -> bool:
    """task=inspect of a model whose input shape the data gives (data=table): the data is read
    for it (otherwise inspect reads no data, and loads no data module)."""
    model = cfg.get("model")
    try:
        return ckpt_path is None and isinstance(model, DictConfig) and model.input_shape is None
    except OmegaConfBaseException:  # reported where the model section is parsed
        return False


def _parse_training(cfg: DictConfig, config: dict[str, Any]) -> TrainingSpec:
    template = OmegaConf.to_container(cfg.data, resolve=False)
    assert isinstance(template, dict)  # check_training refused any other data section
    return parse_training(config, {str(k): v for k, v in template.items()})


def _parse_eval(cfg: DictConfig, section: dict[str, Any] | None) -> EvalSpec:
    """eval.data: `given` (this command's data), `checkpoint` (the data it trained on), or
    `auto`: given when the data section differs from the default one (the command line
    resolves `auto` itself, from the overrides typed: runner.cli)."""
    section = section or {}
    split, data = str(section.get("split", "test")), str(section.get("data", "auto"))
    if data == "auto":
        default = OmegaConf.to_container(compose(["task=eval"]).data, resolve=False)
        data = (
            "checkpoint" if OmegaConf.to_container(cfg.data, resolve=False) == default else "given"
        )
    return EvalSpec(split=split, data=data)


def _check_sharded(model: ModelSpec, device: DeviceSpec, problems: Problems) -> None:
    """FSDP shards parameters across devices: a tie group split over two shards stops being one
    tensor. Until tie groups are wrapped into one FSDP unit, tied models are refused."""
    if not str(device.strategy).lower().startswith("fsdp"):
        return
    if device.accelerator == "cpu":
        problems.add("device.strategy", "'fsdp' shards across GPUs; on the CPU use ddp_cpu")
    tied = [g.label for g in model.ties] + [f"model.shared.{name}" for name in model.shared]
    if tied:
        problems.add(
            "device.strategy",
            f"{device.strategy!r} shards parameters across GPUs, and this model ties or shares "
            f"some ({', '.join(tied)}); a tie split over two shards stops being one tensor. "
            "Use device=gpus (DDP keeps every tie), or untie them",
        )


def parse_build(cfg: DictConfig) -> tuple[ModelSpec, InitSpec, DeviceSpec]:
    """Validate what building a net needs: model, init and device, all problems at once."""
    problems = Problems()
    import_modules(resolve(cfg, "imports", problems) if "imports" in cfg else None, problems)
    model, init, device = _parse_build(cfg, problems)
    problems.raise_if_any()
    assert model is not None
    return model, init, device


# The sections a file's config is rebuilt with: the network (model, init, device), the module
# around it (optim, trainer) and the data it was trained on, which task=eval may evaluate on.
EMBEDDED = ("data", "optim", "trainer")


def check_embedded(config: dict[str, Any], task: str, where: str) -> None:
    """A config read from a file (a checkpoint's, an export's metadata), given the checks the
    command line gets for every section a file's model is rebuilt and evaluated with, before
    anything is built. Raises ConfigError, each problem as `<where>: embedded <key>: …`."""
    problems = Problems()
    try:
        if _depth(config) > MAX_DEPTH + 1:  # the model section sits one level below the root
            raise ValueError(f"nested deeper than {MAX_DEPTH} lists and mappings")
        cfg = OmegaConf.create(config)
    except (ValueError, OmegaConfBaseException) as e:
        raise ConfigError([f"{where}: embedded config: unreadable ({first_line(e)})"]) from None
    seed = cfg.get("seed")
    if seed is not None and not (is_int(seed) and 0 <= seed < 2**32):
        problems.add("seed", f"expected an integer from 0 to 4294967295; got {seed!r}")
    _, _, device = _parse_build(cfg, problems)
    check_sections(cfg, problems, device, EMBEDDED)
    if not problems.items:
        kind = declared_task(OmegaConf.to_container(cfg.data))  # type: ignore[arg-type]
        if kind is not None and kind != task:
            problems.add("task", f"{task!r}, but its data ({cfg.data['_target_']}) is {kind}")
    raise_prefixed(problems, f"{where}: embedded ")


def raise_prefixed(problems: Problems, prefix: str) -> None:
    """Problems.raise_if_any, each problem prefixed (`ckpt_path: 'f.ckpt': embedded `)."""
    if problems.items:
        raise ConfigError([prefix + p for p in problems.items])


def _depth(value: Any) -> int:
    """How deep lists and mappings nest in plain data (without recursion: a file may nest
    them deeper than Python's stack)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, level)
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, level + 1) for child in children)
    return deepest


def _parse_build(
    cfg: DictConfig, problems: Problems, task: object = None
) -> tuple[ModelSpec | None, InitSpec, DeviceSpec]:
    # Device first: problems are reported in config.yaml's order of concern.
    device = parse_device(resolve(cfg, "device", problems), problems)
    if task in ("train", "inspect", "eval") and device.accelerator in ACCELERATORS:
        # Where it runs (a GPU that is not there, GPU indices on the CPU), with the rest.
        place(device, problems, training=task == "train", testing=task == "eval")
    return parse_model_section(cfg.model, problems), parse_init(cfg.get("init"), problems), device
