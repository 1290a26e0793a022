"""The block-argument evaluator: every intermediate value is bounded, so no expression in a
config (one read from someone else's checkpoint included) can take unbounded memory or time;
what it refuses is a ConfigError naming the key, the expression and the limit."""

import tracemalloc

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from runner.config.expressions import (
    MAX_INT,
    MAX_LENGTH,
    MAX_SIZE,
    ExpressionError,
    evaluate,
    render,
)
from runner.config.grammar import parse_model
from runner.errors import ConfigError

SCOPE = {"n": 7, "s": "ab", "xs": [1, 2, 3], "arch": [[1, 64], [2, 128]]}
PEAK_BYTES = 4_000_000  # a bounded value is at most MAX_SIZE items: well under a megabyte


def size(value) -> int:
    """The evaluator's measure: characters of a string, 1 + the items (in full) of a list."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return 1 + sum(size(v) for v in value)
    return 1


def evaluate_measured(text: str):
    """(the value or the ExpressionError, the peak bytes allocated while evaluating)."""
    tracemalloc.start()
    try:
        outcome = evaluate(text, SCOPE)
    except ExpressionError as e:
        outcome = e
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return outcome, peak


@pytest.mark.parametrize(
    ("expression", "refused"),
    [
        # chained `*`: each step within the old per-operation limit, the product not
        ("'x'*1000*1000*1000*1000", "\"'x' * 1000 * 1000\" would have 1,000,000 characters"),
        ("[0]*1000*1000*1000", "'[0] * 1000 * 1000' would have 1,000,001 characters"),
        ("2**10**10", f"'2 ** 10 ** 10' would be larger than {MAX_INT:,}"),
        ("10**1000000", f"'10 ** 1000000' would be larger than {MAX_INT:,}"),
        ("(-3)**65", "would be larger than"),
        ("10**13", f"'10 ** 13' is larger than {MAX_INT:,}"),
        ("int(1e300)", f"is larger than {MAX_INT:,}"),
        # repeated concatenation doubles a value each time
        ("s*4000+s*4000", "would have 16,000 characters"),
        ("[xs*1000, xs*1000, xs*1000, xs*1000]", "has more than 10,000 characters or items"),
        # nested lists: small at each level, large in full (as printing them would be)
        ("[[[0]*30]*30]*30", "'[[[0] * 30] * 30] * 30' would have 27,931 characters"),
        ("[[[]]*10**6]", "would have 1,000,001 characters"),
        ("'%0999999999d' % 1", "% formats a string; allowed: % on numbers only"),
        ("(-8)**0.5", "is a complex; allowed: numbers, strings, booleans, null, lists"),
        ("1" + "+1" * 100, f"longer than {MAX_LENGTH} characters"),
    ],
)
def test_an_expression_past_a_bound_is_refused_before_it_is_built(expression, refused):
    outcome, peak = evaluate_measured(expression)
    assert isinstance(outcome, ExpressionError), outcome
    assert refused in str(outcome)
    assert peak < PEAK_BYTES


def test_values_up_to_the_bounds_are_computed():
    assert evaluate("'x' * 10000", SCOPE) == "x" * MAX_SIZE
    assert evaluate("[0] * 9999", SCOPE) == [0] * 9999  # 1 + 9999 items
    assert evaluate("[[0] * 99] * 99", SCOPE) == [[0] * 99] * 99  # 1 + 99 * 100
    assert evaluate("10 ** 12", SCOPE) == MAX_INT
    assert evaluate("1 ** 10 ** 12", SCOPE) == 1  # the base decides, not the exponent
    assert evaluate("[] * 10 ** 12", SCOPE) == []


def test_text_around_templates_is_bounded_as_a_whole():
    assert render("{s * 2}-{n}", SCOPE) == "abab-7"
    with pytest.raises(ExpressionError, match="the text would be longer than 10,000 characters"):
        render("{'x' * 6000}{'y' * 6000}", SCOPE)


def test_a_scope_value_past_the_bounds_is_refused_where_an_expression_names_it():
    with pytest.raises(ExpressionError, match="'big' has more than 10,000 characters or items"):
        evaluate("big[0]", {"big": list(range(20_000))})
    deep: list = []
    for _ in range(200):
        deep = [deep]
    with pytest.raises(ExpressionError, match="lists nested more than 50 deep"):
        evaluate("len(deep)", {"deep": deep})


# Random expressions over the evaluator's grammar, with constants chosen to reach its bounds.
_LEAVES = st.sampled_from(
    [
        *["0", "1", "2", "3", "-1", "7", "64", "65", "1000", "10**6", "10**12", "2.5", "1e300"],
        *["'ab'", "'x'*100", "n", "s", "xs", "arch", "[]", "[1, 2]", "True", "None"],
    ]
)
_BINARY = ["+", "-", "*", "/", "//", "%", "**", "==", "<", "and", "or"]


def _composite(children):
    return st.one_of(
        st.tuples(children, st.sampled_from(_BINARY), children).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        children.map(lambda c: f"(-{c})"),
        children.map(lambda c: f"(not {c})"),
        st.tuples(children, children).map(lambda t: f"[{t[0]}, {t[1]}]"),
        st.tuples(children, st.integers(-3, 3)).map(lambda t: f"{t[0]}[{t[1]}]"),
        st.tuples(st.sampled_from(["min", "max"]), children, children).map(
            lambda t: f"{t[0]}({t[1]}, {t[2]})"
        ),
        st.tuples(st.sampled_from(["len", "int"]), children).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(children, children, children).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
    )


EXPRESSIONS = st.recursive(_LEAVES, _composite, max_leaves=14)
# Only what makes values grow: repetition, concatenation, powers, nesting
_GROWING = st.recursive(
    st.sampled_from(["'x'*100", "[0]*100", "s", "xs", "1000", "10**6", "2", "64", "65"]),
    lambda children: st.one_of(
        st.tuples(children, st.sampled_from(["*", "*", "+", "**"]), children).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        st.tuples(children, children).map(lambda t: f"[{t[0]}, {t[1]}]"),
    ),
    max_leaves=10,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(EXPRESSIONS, _GROWING))
def test_every_expression_is_bounded_or_refused_and_agrees_with_python(text):
    outcome, peak = evaluate_measured(text)
    assert peak < PEAK_BYTES, (text, peak)
    if isinstance(outcome, ExpressionError):
        return
    assert size(outcome) <= MAX_SIZE
    assert not (isinstance(outcome, int) and abs(outcome) > MAX_INT)
    # Python evaluates no more than the evaluator did (it short-circuits and/or), so this
    # oracle runs on bounded values too; the test's own text, never a config's
    builtins = {"min": min, "max": max, "len": len, "int": int}
    expected = eval(text, {"__builtins__": builtins}, SCOPE)
    assert repr(outcome) == repr(expected)


def test_a_config_past_a_bound_names_the_key_the_expression_and_the_limit():
    text = """
input_shape: [4]
blocks:
  wide:
    params: {width: 4}
    seq: [{type: Linear, out_features: "{'x'*1000*1000*1000*1000}"}]
net: [{block: wide, name: "{'b' * 10**9}"}]
"""
    with pytest.raises(ConfigError) as refused:
        parse_model(OmegaConf.create(yaml.safe_load(text)))
    assert refused.value.problems == [
        "model.net[0].name: \"{'b' * 10**9}\": \"'b' * 10 ** 9\" would have 1,000,000,000 "
        "characters or items; allowed: at most 10,000",
        "model.blocks.wide.seq[0].out_features: \"{'x'*1000*1000*1000*1000}\": \"'x' * 1000 * "
        '1000" would have 1,000,000 characters or items; allowed: at most 10,000',
    ]
