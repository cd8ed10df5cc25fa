"""``optax.schedules`` in lrlab: every schedule constructor, with optax's argument names, returning one lrlab
schedule of absolute values (optax has no optimizer-held base LR). Nothing here imports jax or optax.

    >>> from lrlab.compat import optax
    >>> s = optax.warmup_cosine_decay_schedule(0.0, 1e-3, warmup_steps=100, decay_steps=1000, end_value=1e-5)
    >>> s(0), s(100), s(5000)
    (0.0, 0.001, 1e-05)

The value at ``t`` is ``schedule(t)``, the value for the optimizer's update count ``t``. optax computes in
float32 unless ``jax_enable_x64`` is set; lrlab always computes in float64, so compare with x64 enabled.
Matches: optax 0.2.8 (tests/test_compat_parity.py compares at ``rel=1e-12``): ``polynomial_schedule``,
``linear_schedule``, ``piecewise_*``, ``exponential_decay`` and the warm-ups within a few ulps (most values to
the last bit); the cosine within a few ulps (optax multiplies ``init_value * ((1 - alpha) * c + alpha)``, lrlab
``(peak - floor) * c + floor``; see `cosine_decay_schedule` for long cosines decaying to 0).

Where optax repairs its input, lrlab reproduces the repaired values and warns (`lrlab.compat.PeerWarning`):
a constant ``init_value`` for ``transition_steps <= 0`` (``polynomial_schedule``, ``linear_schedule``,
``exponential_decay``; so ``warmup_constant_schedule(warmup_steps=0)`` stays at ``init_value`` forever) and for
``decay_rate == 0``; a negative ``transition_begin`` moved to 0. So it does for a negative value argument
(``init_value``, ``peak_value``, ``end_value``, ``alpha``), which optax turns into negative learning rates (an
optimizer then climbs the loss); lrlab's ``bind(total)`` refuses such a schedule, so use it as returned. NaN and
infinite values raise `ScheduleError`, as do the inputs optax itself refuses (``decay_steps <= 0``, negative
``boundaries_and_scales``). ``join_schedules`` needs ``len(boundaries) == len(schedules) - 1`` and
non-decreasing boundaries >= 0 (optax silently drops extra entries and lets a later boundary override).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lrlab.compat import at_milestones, join, peer_quirk, whole_length
from lrlab.compose import Clamp, Product
from lrlab.errors import ScheduleError
from lrlab.families import Constant, Cosine, Exponential, Piecewise, Polynomial
from lrlab.schedule import Schedule, check_number, check_positive

__all__ = [
    "constant_schedule",
    "cosine_decay_schedule",
    "cosine_onecycle_schedule",
    "exponential_decay",
    "join_schedules",
    "linear_onecycle_schedule",
    "linear_schedule",
    "piecewise_constant_schedule",
    "piecewise_interpolate_schedule",
    "polynomial_schedule",
    "sgdr_schedule",
    "warmup_constant_schedule",
    "warmup_cosine_decay_schedule",
    "warmup_exponential_decay_schedule",
]


def _value(where: str, value: object) -> float:
    """A value argument (an LR): any finite number; a negative one is optax's, reproduced with a warning."""
    v = check_number(where, value)
    if v < 0:
        peer_quirk(where, f"{v:g} < 0 gives negative learning rates, which optax accepts (the optimizer then "
                          "climbs the loss)")
    return v


def _begin(where: str, transition_begin: object) -> float:
    b = check_number(f"{where}.transition_begin", transition_begin)
    if b < 0:
        peer_quirk(where, f"transition_begin={b:g} < 0 is moved to 0 by optax")
        return 0.0
    return float(whole_length(f"{where}.transition_begin", b, minimum=0))


def _held(where: str, name: str, value: object, init: float) -> Constant | None:
    """optax's repair of ``transition_steps <= 0``: the schedule is the constant ``init_value``."""
    v = check_number(f"{where}.{name}", value)
    if v > 0:
        return None
    peer_quirk(where, f"{name}={v:g} <= 0 makes optax hold init_value ({init:g}) at every step")
    return Constant(value=init)


def _steps(where: str, name: str, value: object) -> float:
    v = check_number(f"{where}.{name}", value)
    if v <= 0:
        raise ScheduleError(f"{where}.{name} must be >= 1 (optax raises for {v:g}), got {v:g}")
    return whole_length(f"{where}.{name}", v)


