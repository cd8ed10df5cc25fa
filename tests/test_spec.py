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
    "warmup(100) >> linear(floor=0)",
    "step(30, factor=0.5)",
    "multi_step([30, 60, 90], factor=0.1)",
    "exponential(0.99)",
    "exponential(rate=0.001, every=10, staircase=true)",
    "cosine_restarts(0.25, mult=2, decay=0.8, floor=0.01)",
    "tanh(100, limit=3, mult=2)",
    "polynomial(100, power=2, k=0.5, floor=0.01)",
    "warmup(0.1) >> polynomial(k=2)",
    "inverse_sqrt(4000)",
    "warmup(4000) >> inverse_sqrt(4000)",
    "noam(512, warmup=4000)",
    "one_cycle(three_phase=true, shape=linear)",
    "one_cycle(100, peak=0.1, initial=0.01, floor=0.001)",
    "cyclic(0.1, peak=1, up=50, down=150, mode=exp_range, gamma=0.999)",
    "piecewise([0, 100, 200], levels=[0, 1, 0.1], shape=cosine)",
    "overlay(warmup(5, floor=0.1), base=cosine())",
    "clamp(exponential(0.9), min=0.05)",
    "repeat(linear(100), times=3)",
    "0.5 * cosine()",
    "warmup(100, shape=exponential) * cosine()",
    "warmup(beta2=0.999) >> cosine()",
    "warmup(0.05) >> constant() >> cooldown(0.2, shape=linear, floor=0.1)",
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
    assert str(lrlab.parse("polynomial(10, k=1)")) == "polynomial(10)"
    assert str(lrlab.parse("polynomial(10, k=2)")) == "polynomial(k=2, total=10)"


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


# ------------------------------------------------------------------------------------ old spellings (#9)

#: every old spelling, of a schedule's name or an argument's, and the text it is written as now
OLD_SPELLINGS = [
    ("linear(10, start=0.5, end=0.1)", "linear(peak=0.5, floor=0.1, total=10)"),
    ("polynomial(10, start=2, end=0.5, power=2)", "polynomial(peak=2, floor=0.5, power=2, total=10)"),
    ("warmup(5, start=0.1, end=2)", "warmup(5, floor=0.1, peak=2)"),
    ("warmup(5, end=none)", "warmup(5)"),
    ("cooldown(10, start=2, end=0.5, shape=linear)", "cooldown(10, shape=linear, peak=2, floor=0.5)"),
    ("onecycle(100, start=0.1, end=0.01)", "one_cycle(100, initial=0.1, floor=0.01)"),
    ("onecycle(100, peak=0.85, start=0.95, end=0.95)", "one_cycle(100, peak=0.85, initial=0.95, floor=0.95)"),
    ("cyclic(low=0.2, high=2, up=5)", "cyclic(0.2, peak=2, up=5)"),
    ("cyclic(0.2, high=2, up=5)", "cyclic(0.2, peak=2, up=5)"),
    ("multistep([10, 20], factor=0.5)", "multi_step([10, 20], factor=0.5)"),
    ("overlay(warmup(5, start=0.0001, end=0.1), base=cosine_restarts(100, limit=1, peak=0.1))",
     "overlay(warmup(5, floor=0.0001, peak=0.1), base=cosine_restarts(100, limit=1, peak=0.1))"),
    ("0.001 * (warmup(10, end=1) >> linear(100))", "0.001 * (warmup(10, peak=1) >> linear(100))"),
]


@pytest.mark.parametrize(("old", "new"), OLD_SPELLINGS, ids=[o for o, _ in OLD_SPELLINGS])
def test_old_spellings_parse_and_are_written_in_the_new(old: str, new: str) -> None:
    s = lrlab.parse(old)
    assert str(s) == new and lrlab.parse(new) == s
    assert not {'"start"', '"end"', '"low"', '"high"', '"onecycle"', '"multistep"'} & set(
        json.dumps(to_dict(s)).replace(":", " ").split())


