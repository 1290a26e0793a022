"""Every benchmark's checks on one page: bench/results/<machine>.md (a table a person reads)
and .json (the same, for tools), for the machine this runs on, from the results/<name>.json
files the benchmarks wrote on it.

    python bench/report.py            # after the benchmarks; `make bench` runs both
"""

import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import RESULTS, machine

INTRO = """\
Each row is one target: what was timed, as a ratio to a baseline timed in the same run
(throughputs: higher is better; times: lower is better), the median of the repetitions with
their min and max, the target and whether the median meets it (a target `reported`: none, the
ratio is shown for what it says, not counted). Ratios, not seconds: this machine's speed
drifts between runs, and both sides of a ratio drift together.
"""

# A check's verdict in the table; None: a ratio reported with no target.
VERDICT = {True: "met", False: "**missed**", None: ""}


def main() -> None:
    here = machine()["name"]
    found = []
    for path in sorted(RESULTS.glob("*.json")):
        record = json.loads(path.read_text())
        info = record.get("machine")
        if not isinstance(info, dict) or "benchmark" not in record:
            continue  # a file from before results had checks, or a report
        if info.get("kind") == "cpu" and info.get("name") != here:
            continue  # another CPU machine's numbers
        found.append(record)
    if not found:
        sys.exit("no benchmark results for this machine: run `make bench` first")
    for kind in ("cpu", "gpu"):
        records = [r for r in found if r["machine"]["kind"] == kind]
        if records:
            _write(records)


def _write(records: list[dict]) -> None:
    info = records[0]["machine"]
    slug = re.sub(r"[^a-z0-9]+", "-", info["name"].lower()).strip("-")
    versions = ", ".join(f"{k} {v}" for k, v in info.items() if k not in ("name", "kind"))
    rows = [(r["benchmark"], r["date"], c) for r in records for c in r["checks"]]
    met = sum(c["met"] is True for _, _, c in rows)
    targets = sum(c["met"] is not None for _, _, c in rows)  # not the ratios only reported
    lines = [
        f"# Benchmarks on {info['name']}",
        "",
        f"{versions}; {met} of {targets} targets met.",
        "",
        INTRO,
        "| benchmark | what | against | ratio (median) | min – max | target | |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, date, c in rows:
        lines.append(
            f"| {name} ({date}) | {c['what']} | {c['baseline']} | "
            f"{c['ratio']:.2f}{c.get('unit', '×')} | "
            f"{c['min']:.2f} – {c['max']:.2f} ({c['repetitions']}×) | {c['target']} | "
            f"{VERDICT[c['met']]} |"
        )
    notes = [f"- {c['what']}: {c['note']}" for _, _, c in rows if c.get("note")]
    if notes:
        lines += ["", "Notes:", "", *notes]
    md, js = RESULTS / f"{slug}.md", RESULTS / f"{slug}.json"
    md.write_text("\n".join(lines) + "\n")
    summary = {"machine": info, "checks": [{"benchmark": n, "date": d, **c} for n, d, c in rows]}
    js.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {md.relative_to(RESULTS.parent.parent)}: {met} of {targets} targets met")


if __name__ == "__main__":
    main()