def _delayed(begin: float, init: float, s: Schedule) -> Schedule:
    return join([Constant(value=init, total=begin), s]) if begin else s


def constant_schedule(value: float) -> Schedule:
    """``value`` at every step.

    Args:
      value: a finite number (negative: reproduced with a warning).
    Returns:
      `Constant`. Matches: ``optax.constant_schedule``.
    """
    return Constant(value=_value("constant_schedule.value", value))


def polynomial_schedule(init_value: float, end_value: float, power: float, transition_steps: int,
                        transition_begin: int = 0) -> Schedule:
    """``(init - end) * (1 - min(t - begin, steps) / steps) ** power + end``; ``init_value`` before
    ``transition_begin``, ``end_value`` after the transition.

    Args:
      init_value, end_value: finite numbers. power: > 0.
      transition_steps: whole number (<= 0: the constant ``init_value``, as optax, with a warning).
      transition_begin: whole number (< 0: 0, as optax, with a warning).
    Returns:
      `Polynomial`, joined after a `Constant` when ``transition_begin > 0``. Matches: ``optax.polynomial_schedule``.
    """
    where = "polynomial_schedule"
    init = _value(f"{where}.init_value", init_value)
    end = _value(f"{where}.end_value", end_value)
    p = check_positive(f"{where}.power", power)
    held = _held(where, "transition_steps", transition_steps, init)
    if held is not None:
        return held
    steps = whole_length(f"{where}.transition_steps", transition_steps)
    begin = _begin(where, transition_begin)
    return _delayed(begin, init, Polynomial(peak=init, floor=end, power=p, total=steps))


def linear_schedule(init_value: float, end_value: float, transition_steps: int, transition_begin: int = 0) -> Schedule:
    """`polynomial_schedule` with ``power=1``: a straight line from ``init_value`` to ``end_value``.

    Args: as `polynomial_schedule`.
    Returns:
      `Polynomial` (power 1). Matches: ``optax.linear_schedule``.
    """
    where = "linear_schedule"
    init = _value(f"{where}.init_value", init_value)
    end = _value(f"{where}.end_value", end_value)
    held = _held(where, "transition_steps", transition_steps, init)
    if held is not None:
        return held
    steps = whole_length(f"{where}.transition_steps", transition_steps)
    begin = _begin(where, transition_begin)
    return _delayed(begin, init, Polynomial(peak=init, floor=end, power=1.0, total=steps))


def _scales(where: str, boundaries_and_scales: Mapping[Any, float] | None) -> list[tuple[float, float]]:
    items = sorted((boundaries_and_scales or {}).items())
    out = []
    for b, s in items:
        bb = check_number(f"{where}.boundaries_and_scales key", b)
        ss = check_number(f"{where}.boundaries_and_scales[{b!r}]", s)
        if ss < 0:
            raise ScheduleError(f"{where} expects non-negative scale factors, got {ss:g} at boundary {b!r}")
        out.append((bb, ss))
    return out


def piecewise_constant_schedule(init_value: float,
                                boundaries_and_scales: Mapping[int, float] | None = None) -> Schedule:
    """``init_value`` multiplied by each scale whose boundary is <= t.

    Args:
      init_value: finite number. boundaries_and_scales: step -> factor (>= 0); a boundary <= 0 applies from
        the start.
    Returns:
      A constant-shape `Piecewise` (levels are the running products, in optax's order). Matches:
      ``optax.piecewise_constant_schedule``.
    """
    where = "piecewise_constant_schedule"
    v = _value(f"{where}.init_value", init_value)
    times: list[float] = []
    levels = [v]
    for b, s in _scales(where, boundaries_and_scales):
        v = s * v
        if b <= 0:
            levels[0] = v
        else:
            times.append(b)
            levels.append(v)
    if not times:
        return Constant(value=levels[0])
    return Piecewise(times=tuple(times), levels=tuple(levels))


