"""Parameter statistics: equal to a straightforward reference, shared tensors once, blocks."""

import math

import pytest
import torch

import runner
from runner import stats


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
