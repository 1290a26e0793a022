"""A vectorized group through the Python API: members equal to their runs alone, and the
reasons a job is kept out of a group (it then runs alone: never a wrong result)."""

import pytest
import torch

import runner
from runner.config.spec import parse_run
from runner.params.tensors import distinct_parameters
from runner.run import run
from runner.train.vector_chain import Chain
from runner.train.vector_fit import GroupFit
from runner.train.vector_loop import fit
from runner.train.vector_members import group_key, make_member, member_refusal, refusal

JOBS = [
    ("init=xavier", "seed=0", "optim.optimizer.lr=0.05"),
    ("init=normal", "seed=1", "optim.optimizer.lr=0.2"),
]
COMMON = ("+optim.optimizer.momentum=0.9",)
RGNET = ("model=rgnet", "trainer.max_epochs=2")


@pytest.mark.parametrize(
    "model",
    [
        RGNET,
        ("model=mlp", "data=digits", "trainer.max_epochs=1"),  # the chain's cross-entropy
        ("model=shared", "trainer.max_epochs=2"),  # one Linear at two places: one parameter
        pytest.param(
            ("model=bn_lenet", "data=digits_images", "trainer.max_epochs=1"),
            marks=pytest.mark.slow,
        ),
    ],
)
def test_members_trained_together_equal_their_runs_alone(tmp_path, model):
    _members_equal_their_runs_alone(tmp_path, model, "device=cpu")


@pytest.mark.gpu
@pytest.mark.parametrize(
    "model", [RGNET, ("model=bn_lenet", "data=digits_images", "trainer.max_epochs=1")]
)
def test_members_on_a_gpu_equal_their_runs_alone_there(tmp_path, model):
    # cuDNN convolves in TF32 by default on Ampere and later: 10 mantissa bits, so a CNN's
    # members and runs alone agree to about 1e-3 there (a wrong member differs by far more).
    _members_equal_their_runs_alone(tmp_path, model, "device=gpu", conv_tolerance=(1e-2, 1e-3))


def _members_equal_their_runs_alone(
    tmp_path, model, device, conv_tolerance: tuple[float, float] = (1e-4, 1e-5)
):
    configs = [runner.compose([*model, *COMMON, device, *job]) for job in JOBS]
    members = [make_member(parse_run(cfg), n) for n, cfg in enumerate(configs)]
    assert len({group_key(m) for m in members}) == 1
    group = GroupFit(members)
    assert isinstance(group.stacked, torch.nn.Module), group.stacked  # not vmap's path
    fit(group)
    # a chain keeps its hand-written backward: the first batch's check found it right
    assert not isinstance(group.stacked, Chain) or group.stacked.manual
    for n, (cfg, member) in enumerate(zip(configs, members, strict=True)):
        alone = run(cfg, tmp_path / str(n))
        net = runner.load(alone["checkpoints"]["last"]).net
        # Batched kernels sum in another order: the chain's Linear layers stay within the
        # issue's round-off bound; a CNN's convolutions and BatchNorm's running statistics
        # (batch means) drift further over its steps, to about 1e-5 of their size.
        loose = any(isinstance(m, torch.nn.modules.conv._ConvNd) for m in net.modules())
        for key, value in net.state_dict().items():
            rtol, atol = conv_tolerance if loose else (1e-5, 1e-6)
            got = member.module.net.state_dict()[key].cpu()
            torch.testing.assert_close(got, value, rtol=rtol, atol=atol)
        shared = [names for names, _ in distinct_parameters(member.module.net) if len(names) > 1]
        assert shared == [names for names, _ in distinct_parameters(net) if len(names) > 1]
        assert group.records[n].metrics["val/loss"] == pytest.approx(
            alone["metrics"]["val/loss"], rel=1e-5 if not loose else conv_tolerance[0]
        )


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        (("trainer.gradient_clip_val=1.0",), "trainer.gradient_clip_val=1.0 is not vectorized"),
        (("callbacks=early_stopping",), "it has callbacks of its own"),
        (
            ("trainer.steps_per_batch=4",),
            "trainer.steps_per_batch, checkpoint_every_n_steps or compile",
        ),
        (("task=inspect",), "task=inspect: only training is vectorized"),
    ],
)
def test_a_job_is_kept_out_before_anything_is_built(overrides, reason):
    try:
        spec = parse_run(runner.compose(["model=rgnet", *overrides]))
    except runner.ConfigError as e:  # an option this checkout lacks: say so, not pass
        pytest.fail(str(e))
    assert reason in (refusal(spec) or "")


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        (("model=bn_lenet", "data=digits_images"), None),  # BatchNorm: statistics per member
        (("model=mydense",), None),
        (
            (
                "model=rgnet",
                "imports=[tests.user_layers]",
                "model.net=[{type: Linear, in_features: 4, out_features: 1}, {type: tests.user_layers.Scale, factor: 2.0}]",
            ),
            "layer '1' is user code (Scale)",
        ),
        (
            (
                "model=rgnet",
                "model.net=[{type: Linear, in_features: 4, out_features: 8}, {type: Dropout, p: 0.5}, {type: Linear, in_features: 8, out_features: 1}]",
            ),
            "layer '1' (Dropout) draws random numbers in training",
        ),
        (
            ("model=rgnet", "optim.optimizer._target_=torch.optim.RMSprop"),
            "RMSprop is not vectorized",
        ),
    ],
)
def test_a_built_job_is_kept_out_for_its_layers_or_optimizer(overrides, reason):
    member = make_member(parse_run(runner.compose(list(overrides))), 0)
    if reason is None:
        assert member_refusal(member) is None  # the chapter's layers, BatchNorm vectorize
    else:
        assert reason in (member_refusal(member) or "")


