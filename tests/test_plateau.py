"""The plateau controller gives torch ReduceLROnPlateau's exact LR sequence; the guard's and the plateau's rules."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import lrlab
import lrlab.guard as lg
import lrlab.plateau as lp
from lrlab import LrlabError
from lrlab.guard import DivergenceError, DivergenceGuard
from lrlab.plateau import Plateau, PlateauState, phase_window
from lrlab.torch import LRScheduler

torch.set_num_threads(1)

BASES = (0.1, 0.037)


def _optimizer() -> torch.optim.Optimizer:
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(3))
    return torch.optim.SGD([{"params": [a], "lr": BASES[0]}, {"params": [b], "lr": BASES[1]}], lr=1.0)


def _both(metrics: list[float], **kw: object) -> tuple[list[list[float]], list[list[float]]]:
    """LRs after each report: torch's ReduceLROnPlateau vs lrlab's Plateau on constant()."""
    topt = _optimizer()
    ref = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kw)  # type: ignore[arg-type]
    lopt = _optimizer()
    min_lr = kw.get("min_lr", 0.0)
    pkw = {**kw, "min_lr": tuple(min_lr) if isinstance(min_lr, list) else min_lr}
    ours = LRScheduler(lopt, "constant()", plateau=Plateau(**pkw))  # type: ignore[arg-type]
    theirs, mine = [], []
    for m in metrics:
        ref.step(m)
        ours.report(m)
        theirs.append([g["lr"] for g in topt.param_groups])
        mine.append([g["lr"] for g in lopt.param_groups])
        assert ours.get_last_lr() == mine[-1]
    return theirs, mine


CONFIGS = {
    "defaults": {},
    "min-rel-p0": {"mode": "min", "patience": 0, "factor": 0.5},
    "min-abs": {"mode": "min", "threshold_mode": "abs", "threshold": 0.05, "patience": 2, "factor": 0.3},
    "max-rel": {"mode": "max", "threshold": 0.01, "patience": 1, "factor": 0.7},
    "max-abs-cooldown": {"mode": "max", "threshold_mode": "abs", "threshold": 0.02, "patience": 1, "cooldown": 3},
    "cooldown-minlr": {"patience": 0, "cooldown": 2, "factor": 0.5, "min_lr": 0.01},
    "minlr-per-group": {"patience": 1, "factor": 0.2, "min_lr": [1e-3, 1e-2]},
    "eps-large": {"patience": 0, "factor": 0.9, "eps": 5e-3},
    "no-threshold": {"patience": 3, "threshold": 0.0, "factor": 0.1, "min_lr": 1e-6},
}

CRAFTED = {
    "flat": [1.0] * 40,
    "improving": [1.0 / (i + 1) for i in range(40)],
    "worsening": [float(i) for i in range(40)],
    "sawtooth": [1.0 - 0.01 * (i % 7) + 0.001 * i for i in range(60)],
    "tiny-gains": [1.0 - 1e-5 * i for i in range(40)],
    "plateau-then-drop": [1.0] * 15 + [0.5] * 15 + [0.49999] * 15,
    "negative": [-1.0 - 0.001 * (i % 5) for i in range(40)],
    "nan-inside": [1.0, 0.9, math.nan, 0.8, math.nan, math.nan, 0.85, 0.7, 0.7, 0.7, 0.7, 0.7],
}


@pytest.mark.parametrize("config", CONFIGS, ids=list(CONFIGS))
@pytest.mark.parametrize("seq", CRAFTED, ids=list(CRAFTED))
def test_crafted_sequences_match_torch_exactly(config: str, seq: str) -> None:
    theirs, mine = _both(CRAFTED[seq], **CONFIGS[config])
    assert mine == theirs


@pytest.mark.parametrize("config", CONFIGS, ids=list(CONFIGS))
def test_random_walks_match_torch_exactly(config: str) -> None:
    rng = np.random.default_rng(7)
    for _ in range(20):
        walk = (1.0 + np.cumsum(rng.normal(0.0, 0.05, size=80)) * rng.choice([1.0, -1.0])).tolist()
        theirs, mine = _both(walk, **CONFIGS[config])
        assert mine == theirs


@settings(max_examples=150, deadline=None)
@given(
    metrics=st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64),
                               st.sampled_from([0.5, 0.5, 0.4999, 1.0])), min_size=1, max_size=40),
    mode=st.sampled_from(["min", "max"]),
    threshold_mode=st.sampled_from(["rel", "abs"]),
    threshold=st.sampled_from([0.0, 1e-4, 0.1]),
    patience=st.integers(0, 3),
    cooldown=st.integers(0, 3),
    factor=st.sampled_from([0.1, 0.5, 0.99]),
    eps=st.sampled_from([0.0, 1e-8, 1e-3]),
    min_lr=st.sampled_from([0.0, 1e-3, 0.05]),
)
def test_any_metric_sequence_matches_torch(metrics: list[float], **kw: object) -> None:
    theirs, mine = _both(metrics, **kw)
    assert mine == theirs


def test_composes_with_a_schedule_and_multiplies_it() -> None:
    spec = "warmup(5) >> cosine(95, floor=0.1)"
    opt = _optimizer()
    sched = LRScheduler(opt, spec, plateau=Plateau(patience=0, factor=0.5))
    s = lrlab.parse(spec)
    p = torch.nn.Parameter(torch.zeros(1))
    metrics = [1.0, 0.9, 0.95, 0.97, 0.5, 0.6]
    reduced = []
    for t, m in enumerate(metrics):
        p.grad = torch.ones(1)
        opt.step()
        sched.step()
        reduced.append(sched.report(m))
        assert sched.t == t + 1
    assert reduced == [False, False, True, True, False, True]
    assert sched.get_last_lr() == [BASES[0] * 0.5**3 * s(6), BASES[1] * 0.5**3 * s(6)]


def test_absolute_mode_levels_are_multipliers() -> None:
    opt = _optimizer()
    sched = LRScheduler(opt, "constant(0.2)", absolute=True, plateau=Plateau(patience=0, factor=0.5, min_lr=0.3))
    for m in (1.0, 2.0, 3.0):
        sched.report(m)
    assert sched.state_dict()["plateau"]["state"]["levels"] == [0.3, 0.3]
    assert sched.get_last_lr() == [0.2 * 0.3, 0.2 * 0.3]


BLOCKED = {
    "eps-blocks-every-group": ({"eps": 1.0}, [False] * 6, 0),
    "at-min-lr": ({"min_lr": [0.1, 0.037]}, [False] * 6, 0),
    "one-group-at-min-lr": ({"min_lr": [0.1, 0.0]}, [False, True, False, True, False, True], 3),
}


@pytest.mark.parametrize("case", BLOCKED, ids=list(BLOCKED))
def test_a_reduction_eps_blocks_is_not_counted(case: str) -> None:
    """torch changes (and logs) nothing when the change is eps or less: report() is False, reductions unchanged;
    the cooldown and the bad count restart as in torch."""
    kw, expected, reductions = BLOCKED[case]
    topt = _optimizer()
    ref = torch.optim.lr_scheduler.ReduceLROnPlateau(
        topt, patience=0, factor=0.5, cooldown=1, min_lr=list(kw.get("min_lr", [0.0, 0.0])), eps=kw.get("eps", 1e-8))
    lopt = _optimizer()
    pkw = {"eps": kw.get("eps", 1e-8), "min_lr": tuple(kw.get("min_lr", (0.0, 0.0)))}
    sched = LRScheduler(lopt, "constant()", plateau=Plateau(patience=0, factor=0.5, cooldown=1, **pkw))
    reported = []
    for m in (1.0, 2.0, 3.0, 4.0, 5.0, 6.0):
        before = sched.get_last_lr()
        reported.append(sched.report(m))
        ref.step(m)
        assert reported[-1] == (sched.get_last_lr() != before)  # True exactly when an LR changed
        state = sched.state_dict()["plateau"]["state"]
        assert (state["cooldown_left"], state["num_bad"]) == (ref.cooldown_counter, ref.num_bad_epochs)
        assert sched.get_last_lr() == [g["lr"] for g in topt.param_groups]
    assert reported == expected
    assert sched.state_dict()["plateau"]["state"]["reductions"] == reductions


def test_state_round_trip_and_resume_refuses_another_config() -> None:
    opt = _optimizer()
    sched = LRScheduler(opt, "constant()", plateau=Plateau(patience=1, cooldown=1))
    for m in (1.0, 1.0, 1.0, 0.5):
        sched.report(m)
    state = sched.state_dict()
    assert state["plateau"]["state"] == {"levels": [BASES[0] * 0.1, BASES[1] * 0.1], "best": 0.5, "num_bad": 0,
                                         "cooldown_left": 0, "reductions": 1}
    fresh = LRScheduler(_optimizer(), "constant()", plateau=Plateau(patience=1, cooldown=1))
    fresh.load_state_dict(state)
    assert fresh.get_last_lr() == sched.get_last_lr()
    for m in (0.6, 0.6, 0.6):  # both continue identically
        assert fresh.report(m) == sched.report(m)
    assert fresh.get_last_lr() == sched.get_last_lr()
    other = LRScheduler(_optimizer(), "constant()", plateau=Plateau(patience=2))
    with pytest.raises(LrlabError, match="different plateau"):
        other.load_state_dict(state)
    with pytest.raises(LrlabError, match="different plateau"):
        LRScheduler(_optimizer(), "constant()").load_state_dict(state)
    assert PlateauState.from_dict(state["plateau"]["state"]).to_dict() == state["plateau"]["state"]


def test_window_and_phase_window() -> None:
    s = lrlab.parse("warmup(0.1) >> constant(total=0.5) >> cooldown()", total=200)
    assert phase_window(s, 0) == (0.0, 20.0)
    assert phase_window(s, 1) == (20.0, 120.0)
    assert phase_window(s, -1) == (120.0, None)
    p = Plateau(patience=0, start=20.0, stop=120.0)
    state = p.init((1.0,))
    for t in (0, 10, 19.5):
        state = p.update(state, 5.0 + t, t)
    assert state == p.init((1.0,))  # outside the window: untouched
    state = p.update(p.update(state, 1.0, 20), 2.0, 50)
    assert state.levels == (0.1,) and state.reductions == 1
    assert p.update(state, 9.0, 120) == state
    with pytest.raises(LrlabError, match=r"index must be a piece index in \[0, 2\]"):
        phase_window(s, 3)
    with pytest.raises(LrlabError, match="needs a join of phases"):
        phase_window(lrlab.parse("cosine(10)"), 0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "avg"}, "plateau.mode must be one of min, max; got 'avg'"),
        ({"factor": 1.0}, r"plateau.factor must be in \(0, 1\), got 1.0"),
        ({"patience": -1}, "plateau.patience must be a whole number >= 0, got -1"),
        ({"threshold_mode": "pct"}, "plateau.threshold_mode must be one of rel, abs; got 'pct'"),
        ({"min_lr": -1.0}, "plateau.min_lr must be >= 0, got -1.0"),
        ({"start": 10, "stop": 5}, r"plateau.stop must be > plateau.start \(10\) or None, got 5"),
    ],
)
def test_plateau_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(LrlabError, match=message):
        Plateau(**kwargs)  # type: ignore[arg-type]


def test_min_lr_per_group_must_match_groups() -> None:
    with pytest.raises(LrlabError, match=r"plateau\.min_lr holds 3 values but the optimizer has 2 param groups"):
        LRScheduler(_optimizer(), "constant()", plateau=Plateau(min_lr=(0.0, 0.0, 0.0)))


# ---------------------------------------------------------------------------------------------------- guard


def test_guard_rules() -> None:
    g = DivergenceGuard(window=3, spike=2.0, factor=0.5, min_scale=0.2, max_skips=0)
    s = g.init()
    for loss in (1.0, 2.0):
        s, ev = g.update(s, loss, t=0)
        assert ev is None
    s, ev = g.update(s, 50.0, t=2)  # fewer than `window` losses seen: no spike test yet
    assert ev is None and s.recent == (1.0, 2.0, 50.0)
    s, ev = g.update(s, 200.0, t=3)
    assert ev is not None and (ev.kind, ev.reference, ev.scale) == ("spike", 53.0 / 3, 0.5)
    s, ev = g.update(s, 1.0, t=3, grad_norm=math.inf)
    assert ev is not None and ev.kind == "grad"
    s, ev = g.update(s, -math.inf, t=3)
    assert ev is not None and (ev.kind, ev.scale) == ("inf", 0.2)  # floored at min_scale
    assert s.skipped == 3 and s.consecutive == 3 and s.recent == (1.0, 2.0, 50.0)


def test_guard_gives_up_after_max_skips() -> None:
    g = DivergenceGuard(max_skips=3)
    s = g.init()
    s, _ = g.update(s, math.nan, t=0)
    s, _ = g.update(s, math.nan, t=0)
    with pytest.raises(DivergenceError, match="skipped 3 updates in a row"):
        g.update(s, math.nan, t=0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"spike": 1.0}, "guard.spike must be a number > 1"),
        ({"window": 0}, "guard.window must be a whole number >= 1, got 0"),
        ({"factor": 0.0}, r"guard.factor must be in \(0, 1\], got 0.0"),
        ({"max_skips": -2}, "guard.max_skips must be a whole number >= 0, got -2"),
    ],
)
def test_guard_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(LrlabError, match=message):
        DivergenceGuard(**kwargs)  # type: ignore[arg-type]


def test_guard_state_resumes_in_the_scheduler() -> None:
    opt = _optimizer()
    guard = DivergenceGuard(window=2)
    sched = LRScheduler(opt, "constant()", guard=guard)
    with pytest.warns(UserWarning, match="the loss is NaN"):
        for loss in (1.0, 1.1, math.nan):
            sched.check(loss)
    fresh = LRScheduler(_optimizer(), "constant()", guard=guard)
    fresh.load_state_dict(sched.state_dict())
    assert fresh.get_last_lr() == sched.get_last_lr() == [BASES[0] * 0.5, BASES[1] * 0.5]
    with pytest.warns(UserWarning, match=r"the loss spiked to 10, over the recent mean 1\.05.*\(2 skipped so far\)"):
        assert fresh.check(10.0) is sched.check(10.0) is False  # the reference (1.0, 1.1) came along


def test_the_guard_is_still_importable_from_plateau() -> None:
    assert lp.DivergenceGuard is lg.DivergenceGuard and lp.DivergenceError is lg.DivergenceError
    assert lp.GuardEvent is lg.GuardEvent and lp.GuardState is lg.GuardState


@pytest.mark.parametrize("module", [lp, lg], ids=["plateau", "guard"])
def test_doctests(module: object) -> None:
    assert doctest.testmod(module, optionflags=doctest.ELLIPSIS).failed == 0  # type: ignore[arg-type]
