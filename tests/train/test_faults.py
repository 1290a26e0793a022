"""Faults a long run meets: signals, kill -9, a second run into the same directory, a crash
while writing. Each run sends itself the signal at a chosen step (tests.user_layers.SignalAt)."""

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import runner
from runner.checkpoint.files import atomic_save, safe_load
from runner.rundir import in_use
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

STEPS_PER_EPOCH = 7  # rgnet on the default random data: 7 batches of 128


def rgnet(at: int, signum: int = 15, seconds: float = 0.0, eval_at: int = 0) -> list[str]:
    """rgnet with a SignalAt between its body and its head (no parameters: same state_dict)."""
    signal_at = (
        f"{{type: tests.user_layers.SignalAt, at: {at}, signum: {signum}, seconds: {seconds}, "
        f"eval_at: {eval_at}}}"
    )
    net = f"[{{block: block2}}, {signal_at}, {{type: Linear, in_features: 4, out_features: 1}}]"
    return ["model=rgnet", f"model.net={net}", "device=cpu", "optim=adam", "trainer.max_epochs=3"]


def weights(path: Path) -> dict[str, torch.Tensor]:
    return safe_load(path)["state_dict"]


def result(run_dir: Path) -> dict:
    return json.loads((run_dir / "result.json").read_text())


def rerun(command: str, run_dir: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """A printed `python -m runner ...` command, run as printed (into a run directory of ours)."""
    args = shlex.split(command.split("   #")[0])
    assert args[:3] == ["python", "-m", "runner"]
    return subprocess.run(
        [sys.executable, *args[1:], f"hydra.run.dir={run_dir}"],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGHUP, 129)]
)
def test_a_signal_saves_the_current_step_and_says_how_to_resume(
    cli_process, tmp_path, signum, code
):
    stopped = cli_process(*rgnet(at=10, signum=signum), run_dir=tmp_path / "stopped")
    name = signal.Signals(signum).name
    assert stopped.returncode == code, stopped.stderr
    assert "Traceback" not in stopped.stderr
    assert (
        f"interrupted by {name}: kept {tmp_path}/stopped/checkpoints/last.ckpt (saved at step 10)"
        in stopped.stderr
    )
    record = result(tmp_path / "stopped")
    assert (record["status"], record["signal"], record["step"]) == ("interrupted", name, 10)
    assert record["resume"].startswith("python -m runner model=rgnet")
    mid_epoch = runner.load(record["checkpoint"], allow=("tests.",))
    assert mid_epoch.net is not None


@pytest.mark.parametrize(
    ("eval_at", "signum", "code"),
    [(5, signal.SIGTERM, 143), (6, signal.SIGINT, 130), (7, signal.SIGTERM, 143)],
)
def test_a_signal_after_the_last_step_is_not_forgotten(
    cli_process, tmp_path, eval_at, signum, code
):
    # Evaluation forwards: 1 the output-shape probe, 2 Lightning's sanity check, 3-5 one
    # validation batch per epoch, 6 the test split, 7 the reload check. After the last step (the
    # last validation, the test, the verification) a signal still ends the run as interrupted.
    done = cli_process(*rgnet(at=10**6, signum=signum, eval_at=eval_at), run_dir=tmp_path / "run")
    assert done.returncode == code, done.stderr
    record = result(tmp_path / "run")
    assert record["status"] == "interrupted" and record["checkpoint"].endswith("last.ckpt")
    assert "Traceback" not in done.stderr and "nothing to resume from" not in done.stderr
    # Stopped in the last validation, the test or the verification: the printed command (with
    # max_epochs raised where training had reached it) is not refused.
    again = rerun(record["resume"], tmp_path / "again", tmp_path)  # may stop itself again
    assert again.returncode in (0, code) and "config error" not in again.stderr, again.stderr


def test_the_resume_command_keeps_the_config_dir_the_run_was_given(cli_process, tmp_path):
    (tmp_path / "mine" / "model").mkdir(parents=True)
    (tmp_path / "mine" / "model" / "sig.yaml").write_text(
        "defaults: [/schema/model@_here_, _self_]\ninput_shape: [4]\n"
        "net: [{type: Linear, in_features: 4, out_features: 1}, {type: tests.user_layers.SignalAt, at: 3}]\n"
    )
    done = cli_process(
        "--config-dir", str(tmp_path / "mine"), "model=sig", "device=cpu", run_dir=tmp_path / "run"
    )
    assert done.returncode == 143, done.stderr
    assert result(tmp_path / "run")["resume"].startswith(
        f"python -m runner --config-dir {tmp_path / 'mine'} model=sig"
    )


