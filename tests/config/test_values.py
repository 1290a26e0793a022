"""Values are checked before anything runs, not only names and types: each bad value is one
problem naming its full config key, the value and what is allowed."""

import inspect
import math

import pytest
import torch

import runner
from runner import ConfigError
from runner.config.spec import parse_run

INSPECT = "task=inspect"
RULE = "init.rules=[{{init: {init}, args: {{{args}}}}}]"

# (overrides, the problem's config key, a fragment of its message). task=train unless said.
CASES = [
    # 1. initializer arguments: the table in runner.registry.initializers
    (
        [INSPECT, RULE.format(init="normal", args="std: -1")],
        "init.rules[0].args.std",
        "out of range for normal; got -1; allowed: std ≥ 0",
    ),
    (
        [INSPECT, RULE.format(init="uniform", args="a: 10, b: 0")],
        "init.rules[0].args.a",
        "an empty range for uniform; got a=10, b=0; allowed: a < b",
    ),
    (  # equal ends are an empty range too; b is the one written, a its default
        [INSPECT, RULE.format(init="uniform", args="b: 0")],
        "init.rules[0].args.b",
        "got a=0.0, b=0; allowed: a < b",
    ),
    (
        [INSPECT, RULE.format(init="trunc_normal", args="a: 2, b: -2")],
        "init.rules[0].args.a",
        "an empty range for trunc_normal",
    ),
    (
        [INSPECT, RULE.format(init="trunc_normal", args="std: 0")],
        "init.rules[0].args.std",
        "got 0; allowed: std > 0",
    ),
    (
        [INSPECT, RULE.format(init="kaiming_normal", args="mode: fan_x")],
        "init.rules[0].args.mode",
        "unknown mode for kaiming_normal; got 'fan_x'; allowed: fan_in, fan_out; did you mean 'fan_in'?",
    ),
    (
        [INSPECT, RULE.format(init="kaiming_uniform", args="nonlinearity: relu6")],
        "init.rules[0].args.nonlinearity",
        "got 'relu6'; allowed: conv1d, conv2d, conv3d, conv_transpose1d,",
    ),
    (
        [INSPECT, RULE.format(init="orthogonal", args="gain: -1")],
        "init.rules[0].args.gain",
        "out of range for orthogonal; got -1; allowed: gain ≥ 0",
    ),
    (
        [INSPECT, RULE.format(init="xavier_uniform", args="gain: -0.5")],
        "init.rules[0].args.gain",
        "allowed: gain ≥ 0",
    ),
    (
        [INSPECT, RULE.format(init="constant", args="value: nan")],
        "init.rules[0].args.value",
        "not a finite number; got nan; allowed: a finite number",
    ),
    (
        [INSPECT, RULE.format(init="normal", args="mean: -inf")],
        "init.rules[0].args.mean",
        "not a finite number; got -inf",
    ),
    (
        [INSPECT, "init.edits=[{param: 0.weight, value: inf}]"],
        "init.edits[0].value",
        "not a finite number; got inf",
    ),
    (
        [INSPECT, "init.edits=[{param: 0.weight, index: [], value: 1}]"],
        "init.edits[0].index",
        "an empty index; got []; allowed: one integer per leading dimension",
    ),
    (
        [INSPECT, "init.rules=[{init: os.remove}]"],
        "init.rules[0].init",
        "'os.remove' is not an initializer; got a built-in function; allowed: a Python function",
    ),
    (
        [INSPECT, "init.rules=[{init: torch.nn.Linear}]"],
        "init.rules[0].init",
        "is not an initializer; got the class Linear",
    ),
    (
        [INSPECT, "init.rules=[{init: math.pi}]"],
        "init.rules[0].init",
        "is not an initializer; got a float, which cannot be called",
    ),
    # 2. trainer values, as Lightning 2.6 means them
    (
        ["trainer.max_epochs=-2"],
        "trainer.max_epochs",
        "out of range; got -2; allowed: an integer ≥ 1, -1 (no epoch limit: max_steps decides) "
        "or null (Lightning's default: 1000, unless max_steps is set)",
    ),
    (["trainer.max_epochs=abc"], "trainer.max_epochs", "not an integer; got 'abc'"),
    (["trainer.max_epochs=0"], "trainer.max_epochs", "out of range; got 0"),
    (["trainer.max_steps=0"], "trainer.max_steps", "allowed: an integer ≥ 1 or -1 (no step limit)"),
    (
        ["trainer.gradient_clip_val=-1"],
        "trainer.gradient_clip_val",
        "out of range; got -1; allowed: a number ≥ 0 (0: no clipping) or null (no clipping)",
    ),
    (["trainer.gradient_clip_val=nan"], "trainer.gradient_clip_val", "not a finite number"),
    (["trainer.log_every_n_steps=0"], "trainer.log_every_n_steps", "out of range; got 0"),
    (["trainer.check_val_every_n_epoch=0"], "trainer.check_val_every_n_epoch", "got 0"),
    (["trainer.steps_per_batch=0"], "trainer.steps_per_batch", "out of range; got 0"),
    (["+trainer.accumulate_grad_batches=0"], "trainer.accumulate_grad_batches", "got 0"),
    (["trainer.checkpoint_every_n_steps=-1"], "trainer.checkpoint_every_n_steps", "got -1"),
    (["stats.stats=abc"], "stats.stats", "not a list; got 'abc'"),
    # 3. data: values, and the split sizes they give
    (["data.batch_size=0"], "data.batch_size", "out of range; got 0; allowed: an integer ≥ 1"),
    (["data.batch_size=2.5"], "data.batch_size", "not an integer; got 2.5"),
    (["data.num_samples=0"], "data.num_samples", "out of range; got 0"),
    (["data.val_fraction=1"], "data.val_fraction", "got 1; allowed: a number in [0, 1)"),
    (["data.test_fraction=-0.1"], "data.test_fraction", "out of range; got -0.1"),
    (["data.test_fraction=0"], "data.test_fraction", "allowed: a number in (0, 1)"),
    (
        ["data=synthetic", "data.val_fraction=0.6", "data.test_fraction=0.5"],
        "data.val_fraction",
        "leaves 0 training samples of 1000; got val_fraction=0.6, test_fraction=0.5",
    ),
    (
        ["data=digits", "data.val_fraction=0.0001"],
        "data.val_fraction",
        "gives 0 validation samples of 1797; got 0.0001; allowed: at least 0.000557 for 1797 "
        "samples, or 0 (no validation)",
    ),
    (
        ["data.num_samples=5"],
        "data.test_fraction",
        "gives 0 test samples of 5; got 0.1; allowed: at least 0.2 for 5 samples",
    ),
    (
        ["model=lenet", "data=digits_images", "data.val_fraction=0.9"],
        "data.val_fraction",
        "leaves 0 training samples of 1797; got val_fraction=0.9, test_fraction=0.15",
    ),
    (
        ["data.seed=-1"],
        "data.seed",
        "out of range; got -1; allowed: an integer in [0, 4294967295]",
    ),
    (["data=digits", "data.seed=1.5"], "data.seed", "not an integer; got 1.5"),
    (
        ["data=synthetic", "data.noise=-1"],
        "data.noise",
        "out of range; got -1; allowed: a number ≥ 0 (the standard deviation of the noise",
    ),
    (["data=synthetic", "data.noise=inf"], "data.noise", "not a finite number; got inf"),
    (["data=synthetic", "data.b=nan"], "data.b", "not a finite number; got nan; allowed: a number"),
    (
        ["data=synthetic", "data.w=[2.0,-inf]"],
        "data.w",
        "item 1 is not a finite number; got [2.0, -inf]; allowed: a list of one or more, each "
        "a number",
    ),
    (["data=synthetic", "data.w=[]"], "data.w", "an empty list; got []"),
    (["data=synthetic", "data.num_samples=-3"], "data.num_samples", "out of range; got -3"),
    (
        ["data.input_shape=[4,0]"],
        "data.input_shape",
        "item 1 is out of range; got [4, 0]; allowed: a list of one or more, each an integer ≥ 1",
    ),
    (["+data.hidden=0"], "data.hidden", "out of range; got 0; allowed: an integer ≥ 1 (the"),
    (["data=digits", "data.batch_size=-1"], "data.batch_size", "out of range; got -1"),
    (["data=digits", "data.val_fraction=nan"], "data.val_fraction", "not a finite number"),
    # 4. optimizer and scheduler
    (
        ["optim.optimizer._target_=torch.optim.Adamm"],
        "optim.optimizer._target_",
        "cannot import 'torch.optim.Adamm'; allowed: a torch.optim.Optimizer subclass (ASGD, ",
    ),
    (
        ["optim.optimizer._target_=torch.optim.Adamm"],
        "optim.optimizer._target_",
        "did you mean 'torch.optim.Adam'?",
    ),
    (
        ["optim.optimizer._target_=torch.nn.Linear"],
        "optim.optimizer._target_",
        "not a torch.optim.Optimizer subclass; got 'torch.nn.Linear'",
    ),
    (
        ["optim.optimizer._target_=os.system"],
        "optim.optimizer._target_",
        "not a torch.optim.Optimizer subclass; got 'os.system', which is not a class",
    ),
    (["optim.optimizer._partial_=false"], "optim.optimizer._partial_", "must be true"),
    (["+optim.optimiser=1"], "optim.optimiser", "unknown key; allowed: optimizer, scheduler"),
    (["optim.optimizer.lr=abc"], "optim.optimizer.lr", "not a number; got 'abc'"),
    (
        ["optim.optimizer.lr=-1"],
        "optim.optimizer.lr",
        "out of range; got -1; allowed: a number ≥ 0",
    ),
    (["+optim.optimizer.weight_decay=-0.1"], "optim.optimizer.weight_decay", "got -0.1"),
    (
        ["+optim.optimizer.momentum=1.5"],
        "optim.optimizer.momentum",
        "out of range; got 1.5; allowed: a number in [0, 1]",
    ),
    (
        ["optim=adam", "+optim.optimizer.betas=[0.9,1.5]"],
        "optim.optimizer.betas",
        "out of range; got [0.9, 1.5]; allowed: two numbers, each a number in [0, 1)",
    ),
    (
        ["optim=adam", "+optim.optimizer.betas=[0.9]"],
        "optim.optimizer.betas",
        "not a pair of numbers",
    ),
    (
        ["+optim.optimizer.params=[]"],
        "optim.optimizer.params",
        "SGD takes no argument 'params'",
    ),
    (
        ["optim.scheduler={_target_: torch.optim.lr_scheduler.StepLR, _partial_: true}"],
        "optim.scheduler.step_size",
        "StepLR needs 'step_size'; it is missing",
    ),
    (
        ["optim.scheduler={_target_: torch.optim.lr_scheduler.StepLr, _partial_: true}"],
        "optim.scheduler._target_",
        "did you mean 'torch.optim.lr_scheduler.StepLR'?",
    ),
    (
        ["optim.scheduler={_target_: torch.optim.SGD, _partial_: true}"],
        "optim.scheduler._target_",
        "not a torch.optim.lr_scheduler.LRScheduler subclass or ReduceLROnPlateau",
    ),
    # 5. device
    (
        ["device.devices=abc"],
        "device.devices",
        "not a device choice; got 'abc'; allowed: a positive integer (how many), a list of GPU "
        "indices such as [0, 1], auto, or -1 (every visible GPU)",
    ),
    ([INSPECT, "device.devices=0"], "device.devices", "not a device choice; got 0"),
    (["device.devices=[0,0]"], "device.devices", "a GPU listed twice"),
    (["device.devices=-1"], "device.devices", "GPUs asked for, but the run is on the CPU; got -1"),
    (
        ["device.strategy=foo"],
        "device.strategy",
        "unknown strategy; got 'foo'; allowed: one of Lightning's (auto, ddp, ",
    ),
    (["device.strategy=dpp_spawn"], "device.strategy", "did you mean 'ddp_spawn'?"),
    (["device.strategy=DDP"], "device.strategy", "got 'DDP'; allowed: one of Lightning's"),
    (["device.precision=16-mixed"], "device.precision", "'16-mixed' needs a GPU"),
    # 6. logger
    (["~stats"], "stats", "allowed: an option from conf/stats/, e.g. stats=default"),
    (
        ["+logger.csvv={}"],
        "logger.csvv",
        "unknown logger; allowed: csv, mlflow, tensorboard, wandb; did you",
    ),
    (["logger.csv=5"], "logger.csv", "expected a mapping or null; got 5"),
    # 7. model sizes
    (
        [INSPECT, "model.net.0.out_features=0"],
        "model.net[0].out_features",
        "not a size for Linear; got 0; allowed: an integer ≥ 1",
    ),
    ([INSPECT, "model=mydense", "model.net.1.units=-1"], "model.net[1].units", "got -1"),
    (
        [
            INSPECT,
            "model.net=[{type: Conv2d, in_channels: 1, out_channels: 2, kernel_size: [3, 0]}]",
        ],
        "model.net[0].kernel_size",
        "got [3, 0]; allowed: an integer ≥ 1, one per dimension",
    ),
    # 8. keys: full, never doubled
    (
        [INSPECT, "model.net=${oc.env:RUNNER_NO_SUCH_VARIABLE}"],
        "model.net",
        "cannot resolve the value: KeyError raised while resolving interpolation",
    ),
    ([INSPECT, "seed=${oc.env:RUNNER_NO_SUCH_VARIABLE}"], "seed", "cannot resolve the value"),
    (["trainer.max_epochs=${oc.env:RUNNER_NO_SUCH_VARIABLE}"], "trainer.max_epochs", "cannot"),
]


