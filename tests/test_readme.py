"""README.md is a promise: every command and code block in it runs as printed, in order.

The tour is read from README.md itself, not copied here, so the two cannot drift apart:
- a line in an indented block that starts with a command word (`python`, `make`, `$`, …) is a
  command: `python -m runner …` runs (in this process, through the same `main()` as the
  console; with DDP in a subprocess), `make run ARGS="…"` runs as the Makefile defines it,
  `$ python -m runner …` runs and the lines printed under it must appear in its output, and
  set-up and development commands (`make test`, `pip install torch …`) are listed below with
  why they are not run here;
- a ```python block runs in a fresh interpreter, and a ```python or ```yaml block whose first
  line is `# some/path.py` (or `.yaml`) is saved there, as a reader would, for what follows;
- `pytest …` runs in a subprocess and must pass;
- all of it in one fresh directory, in README order; `outputs/…/checkpoints/last.ckpt` is the
  newest checkpoint written so far;
- a command that needs a GPU is skipped, visibly, where none is visible.
A command line the harness cannot classify fails `test_every_command_is_classified`.
"""

import csv
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PLACEHOLDER = "outputs/…/checkpoints/last.ckpt"
COMMAND_WORDS = ("python", "python3", "make", "$", "pip", ".venv/bin/pip", "pytest", "mlflow")
GPU_WORDS = ("device=gpu", "device=gpus", "device=fsdp", "device=mps")
# Not run by this test, and why (exact lines of README.md).
NOT_RUN = {
    "make test": "the suite itself: CI runs it (.ci/run)",
    "make test-slow": "the slow tests: CI runs them (.ci/run)",
    "make test-all": "the suite and the slow tests: CI runs them (.ci/run)",
    "make format": "rewrites the sources",
    "make bench": "benchmarks: minutes of timing, reported under bench/",
    "make bench QUICK=1": "benchmarks: timing, reported under bench/ (its report is tested)",
    "python3 -m venv .venv": "GPU set-up, before `make`",
    ".venv/bin/pip install torch --index-url https://download.pytorch.org/whl/cu128": (
        "GPU set-up: a CUDA build of torch"
    ),
    "mlflow ui --backend-store-uri sqlite:///outputs/mlflow.db": (
        "a web server that runs until stopped (the tests read the same store with MlflowClient)"
    ),
}


@dataclass
class Step:
    kind: str  # "runner" (python -m runner …), "pytest", "python" (a block), "file" (to save)
    text: str
    line: int
    expected: list[str] = field(default_factory=list)  # output under `$ …`; a file's path

    @property
    def id(self) -> str:
        return f"L{self.line}:{self.text.splitlines()[0][:60]}"


def _commands_and_blocks() -> tuple[list[Step], list[tuple[int, str]]]:
    """The runnable steps in README order, and every command-like line (for classification)."""
    steps: list[Step] = []
    commands: list[tuple[int, str]] = []
    lines = README.read_text().splitlines()
    fence: str | None = None
    block: list[str] = []
    previous_blank = True
    in_indented = False
    for number, line in enumerate(lines, 1):
        if fence is not None:
            if line.startswith("```"):
                named = re.fullmatch(r"# (\S+\.(py|yaml))", block[0]) if block else None
                if named and fence in ("python", "yaml"):  # a file the reader writes
                    steps.append(Step("file", "\n".join(block), number - len(block), [named[1]]))
                elif fence == "python":
                    steps.append(Step("python", "\n".join(block), number - len(block)))
                fence, block = None, []
            else:
                block.append(line)
            continue
        if line.startswith("```"):
            fence, block = line[3:].strip(), []
            continue
        in_indented = line.startswith("    ") and (previous_blank or in_indented)
        previous_blank = not line.strip()
        if not in_indented:
            continue
        text = line.strip()
        word = text.split()[0] if text else ""
        if word in COMMAND_WORDS:
            commands.append((number, _without_comment(text)))
            if text.startswith("$ "):
                steps.append(Step("runner", _without_comment(text[2:]), number))
            elif text.startswith(("python -m runner", 'make run ARGS="')):
                steps.append(Step("runner", _without_comment(text), number))
            elif word == "pytest":
                steps.append(Step("pytest", _without_comment(text), number))
        elif text and steps and lines[steps[-1].line - 1].strip().startswith("$ "):
            steps[-1].expected.append(text)  # output printed under a `$ …` command
    return steps, commands


