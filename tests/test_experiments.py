"""The chapter as experiments: `experiment=NAME` sets groups and top-level keys, the command
line beats it, and each experiment shows what its README line says."""

from pathlib import Path

import pytest

import runner
from runner.run import run

EXPERIMENTS = sorted(
    p.stem for p in (Path(__file__).parents[1] / "conf" / "experiment").glob("*.yaml")
)


def test_every_experiment_is_listed_in_its_readme():
    table = (Path(__file__).parents[1] / "conf" / "experiment" / "README.md").read_text()
    assert EXPERIMENTS and all(f"`{name}`" in table for name in EXPERIMENTS)


def test_an_experiment_sets_top_level_keys_and_the_command_line_wins(tmp_path):
    folder = tmp_path / "conf" / "experiment"
    folder.mkdir(parents=True)
    (folder / "mine.yaml").write_text("# @package _global_\nseed: 12345\ntask: inspect\n")
    search = f"hydra.searchpath=[file://{tmp_path / 'conf'}]"
    cfg = runner.compose([search, "experiment=mine"])
    assert (cfg.seed, cfg.task) == (12345, "inspect")
    assert runner.compose([search, "experiment=mine", "seed=3"]).seed == 3


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("tying", "config error: experiment: choose it with experiment=NAME, without '+'"),
        ("tyng", "did you mean 'tying'?; and write experiment=NAME, without '+' (the defaults"),
    ],
)
def test_plus_experiment_says_to_drop_the_plus_and_names_a_close_option(cli, option, message):
    done = cli(f"+experiment={option}")
    assert done.returncode == 2 and message in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("name", "task", "model", "facts"),
    [
        ("layers_and_blocks", "inspect", "chimera", ["0.net.0.weight", "2.linear.weight"]),
        ("parameter_access", "inspect", "rgnet", ["0.block 1.0.weight", "Total params: 309"]),
        ("deferred_init", "inspect", "lazy_mlp", ["0.weight: uninitialized → [256, 20]"]),
        ("custom_layers", "inspect", "mydense", ["0.weight", "[64, 8]"]),
    ],
)
def test_the_inspecting_experiments_show_the_chapters_networks(cli, name, task, model, facts):
    cfg = runner.compose([f"experiment={name}"])
    assert (cfg.task, cfg.model.net is not None) == (task, True)
    done = cli(f"experiment={name}", "device=cpu")
    assert done.returncode == 0, done.stderr
    for fact in facts:
        assert fact in done.stdout, (name, fact)


@pytest.mark.parametrize("name", ["tying", "save_load", "gpus"])
def test_the_training_experiments_reload_their_checkpoint_with_equal_outputs(tmp_path, name):
    result = run(runner.compose([f"experiment={name}", "device=cpu"]), tmp_path)
    verification = result["verification"]
    assert verification["ok"] and verification["max_abs_diff"] == 0.0
    if name == "tying":
        assert (
            verification["shared_tensors_intact"] and result["parameters"] == 121
        )  # the shared 8×8 counted once
