"""Property: a random small graph either builds and computes exactly what a direct evaluation
of the same graph computes, or is refused with a ConfigError (a merge of different sizes, a
read of a later node, a node nothing reads), never anything else."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from runner.config.grammar import parse_model
from runner.config.init import InitSpec
from runner.errors import ConfigError
from runner.model.assemble import assemble

IN = 3  # features of the input
KINDS = ("linear", "relu", "add", "mul", "mean", "cat")


@st.composite
def graphs(draw) -> tuple[list[dict], bool]:
    """(the graph's nodes, whether it should be refused), with the sizes tracked alongside."""
    count = draw(st.integers(1, 6))
    sizes = {"x": IN}
    nodes, refused = [], False
    for k in range(count):
        kind = draw(st.sampled_from(KINDS))
        earlier = list(sizes)
        least, most = (1, 1) if kind in ("linear", "relu") else (1 if kind == "cat" else 2, 3)
        reads = draw(st.lists(st.sampled_from(earlier), min_size=least, max_size=most))
        known = [sizes[r] for r in reads]
        if k + 1 < count and draw(st.integers(0, 9)) == 0:
            reads[-1] = f"n{k + 1}"  # a read of a later node: a cycle, refused
            refused = True
        node: dict = {"name": f"n{k}", "in": reads}
        if kind == "linear":
            node.update(type="Linear", out_features=draw(st.integers(1, 4)))
            sizes[f"n{k}"] = node["out_features"]
        elif kind == "cat":
            node.update(op="cat", dim=1)
            sizes[f"n{k}"] = sum(known)
        else:  # relu keeps the size; add, mul, mean need one size
            node["op"] = kind
            refused |= len(set(known)) > 1
            sizes[f"n{k}"] = known[0]
        nodes.append(node)
    read = {r for node in nodes for r in node["in"]} | {nodes[-1]["name"]}
    unread = [node["name"] for node in nodes if node["name"] not in read]
    if unread and draw(st.integers(0, 4)) == 0:
        refused = True  # a node no other reads: its parameters would never train
    elif unread:  # read every node: the last one gathers the rest
        last = nodes[-1]["name"]
        nodes.append({"name": f"n{count}", "in": [*unread, last], "op": "cat", "dim": 1})
    return nodes, refused


def direct(net: torch.nn.Module, nodes: list[dict], X: torch.Tensor) -> torch.Tensor:
    """The graph evaluated node by node, by hand, with the built modules."""
    values = {"x": X}
    previous = "x"
    for node in nodes:
        reads = node.get("in", [previous])
        ins = [values[r] for r in reads]
        op = node.get("op")
        if op is None:
            out = net.get_submodule(node["name"])(ins[0])
        elif op == "relu":
            out = torch.relu(ins[0])
        elif op == "cat":
            out = torch.cat(ins, dim=1)
        elif op == "mean":
            out = sum(ins[1:], ins[0]) / len(ins)
        else:
            out = ins[0]
            for v in ins[1:]:
                out = out + v if op == "add" else out * v
        values[node["name"]] = out
        previous = node["name"]
    return values[nodes[-1]["name"]]


@settings(max_examples=60, deadline=None)
@given(graphs())
def test_a_random_graph_builds_and_matches_direct_evaluation_or_is_refused(case):
    nodes, refused = case
    model = OmegaConf.create({"input_shape": [IN], "net": {"graph": nodes}})
    try:
        spec = parse_model(model)
        net = assemble(spec, InitSpec(True, (), ()), torch.device("cpu"), seed=0).net
    except ConfigError as e:
        assert refused, e.problems
        assert all(p.startswith("model.net.graph[") for p in e.problems), e.problems
        return
    assert not refused
    X = torch.randn(4, IN)
    assert torch.equal(net(X), direct(net, nodes, X))


@pytest.mark.parametrize("op", ["add", "mul", "mean"])
def test_an_elementwise_merge_of_one_size_builds(op, assemble_model):
    nodes = [{"name": "a", "op": "relu"}, {"name": "b", "op": op, "in": ["x", "a"]}]
    net = assemble_model({"input_shape": [IN], "net": {"graph": nodes}}).net
    X = torch.randn(2, IN)
    assert torch.equal(net(X), direct(net, nodes, X))