def _without_comment(text: str) -> str:
    return re.sub(r"\s+#\s.*$", "", text)  # a trailing `   # what it does`


STEPS, COMMANDS = _commands_and_blocks()


def test_every_command_is_classified():
    runnable = {s.text for s in STEPS if s.kind in ("runner", "pytest")}
    unknown = [
        (n, c)
        for n, c in COMMANDS
        if c.removeprefix("$ ") not in runnable
        and c not in NOT_RUN
        and not c.startswith(("python -m runner", "make run ARGS="))
    ]
    assert unknown == [], "README commands this test neither runs nor lists in NOT_RUN"
    stale = [c for c in NOT_RUN if c not in {c for _, c in COMMANDS}]
    assert stale == [], "NOT_RUN lists lines README.md no longer has"


def test_every_command_is_one_a_shell_reads_as_printed():
    # The tour runs commands split as a shell would (shlex); a shell itself must read each one
    # too: `seed=range(5)` unquoted is bash's syntax error, though shlex takes it.
    unread = [
        (n, c)
        for n, c in COMMANDS
        if subprocess.run(
            ["bash", "-n", "-c", c.removeprefix("$ ")], capture_output=True
        ).returncode
    ]
    assert unread == [], "README commands bash cannot parse as printed"
    assert all(PLACEHOLDER not in c for _, c in COMMANDS), "a placeholder to fill in by hand"


def test_make_run_is_python_m_runner():
    recipe = (ROOT / "Makefile").read_text().split("\nrun: setup\n", 1)[1].splitlines()[0]
    assert recipe.strip() == "$(BIN)/python -m runner $(ARGS)"


@pytest.fixture(scope="module")
def tour(tmp_path_factory):
    """One fresh working directory for the whole tour, like a newcomer's."""
    return tmp_path_factory.mktemp("tour")


def _argv(step: Step, tour: Path) -> list[str]:
    text = step.text
    if text.startswith('make run ARGS="'):
        text = "python -m runner " + text.removeprefix('make run ARGS="').removesuffix('"')
    if PLACEHOLDER in text:
        text = text.replace(PLACEHOLDER, shlex.quote(str(_newest_checkpoint(tour))))
    argv = shlex.split(text)
    assert argv[:3] == ["python", "-m", "runner"], text
    return argv[3:]


def _newest_checkpoint(tour: Path) -> Path:
    found = list((tour / "outputs").glob("*/*/checkpoints/last.ckpt"))
    assert found, "no checkpoint yet: run the whole tour (the README trains before it uses one)"
    return max(found, key=lambda p: p.stat().st_mtime)


def _run_cli(args: list[str], tour: Path, capfd) -> tuple[int, str]:
    if any(a.startswith("device=ddp") for a in args):  # spawned workers: a process of its own
        done = _python(["-m", "runner", *args], tour)
        return done.returncode, done.stdout + done.stderr
    from runner.__main__ import main

    old_argv, old_cwd, old_path = sys.argv, os.getcwd(), list(sys.path)
    sys.argv = ["runner", *args]
    os.chdir(tour)
    sys.path.insert(0, str(tour))  # `python -m` imports the reader's modules (mydata.py) there
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    finally:
        sys.argv = old_argv
        os.chdir(old_cwd)
        sys.path[:] = old_path
    out, err = capfd.readouterr()
    return code, out + err


