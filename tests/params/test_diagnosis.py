"""The statistics' diagnosis: blocks with no gradient and dead ReLU units, named once each."""

import torch
from torch import nn

from runner.params.diagnosis import Diagnosis, ReluWatch, activation_rows, summarize


def grad_rows(step, **norms):
    return [(step, "block", block, block, "grad_norm", value) for block, value in norms.items()]


def test_a_block_is_named_after_two_consecutive_zero_gradient_records_and_only_once():
    d = Diagnosis()
    assert d.update(grad_rows(50, a=0.0, b=0.3)) == []  # one record could be a coincidence
    found = d.update(grad_rows(100, a=0.0, b=0.0))
    assert [(f.kind, f.where, f.step) for f in found] == [("no_gradient", "a", 100)]
    assert "block 'a': gradient norm exactly 0 at every record from step 50 to 100" in found[0].text
    assert d.update(grad_rows(150, a=0.0, b=0.0))[0].where == "b"  # a is not said again


def test_a_gradient_that_comes_back_resets_the_count_and_absent_ones_do_not():
    d = Diagnosis()
    d.update(grad_rows(50, a=0.0))
    d.update(grad_rows(100, a=1e-30))  # tiny is not zero
    assert d.update(grad_rows(150, a=0.0)) == []
    d.update(grad_rows(200, a=float("nan")))  # no gradient recorded: not evidence either way
    assert [f.where for f in d.update(grad_rows(250, a=0.0))] == ["a"]


def test_relu_watch_measures_only_when_armed_and_names_the_layer_and_block():
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
    with torch.no_grad():
        net[0].weight.zero_()
        net[0].bias.copy_(torch.tensor([1.0, -1.0, -1.0, -1.0]))  # 3 of 4 units always off
    watch = ReluWatch(net)
    net(torch.randn(8, 3))
    assert watch.take() == {}  # not armed: the hook does nothing
    watch.armed = True
    net(torch.randn(8, 3))
    rows = activation_rows(50, watch.take())
    assert rows == [(50, "activation", "1", "1", "dead_units", 0.75)]
    found = Diagnosis().update(rows)
    assert summarize(found) == {"dead_units": ["1"]}
    assert "75% of its units output 0 for every sample of the batch at step 50" in found[0].text
    watch.remove()
    assert not net[1]._forward_hooks


def test_half_dead_is_not_most():
    assert Diagnosis().update([(1, "activation", "r", "b", "dead_units", 0.5)]) == []
