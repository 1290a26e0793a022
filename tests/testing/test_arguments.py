"""A mistake in a config test's own arguments is a TypeError naming the method, the argument
and what it takes, never an assertion that checks nothing and passes (`all_equal=0.0`, no
expectation at all) or a string read as a list of its letters."""

import pytest

from runner.testing import Model


@pytest.fixture(scope="module")
def mlp():
    return Model("model=mlp")


MISTAKES = [
    (lambda m: m.assert_init("*"), "assert_init: nothing to check"),
    (lambda m: m.assert_init("*", all_equal=0.0), "all_equal is True, False or None; got 0.0"),
    (lambda m: m.assert_init("*", mean="0"), "assert_init: mean is a finite number; got '0'"),
    (lambda m: m.assert_init("*", mean=0, rtol=-1), "assert_init: rtol is a finite number ≥ 0"),
    (lambda m: m.assert_init("*", mean=0, rtol=float("inf")), "rtol is a finite number ≥ 0"),
    (lambda m: m.assert_parameters(shapes={}), "assert_parameters: nothing to check"),
    (lambda m: m.assert_parameters(shapes={"0.weight": "256"}), "shapes maps names to shapes"),
    (lambda m: m.assert_ties([]), "each group is a list of parameter names"),
    (lambda m: m.assert_init(0, mean=0), "assert_init: pattern is a glob"),
    (lambda m: m.assert_parameters(), "assert_parameters: nothing to check"),
    (lambda m: m.assert_parameters(names="0.weight"), "names is a list of parameter names"),
    (lambda m: m.assert_parameters(count="5"), "assert_parameters: count is an integer"),
    (lambda m: m.assert_ties(), "assert_ties: nothing to check"),
    (lambda m: m.assert_ties("0.weight", "2.weight"), "each group is a list of parameter names"),
    (lambda m: m.assert_forward(0), "assert_forward: batch is an integer ≥ 1; got 0"),
    (lambda m: m.assert_device("gpux"), "assert_device: 'gpux' is not a torch device"),
]


@pytest.mark.parametrize(("call", "message"), MISTAKES, ids=[m for _, m in MISTAKES])
def test_an_argument_mistake_is_a_type_error_naming_it(mlp, call, message):
    with pytest.raises(TypeError) as raised:
        call(mlp)
    assert message in str(raised.value)


def test_overrides_given_as_a_list_are_refused():
    with pytest.raises(TypeError, match="one an argument, as on the command line"):
        Model(["model=mlp"])  # type: ignore[arg-type]


def test_the_python_api_refuses_what_is_not_a_composed_config(tmp_path):
    from runner.run import run

    with pytest.raises(TypeError, match=r"runner\.run: cfg is what runner\.compose returns"):
        run({"task": "inspect"}, tmp_path)  # type: ignore[arg-type]
