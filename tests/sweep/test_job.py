"""sweep.resume=true continues only the sweep a directory holds: the sweep's overrides are
recorded before its first job, and resuming with other ones is refused with both listed."""

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
