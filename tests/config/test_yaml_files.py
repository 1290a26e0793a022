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


def _bomb() -> str:
    """A billion laughs: 10 aliases of 10 aliases … nine levels deep, 10^9 values expanded."""
    lines = ["input_shape: [4]", "net: [ReLU]", "x:", "  a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def _deep(levels: int) -> str:
    entry = "ReLU"
    for _ in range(levels):
        entry = "{seq: [" + entry + "]}"
    return f"input_shape: [4]\nnet: [{entry}]\n"


BOUNDED = {
    "alias bomb": (
        _bomb().encode(),
        "bomb.yaml, line 8, column 47: 101,247 values once its aliases are expanded; allowed: "
        "at most 100,000",
    ),
    "not UTF-8": (
        "# café\nnet: [ReLU]\n".encode("latin-1"),
        "latin.yaml, line 1, column 6: not UTF-8 text (byte 0xe9); allowed: UTF-8 only",
    ),
    "nested 400 deep": (
        _deep(400).encode(),
        "deep.yaml, line 2, column 224: nested 65 lists and mappings deep; allowed: at most 64",
    ),
}


@pytest.mark.parametrize("case", BOUNDED)
def test_a_file_past_a_bound_names_its_line_within_seconds(tmp_path, case):
    import time

    from hydra.errors import ConfigCompositionException

    import runner

    data, message = BOUNDED[case]
    name = message.split(",")[0].removesuffix(".yaml")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / f"{name}.yaml").write_bytes(data)
    start = time.perf_counter()
    with pytest.raises(ConfigCompositionException, match=re.escape(message)):
        runner.compose([f"model={name}", f"hydra.searchpath=[file://{tmp_path}]"])
    assert time.perf_counter() - start < 10  # was 30-90 s (a loaded machine: slack)


def test_nesting_and_aliases_within_the_bounds_are_read(tmp_path):
    import runner

    (tmp_path / "model").mkdir()
    text = _deep(30) + "x: &x [[1, 2]]\ny: [*x, *x]\n"
    (tmp_path / "model" / "ok.yaml").write_text(text)
    cfg = runner.compose(["model=ok", f"hydra.searchpath=[file://{tmp_path}]"])
    assert cfg.model.y == [[[1, 2]], [[1, 2]]]


def test_a_file_edited_between_two_compositions_is_read_anew(tmp_path):
    """Files are parsed once per process, keyed by their text: an edit is seen, and a caller
    changing its config does not change the next one's."""
    import runner

    (tmp_path / "model").mkdir()
    path = tmp_path / "model" / "mine.yaml"
    path.write_text("input_shape: [4]\nnet: [{type: Linear, out_features: 2}]\n")
    overrides = ["model=mine", f"hydra.searchpath=[file://{tmp_path}]"]
    first = runner.compose(overrides)
    assert first.model.net[0].out_features == 2
    first.model.net[0].out_features = 5  # the caller's own copy
    assert runner.compose(overrides).model.net[0].out_features == 2
    path.write_text("input_shape: [4]\nnet: [{type: Linear, out_features: 3}]\n")
    assert runner.compose(overrides).model.net[0].out_features == 3
