"""A sweep composes each job's config once: the configs the sweeper composed to check the
batch are the ones its jobs run with (issue 25)."""

import yaml
from hydra._internal.config_loader_impl import ConfigLoaderImpl


def test_each_job_of_a_sweep_is_composed_once_with_its_own_overrides(cli, tmp_path, monkeypatch):
    composed: list[list[str]] = []
    hydras = ConfigLoaderImpl.load_configuration

    def counted(self, config_name, overrides, run_mode, *args, **kwargs):
        composed.append(list(overrides))
        return hydras(self, config_name, overrides, run_mode, *args, **kwargs)

    monkeypatch.setattr(ConfigLoaderImpl, "load_configuration", counted)
    sweep_dir = tmp_path / "sweep"
    done = cli("-m", "task=inspect", "model=linear", "seed=3,4,5", f"hydra.sweep.dir={sweep_dir}")
    assert done.returncode == 0, done.stderr
    jobs = [o[-1] for o in composed if o[-1].startswith("seed=") and "," not in o[-1]]
    assert jobs == ["seed=3", "seed=4", "seed=5"]  # Hydra's own composed each one twice
    for number, seed in enumerate((3, 4, 5)):
        job = sweep_dir / str(number) / ".hydra"
        assert yaml.safe_load((job / "config.yaml").read_text())["seed"] == seed
        assert f"seed={seed}" in yaml.safe_load((job / "overrides.yaml").read_text())
        assert yaml.safe_load((job / "hydra.yaml").read_text())["hydra"]["job"]["num"] == number


def test_a_typo_in_a_later_job_stops_the_sweep_before_any_job_runs(cli, tmp_path):
    sweep_dir = tmp_path / "sweep"
    done = cli("-m", "task=inspect", "model=linear,nosuch", f"hydra.sweep.dir={sweep_dir}")
    assert done.returncode == 2
    assert "nosuch" in done.stderr and "Traceback" not in done.stderr
    assert not list(sweep_dir.glob("*/result.json"))  # the check composed it: nothing ran


def test_a_batch_past_the_limit_composes_the_rest_as_hydra_does(cli, tmp_path, monkeypatch):
    from runner.config import sweep_compose

    composed: list[str] = []
    hydras = ConfigLoaderImpl.load_configuration

    def counted(self, config_name, overrides, run_mode, *args, **kwargs):
        composed.append(overrides[-1])
        return hydras(self, config_name, overrides, run_mode, *args, **kwargs)

    monkeypatch.setattr(ConfigLoaderImpl, "load_configuration", counted)
    monkeypatch.setattr(sweep_compose, "KEEP_AT_MOST", 2)
    sweep_dir = tmp_path / "sweep"
    done = cli("-m", "task=inspect", "model=linear", "seed=3,4,5", f"hydra.sweep.dir={sweep_dir}")
    assert done.returncode == 0, done.stderr
    assert [o for o in composed if o.startswith("seed=")] == [
        *("seed=3", "seed=4", "seed=5"),  # the check
        "seed=5",  # the launcher: the one not kept
    ]
    assert yaml.safe_load((sweep_dir / "2" / ".hydra" / "config.yaml").read_text())["seed"] == 5
