"""timm's schedulers (``timm.scheduler``) in lrlab: the same classes' arguments, with the optimizer replaced by
``lr`` (a float, or a list of per-group base LRs). Nothing here imports timm or torch.

    >>> from lrlab.compat import timm
    >>> s = timm.CosineLRScheduler(0.1, t_initial=100, warmup_t=5, warmup_lr_init=1e-4)
    >>> s
    overlay(warmup(5, floor=0.0001, peak=0.1), base=cosine_restarts(100, limit=1, peak=0.1))
    >>> s(50)
    0.05

The value at ``t`` is the LR that ``step_update(num_updates=t)`` sets (``step(epoch=t)`` with
``t_in_epochs=True``, the default: then the clock counts epochs). ``t_in_epochs`` only chooses which of the two
calls updates the LR, so it does not change the values. Matches: timm 1.0.31 (cosine_lr, tanh_lr, step_lr,
multistep_lr, poly_lr, wsd_lr; plateau_lr is feedback-driven and not covered).

Shared arguments: ``warmup_t`` updates (or epochs) of linear warm-up from ``warmup_lr_init``;
``warmup_prefix=True`` starts the decay after the warm-up (`Join`), ``False`` lets the warm-up cover the start
of a decay that runs on the global clock (`Overlay`). ``cycle_limit`` cycles run, then ``lr_min`` holds
(``cycle_limit=0``: ``lr_min`` from the start, as timm computes it).

Where timm deviates from its own formula, or cannot be followed:

- The cycle index ``floor(log(1 - t / t_initial * (1 - cycle_mul), cycle_mul))`` can round one cycle early
  exactly on a restart (e.g. ``t_initial=1, cycle_mul=10`` at t=1000: timm gives ``lr_min``, the end of the old
  cycle, where the new one starts). lrlab restarts there.
- ``noise_range_t`` (random noise) and a callable ``decay_fn`` raise `ScheduleError`; ``cycle_mul < 1`` too
  (cycles that shrink until timm's logarithm fails).
- A ``lr_scale`` entry in a param group (timm multiplies by it) is optimizer state: pass the scaled LRs.
- Lengths are whole numbers of updates/epochs (``decay_t`` of ``StepLRScheduler`` >= 1).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence

from lrlab.compat import LR, Scheduled, check_lr, check_whole, join, per_group, unsupported, whole_length
from lrlab.compose import Clamp, Overlay, Product, Repeat, Sum
from lrlab.errors import ScheduleError
from lrlab.families import (
    Constant,
    Cooldown,
    CosineRestarts,
    InverseSqrt,
    MultiStep,
    Piecewise,
    Polynomial,
    Step,
    Tanh,
    Warmup,
)
from lrlab.schedule import Schedule, check_number, check_positive, check_range

__all__ = [
    "CosineLRScheduler",
    "MultiStepLRScheduler",
    "PolyLRScheduler",
    "StepLRScheduler",
    "TanhLRScheduler",
    "WSDLRScheduler",
]

#: most cycles PolyLRScheduler unrolls when cycles differ in length or height
MAX_POLY_CYCLES = 1000


def _no_noise(where: str, noise_range_t: object) -> None:
    if noise_range_t is not None:
        raise unsupported(where, "noise_range_t", "timm's noise is random (seeded per step); an lrlab schedule is "
                                                  "a deterministic function of the clock")


def _warmup(where: str, warmup_t: object, warmup_lr_init: object) -> tuple[float, float]:
    w = whole_length(f"{where}.warmup_t", warmup_t, minimum=0)
    init = check_lr(f"{where}.warmup_lr_init", warmup_lr_init)
    return w, init


def _with_warmup(main: Schedule, w: float, init: float, target: float, prefix: bool) -> Schedule:
    """timm's warm-up ``warmup_lr_init + t * (target - warmup_lr_init) / warmup_t`` over ``main``."""
    if not w:
        return main
    head = Warmup(total=w, floor=init, peak=target)
    return join([head, main]) if prefix else Overlay(head=head, base=main)


def _cycles(where: str, t_initial: object, lr_min: object, cycle_mul: object, cycle_decay: object,
            cycle_limit: object) -> tuple[float, float, float, float, int]:
    period = whole_length(f"{where}.t_initial", t_initial)
    floor = check_lr(f"{where}.lr_min", lr_min)
    mult = check_number(f"{where}.cycle_mul", cycle_mul)
    if mult < 1:
        raise unsupported(where, f"cycle_mul={mult}",
                          "cycles that shrink end in finite time, after which timm's logarithm fails; use >= 1")
    decay = check_positive(f"{where}.cycle_decay", cycle_decay)
    limit = check_whole(f"{where}.cycle_limit", cycle_limit)
    return period, floor, mult, decay, limit


