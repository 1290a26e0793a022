"""The LightningModule around a compiled net: loss, metrics, optimizer and schedule from config.

Imports Lightning, so only training paths load it (`task=inspect` does not).
"""

import logging
import warnings
from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch.nn import functional as F

from runner.checkpoint.preprocessing import Preprocessing
from runner.checkpoint.resume import carry_over
from runner.config.data import LEARNING_TASKS
from runner.config.sections import DEFAULT_OBJECTIVE, parse_optim, parse_trainer
from runner.model.assemble import build_net


def _quiet_lightning() -> None:
    """Keep the stage log readable: Lightning's banners and tips say nothing about the run.
    Done on import, so DDP workers (which import this module to unpickle it) are quiet too."""
    for name in (
        "pytorch_lightning.utilities.rank_zero",
        "lightning.pytorch.utilities.rank_zero",
        "lightning_fabric.utilities.distributed",
    ):
        logging.getLogger(name).setLevel(logging.WARNING)
    # Lightning 2.6 on torch 2.13 calls a deprecated pytree API: not ours to fix or show.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    # A resumed run writes into its own new directory by design; Lightning warns every time.
    warnings.filterwarnings("ignore", message=r"The dirpath has changed from")
    # Lightning's interval for its own step logging, which the runner does not use: the module
    # writes every log_every_n_steps optimizer steps itself, however few batches an epoch has.
    warnings.filterwarnings("ignore", message=r"The number of training batches \(\d+\) is smaller")


_quiet_lightning()


