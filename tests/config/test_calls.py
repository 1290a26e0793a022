"""The compact form: a row of calls written as the book writes PyTorch is the mapping form,
entry for entry, checked as that form is; a row that is not one is a ConfigError naming it."""

import pytest
import torch
import yaml
from omegaconf import OmegaConf

from runner.config.grammar import parse_model
from runner.config.model_spec import SeqSpec
from runner.errors import ConfigError


def parse(text: str):
    return parse_model(OmegaConf.create(yaml.safe_load(text)))


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as refused:
        parse(text)
    return refused.value.problems


def layers(node) -> list:
    """(child name, type, kwargs) of a Sequential's children, nested ones as lists."""
    return [
        (name, layers(c)) if isinstance(c, SeqSpec) else (name, c.type_name, c.kwargs)
        for name, c in node.children
    ]


def test_a_row_is_its_entries_in_the_mapping_form_with_python_s_positional_binding():
    compact = parse("""
input_shape: [1, 8, 8]
args: {pad: 2}
net:
  - LazyConv2d(6, 5, padding=pad), Sigmoid(), AvgPool2d(kernel_size=2, stride=2)
  - Conv2d(6, 4, (3, 3)), Flatten
  - Dropout(0.5), LazyLinear(10 * pad)
""")
    mapping = parse("""
input_shape: [1, 8, 8]
net:
  - {type: LazyConv2d, out_channels: 6, kernel_size: 5, padding: 2}
  - Sigmoid
  - {type: AvgPool2d, kernel_size: 2, stride: 2}
  - {type: Conv2d, in_channels: 6, out_channels: 4, kernel_size: [3, 3]}
  - Flatten
  - {type: Dropout, p: 0.5}
  - {type: LazyLinear, out_features: 20}
""")
    assert layers(compact.net) == layers(mapping.net)
    assert [n for n, _ in compact.net.children] == ["0", "1", "2", "3", "4", "5", "6"]
    assert compact.net.children[3][1].path == "model.net[1][0]"  # the k-th call of row 1


def test_a_block_takes_positional_arguments_in_the_order_of_its_params(assemble_model):
    model = {
        "input_shape": [1, 8, 8],
        "blocks": {
            "nin_block": {
                "params": ["out_channels", "kernel_size", "strides"],
                "seq": ["LazyConv2d(out_channels, kernel_size, strides), ReLU()"],
            }
        },
        "net": [
            "nin_block(4, 3, strides=1), MaxPool2d(3, stride=2)",
            "Sequential(nin_block(2 * 4, kernel_size=1, strides=1), Flatten())",
        ],
    }
    net = assemble_model(model).net
    assert [n for n, _ in net.named_parameters()] == [
        "0.0.weight", "0.0.bias", "2.0.0.weight", "2.0.0.bias"
    ]  # fmt: skip
    assert net[0][0].weight.shape == (4, 1, 3, 3) and net[2][0][0].weight.shape == (8, 4, 1, 1)
    X = torch.randn(2, 1, 8, 8)
    expected = torch.flatten(net[2][0](net[1](net[0](X))), 1)
    assert torch.equal(net(X), expected)


def test_a_row_in_a_graph_is_a_chain_of_nodes():
    spec = parse("""
input_shape: [4]
net:
  graph:
    - LazyLinear(4), ReLU()
    - {op: add, in: [x, "1"]}
""")
    assert [(n.name, n.reads) for n in spec.net.nodes] == [
        ("0", ("x",)), ("1", ("0",)), ("2", ("x", "1"))
    ]  # fmt: skip


def test_every_row_that_is_not_one_is_refused_naming_it():
    found = problems("""
input_shape: [4]
blocks:
  two: "ReLU(), Tanh()"
  pair: {params: [a, b], seq: [ReLU]}
net:
  - LazyLinear(4, bogus=1), Tanh()
  - LazyLinear(4
  - Linearr(4)
  - LazyLinear(4, 5, 6, 7, 8)
  - pair(1, 2, 3)
  - "LazyLinear('{x}')"
  - os.system('true')
  - __import__('os').system('true')
  - LazyLinear(**kwargs)
  - LazyLinear(4) + ReLU()
  - {block: two}
""")
    assert found == [
        "model.net[0][0].bogus: LazyLinear takes no argument 'bogus'; allowed: bias, device, "
        "dtype, out_features",
        "model.net[1]: 'LazyLinear(4': not a row of calls such as 'Conv2d(8, kernel_size=3), "
        "ReLU()' ('(' was never closed)",
        found[2],  # the registry's own message for an unknown layer, checked below
        "model.net[3]: 'LazyLinear(4, 5, 6, 7, 8)': 'LazyLinear(4, 5, 6, 7, 8)': too many "
        "positional arguments",
        "model.net[4]: 'pair(1, 2, 3)': 'pair(1, 2, 3)': block 'pair' takes 2 positional "
        "arguments (a, b); it is given 3",
        "model.net[5]: \"LazyLinear('{x}')\": '{x}': braces are not allowed in an argument",
        found[6],
        "model.net[7]: \"__import__('os').system('true')\": \"__import__('os').system('true')\" "
        "is not a call of a layer or block, such as ReLU()",
        "model.net[8]: 'LazyLinear(**kwargs)': 'LazyLinear(**kwargs)' is not a call of a layer "
        "or block, such as ReLU()",
        "model.net[9]: 'LazyLinear(4) + ReLU()': 'LazyLinear(4) + ReLU()' is not a call of a "
        "layer or block, such as ReLU()",
        "model.blocks.two: 'ReLU(), Tanh()' is a row of 2 entries where one goes; write them "
        "as a list, or in Sequential(...)",
    ]
    assert found[2].startswith("model.net[2].type: unknown layer 'Linearr'")
    assert "did you mean 'Linear'?" in found[2]
    assert found[6].startswith("model.net[6].type: 'os.system' is not an nn.Module class")
