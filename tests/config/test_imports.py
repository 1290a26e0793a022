"""`imports: [mypkg.layers]`: the user's registered layers from YAML, and checkpoints that
name the modules they need without importing them by themselves."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import runner
from runner.run import run

ROOT = Path(__file__).resolve().parents[2]
LAYERS = """
from torch import nn

import runner


@runner.register_layer
class Doubler(nn.Module):
    def forward(self, x):
        return 2 * x
"""
NET = "model.net=[{type: Linear, in_features: 20, out_features: 10}, Doubler]"


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    """A user package with a module that registers a layer, on sys.path: one for the module,
    since a layer name registers once per process."""
    site = tmp_path_factory.mktemp("site")
    name = f"mypkg_{os.getpid()}"
    (site / name).mkdir()
    (site / name / "__init__.py").write_text("")
    (site / name / "layers.py").write_text(LAYERS)
    (site / name / "broken.py").write_text("raise RuntimeError('no GPU driver')\n")
    (site / name / "quits.py").write_text("import sys\nsys.exit(3)\n")
    from runner.registry import layers as registry

    kept = dict(registry._registered)
    sys.path.insert(0, str(site))
    yield name
    sys.path.remove(str(site))
    registry._registered = kept  # the layer it registered leaves with it


def test_a_registered_layer_works_from_yaml_once_its_module_is_imported(tmp_path, package):
    cfg = runner.compose([f"imports=[{package}.layers]", NET, "device=cpu", "trainer.max_epochs=1"])
    net = runner.build_net(cfg)
    assert type(net[1]).__name__ == "Doubler"
    result = run(cfg, tmp_path / "run")
    assert result["verification"]["ok"]


def test_import_mistakes_name_the_entry(package, tmp_path):
    cfg = runner.compose(
        [f"imports=[{package}.layerz, {package}.broken, 'not a module']", "device=cpu"]
    )
    with pytest.raises(runner.ConfigError) as info:
        run(cfg, tmp_path)
    assert info.value.problems == [
        f"imports[0]: cannot import '{package}.layerz': No module named '{package}.layerz'; did you mean 'layers'?",
        f"imports[1]: importing '{package}.broken' raised RuntimeError: no GPU driver",
        "imports[2]: expected a dotted module name such as mypkg.layers; got 'not a module'",
    ]


def test_a_module_that_exits_at_import_is_a_recorded_config_error(package, tmp_path):
    cfg = runner.compose([f"imports=[{package}.quits]", "device=cpu"])
    with pytest.raises(runner.ConfigError) as info:
        run(cfg, tmp_path)
    problem = f"imports[0]: importing '{package}.quits' called sys.exit(3)"
    assert info.value.problems[0].startswith(problem)
    record = json.loads((tmp_path / "result.json").read_text())
    assert record["status"] == "failed" and record["error"].startswith(problem)


def test_a_checkpoint_names_its_imports_and_loads_only_when_allowed(tmp_path, package):
    cfg = runner.compose([f"imports=[{package}.layers]", NET, "device=cpu", "trainer.max_epochs=1"])
    last = run(cfg, tmp_path / "run")["checkpoints"]["last"]
    # A fresh process: nothing imported yet, as for anyone who receives the file.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), _site(package)])}
    code = (
        "import runner, sys\n"
        "try:\n"
        f"    runner.load({last!r})\n"
        "except runner.ConfigError as e:\n"
        "    print(e.problems[0])\n"
        f"assert {package + '.layers'!r} not in sys.modules  # refused before importing it\n"
        f"net = runner.load({last!r}, allow=({package + '.layers'!r},)).net\n"
        "print(type(net[1]).__name__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    refused, built = done.stdout.strip().splitlines()
    assert f"imports[0]: the run that wrote it imported '{package}.layers'" in refused
    assert f"runner.load(path, allow=('{package}.layers',))" in refused
    assert built == "Doubler"


def test_export_from_the_command_line_with_imports(cli_process, tmp_path, package):
    cfg = runner.compose([f"imports=[{package}.layers]", NET, "device=cpu", "trainer.max_epochs=1"])
    last = run(cfg, tmp_path / "train")["checkpoints"]["last"]
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT), _site(package)])}
    refused = cli_process("task=export", f"ckpt_path={last}", env=env)
    assert (
        refused.returncode == 2
        and f"imports=[{package}.layers] on the command line" in refused.stderr
    )
    done = cli_process(
        "task=export",
        f"ckpt_path={last}",
        f"imports=[{package}.layers]",
        env=env,
        run_dir=tmp_path / "x",
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "x" / "train-last.safetensors").is_file()  # named after its run


def _site(package: str) -> str:
    return str(Path(sys.modules[package].__file__).parents[1])
