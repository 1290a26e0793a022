"""The callbacks group: Lightning callbacks of the user's choosing, after the runner's own,
checked before anything is built."""

import csv

import pytest
from omegaconf import OmegaConf

import runner
from runner import ConfigError
from runner.run import run
from tests.user_layers import EpochCounter


def train(tmp_path, *overrides):
    return run(runner.compose(["device=cpu", "stats=off", *overrides]), tmp_path)


def test_early_stopping_stops_a_run_whose_val_loss_stalls(tmp_path):
    # lr=0: val/loss never improves; patience 1 ends the run after its second epoch.
    result = train(
        tmp_path,
        "callbacks=early_stopping",
        "callbacks.early_stopping.patience=1",
        "optim.optimizer.lr=0",
    )
    assert result["epochs"] == 2 and result["global_step"] == 14
    assert result["verification"]["ok"] and "test/loss" in result["metrics"]


def test_options_combine_and_the_users_own_runs_alongside(tmp_path):
    EpochCounter.seen.clear()
    result = train(
        tmp_path,
        "callbacks=[early_stopping,lr_monitor]",
        "+callbacks.mine._target_=tests.user_layers.EpochCounter",
        "+callbacks.mine.label=counted",
        "trainer.max_epochs=3",
    )
    assert result["epochs"] == 3 and EpochCounter.seen == [0, 1, 2]
    with open(tmp_path / "logs" / "metrics.csv") as f:
        assert any(row.get("lr-SGD") for row in csv.DictReader(f))  # LearningRateMonitor


def test_callback_mistakes_are_reported_together(tmp_path):
    with pytest.raises(ConfigError) as info:
        train(
            tmp_path,
            "data=random",
            "callbacks=[early_stopping]",
            "callbacks.early_stopping.monitor=val/acc",
            "+callbacks.early_stopping.patiense=2",
            "+callbacks.net._target_=torch.nn.Linear",
            "+callbacks.typo._target_=pytorch_lightning.callbacks.EarlyStoping",
        )
    problems = info.value.problems
    assert problems[0].startswith(
        "callbacks.early_stopping.patiense: EarlyStopping takes no argument 'patiense'; "
        "allowed: check_finite, "
    )
    assert problems[0].endswith("did you mean 'patience'?")
    assert problems[1:] == [
        "callbacks.early_stopping.monitor: the run logs no 'val/acc'; it logs: train/loss, val/loss",
        "callbacks.net._target_: not a Lightning callback; got 'torch.nn.Linear', the class "
        "torch.nn.modules.linear.Linear; allowed: a Lightning callback",
        problems[3],
    ]
    assert problems[3].startswith("callbacks.typo._target_: cannot import ")
    assert problems[3].endswith("did you mean 'pytorch_lightning.callbacks.EarlyStopping'?")


def test_the_trainer_group_cannot_set_callbacks_and_says_where(compose, tmp_path):
    with pytest.raises(ConfigError) as info:
        run(runner.compose(["+trainer.callbacks=[]"]), tmp_path)
    assert info.value.problems == [
        "trainer.callbacks: set by the callbacks group (callbacks=[early_stopping,lr_monitor]), "
        "not by the trainer group"
    ]


def test_every_callbacks_option_composes_and_monitors_a_logged_metric(compose):
    from runner.config.callbacks import check_callbacks
    from runner.errors import Problems
    from runner.testing.combinations import options

    for option in options("callbacks"):
        cfg = runner.compose([f"callbacks={option}", "data=digits"])
        problems = Problems()
        section = OmegaConf.to_container(cfg, resolve=True)
        check_callbacks(section["callbacks"], section["data"], section.get("trainer"), problems)
        assert not problems.items, (option, problems.items)


def test_every_callbacks_option_instantiates_a_lightning_callback(compose):
    import pytorch_lightning as pl
    from hydra.utils import instantiate

    from runner.testing.combinations import options

    for option in options("callbacks"):
        section = compose(f"callbacks={option}").callbacks or {}
        made = [instantiate(section[name]) for name in section]
        assert all(isinstance(c, pl.Callback) for c in made), option


def test_rich_summary_shows_the_blocks_when_training_starts(cli):
    done = cli("device=cpu", "trainer.max_epochs=1", "model=rgnet", "callbacks=rich_summary")
    assert done.returncode == 0, done.stderr[-2000:]
    # A report, so on stdout: the blocks two levels deep, with their parameter counts.
    assert "net.0" in done.stdout and "Total params" in done.stdout


def test_hooks_nobody_implements_are_skipped_and_the_implemented_ones_still_run(tmp_path):
    import pytorch_lightning as pl
    from hydra.utils import instantiate

    from runner.train.callbacks.checkpoints import LastCheckpoint
    from runner.train.callbacks.lifecycle import skip_empty_hooks

    class CountsBatches(pl.Callback):
        batches = 0

        def on_train_batch_end(self, *args) -> None:
            self.batches += 1

    counter, last = CountsBatches(), LastCheckpoint(tmp_path)
    cfg = runner.compose(["device=cpu", "model=mlp"])
    module = runner.build(cfg)
    data = instantiate(cfg.data)
    data.output_shape = (10,)  # mlp's output: random targets of that shape
    trainer = pl.Trainer(
        max_epochs=1,
        callbacks=[counter, last],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    skip_empty_hooks(trainer, module)
    assert counter.on_before_backward is None and counter.on_train_batch_start is None
    assert callable(counter.on_train_batch_end) and callable(last.on_train_batch_end)
    assert module.on_before_zero_grad is None and callable(module.on_train_batch_end)
    assert callable(module.on_validation_batch_start)  # Lightning reads its signature
    assert callable(pl.Callback().on_before_backward)  # instances only, not the classes
    trainer.fit(module, datamodule=data)
    assert counter.batches == trainer.global_step > 0
    assert (tmp_path / "last.ckpt").is_file()
