"""Where benchmark results go: bench/results/<name>.json, stamped with the machine, the versions
and the date, each with its checks: a ratio to a baseline timed in the same run, its target,
met or missed. `bench/report.py` gathers them into bench/results/<machine>.md and .json."""

import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def cpu_name() -> str:
    """The CPU's model name (Linux), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(gpu: str | None = None) -> dict[str, str]:
    """What the numbers were measured on: the GPU's name, or the CPU's, and the versions."""
    import os
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for package in ("torch", "pytorch-lightning"):  # from metadata: nothing is imported
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    name = gpu or f"{cpu_name()} ({os.cpu_count()} cores)"
    return {"name": name, "kind": "gpu" if gpu else "cpu", **versions}


def check(
    what: str,
    baseline: str,
    ratios: list[float] | float,
    target: float | None,
    at_least: bool = False,
    note: str = "",
    unit: str = "×",
) -> dict[str, Any]:
    """One target: `what` against `baseline` as a ratio (median of the repetitions, with min
    and max), `≤ target` (times) or `≥ target` (throughputs, at_least=True). `unit` " s" for
    the few targets set in seconds. A `target` of None: the ratio is reported, with no target
    (`met` is None, and the report does not count it)."""
    values = ratios if isinstance(ratios, list) else [ratios]
    median = statistics.median(values)
    met = None if target is None else median >= target if at_least else median <= target
    return {
        "what": what,
        "baseline": baseline,
        "ratio": median,
        "min": min(values),
        "max": max(values),
        "repetitions": len(values),
        "target": "reported" if target is None else f"{'≥' if at_least else '≤'} {target:g}{unit}",
        "unit": unit,
        "met": met,
        **({"note": note} if note else {}),
    }


def save(
    name: str,
    record: dict[str, Any],
    gpu: str | None = None,
    checks: list[dict[str, Any]] | None = None,
) -> Path:
    """Write `record` and its checks with what they were measured on; print the checks and
    return the path."""
    stamped = {
        "benchmark": name,
        "machine": machine(gpu),
        "date": time.strftime("%Y-%m-%d"),
        "checks": checks or [],
        **record,
    }
    path = RESULTS / f"{name}.json"
    RESULTS.mkdir(exist_ok=True)
    path.write_text(json.dumps(stamped, indent=2) + "\n")
    for c in checks or []:
        verdict = {True: "met", False: "MISSED", None: "(no target)"}[c["met"]]
        against = f" {c['baseline']}" if c["unit"] == "×" else ""
        print(
            f"  {c['what']}: {c['ratio']:.2f}{c['unit']}{against} (target {c['target']}) {verdict}"
        )
    print(f"wrote {path.relative_to(RESULTS.parent.parent)}")
    return path
