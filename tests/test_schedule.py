"""The Schedule base: BlockCache is exactly the vector path; binding; declared bounds."""

from __future__ import annotations

import numpy as np
import pytest

import lrlab
from lrlab.schedule import BlockCache


@pytest.mark.parametrize("spec", ["warmup(0.05) >> cosine(floor=0.1)", "cosine_restarts(0.1, mult=2)",
                                  "onecycle()", "wsd(warmup=0.1, decay=0.3)"])
def test_block_cache_equals_vector_path(spec: str) -> None:
    s = lrlab.parse(spec, total=3000)
    cache = BlockCache(s, block=256)
    t = np.arange(0, 3500, dtype=np.float64)
    assert [cache(int(x)) for x in t] == s.values(t).tolist()
    assert [cache(float(x)) for x in t[::-97]] == s.values(t[::-97]).tolist()  # going backwards refills blocks
    assert cache(12.25) == s(12.25)


def test_block_cache_rejects_bad_input() -> None:
    with pytest.raises(lrlab.ScheduleError, match="no total is known"):
        BlockCache(lrlab.parse("cosine()"))
    with pytest.raises(lrlab.ScheduleError, match="block must be >= 1"):
        BlockCache(lrlab.parse("cosine(10)"), block=0)
    with pytest.raises(lrlab.ScheduleError, match="clock t must be"):
        BlockCache(lrlab.parse("cosine(10)"))(-1)


BAD_CLOCKS = [("5", "got '5' (str)"), (None, "got None (NoneType)"), (True, "got True (bool)"),
              (-1, "got -1.0"), (float("nan"), "got nan"), (float("inf"), "got inf")]


@pytest.mark.parametrize(("t", "message"), BAD_CLOCKS, ids=[repr(t) for t, _ in BAD_CLOCKS])
def test_bad_clock_names_the_value(t: object, message: str) -> None:
    s = lrlab.parse("cosine(10)")
    with pytest.raises(lrlab.ScheduleError) as info:
        s(t)  # type: ignore[arg-type]
    assert str(info.value).startswith("clock t must be a finite number >= 0") and message in str(info.value)


@pytest.mark.parametrize("ts", [["5", "6"], np.array(["1"]), [True, False], [1, -2], [0, float("nan")]],
                         ids=["strings", "string-array", "bools", "negative", "nan"])
def test_bad_clock_arrays_are_refused(ts: object) -> None:
    with pytest.raises(lrlab.ScheduleError, match="clock t must be"):
        lrlab.parse("cosine(10)").values(ts)


def test_integer_and_empty_clock_arrays_are_fine() -> None:
    s = lrlab.parse("cosine(10)")
    assert s.values(np.arange(3, dtype=np.int32)).tolist() == s.values([0.0, 1.0, 2.0]).tolist()
    assert s.values([]).shape == (0,)


# ------------------------------------------------------------------------------------ values over the run (#12)

REFUSED = [
    # (spec, total, the first bad clock and value in the message)
    ("exponential(1.5)", 10_000, "gives inf at t=1751 of a run of 10000 clock units"),
    ("1e200 * constant(1e200)", 10, "gives inf at t=0"),
    ("cosine(floor=-1)", 100, "gives -0.03141075907812829 at t=51"),
    ("warmup(10) >> linear(floor=-1)", 20, "gives -0.2 at t=16"),
    ("step(1000, factor=2)", 10_000_000, "gives inf at t=1.024e+06 of a run of 1e+07 clock units"),
    ("cyclic(0.1, peak=1, up=10, mode=exp_range, gamma=2)", 2000, "gives inf at t=1024"),
    ("clamp(exponential(1e10) * constant(0), min=0, max=1)", 100, "gives nan at t=31"),
    ("sum(constant(1), constant(-2))", 5, "gives -1.0 at t=0"),
]


@pytest.mark.parametrize(("spec", "total", "message"), REFUSED, ids=[r[0] for r in REFUSED])
def test_values_that_are_not_finite_and_nonnegative_are_refused_at_bind(spec: str, total: int, message: str) -> None:
    s = lrlab.parse(spec)  # without a total nothing is known about the run
    for bind in (lambda: s.bind(total), lambda: lrlab.parse(spec, total=total)):
        with pytest.raises(lrlab.ScheduleError) as info:
            bind()
        msg = str(info.value)
        assert message in msg and "values must be finite numbers >= 0 over the run" in msg, msg


def test_the_check_is_on_the_run_only() -> None:
    # negative only after the run: fine; a growing exponential that stays finite over the run: fine
    assert lrlab.parse("linear(20, floor=-1)", total=10)(10) == 0.0  # 0 is allowed; it falls below from t=11
    assert lrlab.parse("exponential(1.5)", total=1000)(1000) == 1.5**1000
    # a clamp keeps a growing exponential finite over any run (the inner value overflows, the clamp caps it)
    with np.errstate(over="ignore"):
        assert lrlab.parse("clamp(exponential(1.5), max=2)", total=10_000)(10_000) == 2.0


def test_parts_may_take_values_the_whole_does_not() -> None:
    # timm's WSD subtracts its floor inside a sum that adds it back: the parts go below 0, the whole does not
    from lrlab.compat import timm

    s = timm.WSDLRScheduler(0.1, 100, 30, lr_min=1e-3, stable_fn="rsqrt", stable_timescale=10)
    assert s.bind(100).values(np.arange(101)).min() >= 1e-3


def test_long_runs_are_checked_on_evenly_spaced_clocks() -> None:
    from lrlab.schedule import RUN_CHECK_EVERY

    total = 1e9
    assert total > RUN_CHECK_EVERY
    assert lrlab.parse("exponential(1.0000001)", total=total)(total) < 1e44  # e**100: finite
    with pytest.raises(lrlab.ScheduleError, match="gives inf at t="):
        lrlab.parse("exponential(1.000001)", total=total)
    # schedules whose declared bounds prove the values safe: only a coarse grid is evaluated, whatever the total
    assert lrlab.parse("warmup(0.01) >> cosine(floor=0.1)", total=1e12)(1e12) == pytest.approx(0.1)


def test_declared_bounds_of_a_product_say_when_it_overflows() -> None:
    assert lrlab.parse("1e200 * constant(1e200)").bounds() == (np.inf, np.inf)
    assert lrlab.parse("exponential(2) * constant(0)").bounds() == (-np.inf, np.inf)
    assert lrlab.parse("cyclic(0.1, up=5, mode=exp_range, gamma=1.1)").bounds() == (0.1, np.inf)
