"""Every class of user mistake, through the CLI as a user meets it: the documented exit code,
one message naming the config key (or file) and the bad value, and never a traceback.

Value checks of each config section have their own table (tests/config/test_values.py); this
one covers the other classes: composition, files, checkpoints, devices, resumption, sizes.
"""

import os
from pathlib import Path

import pytest

CASES = [
    # (id, arguments, exit code, a fragment of the message)
    ("unknown task", ["task=inspct"], 2, "task: unknown task 'inspct'"),
    ("unknown option", ["model=rgnett"], 2, "Could not find 'model/rgnett'; did you mean 'rgnet'?"),
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
]


@pytest.mark.parametrize(
    ("args", "code", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_a_mistake_gets_one_clear_message_and_no_traceback(cli, tmp_path, args, code, fragment):
    random = tmp_path / "random.ckpt"
    random.write_bytes(os.urandom(512))
    args = [a.replace("{random}", str(random)) for a in args]
    run_dirs = [Path(a.split("=", 1)[1]) for a in args if a.startswith("hydra.run.dir=")]
    args = [a for a in args if not a.startswith("hydra.run.dir=")]
    done = cli(*args, run_dir=run_dirs[0] if run_dirs else None, env={"CUDA_VISIBLE_DEVICES": ""})
    assert done.returncode == code, done.stderr
    assert fragment in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
