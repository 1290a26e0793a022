import logging
import os
import signal
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

import runner

ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU; none is visible")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def compose():
    """runner.compose, pinned to the CPU so results don't depend on the machine."""

    def _compose(*overrides: str):
        return runner.compose(["device=cpu", *overrides])

    return _compose


def _command_line(args: tuple[str, ...], run_dir: Path) -> list[str]:
    """The arguments after `python -m runner`: a single run writes into run_dir."""
    if "-m" not in args and "--multirun" not in args:
        return [*args, f"hydra.run.dir={run_dir}"]
    return list(args)


@pytest.fixture
def cli_process(tmp_path):
    """Run `python -m runner ARGS` in a fresh process, its run directory in tmp_path (and its
    working directory, unless `cwd` is given). For what only a process of its own shows:
    signals, exit codes as the shell sees them, DDP workers, what a fresh interpreter imports,
    environment variables read at start-up."""

    def _cli(*args: str, run_dir: Path | None = None, env: dict | None = None, cwd=None):
        return subprocess.run(
            [sys.executable, "-m", "runner", *_command_line(args, run_dir or tmp_path / "run")],
            cwd=cwd or tmp_path,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
            timeout=300,
        )

    return _cli


@dataclass
class Done:
    """What `python -m runner ARGS` ended with, as subprocess.run reports it."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(tmp_path, capfd, cli_process):
    """`python -m runner ARGS` in this process, through the console's own entry point
    (runner.__main__.main()), its run directory in tmp_path; it returns what cli_process does
    (returncode, stdout, stderr) without starting Python, torch and Lightning again (seconds a
    call). As in a process of its own: the working directory is tmp_path (or `cwd`), `env`
    holds for the call, stdout and stderr are read at the file descriptors (the log lines
    Hydra's handlers write to stderr, and the run's own processes', included), a SystemExit
    gives the exit code and any other exception is printed as the interpreter prints it (exit
    code 1). What a run leaves in the process is put back: Hydra's global state, logging, the
    SIGINT and SIGTERM handlers, sys.argv and the working directory after each call, os.environ
    after the test.

    A GPU cannot be hidden from a process that has initialised CUDA: a call with
    CUDA_VISIBLE_DEVICES in `env`, where a GPU is visible, runs in a fresh process
    (cli_process)."""
    environ = dict(os.environ)

    def _cli(*args: str, run_dir: Path | None = None, env: dict | None = None, cwd=None):
        env = env or {}
        if "CUDA_VISIBLE_DEVICES" in env and torch.cuda.is_available():
            return cli_process(*args, run_dir=run_dir, env=env, cwd=cwd)
        argv = _command_line(args, run_dir or tmp_path / "run")
        capfd.readouterr()  # this call's output only
        code = _main_in_this_process(argv, cwd or tmp_path, env)
        out, err = capfd.readouterr()
        return Done(["runner", *argv], code, out, err)

    yield _cli
    for name in set(os.environ) - set(environ):
        del os.environ[name]
    os.environ.update({k: v for k, v in environ.items() if os.environ.get(k) != v})


@pytest.fixture
def assemble_model():
    """Build a model from plain dicts: `assemble_model(model, init=None, seed=0)` → Built."""
    from omegaconf import OmegaConf

    from runner.config.grammar import parse_model
    from runner.config.init import parse_init
    from runner.errors import Problems
    from runner.model.assemble import assemble

    def _assemble(model: dict, init: dict | None = None, seed: int | None = 0, device="cpu"):
        problems = Problems()
        init_spec = parse_init(OmegaConf.create(init or {}), problems)
        problems.raise_if_any()
        return assemble(parse_model(OmegaConf.create(model)), init_spec, torch.device(device), seed)

    return _assemble


def _main_in_this_process(argv: list[str], cwd: Path, env: dict[str, str]) -> int:
    """runner.__main__.main() with these arguments, as `python -m runner` runs it; the exit
    code."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    from runner.__main__ import main

    saved_argv, saved_cwd = sys.argv, os.getcwd()
    saved_env = {name: os.environ.get(name) for name in env}
    saved_hydra = HydraConfig.instance().cfg
    saved_signals = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    saved_logging = _logging_state()
    GlobalHydra.instance().clear()
    sys.argv = [sys.modules["runner.__main__"].__file__, *argv]  # as `python -m` sets it
    os.chdir(cwd)
    os.environ.update(env)
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
        if not isinstance(e.code, int | None):
            print(e.code, file=sys.stderr)
    except Exception:
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        GlobalHydra.instance().clear()
        HydraConfig.instance().cfg = saved_hydra
        for signum, handler in saved_signals.items():
            signal.signal(signum, handler)
        _restore_logging(saved_logging)
    return code


def _loggers() -> list[logging.Logger]:
    manager = logging.Logger.manager
    return [
        logging.getLogger(),
        *(x for x in manager.loggerDict.values() if isinstance(x, logging.Logger)),
    ]


def _logging_state() -> dict:
    return {x: (x.level, list(x.handlers), x.propagate, x.disabled) for x in _loggers()}


def _restore_logging(saved: dict) -> None:
    """Logging as it was. Hydra configures it for each run: its handlers on the root logger
    write to this call's stderr and to the run's log file; they are closed here."""
    kept = {h for _, handlers, _, _ in saved.values() for h in handlers}
    for logger in _loggers():
        for handler in logger.handlers:
            if handler not in kept:
                handler.close()
        if logger in saved:
            level, logger.handlers, logger.propagate, logger.disabled = saved[logger]
            logger.setLevel(level)
        else:
            logger.handlers = [h for h in logger.handlers if h in kept]