def CosineLRScheduler(lr: LR, t_initial: int, lr_min: float = 0.0, cycle_mul: float = 1.0, cycle_decay: float = 1.0,
                      cycle_limit: int = 1, warmup_t: int = 0, warmup_lr_init: float = 0.0,
                      warmup_prefix: bool = False, t_in_epochs: bool = True,
                      noise_range_t: int | Sequence[int] | None = None, noise_pct: float = 0.67,
                      noise_std: float = 1.0, noise_seed: int = 42, k_decay: float = 1.0,
                      initialize: bool = True) -> Scheduled:
    """Cosine from the base LR to ``lr_min`` over ``t_initial``, with restarts (SGDR), warm-up and k-decay.

    Args:
      lr: base LR (or one per parameter group).
      t_initial: first cycle, whole number >= 1. lr_min: >= 0. cycle_mul: >= 1 (each cycle's length factor).
      cycle_decay: > 0 (each cycle's peak factor). cycle_limit: whole number >= 0 of cycles before ``lr_min``.
      warmup_t, warmup_lr_init, warmup_prefix: see the module docstring. k_decay: > 0 (``t**k / T**k``).
      t_in_epochs, noise_pct, noise_std, noise_seed, initialize: accepted; they do not change the values.
      noise_range_t: must be None.
    Returns:
      `CosineRestarts` under an optional warm-up (per group). Matches: ``timm.scheduler.CosineLRScheduler``, to
      the last bit after the warm-up (the warm-up within a few ulps).
    """
    where = "CosineLRScheduler"
    _no_noise(where, noise_range_t)
    period, floor, mult, decay, limit = _cycles(where, t_initial, lr_min, cycle_mul, cycle_decay, cycle_limit)
    k = check_positive(f"{where}.k_decay", k_decay)
    w, init = _warmup(where, warmup_t, warmup_lr_init)

    def build(b: float) -> Schedule:
        main: Schedule = (Constant(value=floor) if limit == 0 else
                          CosineRestarts(period=period, mult=mult, decay=decay, limit=limit, peak=b, floor=floor, k=k))
        return _with_warmup(main, w, init, b, bool(warmup_prefix))

    return per_group(f"{where}.lr", lr, build)


def TanhLRScheduler(lr: LR, t_initial: int, lb: float = -7.0, ub: float = 3.0, lr_min: float = 0.0,
                    cycle_mul: float = 1.0, cycle_decay: float = 1.0, cycle_limit: int = 1, warmup_t: int = 0,
                    warmup_lr_init: float = 0.0, warmup_prefix: bool = False, t_in_epochs: bool = True,
                    noise_range_t: int | Sequence[int] | None = None, noise_pct: float = 0.67,
                    noise_std: float = 1.0, noise_seed: int = 42, initialize: bool = True) -> Scheduled:
    """Hyperbolic-tangent decay ``lr_min + 0.5 * (peak - lr_min) * (1 - tanh(lb * (1 - r) + ub * r))`` with
    restarts. Without ``warmup_prefix`` the warm-up ramps to the decay's value at ``warmup_t`` (timm's rule).

    Args:
      lr: base LR (or one per parameter group).
      t_initial: whole number >= 1. lb < ub. lr_min: >= 0. cycle_mul, cycle_decay, cycle_limit: as
        `CosineLRScheduler`. warmup_t, warmup_lr_init (>= 0), warmup_prefix: see the module docstring.
      t_in_epochs, noise_pct, noise_std, noise_seed, initialize: accepted; noise_range_t: must be None.
    Returns:
      `Tanh` under an optional warm-up (per group). Matches: ``timm.scheduler.TanhLRScheduler`` within a few ulps
      (NumPy's tanh and the C library's differ in the last bits).
    """
    where = "TanhLRScheduler"
    _no_noise(where, noise_range_t)
    period, floor, mult, decay, limit = _cycles(where, t_initial, lr_min, cycle_mul, cycle_decay, cycle_limit)
    lo = check_number(f"{where}.lb", lb)
    hi = check_number(f"{where}.ub", ub)
    if not lo < hi:
        raise ScheduleError(f"{where}: lb must be < ub, got lb={lo}, ub={hi}")
    w, init = _warmup(where, warmup_t, warmup_lr_init)

    def build(b: float) -> Schedule:
        main: Schedule = (Constant(value=floor) if limit == 0 else
                          Tanh(period=period, lb=lo, ub=hi, mult=mult, decay=decay, limit=limit, peak=b, floor=floor))
        target = b if warmup_prefix else main(w)
        return _with_warmup(main, w, init, target, bool(warmup_prefix))

    return per_group(f"{where}.lr", lr, build)


