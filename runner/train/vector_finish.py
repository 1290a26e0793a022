"""A member of a vectorized group becomes a full run: when the sweep's launcher runs the
member's job (its own run directory, `.hydra/`, log and result.json, as for any job), task=train
writes what the group trained for it — the metrics its loggers get, param_stats.csv and its
plots, last.ckpt and the best checkpoint, the test stage, the verified reload — instead of
training it again. A member that stopped at a non-finite step fails as its single run fails."""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from runner.checkpoint import layout
from runner.checkpoint.verify import verify
from runner.config.device import resolve_device
from runner.config.spec import RunSpec
from runner.params.tensors import distinct_parameters
from runner.trackers.tracking import Trackers
from runner.train import outcome
from runner.train.callbacks.assemble import assemble_callbacks
from runner.train.callbacks.guard import bad_step_text, first_step_text, grown_text, worth_keeping
from runner.train.callbacks.stats import draw_plots
from runner.train.evaluate import evaluate
from runner.train.failures import NonFiniteTraining
from runner.train.next_run import resume_for
from runner.train.trainer import trainer_placement
from runner.train.vector_checkpoint import fit_loop_state, member_checkpoint, write
from runner.train.vector_fit import GroupFit, Record, Snapshot
from runner.train.vector_members import Member

log = logging.getLogger("runner")


@dataclass
class Trained:
    """A member trained in a group, waiting for its job to write it out."""

    member: Member
    record: Record
    group: GroupFit
    seconds: float  # the group's training time (all members together)
    jobs: list[int]  # the group's job numbers

    @property
    def share(self) -> float:
        """Its share of the group's training time, as its job's seconds count it (runner.run)."""
        return self.seconds / len(self.jobs)


_TRAINED: dict[int, Trained] = {}


def keep(trained: list[Trained]) -> None:
    _TRAINED.update({t.member.job: t for t in trained})


def take(job: int | None, spec: RunSpec) -> Trained | None:
    """The trained member for sweep job `job`, if its config is the one it was trained from."""
    trained = _TRAINED.pop(job, None) if job is not None else None
    if trained is not None and trained.member.spec.config != spec.config:
        log.warning(
            "vectorized: job %s's config is not the one its group trained it with; it trains alone",
            job,
        )
        return None
    return trained


def forget() -> None:
    _TRAINED.clear()


def finish(trained: Trained, spec: RunSpec, run_dir: Path, trackers: Trackers) -> dict[str, Any]:
    """Write the member's run into `run_dir`; the result task=train returns for it."""
    member, record, group = trained.member, trained.record, trained.group
    training = spec.training
    assert training is not None
    module = member.module
    log.info(
        "vectorized: trained with jobs %s as one (%d members, %.2f s: %.2f s each)",
        ",".join(str(j) for j in trained.jobs),
        len(trained.jobs),
        trained.seconds,
        trained.share,
    )
    callbacks = assemble_callbacks(run_dir, training, module.log_every)
    bad = record.bad["step"] if record.bad else None
    _write_logs(trackers, module, record, bad)
    _write_stats(member, run_dir, bad)
    counts = _counts(member, group)
    last = callbacks.last.path
    best_path = _write_checkpoints(trained, callbacks, counts)
    if record.bad is not None:
        raise NonFiniteTraining(_stopped(trained, run_dir, counts), _group(trained))
    saved = outcome.trained(last, training.trainer)
    metrics = dict(record.metrics)
    outcome.log_fit(saved, trained.share, metrics)
    placement = resolve_device(spec.device)
    where = trainer_placement(spec.device, placement)
    tested = evaluate(module, member.data, training.trainer, where, trackers)
    log.info("test: %s", outcome.show(tested))
    learned = outcome.learned(member.data, module)
    verification = verify(
        module.net, saved, last, member.data.probe(), placement.device, spec.device.precision
    )
    outcome.log_verification(last, verification)
    resume = resume_for(last, training.trainer, saved)
    log.info("resume with: %s", resume)
    for text in member.findings:
        log.warning("stats: %s", text)
    return {
        "task": "train",
        "parameters": sum(t.numel() for _, t in distinct_parameters(module.net)),
        "device": where,
        "epochs": layout.epochs_done(saved),
        "global_step": int(layout.global_step(saved)),
        "fit_seconds": trained.share,
        "metrics": {**metrics, **tested},
        "checkpoints": {"last": str(last), "best": best_path},
        "verification": verification,
        **({"learned": learned} if learned is not None else {}),
        "resume": resume,
        "stats": _stats_result(member, run_dir, record),
        **_group(trained),
    }


def _group(trained: Trained) -> dict[str, Any]:
    """What result.json says of the group, for a member that ended ok or failed alike (its
    seconds count its share of the group's training: runner.run)."""
    return {"vectorized": {"jobs": trained.jobs, "group_seconds": trained.seconds}}


