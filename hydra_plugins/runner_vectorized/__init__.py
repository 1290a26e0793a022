"""The runner's vectorized launcher as a Hydra launcher plugin (`hydra/launcher=vectorized`,
conf/hydra/launcher/vectorized.yaml). Hydra accepts launchers only from the `hydra_plugins`
namespace; the work is runner.sweep.vectorized's, imported when a sweep launches (Hydra scans
this module on every start: it stays light)."""

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

log = logging.getLogger(__name__)


class VectorizedLauncher(Launcher):
    def __init__(self, max_members: int | None = None) -> None:
        super().__init__()
        self.max_members = max_members
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        from runner.sweep.vectorized import check_max_members, job_configs, run_all

        check_max_members(self.max_members)  # before any job is listed or composed
        setup_globals()
        assert self.config is not None and self.hydra_context is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        log.info(f"Launching {len(job_overrides)} jobs locally, vectorized where they allow")
        for idx, overrides in enumerate(job_overrides):
            log.info(f"\t#{initial_job_idx + idx} : {' '.join(filter_overrides(overrides))}")
        jobs = job_configs(
            self.config, self.hydra_context.config_loader, job_overrides, initial_job_idx
        )
        return run_all(jobs, self._run, self.max_members)

    def _run(self, job: Any) -> JobReturn:
        assert self.config is not None and self.hydra_context is not None
        assert self.task_function is not None
        returned = run_job(
            hydra_context=self.hydra_context,
            task_function=self.task_function,
            config=job.config,
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
        )
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        return returned
