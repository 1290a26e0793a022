"""The whole config parsed once into a typed spec: the training sections for task=train and
eval, none for inspect, and the same parse for a module rebuilt from a checkpoint's config."""

import pytest

import runner
from runner.config.sections import RUNNER_TRAINER_KEYS, TrainerSpec, parse_trainer
from runner.config.spec import parse_run
from runner.train.module import RunnerModule


def test_a_training_run_gets_every_section_typed(compose):
    spec = parse_run(
        compose(
            "model=mlp",
            "data=digits",
            "optim=adam",
            "trainer.steps_per_batch=4",
            "trainer.compile=true",
            "stats.on_nan=warn",
            "callbacks=early_stopping",
            "logger=[csv,none]",
        )
    )
    training = spec.training
    assert training is not None
    assert training.data.target == "runner.train.data.Digits"
    assert training.optim.optimizer["_target_"] == "torch.optim.Adam"
    assert training.optim.scheduler is None
    assert training.trainer.steps_per_batch == 4
    assert training.trainer.compile == "default"  # true: torch.compile's default mode
    assert not set(RUNNER_TRAINER_KEYS) & set(training.trainer.lightning)
    assert training.trainer.lightning["max_epochs"] == 10
    assert training.stats.on_nan == "warn"
    assert [name for name, _ in training.callbacks] == ["early_stopping"]
    assert list(training.loggers) == ["csv"]
    assert spec.config["model"]["input_shape"] == [64]  # the composed config, resolved


def test_inspect_parses_no_training_sections(compose):
    spec = parse_run(compose("task=inspect", "model=rgnet"))
    assert spec.training is None and spec.ckpt_path is None


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [((), "checkpoint"), (("data=digits",), "given"), (("eval.data=given",), "given")],
)
def test_eval_data_auto_means_given_only_when_the_data_differs(
    compose, tmp_path, overrides, expected
):
    (tmp_path / "x.ckpt").write_bytes(b"")  # parsing looks only for the file
    spec = parse_run(compose("task=eval", f"ckpt_path={tmp_path / 'x.ckpt'}", *overrides))
    assert spec.eval.data == expected


def test_the_data_template_keeps_its_interpolations(compose):
    spec = parse_run(compose("data=random"))
    assert spec.training is not None
    template = spec.training.data.template
    assert any("${" in str(v) for v in template.values()), template
    assert not any("${" in str(v) for v in spec.training.data.section.values())


def test_a_module_rebuilt_from_its_config_reads_it_as_the_run_did(compose):
    cfg = compose("model=mlp", "trainer.steps_per_batch=3", "trainer.log_every_n_steps=7")
    spec = parse_run(cfg)
    assert spec.training is not None
    module = RunnerModule(spec.config)  # what runner.load does with a checkpoint's config
    assert module.steps_per_batch == spec.training.trainer.steps_per_batch == 3
    assert module.log_every == spec.training.trainer.log_every_n_steps == 7
    assert module.optim == spec.training.optim
    assert runner.build(cfg).steps_per_batch == 3


def test_the_trainer_defaults_where_lightning_has_them():
    trainer = parse_trainer({"max_epochs": 2, "compile": False})
    assert trainer == TrainerSpec(lightning={"max_epochs": 2})
    assert trainer.log_every_n_steps == 50 and trainer.max_steps is None
