"""`python -m runner`: Hydra reads the command line and composes the config; runner.run runs it.

Nothing heavy is imported here, so `--help` and `--cfg job` answer without loading torch.
"""

import os
import re
import shlex
import signal
import sys
from pathlib import Path
from typing import Any

from runner import STOP_SIGNALS, early_signals, ending, ignore
from runner.errors import RAISED_IN_RUN, Interrupted, stamped

# `python -m runner` installed these first thing (runner/__init__.py), the console script here.
AS_COMMAND = __name__ == "__main__" or Path(sys.argv[0]).name == "runner"
if AS_COMMAND:
    early_signals()

import hydra  # noqa: E402  (after the handlers: loading it takes a noticeable moment)
from omegaconf import DictConfig  # noqa: E402

from runner.config import config_dir, group_options, schema, sweep_compose  # noqa: E402

schema.register()
group_options.install()  # --help lists the groups without one repository copy per group
sweep_compose.install()  # a sweep composes each job once, not twice


_started: list[Path] = []  # the run directories whose task function started in this process


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")
def _app(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig

    _started.append(Path(HydraConfig.get().runtime.output_dir))  # before torch loads
    from runner.cli import main as run_main

    return run_main(cfg)  # a sweep's search (Optuna) minimizes what a job returns


def main() -> None:
    """The CLI (`_main`). Once it has ended, however (done, refused, stopped by a signal), the
    command ignores signals while Python shuts down: the outcome is recorded and its exit code
    stands (Python would put the default handlers back, and a late Ctrl-C or SIGTERM would kill
    it with another code)."""
    try:
        _main()
    finally:
        if AS_COMMAND:
            ending()


def _main() -> None:
    """The CLI. A mistake Hydra finds while composing the config (an unknown option, a key the
    schema refuses, `model=5`) is one `config error:` line and exit code 2, like every other
    config mistake; Hydra prints some of those as tracebacks. A failure inside a run keeps its
    traceback (that is a bug to report). HYDRA_FULL_ERROR=1 still shows every traceback."""
    was = os.environ.get("HYDRA_FULL_ERROR")
    _sweep_started(reset=True)  # called again in one process: an earlier sweep is over
    _started.clear()
    _forget_claimed()
    if "runner.sweep.stop" in sys.modules:
        stop_state = sys.modules["runner.sweep.stop"].SweepStop
        stop_state.signum, stop_state.sweep_dir = None, None
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra re-raises, and this decides what is shown
    # A signal before a run takes it over (while Hydra composes, while torch loads): one line
    # and 128 + the signal, as during a run (runner.cli, runner.sweep.stop install their own).
    handlers = {s: signal.signal(s, _raise_interrupted) for s in STOP_SIGNALS}
    try:
        _app()
        _sweep_stopped(None)  # a signal during the summary, after the last job
    except Interrupted as stop:  # a signal stopped a sweep (its summary so far) or Hydra
        _sweep_stopped(stop)
        _record_early_stop(stop)
        print(stamped(f"interrupted by {stop.name} before the run started"), file=sys.stderr)
        sys.exit(128 + stop.signum)
    except BrokenPipeError:  # `runner --help | head`: the reader has all it wanted
        _stdout_closed()
    except Exception as e:
        if was == "1" or getattr(e, RAISED_IN_RUN, False):  # the run's own: runner.cli marks it
            raise
        if _raised_by_a_sweeper(e):  # after its jobs ran: their summary says what happened
            print(stamped(f"sweep: the sweeper stopped: {e} (see summary.md)"), file=sys.stderr)
            sys.exit(1)
        print(stamped(f"config error: {_message(e)}"), file=sys.stderr)
        sys.exit(2)
    finally:  # called again in the same process (a test, a notebook): as the caller had it
        for signum, handler in handlers.items() if not AS_COMMAND else ():  # (main: ending)
            signal.signal(signum, handler)
        if was is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = was


def _stdout_closed() -> None:
    """stdout's reader went away (`| head`): not an error. What is still buffered goes
    nowhere (Python would report it at exit), and the exit code is the run's."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _sweep_stopped(stop: Interrupted | None) -> None:
    """The end of a sweep that a signal stopped: the summary so far, how to finish it, and
    128 + the signal as exit code."""
    module = sys.modules.get("runner.sweep.stop")
    signum = stop.signum if stop is not None else None
    if module is not None and signum is None:
        signum = module.SweepStop.signum
    if module is None or signum is None or module.SweepStop.sweep_dir is None:
        return
    module.stopped(signum)
    sys.exit(128 + signum)


def _forget_claimed() -> None:
    """Called again in one process: the run directories an earlier call took are not this
    call's (nothing loads the guard before Hydra does)."""
    guard = sys.modules.get("runner.rundir.guard")
    if guard is not None:
        guard.CLAIMED.clear()


def _record_early_stop(stop: Interrupted) -> None:
    """A run directory that Hydra made before the signal came gets its result.json too."""
    from runner.rundir import in_use, read_result, write_result
    from runner.rundir.guard import CLAIMED
    from runner.rundir.lock import release

    if not (_started or CLAIMED):  # Hydra had not made a run directory yet
        return
    run_dir = _started[-1] if _started else CLAIMED[-1]
    release(run_dir)  # held by this process (the run directory's callback took it): let go
    if run_dir.is_dir() and not read_result(run_dir) and not in_use(run_dir):
        error = f"interrupted by {stop.name} before the run started"
        write_result(run_dir, {"status": "interrupted", "signal": stop.name, "error": error})


def _raise_interrupted(signum: int, frame: object) -> None:
    for each in STOP_SIGNALS:  # ending: the first signal decides
        signal.signal(each, ignore)
    raise Interrupted(signum)


def _raised_by_a_sweeper(e: BaseException) -> bool:
    """A sweeper plugin's own failure once the jobs ran (Optuna when every trial failed): an
    error of neither Hydra's nor OmegaConf's kind, raised after the sweep had started."""
    config_error = type(e).__module__.startswith(("hydra", "omegaconf"))
    return _sweep_started() and not config_error


def _sweep_started(reset: bool = False) -> bool:
    """Whether a sweep started in this process and a job of it ended (runner.sweep.callback
    records the sweep; Hydra imports that module only once the config is composed, so nothing
    loads it here)."""
    callback = sys.modules.get("runner.sweep.callback")
    if callback is None:
        return False
    summary = callback.SweepSummary
    # Once a job has ended: before that, the failure is in the sweep's set-up (a bad storage
    # URL), which is a mistake in the config, not the sweeper giving up on its jobs.
    sweep_dir = summary.sweep_dir
    started = bool(summary.started) and sweep_dir is not None
    started = started and any(sweep_dir.glob("*/result.json"))
    if reset:
        summary.started, summary.sweep_dir = False, None
    return started


def _message(e: BaseException) -> str:
    from runner.errors import missing_option

    text = str(e).strip().removeprefix("config error: ")
    cause = e.__cause__
    unknown = _unknown_key(text, cause)
    if unknown:
        return unknown
    if cause is not None and type(cause).__module__.startswith("omegaconf"):
        text += f"\n{str(cause).strip()}"  # OmegaConf's own line: the full key and the value
    missing = missing_option(e)  # an unknown option of a group: the options, a close one
    if missing:
        return missing + _without_plus(missing.split(":", 1)[0])
    multiple = re.match(r"Multiple values for (\S+)\.", text)
    if multiple:  # `+experiment=NAME` for a group already in the defaults list (as null)
        group = multiple.group(1)
        text = f"{group}: choose it with {group}=NAME, without '+' (the defaults list has it)"
    unquoted = re.match(r"Error parsing override '([^'=]+)=([^']*\))'\n.*Unknown function", text)
    if unquoted:  # `model.net.3=Dropout(0.2)`: Hydra reads a call as one of its functions
        key, row = unquoted.groups()
        text += f"\n(a row of calls is a quoted string: '{key}=\"{row}\"')"
    if text.startswith("Config group override must be"):
        text += " (a group's option is a name, as in model=mlp; quote one that looks like a number)"
    if not type(e).__module__.startswith(("hydra", "omegaconf")):  # Hydra tripped over a value
        overrides = " ".join(a for a in sys.argv[1:] if not a.startswith("-"))
        text = f"{text or type(e).__name__} (while Hydra composed the overrides: {overrides})"
    return text or type(e).__name__


def _without_plus(group: str) -> str:
    """`+experiment=tyng`: where the defaults list has the group, the '+' is a mistake too."""
    from runner.config.tree import in_defaults_list

    if any(a.startswith(f"+{group}=") for a in sys.argv[1:]) and in_defaults_list(group):
        return f"; and write {group}=NAME, without '+' (the defaults list has it)"
    return ""


def _unknown_key(text: str, cause: BaseException | None) -> str | None:
    """`trainer.max_epoch=1`, a key its section does not have: the key, the section's keys and
    a close match, and how to add a new key on purpose (Hydra's own text shows none of them)."""
    from runner.errors import did_you_mean, one_of

    struct = cause is not None and "is not in struct" in str(cause)
    schema = cause is not None and re.search(r"Key '[^']*' not in '", str(cause)) is not None
    if not (struct or schema):
        return None
    full_key, key = getattr(cause, "full_key", None), getattr(cause, "key", None)
    parent = getattr(cause, "parent_node", None)
    if not full_key or key is None or parent is None or not hasattr(parent, "keys"):
        return None
    keys = [str(k) for k in parent]
    added = re.search(r"use \+([^=\s]+)=(.*)", text)
    inside = _inside_a_string(added.group(1), added.group(2)) if added and not keys else None
    if inside:
        return inside
    merged = _merged(str(full_key), added.group(1), added.group(2), parent) if added else None
    if merged:
        return merged
    close = did_you_mean(str(key), keys)
    elsewhere = "" if close else _elsewhere(str(full_key), key, parent)
    # A schema (model, init, device) takes no new keys; a plain section takes them with '+'
    # (no hint where the key the user meant is elsewhere: adding this one would not set it).
    how = ""
    if added and struct and not elsewhere:
        how = f"; to add a new key, write {shlex.quote(f'+{added.group(1)}={added.group(2)}')}"
    return f"{full_key}: unknown key; allowed: {one_of(keys) or 'none'}{close or elsewhere}{how}"


def _merged(full_key: str, key: str, value: str, parent: Any) -> str | None:
    """`model.net.0={type: Linear}` where model.net[0] is `{block: block2}`: Hydra merges the
    mapping into the entry (the `+` it suggests would too); null first replaces it."""
    dotted = re.sub(r"\[(\d+)\]", r".\1", full_key)
    if not (dotted.startswith(f"{key}.") and value.lstrip().startswith("{")):
        return None
    from omegaconf import OmegaConf

    entry = OmegaConf.to_container(parent, resolve=False)
    now = ", ".join(f"{k!s}: {v}" for k, v in entry.items()) if isinstance(entry, dict) else ""
    return (
        f"{full_key}: unknown key: a mapping given for {key} is merged into the entry there "
        f"({{{now}}}), not put in its place; to replace the entry, set it to null first: "
        f"{shlex.quote(f'{key}=null')} {shlex.quote(f'{key}={value}')}"
    )


def _elsewhere(full_key: str, key: object, parent: Any) -> str:
    """`optim.lr`: "; did you mean 'optim.optimizer.lr'?", the key below its parent, or
    elsewhere in the same section."""
    from runner.errors import nested_match

    if "." not in full_key:  # a top-level key: no section to look in
        return ""
    section = parent
    while section._get_parent() is not None and section._get_parent()._get_parent() is not None:
        section = section._get_parent()  # the top-level section (optim), below the root
    parent_key = full_key.rsplit(".", 1)[0] if "." in full_key else ""
    found = nested_match(key, parent, parent_key) or nested_match(
        key, section, re.split(r"[.\[]", full_key, maxsplit=1)[0]
    )
    return f"; did you mean '{found}'?" if found else ""


def _inside_a_string(key: str, value: str) -> str | None:
    """`model.net.0.out_channels=8` where model.net[0] is a string (a row of calls): how to
    change it, read from the config composed without that override."""
    from runner.config.row_override import inside_a_string
    from runner.config.tree import compose

    others = [a for a in sys.argv[1:] if not a.startswith("-") and not _sets(a, key)]
    try:
        return inside_a_string(compose(others), key, value)
    except Exception:  # the others do not compose alone (a sweep's values): Hydra's hint
        return None


def _sets(override: str, key: str) -> bool:
    return override.lstrip("+~").split("=", 1)[0] == key


if __name__ == "__main__":
    main()