@pytest.mark.parametrize(("overrides", "key", "fragment"), CASES, ids=lambda x: str(x)[:60])
def test_a_bad_value_is_one_problem_at_its_key(overrides, key, fragment):
    with pytest.raises(ConfigError) as info:
        parse_run(runner.compose(["device=cpu", *overrides]))
    at_key = [p for p in info.value.problems if p.startswith(f"{key}: ")]
    assert at_key, info.value.problems
    assert any(fragment in p for p in at_key), at_key


def test_no_key_doubles_its_section(compose):
    with pytest.raises(ConfigError) as info:
        parse_run(compose(INSPECT, "model.net=${oc.env:RUNNER_NO_SUCH_VARIABLE}"))
    assert not any(p.startswith("model.model") for p in info.value.problems)


@pytest.mark.parametrize(
    "overrides",
    [
        ["model=linear", "data=synthetic", "optim=adamw", "init=kaiming", "device=cpu"],
        ["model=mlp", "data=digits", "optim=adam", "init=mixed", "device=cpu"],
        ["model=rgnet", "init=xavier", "device=ddp_cpu", "logger=none"],
        [
            "model=mydense",
            "init=custom",
            "stats=off",
            "trainer.max_epochs=-1",
            "trainer.max_steps=40",
            "device=cpu",
        ],
        ["init=normal", "trainer.max_epochs=null", "trainer.max_steps=5", "data.val_fraction=0"],
        ["trainer.gradient_clip_val=0", "trainer.checkpoint_every_n_steps=0"],
        ["device=cpu", "device.devices=auto", "device.strategy=ddp_spawn", "init=constant"],
    ],
)
def test_the_shipped_options_pass(overrides):
    assert parse_run(runner.compose(overrides)).task == "train"


