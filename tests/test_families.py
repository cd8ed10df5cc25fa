"""Each family is a value, tested by its values: tables of (schedule, clock, expected) at rel=1e-12."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

import lrlab
from lrlab import (
    Constant,
    Cooldown,
    Cosine,
    CosineRestarts,
    Cyclic,
    Exponential,
    InverseSqrt,
    Linear,
    MultiStep,
    Noam,
    OneCycle,
    Piecewise,
    Polynomial,
    ScheduleError,
    Step,
    Tanh,
    Warmup,
)

cos, pi = math.cos, math.pi

CASES = [
    ("constant", Constant(value=0.5), 0, 0.5),
    ("constant-late", Constant(value=0.5), 1e9, 0.5),
    ("step-0", Step(every=30, factor=0.1), 0, 1.0),
    ("step-29", Step(every=30, factor=0.1), 29, 1.0),
    ("step-30", Step(every=30, factor=0.1), 30, 0.1),
    ("step-65", Step(every=30, factor=0.1, peak=2.0), 65, 2.0 * 0.1**2),
    ("multistep-before", MultiStep(milestones=(10, 20), factor=0.5), 9, 1.0),
    ("multistep-at", MultiStep(milestones=(10, 20), factor=0.5), 10, 0.5),
    ("multistep-after", MultiStep(milestones=(10, 20), factor=0.5), 25, 0.25),
    ("exp-gamma", Exponential(gamma=0.9), 3, 0.9**3),
    ("exp-every", Exponential(gamma=0.5, every=10), 5, 0.5**0.5),
    ("exp-stair", Exponential(gamma=0.5, every=10, staircase=True), 15, 0.5),
    ("exp-rate", Exponential(rate=0.01, peak=2.0), 100, 2.0 * math.exp(-1.0)),
    ("linear-mid", Linear(peak=1.0, floor=0.0, total=100), 25, 0.75),
    ("linear-up", Linear(peak=0.2, floor=1.0, total=10), 5, 0.6),
    ("linear-end", Linear(peak=1.0, floor=0.1, total=100), 100, 0.1),
    ("linear-past", Linear(peak=1.0, floor=0.1, total=100), 500, 0.1),
    ("poly-sq", Polynomial(power=2.0, total=10), 5, 0.25),
    ("poly-end", Polynomial(peak=1.0, floor=1e-3, power=2.0, total=10), 20, 1e-3),
    ("poly-k", Polynomial(power=2.0, k=2.0, total=10), 5, (1 - 25 / 100) ** 2),
    ("poly-k-half", Polynomial(floor=0.1, k=0.5, total=100), 25, 0.1 + 0.9 * (1 - 5 / 10)),
    ("poly-k-end", Polynomial(floor=0.1, power=1.5, k=3.0, total=100), 100, 0.1),
    ("cos-0", Cosine(total=100), 0, 1.0),
    ("cos-25", Cosine(total=100), 25, 0.5 * (1 + cos(pi * 0.25))),
    ("cos-floor", Cosine(total=100, floor=0.1), 50, 0.9 * 0.5 * (1 + cos(pi * 0.5)) + 0.1),
    ("cos-hold", Cosine(total=100, floor=0.1), 150, 0.1),
    ("cos-periodic", Cosine(total=100, periodic=True), 150, 0.5 * (1 + cos(pi * 1.5))),
    ("cos-cycles", Cosine(total=100, cycles=1.5), 40, 0.5 * (1 + cos(pi * 1.5 * 2 * 0.4))),
    ("cos-exponent", Cosine(total=100, exponent=2.0), 25, (0.5 * (1 + cos(pi * 0.25))) ** 2),
    ("sgdr-restart", CosineRestarts(period=10), 10, 1.0),
    ("sgdr-mid", CosineRestarts(period=10, floor=0.1), 15, 0.1 + 0.5 * 0.9 * (1 + cos(pi * 0.5))),
    ("sgdr-mult", CosineRestarts(period=10, mult=2), 25, 0.5 * (1 + cos(pi * 15 / 20))),
    ("sgdr-mult-edge", CosineRestarts(period=10, mult=2), 30, 1.0),
    ("sgdr-mult10-edge", CosineRestarts(period=1, mult=10), 1111, 1.0),
    ("sgdr-decay", CosineRestarts(period=10, decay=0.5), 20, 0.25),
    ("sgdr-limit", CosineRestarts(period=10, limit=2, floor=0.05), 20, 0.05),
    ("sgdr-k", CosineRestarts(period=10, k=2.0), 5, 0.5 * (1 + cos(pi * 25 / 100))),
    ("tanh-mid", Tanh(period=100), 50, 0.5 * (1 - math.tanh(-7 * 0.5 + 3 * 0.5))),
    ("tanh-after", Tanh(period=100, floor=0.01), 100, 0.01),
    ("rsqrt-0", InverseSqrt(timescale=100), 0, 1.0),
    ("rsqrt-300", InverseSqrt(timescale=100), 300, 0.5),
    ("noam-first", Noam(d_model=512, warmup=4000), 0, 512**-0.5 * 4000**-1.5),
    ("noam-peak", Noam(d_model=512, warmup=4000), 3999, 512**-0.5 * 4000**-0.5),
    ("noam-late", Noam(d_model=512, warmup=4000), 15999, 512**-0.5 * 16000**-0.5),
    ("warmup-lin", Warmup(total=100), 25, 0.25),
    ("warmup-start", Warmup(total=10, floor=0.1, peak=1.0), 5, 0.55),
    ("warmup-cos", Warmup(total=10, shape="cosine"), 5, 0.5),
    ("warmup-sqrt", Warmup(total=100, shape="sqrt"), 75, 0.5),
    ("warmup-exp", Warmup(total=100, shape="exponential"), 50, (1 - math.exp(-1)) / (1 - math.exp(-2))),
    ("warmup-done", Warmup(total=10), 10, 1.0),
    ("warmup-beta2", Warmup(beta2=0.999), 1000, 0.5),
    ("cooldown-sqrt", Cooldown(total=100, shape="sqrt"), 25, 0.5),
    ("cooldown-lin", Cooldown(total=100, shape="linear", floor=0.1), 50, 0.55),
    ("cooldown-cos", Cooldown(total=100, shape="cosine"), 50, 0.5 * (1 + cos(pi * 0.5))),
    ("onecycle-0", OneCycle(total=100), 0, 1 / 25),
    ("onecycle-peak", OneCycle(total=100), 29, 1.0),
    ("onecycle-mid", OneCycle(total=100, shape="linear"), 64, (1e-4 / 25 - 1.0) * (35 / 70) + 1.0),
    ("onecycle-last", OneCycle(total=100), 99, 1 / 25 / 1e4),
    ("onecycle-3p", OneCycle(total=100, three_phase=True, shape="linear"), 58, 1 / 25),
    ("cyclic-low", Cyclic(floor=0.1, peak=1.0, up=10), 0, 0.1),
    ("cyclic-high", Cyclic(floor=0.1, peak=1.0, up=10), 10, 1.0),
    ("cyclic-down", Cyclic(floor=0.1, peak=1.0, up=10, down=30), 25, 0.1 + 0.9 * 0.5),
    ("cyclic-tri2", Cyclic(floor=0.0, peak=1.0, up=10, mode="triangular2"), 30, 0.5),
    ("cyclic-exp", Cyclic(floor=0.0, peak=1.0, up=10, mode="exp_range", gamma=0.99), 10, 0.99**10),
    ("pw-const", Piecewise(times=(10, 20), levels=(1.0, 0.5, 0.1)), 15, 0.5),
    ("pw-const-edge", Piecewise(times=(10, 20), levels=(1.0, 0.5, 0.1)), 20, 0.1),
    ("pw-lin", Piecewise(times=(0, 10, 20), levels=(0.0, 1.0, 0.5), shape="linear"), 15, 0.75),
    ("pw-cos", Piecewise(times=(0, 10), levels=(1.0, 0.0), shape="cosine"), 5, 0.5 * (cos(pi / 2) + 1)),
    ("pw-hold", Piecewise(times=(0, 10), levels=(1.0, 0.0), shape="linear"), 50, 0.0),
]


@pytest.mark.parametrize(("schedule", "t", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_value(schedule: lrlab.Schedule, t: float, expected: float) -> None:
    assert schedule(t) == pytest.approx(expected, rel=1e-12, abs=1e-300)
    assert schedule.values(np.array([t, t]))[1] == schedule(t)


@pytest.mark.parametrize("schedule", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_scalar_and_array_paths_agree_exactly(schedule: lrlab.Schedule) -> None:
    t = np.concatenate([np.arange(0, 300, dtype=np.float64), np.linspace(0, 5000, 257), [1e6, 0.5, 29.999]])
    vec = schedule.values(t)
    assert vec.shape == t.shape
    assert [schedule(float(x)) for x in t] == vec.tolist()
    assert schedule.values(t.reshape(-1, 1)).reshape(-1).tolist() == vec.tolist()


@pytest.mark.parametrize("schedule", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_pickle_repr_and_hash(schedule: lrlab.Schedule) -> None:
    again = pickle.loads(pickle.dumps(schedule))
    assert again == schedule and hash(again) == hash(schedule)
    assert repr(schedule) == str(schedule)
    assert lrlab.parse(str(schedule)) == schedule


BAD = [
    ("step-every0", lambda: Step(every=0), "step.every must be > 0"),
    ("step-factor-neg", lambda: Step(every=10, factor=-0.1), "step.factor must be > 0"),
    ("cos-nan-peak", lambda: Cosine(peak=float("nan")), "cosine.peak must be a finite number"),
    ("cos-neg-total", lambda: Cosine(total=-5), "cosine.total must be > 0"),
    ("ms-order", lambda: MultiStep(milestones=(20, 10)), "strictly increasing"),
    ("ms-empty", lambda: MultiStep(milestones=()), "at least one"),
    ("exp-both", lambda: Exponential(gamma=0.9, rate=0.1), "exactly one of gamma"),
    ("exp-none", lambda: Exponential(), "exactly one of gamma"),
    ("warmup-shape", lambda: Warmup(total=10, shape="cubic"), "warmup.shape must be one of linear"),
    ("warmup-both", lambda: Warmup(total=10, beta2=0.99), "not both"),
    ("warmup-beta2", lambda: Warmup(beta2=1.0), "warmup.beta2 must be in (0, 1)"),
    ("poly-k", lambda: Polynomial(total=10, k=0.0), "polynomial.k must be > 0"),
    ("sgdr-mult", lambda: CosineRestarts(period=10, mult=0.5), "cosine_restarts.mult must be in [1, inf]"),
    ("sgdr-limit", lambda: CosineRestarts(period=10, limit=-1), "cosine_restarts.limit must be a whole number"),
    ("tanh-bounds", lambda: Tanh(period=10, lb=3, ub=-7), "tanh.lb must be < tanh.ub"),
    ("onecycle-pct", lambda: OneCycle(total=10, pct_start=1.2), "one_cycle.pct_start must be in (0, 1)"),
    ("onecycle-3p-pct", lambda: OneCycle(total=10, pct_start=0.6, three_phase=True), "(0, 0.5)"),
    ("cyclic-mode", lambda: Cyclic(mode="saw"), "cyclic.mode must be one of triangular"),
    ("pw-len", lambda: Piecewise(times=(1, 2), levels=(1.0,)), "piecewise.levels must hold len(times) + 1"),
    ("pw-order", lambda: Piecewise(times=(2, 1), levels=(1.0, 2.0, 3.0)), "strictly increasing"),
    ("bool-number", lambda: Constant(value=True), "constant.value must be a number"),
    ("string-number", lambda: Linear(peak="1", total=10), "linear.peak must be a number"),  # type: ignore[arg-type]
    ("old-name-string", lambda: Linear(start="1", total=10), "linear.peak must be a number"),
    ("old-and-new-name", lambda: Linear(start=0.5, peak=2.0, total=10),
     "linear: give peak or its old name start, not both; got peak=2.0, start=0.5"),
]


@pytest.mark.parametrize(("make", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_invalid_arguments_name_the_field(make: object, message: str) -> None:
    with pytest.raises(ScheduleError) as info:
        make()  # type: ignore[operator]
    assert message in str(info.value)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")], ids=["negative", "nan", "inf"])
def test_bad_clock_is_rejected(bad: float) -> None:
    s = Cosine(total=10)
    with pytest.raises(ScheduleError, match="clock t must be a finite number >= 0"):
        s(bad)
    with pytest.raises(ScheduleError, match="clock t must be a finite number >= 0"):
        s.values([0.0, bad])


def test_open_length_needs_total() -> None:
    with pytest.raises(ScheduleError, match="no total is known"):
        Cosine()(5)
    assert Cosine().bind(100)(50) == Cosine(total=100)(50)


def test_fraction_resolves_with_ceil_without_float_wart() -> None:
    # 0.07 * 100 == 7.000000000000001: HF's math.ceil gives 8; lrlab gives 7
    assert Warmup(total=0.07).bind(100).total == 7
    assert Warmup(total=0.065).bind(100).total == 7
    assert Step(every=0.25).bind(1000).every == 250


def test_bounds_hold_on_a_grid() -> None:
    t = np.linspace(0, 3000, 3001)
    for _, s, _, _ in CASES:
        lo, hi = s.bounds()
        v = s.values(t)
        assert (v >= lo - 1e-12 * abs(lo)).all() and (v <= hi + 1e-12 * abs(hi)).all(), str(s)


#: (old keywords, the same schedule in the one vocabulary): the old names still work in Python (#9)
OLD_KEYWORDS = [
    ("linear", lambda: Linear(start=0.5, end=0.1, total=10), Linear(peak=0.5, floor=0.1, total=10)),
    ("polynomial", lambda: Polynomial(start=2.0, end=0.5, total=10), Polynomial(peak=2.0, floor=0.5, total=10)),
    ("warmup", lambda: Warmup(total=5, start=0.1, end=2.0), Warmup(total=5, floor=0.1, peak=2.0)),
    ("warmup-open", lambda: Warmup(total=5, end=None), Warmup(total=5)),
    ("cooldown", lambda: Cooldown(total=10, start=2.0, end=0.5), Cooldown(total=10, peak=2.0, floor=0.5)),
    ("one-cycle", lambda: OneCycle(total=100, start=0.1, end=0.01), OneCycle(total=100, initial=0.1, floor=0.01)),
    ("cyclic", lambda: Cyclic(low=0.2, high=2.0, up=5), Cyclic(floor=0.2, peak=2.0, up=5)),
]


@pytest.mark.parametrize(("make", "new"), [k[1:] for k in OLD_KEYWORDS], ids=[k[0] for k in OLD_KEYWORDS])
def test_old_keywords_build_the_same_schedule(make: object, new: lrlab.Schedule) -> None:
    old = make()  # type: ignore[operator]
    assert old == new and hash(old) == hash(new) and str(old) == str(new)
    assert pickle.loads(pickle.dumps(old)) == new
    assert old.values(np.arange(120)).tolist() == new.values(np.arange(120)).tolist()


def test_every_family_uses_the_one_vocabulary() -> None:
    from lrlab.spec import REGISTRY, spec_fields

    old_words = {"start", "end", "low", "high"}
    for name, cls in REGISTRY.items():
        assert not old_words & set(spec_fields(cls)), name
        assert set(cls.renamed) <= old_words and set(cls.renamed.values()) <= set(spec_fields(cls)), name
