"""`python -m runner` as a user runs it: output, files, exit codes, and what it imports."""

import csv
import json
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT


def test_inspect_rgnet_prints_tree_table_and_totals(cli_process, tmp_path):
    result = cli_process("task=inspect", "model=rgnet", "device=cpu")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "(block 3): Sequential(" in out  # the module tree
    assert "0.block 0.0.weight" in out and "[8, 4]" in out  # the table
    assert "Total params: 309 (1.21 KiB)" in out
    assert "Traceback" not in result.stderr
    assert "sweep.objective" not in result.stderr  # a single run is ranked by nothing
    run_dir = tmp_path / "run"
    with (run_dir / "params.csv").open() as f:
        assert sum(int(r["numel"]) for r in csv.DictReader(f)) == 309
    result_json = json.loads((run_dir / "result.json").read_text())
    assert result_json["totals"]["parameters"] == 309
    assert "build: 309 parameters in " in result.stderr  # stage logs go to stderr
    assert "built on meta" in result.stderr


def test_inspect_of_the_default_model(cli):
    result = cli("task=inspect")
    assert result.returncode == 0, result.stderr
    assert "compose: task=inspect model=mlp init=default device=auto" in result.stderr
    assert "Total params: 7,946" in result.stdout


def test_cfg_job_prints_the_composed_config(cli):
    result = cli("--cfg", "job", "model=rgnet")
    assert result.returncode == 0, result.stderr
    assert "block1:" in result.stdout and "task: train" in result.stdout


def test_help_lists_every_group_and_option_and_the_config(cli):
    result = cli("--help")
    assert result.returncode == 0, result.stderr
    listed = _groups_listed(result.stdout)
    assert listed == {**_groups_under(ROOT / "conf"), "schema": {"device", "init", "model"}}
    assert "rgnet" in listed["model"] and "d2l" in listed["model/blocks"]
    config = result.stdout.split("== Config ==", 1)[1]
    assert "task: train" in config and "out_features: 256" in config  # the default model
    assert "--hydra-help lists Hydra's own flags" in result.stdout
    sweeps = result.stdout.split("== Sweeps ==", 1)[1].split("==", 1)[0]
    ours = {p.stem for p in (ROOT / "conf" / "hydra" / "launcher").glob("*.yaml")}
    assert ours and all(name in sweeps for name in ours | {"basic", "joblib"})


def test_help_lists_the_groups_of_a_users_config_dir_and_the_overrides(cli, tmp_path):
    (tmp_path / "mine" / "model").mkdir(parents=True)
    (tmp_path / "mine" / "model" / "tiny.yaml").write_text("net: [ReLU]\n")
    (tmp_path / "mine" / "extra").mkdir()
    (tmp_path / "mine" / "extra" / "one.yaml").write_text("a: 1\n")
    result = cli("--config-dir", str(tmp_path / "mine"), "--help", "model=rgnet", "seed=7")
    assert result.returncode == 0, result.stderr
    listed = _groups_listed(result.stdout)
    assert listed["model"] == _groups_under(ROOT / "conf")["model"] | {"tiny"}
    assert listed["extra"] == {"one"}
    assert "seed: 7" in result.stdout and "block1:" in result.stdout  # the composed config


def test_hydra_help_lists_hydras_groups_with_the_runners_launcher(cli):
    result = cli("--hydra-help")
    assert result.returncode == 0, result.stderr
    listed = _groups_listed(result.stdout)
    assert {"basic", "slurm"} <= listed["hydra/launcher"]  # Hydra's own, and conf/hydra/launcher
    assert "hydra/job_logging" in listed and "model" not in listed


def _groups_listed(help_text: str) -> dict[str, set[str]]:
    """The `group: a, b, c` lines under a help text's "== Configuration groups ==", as
    {group: {a, b, c}}."""
    listed: dict[str, set[str]] = {}
    for line in help_text.split("== Configuration groups ==\n", 1)[1].splitlines():
        match = re.fullmatch(r"([\w/]+): ([\w, ]+)", line)
        if match:
            listed[match[1]] = set(match[2].split(", "))
        elif listed:  # the first line after the list
            break
    return listed


def _groups_under(conf: Path) -> dict[str, set[str]]:
    """Every config group in a config folder (Hydra's own `hydra/` aside) and its options."""
    groups: dict[str, set[str]] = {}
    for path in conf.rglob("*.yaml"):
        group = path.parent.relative_to(conf).as_posix()
        if group != "." and group.split("/")[0] != "hydra":
            groups.setdefault(group, set()).add(path.stem)
    return groups


def test_config_mistake_exits_2_with_all_problems_and_no_traceback(cli_process):
    result = cli_process("model=mlp", "model.net.0.type=Lineer", "task=inspct")
    assert result.returncode == 2
    assert "2 problems in the config:" in result.stderr
    assert "model.net[0].type: unknown layer 'Lineer'" in result.stderr
    assert (
        "allowed: eval, export, inspect, predict, train; did you mean 'inspect'?" in result.stderr
    )
    assert "Traceback" not in result.stderr + result.stdout


def test_unknown_option_names_its_group_the_options_and_a_close_one(cli_process):
    result = cli_process("model=rgnett")
    assert result.returncode == 2
    assert (
        "config error: model: 'rgnett' is not one of its options; allowed: alexnet, bn_lenet, "
        in result.stderr
    )
    assert ", resnet18, rgnet, shared, vgg; did you mean 'rgnet'?" in result.stderr
    assert "Traceback" not in result.stderr and "search path" not in result.stderr