def test_the_printed_resume_command_finishes_an_interrupted_run_bitwise(cli_process, tmp_path):
    full = cli_process(*rgnet(at=10**6), run_dir=tmp_path / "full")
    assert full.returncode == 0, full.stderr
    stopped = cli_process(*rgnet(at=10), run_dir=tmp_path / "stopped")
    assert stopped.returncode == 143, stopped.stderr

    # The printed command resumes; its process signals itself again at its own 10th step, so
    # it may take more than one resume to finish. Each picks up exactly where the last stopped.
    command, attempt = result(tmp_path / "stopped")["resume"], 0
    while True:
        attempt += 1
        done = rerun(command, tmp_path / f"resumed{attempt}", tmp_path)
        record = result(tmp_path / f"resumed{attempt}")
        if done.returncode == 0:
            break
        assert done.returncode == 143 and attempt < 3, done.stderr
        command = record["resume"]
    assert record["status"] == "ok" and record["global_step"] == 3 * STEPS_PER_EPOCH
    final = weights(Path(record["checkpoints"]["last"]))
    reference = weights(tmp_path / "full" / "checkpoints" / "last.ckpt")
    assert all(torch.equal(final[k], reference[k]) for k in reference)


def test_kill_9_loses_at_most_one_epoch_and_the_next_run_takes_the_directory_over(
    cli_process, tmp_path
):
    run_dir = tmp_path / "run"
    killed = cli_process(*rgnet(at=2 * STEPS_PER_EPOCH + 3, signum=signal.SIGKILL), run_dir=run_dir)
    assert killed.returncode == -signal.SIGKILL
    saved = safe_load(run_dir / "checkpoints" / "last.ckpt")
    assert saved["global_step"] == 2 * STEPS_PER_EPOCH  # the end of the last finished epoch
    assert runner.load(run_dir / "checkpoints" / "last.ckpt", allow=("tests.",)).net is not None
    assert in_use(run_dir) is None  # the kernel released the dead run's lock

    again = cli_process(*rgnet(at=10**6), run_dir=run_dir)
    assert again.returncode == 0, again.stderr


def test_a_step_interval_bounds_what_a_kill_loses_within_an_epoch(cli_process, tmp_path):
    run_dir = tmp_path / "run"
    args = [
        *rgnet(at=2 * STEPS_PER_EPOCH + 4, signum=signal.SIGKILL),
        "trainer.checkpoint_every_n_steps=3",
    ]
    killed = cli_process(*args, run_dir=run_dir)
    assert killed.returncode == -signal.SIGKILL
    saved = safe_load(run_dir / "checkpoints" / "last.ckpt")
    assert saved["global_step"] == 15  # the last multiple of 3 before the kill at step 18


def test_a_second_run_into_a_live_runs_directory_is_refused_and_the_first_completes(
    cli_process, tmp_path
):
    run_dir = tmp_path / "shared"
    first = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runner",
            *rgnet(at=10**6, seconds=0.15),
            f"hydra.run.dir={run_dir}",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    deadline = time.monotonic() + 120
    while in_use(run_dir) is None:
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)

    second = cli_process("model=mlp", "device=cpu", "seed=1", run_dir=run_dir)
    assert second.returncode == 2
    assert f"hydra.run.dir: '{run_dir}' is in use by a live run (pid {first.pid})" in second.stderr
    assert "Traceback" not in second.stderr

    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert result(run_dir)["status"] == "ok"
    assert "seed=1" not in (run_dir / ".hydra" / "overrides.yaml").read_text()  # not overwritten


def test_a_temp_file_a_killed_writer_left_is_removed_at_the_next_save(tmp_path):
    path = tmp_path / "last.ckpt"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    stale = tmp_path / f".last.ckpt.{int(dead.stdout)}.tmp"
    live = tmp_path / f".last.ckpt.{os.getppid()}.tmp"  # a writer that is still running
    stale.write_bytes(b"half a checkpoint")
    live.write_bytes(b"being written")
    atomic_save({"x": torch.ones(1)}, path)
    assert not stale.exists() and live.exists()
    assert torch.equal(safe_load(path)["x"], torch.ones(1))


def test_a_run_into_a_used_directory_keeps_the_earlier_runs_files(cli_process, tmp_path):
    run_dir = tmp_path / "run"
    first = cli_process(*rgnet(at=10**6), run_dir=run_dir)
    assert first.returncode == 0, first.stderr
    before = (run_dir / "checkpoints" / "last.ckpt").read_bytes()
    # Resume into the very directory the checkpoint is in: it moves aside, and is still read.
    again = cli_process(
        *rgnet(at=10**6)[:-1],
        "trainer.max_epochs=4",
        f"ckpt_path={run_dir}/checkpoints/last.ckpt",
        run_dir=run_dir,
    )
    assert again.returncode == 0, again.stderr
    assert f"run dir: an earlier run's files were moved to {run_dir}/previous/1" in again.stderr
    assert (run_dir / "previous" / "1" / "checkpoints" / "last.ckpt").read_bytes() == before
    assert result(run_dir / "previous" / "1")["global_step"] == 3 * STEPS_PER_EPOCH
    assert result(run_dir)["global_step"] == 4 * STEPS_PER_EPOCH


