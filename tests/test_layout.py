"""The package layout is enforced: import-linter's contracts (pyproject.toml) keep, and break
when a module imports upwards, when two modules of a package import each other, or when code
below runner.train imports Lightning."""

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
SUBPACKAGES = (
    "checkpoint",
    "config",
    "model",
    "params",
    "registry",
    "rundir",
    "sweep",
    "testing",
    "trackers",
    "train",
    "train/callbacks",
)


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(root / "pyproject.toml")],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def tree_copy(tmp_path):
    """A copy of runner/ and the contracts, to break on purpose."""
    shutil.copytree(ROOT / "runner", tmp_path / "runner", ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_contracts_keep_on_the_real_tree():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract", "evidence"),
    [
        (  # statistics reaching up into the training code
            "params/stats.py",
            "from runner.train import fit",
            "runner's packages import only the layers below them",
            "runner.params.stats -> runner.train.fit",
        ),
        (  # the validator importing the training code, as spec.py once did
            "config/spec.py",
            "from runner.train.fit import train",
            "runner's packages import only the layers below them",
            "runner.config.spec -> runner.train.fit",
        ),
        (  # checkpoint files and export importing each other
            "checkpoint/files.py",
            "from runner.checkpoint.export import export",
            "no import cycles between the modules of any package",
            "No cycles are allowed in runner.checkpoint",
        ),
        (  # reading a checkpoint through Lightning's own loader
            "checkpoint/restore.py",
            "import pytorch_lightning",
            "the checkpoint package reads, writes and trusts files without Lightning",
            "runner.checkpoint.restore -> pytorch_lightning",
        ),
        (  # a tracker reaching into the training loop
            "trackers/tracking.py",
            "from runner.train import module",
            "the trackers follow a run from the outside",
            "runner.trackers.tracking -> runner.train.module",
        ),
        (
            "params/summary.py",
            "import pytorch_lightning",
            "only runner.train and the trackers import Lightning",
            "runner.params.summary -> pytorch_lightning",
        ),
    ],
)
def test_an_import_against_the_layout_breaks_a_contract(
    tree_copy, module, line, contract, evidence
):
    target = tree_copy / "runner" / module
    target.write_text(target.read_text() + f"\n{line}  # noqa\n")
    result = lint_imports(tree_copy)
    assert result.returncode == 1, result.stdout + result.stderr
    broken = result.stdout.split("Broken contracts")[1]
    assert contract in broken
    assert evidence in broken


def test_every_subpackage_says_its_job_and_every_module_stays_small():
    for name in SUBPACKAGES:
        init = ROOT / "runner" / name / "__init__.py"
        assert init.read_text().startswith('"""'), f"{init} has no docstring saying its job"
    too_long = {
        str(p.relative_to(ROOT)): n
        for p in (ROOT / "runner").rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 300
    }
    assert not too_long, f"modules over 300 lines: {too_long}"


def test_no_function_is_longer_than_a_screen():
    long = {
        f"{p.relative_to(ROOT)}:{node.name}": node.end_lineno - node.lineno + 1
        for p in (ROOT / "runner").rglob("*.py")
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > 60
    }
    assert not long, f"functions over 60 lines: {long}"


def test_the_data_base_named_by_the_validator_is_the_real_one():
    from runner.config.data_modules import DATA_BASE
    from runner.train.data import InMemoryData

    assert f"{InMemoryData.__module__}.{InMemoryData.__qualname__}" == DATA_BASE


def readme_map() -> set[str]:
    """Every path the README's module map names: `runner/train/` lines, and their indented
    module lines (`fit.py`, or `init.py, ties.py`) under the package above them."""
    readme = (ROOT / "README.md").read_text()
    start = readme.index("The code follows the data flow")
    lines = readme[start : readme.index("Tests marked `gpu`", start)].splitlines()
    named, package = set(), ""
    for line in lines:
        words = line.split()
        if line.startswith("    runner/"):
            named.add(words[0].rstrip("/"))
            package = words[0] if words[0].endswith("/") else ""
        elif line.startswith("      ") and package and words[0].endswith((".py", ".py,")):
            files = re.split(r"\s{2,}", line.strip())[0].split(", ")
            named |= {package + f for f in files}
    return named


def test_the_readme_map_matches_the_tree():
    named = readme_map()
    assert named, "the README's module map is missing"
    missing = sorted(p for p in named if not (ROOT / p).exists())
    assert not missing, f"the README's map names paths that do not exist: {missing}"
    modules = {
        str(p.relative_to(ROOT))
        for name in SUBPACKAGES
        for p in (ROOT / "runner" / name).glob("*.py")
        if p.name != "__init__.py"
    }
    unnamed = sorted(modules - named)
    assert not unnamed, f"modules the README's map leaves out: {unnamed}"
    for name in SUBPACKAGES:
        assert f"runner/{name}" in named, f"the README's map leaves out runner/{name}/"


def test_every_package_is_listed_for_the_wheel():
    import tomllib

    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    packages = {
        ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "runner").rglob("__init__.py")
    }
    assert packages <= listed, f"packages a wheel would leave out: {sorted(packages - listed)}"