def _python(args: list[str], tour: Path) -> subprocess.CompletedProcess[str]:
    """This interpreter in a process of its own, in the tour's directory."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=tour,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=600,
    )


def _check_claims(step: Step, tour: Path, output: str) -> None:
    """What the README says next to a command, checked where it is a number or a file."""
    text = step.text
    if text.startswith("python -m runner task=inspect model=rgnet"):
        assert "Total params: 309" in output
    if text == "python -m runner model=mlp data=digits":
        assert _newest_result(tour)["metrics"]["test/acc"] >= 0.9
    if text == "python -m runner model=linear data=synthetic":
        learned = _newest_result(tour)["learned"]
        assert learned["w"] == pytest.approx([2, -3.4], abs=0.01)
        assert learned["b"] == pytest.approx(4.2, abs=0.01)
        printed = re.search(r"# ends: (result: .*)", README.read_text()).group(1)
        assert printed in output  # the README shows the run's own line
    if text.startswith("python -m runner -m") and "launcher" not in text:
        sweep = max((tour / "outputs" / "multirun").glob("*/*"), key=lambda p: p.stat().st_mtime)
        with open(sweep / "summary.csv") as f:
            jobs = list(csv.DictReader(f))
        assert jobs and {j["status"] for j in jobs} == {"ok"}
        if "init=default,xavier,normal,kaiming" in text or "init_comparison" in text:
            _check_init_comparison(sweep)
    if text.startswith("python -m runner task=eval"):
        assert "eval: test/loss" in output


def _check_init_comparison(sweep: Path) -> None:
    """What the README says five seeds show, number by number, from the sweep's summary."""
    summary = json.loads((sweep / "summary.json").read_text())
    configs = {c["label"]: c["metrics"]["val/loss"] for c in summary["configurations"]}
    ranked = [c["label"] for c in summary["configurations"]]
    assert ranked[:2] == ["init=kaiming", "init=xavier"], ranked
    assert all(len(c["jobs"]) == 5 for c in summary["configurations"])
    text = " ".join(README.read_text().split())  # lines wrapped anywhere
    for name in ("init=default", "init=normal"):
        assert f"{configs[name]['mean']:.2f}" == "1.00" and configs[name]["min"] > 0.89
        assert configs[name]["max"] < 1.09
    kaiming, xavier = configs["init=kaiming"], configs["init=xavier"]
    for spread in (kaiming, xavier):
        low, high = spread["ci95"]
        assert f"({spread['min']:.2f} to {spread['max']:.2f}; mean {spread['mean']:.2f}" in text
        assert f"{low:.2f}–{high:.2f}" in text
    with open(sweep / "summary.csv") as f:
        seed4 = {
            r["overrides"].split()[1]: float(r["val/loss"])
            for r in csv.DictReader(f)
            if "seed=4" in r["overrides"]
        }
    assert (
        f"Xavier ({seed4['init=xavier']:.2f}) beats Kaiming ({seed4['init=kaiming']:.2f})" in text
    )
    assert seed4["init=xavier"] < seed4["init=kaiming"]
    assert kaiming["ci95"][1] < min(
        configs["init=default"]["ci95"][0], configs["init=normal"]["ci95"][0]
    )
    markdown = (sweep / "summary.md").read_text()
    assert "**Not resolved by these seeds:**" in markdown and "roughly 25 seeds each" in markdown
    assert "no gradient in" in markdown


def _newest_result(tour: Path) -> dict:
    results = (tour / "outputs").glob("*/*/result.json")
    return json.loads(max(results, key=lambda p: p.stat().st_mtime).read_text())


@pytest.mark.slow
@pytest.mark.parametrize("step", STEPS, ids=[s.id for s in STEPS])
def test_the_readme_runs_as_printed(step, tour, capfd):
    if step.kind == "file":  # the reader saves it: a config or a test file
        path = tour / step.expected[0]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(step.text + "\n")
        return
    if step.kind == "pytest":
        done = _python(["-m", *shlex.split(step.text)], tour)
        assert done.returncode == 0, f"README line {step.line}:\n{done.stdout[-3000:]}"
        assert " passed" in done.stdout
        return
    if step.kind == "python":
        code = step.text
        if PLACEHOLDER in code:
            code = code.replace(PLACEHOLDER, str(_newest_checkpoint(tour)))
        done = _python(["-c", code], tour)
        assert done.returncode == 0, f"README line {step.line}:\n{done.stderr[-3000:]}"
        return
    args = _argv(step, tour)
    if any(word in args for word in GPU_WORDS) and not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU; none is visible")
    code, output = _run_cli(args, tour, capfd)
    if step.expected:  # a `$ …` example: its printed lines, without their timestamps
        for expected in step.expected:
            shown = re.sub(r"^\[\d\d:\d\d:\d\d\] ", "", expected).removesuffix("...")
            shown = shown.split(", ...")[0]
            assert shown in output, f"README line {step.line}: {shown!r} not in the output"
        return
    assert code == 0, f"README line {step.line}: exit {code}\n{output[-3000:]}"
    assert "Traceback" not in output
    _check_claims(step, tour, output)