def StepLRScheduler(lr: LR, decay_t: float, decay_rate: float = 1.0, warmup_t: int = 0, warmup_lr_init: float = 0.0,
                    warmup_prefix: bool = True, t_in_epochs: bool = True,
                    noise_range_t: int | Sequence[int] | None = None, noise_pct: float = 0.67,
                    noise_std: float = 1.0, noise_seed: int = 42, initialize: bool = True) -> Scheduled:
    """``lr * decay_rate ** (t // decay_t)`` after an optional warm-up (a prefix by default).

    Args:
      lr: base LR (or one per parameter group).
      decay_t: clock units between decays, >= 1. decay_rate: > 0.
      warmup_t, warmup_lr_init, warmup_prefix: see the module docstring.
      t_in_epochs, noise_pct, noise_std, noise_seed, initialize: accepted; noise_range_t: must be None.
    Returns:
      `Step` under an optional warm-up (per group). Matches: ``timm.scheduler.StepLRScheduler``.
    """
    where = "StepLRScheduler"
    _no_noise(where, noise_range_t)
    every = check_number(f"{where}.decay_t", decay_t)
    if every < 1:
        raise ScheduleError(f"{where}.decay_t must be >= 1 clock unit, got {every}")
    rate = check_positive(f"{where}.decay_rate", decay_rate)
    w, init = _warmup(where, warmup_t, warmup_lr_init)
    return per_group(f"{where}.lr", lr, lambda b: _with_warmup(Step(every=every, factor=rate, peak=b), w, init, b,
                                                               bool(warmup_prefix)))


def MultiStepLRScheduler(lr: LR, decay_t: Sequence[float], decay_rate: float = 1.0, warmup_t: int = 0,
                         warmup_lr_init: float = 0.0, warmup_prefix: bool = True, t_in_epochs: bool = True,
                         noise_range_t: int | Sequence[int] | None = None, noise_pct: float = 0.67,
                         noise_std: float = 1.0, noise_seed: int = 42, initialize: bool = True) -> Scheduled:
    """``lr * decay_rate ** (number of milestones m with m <= t + 1)``: timm's convention applies milestone
    ``m`` at clock ``m - 1``, one step before torch's ``MultiStepLR`` (kept by timm for compatibility).

    Args:
      lr: base LR (or one per parameter group).
      decay_t: milestones, sorted (timm bisects them); a repeated one decays twice. decay_rate: > 0.
      warmup_t, warmup_lr_init, warmup_prefix: see the module docstring.
      t_in_epochs, noise_pct, noise_std, noise_seed, initialize: accepted; noise_range_t: must be None.
    Returns:
      `MultiStep` at ``m - 1`` (or `Piecewise` where a milestone is repeated, below 2 or fractional), under an
      optional warm-up (per group). Matches: ``timm.scheduler.MultiStepLRScheduler``.
    """
    where = "MultiStepLRScheduler"
    _no_noise(where, noise_range_t)
    ms = [check_number(f"{where}.decay_t[{i}]", m) for i, m in enumerate(decay_t)]
    if any(b < a for a, b in itertools.pairwise(ms)):
        raise ScheduleError(f"{where}.decay_t must be sorted (timm bisects it), got {list(decay_t)}")
    rate = check_positive(f"{where}.decay_rate", decay_rate)
    w, init = _warmup(where, warmup_t, warmup_lr_init)
    switch = [m - 1.0 for m in ms]
    before = sum(1 for x in switch if x < 0)  # milestones <= 0 apply from the start
    counts = sorted(Counter(x for x in switch if x >= 0).items())
    times = tuple(x for x, _ in counts)
    clean = all(c == 1 for _, c in counts) and all(x >= 1 and x.is_integer() for x in times)

    def build(b: float) -> Schedule:
        main: Schedule
        if not times:
            main = Constant(value=b * rate**before)
        elif clean and before == 0:
            main = MultiStep(milestones=times, factor=rate, peak=b)
        else:
            ks, k = [], before
            for _, c in counts:
                k += c
                ks.append(k)
            main = Piecewise(times=times, levels=(b * rate**before, *(b * rate**k for k in ks)))
        return _with_warmup(main, w, init, b, bool(warmup_prefix))

    return per_group(f"{where}.lr", lr, build)


