"""A YAML mistake in a config file is reported as the file, the line and the problem."""

import re

import pytest

FILES = {
    "broken": (
        "net:\n  - {type: Linear, in_features: 4\n",
        "broken.yaml, line 3, column 1: expected ',' or '}', but got '<stream end>' (while parsing a flow mapping at line 2)",
    ),
    "dup": (
        "input_shape: [4]\nnet: [ReLU]\nnet: [Tanh]\n",
        "dup.yaml, line 3, column 1: found duplicate key net (while constructing a mapping at line 1)",
    ),
    "tab": (
        "net: [ReLU]\n\tinput_shape: [4]\n",
        "tab.yaml, line 2, column 1: found character '\\t' that cannot start any token",
    ),
}


@pytest.mark.parametrize("name", FILES)
def test_a_yaml_mistake_names_the_file_and_line(cli, tmp_path, name):
    text, message = FILES[name]
    (tmp_path / "mine" / "model").mkdir(parents=True)
    (tmp_path / "mine" / "model" / f"{name}.yaml").write_text(text)
    done = cli("--config-dir", str(tmp_path / "mine"), f"model={name}", "task=inspect")
    assert done.returncode != 0
    assert f"config error: {tmp_path}/mine/model/{message}" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_same_through_compose(tmp_path):
    from hydra.errors import ConfigCompositionException

    import runner

    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "dup.yaml").write_text(FILES["dup"][0])
    with pytest.raises(
        ConfigCompositionException,
        match=re.escape("dup.yaml, line 3, column 1: found duplicate key net"),
    ):
        runner.compose(["model=dup", f"hydra.searchpath=[file://{tmp_path}]"])


def test_a_model_file_that_is_not_a_mapping_says_what_it_is(cli, tmp_path):
    (tmp_path / "mine" / "model").mkdir(parents=True)
    (tmp_path / "mine" / "model" / "alist.yaml").write_text("- ReLU\n- Tanh\n")
    done = cli("--config-dir", str(tmp_path / "mine"), "model=alist", "task=inspect")
    assert done.returncode == 2
    assert (
        "model: expected a mapping with a net: entry (and input_shape, blocks, …); got list ['ReLU', 'Tanh']"
        in done.stderr
    )
    assert "Traceback" not in done.stderr
