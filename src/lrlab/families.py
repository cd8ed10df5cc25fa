"""Schedule families: one frozen dataclass and one closed-form NumPy float64 formula each.

Every family evaluates on its own clock `t >= 0` (inside a join: the clock local to its piece). Values are
unitless by default (factors of a base LR, `peak=1.0`); give `peak`/`floor` in LR units for absolute values.

One vocabulary for the values: `peak` is the top of a schedule and `floor` its bottom, in every family. A decay
(step, exponential, linear, polynomial, cosine, cooldown, ...) runs from `peak` at t=0 towards `floor`; a warm-up
rises from `floor` to `peak`; `cyclic` moves between them; `one_cycle` rises from `initial` (its one other value)
to `peak` and ends at `floor`. The formulas do not require ``peak >= floor``: `linear` and `polynomial` with
``peak < floor`` rise, as torch's ``LinearLR`` and optax's ``linear_schedule`` do in warm-ups. Older names
(`start`/`end`, `low`/`high`) are still accepted (`Schedule.renamed`) and written in the new ones.
Arithmetic follows the peer library named under `Matches:` operation by operation where that is possible, so
parity holds to the last bit or within a few ulps (see tests/test_compat_parity.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import InitVar, dataclass, field
from typing import ClassVar

import numpy as np

from lrlab.errors import ScheduleError
from lrlab.schedule import (
    NOT_GIVEN,
    FloatArray,
    Schedule,
    check_choice,
    check_int,
    check_length,
    check_nonneg,
    check_number,
    check_positive,
    check_range,
    length_field,
)


def _ordered(lo: float, hi: float) -> tuple[float, float]:
    return (min(lo, hi), max(lo, hi))


@dataclass(frozen=True, kw_only=True, repr=False)
class Constant(Schedule):
    """A constant value.

    Formula: ``value``. Args: value (any finite number, default 1.0); total: optional length when joined.
    Matches: torch 2.13 ``ConstantLR(factor=1)``, optax 0.2.8 ``constant_schedule`` (to the last bit).

    >>> Constant(value=0.5)(1000)
    0.5
    """

    name: ClassVar[str] = "constant"
    value: float = 1.0
    total: float | None = length_field()

    def __post_init__(self) -> None:
        check_number("constant.value", self.value)
        check_length("constant.total", self.total, allow_zero=True)

    def _values(self, t: FloatArray) -> FloatArray:
        return np.full_like(t, self.value)

    def bounds(self) -> tuple[float, float]:
        return (self.value, self.value)


@dataclass(frozen=True, kw_only=True, repr=False)
class Step(Schedule):
    """Step decay: multiply by ``factor`` every ``every`` clock units.

    Formula: ``peak * factor ** floor(t / every)``.
    Args: every (> 0, clock units or a fraction of the run); factor (> 0, gamma); peak (value at t=0).
    t=0 gives peak; there is no end. Matches: torch 2.13 ``StepLR(step_size=every, gamma=factor)`` (closed
    form; torch multiplies recursively, a few ulps apart), timm 1.0.31 ``StepLRScheduler(decay_t, decay_rate)``.

    >>> Step(every=30, factor=0.5)(65)
    0.25
    """

    name: ClassVar[str] = "step"
    every: float = length_field(doc="period between decays")
    factor: float = 0.1
    peak: float = 1.0
    total: float | None = length_field()

    def __post_init__(self) -> None:
        check_length("step.every", self.every, allow_none=False)
        check_positive("step.factor", self.factor)
        check_number("step.peak", self.peak)
        check_length("step.total", self.total, allow_zero=True)

    def _values(self, t: FloatArray) -> FloatArray:
        k = np.floor_divide(t, self.every)
        return self.peak * np.power(self.factor, k)

    def bounds(self) -> tuple[float, float]:
        return _ordered(0.0, self.peak) if self.factor < 1 else (self.peak, np.inf) if self.peak >= 0 else (
            -np.inf, self.peak)


@dataclass(frozen=True, kw_only=True, repr=False)
class MultiStep(Schedule):
    """Multiply by ``factor`` at each milestone.

    Formula: ``peak * factor ** (number of milestones <= t)``.
    Args: milestones (strictly increasing, > 0, clock units or fractions of the run); factor (> 0); peak.
    Matches: torch 2.13 ``MultiStepLR(milestones, gamma)`` (its bisect_right closed form), timm 1.0.31
    ``MultiStepLRScheduler`` (timm applies milestone ``m`` at clock ``m - 1``; `lrlab.compat.timm` shifts them).

    >>> MultiStep(milestones=(10, 20), factor=0.5)(15)
    0.5
    """

    name: ClassVar[str] = "multi_step"
    milestones: tuple[float, ...] = field(default=(), metadata={"lrlab_length": "many"})
    factor: float = 0.1
    peak: float = 1.0
    total: float | None = length_field()

    def __post_init__(self) -> None:
        object.__setattr__(self, "milestones", tuple(self.milestones))
        if not self.milestones:
            raise ScheduleError("multi_step.milestones must hold at least one clock position, got ()")
        for i, m in enumerate(self.milestones):
            check_length(f"multi_step.milestones[{i}]", m, allow_none=False)
        ms = list(self.milestones)
        same_kind = all(not (0 < m < 1) for m in ms) or all(0 < m < 1 for m in ms)
        if same_kind and any(b <= a for a, b in itertools.pairwise(ms)):
            raise ScheduleError(f"multi_step.milestones must be strictly increasing, got {self.milestones}")
        check_positive("multi_step.factor", self.factor)
        check_number("multi_step.peak", self.peak)
        check_length("multi_step.total", self.total, allow_zero=True)

    def _values(self, t: FloatArray) -> FloatArray:
        k = np.searchsorted(np.asarray(self.milestones, dtype=np.float64), t, side="right")
        return self.peak * np.power(self.factor, k.astype(np.float64))

    def bounds(self) -> tuple[float, float]:
        end = self.peak * self.factor ** len(self.milestones)
        return _ordered(self.peak, end)


@dataclass(frozen=True, kw_only=True, repr=False)
class Exponential(Schedule):
    """Exponential decay, in the per-step form or the rate form. Give exactly one of ``gamma`` and ``rate``.

    Formula: ``peak * gamma ** p`` or ``peak * exp(-rate * p)``, ``p = t / every`` (``floor(t / every)`` with
    ``staircase``). t=0 gives peak; there is no end. ``gamma > 1`` (or ``rate < 0``) grows without bound and
    nothing clips it: in float64 the value overflows to ``inf`` once ``p * ln(gamma)`` passes about 709; put a
    `Clamp` (``clamp(exponential(1.01), max=...)``) around a growing exponential.
    Args: gamma (> 0, factor per ``every`` clock units) or rate (any finite number, k); every (> 0, default
    1); staircase (floor ``t / every``, decaying in steps); peak (value at t=0).
    Matches: torch 2.13 ``ExponentialLR(gamma)`` (closed form ``base * gamma ** t``; torch multiplies
    recursively, a few ulps apart), optax 0.2.8 ``exponential_decay`` (with ``transition_steps=every``,
    ``staircase``; its ``transition_begin``/``end_value`` are a join with a constant and a clamp).

    >>> Exponential(gamma=0.5)(2)
    0.25
    """

    name: ClassVar[str] = "exponential"
    gamma: float | None = None
    rate: float | None = None
    every: float = 1.0
    staircase: bool = False
    peak: float = 1.0
    total: float | None = length_field()

    def __post_init__(self) -> None:
        if (self.gamma is None) == (self.rate is None):
            raise ScheduleError(
                "exponential needs exactly one of gamma (factor per step, e.g. 0.99) or rate "
                f"(k in exp(-k*t), e.g. 0.01); got gamma={self.gamma}, rate={self.rate}"
            )
        if self.gamma is not None:
            check_positive("exponential.gamma", self.gamma)
        if self.rate is not None:
            check_number("exponential.rate", self.rate)
        check_positive("exponential.every", self.every)
        check_number("exponential.peak", self.peak)
        check_length("exponential.total", self.total, allow_zero=True)

    def _values(self, t: FloatArray) -> FloatArray:
        p = t / self.every
        if self.staircase:
            p = np.floor(p)
        if self.gamma is not None:
            return self.peak * np.power(self.gamma, p)
        return self.peak * np.exp(-float(self.rate) * p)  # type: ignore[arg-type]

    def bounds(self) -> tuple[float, float]:
        shrinking = (self.gamma is not None and self.gamma <= 1) or (self.rate is not None and self.rate >= 0)
        if shrinking:
            return _ordered(0.0, self.peak)
        return _ordered(self.peak, np.inf if self.peak > 0 else -np.inf)


@dataclass(frozen=True, kw_only=True, repr=False)
class Linear(Schedule):
    """Linear decay from ``peak`` to ``floor`` over ``total`` clock units, then ``floor``.

    Formula: ``(peak * (total - t) + floor * t) / total`` for t < total, else ``floor``. Written so that the
    BERT recipe's ``(T - t) / (T - w)`` is reproduced to the last bit.
    Args: peak (value at t=0), floor (value from ``total`` on) (finite; ``peak < floor`` rises); total (> 0; a
    fraction of the run; or open: the rest of the run). Old names: start, end.
    Matches: HF transformers 5.x ``get_linear_schedule_with_warmup`` (after warm-up, to the last bit), torch 2.13
    ``LinearLR`` (closed form; torch's recursion is a few ulps apart).

    >>> Linear(peak=1.0, floor=0.0, total=100)(25)
    0.75
    """

    name: ClassVar[str] = "linear"
    renamed: ClassVar[Mapping[str, str]] = {"start": "peak", "end": "floor"}
    peak: float = 1.0
    floor: float = 0.0
    total: float | None = length_field()
    start: InitVar[float] = NOT_GIVEN
    end: InitVar[float] = NOT_GIVEN

    def __post_init__(self, start: float, end: float) -> None:
        self._take_renamed(start=start, end=end)
        check_number("linear.peak", self.peak)
        check_number("linear.floor", self.floor)
        check_length("linear.total", self.total)

    def _open_total_ok(self) -> bool:
        return False

    def _values(self, t: FloatArray) -> FloatArray:
        T = float(self.total)  # type: ignore[arg-type]
        tc = np.minimum(t, T)
        return np.where(t < T, (self.peak * (T - tc) + self.floor * tc) / T, self.floor)

    def bounds(self) -> tuple[float, float]:
        return _ordered(self.peak, self.floor)


@dataclass(frozen=True, kw_only=True, repr=False)
class Polynomial(Schedule):
    """Polynomial decay from ``peak`` to ``floor`` over ``total``, then ``floor``.

    Formula: ``(peak - floor) * (1 - min(t, total)**k / total**k) ** power + floor`` (with ``k`` 1:
    ``1 - min(t, total) / total``).
    Args: peak, floor (finite; ``peak < floor`` rises); power (> 0); k (> 0, timm k-decay: above 1 the decay
    starts slower and ends faster); total (> 0, fraction, or open). Old names: start, end.
    Matches: HF transformers 5.x ``get_polynomial_decay_schedule_with_warmup`` (after warm-up; a few ulps: HF
    divides by the initial LR and multiplies again), optax 0.2.8 ``polynomial_schedule`` and ``linear_schedule``
    (power 1), torch 2.13 ``PolynomialLR`` (closed form; torch steps recursively), timm 1.0.31
    ``PolyLRScheduler`` (``power, k_decay``; one cycle).

    >>> Polynomial(peak=1.0, floor=0.0, power=2.0, total=10)(5)
    0.25
    """

    name: ClassVar[str] = "polynomial"
    renamed: ClassVar[Mapping[str, str]] = {"start": "peak", "end": "floor"}
    peak: float = 1.0
    floor: float = 0.0
    power: float = 1.0
    k: float = 1.0
    total: float | None = length_field()
    start: InitVar[float] = NOT_GIVEN
    end: InitVar[float] = NOT_GIVEN

    def __post_init__(self, start: float, end: float) -> None:
        self._take_renamed(start=start, end=end)
        check_number("polynomial.peak", self.peak)
        check_number("polynomial.floor", self.floor)
        check_positive("polynomial.power", self.power)
        check_positive("polynomial.k", self.k)
        check_length("polynomial.total", self.total)

    def _open_total_ok(self) -> bool:
        return False

    def _values(self, t: FloatArray) -> FloatArray:
        T = float(self.total)  # type: ignore[arg-type]
        tc = np.minimum(t, T)
        # u**k / T**k in this order, as timm computes it (not (u / T)**k, which rounds differently)
        frac = 1.0 - (tc / T if self.k == 1.0 else np.power(tc, self.k) / np.power(T, self.k))
        return (self.peak - self.floor) * np.power(frac, self.power) + self.floor

    def bounds(self) -> tuple[float, float]:
        return _ordered(self.peak, self.floor)


@dataclass(frozen=True, kw_only=True, repr=False)
class Cosine(Schedule):
    """Cosine annealing from ``peak`` to ``floor`` over ``total``.

    Formula: ``c = 0.5 * (1 + cos(pi * cycles * 2 * p))``, ``p = t / total`` (clipped to 1 unless
    ``periodic``), value ``(peak - floor) * c ** exponent + floor``.
    Args: peak, floor (finite); total (> 0, fraction, or open); cycles (> 0, 0.5 = one half cosine,
    HF's ``num_cycles``); exponent (> 0, optax); periodic (continue the cosine past ``total``, as torch and
    HF do, instead of holding the value at ``total``).
    Matches: HF transformers 5.x ``get_cosine_schedule_with_warmup`` and
    ``get_cosine_with_min_lr_schedule_with_warmup`` (``periodic=True``), torch 2.13 ``CosineAnnealingLR``
    (closed form, ``periodic=True``; torch's recursion drifts past ``T_max``, see
    ``lrlab.compat.torch.COSINE_ANNEALING_BOUND``), optax 0.2.8 ``cosine_decay_schedule`` (a few ulps).

    >>> Cosine(total=100)(50)
    0.5
    """

    name: ClassVar[str] = "cosine"
    peak: float = 1.0
    floor: float = 0.0
    total: float | None = length_field()
    cycles: float = 0.5
    exponent: float = 1.0
    periodic: bool = False

    def __post_init__(self) -> None:
        check_number("cosine.peak", self.peak)
        check_number("cosine.floor", self.floor)
        check_length("cosine.total", self.total)
        check_positive("cosine.cycles", self.cycles)
        check_positive("cosine.exponent", self.exponent)

    def _open_total_ok(self) -> bool:
        return False

    def _values(self, t: FloatArray) -> FloatArray:
        # in place on one new array: the same operations as
        # (peak - floor) * (0.5 * (1 + cos(pi * cycles * 2 * p))) ** exponent + floor, without five temporaries
        c = t / float(self.total)  # type: ignore[arg-type]
        if not self.periodic:
            np.minimum(c, 1.0, out=c)
        c *= np.pi * self.cycles * 2.0
        np.cos(c, out=c)
        c += 1.0
        c *= 0.5
        if self.exponent != 1.0:
            np.power(c, self.exponent, out=c)
        c *= self.peak - self.floor
        c += self.floor
        return c

    def bounds(self) -> tuple[float, float]:
        return _ordered(self.peak, self.floor)


def _cycle_position(t: FloatArray, period: float, mult: float) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(cycle index i, clock within the cycle, cycle length) for periods ``period * mult ** i``.

    Cycle ``i`` starts at ``(1 - mult**i) / (1 - mult) * period`` and lasts ``mult**i * period``, computed in
    exactly timm's arithmetic. The index from the logarithm is corrected by one either way, so a clock exactly
    on a restart always starts the new cycle (timm's ``floor(log(...))`` can land one cycle early, e.g. at
    t=1000 for period 1, mult 10).
    """
    if mult == 1.0:
        i = np.floor_divide(t, period)
        return i, t - period * i, np.full_like(t, period)
    i = np.floor(np.log(1.0 - t / period * (1.0 - mult)) / np.log(mult))
    i = np.maximum(i, 0.0)

    def start(k: FloatArray) -> FloatArray:
        return (1.0 - np.power(mult, k)) / (1.0 - mult) * period

    i = np.where(start(i) > t, i - 1.0, i)
    i = np.where(start(i + 1.0) <= t, i + 1.0, i)
    return i, t - start(i), np.power(mult, i) * period


def _cycle_bounds(peak: float, floor: float, decay: float) -> tuple[float, float]:
    # cycle i moves between floor and peak * decay**i; a decaying peak tends to 0 and may sink below the floor
    if decay == 1:
        return _ordered(peak, floor)
    far = 0.0 if decay < 1 else (np.inf if peak > 0 else -np.inf)
    vals = (peak, floor, far)
    return (min(vals), max(vals))


@dataclass(frozen=True, kw_only=True, repr=False)
class CosineRestarts(Schedule):
    """Cosine annealing with warm restarts (SGDR): the LR falls from the cycle's peak to ``floor`` over
    each period, then jumps back up.

    Formula: cycle ``i`` lasts ``period * mult ** i``; with ``u`` the clock within it and ``L`` its length,
    value ``floor + (peak * decay ** i - floor) * 0.5 * (1 + cos(pi * u**k / L**k))``; after ``limit``
    cycles (0: never) the value stays at ``floor``.
    Args: period (> 0, first period T_0; clock units or a fraction of the run); mult (>= 1, T_mult);
    decay (> 0, peak multiplier per cycle); limit (whole number >= 0); peak, floor; k (> 0, timm k-decay).
    Matches: torch 2.13 ``CosineAnnealingWarmRestarts(T_0, T_mult, eta_min)`` (to the last bit), timm 1.0.31
    ``CosineLRScheduler`` (``t_initial, cycle_mul, cycle_decay, cycle_limit, k_decay``; timm's logarithmic
    cycle index can land one cycle early exactly on a restart, lrlab restarts there), optax 0.2.8
    ``sgdr_schedule`` with equal cycles.

    >>> CosineRestarts(period=10)(10)
    1.0
    """

    name: ClassVar[str] = "cosine_restarts"
    period: float = length_field(doc="first period")
    mult: float = 1.0
    decay: float = 1.0
    limit: int = 0
    peak: float = 1.0
    floor: float = 0.0
    k: float = 1.0
    total: float | None = length_field()

    def __post_init__(self) -> None:
        check_length("cosine_restarts.period", self.period, allow_none=False)
        check_range("cosine_restarts.mult", self.mult, 1.0, np.inf)
        check_positive("cosine_restarts.decay", self.decay)
        object.__setattr__(self, "limit", check_int("cosine_restarts.limit", self.limit))
        check_number("cosine_restarts.peak", self.peak)
        check_number("cosine_restarts.floor", self.floor)
        check_positive("cosine_restarts.k", self.k)
        check_length("cosine_restarts.total", self.total, allow_zero=True)

    def _values(self, t: FloatArray) -> FloatArray:
        i, u, L = _cycle_position(t, float(self.period), self.mult)
        top = self.peak * np.power(self.decay, i)
        # pi * u / L in this order, as torch and timm compute it: near the end of a cycle 1 + cos(x) cancels,
        # so one ulp in the argument would show in the last digits
        arg = np.pi * u / L if self.k == 1.0 else np.pi * np.power(u, self.k) / np.power(L, self.k)
        v = self.floor + 0.5 * (top - self.floor) * (1.0 + np.cos(arg))
        if self.limit:
            v = np.where(i < self.limit, v, self.floor)
        return v

    def bounds(self) -> tuple[float, float]:
        return _cycle_bounds(self.peak, self.floor, self.decay)


@dataclass(frozen=True, kw_only=True, repr=False)
class Tanh(Schedule):
    """Hyperbolic-tangent decay with optional restarts (timm).

    Formula: in cycle ``i`` at ``r = u / L`` (see ``cosine_restarts``):
    ``floor + 0.5 * (peak * decay**i - floor) * (1 - tanh(lb * (1 - r) + ub * r))``; after ``limit``
    cycles (0: never) ``floor``.
    Args: period (> 0), mult (>= 1), decay (> 0), limit (>= 0, default 1: one cycle), lb < ub, peak, floor.
    Matches: timm 1.0.31 ``TanhLRScheduler`` (within a few ulps: NumPy's tanh and the C library's differ in
    the last bits).

    >>> round(Tanh(period=100)(0), 6)
    0.999999
    """

    name: ClassVar[str] = "tanh"
    period: float = length_field(doc="first period")
    lb: float = -7.0
    ub: float = 3.0
    mult: float = 1.0
    decay: float = 1.0
    limit: int = 1
    peak: float = 1.0
    floor: float = 0.0
    total: float | None = length_field()

    def __post_init__(self) -> None:
        check_length("tanh.period", self.period, allow_none=False)
        check_number("tanh.lb", self.lb)
        check_number("tanh.ub", self.ub)
        if not self.lb < self.ub:
            raise ScheduleError(f"tanh.lb must be < tanh.ub, got lb={self.lb}, ub={self.ub}")
        check_range("tanh.mult", self.mult, 1.0, np.inf)
        check_positive("tanh.decay", self.decay)
        object.__setattr__(self, "limit", check_int("tanh.limit", self.limit))
        check_number("tanh.peak", self.peak)
        check_number("tanh.floor", self.floor)
        check_length("tanh.total", self.total, allow_zero=True)

    def _values(self, t: FloatArray) -> FloatArray:
        i, u, L = _cycle_position(t, float(self.period), self.mult)
        top = self.peak * np.power(self.decay, i)
        r = u / L
        v = self.floor + 0.5 * (top - self.floor) * (1.0 - np.tanh(self.lb * (1.0 - r) + self.ub * r))
        if self.limit:
            v = np.where(i < self.limit, v, self.floor)
        return v

    def bounds(self) -> tuple[float, float]:
        return _cycle_bounds(self.peak, self.floor, self.decay)


@dataclass(frozen=True, kw_only=True, repr=False)
class InverseSqrt(Schedule):
    """Inverse square-root decay in Hugging Face's timescale form (or any inverse power).

    Formula: ``peak * 1 / sqrt((t + timescale) / timescale)`` — equal to ``peak`` at t=0 and to
    ``peak * sqrt(timescale / t)`` for large t; with ``power != 0.5``,
    ``peak * ((t + timescale) / timescale) ** -power``. After a warm-up of ``w`` updates and
    ``timescale = w`` this is the original Transformer's ``min(t**-0.5, t * w**-1.5)`` shape, normalised to
    ``peak`` (see ``Noam`` for the paper's exact scale).
    Args: timescale (> 0, clock units); peak; power (> 0, default 0.5).
    Matches: HF transformers 5.x ``get_inverse_sqrt_schedule`` (after warm-up, to the last bit), timm 1.0.31
    ``WSDLRScheduler``
    ``stable_fn`` rsqrt / power (``stable_timescale``, ``stable_power``; within a few ulps).

    >>> InverseSqrt(timescale=100)(300)
    0.5
    """

    name: ClassVar[str] = "inverse_sqrt"
    timescale: float = 10_000.0
    peak: float = 1.0
    power: float = 0.5
    total: float | None = length_field()

    def __post_init__(self) -> None:
        check_positive("inverse_sqrt.timescale", self.timescale)
        check_number("inverse_sqrt.peak", self.peak)
        check_positive("inverse_sqrt.power", self.power)
        check_length("inverse_sqrt.total", self.total, allow_zero=True)

    def _values(self, t: FloatArray) -> FloatArray:
        x = (t + self.timescale) / self.timescale
        if self.power == 0.5:
            return self.peak * (1.0 / np.sqrt(x))
        return self.peak * np.power(x, -self.power)

    def bounds(self) -> tuple[float, float]:
        return _ordered(0.0, self.peak)


@dataclass(frozen=True, kw_only=True, repr=False)
class Noam(Schedule):
    """The original Transformer's schedule (Vaswani et al. 2017, eq. 3), warm-up included.

    Formula: ``scale * d_model**-0.5 * min(n**-0.5, n * warmup**-1.5)`` with ``n = t + 1``: update ``t``
    (0-based) is the paper's ``step_num = t + 1``, so the first update has a non-zero LR. These are
    absolute LRs (use the scheduler with ``absolute=True``).
    Args: d_model (> 0), warmup (> 0 updates), scale (> 0).
    Matches: none (lrlab only: the paper's formula; no peer ships it as such, HF's ``get_inverse_sqrt_schedule``
    is the normalised `InverseSqrt` form).

    >>> round(Noam(d_model=512, warmup=4000)(3999), 8)
    0.00069877
    """

    name: ClassVar[str] = "noam"
    d_model: float = 512.0
    warmup: float = 4000.0
    scale: float = 1.0
    total: float | None = length_field()

    def __post_init__(self) -> None:
        check_positive("noam.d_model", self.d_model)
        check_positive("noam.warmup", self.warmup)
        check_positive("noam.scale", self.scale)
        check_length("noam.total", self.total, allow_zero=True)

    def _values(self, t: FloatArray) -> FloatArray:
        n = t + 1.0
        return self.scale * self.d_model**-0.5 * np.minimum(n**-0.5, n * self.warmup**-1.5)

    def bounds(self) -> tuple[float, float]:
        return (0.0, self.scale * self.d_model**-0.5 * self.warmup**-0.5)


WARMUP_SHAPES = ("linear", "cosine", "sqrt", "exponential")


def _ramp(shape: str, p: FloatArray) -> FloatArray:
    """Rising ramp f(p) on p in [0, 1] with f(0)=0, f(1)=1."""
    if shape == "linear":
        return p
    if shape == "cosine":
        return 0.5 * (1.0 - np.cos(np.pi * p))
    if shape == "sqrt":
        return 1.0 - np.sqrt(1.0 - p)
    # exponential: the untuned rule's 1 - exp(-t / tau) with tau = length / 2, normalised to reach 1
    return -np.expm1(-2.0 * p) / -np.expm1(-2.0)


@dataclass(frozen=True, kw_only=True, repr=False)
class Warmup(Schedule):
    """A warm-up ramp from ``floor`` up to ``peak`` over ``total`` clock units, then ``peak``.

    Formula: ``(peak - floor) * f(t / total) + floor`` with ``f`` by shape: linear ``p``; cosine
    ``(1 - cos(pi p)) / 2``; sqrt ``1 - sqrt(1 - p)``; exponential ``(1 - exp(-2p)) / (1 - exp(-2))``
    (the untuned exponential warm-up ``1 - exp(-t/tau)`` with ``tau = total / 2``, made to reach ``peak``).
    ``peak=None`` ramps to the value the next piece of a join starts at (1.0 when alone). ``beta2`` instead of
    ``total`` applies the untuned rule of thumb for Adam (Ma & Yarats 2021): ``total = 2 / (1 - beta2)``.
    Args: total (>= 0 clock units, fraction of the run); floor (value at t=0, default 0); peak (finite, or None);
    shape; beta2 (in (0, 1)). Old names: start (floor), end (peak).
    Matches: HF transformers 5.x linear warm-up ``t / w`` to the last bit; torch 2.13 ``LinearLR`` / timm 1.0.31
    ``warmup_t``/``warmup_lr_init`` within a few ulps; HF 5.x WSD ``warmup_type`` linear/cosine/1-sqrt.

    >>> Warmup(total=100)(25)
    0.25
    """

    name: ClassVar[str] = "warmup"
    renamed: ClassVar[Mapping[str, str]] = {"start": "floor", "end": "peak"}
    total: float | None = length_field()
    floor: float = 0.0
    peak: float | None = None
    shape: str = "linear"
    beta2: float | None = None
    start: InitVar[float] = NOT_GIVEN
    end: InitVar[float | None] = NOT_GIVEN

    def __post_init__(self, start: float, end: float | None) -> None:
        self._take_renamed(start=start, end=end)
        if self.beta2 is not None:
            check_range("warmup.beta2", self.beta2, 0.0, 1.0, lo_open=True, hi_open=True)
            if self.total is not None:
                raise ScheduleError(
                    f"warmup takes total or beta2 (rule of thumb 2/(1-beta2)), not both; got total={self.total}, "
                    f"beta2={self.beta2}"
                )
        else:
            check_length("warmup.total", self.total, allow_zero=True, allow_none=False)
        check_number("warmup.floor", self.floor)
        if self.peak is not None:
            check_number("warmup.peak", self.peak)
        check_choice("warmup.shape", self.shape, WARMUP_SHAPES)

    @property
    def length(self) -> float | None:
        if self.beta2 is not None:
            return float(np.ceil(2.0 / (1.0 - self.beta2) - 1e-9))
        return self.total

    def _bind(self, total: float, length: float | None = None) -> Warmup:
        if self.beta2 is not None:
            return self  # the rule of thumb fixes the length
        return super()._bind(total, length)

    def ramp(self, t: FloatArray, peak: float) -> FloatArray:
        """The ramp up to ``peak`` (this warm-up's own, or where the next piece of a join starts)."""
        L = float(self.length)  # type: ignore[arg-type]
        if L == 0:
            return np.full_like(t, peak)
        p = np.minimum(t / L, 1.0)
        return np.where(t < L, (peak - self.floor) * _ramp(self.shape, p) + self.floor, peak)

    def _values(self, t: FloatArray) -> FloatArray:
        return self.ramp(t, 1.0 if self.peak is None else self.peak)

    def bounds(self) -> tuple[float, float]:
        return _ordered(self.floor, 1.0 if self.peak is None else self.peak)


DECAY_SHAPES = ("linear", "cosine", "sqrt", "power", "exp")


@dataclass(frozen=True, kw_only=True, repr=False)
class Cooldown(Schedule):
    """A decay (the "D" of warmup-stable-decay) from ``peak`` to ``floor`` over ``total``, then ``floor``.

    Formula: ``(peak - floor) * f(p) + floor``, ``p = min(t / total, 1)``, with ``f``: linear ``1 - p``;
    cosine ``0.5 * (1 + cos(pi * cycles * 2 * p))``; sqrt ``1 - sqrt(p)`` (the "1-sqrt" cooldown of
    Hägele et al. 2024); power ``1 - p ** power`` (0.5 is sqrt, 1 is linear, 2 a "square" cooldown);
    exp ``(ratio ** p - ratio) / (1 - ratio)`` (exponential decay to ``ratio``, shifted to reach ``floor``).
    Args: total (> 0, fraction, or open); shape; peak; floor (finite); cycles (> 0, cosine only); power (> 0,
    power only); ratio (in (0, 1), exp only). Old names: start (peak), end (floor). t=0 gives peak; t >= total
    gives ``f(1)``, which is ``floor`` except for a cosine with ``cycles != 0.5``.
    Matches: HF transformers 5.x ``get_wsd_schedule`` decay phase (``decay_type``, ``min_lr_ratio``), timm 1.0.31
    ``WSDLRScheduler``
    (``decay_fn`` linear, 1-sqrt, cosine, power, exp; to the last bit).

    >>> Cooldown(total=100, shape="sqrt")(25)
    0.5
    """

    name: ClassVar[str] = "cooldown"
    renamed: ClassVar[Mapping[str, str]] = {"start": "peak", "end": "floor"}
    total: float | None = length_field()
    shape: str = "sqrt"
    peak: float = 1.0
    floor: float = 0.0
    cycles: float = 0.5
    power: float = 0.5
    ratio: float = 0.1
    start: InitVar[float] = NOT_GIVEN
    end: InitVar[float] = NOT_GIVEN

    def __post_init__(self, start: float, end: float) -> None:
        self._take_renamed(start=start, end=end)
        check_length("cooldown.total", self.total)
        check_choice("cooldown.shape", self.shape, DECAY_SHAPES)
        check_number("cooldown.peak", self.peak)
        check_number("cooldown.floor", self.floor)
        check_positive("cooldown.cycles", self.cycles)
        check_positive("cooldown.power", self.power)
        check_range("cooldown.ratio", self.ratio, 0.0, 1.0, lo_open=True, hi_open=True)

    def _open_total_ok(self) -> bool:
        return False

    def _values(self, t: FloatArray) -> FloatArray:
        p = np.minimum(t / float(self.total), 1.0)  # type: ignore[arg-type]
        if self.shape == "linear":
            f = 1.0 - p
        elif self.shape == "cosine":
            f = 0.5 * (1.0 + np.cos(np.pi * self.cycles * 2.0 * p))
        elif self.shape == "sqrt":
            f = 1.0 - np.sqrt(p)
        elif self.shape == "power":
            f = 1.0 - np.power(p, self.power)
        else:
            f = (np.power(self.ratio, p) - self.ratio) / (1.0 - self.ratio)
        return (self.peak - self.floor) * f + self.floor

    def bounds(self) -> tuple[float, float]:
        return _ordered(self.peak, self.floor)


ONECYCLE_SHAPES = ("cosine", "linear")


@dataclass(frozen=True, kw_only=True, repr=False)
class OneCycle(Schedule):
    """One-cycle policy (Smith & Topin): up from ``initial`` to ``peak``, then down to ``floor``.

    Formula: two phases: ``initial -> peak`` until ``pct_start * total - 1``, ``peak -> floor`` until
    ``total - 1``. Three phases: ``initial -> peak``, ``peak -> initial`` until ``2 * pct_start * total - 2``,
    ``initial -> floor``. Each phase from ``a`` to ``b`` anneals by ``b + (a - b) / 2 * (cos(pi * pct) + 1)``
    (cosine) or ``(b - a) * pct + a`` (linear). Updates ``0 .. total-1`` are the run; later clocks hold the
    value of update ``total - 1`` (torch raises past ``total_steps`` and, at exactly ``total_steps``, a clock
    no update uses, overshoots the last phase).
    Args: total (> 0); peak; initial (value at t=0, default ``peak / 25``); floor (final value, default
    ``initial / 1e4``); pct_start in (0, 1) (three phases: (0, 0.5)); three_phase; shape. Old names: start
    (initial), end (floor).
    Matches: torch 2.13 ``OneCycleLR`` (``max_lr=peak, initial=max_lr/div_factor,
    floor=initial/final_div_factor``; torch raises past ``total_steps``), also for momentum cycling, where the
    values run the other way (``initial`` and ``floor`` above ``peak``).

    >>> OneCycle(total=100)(29)
    1.0
    """

    name: ClassVar[str] = "one_cycle"
    renamed: ClassVar[Mapping[str, str]] = {"start": "initial", "end": "floor"}
    total: float | None = length_field()
    peak: float = 1.0
    initial: float | None = None
    floor: float | None = None
    pct_start: float = 0.3
    three_phase: bool = False
    shape: str = "cosine"
    start: InitVar[float | None] = NOT_GIVEN
    end: InitVar[float | None] = NOT_GIVEN

    def __post_init__(self, start: float | None, end: float | None) -> None:
        self._take_renamed(start=start, end=end)
        check_length("one_cycle.total", self.total)
        check_number("one_cycle.peak", self.peak)
        if self.initial is not None:
            check_number("one_cycle.initial", self.initial)
        if self.floor is not None:
            check_number("one_cycle.floor", self.floor)
        hi = 0.5 if self.three_phase else 1.0
        check_range("one_cycle.pct_start", self.pct_start, 0.0, hi, lo_open=True, hi_open=True)
        check_choice("one_cycle.shape", self.shape, ONECYCLE_SHAPES)
        if self.total is not None and self.total >= 1 and not self.pct_start * self.total > 1:
            raise ScheduleError(
                f"one_cycle: pct_start * total must be > 1 so that the rising phase has at least one step "
                f"(torch divides by zero); got pct_start={self.pct_start}, total={self.total}"
            )

    def _open_total_ok(self) -> bool:
        return False

    def _start(self) -> float:
        return self.peak / 25.0 if self.initial is None else self.initial

    def _end(self) -> float:
        return self._start() / 1e4 if self.floor is None else self.floor

    def _phases(self) -> list[tuple[float, float, float]]:
        """(end_step, from, to) per phase, torch's exact floats."""
        T = float(self.total)  # type: ignore[arg-type]
        s, p, e = self._start(), self.peak, self._end()
        if self.three_phase:
            return [(float(self.pct_start * T) - 1, s, p), (float(2 * self.pct_start * T) - 2, p, s),
                    (T - 1, s, e)]
        return [(float(self.pct_start * T) - 1, s, p), (T - 1, p, e)]

    def _anneal(self, a: float, b: float, pct: FloatArray) -> FloatArray:
        if self.shape == "cosine":
            return b + (a - b) / 2.0 * (np.cos(np.pi * pct) + 1)
        return (b - a) * pct + a

    def _values(self, t: FloatArray) -> FloatArray:
        t = np.minimum(t, float(self.total) - 1.0)  # type: ignore[arg-type]
        out = np.empty_like(t)
        done = np.zeros(t.shape, dtype=bool)
        begin = 0.0
        phases = self._phases()
        for n, (end_step, a, b) in enumerate(phases):
            sel = ~done if n == len(phases) - 1 else (~done & (t <= end_step))
            if sel.any():
                out[sel] = self._anneal(a, b, (t[sel] - begin) / (end_step - begin))
            done |= sel
            begin = end_step
        return out

    def bounds(self) -> tuple[float, float]:
        vals = (self._start(), self.peak, self._end())
        return (min(vals), max(vals))


CYCLIC_MODES = ("triangular", "triangular2", "exp_range")


@dataclass(frozen=True, kw_only=True, repr=False)
class Cyclic(Schedule):
    """Cyclical learning rate (Smith 2017): triangles between ``floor`` and ``peak``.

    Formula (torch's): ``cycle = floor(1 + t / (up + down))``, ``x = 1 + t / (up + down) - cycle``,
    ``s = x / r`` if ``x <= r`` else ``(x - 1) / (r - 1)`` with ``r = up / (up + down)``;
    value ``floor + (peak - floor) * s * g`` with ``g``: triangular 1; triangular2 ``1 / 2 ** (cycle - 1)``;
    exp_range ``gamma ** t``.
    Args: floor, peak (finite); up (> 0), down (> 0, default up) in clock units; mode; gamma (> 0). Old names:
    low (floor), high (peak).
    Matches: torch 2.13 ``CyclicLR`` (``base_lr=floor, max_lr=peak, step_size_up, step_size_down``; to the
    last bit).

    >>> Cyclic(floor=0.1, peak=1.0, up=10)(10)
    1.0
    """

    name: ClassVar[str] = "cyclic"
    renamed: ClassVar[Mapping[str, str]] = {"low": "floor", "high": "peak"}
    floor: float = 0.1
    peak: float = 1.0
    up: float = 2000.0
    down: float | None = None
    mode: str = "triangular"
    gamma: float = 1.0
    total: float | None = length_field()
    low: InitVar[float] = NOT_GIVEN
    high: InitVar[float] = NOT_GIVEN

    def __post_init__(self, low: float, high: float) -> None:
        self._take_renamed(low=low, high=high)
        check_number("cyclic.floor", self.floor)
        check_number("cyclic.peak", self.peak)
        check_positive("cyclic.up", self.up)
        if self.down is not None:
            check_positive("cyclic.down", self.down)
        check_choice("cyclic.mode", self.mode, CYCLIC_MODES)
        check_positive("cyclic.gamma", self.gamma)
        check_length("cyclic.total", self.total, allow_zero=True)

    def _values(self, t: FloatArray) -> FloatArray:
        up = float(self.up)
        down = up if self.down is None else float(self.down)
        size = up + down
        ratio = up / size
        cycle = np.floor(1 + t / size)
        x = 1.0 + t / size - cycle
        scale = np.where(x <= ratio, x / ratio, (x - 1) / (ratio - 1))
        height = (self.peak - self.floor) * scale
        if self.mode == "triangular":
            g = np.ones_like(t)
        elif self.mode == "triangular2":
            g = np.ldexp(1.0, (1 - cycle).astype(np.int64))  # 1 / 2 ** (cycle - 1), exact, no overflow
        else:
            g = np.power(self.gamma, t)
        return self.floor + height * g

    def bounds(self) -> tuple[float, float]:
        if self.mode == "exp_range" and self.gamma > 1:  # gamma ** t grows the triangles without bound
            return (self.floor, np.inf) if self.peak >= self.floor else (-np.inf, self.floor)
        return _ordered(self.floor, self.peak)


PIECEWISE_SHAPES = ("constant", "linear", "cosine")


@dataclass(frozen=True, kw_only=True, repr=False)
class Piecewise(Schedule):
    """A table: ``levels[i]`` at clock ``times[i]``, constant or interpolated between, held outside.

    Formula: constant: ``levels[number of times <= t]`` with ``len(levels) == len(times) + 1``;
    linear: ``a + pct * (b - a)``; cosine: ``b + (a - b) / 2 * (cos(pi * pct) + 1)`` between neighbours
    ``a = levels[i], b = levels[i + 1]``, ``pct = (t - times[i]) / (times[i + 1] - times[i])``
    (``len(levels) == len(times)``).
    Args: times (strictly increasing, >= 0, clock units); levels (finite); shape.
    Matches: optax 0.2.8 ``piecewise_constant_schedule`` (levels = cumulative products of its scales) and
    ``piecewise_interpolate_schedule`` (within a few ulps).

    >>> Piecewise(times=(0, 10), levels=(0.0, 1.0), shape="linear")(5)
    0.5
    """

    name: ClassVar[str] = "piecewise"
    times: tuple[float, ...] = ()
    levels: tuple[float, ...] = ()
    shape: str = "constant"
    total: float | None = length_field()

    def __post_init__(self) -> None:
        object.__setattr__(self, "times", tuple(float(x) for x in self.times))
        object.__setattr__(self, "levels", tuple(self.levels))
        check_choice("piecewise.shape", self.shape, PIECEWISE_SHAPES)
        for i, x in enumerate(self.times):
            check_nonneg(f"piecewise.times[{i}]", x)
        for i, v in enumerate(self.levels):
            check_number(f"piecewise.levels[{i}]", v)
        if any(b <= a for a, b in itertools.pairwise(self.times)):
            raise ScheduleError(f"piecewise.times must be strictly increasing, got {self.times}")
        want = len(self.times) + 1 if self.shape == "constant" else len(self.times)
        if len(self.levels) != want or not self.levels:
            rule = "len(times) + 1" if self.shape == "constant" else "len(times) (at least 1)"
            raise ScheduleError(
                f"piecewise.levels must hold {rule} numbers for shape={self.shape}, got {len(self.levels)} "
                f"values for {len(self.times)} times"
            )
        check_length("piecewise.total", self.total, allow_zero=True)

    def _values(self, t: FloatArray) -> FloatArray:
        times = np.asarray(self.times, dtype=np.float64)
        vals = np.asarray(self.levels, dtype=np.float64)
        if self.shape == "constant":
            return vals[np.searchsorted(times, t, side="right")]
        j = np.clip(np.searchsorted(times, t, side="right") - 1, 0, max(len(times) - 2, 0))
        out = np.where(t < times[0], vals[0], vals[-1])
        if len(times) >= 2:
            inside = (t >= times[0]) & (t < times[-1])
            a, b = vals[j], vals[j + 1]
            pct = (t - times[j]) / (times[j + 1] - times[j])
            if self.shape == "linear":
                mid = a + pct * (b - a)
            else:
                mid = b + (a - b) / 2.0 * (np.cos(np.pi * pct) + 1)
            out = np.where(inside, mid, out)
        return out

    def bounds(self) -> tuple[float, float]:
        return (min(self.levels), max(self.levels))
