"""sweep.resume=true continues only the sweep a directory holds: the sweep's overrides are
recorded before its first job, and resuming with other ones is refused with both listed."""

import json

import pytest

from runner import ConfigError
from runner.sweep.job import SWEEP_RECORD, hold_sweep


def test_resume_continues_only_the_sweep_the_directory_holds(tmp_path):
    sweep_dir = tmp_path / "sweep"
    first = ("optim.optimizer.lr=0.1", "seed=1,2")
    hold_sweep(sweep_dir, first, resume=False)
    record = (sweep_dir / SWEEP_RECORD).read_text()

    hold_sweep(sweep_dir, tuple(reversed(first)), resume=True)  # the same sweep: goes on
    with pytest.raises(ConfigError) as refused:
        hold_sweep(sweep_dir, ("optim.optimizer.lr=0.5", "seed=3"), resume=True)
    assert str(refused.value) == (
        f"sweep.resume: {str(sweep_dir)!r} holds the sweep of optim.optimizer.lr=0.1 seed=1,2, "
        "not of optim.optimizer.lr=0.5 seed=3; allowed: the same overrides as that sweep (its "
        "command plus sweep.resume=true), or another hydra.sweep.dir"
    )
    assert (sweep_dir / SWEEP_RECORD).read_text() == record  # still the first sweep's


def test_a_new_sweep_into_the_directory_is_the_one_a_resume_continues(tmp_path):
    """The rerun command a sweep prints must work: a second sweep (no resume) into a directory
    takes it over, so resuming with the second one's overrides goes on."""
    sweep_dir = tmp_path / "sweep"
    hold_sweep(sweep_dir, ("optim.optimizer.lr=0.1,abc",), resume=False)
    hold_sweep(sweep_dir, ("optim.optimizer.lr=0.1",), resume=False)
    hold_sweep(sweep_dir, ("optim.optimizer.lr=0.1",), resume=True)
    with pytest.raises(ConfigError):
        hold_sweep(sweep_dir, ("optim.optimizer.lr=0.1,abc",), resume=True)


def test_a_sweepers_failure_before_any_job_ended_is_a_config_error(tmp_path):
    """A sweeper that fails while it sets up (a storage URL it cannot open) is a config
    mistake; only once a job has ended is a failure the sweeper giving up on its jobs."""
    from runner.__main__ import _sweep_started
    from runner.sweep.callback import SweepSummary

    SweepSummary.started, SweepSummary.sweep_dir = True, tmp_path
    try:
        assert not _sweep_started()
        (tmp_path / "0").mkdir()
        (tmp_path / "0" / "result.json").write_text("{}")
        assert _sweep_started(reset=True)
        assert not _sweep_started()  # reset: the next call of main starts afresh
    finally:
        SweepSummary.started, SweepSummary.sweep_dir = False, None


def test_a_result_json_of_any_shape_is_read_without_failing_the_summary(tmp_path):
    from runner.sweep.records import read_jobs

    wrongs = [
        {"metrics": {"val/loss": None, "test/loss": "abc", "val/acc": 0.5}},
        {"metrics": None, "attempt": "2", "job": [1], "overrides": "model=mlp"},
        {"stats": {"no_gradient": "x", "dead_units": ["0"]}, "parameters": "many", "seconds": {}},
    ]
    for number, result in enumerate(wrongs):
        (tmp_path / str(number) / ".hydra").mkdir(parents=True)
        (tmp_path / str(number) / "result.json").write_text(json.dumps({"status": "ok", **result}))
    records = read_jobs(tmp_path)
    assert [r.number for r in records] == [0, 1, 2]
    assert records[0].metrics == {"val/acc": 0.5} and records[1].metrics == {}
    assert records[1].attempts == 1 and records[1].overrides == ()
    assert records[2].diagnosis == {"dead_units": ["0"]} and records[2].parameters is None


@pytest.mark.parametrize("kind", ["a link", "a file"])
def test_a_job_folder_that_is_a_link_or_a_file_is_refused_before_any_job(tmp_path, kind):
    outside = tmp_path / "outside"
    outside.mkdir()
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    if kind == "a link":
        (sweep_dir / "0").symlink_to(outside)
    else:
        (sweep_dir / "0").write_text("mine")
    with pytest.raises(ConfigError) as refused:
        hold_sweep(sweep_dir, ("seed=1",), resume=False)
    assert refused.value.problems[0].startswith(f"hydra.sweep.dir: {str(sweep_dir / '0')!r} is ")
    assert not list(outside.iterdir()) and not (sweep_dir / SWEEP_RECORD).exists()


def test_an_unreadable_result_json_is_a_failed_job_that_says_so(tmp_path):
    from runner.sweep.records import read_jobs

    for number, text in enumerate(["[1, 2]", "\x00\xff garbage", '{"status": 5}']):
        (tmp_path / str(number) / ".hydra").mkdir(parents=True)
        (tmp_path / str(number) / "result.json").write_text(text)
    records = read_jobs(tmp_path)
    assert [r.status for r in records] == ["failed"] * 3
    assert "result.json is unreadable" in records[0].error


def test_a_vectorized_members_wall_time_counts_its_share_of_the_groups_training(tmp_path):
    """The group trained before its jobs ran; each job's seconds (result.json, the summary)
    then compare with a job trained alone."""
    import runner
    from runner.run import run

    job = {"job": 1, "vectorized": {"jobs": [0, 1, 2], "group_seconds": 30.0}}
    result = run(runner.compose(["task=inspect", "device=cpu"]), tmp_path / "1", job)
    assert 10.0 <= result["seconds"] < 15.0
    assert json.loads((tmp_path / "1" / "result.json").read_text())["seconds"] == result["seconds"]
