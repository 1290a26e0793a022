"""What a checkpoint costs to write and to restore, against raw numpy I/O of the same bytes.

The state: a Lightning-shaped checkpoint dict of a Linear stack (33.6M parameters) and its Adam
state (exp_avg, exp_avg_sq: twice that), 100.7M float32 values (403 MB) in all. The runner's
CheckpointIO (runner.checkpoint.files.AtomicCheckpointIO) writes it (temp file, fsync, rename,
fsync of the directory) and restores it into memory; the baselines are `numpy.tofile` of as many
bytes followed by an fsync (the same durability), and `numpy.fromfile` (or `numpy.empty` +
`readinto` when that was faster), in the same directory, alternated with the runner's, each
repetition from a warm page cache.

Targets (issue #13): write ≥ 0.9× and restore ≥ 1.0× the raw speed (ratio = raw time / runner
time: above 1 is faster than raw). For context, not targets: the format's write without the
fsync against tofile without one, torch.save (+ fsync) and torch.load(weights_only=True), and
safetensors' own loader (a lazy mmap, and copied out of it).

    python bench/checkpoint_io.py [--quick] [--dir /path/on/the/disk/to/measure]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from runner.checkpoint.format import write
from runner.train.callbacks.checkpoints import AtomicCheckpointIO

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import check, save

WIDTH, LAYERS = 2048, 8  # 8 × (2048² + 2048) = 33.6M parameters


def state() -> dict[str, Any]:
    """A checkpoint dict as Lightning builds it: weights, Adam state with int keys, counters."""
    net = nn.Sequential(*(nn.Linear(WIDTH, WIDTH) for _ in range(LAYERS)))
    adam = torch.optim.Adam(net.parameters())
    net(torch.randn(4, WIDTH)).sum().backward()
    adam.step()
    return {
        "epoch": 3,
        "global_step": 1000,
        "state_dict": net.state_dict(),
        "optimizer_states": [adam.state_dict()],
        "lr_schedulers": [],
        "callbacks": {"RNGState": {"torch": torch.get_rng_state()}},
        "hyper_parameters": {"config": {"model": {"width": WIDTH, "layers": LAYERS}}},
    }


def durable(path: Path, write_to: Callable[[Any], None]) -> None:
    with path.open("wb") as f:
        write_to(f)
        f.flush()
        os.fsync(f.fileno())


def timed(fn: Callable[[], Any]) -> float:
    os.sync()  # every step starts with no dirty pages: one write's writeback never slows the next
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    del result
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 repetitions instead of 7")
    parser.add_argument("--dir", default=None, help="where the files go (default: a temp dir)")
    args = parser.parse_args()
    torch.manual_seed(0)
    checkpoint = state()
    tensors = [t for t in _tensors(checkpoint)]
    nbytes = sum(t.numel() * t.element_size() for t in tensors)
    raw = np.ones(nbytes // 4, dtype=np.float32)  # as many bytes, one array
    io = AtomicCheckpointIO()
    with tempfile.TemporaryDirectory(dir=args.dir) as where:
        d = Path(where)
        raw_restores = ("raw restore (fromfile)", "raw restore (empty + readinto)")
        names = ("raw", "runner", "raw-no-fsync", "format", "torch")
        paths = {name: d / f"{name}.bin" for name in names}

        def fresh(name: str) -> Path:
            paths[name].unlink(missing_ok=True)
            return paths[name]

        steps: dict[str, Callable[[], Any]] = {
            "raw write (tofile + fsync)": lambda: durable(fresh("raw"), raw.tofile),
            "runner write (CheckpointIO)": lambda: io.save_checkpoint(checkpoint, fresh("runner")),
            "raw write, no fsync (tofile)": lambda: raw.tofile(fresh("raw-no-fsync")),
            "format write, no fsync": lambda: _plain(fresh("format"), checkpoint),
            "torch.save + fsync": lambda: durable(
                fresh("torch"), lambda f: torch.save(checkpoint, f)
            ),
            raw_restores[0]: lambda: np.fromfile(paths["raw"], dtype=np.float32),
            raw_restores[1]: lambda: _readinto(paths["raw"]),
            "runner restore (CheckpointIO)": lambda: io.load_checkpoint(paths["runner"]),
            "torch.load(weights_only=True)": lambda: torch.load(paths["torch"], weights_only=True),
            "safetensors load_file (lazy mmap)": lambda: _safetensors(paths["runner"]),
            "safetensors load_file, copied": lambda: _safetensors(paths["runner"], copy=True),
        }
        for step in steps.values():  # once untimed: files exist, the allocator has warmed up
            timed(step)
        times: dict[str, list[float]] = {name: [] for name in steps}
        writes = [name for name in steps if "restore" not in name and "load" not in name]
        restores = [name for name in steps if name not in writes]
        for i in range(3 if args.quick else 7):  # alternated: the machine's speed drifts
            # Each in turn goes first: the first large allocation after the writes can wait
            # seconds for the kernel to compact memory into huge pages (measured here).
            for name in writes[i % len(writes) :] + writes[: i % len(writes)]:
                times[name].append(timed(steps[name]))
            for name in restores[i % len(restores) :] + restores[: i % len(restores)]:
                times[name].append(timed(steps[name]))
        assert _same(io.load_checkpoint(paths["runner"]), checkpoint)
    # The raw restore: fromfile or empty + readinto, whichever was faster in that repetition
    # (fromfile is at times several times slower here in this process; the check must not
    # profit from that).
    fromfile, readinto = (times[name] for name in raw_restores)
    times["raw restore"] = [min(a, b) for a, b in zip(fromfile, readinto, strict=True)]
    pairs = lambda a, b: [x / y for x, y in zip(times[a], times[b], strict=True)]  # noqa: E731
    print(f"{len(tensors)} tensors, {nbytes / 1e6:.0f} MB; median seconds, rate vs raw")
    base = {"write": "raw write (tofile + fsync)", "restore": "raw restore"}
    for name, values in times.items():
        kind = "write" if ("write" in name or "save" in name) else "restore"
        reference = "raw write, no fsync (tofile)" if "no fsync" in name else base[kind]
        median = statistics.median(values)
        ratio = statistics.median(pairs(reference, name))
        print(f"  {name:<38} {median:7.3f} s  {nbytes / median / 1e9:5.2f} GB/s  {ratio:5.2f}×")
    checks = [
        check(
            "checkpoint write, ~100M floats",
            "numpy tofile + fsync",
            pairs("raw write (tofile + fsync)", "runner write (CheckpointIO)"),
            0.9,
            at_least=True,
        ),
        check(
            "checkpoint restore, ~100M floats",
            "numpy fromfile (or empty + readinto, the faster)",
            pairs("raw restore", "runner restore (CheckpointIO)"),
            1.0,
            at_least=True,
        ),
    ]
    record = {
        "bytes": nbytes,
        "tensors": len(tensors),
        "state": f"Linear {LAYERS}×{WIDTH}² weights + Adam state, float32",
        "seconds": {name: statistics.median(values) for name, values in times.items()},
        "all seconds": times,
    }
    save("checkpoint_io-cpu", record, checks=checks)


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list | tuple):
        return [t for v in value for t in _tensors(v)]
    return []


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return type(a) is type(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _readinto(path: Path) -> np.ndarray:
    array = np.empty(path.stat().st_size // 4, dtype=np.float32)
    with path.open("rb", buffering=0) as f:
        f.readinto(array.data)
    return array


def _plain(path: Path, checkpoint: dict[str, Any]) -> None:
    write(checkpoint, path)


def _safetensors(path: Path, copy: bool = False) -> dict[str, torch.Tensor]:
    """safetensors' loader: tensors on an mmap of the file (read when touched), or copied into
    memory, which a checkpoint needs (the next atomic save replaces the file)."""
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    return {k: t.clone() for k, t in tensors.items()} if copy else tensors


if __name__ == "__main__":
    main()