def piecewise_interpolate_schedule(interpolate_type: str, init_value: float,
                                   boundaries_and_scales: Mapping[int, float] | None = None) -> Schedule:
    """Interpolate (linear or cosine) between the running products of the scales, from step 0 to each boundary.

    Args:
      interpolate_type: linear or cosine. init_value: finite number.
      boundaries_and_scales: whole-number step >= 0 -> factor (>= 0).
    Returns:
      `Piecewise` with ``times = (0, *boundaries)``. Matches: ``optax.piecewise_interpolate_schedule``.
    """
    where = "piecewise_interpolate_schedule"
    if interpolate_type not in ("linear", "cosine"):
        raise ScheduleError(f"{where}.interpolate_type must be either 'cosine' or 'linear', got {interpolate_type!r}")
    return _interpolated(where, interpolate_type, _value(f"{where}.init_value", init_value), boundaries_and_scales)


def _interpolated(where: str, interpolate_type: str, v: float,
                  boundaries_and_scales: Mapping[int, float] | None) -> Schedule:
    items = _scales(where, boundaries_and_scales)
    times = [0.0]
    levels = [v]
    for b, s in items:
        bb = whole_length(f"{where}.boundaries_and_scales key", b, minimum=0)
        v = v * s
        if bb == 0:
            levels[0] = v  # the interval [0, 0) is empty: the schedule starts at the scaled value
        else:
            times.append(bb)
            levels.append(v)
    if len(times) == 1:
        return Constant(value=levels[0])
    return Piecewise(times=tuple(times), levels=tuple(levels), shape=interpolate_type)


def exponential_decay(init_value: float, transition_steps: int, decay_rate: float, transition_begin: int = 0,
                      staircase: bool = False, end_value: float | None = None) -> Schedule:
    """``init * decay_rate ** ((t - begin) / transition_steps)`` from ``transition_begin`` on (``init`` before),
    clipped at ``end_value`` (a floor when decaying, a ceiling when growing).

    Args:
      init_value: finite number. transition_steps: whole number (<= 0: the constant ``init_value``, as optax,
        with a warning). decay_rate: > 0 (0: the constant ``init_value``, as optax, with a warning).
      transition_begin: whole number (< 0: 0, with a warning). staircase: floor the exponent. end_value:
        optional bound.
    Returns:
      `Exponential`, after a `Constant` when delayed, in a `Clamp` when bounded. Matches:
      ``optax.exponential_decay``.
    """
    where = "exponential_decay"
    init = _value(f"{where}.init_value", init_value)
    held = _held(where, "transition_steps", transition_steps, init)
    if held is not None:
        return held
    steps = whole_length(f"{where}.transition_steps", transition_steps)
    rate = check_number(f"{where}.decay_rate", decay_rate)
    if rate == 0:
        peer_quirk(where, f"decay_rate=0 makes optax hold init_value ({init:g}) at every step")
        return Constant(value=init)
    if rate < 0:
        raise ScheduleError(f"{where}.decay_rate must be > 0 (optax's decay_rate ** (t / steps) is NaN for a "
                            f"negative rate), got {rate:g}")
    begin = _begin(where, transition_begin)
    s = _delayed(begin, init, Exponential(gamma=rate, every=steps, staircase=bool(staircase), peak=init))
    if end_value is None:
        return s
    end = _value(f"{where}.end_value", end_value)
    return Clamp(inner=s, min=end) if rate < 1.0 else Clamp(inner=s, max=end)


def cosine_decay_schedule(init_value: float, decay_steps: int, alpha: float = 0.0, exponent: float = 1.0) -> Schedule:
    """``init * ((1 - alpha) * c ** exponent + alpha)``, ``c = 0.5 * (1 + cos(pi * min(t, steps) / steps))``.

    Args:
      init_value: finite number. decay_steps: whole number >= 1. alpha: the floor as a fraction of
        init_value (a finite number; a negative floor is reproduced with a warning). exponent: > 0.
    Returns:
      `Cosine` (which holds its floor after ``decay_steps``). Matches: ``optax.cosine_decay_schedule`` within a
      few ulps; near the end of a long cosine with ``alpha=0`` the value is a small difference of rounded
      numbers and both sides round ``pi * t / T`` differently: relative 6.5e-13 at ``decay_steps=20000``
      (1e-12 is reached with ``exponent != 1`` around ``decay_steps=20000``). With a negative ``alpha`` the
      values cross 0, where differences in rounding show the most, so the cosine is then written in optax's
      order, ``init_value * cosine(peak=1, floor=alpha)``: within 1e-12 of the largest value near the crossing.
    """
    where = "cosine_decay_schedule"
    init = _value(f"{where}.init_value", init_value)
    steps = _steps(where, "decay_steps", decay_steps)
    a = _value(f"{where}.alpha", alpha)
    return _cosine(init, steps, a, check_positive(f"{where}.exponent", exponent))


