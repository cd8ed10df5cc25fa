"""The spec language: round trips, the dict form, and errors that point at the column."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import lrlab
from lrlab import ScheduleError
from lrlab.spec import REGISTRY, from_dict, to_dict

ROUND_TRIP = [
    "cosine()",
    "warmup(0.06) >> cosine(floor=0.1)",
    "warmup(100) >> linear(end=0)",
    "step(30, factor=0.5)",
    "multistep([30, 60, 90], factor=0.1)",
    "exponential(0.99)",
    "exponential(rate=0.001, every=10, staircase=true)",
    "cosine_restarts(0.25, mult=2, decay=0.8, floor=0.01)",
    "tanh(100, limit=3, mult=2)",
    "inverse_sqrt(4000)",
    "warmup(4000) >> inverse_sqrt(4000)",
    "noam(512, warmup=4000)",
    "onecycle(three_phase=true, shape=linear)",
    "cyclic(0.1, high=1, up=50, down=150, mode=exp_range, gamma=0.999)",
    "piecewise([0, 100, 200], levels=[0, 1, 0.1], shape=cosine)",
    "overlay(warmup(5, start=0.1), base=cosine())",
    "clamp(exponential(0.9), min=0.05)",
    "repeat(linear(100), times=3)",
    "0.5 * cosine()",
    "warmup(100, shape=exponential) * cosine()",
    "warmup(beta2=0.999) >> cosine()",
    "warmup(0.05) >> constant() >> cooldown(0.2, shape=linear, end=0.1)",
    "(warmup(10) >> constant()) * 2",
    "sum(constant(0.1), linear(10))",
    "sum(constant(0.001), sum(clamp(inverse_sqrt(10, peak=0.1), min=0.001), constant(-0.001)) * (constant(total=70) "
    ">> cooldown(30)))",
    "shift(cosine(50, floor=0.1, periodic=true), by=1)",
    "0.1 * shift(warmup(10), by=1) >> cosine()",
    "shift(cosine(), by=0.5)",
]


@pytest.mark.parametrize("text", ROUND_TRIP, ids=ROUND_TRIP)
def test_text_and_dict_round_trip(text: str) -> None:
    s = lrlab.parse(text)
    assert lrlab.parse(str(s)) == s
    assert from_dict(json.loads(json.dumps(to_dict(s)))) == s
    bound = s.bind(10_000)
    assert lrlab.parse(str(bound)) == bound
    assert from_dict(to_dict(bound)) == bound


def test_canonical_text_is_short_and_readable() -> None:
    assert str(lrlab.parse("warmup( total = 0.06 )>>cosine(floor=0.1,peak=1)")) == "warmup(0.06) >> cosine(floor=0.1)"
    assert str(lrlab.parse("sgdr(period=10)")) == "cosine_restarts(10)"


def test_dict_form() -> None:
    d = to_dict(lrlab.parse("warmup(0.1) >> cosine(floor=0.1)"))
    assert d == {"name": "join", "pieces": [{"name": "warmup", "total": 0.1}, {"name": "cosine", "floor": 0.1}]}


ERRORS = [
    ("cosin()", "unknown schedule 'cosin'; did you mean cosine?", 1),
    ("warmup(0.1) >> cosin()", "did you mean cosine?", 16),
    ("cosine(flor=0.1)", "cosine has no argument 'flor'; did you mean floor?", 8),
    ("cosine(", "unbalanced parenthesis: '(' is never closed (add ')')", 7),
    ("warmup(0.1 >> cosine()", "unbalanced parenthesis: '(' is never closed", 7),
    ("cosine())", "unbalanced parenthesis: ')' closes nothing", 9),
    ("piecewise([0, 1), levels=[1, 2])", "unbalanced parenthesis: ')' does not close '[' at column 11", 16),
    ("cosine(floor=)", "expected a schedule or a number, got ')'", 14),
    ("cosine() >>", "expected a schedule", 12),
    ("cosine() cosine()", "unexpected 'cosine' after a complete schedule", 10),
    ("cosine(floor=0.1, floor=0.2)", "given twice", 19),
    ("cosine(peak=-)", "unexpected character", 13),
    ("step(1, 2, 3)", "step takes at most 2 positional", 12),
    ("cosine(floor=0.1, 5)", "positional argument after keyword", 19),
    ("cosine(total=-3)", "cosine.total must be > 0", 1),
    ("exponential()", "exactly one of gamma", 1),
    ("warmup(10) >> 3 >> cosine", "cosine needs parentheses: write cosine()", 20),
]


@pytest.mark.parametrize(("text", "message", "column"), ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_point_at_the_column(text: str, message: str, column: int) -> None:
    with pytest.raises(ScheduleError) as info:
        lrlab.parse(text)
    msg = str(info.value)
    assert message in msg
    assert f"at column {column}" in msg
    pointer_line = msg.splitlines()[-1]
    assert pointer_line.index("^") - 2 == column - 1


def test_empty_spec() -> None:
    with pytest.raises(ScheduleError, match="non-empty"):
        lrlab.parse("  ")


def test_from_dict_errors_name_the_key() -> None:
    with pytest.raises(ScheduleError, match="needs a 'name' key"):
        from_dict({"total": 3})
    with pytest.raises(ScheduleError, match="did you mean cosine"):
        from_dict({"name": "cosin"})
    with pytest.raises(ScheduleError, match="cosine has no argument 'flor'"):
        from_dict({"name": "cosine", "flor": 0.1})


DICT_ERRORS = [
    ({"name": "overlay"}, "overlay is missing required arguments 'head', 'base' (arguments: head, base)"),
    ({"name": "overlay", "head": {"name": "warmup", "total": 5}},
     "overlay is missing required argument 'base' (arguments: head, base)"),
    ({"name": "shift", "by": 1}, "shift is missing required argument 'inner' (arguments: inner, by)"),
    ({"name": "wsd", "foo": 1},
     "wsd has no argument 'foo'; did you mean floor? (arguments: warmup, decay, total, shape, warmup_shape, floor, "
     "peak)"),
    ({"name": "wsd", "warmupp": 0.1}, "wsd has no argument 'warmupp'; did you mean warmup?"),
    ({"name": "sum", "terms": [{"name": "constant"}, {"name": "linear", "totl": 3}]},
     "linear has no argument 'totl'; did you mean total?"),
    ({"name": "join", "pieces": 3}, "join: invalid argument value"),
    ({"name": 3}, "unknown schedule name 3"),
]


@pytest.mark.parametrize(("d", "message"), DICT_ERRORS, ids=[m[:40] for _, m in DICT_ERRORS])
def test_from_dict_bad_input_is_a_schedule_error(d: dict[str, object], message: str) -> None:
    with pytest.raises(ScheduleError) as info:
        from_dict(d)
    assert message in str(info.value)


TEXT_ARGUMENT_ERRORS = [
    ("wsd(warmupp=0.1)", "wsd has no argument 'warmupp'; did you mean warmup?", 5),
    ("overlay(warmup(5))", "overlay is missing required argument 'base' (arguments: head, base)", 1),
    ("warmup(5) >> shift(by=2)", "shift is missing required argument 'inner'", 14),
    ("sum(cosine(10))", "sum needs at least 2 terms", 1),
]


@pytest.mark.parametrize(("text", "message", "column"), TEXT_ARGUMENT_ERRORS, ids=[e[0] for e in TEXT_ARGUMENT_ERRORS])
def test_argument_errors_name_the_argument_not_a_type_error(text: str, message: str, column: int) -> None:
    with pytest.raises(ScheduleError) as info:
        lrlab.parse(text)
    msg = str(info.value)
    assert message in msg and f"at column {column}" in msg
    assert "keyword argument" not in msg and "positional argument" not in msg  # no raw TypeError text


def test_sum_accepts_a_list_and_numbers() -> None:
    s = lrlab.parse("sum(constant(0.1), linear(10))")
    assert lrlab.parse("sum([constant(0.1), linear(10)])") == s == lrlab.parse("sum(0.1, linear(10))")
    assert s(5) == 0.6 and str(s) == "sum(constant(0.1), linear(10))"
    assert to_dict(s) == {"name": "sum", "terms": [{"name": "constant", "value": 0.1},
                                                   {"name": "linear", "total": 10}]}


def test_registry_covers_every_family() -> None:
    assert {"constant", "step", "multi_step", "exponential", "linear", "polynomial", "cosine", "cosine_restarts",
            "tanh", "inverse_sqrt", "noam", "warmup", "cooldown", "one_cycle", "cyclic", "piecewise", "join",
            "overlay", "product", "sum", "shift", "clamp", "repeat"} <= set(REGISTRY)


def test_load_from_files(tmp_path: Path) -> None:
    import yaml

    from lrlab.spec import load

    s = lrlab.parse("warmup(0.1) >> cosine(floor=0.1)")
    (tmp_path / "a.json").write_text(json.dumps({"schedule": to_dict(s)}))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(to_dict(s)))
    (tmp_path / "c.txt").write_text(str(s) + "\n")
    for name in ("a.json", "b.yaml", "c.txt"):
        assert load(f"@{tmp_path / name}") == s
    assert load(f"@{tmp_path / 'a.json'}", total=100) == s.bind(100)
    with pytest.raises(ScheduleError, match="cannot read schedule file"):
        load(f"@{tmp_path / 'missing.json'}")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ScheduleError, match="is not valid JSON"):
        load(f"@{tmp_path / 'bad.json'}")