def PolyLRScheduler(lr: LR, t_initial: int, power: float = 0.5, lr_min: float = 0.0, cycle_mul: float = 1.0,
                    cycle_decay: float = 1.0, cycle_limit: int = 1, warmup_t: int = 0, warmup_lr_init: float = 0.0,
                    warmup_prefix: bool = False, t_in_epochs: bool = True,
                    noise_range_t: int | Sequence[int] | None = None, noise_pct: float = 0.67,
                    noise_std: float = 1.0, noise_seed: int = 42, k_decay: float = 1.0,
                    initialize: bool = True) -> Scheduled:
    """Polynomial decay ``lr_min + (peak - lr_min) * (1 - u**k / L**k) ** power`` over each cycle, with restarts.

    Args:
      lr: base LR (or one per parameter group).
      t_initial: whole number >= 1. power: > 0. lr_min: >= 0. cycle_mul (>= 1), cycle_decay (> 0),
        cycle_limit (>= 0; at most `MAX_POLY_CYCLES` when cycles differ in length or peak): as
        `CosineLRScheduler`. warmup_t, warmup_lr_init, warmup_prefix: see the module docstring.
      k_decay: > 0 (``u**k / L**k``). t_in_epochs, noise_pct, noise_std, noise_seed, initialize: accepted;
      noise_range_t: must be None.
    Returns:
      `Polynomial`, `Repeat` of it, or a `Join` of one per cycle, under an optional warm-up (per group).
      Matches: ``timm.scheduler.PolyLRScheduler``, to the last bit after the warm-up.
    """
    where = "PolyLRScheduler"
    _no_noise(where, noise_range_t)
    period, floor, mult, decay, limit = _cycles(where, t_initial, lr_min, cycle_mul, cycle_decay, cycle_limit)
    p = check_positive(f"{where}.power", power)
    k = check_positive(f"{where}.k_decay", k_decay)
    if limit > MAX_POLY_CYCLES and (mult != 1.0 or decay != 1.0):
        raise ScheduleError(f"{where}: cycle_limit ({limit}) must be <= {MAX_POLY_CYCLES} when cycles change length "
                            "or height (each cycle is a piece of the schedule)")
    w, init = _warmup(where, warmup_t, warmup_lr_init)

    def build(b: float) -> Schedule:
        main: Schedule
        if limit == 0:
            main = Constant(value=floor)
        elif mult == 1.0 and decay == 1.0:
            one = Polynomial(peak=b, floor=floor, power=p, k=k, total=period)
            main = one if limit == 1 else Repeat(inner=one, times=limit)
        else:
            # cycle i starts where timm puts it, (1 - mult**i) / (1 - mult) * t_initial, and peaks at b * decay**i
            def start(i: int) -> float:
                return period * i if mult == 1.0 else (1 - mult**i) / (1 - mult) * period

            pieces: list[Schedule] = [
                Polynomial(peak=b * decay**i, floor=floor, power=p, k=k, total=start(i + 1) - start(i))
                for i in range(limit)
            ]
            main = join([*pieces, Constant(value=floor)])
        return _with_warmup(main, w, init, b, bool(warmup_prefix))

    return per_group(f"{where}.lr", lr, build)


_STABLE_FNS = ("constant", "rsqrt", "power")
_DECAY_FNS = {"linear": "linear", "1-sqrt": "sqrt", "cosine": "cosine", "power": "power", "exp": "exp"}


