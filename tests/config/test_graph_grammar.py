"""Mistakes in graphs and blocks with arguments: each a ConfigError naming its path (through
the block use it came from), all reported at once, before anything is built."""

import pytest
import yaml
from omegaconf import OmegaConf

import runner
from runner.config.expressions import ExpressionError, evaluate
from runner.config.grammar import parse_model
from runner.errors import ConfigError


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as refused:
        parse_model(OmegaConf.create(yaml.safe_load(text)))
    return refused.value.problems


MISTAKES = """
input_shape: [4]
blocks:
  res:
    params: {width: 4}
    graph:
      - {name: fc, type: Linear, out_features: "{widht}"}
      - {op: add, in: [fc, y]}
      - {name: y, type: ReLU}
  stage:
    params: [out_channels]
    seq:
      - {type: Linear, out_features: "{out_channels}", bogus: 1}
  unused:
    - {type: Lineer, out_features: 3}
net:
  - {block: res}
  - {block: stage, args: {out_chanels: 3}}
  - graph:
      - {name: a, type: Linear, out_features: 3}
      - {op: cat, in: [a, nope]}
      - {name: a, type: ReLU}
      - {op: add, in: a}
      - {op: sum}
  - {block: res, name: "r{i}", repeat: 2, args: {width: "{i * }"}}
  - {type: ReLU, name: "b{i // 2}", repeat: 2}
"""


def test_every_mistake_in_graphs_and_block_uses_is_reported_at_once_with_its_path():
    found = problems(MISTAKES)
    expected = [
        "model.blocks.res.graph[0].out_features at model.net[0]: '{widht}': unknown name "
        "'widht'; allowed: i, width",
        # a cycle can only be written as a read of a later node
        "model.blocks.res.graph[1].in at model.net[0]: 'y' is defined later in the graph; a "
        "node reads only the graph's input and the nodes before it (so a graph has no cycles)",
        "model.net[1].args.out_chanels: block 'stage' takes no argument 'out_chanels'; "
        "allowed: out_channels; did you mean 'out_channels'?",
        "model.net[1].args: block 'stage' needs 'out_channels' "
        "(model.blocks.stage.params.out_channels has no default); pass it in args",
        "model.net[2].graph[2].name: 'a' already names a node in this graph",
        "model.net[2].graph[3].in: add reads at least 2 values; it reads 1: ['a']",
        "model.net[2].graph[4].op: unknown operation 'sum'; allowed: add, mul, mean, cat, relu",
        "model.net[2].graph[1].in: no value named 'nope' in this graph; allowed: a, x",
        "model.net[3].args.width: '{i * }': not an expression (invalid syntax)",
        "model.net[4].name: child name 'b0' is used twice",
        # a block whose every use was refused, and one no entry uses, are checked alone
        "model.blocks.stage.seq[0].bogus: Linear takes no argument 'bogus'; allowed: bias, "
        "device, dtype, in_features, out_features",
    ]
    assert [p for p in found if "Lineer" not in p] == expected
    assert found[-1].startswith("model.blocks.unused[0].type: unknown layer 'Lineer'")


def test_a_block_with_arguments_names_the_use_a_problem_came_through():
    found = problems("""
input_shape: [4]
blocks:
  inner:
    params: [n]
    seq: [{type: Linear, out_features: "{n}"}]
  outer:
    params: [n]
    seq: [{block: inner, args: {n: "{n - 8}"}}]
net: [{block: outer, args: {n: 4}}]
""")
    assert found == [
        "model.blocks.inner.seq[0].out_features at model.blocks.outer.seq[0] at model.net[0]: "
        "not a size for Linear; got -4; allowed: an integer ≥ 1"
    ]


def test_a_merge_of_mismatched_sizes_is_refused_before_building():
    found = problems("""
input_shape: [4]
net:
  graph:
    - {name: a, type: Linear, in_features: 4, out_features: 3}
    - {name: b, type: Linear, in_features: 4, out_features: 5, in: x}
    - {op: add, in: [a, b]}
""")
    assert found == [
        "model.net.graph[2]: add of values of different sizes: 3 (from "
        "model.net.graph[0].out_features), 5 (from model.net.graph[1].out_features); they "
        "must match"
    ]


def test_a_merge_of_mismatched_channels_names_the_node_that_failed(compose):
    model = {
        "input_shape": [1, 8, 8],
        "net": {
            "graph": [
                {"name": "a", "type": "Conv2d", "out_channels": 3, "kernel_size": 1},
                {"name": "b", "type": "Conv2d", "out_channels": 5, "kernel_size": 1, "in": "x"},
                {"op": "add", "in": ["a", "b"]},
            ]
        },
    }
    cfg = compose()
    cfg.model = OmegaConf.create(model)
    with pytest.raises(ConfigError) as refused:
        runner.build_net(cfg)
    (problem,) = refused.value.problems
    assert problem.startswith("model.net.graph[2]: the shape check")
    assert "in add (a graph node; the graph received input of shape (2, 1, 8, 8))" in problem
    assert "The size of tensor a (3) must match the size of tensor b (5)" in problem