def test_a_missing_gpu_is_reported_with_everything_else(monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    cfg = runner.compose(["device=gpu", "trainer.max_epochs=-2", "data.batch_size=0"])
    with pytest.raises(ConfigError) as info:
        parse_run(cfg)
    keys = [p.split(":")[0] for p in info.value.problems]
    assert keys == ["device.accelerator", "data.batch_size", "trainer.max_epochs"]


@pytest.mark.parametrize(
    ("devices", "problem"),
    [
        (
            "[0,3]",
            "device.devices: 2 GPU(s) are visible; got [0, 3]; allowed: 1–2 GPUs, indices 0–1",
        ),
        ("4", "device.devices: 2 GPU(s) are visible; got 4"),
        ("[1,0]", None),
        ("-1", None),
    ],
)
def test_gpus_asked_for_are_counted_against_the_visible_ones(monkeypatch, devices, problem):
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    monkeypatch.setattr("torch.cuda.device_count", lambda: 2)
    monkeypatch.setattr("torch.cuda.get_device_name", lambda i: "a fake GPU")
    cfg = runner.compose(["device=gpus", f"device.devices={devices}", "device.precision=16-mixed"])
    if problem is None:
        assert parse_run(cfg).device.precision == "16-mixed"
        return
    with pytest.raises(ConfigError) as info:
        parse_run(cfg)
    assert [p for p in info.value.problems if p.startswith(problem)], info.value.problems


def test_every_built_in_initializer_has_its_limits_stated():
    from runner.registry import initializers

    built_in = {
        name
        for name in initializers.initializer_names()
        if initializers.resolve_initializer(name).__module__ == initializers.__name__
    }
    assert built_in == set(initializers.LIMITS)


def test_the_nonlinearities_are_the_ones_calculate_gain_takes():
    from runner.registry.initializers import NONLINEARITIES

    assert "relu" in NONLINEARITIES and "leaky_relu" in NONLINEARITIES
    for name in NONLINEARITIES:
        torch.nn.init.calculate_gain(name)
    with pytest.raises(ValueError):
        torch.nn.init.calculate_gain("relu6")


def test_the_fixed_data_sizes_are_true():
    from runner.config.data import FIXED_SIZES
    from runner.train.data import Digits
    from runner.train.data_digit_images import DigitImages

    assert {
        "runner.train.data.Digits": len(Digits().make()[0]),
        "runner.train.data_digit_images.DigitImages": len(DigitImages().make()[0]),
    } == FIXED_SIZES


def test_the_split_sizes_are_computed_as_the_data_module_splits():
    from runner.train.data import SyntheticRegression

    data = SyntheticRegression(w=[1.0], b=0.0, num_samples=7, val_fraction=0.15, test_fraction=0.3)
    data.setup()
    sizes = {k: len(v[0]) for k, v in data.splits.items()}
    assert sizes == {"val": math.floor(0.15 * 7), "test": math.floor(0.3 * 7), "train": 4}
    overrides = ["data=synthetic", "data.num_samples=7", "data.val_fraction=0.1"]
    with pytest.raises(ConfigError, match=r"data.val_fraction: gives 0 validation samples of 7"):
        parse_run(runner.compose(["device=cpu", *overrides]))


CLI_CASES = [
    (
        ["task=inspect", "init.rules=[{init: normal, args: {std: -1}}]"],
        "init.rules[0].args.std: out of range for normal; got -1; allowed: std ≥ 0",
    ),
    (  # found when the rules meet the built model: the glob the user wrote comes back
        ["task=inspect", 'init.rules=[{param: "1.weigth", init: zeros}]'],
        "init.rules[0]: matches no parameter; got param='1.weigth'; the parameters are 0.bias,",
    ),
    (["task=inspect", "init.rules=[{init: os.remove}]"], "init.rules[0].init: 'os.remove'"),
    (["device=cpu", "trainer.max_epochs=-2"], "trainer.max_epochs: out of range; got -2"),
    (["device=cpu", "+logger.cvs={}"], "logger.cvs: unknown logger"),
    (
        ["device=cpu", "optim.optimizer._target_=torch.optim.Adamm"],
        "did you mean 'torch.optim.Adam'?",
    ),
    (
        ["task=inspect", "model.net=${oc.env:RUNNER_NO_SUCH_VARIABLE}"],
        "config error: model.net: cannot resolve the value",
    ),
]


@pytest.mark.parametrize(("args", "message"), CLI_CASES, ids=lambda x: str(x)[:60])
def test_the_cli_exits_2_naming_the_key_without_a_traceback(cli, args, message):
    result = cli(*args)
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_data_arguments_are_checked_by_their_annotated_list_types(compose):
    with pytest.raises(ConfigError) as refused:
        parse_run(
            compose("data=module", "data._target_=tests.user_data.Blobs", "+data.features=abc")
        )
    assert refused.value.problems == ["data.features: Blobs expects int for features; got 'abc'"]
    with pytest.raises(ConfigError) as refused:
        parse_run(compose("data=synthetic", "data.w=abc"))  # a list of numbers, each finite
    assert refused.value.problems == [
        "data.w: not a list of numbers; got 'abc'; allowed: a list of one or more, each a number"
    ]


def test_the_data_modules_own_value_checks_name_their_arguments():
    from hydra.utils import get_class

    from runner.config.arguments import signature_defaults
    from runner.config.data import CLASS_VALUES

    for dotted, checks in CLASS_VALUES.items():
        cls = get_class(dotted)
        assert f"{cls.__module__}.{cls.__qualname__}" == dotted
        params = inspect.signature(cls).parameters
        assert set(checks) <= set(params), dotted
        for key, default in signature_defaults(cls).items():  # the defaults pass their checks
            assert key not in checks or checks[key].problem(default) is None, (dotted, key)


def test_data_too_large_for_the_memory_is_refused_before_allocating(compose, monkeypatch):
    from runner.config import data

    monkeypatch.setattr(data, "host_memory_available", lambda: 2**30)  # 1 GiB
    with pytest.raises(ConfigError) as refused:
        parse_run(compose("data.num_samples=100000000"))  # 20 inputs + 1 target each
    assert refused.value.problems == [
        "data.num_samples: 100,000,000 samples of 21 values need about 15.6 GiB in memory (made "
        "and split), but 1.0 GiB are available; allowed: at most 6,391,320 samples here"
    ]
    parse_run(compose("data.num_samples=6000000"))


def test_a_run_that_can_never_end_or_never_start_is_refused(monkeypatch):
    """Nothing that ends training, or nodes that will never join: refused before the build
    (the first trained until killed, the second waited forever, deaf to SIGTERM)."""
    for name in ("NODE_RANK", "SLURM_NTASKS", "TORCHELASTIC_RUN_ID", "LSB_JOBID"):
        monkeypatch.delenv(name, raising=False)
    cfg = runner.compose(["trainer.max_epochs=-1", "+trainer.num_nodes=2", "device=cpu"])
    with pytest.raises(ConfigError) as info:
        parse_run(cfg)
    keys = [p.split(":")[0] for p in info.value.problems]
    assert keys == ["trainer.num_nodes", "trainer.max_epochs"]
    assert "no other node will join" in info.value.problems[0]
    bounded = ["trainer.max_epochs=-1", "+trainer.max_time=00:00:01:00", "+trainer.num_nodes=1"]
    assert parse_run(runner.compose([*bounded, "device=cpu"])).task == "train"
    monkeypatch.setenv("NODE_RANK", "0")  # a node of a manual multi-node run: it may wait
    assert parse_run(runner.compose(["+trainer.num_nodes=2", "device=cpu"])).task == "train"