def test_a_member_that_turns_non_finite_stops_before_that_step_and_keeps_last_good(tmp_path):
    from runner.trackers.tracking import Trackers
    from runner.train.failures import NonFiniteTraining
    from runner.train.vector_finish import Trained, finish

    configs = [runner.compose([*RGNET, *COMMON, "device=cpu", *job]) for job in JOBS]
    members = [make_member(parse_run(cfg), n) for n, cfg in enumerate(configs)]
    X, _ = members[1].data.splits["train"]
    X[100] = float("inf")  # one poisoned sample: member 1's loss turns inf when it is drawn
    group = GroupFit(members)
    seconds = fit(group)
    record = group.records[1]
    assert record.bad is not None and record.bad["step"] > 0
    frozen = members[1].module.net.state_dict()
    trained = Trained(members[1], record, group, seconds, [0, 1])
    spec = members[1].spec
    with pytest.raises(NonFiniteTraining) as stopped:
        finish(trained, spec, tmp_path, Trackers(spec.training.loggers, tmp_path))
    saved = tmp_path / "checkpoints" / "last-good.ckpt"
    assert f"at optimizer step {record.bad['step']}: first in " in str(stopped.value)
    assert f"the weights before this step are saved in {saved}" in str(stopped.value)
    for key, value in runner.load(saved).net.state_dict().items():
        assert torch.equal(value, frozen[key])
    assert group.records[0].bad is None and group.records[0].epochs == 2  # the other went on


MERGED = (
    "model.net=[{graph: [{name: a, type: Linear, out_features: 8}, "
    "{name: b, type: Linear, out_features: 8, in: x}, {op: %s, in: [a, b]}]}, "
    "{type: ReLU}, {type: Linear, out_features: 10}]"
)


def test_graphs_that_differ_only_in_an_operation_are_not_one_group():
    # add and mul leave the same modules and parameter shapes (and the same repr): grouped,
    # the second job would train the first one's network.
    built = [
        make_member(parse_run(runner.compose(["device=cpu", MERGED % op])), n)
        for n, op in enumerate(["add", "mul", "add"])
    ]
    keys = [group_key(m) for m in built]
    assert keys[0] != keys[1]
    assert keys[0] == keys[2]


def test_a_member_whose_validation_loss_is_nan_keeps_its_best_checkpoint_as_alone(tmp_path):
    # stats.on_nan=warn trains on through NaN; Lightning's ModelCheckpoint ranks a NaN score
    # as +inf and keeps the first epoch's checkpoint as the best.
    common = ("device=cpu", "trainer.max_epochs=1", "stats.on_nan=warn", "report=false")
    configs = [runner.compose([*common, f"optim.optimizer.lr={lr}"]) for lr in (0.1, 1e30)]
    members = [make_member(parse_run(cfg), n) for n, cfg in enumerate(configs)]
    group = GroupFit(members)
    fit(group)
    alone = run(configs[1], tmp_path / "alone")
    assert alone["checkpoints"]["best"] != ""
    best = group.records[1].best
    assert best is not None and best.score == float("inf")