def test_a_number_for_a_group_is_a_clear_message_not_a_traceback(cli):
    result = cli("model=5")
    assert result.returncode == 2
    assert (
        "config error: Config group override must be a string or a list. Got int (a group's option is a name"
        in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_misspelled_model_key_in_a_yaml_file_fails_at_compose_time(cli, tmp_path):
    (tmp_path / "mine" / "model").mkdir(parents=True)
    (tmp_path / "mine" / "model" / "typo.yaml").write_text(
        "defaults: [/schema/model@_here_, _self_]\ninputshape: [4]\nnet: [ReLU]\n"
    )
    result = cli("--config-dir", str(tmp_path / "mine"), "model=typo")
    assert result.returncode == 2
    assert "Key 'inputshape' not in 'ModelConfig'" in result.stderr
    assert "Traceback" not in result.stderr


def test_misspelled_model_key_added_with_plus_is_caught_by_the_validator(cli):
    result = cli("task=inspect", "+model.inputshape=[3]")
    assert result.returncode == 2
    assert (
        "model.inputshape: unknown key; allowed: args, blocks, input_shape, net, num_outputs, shared, tie; "
        "did you mean 'input_shape'?"
    ) in result.stderr


def test_users_config_dir_adds_models(cli, tmp_path):
    (tmp_path / "mine" / "model").mkdir(parents=True)
    (tmp_path / "mine" / "model" / "tiny.yaml").write_text(
        "defaults: [/schema/model@_here_, _self_]\n"
        "input_shape: [3]\nnet: [{type: Linear, out_features: 2}]\n"
    )
    result = cli("--config-dir", str(tmp_path / "mine"), "model=tiny", "task=inspect", "device=cpu")
    assert result.returncode == 0, result.stderr
    assert "Total params: 8 " in result.stdout


def test_gpu_without_gpu_is_a_clear_error(cli):
    result = cli("task=inspect", "device=gpu", env={"CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 2
    assert "device.accelerator: 'gpu', but no GPU is visible" in result.stderr
    assert "Traceback" not in result.stderr


def test_multirun_inspects_each_model(cli, tmp_path):
    sweep = tmp_path / "sweep"
    result = cli("-m", "task=inspect", "model=mlp,rgnet", "device=cpu", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr
    totals = [json.loads((sweep / str(i) / "result.json").read_text()) for i in (0, 1)]
    assert [t["totals"]["parameters"] for t in totals] == [7946, 309]


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("sweep.direction=up", "sweep.direction: got 'up'; allowed: max, min, or null"),
        (
            "hydra/launcher=vectorized hydra.launcher.max_members=1",
            "hydra.launcher.max_members: 1 is not a group size; allowed: an integer ≥ 2",
        ),
        (  # a key added that the launcher does not take: Hydra's TypeError, the directory made
            "hydra/launcher=vectorized +hydra.launcher.max_member=4",
            "hydra.launcher.max_member: unknown key; allowed: _target_, max_members; did you "
            "mean 'max_members'?",
        ),
        ("+hydra.launcher.n_jobs=2", "hydra.launcher.n_jobs: unknown key; allowed: _target_"),
        # Optuna's own refusals came after the directory, in its words ("No trials are
        # completed yet", "division by zero", an AssertionError)
        (
            "hparams_search=optuna hydra.sweeper.n_trials=0",
            "hydra.sweeper.n_trials: got 0; allowed: an integer ≥ 1",
        ),
        (
            "hparams_search=optuna hydra.sweeper.n_jobs=0",
            "hydra.sweeper.n_jobs: got 0; allowed: an integer ≥ 1",
        ),
        (
            "hparams_search=optuna hydra.sweeper.max_failure_rate=2",
            "hydra.sweeper.max_failure_rate: got 2.0; allowed: a number from 0 to 1",
        ),
        (
            "hparams_search=optuna hydra.sweeper.direction=sideways",
            "hydra.sweeper.direction: got 'sideways'; allowed: minimize, maximize",
        ),
    ],
)
def test_a_sweep_setting_refused_before_any_job_leaves_no_directory(
    cli, tmp_path, setting, message
):
    sweep = tmp_path / "sweep"
    result = cli("-m", "task=inspect", "seed=0,1", *setting.split(), f"hydra.sweep.dir={sweep}")
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr and not sweep.exists()


@pytest.mark.parametrize("args", [("--help",), ("--cfg", "job")])
def test_help_and_cfg_do_not_import_torch(args, tmp_path):
    assert "torch" not in _modules_loaded(tmp_path, *args)


def test_inspect_imports_no_training_plotting_or_tracking_library(tmp_path):
    loaded = _modules_loaded(
        tmp_path, "task=inspect", "model=rgnet", "device=cpu", f"hydra.run.dir={tmp_path}/r"
    )
    assert "torch" in loaded
    only_for_other_tasks = {"pytorch_lightning", "lightning", "matplotlib", "mlflow", "wandb"}
    only_for_other_tasks |= {"tensorboard", "optuna", "sklearn", "scipy", "pandas"}
    assert only_for_other_tasks & loaded == set()


def _modules_loaded(cwd, *args) -> set[str]:
    """Top-level modules a `python -m runner ARGS` process imported (from -X importtime)."""
    import os
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "runner", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    names = set()
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def test_a_value_hydra_trips_over_names_the_overrides(cli):
    result = cli("logger=[1, 2]")
    assert result.returncode == 2
    assert "(while Hydra composed the overrides: logger=[1, 2]" in result.stderr
    assert "Traceback" not in result.stderr
