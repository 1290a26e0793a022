"""Many devices: ties survive DDP on every rank, FSDP refuses what it would untie, and a parallel
sweep gives each one-GPU job its own GPU. GPU cases run wherever CUDA is visible."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

import runner
from runner import ConfigError
from runner.config.spec import parse_run
from runner.sweep.job import Job, gpu_for
from tests.conftest import ROOT


class TieCheck(pl.Callback):
    """On every rank after training: are the tied names one tensor, and what does it hold?"""

    def __init__(self, out: Path):
        self.out = out

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        from runner.checkpoint.restore import sharing

        net = pl_module.net
        groups = sharing(net)
        same = all(len({id(net.get_parameter(n)) for n in group}) == 1 for group in groups)
        values = {group[0]: net.get_parameter(group[0]).detach().cpu().tolist() for group in groups}
        record = {
            "rank": trainer.global_rank,
            "same_object": same,
            "groups": groups,
            "values": values,
        }
        (self.out / f"rank{trainer.global_rank}.json").write_text(json.dumps(record))


@pytest.mark.slow
def test_tied_parameters_stay_one_tensor_with_the_same_values_on_every_ddp_rank(tmp_path):
    from runner.train.fit import train

    cfg = runner.compose(["model=shared", "device=ddp_cpu", "trainer.max_epochs=2", "stats=off"])
    result = train(parse_run(cfg), tmp_path, extra_callbacks=(TieCheck(tmp_path),))
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["rank"] for r in ranks] == [0, 1]
    assert all(r["same_object"] and r["groups"] for r in ranks)
    assert ranks[0]["values"] == ranks[1]["values"]  # DDP kept the ranks in step, ties included
    assert result["verification"]["shared_tensors_intact"]


def test_fsdp_refuses_a_model_with_ties_naming_them(compose):
    with pytest.raises(ConfigError) as refused:
        parse_run(compose("model=shared", "device=fsdp", "task=inspect"))
    assert any(
        p.startswith(
            "device.strategy: 'fsdp' shards parameters across GPUs, and this model ties or shares some (model.shared.shared)"
        )
        for p in refused.value.problems
    )


def test_a_parallel_sweep_gives_each_one_gpu_job_its_own_gpu():
    jobs = [Job(n, (), {}, Path()) for n in range(5)]
    assert [gpu_for(j, 2) for j in jobs] == [0, 1, 0, 1, 0]
    assert [gpu_for(j, 4) for j in jobs] == [0, 1, 2, 3, 0]
    assert gpu_for(jobs[3], 1) is None and gpu_for(jobs[3], 0) is None  # nothing to spread


def _sweep(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runner", "-m", *args, f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_joblib_jobs_land_on_different_gpus(tmp_path):
    done = _sweep(
        tmp_path,
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "device=gpu",
        "seed=0,1",
        "trainer.max_epochs=1",
    )
    assert done.returncode == 0, done.stderr
    devices = [
        json.loads((tmp_path / "sweep" / str(n) / "result.json").read_text())["device"]["devices"]
        for n in (0, 1)
    ]
    assert devices == [[0], [1]]


@pytest.mark.gpu
def test_all_gpus_with_ddp_inside_a_multirun_leave_one_directory_per_job(tmp_path):
    done = _sweep(tmp_path, "device=gpus", "model=mlp", "seed=0,1", "trainer.max_epochs=1")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.is_dir()) == ["0", "1"]


@pytest.mark.gpu
def test_fsdp_trains_an_untied_model(tmp_path):
    from runner.run import run

    result = run(runner.compose(["model=mlp", "device=fsdp", "trainer.max_epochs=1"]), tmp_path)
    assert result["status"] == "ok"