def _write_logs(trackers: Trackers, module: Any, record: Record, bad: int | None) -> None:
    """The rows the single run's loggers get, at the same steps."""
    loggers = trackers.loggers()
    if not loggers:
        return
    assert isinstance(loggers, list)
    for logger in loggers:
        logger.log_hyperparams(module.hparams_initial)
        for row, step in record.rows:
            if bad is None or step <= bad:
                logger.log_metrics(row, step=step)
        logger.save()
        logger.finalize("success" if bad is None else "failed")


def _write_stats(member: Member, run_dir: Path, bad: int | None) -> None:
    stats = member.stats
    if stats is None:
        return
    if bad is not None:  # its single run stopped at that step: no record after it
        stats.rows = [r for r in stats.rows if r[0] <= bad]
        stats.pending = [r for r in stats.pending if r[0] <= bad]
    stats.start(run_dir / "param_stats.csv")
    stats.flush()
    if stats.relus is not None:
        stats.relus.remove()
    training = member.spec.training
    assert training is not None
    if training.stats.plots and bad is None:
        draw_plots(stats, run_dir)


def _counts(member: Member, group: GroupFit) -> tuple[int, int, bool]:
    size = member.data.batch_size
    per_epoch = -(-len(member.data.splits["train"][0]) // size)
    val_batches = -(-len(member.data.splits["val"][0]) // size)
    scheduled = member.scheduler is not None and not isinstance(
        member.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau
    )
    return per_epoch, val_batches, scheduled


def _write_checkpoints(trained: Trained, callbacks: Any, counts: tuple[int, int, bool]) -> str:
    """The best checkpoint and last.ckpt, with the callback states their single run's files
    hold; returns the best one's path ("" when there is none, as Lightning says)."""
    record, module = trained.record, trained.member.module
    best, last = callbacks.best, callbacks.last
    best_path = ""
    if record.best is not None:
        at = record.best
        path = Path(best.format_checkpoint_name({"epoch": at.epoch, "step": at.step}))
        score = torch.tensor(at.score)
        best.best_model_path = best.kth_best_model_path = best_path = str(path)
        best.best_model_score = best.kth_value = best.current_score = score
        best.best_k_models = {str(path): score}
        write(_checkpoint(module, at, best, last, counts), path)
    if record.last is not None:
        at = record.last
        best.current_score = torch.tensor(at.score) if at.score is not None else None
        write(_checkpoint(module, at, best, last, counts), last.path)
    return best_path


def _checkpoint(module: Any, at: Snapshot, best: Any, last: Any, counts: Any) -> dict[str, Any]:
    last.best_model_path = str(last.path) if at.epoch > 0 else ""  # saved at earlier epochs
    states = {best.state_key: best.state_dict(), last.state_key: last.state_dict()}
    return member_checkpoint(module, at.params, at, states, counts)


def _stopped(trained: Trained, run_dir: Path, counts: tuple[int, int, bool]) -> str:
    """Its single run's message for the non-finite step it stopped at, with last-good.ckpt (its
    state before that step) saved when that state is worth keeping."""
    member, record, group = trained.member, trained.record, trained.group
    assert record.bad is not None
    step, row = int(record.bad["step"]), list(record.bad["row"])
    names = [" = ".join(n) for n in group.names]
    first = next(
        (n for n, v in zip(names, row[:-1], strict=True) if v != v or abs(v) == float("inf")),
        "the loss",
    )
    text = bad_step_text(step, first, row)
    i = group.members.index(member)
    if step == 0:
        return text + first_step_text(resumed=False) + "; stopped (stats.on_nan=stop)"
    now = float(group.flat[i].detach().norm())
    if not worth_keeping(record.start_norm, now):
        return (
            text
            + grown_text(record.start_norm, now, step, member.optimizer)
            + "; stopped (stats.on_nan=stop)"
        )
    per_epoch = counts[0]
    at = group.snapshot(i, step // per_epoch, step, None)
    saved = run_dir / "checkpoints" / "last-good.ckpt"
    callbacks = assemble_callbacks(run_dir, member.spec.training, member.module.log_every)  # type: ignore[arg-type]
    checkpoint = _checkpoint(member.module, at, callbacks.best, callbacks.last, counts)
    done = step - at.epoch * per_epoch
    checkpoint["loops"]["fit_loop"] = fit_loop_state(
        at.epoch, step, per_epoch, counts[1], counts[2], done
    )
    write(checkpoint, saved)
    return text + f"the weights before this step are saved in {saved}; stopped (stats.on_nan=stop)"


def _stats_result(member: Member, run_dir: Path, record: Record) -> dict[str, Any]:
    csv_path = run_dir / "param_stats.csv"
    return {
        "csv": str(csv_path) if member.stats is not None else None,
        "plots": sorted(str(p) for p in (run_dir / "plots").glob("*.png")),
        "non_finite_steps": record.bad_steps,
        **outcome.diagnosis(csv_path),
    }


def job_number() -> int | None:
    """This process's sweep job number (None outside a sweep), when members wait for jobs."""
    if not _TRAINED:
        return None
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    number = getattr(HydraConfig.get().job, "num", None)
    return int(number) if number is not None else None
