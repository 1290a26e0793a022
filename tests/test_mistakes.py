"""Every class of user mistake, through the CLI as a user meets it: the documented exit code,
one message naming the config key (or file) and the bad value, never a traceback, and
result.json recording it.

Value checks of each config section have their own table (tests/config/test_values.py); this
one covers the other classes: composition, files, checkpoints, devices, resumption, sizes, and
the user's own data (data=table: files, columns, values; tests/user_tables.py writes them).
"""

import json
import os
from pathlib import Path

import pytest
import torch

from tests.user_tables import write_mistaken_tables

# data=table on the penguins file the test writes (tests/user_tables.py); rows add or override.
TABLE = ["device=cpu", "data=table", "data.path=penguins.csv", "data.target=species"]
# A user's own data module (tests/user_data.py), by its dotted path.
USER = ["device=cpu", "data=module", "imports=[tests.user_data]", "model.input_shape=[8]"]
CASES = [
    # (id, arguments, exit code, a fragment of the message)
    ("unknown task", ["task=inspct"], 2, "task: unknown task 'inspct'"),
    (
        "unknown option",
        ["model=rgnett"],
        2,
        "model: 'rgnett' is not one of its options; allowed: alexnet",
    ),
    (
        "torch's name for the GPU",
        ["device=cuda:0"],
        2,
        "device: 'cuda:0' is not one of its options; allowed: auto, cpu, ddp_cpu, fsdp, gpu, gpus, "
        "mps; did you mean 'gpu'?",
    ),
    ("a number for a group", ["model=5"], 2, "Config group override must be a string"),
    (
        "a list for a group",
        ["logger=[1, 2]"],
        2,
        "while Hydra composed the overrides: logger=[1, 2]",
    ),
    ("a key past the schema", ["+model.foo=1"], 2, "model.foo: unknown key"),
    (
        "a misspelled key of a section",
        ["trainer.max_epoch=1"],
        2,
        "trainer.max_epoch: unknown key; allowed: check_val_every_n_epoch, "
        "checkpoint_every_n_steps, compile, gradient_clip_val, log_every_n_steps, max_epochs, max_steps, "
        "steps_per_batch; did you mean 'max_epochs'?; to add a new key, write "
        "+trainer.max_epoch=1",
    ),
    (
        "a misspelled key of a schema",
        ["device.acelerator=gpu"],
        2,
        "device.acelerator: unknown key; allowed: accelerator, devices, index, precision, "
        "strategy; did you mean 'accelerator'?",
    ),
    (
        "an unset environment variable",
        ["model.net.0.type=${oc.env:RUNNER_NOPE}"],
        2,
        "model.net[0].type: cannot resolve the value",
    ),
    (
        "export without a checkpoint",
        ["task=export"],
        2,
        "ckpt_path: task=export needs the checkpoint",
    ),
    (
        "a checkpoint that is not there",
        ["task=export", "ckpt_path=/nonexistent/x.ckpt"],
        2,
        "ckpt_path: no checkpoint file at '/nonexistent/x.ckpt'",
    ),
    (
        "a checkpoint of random bytes",
        ["task=export", "ckpt_path={random}"],
        2,
        "is not a checkpoint (not a file the runner or torch.save wrote)",
    ),
    (
        "a GPU that is not there",
        ["device=gpu", "task=inspect"],
        2,
        "device.accelerator: 'gpu', but no GPU is visible",
    ),
    (
        "16-bit on the CPU",
        ["device=cpu", "device.precision=16-mixed"],
        2,
        "device.precision: '16-mixed' needs a GPU",
    ),
    (
        "a model too large",
        [
            "task=inspect",
            "model.num_outputs=null",
            "model.net=[{type: Linear, in_features: 20, out_features: 1000000000000}]",
        ],
        2,
        "model: its parameters and buffers need 76.4 TiB",
    ),
    (
        "a model with nothing to train",
        ["device=cpu", "model.num_outputs=null", "model.net=[ReLU]"],
        2,
        "model.net: the network has no parameters",
    ),
    (
        "a seed past 32 bits",
        ["task=inspect", "seed=99999999999999999999"],
        2,
        "seed: expected an integer from 0 to 4294967295",
    ),
    (
        "fsdp on the CPU",
        ["device=cpu", "device.strategy=fsdp"],
        2,
        "device.strategy: 'fsdp' shards across GPUs; on the CPU use ddp_cpu",
    ),
    (
        "a repeat of a million",
        ["task=inspect", "model=rgnet", "model.blocks.block2.0.repeat=1000000"],
        2,
        "model.blocks.block2[0].repeat: expected an integer from 1 to 10,000",
    ),
    (
        "a scheduler's nonsense values",
        [
            "device=cpu",
            "+optim.scheduler={_target_: torch.optim.lr_scheduler.StepLR, _partial_: true, step_size: -1, gamma: nan}",
        ],
        2,
        "optim.scheduler.step_size: out of range; got -1; allowed: an integer ≥ 1",
    ),
    (
        "an empty net",
        ["task=inspect", "model.net=[]"],
        2,
        "model.net: empty: a model needs at least one entry",
    ),
    (
        "a norm layer of the wrong size",
        [
            "task=inspect",
            "model=centered",
            "model.input_shape=[1]",
            "model.net=[{type: LayerNorm, normalized_shape: 5}]",
        ],
        2,
        "model.net[0].normalized_shape: 5 does not match the 1 features coming in",
    ),
    (
        "a trainer value of the wrong kind",
        ["device=cpu", "+trainer.gradient_clip_algorithm=bogus", "+trainer.barebones=true"],
        2,
        "trainer.gradient_clip_algorithm: unknown choice; got 'bogus'; allowed: 'norm'",
    ),
    (
        "a trainer value of another type than Lightning's signature says",
        ["device=cpu", "+trainer.benchmark=3", "+trainer.max_time=5"],
        2,
        "trainer.benchmark: Trainer expects a bool or null for benchmark; got 3",
    ),
    (
        "a negative time limit",
        ["device=cpu", "+trainer.max_time={days: -1}"],
        2,
        "trainer.max_time.days: expected a number ≥ 0; got -1",
    ),
    (
        "a trainer value Lightning refuses only once it counts the batches",
        ["device=cpu", "+trainer.val_check_interval=1000"],
        2,
        "trainer.val_check_interval: Lightning refuses 1000 here: `val_check_interval` (1000) "
        "must be less than or equal to the number of the training batches (7)",
    ),
    (
        "a metric watched in a run without validation",
        ["device=cpu", "data.val_fraction=0", "callbacks=early_stopping"],
        2,
        "callbacks.early_stopping.monitor: the run logs no 'val/loss' (data.val_fraction=0: no "
        "validation); it logs: train/loss",
    ),
    (
        "a plateau schedule in a run without validation",
        [
            "device=cpu",
            "+trainer.limit_val_batches=0",
            "optim.scheduler={_target_: torch.optim.lr_scheduler.ReduceLROnPlateau, _partial_: true}",
        ],
        2,
        "optim.scheduler: ReduceLROnPlateau steps on val/loss, which a run without validation "
        "(trainer.limit_val_batches=0) never logs",
    ),
    ("a checkpoint path that is no path", ["ckpt_path=[a, b]"], 2, "ckpt_path: expected the path"),
    (
        "a run directory nobody can write",
        ["task=inspect", "hydra.run.dir=/proc/runner"],
        2,
        "hydra.run.dir: '/proc/runner' cannot be written",
    ),
    # The user's own data (data=table): files, columns and the values in them.
    (
        "a misspelled target",
        [*TABLE, "data.target=specie"],
        2,
        "data.target: no column 'specie' in penguins.csv; allowed: a column name (bill, "
        "flipper, island, species) or a position from 0 to 3; did you mean 'species'?",
    ),
    (
        "no target",
        [*TABLE, "data.target=null"],
        2,
        "data.target: required: the column to learn; allowed: one of bill, flipper, island, species",
    ),
    (
        "a misspelled feature",
        [*TABLE, "data.features=[bill,fliper]"],
        2,
        "data.features[1]: no column 'fliper' in penguins.csv",
    ),
    (
        "a feature twice",
        [*TABLE, "data.features=[bill,flipper,bill]"],
        2,
        "data.features[2]: 'bill' repeats data.features[0]; allowed: each column once",
    ),
    (
        "a feature twice, by name and by position",
        [*TABLE, "data.features=[flipper,island,1]"],
        2,
        "data.features[2]: 1 (column 'flipper') repeats data.features[0]; allowed: each column once",
    ),
    ("no features", [*TABLE, "data.features=[]"], 2, "data.features: empty; allowed: at least one"),
    (
        "the target as a feature, by position",
        [*TABLE, "data.features=[bill,3]"],
        2,
        "data.features[1]: 3 is the target column (data.target); allowed: the other columns",
    ),
    (
        "a misspelled categorical column",
        [*TABLE, "data.categorical=[iland]"],
        2,
        "data.categorical[0]: no column 'iland' in penguins.csv; allowed: a column name (bill, "
        "flipper, island, species) or a position from 0 to 3; did you mean 'island'?",
    ),
    (
        "the target as a categorical column",
        [*TABLE, "data.categorical=[species]"],
        2,
        "data.categorical[0]: 'species' is the target (data.target), not an input; allowed: "
        "input columns (bill, flipper, island)",
    ),
    (
        "a categorical column that is no input",
        [*TABLE, "data.features=[bill,island]", "data.categorical=[flipper]"],
        2,
        "data.categorical[0]: column 'flipper' is not an input (not in data.features); allowed: "
        "input columns (bill, island), or add it to data.features",
    ),
    (
        "a categorical column twice",
        [*TABLE, "data.categorical=[island,2]"],
        2,
        "data.categorical[1]: 2 (column 'island') repeats data.categorical[0]",
    ),
    (
        "infinite and missing feature values",
        [*TABLE, "data.path=infinite.csv"],
        2,
        "data.path: column 'bill' of infinite.csv has 2 infinite values (rows 4, 9), counting "
        "rows from 0; allowed: finite numbers in every row, or data.missing=impute (the training "
        "mean of its finite values)",
    ),
    (
        "an infinite target",
        [*TABLE, "data.path=mass.csv", "data.target=mass"],
        2,
        "data.path: column 'mass' of mass.csv (data.target) has 1 infinite value (row 7), "
        "counting rows from 0; allowed: a finite target in every row",
    ),
    (
        "a file that is not there",
        [*TABLE, "data.path=penguin.csv"],
        2,
        "data.path: no file 'penguin.csv'; did you mean 'penguins.csv'?",
    ),
    (
        "a directory as the file",
        [*TABLE, "data.path=tables"],
        2,
        "data.path: 'tables' is a directory; allowed: a regular file that can be read (.csv, "
        ".tsv, .parquet, .pq, .npy, .npz); table files in it: penguins.csv",
    ),
    (
        "a FIFO as the file (never waited on)",
        [*TABLE, "data.path=pipe.csv"],
        2,
        "data.path: 'pipe.csv' is a FIFO; allowed: a regular file that can be read (.csv, ",
    ),
    (
        "a FIFO as the test file",
        [*TABLE, "data.test_path=pipe.csv"],
        2,
        "data.test_path: 'pipe.csv' is a FIFO; allowed: a regular file that can be read",
    ),
    (
        "a symbolic link loop as the validation file",
        [*TABLE, "data.val_path=loop.csv"],
        2,
        "data.val_path: 'loop.csv' is a symbolic link loop (its links never reach a file)",
    ),
    (
        "a symbolic link to nothing",
        [*TABLE, "data.path=gone.csv"],
        2,
        "data.path: 'gone.csv' is a symbolic link to nothing (it points to 'nowhere.csv')",
    ),
    ("a device as the file", [*TABLE, "data.path=/dev/null"], 2, "'/dev/null' is a device"),
    (
        "a file that is not a table",
        [*TABLE, "data.path=broken.parquet"],
        2,
        "data.path: cannot read 'broken.parquet' as Parquet: ",
    ),
    (
        "a format the runner does not read",
        [*TABLE, "data.path=penguins.xlsx"],
        2,
        "data.path: 'penguins.xlsx' is not a table file this runner reads; allowed: .csv, .tsv",
    ),
    (
        "regression on a text target",
        [*TABLE, "data.task=regression"],
        2,
        "data.task: regression, but column 'species' holds text; allowed: classification, auto",
    ),
    (
        "a misspelled task",
        [*TABLE, "data.task=clasification"],
        2,
        "data.task: unknown choice; got 'clasification'; allowed: 'auto' (",
    ),
    (
        "an empty split",
        [*TABLE, "data.path=three.csv"],
        2,
        "data.val_fraction: leaves the val split empty (3 rows in all)",
    ),
    (
        "a model for another input shape than the table's",
        [*TABLE, "model.input_shape=[3]"],
        2,
        "data: the data (TableData) has samples of shape [5], but model.input_shape is [3]",
    ),
    (
        "fewer outputs than the table has classes",
        [*TABLE, "model.num_outputs=1"],
        2,
        "model: outputs [1] per sample, but the data (TableData) has labels 0 to 1",
    ),
    (
        "NaN inputs from a user's LightningDataModule",
        [*USER, "data._target_=tests.user_data.Gappy", "model.num_outputs=2"],
        2,
        "data: the data (Gappy) has NaN or infinite inputs in its first training batch: ",
    ),
    (
        "an infinite target from a user's in-memory data",
        [*USER, "data._target_=tests.user_data.Overflowing", "model.input_shape=[3]"],
        2,
        "data: the data (Overflowing) has NaN or infinite targets in its train split: 1 "
        "sample(s) (at ",
    ),
]
# Rows of the compact form (conf/model/lenet.yaml, nin.yaml), as the messages quote them.
LENET_0 = "LazyConv2d(6, kernel_size=5, padding=2), Sigmoid(), AvgPool2d(kernel_size=2, stride=2)"
NIN_SEQ_0 = "LazyConv2d(out_channels, kernel_size, strides, padding), ReLU()"
CASES += [
    (
        "an argument inside a row of calls",
        ["task=inspect", "model=lenet", "model.net.0.out_channels=8"],
        2,
        f"model.net.0.out_channels: unknown key: model.net.0 is a row of calls, one string "
        f"({LENET_0!r}), and an override cannot reach a value inside it; replace the whole "
        f"entry: 'model.net.0=\"{LENET_0.replace('(6,', '(8,')}\"'",
    ),
    (
        "an argument two calls of a row take",
        ["task=inspect", "model=lenet", "model.net.0.kernel_size=3"],
        2,
        f"replace the whole entry: 'model.net.0=\"{LENET_0}\"', with kernel_size=3 written into "
        "its call",
    ),
    (
        "an argument a row's call does not write yet",
        ["task=inspect", "model=lenet", "model.net.4.bias=false"],
        2,
        "model.net.4 is a row of calls, one string ('LazyLinear(10)'), and an override cannot "
        "reach a value inside it; replace the whole entry: 'model.net.4=\"LazyLinear(10, "
        "bias=False)\"'",
    ),
    (
        "an argument inside a block's row",
        ["task=inspect", "model=nin", "model.blocks.nin_block.seq.0.kernel_size=3"],
        2,
        "replace the whole entry: 'model.blocks.nin_block.seq.0=\"LazyConv2d(out_channels, 3, "
        "strides, padding), ReLU()\"'",
    ),
    (
        "an argument of a bare layer name",
        ["task=inspect", "model=lazy_mlp", "model.net.1.inplace=true"],
        2,
        "model.net.1 is a layer name, one string ('ReLU'), and an override cannot reach a value "
        "inside it; replace the whole entry: 'model.net.1=\"ReLU(inplace=True)\"'",
    ),
    (
        "a mapping given for an entry",
        ["task=inspect", "model=rgnet", "model.net.0={type: Linear, out_features: 4}"],
        2,
        "model.net[0].type: unknown key: a mapping given for model.net.0 is merged into the entry "
        "there ({block: block2}), not put in its place; to replace the entry, set it to null "
        "first: model.net.0=null 'model.net.0={type: Linear, out_features: 4}'",
    ),
    (
        "a row of calls not quoted",
        ["task=inspect", "model=nin", "model.net.3=Dropout(0.2)"],
        2,
        "\n(a row of calls is a quoted string: 'model.net.3=\"Dropout(0.2)\"')",
    ),
    (
        "a key a level too high",
        ["optim.lr=0.1"],
        2,
        "optim.lr: unknown key; allowed: optimizer, scheduler; did you mean 'optim.optimizer.lr'?",
    ),
    (
        "a key a level too high, added",
        ["device=cpu", "+optim.lr=0.1"],
        2,
        "optim.lr: unknown key; allowed: optimizer, scheduler; did you mean 'optim.optimizer.lr'?",
    ),
    (
        "a misspelled block in a row",
        ["task=inspect", "model=nin", 'model.net.0="nin_blok(96, 3, 1, 1)"'],
        2,
        "model.net[0].type: unknown layer 'nin_blok'; allowed: a block of model.blocks "
        "(nin_block), a torch.nn layer (Linear, ReLU, …), a runner layer (CenteredLayer, "
        "FixedHiddenMLP, MyDense), one registered with @runner.register_layer (in a module "
        "listed in imports: [...]), or a dotted path to an nn.Module class; did you mean "
        "'nin_block'?",
    ),
    (
        "a block named bare, as a layer would be",
        ["task=inspect", "model=rgnet", "model.net.0=block2"],
        2,
        "model.net[0].type: 'block2' is a block of model.blocks, and a bare name stands for a "
        "layer; allowed: {block: block2} or block2() to use the block",
    ),
    (
        "a bad data value when the data sizes the model",
        [*TABLE, "data.val_fraction=2"],
        2,
        "data.val_fraction: out of range; got 2; allowed: a number in [0, 1)",
    ),
    (
        "a misspelled target when inspecting a model the data sizes",
        ["task=inspect", *TABLE[1:3], "data.target=specie"],
        2,
        "data.target: no column 'specie' in penguins.csv",
    ),
    (
        "a misspelled data module of the runner's",
        ["device=cpu", "data._target_=runner.train.data.Digitz"],
        2,
        "data._target_: 'runner.train.data.Digitz' cannot be imported; allowed: the runner's "
        "(runner.train.data.*, data=table) or any LightningDataModule subclass (with "
        "imports=[its module]); did you mean data=digits (whose data module is "
        "runner.train.data.Digits)?",  # the option: data=random's keys would not fit Digits
    ),
    (
        "a misspelled data module of the user's",
        [*USER, "data._target_=tests.user_data.Blob"],
        2,
        "data._target_: 'tests.user_data.Blob' cannot be imported; allowed: the runner's "
        "(runner.train.data.*, data=table) or any LightningDataModule subclass (with "
        "imports=[its module]); did you mean 'tests.user_data.Blobs'?",
    ),
]
# What a case's output must not hold: Hydra's hint that leads to a second error, a knock-on
# problem of the real one, Hydra's own logged error (once per lookup).
ABSENT = {
    "an argument inside a row of calls": "+model.net",
    "a mapping given for an entry": "+model.net",
    "a key a level too high": "+optim.lr",
    "a bad data value when the data sizes the model": "model.",
    "a misspelled target when inspecting a model the data sizes": "model.",
    "a misspelled data module of the runner's": "Error getting class",
    "a misspelled data module of the user's": "Error getting class",
}
# Mistakes found while Hydra composes the config, before there is a run directory to record
# them in (or in a run directory that cannot be written): no result.json.
UNRECORDED = {
    "an argument inside a row of calls",
    "an argument two calls of a row take",
    "an argument a row's call does not write yet",
    "an argument inside a block's row",
    "an argument of a bare layer name",
    "a row of calls not quoted",
    "a mapping given for an entry",
    "a key a level too high",
    "unknown option",
    "torch's name for the GPU",
    "a number for a group",
    "a list for a group",
    "a misspelled key of a section",
    "a misspelled key of a schema",
    "a run directory nobody can write",
}


