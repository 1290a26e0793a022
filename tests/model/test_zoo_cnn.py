"""The zoo's CNNs (written with graphs and blocks with arguments) equal the book's modules
written by hand: the same state_dict keys and shapes, and the same outputs, in eval and in
train mode, after loading the book's weights; at the zoo's default size and at the book's."""

import ast
from pathlib import Path

import pytest
import torch

import runner
from tests.d2l_cnn import CNNS, SMALL


def _compare(net: torch.nn.Module, ref: torch.nn.Module, shape: tuple[int, ...]) -> None:
    X = torch.randn(2, *shape)
    ref.eval()
    ref(X)  # sizes the book's lazy layers, as its first batch would
    ours, theirs = net.state_dict(), ref.state_dict()
    assert sorted(ours) == sorted(theirs)
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}
    net.load_state_dict(theirs, strict=True)
    net.eval()
    with torch.no_grad():
        assert torch.equal(net(X), ref(X))
    net.train(), ref.train()
    torch.manual_seed(1)  # the same dropout masks
    out = net(X)
    torch.manual_seed(1)
    expected = ref(X)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    for key, value in ref.state_dict().items():  # batch norm's running statistics too
        torch.testing.assert_close(net.state_dict()[key], value, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(CNNS))
def test_zoo_cnn_at_its_default_size_equals_the_books_module(name, compose):
    small, _, _, _ = CNNS[name]
    _compare(runner.build_net(compose(f"model={name}")), small(), SMALL)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CNNS))
def test_zoo_cnn_at_the_books_size_equals_the_books_module(name, compose):
    _, book, overrides, shape = CNNS[name]
    _compare(runner.build_net(compose(f"model={name}", *overrides)), book(), shape)


def test_resnet18_at_the_books_size_has_the_books_keys_and_parameter_count(compose):
    net = runner.build_net(compose("model=resnet18", *CNNS["resnet18"][2]), device="meta")
    names = dict(net.named_parameters())
    assert names["b2.0.conv1.weight"].shape == (64, 64, 3, 3)
    assert names["b5.0.conv3.weight"].shape == (512, 256, 1, 1)
    assert "b2.0.conv3.weight" not in names  # the first stage keeps its size: no 1×1 path
    assert sum(p.numel() for p in net.parameters()) == 11_178_378  # the book's 11.2M (1→10)


def test_a_graph_forward_is_generated_code_that_reads_like_the_books(compose):
    net = runner.build_net(compose("model=resnet18"))
    code = net.b3[0].code
    assert "conv3 = self.conv3(x)" in code and "add = bn2 + conv3" in code
    assert "conv3" not in net.b2[0].code  # left out: its name stands for x
    assert "add = bn2 + x" in net.b2[0].code


# model → (its YAML files: the option and the block files it pulls in, the book's functions and
# classes in tests/d2l_cnn.py that build the same network)
BOOK_CODE = {
    "lenet": (["lenet"], ["lenet"]),
    "vgg": (["vgg"], ["vgg_block", "vgg"]),
    "nin": (["nin"], ["nin_block", "nin"]),
    "googlenet": (["googlenet", "blocks/inception"], ["Inception", "googlenet"]),
    "densenet": (
        ["densenet", "blocks/dense_block"],
        ["conv_block", "DenseBlock", "transition_block", "DenseNet", "densenet"],
    ),
}


def _code_lines(lines: list[str]) -> int:
    return sum(1 for line in lines if line.strip() and not line.strip().startswith("#"))


@pytest.mark.parametrize("name", sorted(BOOK_CODE))
def test_each_zoo_cnn_is_no_longer_than_the_books_python(name):
    # Lines that are neither blank nor a comment. Not counted: the YAML's one `defaults:` line
    # (Hydra's composition), as the book's imports are not.
    files, book_names = BOOK_CODE[name]
    conf = Path(__file__).resolve().parents[2] / "conf" / "model"
    yaml_lines = [
        line
        for f in files
        for line in (conf / f"{f}.yaml").read_text().splitlines()
        if not line.startswith("defaults:")
    ]
    source = (Path(__file__).resolve().parents[1] / "d2l_cnn.py").read_text()
    lines = source.splitlines()
    book = {
        node.name: lines[node.lineno - 1 : node.end_lineno]
        for node in ast.parse(source).body
        if isinstance(node, ast.FunctionDef | ast.ClassDef)
    }
    book_lines = _code_lines([line for n in book_names for line in book[n]])
    assert _code_lines(yaml_lines) <= book_lines