def test_a_node_nothing_reads_is_refused_naming_it_and_the_graphs_out():
    found = problems("""
input_shape: [4]
blocks:
  res:
    graph:
      - {name: conv, type: Linear, out_features: 4}
      - {name: skip, type: Linear, out_features: 4, in: x}
      - {name: sum, op: add, in: [conv, x]}
net:
  - {block: res}
  - graph:
      - {name: fc, type: Linear, out_features: 3}
      - {name: tap, op: relu}
      - {name: head, type: Linear, out_features: 2, in: fc}
""")
    assert found == [
        "model.blocks.res.graph[1]: no node reads 'skip', and it is not the graph's out "
        "(model.blocks.res.out: 'sum'): its parameters would never train; read it from a later "
        "node, make it the out, or leave it out with when: false",
        "model.net[1].graph[1]: no node reads 'tap', and it is not the graph's out "
        "(model.net[1].out: 'head'): its value is computed for nothing; read it from a later "
        "node, make it the out, or leave it out with when: false",
    ]


def test_a_node_left_out_is_not_judged_nor_a_graph_whose_out_a_use_decides():
    spec = parse_model(
        OmegaConf.create(
            yaml.safe_load("""
input_shape: [4]
blocks:
  pick:  # no entry uses it: its `out` is unknown until a use says which
    params: [which]
    graph:
      - {name: a, type: Linear, out_features: 4}
      - {name: b, type: Linear, out_features: 4, in: x}
    out: "{which}"
net:
  graph:
    - {name: fc, type: Linear, out_features: 3}
    - {name: extra, type: Linear, out_features: 3, when: false}
    - {name: head, type: Linear, out_features: 2}
    - {name: both, op: cat, in: [fc, head]}
  out: both
""")
        )
    )
    assert [(node.name, node.reads) for node in spec.net.nodes] == [
        ("fc", ("x",)),
        ("head", ("fc",)),  # `extra` is left out: it stands for what it reads
        ("both", ("fc", "head")),
    ]


def test_a_left_out_node_stands_for_what_it_reads_and_must_read_one_value():
    found = problems("""
net:
  graph:
    - {name: a, type: ReLU}
    - {name: b, type: ReLU, in: [a, x], when: false}
""")
    assert found == [
        "model.net.graph[1].when: a node left out must read one value; it reads ['a', 'x']"
    ]


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os').system('true')",
        "().__class__.__bases__",
        "open('/etc/passwd')",
        "[x for x in range(3)]",
        "lambda: 1",
        "2 ** 10 ** 10",
        "'a' * 10 ** 9",
        "10 ** 13",
        "exec('1')",
    ],
)
def test_an_expression_cannot_run_code_or_build_huge_values(expression):
    with pytest.raises(ExpressionError):
        evaluate(expression, {"x": 1})


def test_expressions_do_the_arithmetic_the_books_constructors_do():
    scope = {"num_channels": 96, "arch": [[1, 64], [2, 128]], "i": 1, "first": False}
    assert evaluate("num_channels // 2", scope) == 48
    assert evaluate("arch[i][1] * 4", scope) == 512
    assert evaluate("2 if i == 0 and not first else 1", scope) == 1
    assert evaluate("min(len(arch), 3) - 1", scope) == 1


def test_templated_repeats_that_would_parse_millions_of_layers_stop_at_the_budget():
    found = problems("""
blocks:
  b:
    params: {n: 1}
    graph: [{repeat: 1000, nodes: [{type: Linear, in_features: "{n}", out_features: 2}]}]
net: [{block: b, repeat: 10000, args: {n: "{1000 + i}"}}]
""")
    assert found == [
        "model: more than 20,000 modules to parse (the last at model.blocks.b.graph[0].nodes[0] "
        "at model.net[0]); allowed: at most that many once every repeat and block is copied; "
        "lower a repeat"
    ]


def test_an_entry_given_as_a_layers_argument_is_refused_not_passed_as_a_dict():
    found = problems("""
blocks: {b: [ReLU]}
net: [{type: Identity, inner: {block: b}}]
""")
    assert found == [
        "model.net[0].inner: Identity would get the entry {'block': 'b'} as a plain mapping, "
        "not a module; an entry goes into a list, a seq or a graph, not into a layer's arguments"
    ]


def test_a_block_no_entry_uses_is_checked_with_its_required_parameters_unset():
    text = """
input_shape: [3]
blocks:
  g:
    params: [k]
    input: x0
    out: "a{k}"
    graph:
      - {name: "a{k}", type: Linear, out_features: "{k * 2}"}
      - {op: add, in: [x0, "a{k}"]}
      - {type: Linear, out_features: "{k}", %s}
net: [ReLU]
"""
    parse_model(OmegaConf.create(yaml.safe_load(text % "bias: true")))  # nothing to report
    assert problems(text % "bais: true") == [
        "model.blocks.g.graph[2].bais: Linear takes no argument 'bais'; allowed: bias, device, "
        "dtype, in_features, out_features; did you mean 'bias'?"
    ]
