"""Nothing read from a file someone else wrote runs code: crafted checkpoints and exports are
refused with a message naming the key, before anything in them is imported or instantiated."""

import copy
import json
import os
import re
from pathlib import Path

import pytest
import torch

import runner
from runner import ConfigError
from runner.checkpoint.files import atomic_save, safe_load
from runner.run import run


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A real checkpoint of a tiny run, read once."""
    out = tmp_path_factory.mktemp("trained")
    cfg = runner.compose(["model=linear", "data=synthetic", "device=cpu", "trainer.max_epochs=1"])
    result = run(cfg, out / "run")
    path = Path(result["checkpoints"]["last"])
    return path, safe_load(path)


def craft(trained, tmp_path, mutate) -> Path:
    checkpoint = copy.deepcopy(trained[1])
    mutate(checkpoint["hyper_parameters"]["config"], checkpoint)
    path = tmp_path / "crafted.ckpt"
    atomic_save(checkpoint, path)  # the runner's own format: its reader must refuse it too
    return path


def _set(section, key, value):
    return lambda config, checkpoint: config[section].__setitem__(key, value)


MARKER = "MARKER"  # replaced by a path in tmp_path: the file each attack would create

ATTACKS = [
    # Hydra walks attributes: this prefix is "runner." but the object is torch.save.
    (
        "attribute walk to torch.save",
        _set(
            "optim",
            "optimizer",
            {"_target_": "runner.checkpoint.files.torch.save", "obj": 1, "f": MARKER},
        ),
        "optim.optimizer._target_: 'runner.checkpoint.files.torch.save' is function torch.serialization.save, not an optimizer",
    ),
    (
        "attribute walk to numpy.save",
        _set(
            "optim",
            "optimizer",
            {"_target_": "runner.train.callbacks.checkpoints.np.save", "file": MARKER, "arr": 1},
        ),
        "not an optimizer",
    ),
    (
        "attribute walk to os.system",
        _set(
            "optim",
            "optimizer",
            {"_target_": "runner.checkpoint.files.os.system", "command": f"touch {MARKER}"},
        ),
        "is builtin_function_or_method posix.system, not an optimizer",
    ),
    (
        "a nested _target_ Hydra would instantiate recursively",
        _set(
            "optim",
            "optimizer",
            {
                "_target_": "torch.optim.SGD",
                "_partial_": True,
                "lr": {"_target_": "runner.checkpoint.files.torch.save", "obj": 1, "f": MARKER},
            },
        ),
        "optim.optimizer.lr._target_: a file's config may name code only at optim.optimizer, optim.scheduler, data",
    ),
    (
        "a runner function used as an initializer",
        _set(
            "init",
            "rules",
            [{"init": "runner.checkpoint.files.atomic_save", "args": {"path": MARKER}}],
        ),
        "init.rules[0].init: 'runner.checkpoint.files.atomic_save' is defined in runner.checkpoint.files, which a file's config may not name for an initializer",
    ),
    (
        "a data target that is a function",
        _set("data", "_target_", "runner.checkpoint.files.os.system"),
        "data._target_: 'runner.checkpoint.files.os.system' is builtin_function_or_method posix.system, not a data module",
    ),
    (
        "a scheduler target that is an optimizer",
        _set("optim", "scheduler", {"_target_": "torch.optim.SGD", "_partial_": True}),
        "optim.scheduler._target_: 'torch.optim.SGD' is the class torch.optim.sgd.SGD, not a scheduler",
    ),
    (
        "a target outside the allow-list is never imported",
        _set("optim", "optimizer", {"_target_": "subprocess.run", "args": ["touch", MARKER]}),
        "'subprocess.run' is not on the allow-list for configs read from checkpoints",
    ),
    (
        "a _target_ at a key that names no code",
        _set("trainer", "_target_", "torch.save"),
        "trainer._target_: a file's config may name code only at",
    ),
    (
        "an interpolation OmegaConf would resolve on access",
        _set("model", "num_outputs", "${oc.env:HOME}"),
        "model.num_outputs: interpolations are not allowed in a config read from a file",
    ),
    (
        "a runner class that builds a nested config of its own",
        _set(
            "model",
            "net",
            [
                {
                    "type": "runner.train.module.RunnerModule",
                    "config": {"init": {"rules": [{"init": "runner.rundir._refuse"}]}},
                }
            ],
        ),
        "model.net[0].type: 'runner.train.module.RunnerModule' is defined in runner.train.module, which a file's config may not name for a layer",
    ),
    (
        "an unknown task",
        lambda config, checkpoint: checkpoint["hyper_parameters"].__setitem__("task", "evil"),
        "task: 'evil' is not one of regression, classification",
    ),
    (
        "a state_dict of non-tensors",
        lambda config, checkpoint: checkpoint.__setitem__("state_dict", {"0.weight": 5}),
        "its state_dict is not a mapping of names to tensors",
    ),
]


def _with_marker(value, marker: str):
    if isinstance(value, dict):
        return {k: _with_marker(v, marker) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_marker(v, marker) for v in value]
    return value.replace(MARKER, marker) if isinstance(value, str) else value


@pytest.mark.parametrize(("attack", "mutate", "message"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_a_crafted_checkpoint_is_refused_and_runs_nothing(
    trained, tmp_path, attack, mutate, message
):
    marker = tmp_path / "marker"

    def mutate_with_marker(config, checkpoint):
        mutate(config, checkpoint)
        checkpoint["hyper_parameters"]["config"] = _with_marker(config, str(marker))

    path = craft(trained, tmp_path, mutate_with_marker)
    with pytest.raises(ConfigError) as refused:
        runner.load(path)
    assert str(refused.value).startswith(f"path: '{path}'")
    assert message in str(refused.value)
    assert not marker.exists()


def test_task_export_names_ckpt_path_and_refuses_the_same(trained, tmp_path, cli):
    marker = tmp_path / "marker"
    path = craft(
        trained,
        tmp_path,
        _set(
            "optim",
            "optimizer",
            {"_target_": "runner.checkpoint.files.torch.save", "obj": 1, "f": str(marker)},
        ),
    )
    done = cli("task=export", f"ckpt_path={path}")
    assert done.returncode == 2, done.stderr
    assert f"ckpt_path: '{path}': its config is refused" in done.stderr
    assert "Traceback" not in done.stderr
    assert not marker.exists()


def test_allowing_the_home_module_lets_a_trusted_file_load(trained, tmp_path):
    path = craft(
        trained, tmp_path, _set("init", "rules", [{"init": "tests.checkpoint.test_trust.halve"}])
    )
    with pytest.raises(
        ConfigError, match=re.escape("runner.load(path, allow=('tests.checkpoint.test_trust',))")
    ):
        runner.load(path)
    assert isinstance(runner.load(path, allow=("tests.checkpoint.test_trust",)), torch.nn.Module)


def halve(tensor: torch.Tensor) -> None:  # a user's own initializer, for the test above
    tensor.mul_(0.5)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (os.urandom(2000), "is not a checkpoint (not a file the runner or torch.save wrote)"),
        (b"", "is not a checkpoint (not a file the runner or torch.save wrote)"),
        (b"model: mlp\n", "is not a checkpoint (not a file the runner or torch.save wrote)"),
    ],
)
def test_a_file_that_is_no_checkpoint_says_so(tmp_path, content, message):
    path = tmp_path / "x.ckpt"
    path.write_bytes(content)
    with pytest.raises(
        ConfigError, match="path: '.*x.ckpt' " + message.replace("(", "\\(").replace(")", "\\)")
    ):
        runner.load(path)


def test_a_pickled_object_is_refused_unexecuted(tmp_path):
    marker = tmp_path / "marker"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "x": Evil()}, path)
    with pytest.raises(
        ConfigError, match=r"holds pickled objects.*nothing in it was executed.*posix\.system"
    ):
        runner.load(path)
    assert not marker.exists()


def test_a_truncated_checkpoint_says_truncated(trained, tmp_path):
    data = trained[0].read_bytes()
    path = tmp_path / "half.ckpt"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(
        ConfigError, match="is not a complete checkpoint \\(truncated or corrupt\\?\\)"
    ):
        runner.load(path)


def _exported(trained, tmp_path, cli) -> Path:
    done = cli("task=export", f"ckpt_path={trained[0]}", run_dir=tmp_path / "export")
    assert done.returncode == 0, done.stderr
    return tmp_path / "export" / "run-last.safetensors"  # named after the checkpoint's run


def test_a_safetensors_export_with_crafted_metadata_is_refused(trained, tmp_path, cli):
    from safetensors.torch import load_file, save_file

    exported = _exported(trained, tmp_path, cli)
    from safetensors import safe_open

    with safe_open(str(exported), framework="pt") as f:
        metadata = f.metadata()
    tensors = load_file(str(exported))
    config = json.loads(metadata["config"])
    config["optim"]["optimizer"] = {
        "_target_": "runner.checkpoint.files.torch.save",
        "obj": 1,
        "f": str(tmp_path / "marker"),
    }
    bad_json = tmp_path / "bad_json.safetensors"
    save_file(tensors, str(bad_json), metadata={**metadata, "config": "{not json"})
    crafted = tmp_path / "crafted.safetensors"
    save_file(tensors, str(crafted), metadata={**metadata, "config": json.dumps(config)})

    with pytest.raises(ConfigError, match="its metadata config is not valid JSON"):
        runner.load(bad_json)
    with pytest.raises(ConfigError, match=r"optim\.optimizer\._target_: .* not an optimizer"):
        runner.load(crafted)
    assert not (tmp_path / "marker").exists()
    assert isinstance(runner.load(exported), torch.nn.Module)  # the untouched export loads


def test_a_string_allow_is_one_prefix_not_its_letters(trained, tmp_path):
    marker = tmp_path / "marker"
    path = craft(
        trained,
        tmp_path,
        _set("init", "rules", [{"init": "torch.serialization.save", "args": {"f": str(marker)}}]),
    )
    with pytest.raises(ConfigError, match="not on the allow-list"):
        runner.load(path, allow="tests.")  # "t" would otherwise allow torch.*
    assert not marker.exists()


def test_resuming_never_deletes_what_a_checkpoints_callback_state_names(trained, tmp_path):
    victim = tmp_path / "victim"
    (victim / "sub").mkdir(parents=True)
    (victim / "sub" / "a.txt").write_text("precious")
    checkpoint = copy.deepcopy(trained[1])
    for state in checkpoint["callbacks"].values():
        if "best_model_path" in state:
            state["best_model_path"] = f"local://{victim}"
    torch.save(checkpoint, tmp_path / "evil.ckpt")
    overrides = [
        "model=linear",
        "data=synthetic",
        "device=cpu",
        "trainer.max_epochs=3",
        f"ckpt_path={tmp_path / 'evil.ckpt'}",
    ]
    assert run(runner.compose(overrides), tmp_path / "run")["status"] == "ok"
    assert (victim / "sub" / "a.txt").read_text() == "precious"


def test_an_export_never_overwrites_an_earlier_file(trained, tmp_path):
    export = runner.compose(["task=export", "device=cpu", f"ckpt_path={trained[0]}"])
    out = tmp_path / "export"
    first = Path(run(export, out)["file"])
    assert first == out / "run-last.safetensors"
    written = first.read_bytes()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (out / "run-last-2.safetensors").symlink_to(victim)  # a name taken by a link: skipped, kept
    second = run(export, out)
    assert second["file"] == str(out / "run-last-3.safetensors") and Path(second["file"]).is_file()
    assert first.read_bytes() == written and victim.read_text() == "precious\n"
    assert (out / "previous" / "1" / "result.json").is_file()  # the first export's record
