"""`lrlab.compat` against the real peers: torch, transformers, timm and optax.

Each case steps the peer's scheduler over a dummy optimizer with several parameter groups (different base LRs),
records the LR in effect for every update ``t``, and compares it with ``schedule.values(arange(n))`` at
``rel=1e-12`` (an absolute tolerance of 1e-12 times the largest LR only where one side is exactly 0). The float
``lr=`` form is compared with group 0 as well, and every case checks that the scalar and array paths agree
exactly. Where a peer drifts from its own closed form (torch's recursive ``CosineAnnealingLR``) the documented
bound is asserted; where a peer is wrong, the test asserts lrlab's value and records the peer's.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import numpy as np
import optax as optax_peer
import pytest
import torch
import transformers.optimization as hf_peer
from torch.optim import lr_scheduler as torch_peer

import lrlab
from lrlab import ScheduleError
from lrlab.compat import PeerWarning, hf, optax, timm
from lrlab.compat import torch as tc
from lrlab.spec import from_dict, to_dict

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _jax_x64() -> Iterator[None]:
    """optax computes in float32 otherwise; scoped to each test so the flag does not leak into other modules."""
    with jax.enable_x64(True):
        yield

REL = 1e-12
LRS = [0.1, 0.03, 1.0]  # per-group base LRs; group 0 is also built with a float lr


# ------------------------------------------------------------------------------------------------ helpers


def assert_parity(ours: np.ndarray, peer: np.ndarray, rel: float = REL, where: str = "") -> None:
    """Agreement to ``rel`` relative; absolute ``rel * max|peer|`` only where one side is exactly 0."""
    ours, peer = np.asarray(ours, dtype=np.float64), np.asarray(peer, dtype=np.float64)
    assert ours.shape == peer.shape
    scale = max(float(np.abs(peer).max(initial=0.0)), 1e-300)
    zero = (ours == 0) | (peer == 0)
    err = np.abs(ours - peer)
    tol = np.where(zero, rel * scale, rel * np.abs(peer))
    bad = np.nonzero(err > tol)[0]
    if bad.size:
        i = int(bad[0])
        worst = float(np.max(np.where(zero, err / scale, err / np.where(zero, 1.0, np.abs(peer)))))
        pytest.fail(f"{where}: {bad.size} clocks differ, first t={i}: lrlab {ours[i]!r} vs peer {peer[i]!r}; "
                    f"largest relative difference {worst:.3e} > {rel:g}")


def max_rel(ours: np.ndarray, peer: np.ndarray) -> float:
    nz = peer != 0
    return float(np.max(np.abs(ours[nz] - peer[nz]) / np.abs(peer[nz]), initial=0.0))


def assert_scalar_path(s: lrlab.Schedule, n: int) -> None:
    """``s(t)`` equals the array path exactly, on a spread of clocks including the end and past it."""
    ts = sorted({0, 1, n // 3, n // 2, max(n - 2, 0), n - 1, n, n + 7})
    vec = s.values(np.array(ts, dtype=np.float64))
    for t, v in zip(ts, vec):
        assert s(t) == v, f"s({t}) = {s(t)!r} but values() gives {v!r} for {s}"


def check(ours_list: Any, ours_float: Any, peer: np.ndarray, rel: float = REL) -> None:
    """Compare a per-group result and the float-lr result with the peer's per-group LRs (n x groups)."""
    n, groups = peer.shape
    assert isinstance(ours_list, list) and len(ours_list) == groups
    assert isinstance(ours_float, lrlab.Schedule)
    ts = np.arange(n, dtype=np.float64)
    for g, s in enumerate(ours_list):
        assert isinstance(s, lrlab.Schedule)
        assert_parity(s.values(ts), peer[:, g], rel, where=f"group {g}: {s}")
    assert_parity(ours_float.values(ts), peer[:, 0], rel, where=f"float lr: {ours_float}")
    assert_scalar_path(ours_float, n)


def make_optimizer(lrs: Sequence[float], default_lr: float | None = None) -> torch.optim.Optimizer:
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in lrs]
    groups = [{"params": [p], "lr": lr} for p, lr in zip(params, lrs)]
    return torch.optim.SGD(groups, lr=lrs[0] if default_lr is None else default_lr, momentum=0.9)