@pytest.mark.parametrize(("name", "args", "code", "fragment"), CASES, ids=[c[0] for c in CASES])
def test_a_mistake_gets_one_clear_message_and_no_traceback(
    cli, tmp_path, name, args, code, fragment
):
    random = tmp_path / "random.ckpt"
    random.write_bytes(os.urandom(512))
    write_mistaken_tables(tmp_path)  # the working directory: data.path=penguins.csv
    args = [a.replace("{random}", str(random)) for a in args]
    run_dirs = [Path(a.split("=", 1)[1]) for a in args if a.startswith("hydra.run.dir=")]
    args = [a for a in args if not a.startswith("hydra.run.dir=")]
    run_dir = run_dirs[0] if run_dirs else tmp_path / "run"
    done = cli(*args, run_dir=run_dir, env={"CUDA_VISIBLE_DEVICES": ""})
    assert done.returncode == code, done.stderr
    assert fragment in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert name not in ABSENT or ABSENT[name] not in done.stderr.replace(fragment, ""), done.stderr
    if name not in UNRECORDED:
        record = json.loads((run_dir / "result.json").read_text())
        assert record["status"] == "failed" and fragment in record["error"]
    assert not (run_dir / "checkpoints").exists()


def test_the_row_a_message_suggests_is_the_row_changed_as_asked(cli, tmp_path):
    """`model.net.0.out_channels=8` on a row of calls: the override the message gives, run as
    printed, builds the network with that one value changed."""
    import shlex

    import runner

    done = cli("task=inspect", "model=lenet", "model.net.0.out_channels=8")
    suggested = shlex.split(done.stderr.split("replace the whole entry: ")[1].splitlines()[0])
    assert suggested == [f'model.net.0="{LENET_0.replace("(6,", "(8,")}"']
    net = runner.build_net(runner.compose(["model=lenet", *suggested]), "cpu")
    before = runner.build_net(runner.compose(["model=lenet"]), "cpu")
    assert (net[0].out_channels, before[0].out_channels) == (8, 6)
    assert [type(m) for m in net] == [type(m) for m in before]