def test_a_storm_of_signals_still_ends_with_the_record_and_the_checkpoint(cli_process, tmp_path):
    signal_at = "{type: tests.user_layers.SignalAt, at: 10, burst: 200}"
    net = f"model.net=[{{block: block2}}, {signal_at}, {{type: Linear, in_features: 4, out_features: 1}}]"
    done = cli_process(
        "model=rgnet",
        net,
        "device=cpu",
        "trainer.checkpoint_every_n_steps=1",
        run_dir=tmp_path / "run",
    )
    # 143, or ended by the storm itself once Python restores the default handlers at exit:
    # a shell shows both as 143.
    assert done.returncode in (143, -signal.SIGTERM), done.stderr
    assert "Traceback" not in done.stderr and "nothing to resume from" not in done.stderr
    record = result(tmp_path / "run")
    assert record["status"] == "interrupted" and Path(record["checkpoint"]).is_file()


def test_sigterm_to_a_ddp_launcher_stops_every_rank_before_the_record(tmp_path):
    """device=ddp_cpu: the spawned ranks stop with the launching process, and the checkpoint
    the record names is the last one written (they trained on and rewrote it)."""
    run_dir, log = tmp_path / "run", tmp_path / "run.log"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runner",
            "device=ddp_cpu",
            "trainer.max_epochs=2000",
            "stats=off",
            f"hydra.run.dir={run_dir}",
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 240
    while not last.is_file():
        assert time.monotonic() < deadline and process.poll() is None, log.read_text()
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 143, log.read_text()
    record = result(run_dir)
    assert record["status"] == "interrupted" and record["checkpoint"] == str(last)
    written = last.stat().st_mtime_ns
    assert record["step"] == safe_load(last)["global_step"]
    time.sleep(3)
    assert last.stat().st_mtime_ns == written  # no rank trains on


def catches_sigterm(pid: int) -> bool:
    """Whether the process has a handler for SIGTERM (Linux: /proc/PID/status SigCgt)."""
    status = Path(f"/proc/{pid}/status").read_text()
    caught = int(next(x for x in status.splitlines() if x.startswith("SigCgt:")).split()[1], 16)
    return bool(caught >> (signal.SIGTERM - 1) & 1)


@pytest.mark.parametrize("after", [0.0, 0.1, 0.3, 1.5])
@pytest.mark.parametrize(("first", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_while_the_command_starts_is_one_line_and_the_first_signal_decides(
    tmp_path, after, first, code
):
    # While Python imports Hydra and torch, before the run has started: no traceback, the exit
    # code of the first signal; a second one once the first is handled (an impatient Ctrl-C)
    # changes nothing. Python's own start-up, before the runner's first line (a few ms), is
    # Python's: the test waits for the runner's handler. (Two signals pending at once are
    # handled by Python in the order of their numbers: SIGINT first.)
    started = subprocess.Popen(
        [sys.executable, "-m", "runner", "task=inspect", f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    while not catches_sigterm(started.pid):
        time.sleep(0.001)
    time.sleep(after)
    started.send_signal(first)
    assert started.stderr is not None
    lines = []
    for line in started.stderr:
        lines.append(line)
        if "interrupted by" in line:
            started.send_signal(signal.SIGINT + signal.SIGTERM - first)  # the other one
            break
    lines += started.stderr.readlines()
    stderr = "".join(lines)
    started.wait(timeout=120)
    if started.returncode == 0:  # it had finished before the signal: nothing to check
        return
    assert started.returncode == code, stderr
    assert "Traceback" not in stderr and "interrupted by" in stderr
    if (tmp_path / "run").exists():  # Hydra had made the run's directory: it says what happened
        # (ok: the signal came as the finished run's process was ending; its work is whole)
        assert result(tmp_path / "run")["status"] in ("interrupted", "ok")


def test_a_keyboard_interrupt_in_the_runs_code_is_recorded_as_an_interruption(tmp_path):
    from runner.errors import Interrupted
    from runner.run import run

    net = "model.net=[{type: tests.user_layers.RaiseAt, at: 3, error: KeyboardInterrupt}, {type: Linear, in_features: 4, out_features: 1}]"
    cfg = runner.compose(["model=rgnet", net, "device=cpu", "trainer.max_epochs=1", "logger=none"])
    previous = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(Interrupted):
            run(cfg, tmp_path)
    finally:
        signal.signal(signal.SIGINT, previous)  # Lightning ignores SIGINT once it saw one
    record = result(tmp_path)
    assert (record["status"], record["signal"]) == ("interrupted", "SIGINT")
    assert "sys.exit" not in json.dumps(record)


def test_an_exception_in_the_runs_code_is_recorded_and_shown(tmp_path):
    from runner.run import run

    net = "model.net=[{type: tests.user_layers.RaiseAt, at: 3}, {type: Linear, in_features: 4, out_features: 1}]"
    cfg = runner.compose(["model=rgnet", net, "device=cpu", "trainer.max_epochs=1", "logger=none"])
    with pytest.raises(ValueError, match="a bug in my layer"):
        run(cfg, tmp_path)
    record = result(tmp_path)
    assert (record["status"], record["error"]) == ("failed", "ValueError: a bug in my layer")
    assert "error: ValueError: a bug in my layer" in (tmp_path / "report.html").read_text()
