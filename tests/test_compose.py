"""Joins, overlays, products, clamps, repeats and binding of fractions: tested by their values."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lrlab
from lrlab import (
    Clamp,
    Constant,
    Cooldown,
    Cosine,
    Exponential,
    Join,
    Linear,
    Overlay,
    Product,
    Repeat,
    ScheduleError,
    Warmup,
    wsd,
)

cos, pi = math.cos, math.pi


def test_join_local_clocks_and_warmup_target() -> None:
    s = Join(pieces=(Warmup(total=10), Cosine(total=90, peak=2.0)))
    # the warm-up ramps to where the next piece starts (2.0), then the cosine runs on its local clock
    assert s.values([0, 5, 10, 55, 100, 200]).tolist() == pytest.approx(
        [0.0, 1.0, 2.0, 2.0 * 0.5 * (1 + cos(pi * 0.5)), 0.0, 0.0], rel=1e-12, abs=1e-300
    )


def test_join_with_open_piece_takes_the_rest() -> None:
    s = lrlab.parse("warmup(0.1) >> constant() >> cooldown(0.2, shape=linear)", total=1000)
    assert isinstance(s, Join)
    assert [p.length for p in s.pieces] == [100, 700, 200]
    assert s.boundaries() == [0.0, 100.0, 800.0]
    assert s(50) == 0.5 and s(799) == 1.0 and s(900) == 0.5 and s(1000) == 0.0


def test_warmup_longer_than_training_is_a_clear_error() -> None:
    with pytest.raises(ScheduleError, match="leaving nothing for cosine"):
        lrlab.parse("warmup(2000) >> cosine()", total=1000)
    with pytest.raises(ScheduleError, match="leaving nothing"):
        lrlab.parse("warmup(1000) >> cosine()", total=1000)


WARMUP_TOO_LONG = [
    ("warmup(200) >> cosine(total=100)", 100, "warmup(200) takes 200 clock units but the run's total is 100"),
    ("warmup(100) >> cosine(total=100)", 100, "warmup(100) takes 100 clock units but the run's total is 100"),
    ("warmup(200) >> constant()", 100, "warmup(200) takes 200"),
    ("overlay(warmup(200), cosine(100))", 100, "warmup(200) takes 200 clock units but the run's total is 100"),
    ("overlay(warmup(200), cosine())", 100, "warmup(200) takes 200"),
    ("0.5 * (warmup(300) >> linear(10))", 100, "warmup(300) takes 300"),
]


@pytest.mark.parametrize(("text", "total", "message"), WARMUP_TOO_LONG, ids=[w[0] for w in WARMUP_TOO_LONG])
def test_fixed_warmup_longer_than_the_run_is_refused(text: str, total: int, message: str) -> None:
    with pytest.raises(ScheduleError) as info:
        lrlab.parse(text, total=total)
    assert message in str(info.value) and "warm-up must be shorter than the run" in str(info.value)
    lrlab.parse(text)  # without a total the lengths are just lengths


def test_pieces_running_past_the_run_are_fine_after_a_short_warmup() -> None:
    """Only the warm-up is measured against the total: a peer's later cycles may outlast the run (timm's
    PolyLRScheduler with cycle_mul=2 unrolls cycles past its horizon)."""
    s = lrlab.parse("warmup(5) >> linear(200) >> linear(400) >> constant(0)", total=100)
    assert s(5) == 1.0 and s(105) == 0.5


def test_a_cut_piece_rebinds() -> None:
    """A head longer than a fixed-length base is a cut (torch SequentialLR / optax join_schedules at a milestone
    before the piece's end); binding a total must keep the values."""
    from lrlab.compat import torch as tc

    s = tc.SequentialLR([tc.CosineAnnealingLR(0.1, 100), tc.StepLR(0.1, 3)], [50])
    t = np.arange(0, 200, dtype=np.float64)
    for total in (80, 50, 10, 1000):
        assert s.bind(total).values(t).tolist() == s.values(t).tolist()
        assert lrlab.parse(str(s), total=total).values(t).tolist() == s.values(t).tolist()
    cut = Overlay(head=Cosine(total=100), base=Constant(value=0.0, total=50))
    assert (cut >> Constant(value=0.5)).bind(80).values([49, 50]).tolist() == [Cosine(total=100)(49), 0.5]


def test_an_overlay_hiding_an_open_base_is_refused() -> None:
    with pytest.raises(ScheduleError, match=r"overlay: head linear\(200\) takes 200 of the total 100"):
        lrlab.parse("overlay(linear(200), cosine())", total=100)


def test_two_open_pieces_are_ambiguous() -> None:
    with pytest.raises(ScheduleError, match="only one piece may take the rest"):
        lrlab.parse("warmup(10) >> constant() >> cosine()")


def test_zero_length_warmup_is_skipped() -> None:
    s = lrlab.parse("warmup(0) >> cosine()", total=100)
    assert s.values([0, 50]).tolist() == Cosine(total=100).values([0, 50]).tolist()


def test_overlay_is_timm_warmup_prefix_false() -> None:
    s = Overlay(head=Warmup(total=10, floor=0.1), base=Linear(total=100)).bind(100)
    # the head ramps to base(0)=1; afterwards the base on the GLOBAL clock (10 -> 0.9)
    assert s.values([0, 5, 9, 10, 50]).tolist() == pytest.approx([0.1, 0.55, 0.91, 0.9, 0.5], rel=1e-12)
    assert s.base.length == 100


def test_product_and_scale() -> None:
    s = lrlab.parse("0.5 * cosine(100)")
    assert isinstance(s, Product)
    assert s(0) == 0.5 and s(100) == 0.0
    assert str(s) == "0.5 * cosine(100)"
    untuned = lrlab.parse("warmup(100, shape=exponential) * linear()", total=1000)
    assert untuned(1000) == 0.0 and 0 < untuned(50) < 0.9


def test_clamp_is_optax_end_value() -> None:
    s = Clamp(inner=Exponential(gamma=0.5), min=0.2)
    assert s.values([0, 1, 2, 3, 10]).tolist() == [1.0, 0.5, 0.25, 0.2, 0.2]


def test_repeat_cycles_then_holds() -> None:
    s = Repeat(inner=Linear(total=10), times=2)
    assert s.values([0, 5, 10, 15, 20, 35]).tolist() == [1.0, 0.5, 1.0, 0.5, 0.0, 0.0]
    forever = Repeat(inner=Linear(total=10))
    assert forever(1005) == 0.5


def test_wsd_helper() -> None:
    s = wsd(warmup=0.1, decay=0.2, total=1000, shape="sqrt", floor=0.1)
    assert s(0) == 0.0 and s(100) == 1.0 and s(799) == 1.0
    assert s(850) == pytest.approx(0.1 + 0.9 * (1 - math.sqrt(0.25)), rel=1e-12)
    assert s(1000) == pytest.approx(0.1, rel=1e-12)
    assert lrlab.parse("wsd(warmup=0.1, decay=0.2, shape=sqrt, floor=0.1)", total=1000) == s


def test_rshift_flattens_joins() -> None:
    s = Warmup(total=10) >> Constant(total=10) >> Cooldown(total=10)
    assert isinstance(s, Join) and len(s.pieces) == 3


def test_nested_fractions_are_fractions_of_the_run() -> None:
    s = lrlab.parse("warmup(0.1) >> step(every=0.25, factor=0.5)", total=1000)
    # step's every = 0.25 of the whole run (250), measured on its local clock
    assert s(100 + 249) == 1.0 and s(100 + 250) == 0.5


def test_bound_schedule_spec_round_trips() -> None:
    s = lrlab.parse("warmup(0.06) >> cosine(floor=0.1)", total=1000)
    assert str(s) == "warmup(60) >> cosine(floor=0.1, total=940)"
    assert lrlab.parse(str(s)) == s


def test_join_scalar_path_matches_vector_path_at_boundaries() -> None:
    s = lrlab.parse("warmup(0.1) >> constant(total=0.5) >> cooldown(shape=cosine)", total=997)
    t = np.arange(0, 1100, dtype=np.float64)
    assert [s(float(x)) for x in t] == s.values(t).tolist()


def test_every_composite_of_the_grammar_is_exported() -> None:
    from lrlab import compose
    from lrlab.spec import REGISTRY

    for name, cls in REGISTRY.items():
        if cls.__module__ == compose.__name__:
            assert getattr(lrlab, cls.__name__) is cls and cls.__name__ in lrlab.__all__, name
    assert lrlab.Sum(terms=(lrlab.Constant(value=0.1), lrlab.Linear(total=10)))(5) == 0.6
    assert lrlab.Shift(inner=lrlab.Linear(total=10), by=1)(0) == 0.9
