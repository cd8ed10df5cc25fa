"""Hypothesis: random schedules are finite, stay within their declared bounds, evaluate the same on the scalar
and array paths, round-trip through text, dict and pickle, are monotone and continuous where promised."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lrlab
from lrlab import families as F
from lrlab.compose import Clamp, Join, Overlay, Product, Repeat, Sum

pos = st.floats(min_value=1e-3, max_value=10.0, allow_nan=False)
unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
length = st.one_of(st.integers(min_value=1, max_value=500), st.floats(min_value=0.01, max_value=0.9))


@st.composite
def peak_floor(draw: st.DrawFn) -> tuple[float, float]:
    peak = draw(pos)
    return peak, draw(unit) * peak


@st.composite
def family(draw: st.DrawFn) -> lrlab.Schedule:
    kind = draw(st.sampled_from(["constant", "step", "multistep", "exp", "linear", "poly", "cosine", "sgdr",
                                 "tanh", "rsqrt", "noam", "onecycle", "cyclic", "cooldown", "piecewise"]))
    peak, floor = draw(peak_floor())
    if kind == "constant":
        return F.Constant(value=peak)
    if kind == "step":
        return F.Step(every=draw(length), factor=draw(st.floats(0.05, 0.99)), peak=peak)
    if kind == "multistep":
        ms = sorted(set(draw(st.lists(st.integers(1, 1000), min_size=1, max_size=4))))
        return F.MultiStep(milestones=tuple(ms), factor=draw(st.floats(0.05, 0.99)), peak=peak)
    if kind == "exp":
        if draw(st.booleans()):
            return F.Exponential(gamma=draw(st.floats(0.5, 0.9999)), peak=peak, staircase=draw(st.booleans()),
                                 every=draw(st.floats(1.0, 50.0)))
        return F.Exponential(rate=draw(st.floats(0.0, 0.1)), peak=peak)
    if kind == "linear":
        return F.Linear(peak=peak, floor=floor, total=draw(length))
    if kind == "poly":
        return F.Polynomial(peak=peak, floor=floor, power=draw(st.floats(0.5, 3.0)),
                            k=draw(st.one_of(st.just(1.0), st.floats(0.25, 4.0))), total=draw(length))
    if kind == "cosine":
        return F.Cosine(peak=peak, floor=floor, total=draw(length), exponent=draw(st.floats(0.5, 2.0)))
    if kind == "sgdr":
        return F.CosineRestarts(period=draw(length), mult=draw(st.sampled_from([1.0, 1.5, 2.0, 3.0])),
                                decay=draw(st.floats(0.3, 1.0)), limit=draw(st.integers(0, 4)), peak=peak,
                                floor=floor)
    if kind == "tanh":
        return F.Tanh(period=draw(length), peak=peak, floor=floor, limit=draw(st.integers(0, 3)))
    if kind == "rsqrt":
        return F.InverseSqrt(timescale=draw(st.floats(1.0, 1000.0)), peak=peak)
    if kind == "noam":
        return F.Noam(d_model=draw(st.sampled_from([64.0, 512.0, 1024.0])), warmup=draw(st.floats(1.0, 4000.0)),
                      scale=draw(pos))
    if kind == "onecycle":
        three = draw(st.booleans())
        return F.OneCycle(total=draw(st.integers(10, 1000)), peak=peak, three_phase=three,
                          pct_start=draw(st.floats(0.15, 0.45)), shape=draw(st.sampled_from(["cosine", "linear"])))
    if kind == "cyclic":
        return F.Cyclic(floor=floor, peak=peak, up=draw(st.floats(1.0, 100.0)), down=draw(st.floats(1.0, 100.0)),
                        mode=draw(st.sampled_from(["triangular", "triangular2", "exp_range"])),
                        gamma=draw(st.floats(0.9, 1.0)))
    if kind == "cooldown":
        return F.Cooldown(total=draw(length), shape=draw(st.sampled_from(["linear", "cosine", "sqrt"])),
                          peak=peak, floor=floor)
    times = sorted(set(draw(st.lists(st.integers(0, 1000), min_size=2, max_size=5))))
    shape = draw(st.sampled_from(["constant", "linear", "cosine"]))
    n = len(times) + 1 if shape == "constant" else len(times)
    return F.Piecewise(times=tuple(float(x) for x in times), levels=tuple(draw(st.lists(pos, min_size=n, max_size=n))),
                       shape=shape)


@st.composite
def compat_built(draw: st.DrawFn) -> lrlab.Schedule:
    """A schedule as the optax-compatible constructors build it (joins, delays, fitted pieces)."""
    from lrlab.compat import optax as O

    kind = draw(st.sampled_from(["warmup_cosine", "warmup_exp", "onecycle", "exp", "piecewise", "sgdr", "poly"]))
    peak, floor = draw(peak_floor())
    w = draw(st.integers(0, 200))
    if kind == "warmup_cosine":
        return O.warmup_cosine_decay_schedule(floor, peak, w, w + draw(st.integers(1, 1000)), end_value=floor,
                                              exponent=draw(st.floats(0.5, 2.0)))
    if kind == "warmup_exp":
        return O.warmup_exponential_decay_schedule(floor, peak, w, draw(st.integers(1, 500)),
                                                   draw(st.floats(0.1, 0.99)), staircase=draw(st.booleans()))
    if kind == "onecycle":
        build = O.cosine_onecycle_schedule if draw(st.booleans()) else O.linear_onecycle_schedule
        return build(draw(st.integers(10, 1000)), peak, pct_start=draw(st.floats(0.1, 0.8)))
    if kind == "exp":
        return O.exponential_decay(peak, draw(st.integers(1, 500)), draw(st.floats(0.1, 0.99)),
                                   transition_begin=w, staircase=draw(st.booleans()))
    if kind == "piecewise":
        bounds = sorted(set(draw(st.lists(st.integers(1, 1000), min_size=1, max_size=4))))
        return O.piecewise_constant_schedule(peak, {b: draw(st.floats(0.1, 2.0)) for b in bounds})
    if kind == "sgdr":
        return O.sgdr_schedule([{"init_value": floor, "peak_value": peak, "warmup_steps": draw(st.integers(0, 20)),
                                 "decay_steps": draw(st.integers(30, 300))} for _ in range(draw(st.integers(1, 3)))])
    return O.polynomial_schedule(peak, floor, draw(st.floats(0.5, 3.0)), draw(st.integers(1, 1000)),
                                 transition_begin=w)


@st.composite
def schedule(draw: st.DrawFn) -> lrlab.Schedule:
    kind = draw(st.sampled_from(["family", "warmup-join", "beta2-join", "join", "overlay", "product", "clamp",
                                 "repeat", "compat"]))
    if kind == "family":
        return draw(family())
    if kind == "compat":
        return draw(compat_built())
    if kind == "warmup-join":
        w = F.Warmup(total=draw(st.integers(0, 50)), floor=draw(unit) * 0.1,
                     shape=draw(st.sampled_from(["linear", "cosine", "sqrt", "exponential"])))
        return Join(pieces=(w, draw(family())))
    if kind == "beta2-join":  # the untuned rule of thumb: 2 / (1 - beta2) updates
        w = F.Warmup(beta2=draw(st.floats(0.9, 0.999)), shape=draw(st.sampled_from(["linear", "exponential"])))
        return Join(pieces=(w, draw(family())))
    if kind == "join":
        a = draw(family())
        a = a if a.length is not None else F.Constant(value=1.0, total=draw(st.integers(1, 100)))
        return Join(pieces=(a, draw(family())))
    if kind == "overlay":
        return Overlay(head=F.Warmup(total=draw(st.integers(1, 20))), base=draw(family()))
    if kind == "product":
        return Product(factors=(draw(family()), draw(family())))
    if kind == "clamp":
        lo = draw(unit)
        return Clamp(inner=draw(family()), min=lo, max=lo + draw(pos))
    inner = F.Linear(peak=1.0, floor=draw(unit), total=draw(st.integers(1, 100)))
    return Repeat(inner=inner, times=draw(st.integers(0, 4)))


CLOCKS = np.concatenate([np.arange(0, 1200, 3, dtype=np.float64), [0.5, 99.999, 5e4]])


@settings(max_examples=300, deadline=None)
@given(schedule(), st.integers(min_value=1000, max_value=5000))
def test_invariants(s: lrlab.Schedule, total: int) -> None:
    b = s.bind(total)
    v = b.values(CLOCKS)
    assert np.isfinite(v).all(), str(b)
    lo, hi = b.bounds()
    tol = 1e-12 * max(1.0, abs(lo), abs(hi) if math.isfinite(hi) else 1.0)
    assert (v >= lo - tol).all() and (v <= hi + tol).all(), (str(b), lo, hi, v.min(), v.max())
    assert [b(float(t)) for t in CLOCKS[::7]] == v[::7].tolist()
    for x in (s, b):
        assert lrlab.parse(str(x)) == x
        assert lrlab.from_dict(x.to_dict()) == x
        assert pickle.loads(pickle.dumps(x)) == x


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 500), st.integers(600, 5000), st.sampled_from(["linear", "cosine", "sqrt", "exponential"]),
       peak_floor())
def test_warmup_then_decay_is_monotone_and_continuous(w: int, total: int, shape: str, pf: tuple[float, float]) -> None:
    peak, floor = pf
    s = Join(pieces=(F.Warmup(total=w, shape=shape), F.Cosine(peak=peak, floor=floor))).bind(total)
    t = np.arange(0, total + 1, dtype=np.float64)
    v = s.values(t)
    rise, fall = v[: w + 1], v[w:]
    assert (np.diff(rise) >= -1e-15).all() and (np.diff(fall) <= 1e-15).all()
    # continuous at the boundary: approaching w from below reaches the cosine's start (the peak)
    assert s(w - 1e-9) == pytest.approx(peak, rel=1e-4)  # sqrt shape: 1 - sqrt(1e-9 / w)
    assert v[w] == pytest.approx(peak, rel=1e-15) and v[-1] == pytest.approx(floor, rel=1e-12, abs=1e-300)


@settings(max_examples=150, deadline=None)
@given(st.integers(2, 2000), st.sampled_from(["linear", "cosine", "sqrt"]), peak_floor())
def test_cooldowns_are_monotone(total: int, shape: str, pf: tuple[float, float]) -> None:
    peak, floor = pf
    v = F.Cooldown(total=total, shape=shape, peak=peak, floor=floor).values(np.arange(total + 5, dtype=np.float64))
    assert (np.diff(v) <= 1e-15).all() and v[0] == pytest.approx(peak, rel=1e-15) and v[-1] == floor


@st.composite
def overflowing(draw: st.DrawFn) -> tuple[lrlab.Schedule, int]:
    """A schedule and a run over which it overflows float64 (or reaches inf * 0 = NaN)."""
    kind = draw(st.sampled_from(["exp", "step", "product", "join", "clamp-min", "cyclic", "sum"]))
    peak = draw(st.floats(1.0, 10.0))
    gamma = draw(st.floats(1.01, 10.0))
    reach = math.ceil(712 / math.log(gamma))  # peak * gamma ** reach > 1.8e308 for peak >= 1
    extra = draw(st.integers(0, 1000))
    grow = F.Exponential(gamma=gamma, peak=peak)
    if kind == "exp":
        return grow, reach + extra
    if kind == "step":
        every = draw(st.integers(1, 20))
        return F.Step(every=every, factor=gamma, peak=peak), every * reach + extra
    if kind == "product":
        a = draw(st.floats(155.0, 300.0))
        big = F.Constant(value=10.0**a)
        return Product(factors=(big, F.Constant(value=10.0 ** (309.0 - a + draw(st.floats(0.0, 5.0)))))), extra + 1
    if kind == "join":
        w = draw(st.integers(1, 100))
        return Join(pieces=(F.Warmup(total=w), grow)), w + reach + extra
    if kind == "clamp-min":  # a floor does not stop a value growing
        return Clamp(inner=grow, min=draw(unit)), reach + extra
    if kind == "sum":
        return Sum(terms=(F.Constant(value=draw(unit)), grow)), reach + extra
    up = draw(st.integers(1, 50))
    return F.Cyclic(floor=0.0, peak=peak, up=up, mode="exp_range", gamma=gamma), reach + 2 * up + extra


@settings(max_examples=150, deadline=None)
@given(overflowing())
def test_schedules_that_overflow_over_the_run_are_refused_at_bind(case: tuple[lrlab.Schedule, int]) -> None:
    s, total = case
    with pytest.raises(lrlab.ScheduleError) as info:
        s.bind(total)
    msg = str(info.value)
    assert "values must be finite numbers >= 0 over the run" in msg and (" gives inf at t=" in msg
                                                                          or " gives nan at t=" in msg), msg
    with pytest.raises(lrlab.ScheduleError):
        lrlab.parse(str(s), total=total)


@settings(max_examples=100, deadline=None)
@given(family(), st.floats(1e-3, 10.0), st.integers(1000, 5000))
def test_a_negative_value_is_refused_where_the_run_reaches_it(s: lrlab.Schedule, depth: float, total: int) -> None:
    # a family sunk by a constant: refused exactly when the value at some integer clock of the run is < 0
    sunk = Sum(terms=(s, F.Constant(value=-depth)))
    resolved = sunk._bind(total)
    if (resolved.values(np.arange(0, total + 1, dtype=np.float64)) < 0).any():
        with pytest.raises(lrlab.ScheduleError, match=" gives -"):
            sunk.bind(total)
    else:
        assert sunk.bind(total) == resolved