OLD_DICTS = [
    ({"name": "onecycle", "total": 100, "start": 0.1, "end": 0.01},
     {"name": "one_cycle", "total": 100, "initial": 0.1, "floor": 0.01}),
    ({"name": "multistep", "milestones": [10, 20]}, {"name": "multi_step", "milestones": [10, 20]}),
    ({"name": "linear", "start": 0.5, "end": 0.1, "total": 10}, {"name": "linear", "peak": 0.5, "floor": 0.1,
                                                                  "total": 10}),
    ({"name": "join", "pieces": [{"name": "warmup", "total": 5, "start": 0.1}, {"name": "cooldown", "end": 0.2}]},
     {"name": "join", "pieces": [{"name": "warmup", "total": 5, "floor": 0.1}, {"name": "cooldown", "floor": 0.2}]}),
    ({"name": "cyclic", "low": 0.2, "high": 2.0, "up": 5}, {"name": "cyclic", "floor": 0.2, "peak": 2.0, "up": 5}),
]


@pytest.mark.parametrize(("old", "new"), OLD_DICTS, ids=[str(o["name"]) for o, _ in OLD_DICTS])
def test_old_dicts_load_and_are_written_in_the_new(old: dict[str, object], new: dict[str, object]) -> None:
    s = from_dict(old)
    assert to_dict(s) == new and from_dict(new) == s


@pytest.mark.parametrize(("text", "message"), [
    ("linear(10, start=0.5, peak=0.4)", "linear: argument 'peak' given twice (as start, its old name and peak)"),
    ("cyclic(0.2, low=0.3)", "cyclic: argument 'floor' given twice (as floor (positional) and low)"),
    ("warmup(5, end=1, end=2)", "warmup: argument 'end' given twice"),
], ids=["old-then-new", "positional-then-old", "old-twice"])
def test_an_argument_and_its_old_name_together_are_refused(text: str, message: str) -> None:
    with pytest.raises(ScheduleError) as info:
        lrlab.parse(text)
    assert message in str(info.value)


def test_a_dict_with_an_argument_and_its_old_name_is_refused() -> None:
    with pytest.raises(ScheduleError, match=r"linear: argument 'peak' given twice \(as 'start' and 'peak'\)"):
        from_dict({"name": "linear", "start": 0.5, "peak": 0.4, "total": 10})


# ------------------------------------------------------------------------------------- parser limits (#12)


def test_a_long_chain_parses_in_linear_time() -> None:
    # each >> used to re-validate the whole join (n**2): 7,000 pieces took 3-34 s; now well under a second
    text = " >> ".join(["constant(total=1)"] * 4999 + ["cosine()"])
    s = lrlab.parse(text, total=10_000)
    assert len(s.pieces) == 5000 and s(4998) == 1.0 and s(10_000) == 0.0  # type: ignore[attr-defined]
    assert lrlab.parse(str(s)) == s


def test_long_products_are_built_at_once_too() -> None:
    s = lrlab.parse(" * ".join(["constant(1)"] * 3000))
    assert len(s.factors) == 3000 and s(5) == 1.0  # type: ignore[attr-defined]


@pytest.mark.parametrize("text", [
    "(" * 5000 + "cosine()" + ")" * 5000,
    "clamp(" * 2000 + "cosine()" + ", min=0)" * 2000,
    "piecewise(" + "[" * 3000 + "]" * 3000 + ")",
], ids=["parentheses", "clamp", "lists"])
def test_deep_nesting_is_a_schedule_error_not_a_recursion_error(text: str) -> None:
    from lrlab.spec import MAX_DEPTH

    with pytest.raises(ScheduleError) as info:
        lrlab.parse(text)
    msg = str(info.value)
    assert f"brackets nest more than {MAX_DEPTH} deep (the limit, lrlab.spec.MAX_DEPTH) at column" in msg
    assert len(msg) < 500


def test_nesting_up_to_the_limit_parses() -> None:
    from lrlab.spec import MAX_DEPTH

    text = "clamp(" * (MAX_DEPTH - 1) + "cosine(10)" + ", min=0)" * (MAX_DEPTH - 1)
    s = lrlab.parse(text)
    assert lrlab.parse(str(s)) == s and from_dict(to_dict(s)) == s and s(5) == lrlab.parse("cosine(10)")(5)
    deeper = {"name": "cosine", "total": 10}
    for _ in range(MAX_DEPTH + 1):
        deeper = {"name": "clamp", "inner": deeper, "min": 0}
    with pytest.raises(ScheduleError, match="schedule dicts nest more than"):
        from_dict(deeper)


