"""Parameter statistics: equal to a straightforward reference, shared tensors once, blocks."""

import json
import math
from pathlib import Path

import pytest
import torch

import runner
from runner.params import stats


def reference(t: torch.Tensor) -> dict[str, float]:
    t = t.detach().double()
    return {
        "mean": t.mean().item(),
        "std": t.std(correction=0).item(),
        "min": t.min().item(),
        "max": t.max().item(),
        "norm": t.norm().item(),
        "zero_frac": (t == 0).double().mean().item(),
        "nonfinite": float((~torch.isfinite(t)).sum()),
    }


def test_values_equal_a_reference_computation(compose):
    net = runner.build_net(compose("model=rgnet", "init=custom"))
    snapshot = stats.snapshot(net)
    for name, p in net.named_parameters():
        for stat, expected in reference(p).items():
            assert snapshot[name][stat] == pytest.approx(expected, rel=1e-9, abs=1e-12), (
                name,
                stat,
            )


def test_blocks_follow_named_modules_and_aggregate_their_tensors(compose):
    net = runner.build_net(compose("model=rgnet"))
    snapshot = stats.snapshot(net)
    blocks = [k for k in snapshot if k.startswith("block:")]
    assert blocks == [f"block:0.block {i}" for i in range(4)] + ["block:1"]
    members = [p for n, p in net.named_parameters() if n.startswith("0.block 2.")]
    flat = torch.cat([p.detach().reshape(-1).double() for p in members])
    assert snapshot["block:0.block 2"]["norm"] == pytest.approx(flat.norm().item())
    assert snapshot["block:0.block 2"]["mean"] == pytest.approx(flat.mean().item())


def test_a_shared_tensor_appears_once_under_all_its_names(compose):
    net = runner.build_net(compose("model=shared"))
    names = [t.name for t in stats.tracked_parameters(net)]
    assert names == [
        "0.weight",
        "0.bias",
        "2.weight = 4.weight",
        "2.bias = 4.bias",
        "6.weight",
        "6.bias",
    ]


def test_gradients_and_update_ratio(compose):
    net = runner.build_net(compose("model=mlp"))
    computer = stats.StatsComputer(
        stats.tracked_parameters(net), with_grads=True, with_updates=True
    )
    net(torch.rand(4, 20)).sum().backward()
    first = computer.compute()
    assert first["0.weight"]["grad_norm"] == pytest.approx(
        net[0].weight.grad.norm().item(), rel=1e-6
    )
    assert math.isnan(first["0.weight"]["update_ratio"])  # nothing to compare with yet
    with torch.no_grad():
        net[0].weight.add_(0.5)
    second = computer.compute()
    w = net[0].weight.detach().double()
    expected = (torch.full_like(w, 0.5).norm() / w.norm()).item()
    assert second["0.weight"]["update_ratio"] == pytest.approx(expected, rel=1e-6)
    assert second["2.bias"]["update_ratio"] == 0.0


def test_nonfinite_values_are_counted(compose):
    net = runner.build_net(compose("model=mlp"))
    with torch.no_grad():
        net[0].weight[0, :3] = torch.tensor([float("nan"), float("inf"), -float("inf")])
    assert stats.snapshot(net)["0.weight"]["nonfinite"] == 3
    assert stats.snapshot(net)["block:0"]["nonfinite"] == 3


def test_inspect_shows_the_custom_distribution_at_a_glance(cli):
    result = cli("task=inspect", "model=rgnet", "init=custom", "device=cpu")
    assert result.returncode == 0, result.stderr
    assert "zero frac" in result.stdout


def _train(tmp_path, *overrides):
    from runner.run import run

    return run(runner.compose(["device=cpu", "trainer.max_epochs=3", *overrides]), tmp_path)


def _rows(path):
    import csv

    with open(path) as f:
        return list(csv.DictReader(f))


def test_training_writes_the_documented_csv_and_plots(tmp_path):
    result = _train(tmp_path, "model=shared", "stats.every_n_steps=5")
    rows = _rows(result["stats"]["csv"])
    assert tuple(rows[0]) == ("step", "kind", "name", "block", "stat", "value")
    names = {r["name"] for r in rows if r["kind"] == "parameter"}
    assert "2.weight = 4.weight" in names and "4.weight" not in names  # tied once
    steps = sorted({int(r["step"]) for r in rows})
    assert steps == [0, 5, 10, 15, 20, 21]  # init, every 5 optimizer steps, the end
    assert {r["stat"] for r in rows if r["step"] == "0"} == {
        "mean",
        "std",
        "min",
        "max",
        "norm",
        "zero_frac",
        "nonfinite",
    }
    assert {r["kind"] for r in rows} == {"parameter", "block", "activation"}  # ReLUs: dead units
    plots = [Path(p) for p in result["stats"]["plots"]]
    assert [p.name for p in plots] == ["blocks.png", "weights.png"]
    assert all(p.stat().st_size > 10_000 for p in plots)
    metrics = (tmp_path / "logs" / "metrics.csv").read_text()
    assert "stats/2/grad_norm" in metrics and "stats/0/update_ratio" in metrics