class RunnerModule(pl.LightningModule):
    """Holds the compiled network as `.net`. Its hyperparameters are the whole resolved config
    as plain containers and the learning task, so a checkpoint describes itself.

    `task` picks the loss: mean squared error for regression, cross-entropy (plus accuracy)
    for classification. `device` is where the net is built (default: what the config's device
    group picks); Lightning moves it later if needed.
    """

    def __init__(
        self,
        config: dict[str, Any],
        task: str = "regression",
        device: torch.device | str | None = None,
        net: torch.nn.Module | None = None,
        preprocessing: Preprocessing | None = None,
    ):
        super().__init__()
        assert task in LEARNING_TASKS, task
        self.save_hyperparameters({"config": config, "task": task})
        # What the data fitted on its training split; set by training, read back by load.
        self.preprocessing: Preprocessing | None = None
        if preprocessing is not None:
            self.carry(preprocessing)
        # `net`: one already built from this config (runner.checkpoint.restore rebuilt it).
        self.net = net if net is not None else build_net(OmegaConf.create(config), device=device)
        self.classification = task == "classification"
        # The same parse as the run's spec: a module rebuilt from a checkpoint reads its
        # embedded config as the run that wrote it did.
        self.optim = parse_optim(config["optim"])
        trainer = parse_trainer(config.get("trainer") or {})
        # Fast mode: each Lightning step runs `steps_per_batch` optimizer steps over a chunk of
        # minibatches (manual optimization), paying Lightning's per-step cost once per chunk.
        self.steps_per_batch = trainer.steps_per_batch
        self.automatic_optimization = self.steps_per_batch == 1
        self.log_every = trainer.log_every_n_steps  # in optimizer steps
        self.clip = trainer.clip
        # trainer.compile: the training steps' forward, compiled (runner.train.compiled); a
        # function, not a module, so the state_dict keeps its keys. None: eager.
        self.compiled: Callable[[torch.Tensor], torch.Tensor] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def carry(self, preprocessing: Preprocessing) -> None:
        """Save `preprocessing` with the model: in its checkpoints (the hyperparameters)."""
        self.preprocessing = preprocessing
        self.hparams["preprocessing"] = preprocessing.to_dict()

    @torch.no_grad()
    def predict(self, raw: Any) -> list[Any]:
        """Predictions for raw inputs, preprocessed as in training: class names for a
        classifier, values for regression. `raw`: a pandas DataFrame with the training
        columns (data=table), or an array (n, *input_shape) of raw numbers (digits' pixels).
        A model trained on data without preprocessing takes inputs as they are."""
        prep = self.preprocessing
        x = prep.encode(raw) if prep is not None else torch.as_tensor(raw, dtype=torch.float32)
        was_training = self.net.training
        self.net.eval()
        out = self.net(x.to(self.device)).cpu()
        self.net.train(was_training)
        if prep is not None:
            return prep.labels(out)
        return out.argmax(-1).tolist() if self.classification else out.squeeze(-1).tolist()

    def _metrics(
        self, batch: tuple[torch.Tensor, torch.Tensor], train: bool = False
    ) -> dict[str, torch.Tensor]:
        x, y = batch
        out = self.compiled(x) if train and self.compiled is not None else self.net(x)
        if not self.classification:
            return {"loss": F.mse_loss(out, y)}
        return {"loss": F.cross_entropy(out, y), "acc": (out.argmax(-1) == y).float().mean()}

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor | None:
        if self.automatic_optimization:
            metrics = self._metrics(batch, train=True)
            self._accumulate(metrics)  # before the optimizer step: the guard reads the loss
            return metrics["loss"]
        optimizer = self.optimizers()
        clip_value, clip_algorithm = self.clip
        for minibatch in batch:  # a chunk: every minibatch is one optimizer step
            metrics = self._metrics(minibatch, train=True)
            self._accumulate(metrics)
            optimizer.zero_grad()  # type: ignore[union-attr]
            self.manual_backward(metrics["loss"])
            if clip_value is not None:
                self.clip_gradients(optimizer, clip_value, clip_algorithm)  # type: ignore[arg-type]
            optimizer.step()  # type: ignore[union-attr]
        return None

    def _accumulate(self, metrics: dict[str, torch.Tensor]) -> None:
        # Summed on the device and logged every log_every_n_steps (and per epoch): a self.log
        # on every step costs about as much as a small model's whole step.
        self.running.add(metrics)
        # For the NaN/Inf guard, which takes it at the optimizer step: every micro-batch's
        # loss counts when gradients accumulate over several.
        loss, before = metrics["loss"].detach(), self.running.step_loss
        self.running.step_loss = loss if before is None else before + loss

    def on_train_start(self) -> None:
        self.running = Running(logged_at=self.trainer.global_step)

    def on_train_epoch_start(self) -> None:
        self.running.new_epoch()

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        # In fast mode this is a chunk boundary: logging happens only here.
        if self.trainer.global_step - self.running.logged_at >= self.log_every:
            self._log_running()

    def on_train_epoch_end(self) -> None:
        self.running.flush(self.trainer.global_step)  # the epoch's last steps count in its mean
        means = {f"train/{k}": v for k, v in self.running.epoch_means().items()}
        self.log_dict(means, prog_bar=True, sync_dist=self.trainer.world_size > 1)
        if not self.automatic_optimization:  # Lightning steps no scheduler in manual mode
            scheduler = self.lr_schedulers()
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(self.trainer.callback_metrics[DEFAULT_OBJECTIVE])
            elif scheduler is not None:
                scheduler.step()  # type: ignore[union-attr]

    def _log_running(self) -> None:
        """Write the mean of the steps since the last write, at the optimizer step count.

        Straight to the loggers: Lightning's own step logging counts Lightning batches, which
        in fast mode are chunks of several optimizer steps. One host transfer per write.
        """
        means = self.running.flush(self.trainer.global_step)
        if not means or not self.trainer.is_global_zero:
            return
        values = torch.stack(list(means.values())).tolist()
        self.running.latest = {f"train/{n}": v for n, v in zip(means, values, strict=True)}
        row = {f"{name}_step": v for name, v in self.running.latest.items()}
        for logger in self.loggers:
            logger.log_metrics(row, step=self.trainer.global_step)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._log_eval(batch, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._log_eval(batch, "test")

    def _log_eval(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> None:
        metrics = {f"{stage}/{k}": v for k, v in self._metrics(batch).items()}
        # Epoch means over all batches (and all ranks under DDP).
        self.log_dict(metrics, on_epoch=True, prog_bar=True, sync_dist=self.trainer.world_size > 1)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Resuming (trainer.fit(ckpt_path=...)): the config's optimizer settings win.
        carry_over(checkpoint, self.optim, self.automatic_optimization)

    def configure_optimizers(self) -> Any:
        # `self.parameters()` lists each tensor once: a tied group is one optimizer entry.
        optimizer = instantiate(self.optim.optimizer)(params=self.parameters())
        if not self.optim.scheduler:
            return optimizer
        scheduler = instantiate(self.optim.scheduler)(optimizer)
        schedule = {"scheduler": scheduler, "interval": "epoch"}
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            schedule["monitor"] = DEFAULT_OBJECTIVE
        return {"optimizer": optimizer, "lr_scheduler": schedule}


class Running:
    """Training metrics summed on the device between logs and over the epoch. A plain object:
    attribute writes on an nn.Module cost microseconds, on every step."""

    def __init__(self, logged_at: int):
        self.logged_at = logged_at
        self.step_loss: torch.Tensor | None = None  # since the last optimizer step
        self.latest: dict[str, float] = {}  # the last write's means, for the progress bar
        self.sums: dict[str, torch.Tensor] = {}
        self.steps = 0
        self.new_epoch()

    def new_epoch(self) -> None:
        self.epoch_sums: dict[str, torch.Tensor] = {}
        self.epoch_steps = 0

    def add(self, metrics: dict[str, torch.Tensor]) -> None:
        for name, value in metrics.items():
            total = self.sums.get(name)
            if total is None:
                self.sums[name] = value.detach().clone()
            else:
                total.add_(value.detach())
        self.steps += 1

    def flush(self, global_step: int) -> dict[str, torch.Tensor]:
        """Means since the last flush; folds them into the epoch's sums."""
        means = (
            {name: total / self.steps for name, total in self.sums.items()} if self.steps else {}
        )
        for name, total in self.sums.items():
            previous = self.epoch_sums.get(name)
            self.epoch_sums[name] = total if previous is None else previous + total
        self.epoch_steps += self.steps
        self.sums, self.steps, self.logged_at = {}, 0, global_step
        return means

    def epoch_means(self) -> dict[str, torch.Tensor]:
        return {k: v / max(self.epoch_steps, 1) for k, v in self.epoch_sums.items()}


def output_shape(
    net: torch.nn.Module, input_shape: tuple[int, ...] | list[int], batch: int = 1
) -> tuple[int, ...]:
    """The shape of `net`'s output for a batch of `batch` zero samples of `input_shape`, in
    eval mode, on the net's device and dtype (training mode is restored after)."""
    param = next(net.parameters())
    was_training = net.training
    net.eval()
    with torch.no_grad():
        out = net(torch.zeros(batch, *input_shape, device=param.device, dtype=param.dtype))
    net.train(was_training)
    return tuple(out.shape)


def data_task(cfg: DictConfig | dict[str, Any]) -> str:
    """The learning task of the configured data (runner.config.data.data_task)."""
    from runner.config.data import data_task as task_of

    return task_of(cfg["data"])


def build(cfg: DictConfig) -> RunnerModule:
    """Compile the config into a LightningModule whose `.net` is the model.

    Raises ConfigError for any problem in the config, all of them at once.
    """
    from runner.config.tree import plain

    if not isinstance(cfg, DictConfig):
        raise TypeError(
            f"runner.build: cfg is what runner.compose returns; got {type(cfg).__name__}"
        )
    return RunnerModule(plain(cfg), task=data_task(cfg))
