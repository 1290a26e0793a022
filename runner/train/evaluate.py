"""Evaluation: the test stage of task=train, and task=eval of any checkpoint.

One Trainer configuration for every stage: the trainer group (limit_test_batches, fast_dev_run,
deterministic, …) reaches evaluation as it reaches fit, on the device group's accelerator and
precision. Evaluation runs in this process, on one device: under DDP a spawned test would start
new workers and overwrite the fit's logs.
"""

import logging
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import OmegaConf

from runner.config.data import overlap_warning
from runner.config.device import resolve_device
from runner.config.sections import TrainerSpec, TrainingSpec
from runner.config.spec import RunSpec
from runner.config.tree import plain
from runner.errors import ConfigError
from runner.trackers.tracking import Trackers, ended
from runner.train.data import InMemoryData, RandomData
from runner.train.data_user import as_runner_data
from runner.train.fits import check_fits
from runner.train.module import RunnerModule, output_shape
from runner.train.reload import load_checkpoint_of
from runner.train.trainer import lightning_refusal, trainer_arguments, trainer_placement

log = logging.getLogger("runner")


def evaluate(
    module: RunnerModule,
    data: InMemoryData,
    trainer: TrainerSpec,
    placement: dict[str, Any],
    trackers: Trackers,
    split: str = "test",
    logs: str = "test",
) -> dict[str, float]:
    """The module's metrics on one split of `data`, named `<split>/<metric>`; file loggers
    write into `logs/<logs>/`, trackers into the run's tracker run."""
    devices = placement["devices"] if isinstance(placement["devices"], list) else 1
    args = trainer_arguments(trainer, manual=not module.automatic_optimization)
    # Lightning tests with test_step and logs `test/…`: other splits are served as the test one.
    view = _AsTest(data, split) if split != "test" else data
    try:
        evaluator = pl.Trainer(
            **args,
            accelerator=placement["accelerator"],
            devices=devices,
            precision=placement["precision"],
            logger=trackers.loggers(version=logs),
            enable_progress_bar=False,
            enable_model_summary=False,
            enable_checkpointing=False,
        )
        results = evaluator.test(module, datamodule=view, verbose=False)
    except Exception as e:
        refusal = lightning_refusal(e, trainer)
        if refusal is None:
            raise
        raise refusal from e
    if not (results and results[0]):
        raise ConfigError([_empty_split(split)])
    return {f"{split}/{k.removeprefix('test/')}": float(v) for k, v in results[0].items()}


def _empty_split(split: str) -> str:
    if split == "test":
        return "data.test_fraction: the test split of this data has no samples to evaluate"
    return (
        f"eval.split: the {split} split of this data has no samples to evaluate (with "
        f"data.{split}_fraction=0 it has none); allowed: another split, e.g. eval.split=test"
    )


class _AsTest(pl.LightningDataModule):
    """`data` with `split` (unshuffled) in the place of its test split."""

    def __init__(self, data: Any, split: str):
        super().__init__()
        self.data, self.split = data, split

    def setup(self, stage: str | None = None) -> None:
        self.data.setup(stage)

    def test_dataloader(self) -> Any:
        return self.data.loader(self.split)

    def transfer_batch_to_device(self, batch: Any, device: Any, dataloader_idx: int) -> Any:
        return self.data.transfer_batch_to_device(batch, device, dataloader_idx)


def eval_task(spec: RunSpec, run_dir: Path) -> dict[str, Any]:
    """task=eval: load `ckpt_path` safely and evaluate it on a split (`eval.split`, test by
    default) of the data it was trained on, or of the data given on the command line."""
    training = spec.training
    assert training is not None  # parse_run parses it for task=eval
    module = load_checkpoint_of(spec)
    trained = module.hparams["config"]
    data_section, origin = _data_section(spec, training, trained)
    data = as_runner_data(instantiate(data_section))
    if module.preprocessing is not None and hasattr(data, "use_preprocessing"):
        data.use_preprocessing(module.preprocessing)  # the model's, as task=predict applies it
    if isinstance(data, RandomData):  # its teacher network answers in the model's shape
        data.output_shape = output_shape(module.net, trained["model"]["input_shape"])[1:]
    _check_fits(module, data, origin)
    device = resolve_device(spec.device)
    log.info("device: %s", device.reason)
    module = module.to(device.device)
    placement = trainer_placement(spec.device, device)
    split = spec.eval.split
    log.info("eval: %s on the %s split of %s", spec.ckpt_path, split, origin)
    overlap = overlap_warning(trained["data"], data_section, split)
    if overlap is not None:
        log.warning("eval: warning: %s", overlap)
    trackers = Trackers(training.loggers, run_dir, task="eval")
    trackers.start()
    try:
        metrics = evaluate(
            module, data, training.trainer, placement, trackers, split=split, logs=f"eval-{split}"
        )
    except BaseException as e:
        trackers.finish(ok=False, interrupted=not isinstance(e, Exception), result=ended(e))
        raise
    log.info("eval: %s", ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
    result = {
        "task": "eval",
        "source": str(spec.ckpt_path),
        "split": split,
        "data": data_section,
        "metrics": metrics,
        **({"warnings": [overlap]} if overlap is not None else {}),
    }
    trackers.finish(ok=True, result=result)
    return result


def _data_section(
    spec: RunSpec, training: TrainingSpec, trained: dict[str, Any]
) -> tuple[dict[str, Any], str]:
    """The data to evaluate on: the checkpoint's own, unless this command chose other data
    (eval.data, resolved by runner.config.spec). Interpolations in a chosen section
    (`${model.input_shape}`, `${seed}`) resolve against the checkpoint's model."""
    if spec.eval.data != "given":
        return dict(trained["data"]), "the data it was trained on"
    context = OmegaConf.create({**trained, "data": training.data.template, "seed": spec.seed})
    return plain(context)["data"], "the data given here"


def _check_fits(module: RunnerModule, data: InMemoryData, origin: str) -> None:
    """The data must be of the checkpoint's kind (classification or regression), sample shape
    and targets (runner.train.fits)."""
    trained = module.hparams["config"]
    kind = module.hparams.get("task", "regression")
    if data.task != kind:
        raise ConfigError(
            [
                f"data: {origin} is {data.task} data, but the checkpoint's model was trained "
                f"for {kind} (data={_name(trained['data'])}); choose data of the same kind"
            ]
        )
    expected = trained["model"]["input_shape"]
    check_fits(data, module.net, expected, origin, model="the checkpoint's model.input_shape")


def _name(data: dict[str, Any]) -> str:
    """A data section's class name, lowercased, as a hint (`digits`, `randomdata`)."""
    return str(data.get("_target_", "?")).rsplit(".", 1)[-1].lower()