def _cosine(init: float, steps: float, alpha: float, exponent: float) -> Schedule:
    if alpha < 0 and init != 0:
        return Product(factors=(Constant(value=init), Cosine(peak=1.0, floor=alpha, total=steps, exponent=exponent)))
    return Cosine(peak=init, floor=init * alpha, total=steps, exponent=exponent)


def linear_onecycle_schedule(transition_steps: int, peak_value: float, pct_start: float = 0.3,
                             pct_final: float = 0.85, div_factor: float = 25.0,
                             final_div_factor: float = 1e4) -> Schedule:
    """One cycle, linear: ``peak / div_factor`` up to ``peak`` at ``pct_start``, back down at ``pct_final``, then
    to ``peak / div_factor / final_div_factor`` at ``transition_steps``.

    Args:
      transition_steps: whole number >= 1. peak_value: finite. pct_start, pct_final: in [0, 1] (boundaries
        ``int(pct * transition_steps)``; equal ones collapse as in optax's dict). div_factor,
        final_div_factor: > 0.
    Returns:
      A linear `Piecewise`. Matches: ``optax.linear_onecycle_schedule``.
    """
    where = "linear_onecycle_schedule"
    steps = int(_steps(where, "transition_steps", transition_steps))
    peak = _value(f"{where}.peak_value", peak_value)
    div = check_positive(f"{where}.div_factor", div_factor)
    final = check_positive(f"{where}.final_div_factor", final_div_factor)
    pct0 = check_number(f"{where}.pct_start", pct_start)
    pct1 = check_number(f"{where}.pct_final", pct_final)
    table = {int(pct0 * steps): div, int(pct1 * steps): 1.0 / div, steps: 1.0 / final}
    return _interpolated(where, "linear", peak / div, table)


def cosine_onecycle_schedule(transition_steps: int, peak_value: float, pct_start: float = 0.3,
                             div_factor: float = 25.0, final_div_factor: float = 1e4) -> Schedule:
    """One cycle, cosine: ``peak / div_factor`` up to ``peak`` at ``pct_start``, then down to
    ``peak / (div_factor * final_div_factor)`` at ``transition_steps``.

    Args:
      transition_steps: whole number >= 1. peak_value: finite. pct_start: in [0, 1]. div_factor,
        final_div_factor: > 0.
    Returns:
      A cosine `Piecewise`. Matches: ``optax.cosine_onecycle_schedule``.
    """
    where = "cosine_onecycle_schedule"
    steps = int(_steps(where, "transition_steps", transition_steps))
    peak = _value(f"{where}.peak_value", peak_value)
    div = check_positive(f"{where}.div_factor", div_factor)
    final = check_positive(f"{where}.final_div_factor", final_div_factor)
    pct0 = check_number(f"{where}.pct_start", pct_start)
    table = {int(pct0 * steps): div, steps: 1.0 / (div * final)}
    return _interpolated(where, "cosine", peak / div, table)


def _warmup(where: str, init: float, peak: float, warmup_steps: object) -> tuple[float, Schedule | None]:
    w = whole_length(f"{where}.warmup_steps", warmup_steps, minimum=0)
    return w, (Polynomial(peak=init, floor=peak, power=1.0, total=w) if w else None)


def warmup_constant_schedule(init_value: float, peak_value: float, warmup_steps: int) -> Schedule:
    """A linear warm-up from ``init_value`` to ``peak_value``, then ``peak_value``.

    Args:
      init_value, peak_value: finite. warmup_steps: whole number >= 0 (0: optax's ``linear_schedule`` holds
        ``init_value`` forever, reproduced with a warning).
    Returns:
      `Polynomial` (power 1), which holds its end. Matches: ``optax.warmup_constant_schedule``.
    """
    where = "warmup_constant_schedule"
    init = _value(f"{where}.init_value", init_value)
    peak = _value(f"{where}.peak_value", peak_value)
    _, ramp = _warmup(where, init, peak, warmup_steps)
    if ramp is None:
        peer_quirk(where, f"warmup_steps=0 makes optax hold init_value ({init:g}) at every step, never peak_value")
        return Constant(value=init)
    return ramp