def WSDLRScheduler(lr: LR, t_initial: int, decay_t: int, lr_min: float = 0.0, stable_fn: str = "constant",
                   stable_timescale: float | None = None, stable_power: float = 0.5, decay_fn: object = "1-sqrt",
                   decay_power: float = 0.5, decay_ratio: float = 0.1, warmup_t: int = 0,
                   warmup_lr_init: float = 0.0, t_in_epochs: bool = True,
                   noise_range_t: int | Sequence[int] | None = None, noise_pct: float = 0.67,
                   noise_std: float = 1.0, noise_seed: int = 42, initialize: bool = True) -> Scheduled:
    """Warmup-stable-decay: ``lr(t) = lr_min + (max(base * stable(t_s), lr_min) - lr_min) * decay(frac)``,
    ``t_s`` the clock after the warm-up (always a prefix), the decay over the last ``decay_t`` of
    ``t_initial``; ``lr_min`` after ``warmup_t + t_initial``.

    Args:
      lr: base LR (or one per parameter group).
      t_initial: stable + decay length, whole number >= 1. decay_t: whole number in [1, t_initial].
      lr_min: >= 0. stable_fn: constant, rsqrt or power; stable_timescale (> 0, default warmup_t),
        stable_power (> 0). decay_fn: linear, 1-sqrt, cosine, power, exp (a callable raises);
        decay_power (> 0); decay_ratio (in (0, 1)). warmup_t, warmup_lr_init: the warm-up.
      t_in_epochs, noise_pct, noise_std, noise_seed, initialize: accepted; noise_range_t: must be None.
    Returns:
      ``warmup >> (constant >> cooldown)`` for a constant stable phase; with a decaying one, ``stable *
      (constant(1) >> cooldown(to 0))``, shifted to ``lr_min`` by a `Sum` when ``lr_min > 0`` (per group).
      Matches: ``timm.scheduler.WSDLRScheduler``, to the last bit for a constant stable phase (a few ulps
      otherwise).
    """
    where = "WSDLRScheduler"
    _no_noise(where, noise_range_t)
    T = check_whole(f"{where}.t_initial", t_initial, 1)
    d = check_number(f"{where}.decay_t", decay_t)
    if not 0 < d <= T or not float(d).is_integer():
        raise ScheduleError(f"{where}: invalid decay_t ({decay_t}), must be a whole number in (0, t_initial] "
                            f"w/ t_initial={T}")
    floor = check_lr(f"{where}.lr_min", lr_min)
    if stable_fn not in _STABLE_FNS:
        raise ScheduleError(f"{where}: invalid stable_fn ({stable_fn!r}), must be one of {', '.join(_STABLE_FNS)}")
    if callable(decay_fn):
        raise unsupported(where, "a callable decay_fn", "a callable cannot be part of a schedule value")
    if decay_fn not in _DECAY_FNS:
        raise ScheduleError(f"{where}: invalid decay_fn ({decay_fn!r}), must be one of {', '.join(_DECAY_FNS)}")
    ratio = check_range(f"{where}.decay_ratio", decay_ratio, 0.0, 1.0, lo_open=True, hi_open=True)
    dpow = check_positive(f"{where}.decay_power", decay_power)
    spow = check_positive(f"{where}.stable_power", stable_power)
    w, init = _warmup(where, warmup_t, warmup_lr_init)
    ts = 0.0
    if stable_fn != "constant":
        ts = check_number(f"{where}.stable_timescale", w if stable_timescale is None else stable_timescale)
        if ts <= 0:
            raise ScheduleError(f"{where}: stable_fn={stable_fn} requires a positive stable_timescale; it defaults "
                                f"to warmup_t ({w:g}): set it explicitly when there is no warm-up")
    shape = _DECAY_FNS[str(decay_fn)]
    flat = float(T) - d

    def cooldown(top: float, bottom: float) -> Schedule:
        return Cooldown(total=d, shape=shape, peak=top, floor=bottom, power=dpow, ratio=ratio)

    def build(b: float) -> Schedule:
        main: Schedule
        if stable_fn == "constant":
            top = max(b, floor)
            main = join([Constant(value=top, total=flat), cooldown(top, floor)] if flat else [cooldown(top, floor)])
        else:
            power = 0.5 if stable_fn == "rsqrt" else spow
            stable: Schedule = InverseSqrt(timescale=ts, peak=b, power=power)
            if floor > 0:
                stable = Clamp(inner=stable, min=floor)
            fall = join([Constant(value=1.0, total=flat), cooldown(1.0, 0.0)] if flat else [cooldown(1.0, 0.0)])
            if floor > 0:
                main = Sum(terms=(Constant(value=floor),
                                  Product(factors=(Sum(terms=(stable, Constant(value=-floor))), fall))))
            else:
                main = Product(factors=(stable, fall))
        return _with_warmup(main, w, init, b, True)

    return per_group(f"{where}.lr", lr, build)