def test_a_spec_over_the_length_limit_is_refused_with_a_short_message() -> None:
    from lrlab.spec import MAX_SPEC_CHARS

    with pytest.raises(ScheduleError) as info:
        lrlab.parse("cosine() >> " * (MAX_SPEC_CHARS // 12) + "cosine()")
    msg = str(info.value)
    assert f"characters long; the limit is {MAX_SPEC_CHARS:,} (lrlab.spec.MAX_SPEC_CHARS)" in msg and len(msg) < 300


@pytest.mark.parametrize("text", [
    "cosine(" + "1," * 50_000,                                 # unbalanced, 100k characters
    " >> ".join(["cosine(1)"] * 10_000) + " >> )",             # fails at the very end
    "cosine(" + "x" * 100_000 + "=1)",                          # a huge argument name
    "c" * 100_000 + "()",                                       # a huge schedule name
], ids=["unbalanced", "late-error", "huge-argument", "huge-name"])
def test_errors_in_huge_specs_quote_only_a_window_of_them(text: str) -> None:
    with pytest.raises(ScheduleError) as info:
        lrlab.parse(text)
    msg = str(info.value)
    assert len(msg) < 1000, len(msg)
    lines = msg.splitlines()
    column = int(lines[0].rsplit("at column ", 1)[1])
    excerpt, pointer = lines[-2][2:], lines[-1][2:]
    # the pointer falls on the character the column names
    assert excerpt[pointer.index("^")] == text[column - 1]


def test_error_excerpt_keeps_multi_line_specs_on_one_line() -> None:
    with pytest.raises(ScheduleError) as info:
        lrlab.parse("warmup(10)\n  >> cosin()")
    lines = str(info.value).splitlines()
    assert lines[0].endswith("at column 17") and lines[1] == "  warmup(10)   >> cosin()"
    assert lines[2].index("^") == lines[1].index("cosin")


# ------------------------------------------------------------------------------------------- @file (#12)


@pytest.mark.parametrize(("name", "data", "message"), [
    ("u16.txt", "cosine(10)".encode("utf-16"), "is not UTF-8 text (it looks like UTF-16 or UTF-32"),
    ("u16.json", json.dumps({"name": "cosine"}).encode("utf-16-le"), "is not UTF-8 text (it looks like UTF-16"),
    ("latin1.yaml", "name: cosine  # é\n".encode("latin-1"), "is not UTF-8 text (byte 0xe9 at offset 16)"),
], ids=["utf16-bom-text", "utf16-json", "latin1-yaml"])
def test_a_file_in_another_encoding_is_refused_by_name(tmp_path: Path, name: str, data: bytes,
                                                       message: str) -> None:
    from lrlab.spec import load

    (tmp_path / name).write_bytes(data)
    with pytest.raises(ScheduleError) as info:
        load(f"@{tmp_path / name}")
    assert f"schedule file {str(tmp_path / name)!r} {message}" in str(info.value)
    assert "save it as UTF-8" in str(info.value)


def test_utf8_files_with_a_byte_order_mark_load(tmp_path: Path) -> None:
    from lrlab.spec import load

    (tmp_path / "a.json").write_bytes(json.dumps({"name": "cosine", "total": 10}).encode("utf-8-sig"))
    (tmp_path / "b.txt").write_bytes("warmup(2) >> cosine(8)\n".encode("utf-8-sig"))
    assert load(f"@{tmp_path / 'a.json'}") == lrlab.parse("cosine(10)")
    assert load(f"@{tmp_path / 'b.txt'}") == lrlab.parse("warmup(2) >> cosine(8)")


def test_a_json_file_nested_past_the_recursion_limit_is_a_schedule_error(tmp_path: Path) -> None:
    from lrlab.spec import load

    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ScheduleError, match="nests too deep to read"):
        load(f"@{tmp_path / 'deep.json'}")
