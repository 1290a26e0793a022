"""The parameter table and totals: every name listed, shared tensors counted once."""

import csv

import runner
from runner.params import summary


def test_shared_names_are_listed_and_counted_once(compose):
    net = runner.build_net(compose("model=shared"))
    rows = {r.name: r for r in summary.tensor_rows(net)}
    assert rows["2.weight"].shared_with == ("4.weight",)
    assert rows["4.bias"].shared_with == ("2.bias",)
    assert rows["0.weight"].shared_with == ()
    total = summary.totals(net)
    # 4·8+8 + 8·8+8 (once) + 8·1+1 = 121; counting the second use again would add 72.
    assert (total.parameters, total.shared_saving) == (121, 72)
    assert "Shared: 72 params appear under more than one name" in summary.totals_lines(total)[-1]


def test_buffers_are_separate_from_parameters(compose):
    net = runner.build_net(compose("model=fixed_hidden"))
    rows = {r.name: r for r in summary.tensor_rows(net)}
    assert rows["rand_weight"].kind == "buffer"
    assert rows["rand_weight"].trainable is False
    assert rows["linear.weight"].shape == "[20, 20]"
    total = summary.totals(net)
    assert (total.parameters, total.trainable, total.buffers) == (420, 420, 400)
    assert total.buffer_bytes == 1600


def test_frozen_parameters_are_non_trainable(compose):
    net = runner.build_net(compose("model=rgnet"))
    net[1].weight.requires_grad_(False)
    total = summary.totals(net)
    assert (total.trainable, total.non_trainable) == (305, 4)


def test_csv_has_the_documented_columns(compose, tmp_path):
    net = runner.build_net(compose("model=shared"))
    path = tmp_path / "params.csv"
    summary.write_csv(summary.tensor_rows(net), path)
    with path.open() as f:
        records = list(csv.DictReader(f))
    assert tuple(records[0]) == summary.CSV_COLUMNS
    assert [r["name"] for r in records] == list(net.state_dict())
    assert records[2] == {
        "name": "2.weight",
        "kind": "parameter",
        "shape": "[8, 8]",
        "dtype": "float32",
        "device": "cpu",
        "numel": "64",
        "trainable": "True",
        "shared_with": "4.weight",
    }
