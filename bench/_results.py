"""Where benchmark results go: bench/results/<name>.json, stamped with the machine and date."""

import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def save(name: str, record: dict[str, Any], gpu: str | None = None) -> Path:
    """Write `record` with what it was measured on; print and return the path."""
    machine = [platform.node(), platform.machine(), f"python {platform.python_version()}"]
    if "torch" in sys.modules:  # the start-up benchmark itself never imports it
        machine.append(f"torch {sys.modules['torch'].__version__}")
    if gpu:
        machine.append(gpu)
    stamped = {"machine": " ".join(machine), "date": time.strftime("%Y-%m-%d"), **record}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(stamped, indent=2) + "\n")
    print(f"wrote {path.relative_to(RESULTS.parent.parent)}")
    return path
