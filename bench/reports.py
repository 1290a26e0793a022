"""What comparisons and reports cost.

- The summary of a 100-job sweep (20 configurations × 5 seeds, each job with a 3-epoch CSV log):
  summary.csv, .json, .md, summary.png and report.html, rebuilt as `python -m runner.sweep DIR`
  does; target ≤ 5 s (seconds: nothing to compare it with).
- A run's report: `python -m runner model=rgnet trainer.max_epochs=3` against the same run with
  `report=false` (no plots/metrics.png, no report.html), alternated; target: the difference,
  median over the repetitions, ≤ 0.3 s. On a busy machine that difference is lost in the
  noise of two whole runs, so the report's own cost is timed too: write_run_report on a
  finished run's directory, in this process (reported with the same target).

    python bench/reports.py [--repeats 5] [--quick]    # writes bench/results/reports-cpu.json
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import check, save
from startup import timed

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RUN = ("model=rgnet", "trainer.max_epochs=3", "device=cpu")


def fake_sweep(sweep_dir: Path, configs: int = 20, seeds: int = 5, steps: int = 120) -> None:
    """Job directories as a finished sweep leaves them: Hydra's record, result.json and a
    Lightning CSV log with per-step training and per-epoch validation rows."""
    import yaml

    number = 0
    for c in range(configs):
        for s in range(seeds):
            job = sweep_dir / str(number)
            (job / ".hydra").mkdir(parents=True)
            (job / "logs").mkdir()
            overrides = [f"optim.optimizer.lr={0.001 * (c + 1):.6f}", f"seed={s}"]
            (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
            config = {
                "data": {"_target_": "runner.train.data.Digits"},
                "model": {"num_outputs": 10},
            }
            (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
            rows = ["epoch,step,train/loss_step,train/acc_step,val/loss,val/acc"]
            for step in range(0, steps, 5):
                loss = 2.3 / (1 + step * (c + 1) / 200) + 0.01 * s
                rows.append(f"{step // 40},{step},{loss},{1 - loss / 2.5},,")
                if step % 40 == 35:
                    rows.append(f"{step // 40},{step},,,{loss * 1.1},{1 - loss / 2.4}")
            (job / "logs" / "metrics.csv").write_text("\n".join(rows) + "\n")
            metrics = {"val/loss": loss * 1.1, "val/acc": 1 - loss / 2.4, "train/loss": loss}
            result = {"status": "ok", "task": "train", "job": number, "overrides": overrides}
            (job / "result.json").write_text(json.dumps({**result, "metrics": metrics}))
            number += 1


def summary_seconds(sweep_dir: Path) -> float:
    from runner.sweep.output import write_summary
    from runner.sweep.summary import Objective

    start = time.perf_counter()
    write_summary(sweep_dir, Objective("val/acc", "max", False))
    return time.perf_counter() - start


def report_seconds(run_dir: Path) -> float:
    """plots/metrics.png and report.html of a finished run, written again, in this process."""
    from omegaconf import OmegaConf

    from runner.report.run_report import write_run_report

    result = json.loads((run_dir / "result.json").read_text())
    config = OmegaConf.to_container(OmegaConf.load(run_dir / ".hydra" / "config.yaml"))
    assert isinstance(config, dict)
    start = time.perf_counter()
    write_run_report(run_dir, result, {str(k): v for k, v in config.items()})
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2 repetitions")
    args = parser.parse_args()
    repeats = 2 if args.quick else args.repeats
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        fake_sweep(cwd / "sweep")
        summary_seconds(cwd / "sweep")  # matplotlib's first import and font cache
        summaries = [summary_seconds(cwd / "sweep") for _ in range(repeats)]

        def run(*extra: str) -> list[str]:
            directory = cwd / f"run{time.monotonic_ns()}"
            return [sys.executable, "-m", "runner", *RUN, *extra, f"hydra.run.dir={directory}"]

        first = run()
        timed(first, cwd)  # warm the file cache
        report_seconds(Path(first[-1].split("=", 1)[1]))  # matplotlib's first use
        own = [report_seconds(Path(first[-1].split("=", 1)[1])) for _ in range(repeats)]
        with_report, without = [], []
        for _ in range(repeats):  # alternated: the machine drifts between runs
            with_report.append(timed(run(), cwd))
            without.append(timed(run("report=false"), cwd))
    added = [a - b for a, b in zip(with_report, without, strict=True)]
    record = {
        "summary_100_jobs_s": summaries,
        "run_s": with_report,
        "run_report_false_s": without,
        "report_added_s": added,
        "write_run_report_s": own,
    }
    print(json.dumps(record, indent=2))
    note = "seconds, not a ratio"
    medians = f"{statistics.median(with_report):.2f} s vs {statistics.median(without):.2f} s"
    checks = [
        {
            **check(
                "summary + report of a 100-job sweep", "— (seconds)", summaries, 5.0, unit=" s"
            ),
            "note": note,
        },
        {
            **check(
                "a run's report and metrics.png",
                "the run with report=false (seconds added)",
                added,
                0.3,
                unit=" s",
            ),
            "note": f"{note}: medians {medians}",
        },
        {
            **check(
                "a run's report and metrics.png, written alone", "— (seconds)", own, 0.3, unit=" s"
            ),
            "note": note + ": write_run_report on a finished run, in one process",
        },
    ]
    save("reports-cpu", record, checks=checks)


if __name__ == "__main__":
    main()
