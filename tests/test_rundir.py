"""The run directory holds only what the runner made, and nothing a run made is lost: a link,
FIFO, directory or file in the place of one of the runner's own is refused or replaced, never
followed out of the directory; an earlier run's files, Hydra's `.hydra/` and log included, move
to previous/<n>/ with the paths inside its result.json following them; a refused run writes
nothing into the directory it was refused."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from subprocess import PIPE

import pytest

from runner import ConfigError
from runner.rundir import claim, in_use, read_result, set_aside_previous, write_result
from runner.rundir.lock import LOCK


def _plant(path, what, victim):
    if what == "symbolic link":
        path.symlink_to(victim)
    elif what == "FIFO":
        os.mkfifo(path)
    elif what == "directory":
        path.mkdir()
    else:
        path.write_text("the user's own file\n")


@pytest.mark.parametrize("what", ["symbolic link", "FIFO", "directory"])
def test_nothing_in_the_place_of_the_lock_is_followed(tmp_path, what):
    run_dir, victim = tmp_path / "run", tmp_path / "victim.txt"
    run_dir.mkdir()
    victim.write_text("precious\n")
    _plant(run_dir / LOCK, what, victim)
    refused = pytest.raises(ConfigError, match=f"{LOCK}' is a {what}, not a file the runner wrote")
    with refused, claim(run_dir):
        pass
    assert victim.read_text() == "precious\n"
    assert in_use(run_dir) is None and read_result(run_dir) == {}  # read: no hang on a FIFO


@pytest.mark.parametrize(
    ("what", "kind"), [("symbolic link", "a symbolic link"), ("file", "a file")]
)
def test_previous_that_is_not_the_runners_folder_is_refused_and_kept(tmp_path, what, kind):
    run_dir, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    run_dir.mkdir()
    elsewhere.mkdir()
    (run_dir / "result.json").write_text("{}")
    _plant(run_dir / "previous", what, elsewhere)
    with pytest.raises(ConfigError, match=f"previous' is {kind}, not the folder .*; allowed: "):
        set_aside_previous(run_dir)
    assert (run_dir / "result.json").exists() and not any(elsewhere.iterdir())


def test_a_link_in_the_place_of_a_runner_file_is_moved_or_replaced_not_followed(tmp_path):
    run_dir, victim = tmp_path / "run", tmp_path / "victim.txt"
    run_dir.mkdir()
    victim.write_text("precious\n")
    (run_dir / "params.csv").symlink_to(tmp_path / "not-yet")  # dangling: still the runner's name
    (run_dir / "result.json").symlink_to(victim)
    kept = set_aside_previous(run_dir)
    assert kept is not None and (kept / "params.csv").is_symlink()
    (run_dir / "result.json").symlink_to(victim)
    write_result(run_dir, {"status": "ok"})
    assert victim.read_text() == "precious\n" and not (run_dir / "result.json").is_symlink()
    assert read_result(run_dir) == {"status": "ok"}


def test_an_earlier_runs_files_move_whole_and_its_record_follows_them(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / ".hydra").mkdir()
    (run_dir / ".hydra" / "overrides.yaml").write_text("- seed=1\n")
    (run_dir / "runner.log").write_text("the earlier run's log\n")
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"weights")
    last = run_dir / "checkpoints" / "last.ckpt"
    write_result(
        run_dir,
        {
            "checkpoints": {"last": str(last)},
            "resume": f"python -m runner seed=1 ckpt_path={last}   # 3 more epochs",
            "plots": [str(run_dir / "plots" / "a.png")],
            "source": str(tmp_path / "run2" / "checkpoints" / "x.ckpt"),  # not this directory's
        },
    )
    kept = set_aside_previous(run_dir)
    assert kept == run_dir / "previous" / "1"
    assert not (run_dir / ".hydra").exists() and not (run_dir / "runner.log").exists()
    assert (kept / ".hydra" / "overrides.yaml").read_text() == "- seed=1\n"
    record = json.loads((kept / "result.json").read_text())
    moved = kept / "checkpoints" / "last.ckpt"
    assert record["checkpoints"]["last"] == str(moved) and moved.read_bytes() == b"weights"
    assert record["resume"] == f"python -m runner seed=1 ckpt_path={moved}   # 3 more epochs"
    assert record["plots"] == [str(run_dir / "plots" / "a.png")]  # plots did not move: as it was
    assert record["source"] == str(tmp_path / "run2" / "checkpoints" / "x.ckpt")


def _main(capfd, *args: str) -> tuple[int, str]:
    """`python -m runner ARGS`, in this process (a fresh one costs seconds of imports)."""
    from runner.__main__ import main

    old_argv, sys.argv = sys.argv, ["runner", *args]
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    finally:
        sys.argv = old_argv
    return code, capfd.readouterr().err


@contextmanager
def _held_elsewhere(run_dir: Path) -> Iterator[int]:
    """A live run of another process holds `run_dir` (its lock, as the runner takes it)."""
    hold = (
        "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
        "fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, b'%d' % os.getpid()); print(flush=True); "
        "time.sleep(120)"
    )
    holder = subprocess.Popen([sys.executable, "-c", hold, str(run_dir / LOCK)], stdout=PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline()
        yield holder.pid
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


def test_a_refused_run_writes_nothing_and_a_taken_over_one_keeps_hydras_record(
    tmp_path, capfd, monkeypatch
):
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "overrides.yaml").write_text("- seed=1\n")
    (run_dir / "result.json").write_text('{"status": "ok"}\n')
    args = ("task=inspect", "device=cpu", "seed=2", f"hydra.run.dir={run_dir}")
    with _held_elsewhere(run_dir) as pid:
        before = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")}
        code, err = _main(capfd, *args)
        assert code == 2 and "Traceback" not in err
        assert f"hydra.run.dir: '{run_dir}' is in use by a live run (pid {pid})" in err
        assert {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")} == before  # nothing written

    import hydra.core.utils

    save_config, held_when_written = hydra.core.utils._save_config, []

    def save(*a, **k):  # Hydra writes .hydra/: the run's lock must be held by then
        held_when_written.append(in_use(run_dir))
        save_config(*a, **k)

    monkeypatch.setattr(hydra.core.utils, "_save_config", save)
    code, err = _main(capfd, *args)
    assert code == 0, err
    assert held_when_written and all(held_when_written)
    assert f"an earlier run's files were moved to {run_dir / 'previous' / '1'}" in err
    assert (run_dir / "previous" / "1" / ".hydra" / "overrides.yaml").read_text() == "- seed=1\n"
    assert "seed=2" in (run_dir / ".hydra" / "overrides.yaml").read_text()
    assert "earlier run's files were moved" in (run_dir / "runner.log").read_text()


def test_pictures_pages_and_tables_replace_a_link_in_their_place_never_write_through_it(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from runner.params.plots import save_png
    from runner.rundir import replace_file

    victim = tmp_path / "victim"
    victim.write_text("mine")
    for name in ("summary.png", "report.html"):
        (tmp_path / name).symlink_to(victim)
    fig = plt.figure()
    save_png(fig, tmp_path / "summary.png", dpi=20)
    plt.close(fig)
    replace_file(tmp_path / "report.html", lambda f: f.write(b"<html></html>"))
    assert victim.read_text() == "mine"
    assert (
        not (tmp_path / "summary.png").is_symlink() and not (tmp_path / "report.html").is_symlink()
    )
    assert (tmp_path / "summary.png").read_bytes().startswith(b"\x89PNG")
