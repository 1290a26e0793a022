"""The checkpoint file (runner.checkpoint.format): a whole Lightning checkpoint dict round-
trips exactly through safetensors with no pickle, ties stay one tensor, an older runner's
torch.save files still load, and damaged files or unstorable values are refused clearly."""

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import runner
from runner import ConfigError, RunFailed
from runner.checkpoint import format as checkpoint_format
from runner.checkpoint.files import atomic_save, safe_load
from runner.run import run
from runner.train.callbacks.checkpoints import AtomicCheckpointIO


def same(a, b, where="checkpoint") -> None:
    """Equal values of equal types all the way down; tensors bitwise (NaN payloads too)."""
    assert type(a) is type(b) or (isinstance(a, dict) and isinstance(b, dict)), where
    if isinstance(a, torch.Tensor):
        assert (a.dtype, a.shape) == (b.dtype, b.shape), where
        as_bytes = lambda t: t.detach().cpu().contiguous().reshape(-1).view(torch.uint8)  # noqa: E731
        assert torch.equal(as_bytes(a), as_bytes(b)), where
    elif isinstance(a, dict):
        assert list(a) == list(b), where  # the same keys, of the same types, in the same order
        assert [type(k) for k in a] == [type(k) for k in b], where
        for k in a:
            same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), where
    else:
        assert a == b, where


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A real run (Adam, a scheduler, dropout) and the dicts Lightning handed to the writer."""
    out = tmp_path_factory.mktemp("written")
    dicts = {}
    original = checkpoint_format.write

    def keep(checkpoint, path):
        dicts[Path(path).name.split(".")[0]] = copy.deepcopy(checkpoint)  # last.ckpt → last
        original(checkpoint, path)

    overrides = [
        "model=rgnet",
        "device=cpu",
        "optim=adam",
        "trainer.max_epochs=1",
        "+optim.scheduler={_target_: torch.optim.lr_scheduler.StepLR, _partial_: true, step_size: 1}",
    ]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(checkpoint_format, "write", keep)
        result = run(runner.compose(overrides), out / "run")
    return Path(result["checkpoints"]["last"]), dicts["last"]


def test_a_real_runs_checkpoint_round_trips_exactly(written):
    path, checkpoint = written
    loaded = safe_load(path)
    same(checkpoint, loaded)
    state = loaded["optimizer_states"][0]["state"]
    assert state and all(type(k) is int for k in state)  # Adam's per-parameter state by index
    assert type(loaded["callbacks"]["RNGState"]["python"]) is tuple
    assert loaded["optimizer_states"][0]["state"][0]["step"].dim() == 0
    assert AtomicCheckpointIO().load_checkpoint(path).keys() == checkpoint.keys()


def test_any_safetensors_reader_opens_it_and_nothing_in_it_is_pickled(written):
    from safetensors import safe_open

    path, checkpoint = written
    assert b"\x80\x02" not in path.read_bytes()[:16] and not path.read_bytes().startswith(b"PK")
    with safe_open(str(path), framework="pt") as f:
        assert f.metadata()["format"] == "runner-checkpoint"
        weight = f.get_tensor("state_dict/net.0.block 0.0.weight")
    assert torch.equal(weight, checkpoint["state_dict"]["net.0.block 0.0.weight"])


def test_the_loaded_tensors_do_not_depend_on_the_file(tmp_path):
    path = tmp_path / "last.ckpt"
    atomic_save({"w": torch.ones(1000)}, path)
    loaded = safe_load(path)
    atomic_save({"w": torch.zeros(1000)}, path)  # the next save replaces the file
    path.unlink()
    assert torch.equal(loaded["w"], torch.ones(1000))
    loaded["w"].add_(1)  # writable, as an optimizer's state must be
    assert loaded["w"][0] == 2


def test_a_tied_model_stores_its_tensor_once_and_reloads_tied(tmp_path):
    from safetensors import safe_open

    result = run(
        runner.compose(["model=shared", "device=cpu", "optim=adam", "trainer.max_epochs=1"]),
        tmp_path / "run",
    )
    path = Path(result["checkpoints"]["last"])
    state = safe_load(path)["state_dict"]
    assert state["net.2.weight"] is state["net.4.weight"]
    with safe_open(str(path), framework="pt") as f:
        stored = [k for k in f.keys() if k.startswith("state_dict/")]  # noqa: SIM118
    assert sorted(stored) == [
        f"state_dict/net.{i}.{p}" for i in (0, 2, 6) for p in ("bias", "weight")
    ]
    module = runner.load(path)
    assert module.net[2] is module.net[4]
    assert result["verification"]["ok"] and result["verification"]["shared_tensors_intact"]


def test_every_dtype_layout_and_plain_value_round_trips(tmp_path):
    base = torch.arange(24, dtype=torch.float64).reshape(4, 6)
    tensors = {
        "non-contiguous": base.T[1:, ::2],
        "0-d": torch.tensor(2.5),
        "empty": torch.empty(0, 3),
        "nan and -0": torch.tensor([float("nan"), -0.0, float("inf")]),
        **{
            str(dtype): torch.arange(-3, 5).to(dtype)
            for dtype in (torch.bfloat16, torch.float16, torch.float64, torch.int64, torch.int8)
        },
        "bool": torch.tensor([True, False, True]),
        "uint8": torch.tensor([0, 255], dtype=torch.uint8),
    }
    checkpoint = {
        "tensors": tensors,
        "view of one": tensors["non-contiguous"],
        "ints as keys": {0: {"step": torch.tensor(3.0)}, -1: "minus one", 10**30: "big"},
        "other keys": {(1, "a"): 1, None: 2, 2.5: 3, True: 4},
        "tuples": (1, (2.0, "three", None), [True, False], ()),
        "floats": [float("inf"), float("-inf"), float("nan"), 1e-300, 0.1],
        "empty": {"dict": {}, "list": [], "str": ""},
        "text": 'ünïcödé \x00 {"tensor": "x"}',
    }
    atomic_save(checkpoint, tmp_path / "all.ckpt")
    loaded = safe_load(tmp_path / "all.ckpt")
    same(checkpoint, loaded)
    assert loaded["view of one"] is loaded["tensors"]["non-contiguous"]


def test_many_tensors_of_odd_sizes_round_trip_exactly(tmp_path):
    checkpoint = {f"t{i}": torch.randn(997 * (i + 1)) for i in range(6)}
    atomic_save(checkpoint, tmp_path / "big.ckpt")
    same(checkpoint, safe_load(tmp_path / "big.ckpt"))


class Opaque:
    pass


@pytest.mark.parametrize(
    ("value", "place", "what"),
    [
        (
            {"callbacks": {"Mine": {"rows": np.zeros(3)}}},
            "['callbacks']['Mine']['rows']",
            "numpy.ndarray",
        ),
        (
            {"optimizer_states": [{"state": {0: {"x": Opaque()}}}]},
            "['optimizer_states'][0]['state'][0]['x']",
            "tests.checkpoint.test_format.Opaque",
        ),
        (
            {"hyper_parameters": {"path": Path("/x")}},
            "['hyper_parameters']['path']",
            "pathlib.PosixPath",
        ),
        ({"a": {torch.ones(1): 1}}, "['a']", "a tensor as a dict key"),
        ({"a": torch.ones(2, dtype=torch.complex64)}, "['a']", "torch.complex64"),
        ({"a": np.float32(1.0)}, "['a']", "numpy.float32"),
    ],
)
def test_a_value_a_checkpoint_cannot_hold_is_refused_at_save_naming_its_place(
    tmp_path, value, place, what
):
    path = tmp_path / "last.ckpt"
    with pytest.raises(RunFailed) as refused:
        AtomicCheckpointIO().save_checkpoint(value, path)
    message = str(refused.value)
    assert message.startswith(f"checkpoint{place} is ") and what in message
    assert "a checkpoint does not hold (allowed: tensors, dicts, lists, tuples" in message
    assert list(tmp_path.iterdir()) == []  # no file, no temp file


def test_an_older_runners_torch_save_checkpoint_still_loads(written, tmp_path):
    path, checkpoint = written
    old = tmp_path / "old.ckpt"
    torch.save(checkpoint, old)
    same(checkpoint, safe_load(old))
    a, b = runner.load(path), runner.load(old)
    assert all(
        torch.equal(x, y)
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


def _header(structure=None, tensors=None, metadata=None) -> bytes:
    meta = {
        "format": "runner-checkpoint",
        "version": "1",
        "structure": json.dumps(structure or {"dict": {}}),
    }
    raw = json.dumps({**(tensors or {}), "__metadata__": {**meta, **(metadata or {})}}).encode()
    return len(raw).to_bytes(8, "little") + raw


DAMAGE = {
    "cut in the header": (
        lambda good: good[:20],
        "is not a complete checkpoint (truncated or corrupt?): Error while deserializing header: "
        "invalid header length",
    ),
    "cut in the tensors": (
        lambda good: good[:-3],
        "is not a complete checkpoint (truncated or corrupt?): Error while deserializing header: "
        "incomplete metadata, file not fully covered",
    ),
    "header not JSON": (
        lambda good: good[:8] + b"{" + b"x" * (len(good) - 9),
        "is not a complete checkpoint (truncated or corrupt?): Error while deserializing header: "
        "invalid JSON in header",
    ),
    "an empty header": (
        lambda good: (2).to_bytes(8, "little") + b"{}",
        "is not a checkpoint (a safetensors file without a checkpoint in it)",
    ),
    "a malformed tensor entry": (
        lambda good: (
            _header(tensors={"w": {"dtype": "F32", "shape": [5], "data_offsets": [0, 4]}})
            + bytes(4)
        ),
        "invalid shape, data type, or offset for tensor",
    ),
    "an unknown dtype": (
        lambda good: (
            _header(tensors={"w": {"dtype": "PICKLE", "shape": [1], "data_offsets": [0, 4]}})
            + bytes(4)
        ),
        "unknown variant `PICKLE`",
    ),
    "an unknown structure tag": (
        lambda good: _header({"object": "os.system"}),
        "its structure does not parse",
    ),
    "a reference to no tensor": (
        lambda good: _header({"dict": {"w": {"tensor": "nope"}}}),
        "its structure does not parse (KeyError: 'nope')",
    ),
    "another format version": (
        lambda good: _header(metadata={"version": "99"}),
        "is a checkpoint of format '99'; this runner reads 1",
    ),
    "a plain safetensors file": (
        lambda good: _header(metadata={"format": "pt"}),
        "is not a checkpoint (a safetensors file without a checkpoint in it)",
    ),
    "garbage": (
        lambda good: bytes(range(256)) * 4,
        "is not a checkpoint (not a file the runner or torch.save wrote)",
    ),
    "a structure that is a list": (lambda good: _header([1, 2]), "holds a list, not a checkpoint"),
}


@pytest.mark.parametrize("case", DAMAGE)
def test_a_damaged_file_is_refused_with_a_config_error(tmp_path, case):
    damage, message = DAMAGE[case]
    good = tmp_path / "good.ckpt"
    atomic_save({"state_dict": {"w": torch.ones(2)}}, good)
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(damage(good.read_bytes()))
    with pytest.raises(ConfigError) as refused:
        safe_load(bad)
    assert refused.value.problems[0].startswith(f"ckpt_path: {str(bad)!r} ")
    assert message in refused.value.problems[0]


def test_a_callback_with_unstorable_state_fails_the_run_naming_it(tmp_path):
    overrides = [
        "model=mlp",
        "device=cpu",
        "trainer.max_epochs=1",
        "+callbacks.mine._target_=tests.user_layers.NumpyState",
    ]
    with pytest.raises(RunFailed) as failed:
        run(runner.compose(overrides), tmp_path / "run")
    assert str(failed.value).startswith(
        "checkpoint['callbacks']['NumpyState']['rows'] is a numpy.ndarray, which a checkpoint "
        "does not hold"
    )
    assert json.loads((tmp_path / "run" / "result.json").read_text())["status"] == "failed"