def step_torch(make: Callable[[torch.optim.Optimizer], Any], n: int, lrs: Sequence[float] = LRS,
               default_lr: float | None = None) -> np.ndarray:
    """LR of each group in effect for updates 0..n-1: read, ``optimizer.step()``, ``scheduler.step()``."""
    opt = make_optimizer(lrs, default_lr)
    out = np.empty((n, len(lrs)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # HF's wsd warns when given both lengths; the values are what we test
        sched = make(opt)
        for t in range(n):
            out[t] = [g["lr"] for g in opt.param_groups]
            opt.step()
            sched.step()
    return out


def step_timm(cls: Any, kwargs: dict[str, Any], n: int, lrs: Sequence[float] = LRS) -> np.ndarray:
    """LR of each group that timm sets for clock t: ``step(epoch=t)`` or ``step_update(num_updates=t)``."""
    opt = make_optimizer(lrs)
    sched = cls(opt, **kwargs)
    epochs = kwargs.get("t_in_epochs", True)
    out = np.empty((n, len(lrs)))
    for t in range(n):
        if epochs:
            sched.step(epoch=t)
        else:
            sched.step_update(num_updates=t)
        out[t] = [g["lr"] for g in opt.param_groups]
    return out


def eval_optax(schedule: Callable[[Any], Any], n: int) -> np.ndarray:
    values = jax.jit(jax.vmap(schedule))(jax.numpy.arange(n, dtype=jax.numpy.float64))
    out = np.asarray(values)
    assert out.dtype == np.float64, "enable jax_enable_x64: optax computes in float32 otherwise"
    return out


# ------------------------------------------------------------------------------------------------ torch

# (id, constructor name, kwargs, updates)
TORCH_CASES: list[tuple[str, str, dict[str, Any], int]] = [
    ("step-every-step", "StepLR", {"step_size": 1, "gamma": 0.5}, 60),
    ("step-7", "StepLR", {"step_size": 7, "gamma": 0.1}, 100),
    ("step-long", "StepLR", {"step_size": 30, "gamma": 0.9}, 1500),
    ("multistep", "MultiStepLR", {"milestones": [3, 10, 40], "gamma": 0.3}, 100),
    ("multistep-repeated-unsorted", "MultiStepLR", {"milestones": [40, 10, 3, 10], "gamma": 0.3}, 100),
    ("multistep-at-0", "MultiStepLR", {"milestones": [0, 5], "gamma": 0.5}, 20),
    ("multistep-none", "MultiStepLR", {"milestones": []}, 10),
    ("constant", "ConstantLR", {"factor": 0.3, "total_iters": 7}, 30),
    ("constant-total-1", "ConstantLR", {"factor": 0.5, "total_iters": 1}, 10),
    ("constant-factor-1", "ConstantLR", {"factor": 1.0, "total_iters": 5}, 10),
    ("linear-warmup", "LinearLR", {"start_factor": 0.01, "end_factor": 1.0, "total_iters": 10}, 30),
    ("linear-to-zero-past-end", "LinearLR", {"start_factor": 1.0, "end_factor": 0.0, "total_iters": 100}, 150),
    ("linear-total-1", "LinearLR", {"start_factor": 0.5, "end_factor": 0.25, "total_iters": 1}, 10),
    ("linear-long", "LinearLR", {"start_factor": 0.001, "end_factor": 1.0, "total_iters": 1000}, 1500),
    ("exponential", "ExponentialLR", {"gamma": 0.9}, 200),
    ("exponential-long", "ExponentialLR", {"gamma": 0.997}, 1500),
    ("exponential-1", "ExponentialLR", {"gamma": 1.0}, 10),
    ("polynomial-default", "PolynomialLR", {}, 10),
    ("polynomial-square", "PolynomialLR", {"total_iters": 100, "power": 2.0}, 150),
    ("polynomial-sqrt", "PolynomialLR", {"total_iters": 100, "power": 0.5}, 150),
    ("polynomial-total-1", "PolynomialLR", {"total_iters": 1, "power": 1.0}, 5),
    ("polynomial-power-0", "PolynomialLR", {"total_iters": 10, "power": 0.0}, 20),
    ("polynomial-long", "PolynomialLR", {"total_iters": 1000, "power": 2.0}, 1500),
    ("sgdr", "CosineAnnealingWarmRestarts", {"T_0": 10}, 100),
    ("sgdr-mult2", "CosineAnnealingWarmRestarts", {"T_0": 10, "T_mult": 2, "eta_min": 0.001}, 1500),
    ("sgdr-T0-1", "CosineAnnealingWarmRestarts", {"T_0": 1}, 10),
    ("sgdr-mult3", "CosineAnnealingWarmRestarts", {"T_0": 3, "T_mult": 3, "eta_min": 0.01}, 400),
    ("sgdr-7", "CosineAnnealingWarmRestarts", {"T_0": 7, "T_mult": 1, "eta_min": 0.002}, 100),
]


@pytest.mark.parametrize(("name", "kwargs", "n"), [c[1:] for c in TORCH_CASES], ids=[c[0] for c in TORCH_CASES])
def test_torch(name: str, kwargs: dict[str, Any], n: int) -> None:
    peer = step_torch(lambda opt: getattr(torch_peer, name)(opt, **kwargs), n)
    check(getattr(tc, name)(LRS, **kwargs), getattr(tc, name)(LRS[0], **kwargs), peer)


COSINE_CASES = [(1, 0.0), (7, 0.0), (100, 0.001), (333, 0.05), (1000, 0.0), (1000, 0.01)]


@pytest.mark.parametrize(("T_max", "eta_min"), COSINE_CASES, ids=[f"T{t}-eta{e}" for t, e in COSINE_CASES])
def test_torch_cosine_annealing_drift_is_bounded(T_max: int, eta_min: float) -> None:
    """torch's recursion agrees to 1e-12 over the first T_max updates; past T_max it drifts (documented bound)."""
    n = 3 * T_max + 2
    peer = step_torch(lambda opt: torch_peer.CosineAnnealingLR(opt, T_max, eta_min), n)
    ours = tc.CosineAnnealingLR(LRS, T_max=T_max, eta_min=eta_min)
    check(ours, tc.CosineAnnealingLR(LRS[0], T_max, eta_min), peer, rel=tc.COSINE_ANNEALING_BOUND)
    ts = np.arange(T_max + 1, dtype=np.float64)
    for g, s in enumerate(ours):
        assert_parity(s.values(ts), peer[: T_max + 1, g], REL, where=f"first period, group {g}")


CYCLIC_CASES = [
    ("triangular", {"step_size_up": 7, "step_size_down": 4, "mode": "triangular"}),
    ("triangular2", {"step_size_up": 5, "mode": "triangular2"}),
    ("exp-range", {"step_size_up": 6, "step_size_down": 9, "mode": "exp_range", "gamma": 0.99}),
    ("up-1", {"step_size_up": 1, "mode": "triangular"}),
]


@pytest.mark.parametrize("kwargs", [c[1] for c in CYCLIC_CASES], ids=[c[0] for c in CYCLIC_CASES])
def test_torch_cyclic(kwargs: dict[str, Any]) -> None:
    lows, highs = [0.01, 0.001, 0.1], [0.1, 0.05, 1.0]
    # CyclicLR overwrites the optimizer's LRs with base_lr: group 0's bounds are the float form's
    peer = step_torch(lambda opt: torch_peer.CyclicLR(opt, lows, highs, **kwargs), 200)
    check(tc.CyclicLR(lows, highs, **kwargs), tc.CyclicLR(lows[0], highs[0], **kwargs), peer)


ONECYCLE_CASES = [
    ("cos", {"total_steps": 100}),
    ("linear", {"total_steps": 97, "pct_start": 0.25, "anneal_strategy": "linear"}),
    ("three-phase-cos", {"total_steps": 100, "three_phase": True}),
    ("three-phase-linear", {"total_steps": 61, "pct_start": 0.4, "three_phase": True, "anneal_strategy": "linear"}),
    ("epochs", {"epochs": 10, "steps_per_epoch": 13, "div_factor": 10.0, "final_div_factor": 100.0}),
    ("short", {"total_steps": 5, "pct_start": 0.5}),
]


@pytest.mark.parametrize("kwargs", [c[1] for c in ONECYCLE_CASES], ids=[c[0] for c in ONECYCLE_CASES])
def test_torch_onecycle(kwargs: dict[str, Any]) -> None:
    peaks = [0.1, 0.05, 1.0]
    total = kwargs.get("total_steps") or kwargs["epochs"] * kwargs["steps_per_epoch"]
    peer = step_torch(lambda opt: torch_peer.OneCycleLR(opt, peaks, **kwargs), total)
    check(tc.OneCycleLR(peaks, **kwargs), tc.OneCycleLR(peaks[0], **kwargs), peer)


SEQUENTIAL_CASES: list[tuple[str, Callable[[Any, Any], list[Any]], list[int], int]] = [
    ("warmup-cosine", lambda p, lr: [p.LinearLR(lr, 0.01, 1.0, 10), p.CosineAnnealingLR(lr, 90)], [10], 120),
    ("three", lambda p, lr: [p.ConstantLR(lr, 0.1, 5), p.ExponentialLR(lr, 0.9), p.CosineAnnealingLR(lr, 30, 0.001)],
     [10, 25], 80),
    ("cut-short", lambda p, lr: [p.CosineAnnealingLR(lr, 100), p.StepLR(lr, 3)], [50], 80),
    ("run-past-end", lambda p, lr: [p.CosineAnnealingLR(lr, 10), p.StepLR(lr, 3)], [25], 60),
    ("milestone-0", lambda p, lr: [p.ExponentialLR(lr, 0.5), p.PolynomialLR(lr, 20, 2.0)], [0], 30),
    ("equal-milestones", lambda p, lr: [p.ExponentialLR(lr, 0.5), p.StepLR(lr, 2), p.LinearLR(lr, 0.5, 1.0, 4)],
     [6, 6], 30),
    ("restarts-then-multistep", lambda p, lr: [p.CosineAnnealingWarmRestarts(lr, 4, 2), p.MultiStepLR(lr, [5, 9])],
     [12], 40),
]


@pytest.mark.parametrize(("children", "milestones", "n"), [c[1:] for c in SEQUENTIAL_CASES],
                         ids=[c[0] for c in SEQUENTIAL_CASES])
def test_torch_sequential(children: Callable[[Any, Any], list[Any]], milestones: list[int], n: int) -> None:
    peer = step_torch(lambda opt: torch_peer.SequentialLR(opt, children(torch_peer, opt), milestones), n)
    check(tc.SequentialLR(children(tc, LRS), milestones), tc.SequentialLR(children(tc, LRS[0]), milestones), peer)


def test_torch_constant_total_iters_0_keeps_the_factor_as_step_does() -> None:
    """torch's recursion applies the factor at update 0 and never undoes it (its closed form would give lr):
    lrlab reproduces what step() does in training, and warns."""
    opt = make_optimizer([0.1])
    closed = torch_peer.ConstantLR(opt, factor=0.5, total_iters=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the epoch argument is deprecated; it is how torch reaches its closed form
        closed.step(3)
    assert opt.param_groups[0]["lr"] == 0.1  # the closed form, which training never sees


def test_torch_constant_factor_0_does_not_divide_by_zero() -> None:
    with pytest.raises(ZeroDivisionError):
        step_torch(lambda opt: torch_peer.ConstantLR(opt, factor=0.0, total_iters=3), 6, lrs=[0.1])
    assert tc.ConstantLR(0.1, factor=0.0, total_iters=3).values(np.arange(6)).tolist() == [0.0] * 3 + [0.1] * 3


def test_torch_onecycle_holds_after_the_last_update() -> None:
    """torch overshoots at t = total_steps (no update uses it) and raises after; lrlab holds update T-1."""
    opt = make_optimizer([0.1])
    sched = torch_peer.OneCycleLR(opt, 0.1, total_steps=10)
    for _ in range(10):
        opt.step()
        sched.step()
    overshoot = opt.param_groups[0]["lr"]
    opt.step()
    with pytest.raises(ValueError, match="Tried to step"):
        sched.step()
    s = tc.OneCycleLR(0.1, total_steps=10)
    last = s(9)
    assert last == pytest.approx(0.1 / 25 / 1e4, rel=REL)
    assert overshoot != last and s(10) == last and s(1000) == last


# ------------------------------------------------------------------------------------------------ Hugging Face

HF_STEPS = [(0, 1), (0, 50), (1, 2), (10, 100), (7, 93)]


def _hf_cases() -> list[tuple[str, str, dict[str, Any], int]]:
    cases: list[tuple[str, str, dict[str, Any], int]] = [("constant", "get_constant_schedule", {}, 10)]
    for w, T in HF_STEPS:
        tag = f"w{w}-T{T}"
        both = {"num_warmup_steps": w, "num_training_steps": T}
        cases += [
            (f"constant-warmup-{tag}", "get_constant_schedule_with_warmup", {"num_warmup_steps": w}, T + 10),
            (f"linear-{tag}", "get_linear_schedule_with_warmup", both, T + 10),
            (f"cosine-{tag}", "get_cosine_schedule_with_warmup", both, 2 * T + 10),
            (f"cosine-1.3-{tag}", "get_cosine_schedule_with_warmup", {**both, "num_cycles": 1.3}, 2 * T + 10),
            (f"restarts-{tag}", "get_cosine_with_hard_restarts_schedule_with_warmup", both, T + 10),
            (f"polynomial-{tag}", "get_polynomial_decay_schedule_with_warmup", {**both, "lr_end": 1e-4, "power": 2.0},
             T + 10),
            (f"inverse-sqrt-{tag}", "get_inverse_sqrt_schedule", {"num_warmup_steps": w}, T + 10),
            (f"min-lr-rate-{tag}", "get_cosine_with_min_lr_schedule_with_warmup", {**both, "min_lr_rate": 0.1},
             2 * T + 10),
            (f"lr-rate-{tag}", "get_cosine_with_min_lr_schedule_with_warmup_lr_rate", {**both, "min_lr_rate": 0.1},
             2 * T + 10),
            (f"lr-rate-warmup-rate-{tag}", "get_cosine_with_min_lr_schedule_with_warmup_lr_rate",
             {**both, "min_lr_rate": 0.05, "warmup_lr_rate": 0.2}, 2 * T + 10),
        ]
        if T - w >= 3:
            cases.append((f"restarts-3-{tag}", "get_cosine_with_hard_restarts_schedule_with_warmup",
                          {**both, "num_cycles": 3}, T + 10))
        for wt in ("linear", "cosine", "1-sqrt"):
            for dt in ("linear", "cosine", "1-sqrt"):
                cases.append((f"wsd-{wt}-{dt}-{tag}", "get_wsd_schedule",
                              {**both, "num_decay_steps": (T - w) // 2, "warmup_type": wt, "decay_type": dt,
                               "min_lr_ratio": 0.1}, T + 10))
    cases += [
        ("polynomial-power-0.5", "get_polynomial_decay_schedule_with_warmup",
         {"num_warmup_steps": 5, "num_training_steps": 40, "lr_end": 0.0, "power": 0.5}, 50),
        ("inverse-sqrt-timescale", "get_inverse_sqrt_schedule", {"num_warmup_steps": 10, "timescale": 3}, 60),
        ("restarts-not-dividing", "get_cosine_with_hard_restarts_schedule_with_warmup",
         {"num_warmup_steps": 3, "num_training_steps": 103, "num_cycles": 7}, 110),
        ("wsd-stable-steps", "get_wsd_schedule",
         {"num_warmup_steps": 5, "num_decay_steps": 20, "num_stable_steps": 30, "decay_type": "cosine",
          "num_cycles": 0.7}, 70),
        ("wsd-no-decay", "get_wsd_schedule", {"num_warmup_steps": 5, "num_decay_steps": 0, "num_training_steps": 20,
                                              "min_lr_ratio": 0.2}, 30),
        ("wsd-both-lengths", "get_wsd_schedule", {"num_warmup_steps": 0, "num_decay_steps": 10,
                                                  "num_training_steps": 100, "num_stable_steps": 5}, 30),
    ]
    return cases


HF_CASES = _hf_cases()


@pytest.mark.parametrize(("name", "kwargs", "n"), [c[1:] for c in HF_CASES], ids=[c[0] for c in HF_CASES])
def test_hf(name: str, kwargs: dict[str, Any], n: int) -> None:
    peer = step_torch(lambda opt: getattr(hf_peer, name)(opt, **kwargs), n)
    check(getattr(hf, name)(LRS, **kwargs), getattr(hf, name)(LRS[0], **kwargs), peer)


def test_hf_reads_min_lr_and_lr_end_relative_to_the_optimizer_default() -> None:
    """HF divides min_lr and lr_end by optimizer.defaults['lr'], not by each group's LR."""
    kw = {"num_warmup_steps": 3, "num_training_steps": 30}
    peer = step_torch(lambda opt: hf_peer.get_cosine_with_min_lr_schedule_with_warmup(opt, **kw, min_lr=0.01),
                      40, default_lr=0.5)
    check(hf.get_cosine_with_min_lr_schedule_with_warmup(LRS, **kw, min_lr=0.01, default_lr=0.5),
          hf.get_cosine_with_min_lr_schedule_with_warmup(LRS[0], **kw, min_lr=0.01, default_lr=0.5), peer)
    peer = step_torch(lambda opt: hf_peer.get_polynomial_decay_schedule_with_warmup(opt, **kw, lr_end=0.02), 40,
                      default_lr=0.5)
    check(hf.get_polynomial_decay_schedule_with_warmup(LRS, **kw, lr_end=0.02, default_lr=0.5),
          hf.get_polynomial_decay_schedule_with_warmup(LRS[0], **kw, lr_end=0.02, default_lr=0.5), peer)


SCHEDULER_NAMES = [("linear", {}), ("cosine", {"num_cycles": 0.5}), ("cosine_with_restarts", {"num_cycles": 2}),
                   ("polynomial", {"power": 2.0}), ("constant", {}), ("constant_with_warmup", {}),
                   ("inverse_sqrt", {"timescale": 20}), ("cosine_with_min_lr", {"min_lr_rate": 0.1}),
                   ("cosine_warmup_with_min_lr", {"min_lr_rate": 0.1}),
                   ("warmup_stable_decay", {"num_decay_steps": 20})]


@pytest.mark.parametrize(("name", "extra"), SCHEDULER_NAMES, ids=[n for n, _ in SCHEDULER_NAMES])
def test_hf_get_scheduler(name: str, extra: dict[str, Any]) -> None:
    kw = {"num_warmup_steps": 10, "num_training_steps": 60, "scheduler_specific_kwargs": extra}
    peer = step_torch(lambda opt: hf_peer.get_scheduler(name, opt, **kw), 70)
    check(hf.get_scheduler(name, LRS, **kw), hf.get_scheduler(name, LRS[0], **kw), peer)


def test_hf_hard_restarts_restart_where_hf_rounds_below() -> None:
    """44 decay steps in 22 cycles: a restart every 2 steps. HF's (22 * (30 / 44)) % 1.0 is 0.9999999999999982,
    so at step 30 HF gives ~0 (the end of a cycle); lrlab restarts at 1."""
    kw = {"num_warmup_steps": 0, "num_training_steps": 44, "num_cycles": 22}
    peer = step_torch(lambda opt: hf_peer.get_cosine_with_hard_restarts_schedule_with_warmup(opt, **kw), 44,
                      lrs=[0.1])[:, 0]
    ours = hf.get_cosine_with_hard_restarts_schedule_with_warmup(0.1, **kw).values(np.arange(44))
    assert peer[30] < 1e-20 and ours[30] == 0.1
    others = np.arange(44) != 30
    assert_parity(ours[others], peer[others], where="restarts away from step 30")


# ------------------------------------------------------------------------------------------------ timm

# (id, module, class, kwargs, clocks)
TIMM_CASES: list[tuple[str, str, str, dict[str, Any], int]] = []
for _w, _pre in [(0, False), (5, False), (5, True)]:
    _tag = f"w{_w}-{'prefix' if _pre else 'overlay'}"
    _warm = {"warmup_t": _w, "warmup_lr_init": 1e-4, "warmup_prefix": _pre}
    for _mul, _dec, _lim in [(1, 1, 1), (1, 0.5, 3), (2, 0.7, 4), (1.5, 1, 3), (1, 1, 0)]:
        _cyc = {"t_initial": 20, "lr_min": 1e-3, "cycle_mul": _mul, "cycle_decay": _dec, "cycle_limit": _lim, **_warm}
        _c = f"mul{_mul}-decay{_dec}-limit{_lim}-{_tag}"
        TIMM_CASES += [
            (f"cosine-{_c}", "cosine_lr", "CosineLRScheduler", _cyc, 250),
            (f"tanh-{_c}", "tanh_lr", "TanhLRScheduler", _cyc, 250),
            (f"poly-{_c}", "poly_lr", "PolyLRScheduler", {**_cyc, "power": 2.0}, 250),
        ]
    TIMM_CASES += [
        (f"cosine-k-decay-{_tag}", "cosine_lr", "CosineLRScheduler", {"t_initial": 30, "k_decay": 2.0, **_warm}, 80),
        *((f"poly-k-decay{_k}-mul{_mul}-decay{_dec}-limit{_lim}-{_tag}", "poly_lr", "PolyLRScheduler",
           {"t_initial": 20, "lr_min": 1e-3, "power": 1.5, "k_decay": _k, "cycle_mul": _mul, "cycle_decay": _dec,
            "cycle_limit": _lim, **_warm}, 120)
          for _k in (2.0, 0.5) for _mul, _dec, _lim in [(1, 1, 1), (1, 1, 3), (2, 0.7, 3)]),
        (f"step-{_tag}", "step_lr", "StepLRScheduler", {"decay_t": 7, "decay_rate": 0.5, **_warm}, 60),
        (f"multistep-{_tag}", "multistep_lr", "MultiStepLRScheduler",
         {"decay_t": [10, 30], "decay_rate": 0.5, **_warm}, 60),
        (f"multistep-repeated-{_tag}", "multistep_lr", "MultiStepLRScheduler",
         {"decay_t": [0, 1, 10, 10, 30], "decay_rate": 0.5, **_warm}, 60),
    ]
for _w in (0, 5):
    for _sf in ("constant", "rsqrt", "power"):
        for _df in ("linear", "1-sqrt", "cosine", "power", "exp"):
            for _lm in (0.0, 1e-3):
                TIMM_CASES.append((f"wsd-{_sf}-{_df}-lrmin{_lm}-w{_w}", "wsd_lr", "WSDLRScheduler",
                                   {"t_initial": 100, "decay_t": 30, "lr_min": _lm, "stable_fn": _sf,
                                    "stable_timescale": None if _w else 10, "stable_power": 0.3, "decay_fn": _df,
                                    "decay_power": 2.0, "warmup_t": _w, "warmup_lr_init": 1e-5}, 130))
TIMM_CASES += [
    ("cosine-total-1", "cosine_lr", "CosineLRScheduler", {"t_initial": 1, "cycle_limit": 3}, 6),
    ("cosine-long", "cosine_lr", "CosineLRScheduler", {"t_initial": 1000, "lr_min": 1e-5, "warmup_t": 50}, 1100),
    ("tanh-bounds", "tanh_lr", "TanhLRScheduler", {"t_initial": 50, "lb": -4.0, "ub": 4.0, "warmup_t": 7}, 80),
    ("step-fractional", "step_lr", "StepLRScheduler", {"decay_t": 2.5, "decay_rate": 0.8}, 30),
    ("wsd-decay-all", "wsd_lr", "WSDLRScheduler", {"t_initial": 20, "decay_t": 20, "decay_fn": "linear"}, 30),
]


@pytest.mark.parametrize("epochs", [True, False], ids=["t_in_epochs", "updates"])
@pytest.mark.parametrize(("module", "cls", "kwargs", "n"), [c[1:] for c in TIMM_CASES], ids=[c[0] for c in TIMM_CASES])
def test_timm(timm_scheduler: Any, module: str, cls: str, kwargs: dict[str, Any], n: int, epochs: bool) -> None:
    kwargs = {**kwargs, "t_in_epochs": epochs}
    peer = step_timm(timm_scheduler(module, cls), kwargs, n)
    check(getattr(timm, cls)(LRS, **kwargs), getattr(timm, cls)(LRS[0], **kwargs), peer)


def test_timm_restarts_exactly_where_its_log_lands_a_cycle_early(timm_scheduler: Any) -> None:
    """t_initial=1, cycle_mul=10: cycle 3 starts at 1 + 10 + 100 = 111, but timm's floor(log(1 + 111 * 9, 10))
    is 2, so timm gives the end of cycle 2 (lr_min) there; lrlab starts cycle 3 at the peak."""
    kw = {"t_initial": 1, "cycle_mul": 10, "cycle_limit": 5, "lr_min": 0.001, "t_in_epochs": False}
    peer = step_timm(timm_scheduler("cosine_lr", "CosineLRScheduler"), kw, 200, lrs=[0.1])[:, 0]
    ours = timm.CosineLRScheduler(0.1, **kw).values(np.arange(200))
    assert peer[111] == 0.001 and ours[111] == 0.1
    others = np.arange(200) != 111
    assert_parity(ours[others], peer[others], where="away from t=111")


def test_timm_loader_leaves_no_stand_in_packages(timm_scheduler: Any) -> None:
    import sys

    timm_scheduler("cosine_lr", "CosineLRScheduler")
    assert not any(name == "timm" or name.startswith("timm.") for name in sys.modules)


# ------------------------------------------------------------------------------------------------ optax

OPTAX_CASES: list[tuple[str, str, dict[str, Any], int]] = [
    ("constant", "constant_schedule", {"value": 0.3}, 5),
    ("polynomial", "polynomial_schedule",
     {"init_value": 1.0, "end_value": 0.01, "power": 2, "transition_steps": 100, "transition_begin": 10}, 130),
    ("polynomial-cubic", "polynomial_schedule", {"init_value": 1.0, "end_value": 0.0, "power": 3,
                                                 "transition_steps": 50}, 60),
    ("polynomial-0.7", "polynomial_schedule", {"init_value": 1.0, "end_value": 0.01, "power": 0.7,
                                               "transition_steps": 1}, 5),
    ("linear", "linear_schedule", {"init_value": 0.0, "end_value": 0.1, "transition_steps": 100,
                                   "transition_begin": 5}, 130),
    ("piecewise-constant", "piecewise_constant_schedule",
     {"init_value": 0.1, "boundaries_and_scales": {0: 0.5, 10: 0.1, 50: 3.0, 70: 0.0}}, 100),
    ("piecewise-constant-none", "piecewise_constant_schedule", {"init_value": 0.1}, 5),
    ("piecewise-linear", "piecewise_interpolate_schedule",
     {"interpolate_type": "linear", "init_value": 0.1, "boundaries_and_scales": {0: 0.5, 10: 0.1, 50: 3.0, 70: 0.0}},
     100),
    ("piecewise-cosine", "piecewise_interpolate_schedule",
     {"interpolate_type": "cosine", "init_value": 0.1, "boundaries_and_scales": {10: 0.1, 50: 3.0}}, 100),
    ("piecewise-interpolate-none", "piecewise_interpolate_schedule", {"interpolate_type": "linear",
                                                                     "init_value": 0.2}, 5),
    ("exponential", "exponential_decay", {"init_value": 0.1, "transition_steps": 7, "decay_rate": 0.5,
                                          "transition_begin": 10, "end_value": 1e-4}, 300),
    ("exponential-staircase", "exponential_decay", {"init_value": 0.1, "transition_steps": 7, "decay_rate": 0.5,
                                                    "staircase": True}, 100),
    ("exponential-growing", "exponential_decay", {"init_value": 0.1, "transition_steps": 3, "decay_rate": 1.05,
                                                  "end_value": 0.3}, 100),
    ("cosine", "cosine_decay_schedule", {"init_value": 0.1, "decay_steps": 100}, 130),
    ("cosine-alpha", "cosine_decay_schedule", {"init_value": 0.1, "decay_steps": 1000, "alpha": 0.1}, 1100),
    ("cosine-exponent", "cosine_decay_schedule", {"init_value": 0.1, "decay_steps": 100, "exponent": 2.0}, 130),
    ("cosine-1", "cosine_decay_schedule", {"init_value": 0.1, "decay_steps": 1}, 5),
    ("cosine-long", "cosine_decay_schedule", {"init_value": 0.1, "decay_steps": 5000}, 5010),
    ("linear-onecycle", "linear_onecycle_schedule", {"transition_steps": 100, "peak_value": 0.1}, 130),
    ("linear-onecycle-1", "linear_onecycle_schedule", {"transition_steps": 1, "peak_value": 0.1}, 5),
    ("cosine-onecycle", "cosine_onecycle_schedule", {"transition_steps": 100, "peak_value": 0.1}, 130),
    ("cosine-onecycle-3", "cosine_onecycle_schedule", {"transition_steps": 3, "peak_value": 0.1}, 8),
    ("warmup-constant", "warmup_constant_schedule", {"init_value": 0.0, "peak_value": 0.1, "warmup_steps": 10}, 30),
    ("sgdr", "sgdr_schedule", {"cosine_kwargs": [
        {"init_value": 0.0, "peak_value": 0.1, "warmup_steps": 10, "decay_steps": 50},
        {"init_value": 0.01, "peak_value": 0.05, "warmup_steps": 0, "decay_steps": 70, "end_value": 1e-3},
        {"init_value": 0.0, "peak_value": 0.02, "warmup_steps": 5, "decay_steps": 33, "exponent": 2.0}]}, 200),
]
for _w in (0, 1, 10):
    OPTAX_CASES += [
        (f"warmup-cosine-w{_w}", "warmup_cosine_decay_schedule",
         {"init_value": 0.0, "peak_value": 0.1, "warmup_steps": _w, "decay_steps": 100, "end_value": 1e-4}, 130),
        (f"warmup-exponential-w{_w}", "warmup_exponential_decay_schedule",
         {"init_value": 0.0, "peak_value": 0.1, "warmup_steps": _w, "transition_steps": 10, "decay_rate": 0.5,
          "transition_begin": 5, "end_value": 1e-3}, 130),
    ]


@pytest.mark.parametrize(("name", "kwargs", "n"), [c[1:] for c in OPTAX_CASES], ids=[c[0] for c in OPTAX_CASES])
def test_optax(name: str, kwargs: dict[str, Any], n: int) -> None:
    peer = eval_optax(getattr(optax_peer, name)(**kwargs), n)
    ours = getattr(optax, name)(**kwargs)
    assert_parity(ours.values(np.arange(n)), peer, where=str(ours))
    assert_scalar_path(ours, n)


JOIN_CASES: list[tuple[str, Callable[[Any], list[Any]], list[int]]] = [
    ("natural-lengths", lambda o: [o.linear_schedule(0.0, 0.1, 10), o.cosine_decay_schedule(0.1, 90)], [10]),
    ("cut-and-extend", lambda o: [o.linear_schedule(0.0, 0.1, 10), o.cosine_decay_schedule(0.1, 100),
                                  o.exponential_decay(0.05, 10, 0.9)], [5, 60]),
    ("open-ended-first", lambda o: [o.exponential_decay(0.1, 5, 0.5), o.constant_schedule(0.2)], [12]),
    ("boundary-0-and-equal", lambda o: [o.constant_schedule(1.0), o.linear_schedule(0.1, 0.2, 5),
                                        o.constant_schedule(3.0), o.cosine_decay_schedule(0.2, 20)], [0, 8, 8]),
]


@pytest.mark.parametrize(("pieces", "boundaries"), [c[1:] for c in JOIN_CASES], ids=[c[0] for c in JOIN_CASES])
def test_optax_join_schedules(pieces: Callable[[Any], list[Any]], boundaries: list[int]) -> None:
    peer = eval_optax(optax_peer.join_schedules(pieces(optax_peer), boundaries), 120)
    ours = optax.join_schedules(pieces(optax), boundaries)
    assert_parity(ours.values(np.arange(120)), peer, where=str(ours))
    assert_scalar_path(ours, 120)


# ------------------------------------------------------------------------------------------------ peer quirks

# Inputs where a peer does something surprising, which lrlab reproduces: (id, module, constructor, kwargs, clocks,
# warns). Each runs the real peer; the values may be negative (optax accepts negative LRs).
QUIRKS: list[tuple[str, Any, str, dict[str, Any], int, bool]] = [
    ("torch-constant-total-iters-0", tc, "ConstantLR", {"factor": 0.5, "total_iters": 0}, 10, True),
    ("torch-constant-total-iters-0-factor-0", tc, "ConstantLR", {"factor": 0.0, "total_iters": 0}, 10, True),
    ("torch-constant-total-iters-0-factor-1", tc, "ConstantLR", {"factor": 1.0, "total_iters": 0}, 10, False),
    ("hf-linear-warmup-equals-total", hf, "get_linear_schedule_with_warmup",
     {"num_warmup_steps": 10, "num_training_steps": 10}, 20, False),
    ("hf-linear-warmup-above-total", hf, "get_linear_schedule_with_warmup",
     {"num_warmup_steps": 12, "num_training_steps": 7}, 20, False),
    ("hf-linear-warmup-1-total-1", hf, "get_linear_schedule_with_warmup",
     {"num_warmup_steps": 1, "num_training_steps": 1}, 5, False),
    ("optax-linear-steps-0", optax, "linear_schedule", {"init_value": 0.1, "end_value": 0.0, "transition_steps": 0},
     10, True),
    ("optax-linear-steps-negative-delayed", optax, "linear_schedule",
     {"init_value": 0.1, "end_value": 0.5, "transition_steps": -5, "transition_begin": 3}, 10, True),
    ("optax-polynomial-steps-0", optax, "polynomial_schedule",
     {"init_value": 1.0, "end_value": 0.0, "power": 2, "transition_steps": 0}, 10, True),
    ("optax-polynomial-begin-negative", optax, "polynomial_schedule",
     {"init_value": 1.0, "end_value": 0.01, "power": 2, "transition_steps": 20, "transition_begin": -4}, 30, True),
    ("optax-exponential-steps-0", optax, "exponential_decay",
     {"init_value": 0.1, "transition_steps": 0, "decay_rate": 0.5}, 10, True),
    ("optax-exponential-rate-0", optax, "exponential_decay",
     {"init_value": 0.1, "transition_steps": 10, "decay_rate": 0.0}, 10, True),
    ("optax-warmup-constant-no-warmup", optax, "warmup_constant_schedule",
     {"init_value": 0.0, "peak_value": 0.1, "warmup_steps": 0}, 10, True),
    ("optax-warmup-cosine-end-negative", optax, "warmup_cosine_decay_schedule",
     {"init_value": 0.0, "peak_value": 1e-3, "warmup_steps": 10, "decay_steps": 100, "end_value": -3.0}, 120, True),
    ("optax-warmup-cosine-end-negative-long", optax, "warmup_cosine_decay_schedule",
     {"init_value": 1e-4, "peak_value": 0.1, "warmup_steps": 20, "decay_steps": 1000, "end_value": -0.05}, 1010,
     True),
    ("optax-warmup-cosine-end-negative-no-warmup", optax, "warmup_cosine_decay_schedule",
     {"init_value": 0.0, "peak_value": 0.1, "warmup_steps": 0, "decay_steps": 100, "end_value": -3.0}, 110, True),
    ("optax-cosine-alpha-negative", optax, "cosine_decay_schedule",
     {"init_value": 0.1, "decay_steps": 100, "alpha": -0.5, "exponent": 2.0}, 110, True),
    ("optax-exponential-end-negative", optax, "exponential_decay",
     {"init_value": 0.1, "transition_steps": 10, "decay_rate": 0.5, "end_value": -1.0}, 60, True),
    ("optax-linear-negative-init", optax, "linear_schedule",
     {"init_value": -0.1, "end_value": 0.2, "transition_steps": 10}, 20, True),
    ("optax-onecycle-negative-peak", optax, "cosine_onecycle_schedule",
     {"transition_steps": 100, "peak_value": -0.1}, 110, True),
    ("optax-piecewise-negative-init", optax, "piecewise_constant_schedule",
     {"init_value": -0.1, "boundaries_and_scales": {10: 0.5}}, 20, True),
]


def _peer_values(module: Any, name: str, kwargs: dict[str, Any], n: int) -> np.ndarray:
    if module is tc:
        return step_torch(lambda opt: getattr(torch_peer, name)(opt, **kwargs), n, lrs=[0.1])[:, 0]
    if module is hf:
        return step_torch(lambda opt: getattr(hf_peer, name)(opt, **kwargs), n, lrs=[0.1])[:, 0]
    return eval_optax(getattr(optax_peer, name)(**kwargs), n)


@pytest.mark.parametrize(("module", "name", "kwargs", "n", "warns"), [q[1:] for q in QUIRKS],
                         ids=[q[0] for q in QUIRKS])
def test_peer_quirks_are_reproduced(module: Any, name: str, kwargs: dict[str, Any], n: int, warns: bool) -> None:
    args = {} if module is optax else {"lr": 0.1}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ours = getattr(module, name)(**args, **kwargs)
    quirks = [w for w in caught if issubclass(w.category, PeerWarning)]
    assert len(quirks) == (1 if warns else 0), [str(w.message) for w in caught]
    if warns:
        assert quirks[0].filename == __file__  # it points at the caller's line, not into lrlab
    peer = _peer_values(module, name, kwargs, n)
    ts = np.arange(n, dtype=np.float64)
    if (peer < 0).any():
        # the values cross 0, where a relative comparison is meaningless: within 1e-12 of the largest LR
        np.testing.assert_allclose(ours.values(ts), peer, rtol=REL, atol=REL * float(np.abs(peer).max()))
    else:
        assert_parity(ours.values(ts), peer, where=str(ours))
    assert_scalar_path(ours, n)
    assert lrlab.parse(str(ours)) == ours


def test_negative_values_are_reproduced_but_not_bound_to_a_run() -> None:
    """lrlab's own rule refuses a schedule whose values go negative over a run; the compat value is used as is."""
    with pytest.warns(PeerWarning, match="end_value: -3 < 0 gives negative learning rates"):
        s = optax.warmup_cosine_decay_schedule(0.0, 1e-3, 10, 100, end_value=-3.0)
    assert s(99) < 0
    with pytest.raises(ScheduleError, match="must be finite numbers >= 0 over the run"):
        s.bind(100)


# ------------------------------------------------------------------------------------------------ text form


def _all_results() -> list[tuple[str, lrlab.Schedule, int]]:
    """Every compat case above as (id, schedule built with a float lr, clocks the case runs)."""
    out: list[tuple[str, lrlab.Schedule, int]] = []
    out += [(f"torch-{i}", getattr(tc, name)(LRS[0], **kw), n) for i, name, kw, n in TORCH_CASES]
    out += [(f"torch-cosine-T{T}-eta{e}", tc.CosineAnnealingLR(LRS[0], T, e), 3 * T + 2) for T, e in COSINE_CASES]
    out += [(f"torch-cyclic-{i}", tc.CyclicLR(0.01, 0.1, **kw), 200) for i, kw in CYCLIC_CASES]
    out += [(f"torch-onecycle-{i}", tc.OneCycleLR(0.1, **kw), kw.get("total_steps") or kw["epochs"]
             * kw["steps_per_epoch"]) for i, kw in ONECYCLE_CASES]
    out += [(f"torch-sequential-{i}", tc.SequentialLR(children(tc, LRS[0]), ms), n)
            for i, children, ms, n in SEQUENTIAL_CASES]
    out += [(f"hf-{i}", getattr(hf, name)(LRS[0], **kw), n) for i, name, kw, n in HF_CASES]
    out += [(f"hf-get-scheduler-{name}", hf.get_scheduler(name, LRS[0], num_warmup_steps=10, num_training_steps=60,
                                                          scheduler_specific_kwargs=extra), 70)
            for name, extra in SCHEDULER_NAMES]
    out += [(f"timm-{i}", getattr(timm, cls)(LRS[0], **kw), n) for i, _, cls, kw, n in TIMM_CASES]
    out += [(f"optax-{i}", getattr(optax, name)(**kw), n) for i, name, kw, n in OPTAX_CASES]
    out += [(f"optax-join-{i}", optax.join_schedules(pieces(optax), b), 120) for i, pieces, b in JOIN_CASES]
    return out


RESULTS = _all_results()


def test_round_trip_covers_every_case_list() -> None:
    """A guard: the composites that need the spec registry (sum, shift) and the cut/extended joins are in."""
    texts = [str(s) for _, s, _ in RESULTS]
    assert any(t.startswith("sum(") for t in texts) and any("shift(" in t for t in texts)
    assert any(i.startswith("torch-sequential-") for i, _, _ in RESULTS)
    assert any(i.startswith("optax-join-") for i, _, _ in RESULTS)


@pytest.mark.parametrize(("schedule", "n"), [(s, n) for _, s, n in RESULTS], ids=[i for i, _, _ in RESULTS])
def test_results_round_trip_through_spec_text_and_dict(schedule: lrlab.Schedule, n: int) -> None:
    text = str(schedule)
    assert repr(schedule) == text
    assert lrlab.parse(text) == schedule
    assert from_dict(json.loads(json.dumps(to_dict(schedule)))) == schedule
    # every length is fixed: binding the run's total (as a training loop does) keeps every value
    ts = np.arange(n + 10, dtype=np.float64)
    expected = schedule.values(ts)
    assert lrlab.parse(text, total=n).values(ts).tolist() == expected.tolist()
    assert schedule.bind(n).values(ts).tolist() == expected.tolist()


# ------------------------------------------------------------------------------------------------ validation

INVALID: list[tuple[str, Callable[[], Any], str]] = [
    ("torch-step-size-0", lambda: tc.StepLR(0.1, step_size=0), "StepLR.step_size"),
    ("torch-gamma-0", lambda: tc.ExponentialLR(0.1, gamma=0.0), "ExponentialLR.gamma"),
    ("torch-constant-factor", lambda: tc.ConstantLR(0.1, factor=1.5), "ConstantLR.factor"),
    ("torch-linear-start-0", lambda: tc.LinearLR(0.1, start_factor=0.0), "LinearLR.start_factor"),
    ("torch-linear-total-0", lambda: tc.LinearLR(0.1, total_iters=0), "LinearLR.total_iters"),
    ("torch-poly-negative-power", lambda: tc.PolynomialLR(0.1, power=-1.0), "PolynomialLR.power"),
    ("torch-cosine-T-0", lambda: tc.CosineAnnealingLR(0.1, T_max=0), "CosineAnnealingLR.T_max"),
    ("torch-sgdr-float-mult", lambda: tc.CosineAnnealingWarmRestarts(0.1, 10, T_mult=1.5), "T_mult"),
    ("torch-multistep-negative", lambda: tc.MultiStepLR(0.1, [-1]), "MultiStepLR.milestones[0]"),
    ("torch-cyclic-scale-fn", lambda: tc.CyclicLR(0.01, 0.1, scale_fn=abs), "scale_fn"),
    ("torch-cyclic-mode", lambda: tc.CyclicLR(0.01, 0.1, mode="sine"), "CyclicLR.mode"),
    ("torch-onecycle-no-total", lambda: tc.OneCycleLR(0.1), "total_steps"),
    ("torch-onecycle-too-short", lambda: tc.OneCycleLR(0.1, total_steps=3), "pct_start * total_steps"),
    ("torch-onecycle-strategy", lambda: tc.OneCycleLR(0.1, total_steps=30, anneal_strategy="cosine"),
     "anneal_strategy"),
    ("torch-last-epoch", lambda: tc.StepLR(0.1, 5, last_epoch=3), "last_epoch"),
    ("torch-sequential-milestones", lambda: tc.SequentialLR([tc.StepLR(0.1, 5), tc.StepLR(0.1, 2)], []),
     "milestone"),
    ("torch-sequential-order", lambda: tc.SequentialLR([tc.StepLR(0.1, 5)] * 3, [5, 2]), "non-decreasing"),
    ("torch-empty-lr-list", lambda: tc.StepLR([], 5), "non-empty"),
    ("torch-nan-lr", lambda: tc.StepLR(float("nan"), 5), "StepLR.lr"),
    ("torch-negative-lr", lambda: tc.StepLR(-0.1, 5), "StepLR.lr must be >= 0, got -0.1"),
    ("torch-negative-group-lr", lambda: tc.ExponentialLR([0.1, -0.2], 0.9),
     "ExponentialLR.lr[1] must be >= 0, got -0.2"),
    ("torch-inf-lr", lambda: tc.LinearLR(float("inf")), "LinearLR.lr must be a finite number, got inf"),
    ("torch-eta-min", lambda: tc.CosineAnnealingLR(0.1, 10, eta_min=-1e-3), "CosineAnnealingLR.eta_min must be"),
    ("torch-sgdr-eta-min", lambda: tc.CosineAnnealingWarmRestarts(0.1, 10, eta_min=float("nan")),
     "CosineAnnealingWarmRestarts.eta_min must be a finite number, got nan"),
    ("torch-cyclic-base-lr", lambda: tc.CyclicLR(-0.01, 0.1), "CyclicLR.base_lr must be >= 0"),
    ("torch-cyclic-max-lr", lambda: tc.CyclicLR(0.01, [0.1, -1.0]), "CyclicLR.max_lr[1] must be >= 0"),
    ("torch-onecycle-max-lr", lambda: tc.OneCycleLR(-0.1, total_steps=100), "OneCycleLR.max_lr must be >= 0"),
    ("torch-sequential-child-lr", lambda: tc.SequentialLR([tc.StepLR(-0.1, 5), tc.StepLR(0.1, 2)], [5]),
     "StepLR.lr must be"),
    ("hf-warmup-not-shorter", lambda: hf.get_cosine_schedule_with_warmup(0.1, 10, 10), "num_training_steps (10)"),
    ("hf-lr-end", lambda: hf.get_polynomial_decay_schedule_with_warmup(0.1, 0, 10, lr_end=0.2), "lr_end"),
    ("hf-negative-lr", lambda: hf.get_cosine_schedule_with_warmup(-3e-4, 10, 100),
     "get_cosine_schedule_with_warmup.lr must be >= 0, got -0.0003"),
    ("hf-negative-lr-end", lambda: hf.get_polynomial_decay_schedule_with_warmup(0.1, 0, 10, lr_end=-1e-7),
     "get_polynomial_decay_schedule_with_warmup.lr_end must be >= 0"),
    ("hf-negative-min-lr", lambda: hf.get_cosine_with_min_lr_schedule_with_warmup(0.1, 0, 10, min_lr=-0.01),
     "get_cosine_with_min_lr_schedule_with_warmup.min_lr must be >= 0"),
    ("hf-nan-warmup-lr-rate", lambda: hf.get_cosine_with_min_lr_schedule_with_warmup_lr_rate(
        0.1, 3, 10, min_lr_rate=0.1, warmup_lr_rate=float("nan")), "warmup_lr_rate must be a finite number, got nan"),
    ("hf-negative-min-lr-ratio", lambda: hf.get_wsd_schedule(0.1, 1, 1, 10, min_lr_ratio=-0.1),
     "get_wsd_schedule.min_lr_ratio must be"),
    ("hf-scheduler-negative-lr", lambda: hf.get_scheduler("linear", -1.0, 0, 10), "lr must be >= 0, got -1.0"),
    ("hf-min-lr-missing", lambda: hf.get_cosine_with_min_lr_schedule_with_warmup(0.1, 0, 10), "min_lr"),
    ("hf-min-lr-both", lambda: hf.get_cosine_with_min_lr_schedule_with_warmup(0.1, 0, 10, min_lr=0.0,
                                                                              min_lr_rate=0.1), "only one"),
    ("hf-wsd-lengths", lambda: hf.get_wsd_schedule(0.1, 1, 1), "num_stable_steps"),
    ("hf-wsd-type", lambda: hf.get_wsd_schedule(0.1, 1, 1, 10, decay_type="exp"), "decay_type"),
    ("hf-restarts-too-many", lambda: hf.get_cosine_with_hard_restarts_schedule_with_warmup(0.1, 0, 5, num_cycles=6),
     "num_cycles"),
    ("hf-plateau", lambda: hf.get_scheduler("reduce_lr_on_plateau", 0.1), "not supported"),
    ("hf-greedy", lambda: hf.get_greedy_schedule(0.1), "training loss"),
    ("hf-adafactor", lambda: hf.get_adafactor_schedule(0.1), "not supported"),
    ("hf-unknown-name", lambda: hf.get_scheduler("nope", 0.1), "get_scheduler.name"),
    ("hf-missing-warmup", lambda: hf.get_scheduler("linear", 0.1, num_training_steps=10), "num_warmup_steps"),
    ("timm-noise", lambda: timm.CosineLRScheduler(0.1, 10, noise_range_t=5), "noise_range_t"),
    ("timm-t-initial", lambda: timm.CosineLRScheduler(0.1, 0), "CosineLRScheduler.t_initial"),
    ("timm-lr-min", lambda: timm.CosineLRScheduler(0.1, 10, lr_min=-1.0), "CosineLRScheduler.lr_min"),
    ("timm-cycle-mul", lambda: timm.CosineLRScheduler(0.1, 10, cycle_mul=0.5), "cycle_mul"),
    ("timm-negative-lr", lambda: timm.StepLRScheduler(-0.1, decay_t=5), "StepLRScheduler.lr must be >= 0"),
    ("timm-negative-warmup-lr-init", lambda: timm.CosineLRScheduler(0.1, 10, warmup_t=2, warmup_lr_init=-1e-4),
     "CosineLRScheduler.warmup_lr_init must be >= 0, got -0.0001"),
    ("timm-wsd-lr-min", lambda: timm.WSDLRScheduler(0.1, 10, 5, lr_min=-1e-3), "WSDLRScheduler.lr_min must be"),
    ("timm-tanh-nan-lr", lambda: timm.TanhLRScheduler([0.1, float("nan")], 10), "TanhLRScheduler.lr[1] must be"),
    ("timm-tanh-bounds", lambda: timm.TanhLRScheduler(0.1, 10, lb=3.0, ub=1.0), "lb must be < ub"),
    ("timm-step-decay-t", lambda: timm.StepLRScheduler(0.1, decay_t=0.5), "StepLRScheduler.decay_t"),
    ("timm-multistep-unsorted", lambda: timm.MultiStepLRScheduler(0.1, [30, 10]), "sorted"),
    ("timm-poly-k-decay", lambda: timm.PolyLRScheduler(0.1, 10, k_decay=0.0), "PolyLRScheduler.k_decay"),
    ("timm-wsd-decay-t", lambda: timm.WSDLRScheduler(0.1, 10, decay_t=20), "decay_t"),
    ("timm-wsd-callable", lambda: timm.WSDLRScheduler(0.1, 10, 5, decay_fn=lambda f: 1 - f), "callable"),
    ("timm-wsd-timescale", lambda: timm.WSDLRScheduler(0.1, 10, 5, stable_fn="rsqrt"), "stable_timescale"),
    ("timm-wsd-stable-fn", lambda: timm.WSDLRScheduler(0.1, 10, 5, stable_fn="linear"), "stable_fn"),
    ("timm-warmup-fraction", lambda: timm.CosineLRScheduler(0.1, 10, warmup_t=0.5), "warmup_t"),
    ("optax-nan-constant", lambda: optax.constant_schedule(float("nan")),
     "constant_schedule.value must be a finite number, got nan"),
    ("optax-inf-end", lambda: optax.warmup_cosine_decay_schedule(0.0, 1.0, 10, 100, end_value=-float("inf")),
     "warmup_cosine_decay_schedule.end_value must be a finite number"),
    ("optax-negative-rate", lambda: optax.exponential_decay(1.0, 10, -0.5), "decay_rate must be > 0"),
    ("optax-negative-scale", lambda: optax.piecewise_constant_schedule(1.0, {5: -1.0}), "non-negative"),
    ("optax-interpolate-type", lambda: optax.piecewise_interpolate_schedule("cubic", 1.0), "interpolate_type"),
    ("optax-cosine-steps", lambda: optax.cosine_decay_schedule(1.0, 0), "decay_steps"),
    ("optax-warmup-too-long", lambda: optax.warmup_cosine_decay_schedule(0.0, 1.0, 10, 10), "decay_steps"),
    ("optax-join-count", lambda: optax.join_schedules([optax.constant_schedule(1.0)] * 2, [5, 6]), "milestone"),
    ("optax-join-non-schedule", lambda: optax.join_schedules([optax.constant_schedule(1.0), abs], [5]),
     "lrlab schedule"),
    ("optax-sgdr-missing", lambda: optax.sgdr_schedule([{"init_value": 0.0, "peak_value": 1.0}]), "decay_steps"),
    ("optax-sgdr-empty", lambda: optax.sgdr_schedule([]), "at least one"),
]


@pytest.mark.parametrize(("make", "message"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_arguments_raise_schedule_error(make: Callable[[], Any], message: str) -> None:
    with pytest.raises(ScheduleError) as info:
        make()
    assert message in str(info.value), str(info.value)


def test_lr_list_gives_one_schedule_per_group_and_float_gives_one() -> None:
    per = tc.StepLR([0.1, 0.2], step_size=3)
    assert isinstance(per, list) and [s(3) for s in per] == [0.1 * 0.1, 0.2 * 0.1]
    assert isinstance(tc.StepLR(0.1, step_size=3), lrlab.Schedule)
    assert isinstance(optax.constant_schedule(1.0), lrlab.Schedule)


def test_compat_submodules_load_lazily_without_peers() -> None:
    import subprocess
    import sys

    code = ("import sys, lrlab.compat as c\n"
            "assert 'lrlab.compat.hf' not in sys.modules\n"
            "s = c.hf.get_constant_schedule(0.5)\n"
            "assert s(3) == 0.5\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'jax', 'optax', 'timm', 'transformers'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_peer_values_are_not_trivial() -> None:
    """A guard on the harness itself: a decaying schedule changes, and groups keep their own base LRs."""
    peer = step_torch(lambda opt: torch_peer.StepLR(opt, 2, 0.5), 5)
    assert peer[:, 0].tolist() == [0.1, 0.1, 0.05, 0.05, 0.025]
    assert peer[0].tolist() == LRS
    assert math.isclose(max_rel(np.array([1.0, 2.0]), np.array([1.0, 2.0 + 2e-12])), 1e-12, rel_tol=1e-3)


@pytest.mark.parametrize("module", ["lrlab.compat", "lrlab.compat.torch", "lrlab.compat.hf", "lrlab.compat.timm",
                                    "lrlab.compat.optax"])
def test_docstring_examples_run(module: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