def test_update_ratio_is_zero_when_nothing_learns(tmp_path):
    result = _train(tmp_path, "model=rgnet", "optim.optimizer.lr=0", "stats.every_n_steps=7")
    ratios = [
        float(r["value"]) for r in _rows(result["stats"]["csv"]) if r["stat"] == "update_ratio"
    ]
    assert ratios and all(v == 0.0 or math.isnan(v) for v in ratios)
    assert sum(v == 0.0 for v in ratios) > len(ratios) / 2


def test_buffers_are_reported_without_gradients(tmp_path):
    model = "model.net=[{type: Linear, in_features: 20, out_features: 10}, {type: BatchNorm1d}]"
    result = _train(tmp_path, "model=mlp", model)
    buffers = [r for r in _rows(result["stats"]["csv"]) if r["kind"] == "buffer"]
    assert {r["name"] for r in buffers} == {"1.running_mean", "1.running_var"}
    assert not {r["stat"] for r in buffers} & {"grad_norm", "update_ratio"}


def test_nan_stops_the_run_naming_the_parameter_and_keeps_the_last_good_state(tmp_path):
    from runner import RunFailed

    nan_layer = "{type: tests.user_layers.NaNAfter, steps: 4}"
    model = f"model.net=[{{type: Linear, in_features: 20, out_features: 10}}, {nan_layer}]"
    with pytest.raises(RunFailed) as info:
        _train(tmp_path, "model=mlp", model)
    message = str(info.value)
    assert message.startswith("non-finite gradient at optimizer step 4: first in 0.weight")
    assert message.endswith("stopped (stats.on_nan=stop)")
    saved = runner.load(tmp_path / "checkpoints" / "last-good.ckpt", allow=("tests.",))
    record = json.loads((tmp_path / "result.json").read_text())
    assert record["status"] == "failed" and record["error"] == message
    assert all(torch.isfinite(p).all() for p in saved.parameters())  # before the bad step


def test_nan_with_warn_goes_on(tmp_path, caplog):
    import logging

    nan_layer = "{type: tests.user_layers.NaNAfter, steps: 4}"
    model = f"model.net=[{{type: Linear, in_features: 20, out_features: 10}}, {nan_layer}]"
    with caplog.at_level(logging.WARNING, logger="runner"):
        _train(
            tmp_path, "model=mlp", model, "stats.on_nan=warn", "trainer.max_epochs=1", "stats=off"
        )
    assert "non-finite gradient at optimizer step 4" in caplog.text


def test_stats_mistakes_are_reported(compose, tmp_path):
    from runner.run import run

    with pytest.raises(runner.ConfigError) as info:
        run(compose("stats.stats=[mean,gradnorm]", "stats.on_nan=halt"), tmp_path)
    assert info.value.problems == [
        "stats.stats[1]: unknown statistic 'gradnorm'; allowed: dead_units, grad_norm, max, mean, min, nonfinite, norm, std, "
        "update_ratio, zero_frac; did you mean 'grad_norm'?",
        "stats.on_nan: unknown choice 'halt'; allowed: stop, warn",
    ]


def test_the_large_model_path_gives_the_same_numbers(compose):
    net = runner.build_net(compose("model=rgnet", "init=custom"))
    with torch.no_grad():
        net[1].weight[0, 0] = float("nan")
    net[0](torch.rand(3, 4)).sum().backward()
    flat = stats.StatsComputer(stats.tracked_parameters(net), with_grads=True, with_updates=False)
    per_tensor = stats.StatsComputer(
        stats.tracked_parameters(net), with_grads=True, with_updates=False
    )
    per_tensor.flat_limit = 0  # as if the model were too large for one flat copy
    a, b = flat.compute(), per_tensor.compute()
    assert a.keys() == b.keys()
    for row in a:
        for stat in a[row]:
            x, y = a[row][stat], b[row][stat]
            # The per-tensor path sums squares in float32 (torch._foreach_norm): 1e-6 apart.
            same = x == pytest.approx(y, rel=1e-6, abs=1e-9)
            assert (math.isnan(x) and math.isnan(y)) or same, (row, stat)


@pytest.mark.parametrize("model", ["model=mlp", "model=rgnet", "model=linear"])
def test_small_cpu_models_get_the_same_table_from_numpy_as_from_torch(compose, model):
    net = runner.build_net(compose(model))
    items = stats.tracked_parameters(net)
    on_host = stats.StatsComputer(items, with_grads=True, with_updates=True)
    on_torch = stats.StatsComputer(items, with_grads=True, with_updates=True)
    on_torch.on_host = False
    assert on_host.on_host
    largest = max(items, key=lambda t: t.tensor.numel()).tensor
    with torch.no_grad():  # an exact zero, a NaN and an Inf in one tensor
        special = torch.tensor([0.0, float("nan"), float("inf")])[: largest.numel()]
        largest.view(-1)[: len(special)] = special
    x = torch.rand(4, *compose(model).model.input_shape)
    net(x).sum().backward()
    items[-1].tensor.grad = None  # a tensor without a gradient: NaN, not 0
    for _ in range(2):  # the second call has an update ratio
        a, b = on_host.compute(), on_torch.compute()
        assert a.keys() == b.keys()
        for row in a:
            assert a[row].keys() == b[row].keys()
            for stat, value in a[row].items():
                assert value == pytest.approx(b[row][stat], rel=1e-9, abs=1e-12, nan_ok=True), (
                    row,
                    stat,
                )
        with torch.no_grad():
            for t in items[1:]:
                t.tensor.mul_(1.5)
