"""`make bench` ends with one page per machine: every benchmark's checks, met or missed. The
timings themselves are not tested (they belong to bench/, as ratios); the bookkeeping is."""

import json
import runpy
import subprocess
import sys

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import _results


def test_a_check_takes_the_median_and_says_met_or_missed():
    faster = _results.check("runner", "hand-written loop", [0.5, 0.7, 0.9], 0.6, at_least=True)
    assert faster["ratio"] == 0.7 and faster["met"] and faster["target"] == "≥ 0.6×"
    assert (faster["min"], faster["max"], faster["repetitions"]) == (0.5, 0.9, 3)
    slower = _results.check("plots", "import", 1.4, 1.25)
    assert not slower["met"] and slower["target"] == "≤ 1.25×"
    shown = _results.check("compiled", "eager", [0.9, 1.1], None, at_least=True)
    assert shown["met"] is None and shown["target"] == "reported" and shown["ratio"] == 1.0


def test_the_report_gathers_this_machines_checks_into_one_table(tmp_path, monkeypatch):
    monkeypatch.setattr(_results, "RESULTS", tmp_path)
    _results.save("one", {}, checks=[_results.check("a", "b", [1.0, 2.0, 3.0], 2.5)])
    _results.save("two", {}, checks=[_results.check("c", "d", 0.5, 0.8, at_least=True)])
    _results.save("three", {}, checks=[_results.check("g", "h", 1.5, None)])
    other = {"benchmark": "x", "date": "2026-01-01", "checks": [_results.check("e", "f", 9, 1)]}
    other["machine"] = {"name": "another CPU", "kind": "cpu"}
    (tmp_path / "elsewhere.json").write_text(json.dumps(other))

    import report

    monkeypatch.setattr(report, "RESULTS", tmp_path)
    report.main()
    (page,) = tmp_path.glob("*.md")
    text = page.read_text()
    assert "1 of 2 targets met" in text
    assert "| one (" in text and "| a | b | 2.00× | 1.00 – 3.00 (3×) | ≤ 2.5× | met |" in text
    assert "| c | d | 0.50× | 0.50 – 0.50 (1×) | ≥ 0.8× | **missed** |" in text
    assert "| g | h | 1.50× | 1.50 – 1.50 (1×) | reported |  |" in text  # not a target
    assert "another CPU" not in text and "| e |" not in text
    summary = json.loads(page.with_suffix(".json").read_text())
    assert [c["what"] for c in summary["checks"]] == ["a", "g", "c"]


def test_the_report_without_results_says_to_run_the_benchmarks(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.argv=['report']; import _results, report; "
            f"_results.RESULTS = report.RESULTS = __import__('pathlib').Path({str(tmp_path)!r}); "
            "report.main()",
        ],
        cwd=ROOT / "bench",
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert "no benchmark results for this machine: run `make bench` first" in done.stderr


@pytest.mark.parametrize(
    "script",
    [
        "startup",
        "small_run",
        "build_init",
        "train_throughput",
        "stats_cost",
        "checkpoint_io",
        "compile_mode",
        "graph_models",
        "reports",
        "table_read",
    ],
)
def test_every_benchmark_has_a_quick_mode(script, monkeypatch, capsys):
    done = _run_script(ROOT / "bench" / f"{script}.py", "--help", monkeypatch, capsys)
    assert done.returncode == 0 and "--quick" in done.stdout


def _run_script(path, option, monkeypatch, capsys) -> subprocess.CompletedProcess[str]:
    """`python PATH OPTION` in this process (torch and the runner are imported already): the
    script's folder first on sys.path, as Python puts it, and its module run as __main__."""
    monkeypatch.setattr(sys, "argv", [str(path), option])
    monkeypatch.syspath_prepend(str(path.parent))
    capsys.readouterr()
    try:
        runpy.run_path(str(path), run_name="__main__")
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess([sys.executable, str(path), option], code, out, err)


def test_the_graph_benchmark_times_the_runners_graph_and_the_books_module_on_one_batch():
    import graph_models

    timed = graph_models.measure("resnet18", size=8, batch=2, repeats=2)
    assert len(timed["step"]) == len(timed["build"]) == 2
    assert all(r > 0 for r in timed["step"] + timed["build"])


def test_the_reports_benchmark_summarizes_its_100_job_sweep(tmp_path):
    import reports

    reports.fake_sweep(tmp_path / "sweep", configs=4, seeds=2)
    assert reports.summary_seconds(tmp_path / "sweep") > 0
    table = json.loads((tmp_path / "sweep" / "summary.json").read_text())
    assert [len(c["jobs"]) for c in table["configurations"]] == [2, 2, 2, 2]
    assert (tmp_path / "sweep" / "report.html").is_file()


def test_the_table_benchmark_runs_small_and_reports_its_check(tmp_path, monkeypatch, capsys):
    """bench/table_read.py end to end on a small file: it times both sides and saves a check."""
    monkeypatch.setattr(_results, "RESULTS", tmp_path)
    done = _run_script(ROOT / "bench" / "table_read.py", "--quick", monkeypatch, capsys)
    assert done.returncode == 0, done.stderr
    (record,) = [json.loads(p.read_text()) for p in tmp_path.glob("table_read*.json")]
    (check,) = record["checks"]
    assert check["baseline"] == "pandas.read_csv alone" and check["repetitions"] == 3
    assert check["ratio"] > 0