def test_a_sweep_whose_every_job_is_a_config_mistake_exits_2(cli, tmp_path):
    sweep_dir = tmp_path / "sweep"
    done = cli("-m", "device=cpu", "optim.optimizer.lr=-1,-2", f"hydra.sweep.dir={sweep_dir}")
    assert done.returncode == 2, done.stderr
    assert "sweep: 2 of 2 jobs failed: 0, 1" in done.stderr
    assert "jobs 0, 1 refused the config" in done.stderr  # a rerun as it is would fail again
    assert "Traceback" not in done.stderr
    records = [json.loads((sweep_dir / n / "result.json").read_text()) for n in ("0", "1")]
    assert all(r["status"] == "failed" and r["config_error"] is True for r in records)


def test_the_entry_a_message_suggests_replaces_the_one_there(cli, tmp_path):
    """A mapping given for a mapping entry is merged by Hydra; the two overrides the message
    gives instead, run as printed, put the new entry in its place."""
    import shlex

    import runner

    done = cli("task=inspect", "model=rgnet", "model.net.0={type: Linear, out_features: 4}")
    suggested = shlex.split(done.stderr.split("set it to null first: ")[1].splitlines()[0])
    assert suggested == ["model.net.0=null", "model.net.0={type: Linear, out_features: 4}"]
    net = runner.build_net(runner.compose(["model=rgnet", *suggested]), "cpu")
    assert isinstance(net[0], torch.nn.Linear) and net[0].out_features == 4