def warmup_cosine_decay_schedule(init_value: float, peak_value: float, warmup_steps: int, decay_steps: int,
                                 end_value: float = 0.0, exponent: float = 1.0) -> Schedule:
    """A linear warm-up from ``init_value`` to ``peak_value`` over ``warmup_steps``, then a cosine to
    ``end_value`` at ``decay_steps`` (counted from 0, warm-up included), held after.

    Args:
      init_value, peak_value, end_value: finite numbers (negative: reproduced with a warning). warmup_steps:
        whole number >= 0. decay_steps: whole number > warmup_steps. exponent: > 0.
    Returns:
      ``polynomial(power=1) >> cosine``. Matches: ``optax.warmup_cosine_decay_schedule``.
    """
    where = "warmup_cosine_decay_schedule"
    init = _value(f"{where}.init_value", init_value)
    peak = _value(f"{where}.peak_value", peak_value)
    end = _value(f"{where}.end_value", end_value)
    w, ramp = _warmup(where, init, peak, warmup_steps)
    total = check_number(f"{where}.decay_steps", decay_steps)
    if not total > w:
        raise ScheduleError(f"{where}: decay_steps ({total:g}) must be > warmup_steps ({w:g}); optax's cosine "
                            "needs a positive decay_steps - warmup_steps")
    alpha = 0.0 if peak == 0.0 else end / peak
    steps = _steps(where, "decay_steps - warmup_steps", int(total - w))
    cos = _cosine(peak, steps, alpha, check_positive(f"{where}.exponent", exponent))
    return join([ramp, cos] if ramp is not None else [cos])


def warmup_exponential_decay_schedule(init_value: float, peak_value: float, warmup_steps: int,
                                      transition_steps: int, decay_rate: float, transition_begin: int = 0,
                                      staircase: bool = False, end_value: float | None = None) -> Schedule:
    """A linear warm-up to ``peak_value``, then `exponential_decay` from ``peak_value`` on its own clock.

    Args:
      init_value, peak_value: finite. warmup_steps: whole number >= 0. The rest: as `exponential_decay`.
    Returns:
      ``polynomial(power=1) >> exponential``. Matches: ``optax.warmup_exponential_decay_schedule``.
    """
    where = "warmup_exponential_decay_schedule"
    init = _value(f"{where}.init_value", init_value)
    peak = _value(f"{where}.peak_value", peak_value)
    _, ramp = _warmup(where, init, peak, warmup_steps)
    decay = exponential_decay(peak, transition_steps, decay_rate, transition_begin=transition_begin,
                              staircase=staircase, end_value=end_value)
    return join([ramp, decay] if ramp is not None else [decay])


def sgdr_schedule(cosine_kwargs: Iterable[Mapping[str, Any]]) -> Schedule:
    """Warm restarts: one `warmup_cosine_decay_schedule` per entry, each lasting its ``decay_steps``.

    Args:
      cosine_kwargs: dicts of `warmup_cosine_decay_schedule` arguments (``init_value``, ``peak_value``,
        ``warmup_steps``, ``decay_steps`` required; ``end_value``, ``exponent`` optional).
    Returns:
      A `Join` of them. Matches: ``optax.sgdr_schedule``.
    """
    pieces = []
    for i, kw in enumerate(cosine_kwargs):
        if "decay_steps" not in kw:
            raise ScheduleError(f"sgdr_schedule: cosine_kwargs[{i}] needs decay_steps, got keys {sorted(kw)}")
        try:
            pieces.append(warmup_cosine_decay_schedule(**kw))
        except TypeError as e:
            raise ScheduleError(f"sgdr_schedule: cosine_kwargs[{i}]: {e}") from None
    if not pieces:
        raise ScheduleError("sgdr_schedule needs at least one cosine_kwargs entry")
    return join(pieces)


def join_schedules(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    """Schedule ``i`` from step ``boundaries[i - 1]`` on, seeing the steps since that boundary.

    Args:
      schedules: lrlab schedules (e.g. from this module).
      boundaries: ``len(schedules) - 1`` whole numbers >= 0, non-decreasing.
    Returns:
      A `Join`; a piece whose segment differs from its own length is cut or extended with its own formula
      (`lrlab.compat.fit`). Matches: ``optax.join_schedules``.
    """
    return at_milestones("join_schedules", list(schedules), list(boundaries))
