"""The zoo's CNNs on the bundled digits as images, end to end: fit, test, checkpoint, the
verified reload, export; a graph model (resnet18) exported as plain safetensors loads into the
book's module written by hand and computes the same."""

import pytest
import torch

import runner
from runner.run import run
from tests.d2l_cnn import resnet18

FAST = ["device=cpu", "logger=none", "stats=off", "trainer.max_epochs=1"]


@pytest.mark.slow
def test_lenet_on_digit_images_trains_tests_checkpoints_verifies_and_exports(tmp_path):
    result = run(runner.compose(["model=lenet", "data=digits_images", *FAST]), tmp_path / "a")
    assert result["verification"]["ok"]
    assert 0 <= result["metrics"]["test/acc"] <= 1
    loaded = runner.load(result["checkpoints"]["last"])
    X = torch.randn(3, 1, 8, 8)
    assert loaded.net(X).shape == (3, 10)
    exported = run(
        runner.compose(["task=export", f"ckpt_path={result['checkpoints']['last']}"]),
        tmp_path / "export",
    )
    again = runner.load(exported["file"])
    loaded.net.eval(), again.net.eval()
    assert torch.equal(again.net(X), loaded.net(X))


@pytest.mark.slow
def test_resnet18_exported_loads_into_the_books_module_and_computes_the_same(tmp_path):
    from safetensors.torch import load_model

    result = run(runner.compose(["model=resnet18", "data=digits_images", *FAST]), tmp_path / "a")
    assert result["verification"]["ok"]
    trained = runner.load(result["checkpoints"]["last"]).net
    exported = run(
        runner.compose(["task=export", f"ckpt_path={result['checkpoints']['last']}"]),
        tmp_path / "export",
    )
    book = resnet18(width=8, stem=(3, 1, 1))
    book(torch.zeros(2, 1, 8, 8))  # sizes the lazy layers
    load_model(book, exported["file"])
    book.eval(), trained.eval()
    X = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(book(X), trained(X))
    assert "add = bn2 + conv3" in trained.b3[0].code  # still the graph, with its forward
