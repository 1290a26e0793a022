"""A run's plots/metrics.png and report.html, and a comparison's report.html, opened in a real
headless browser (the system's Chromium, in its own headless mode): no console errors, every
image decoded. Without Chromium these tests skip, saying how to install it."""

import json
import re
import shutil
import subprocess

import pytest

from tests.sweep.test_summary import cli as module_cli
from tests.sweep.test_summary import grid

CHROMIUM = next(
    (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
    None,
)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="needs Chromium for the headless-browser check: apt-get install -y chromium "
    "(Debian, Ubuntu: chromium-browser); .ci/run installs it",
)
# Added to a copy of the page: once it has loaded, how many images it has and how many did not
# decode, as an attribute that --dump-dom prints.
PROBE = (
    '<script>window.addEventListener("load", () => { const bad = [...document.images]'
    ".filter(i => !(i.complete && i.naturalWidth > 0)).length; document.body.setAttribute("
    '"data-images", document.images.length + "/" + bad); });</script>'
)


def open_in_chromium(page, tmp_path):
    """(images, broken images, console lines) of `page` as headless Chromium loads it."""
    probe = tmp_path / f"probe-{page.parent.name}.html"
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    # In the page's own folder, so its relative links resolve as they would for a reader.
    probe = probe.rename(page.parent / probe.name)
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
            "--dump-dom",
            probe.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    probe.unlink()
    found = re.search(r'data-images="(\d+)/(\d+)"', done.stdout)
    assert found, f"the page did not finish loading:\n{done.stderr[-2000:]}"
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return int(found[1]), int(found[2]), console


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One small training run, as `python -m runner` writes it."""
    import os
    import sys

    from tests.conftest import ROOT

    where = tmp_path_factory.mktemp("run")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "runner",
            "model=mlp",
            "data=digits",
            "trainer.max_epochs=2",
            "device=cpu",
            f"hydra.run.dir={where / 'run'}",
        ],
        capture_output=True,
        text=True,
        cwd=where,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return where / "run"


def test_a_training_run_writes_its_curves_and_its_report(trained):
    assert (trained / "plots" / "metrics.png").stat().st_size > 10_000
    page = (trained / "report.html").read_text()
    result = json.loads((trained / "result.json").read_text())
    assert page.count('<img src="data:image/png;base64,') == 3  # curves, blocks, weights
    assert "http://" not in page and "https://" not in page  # nothing fetched from anywhere
    assert result["resume"].split("   #")[0] in page.replace("&#x27;", "'")
    assert f"{result['metrics']['test/acc']:.4g}" in page
    assert "the reloaded checkpoint reproduces the trained model" in page


def test_report_false_writes_neither(cli):
    done = cli("model=linear", "data=synthetic", "trainer.max_epochs=1", "report=false")
    assert done.returncode == 0, done.stderr
    run = done.args[-1].split("=", 1)[1]
    from pathlib import Path

    assert (Path(run) / "result.json").is_file()
    assert not (Path(run) / "report.html").exists()
    assert not (Path(run) / "plots" / "metrics.png").exists()


@needs_chromium
def test_a_runs_report_loads_in_chromium_with_every_image(trained, tmp_path):
    images, broken, console = open_in_chromium(trained / "report.html", tmp_path)
    assert (images, broken) == (3, 0)
    assert console == []


@needs_chromium
def test_a_sweeps_report_loads_in_chromium_with_every_image(tmp_path):
    grid(tmp_path / "s", {"a": [0.9, 0.92], "b": [0.8, 0.83]})
    done = module_cli("runner.sweep", tmp_path / "s", "--objective", "val/acc", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    images, broken, console = open_in_chromium(tmp_path / "s" / "report.html", tmp_path)
    assert (images, broken) == (1, 0)  # summary.png
    assert console == []
