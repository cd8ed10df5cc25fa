"""lrlab's formulas in ``jax.numpy``: a schedule as a traced, jittable, exportable and differentiable function.

`evaluate(schedule, params, t)` computes what ``schedule.values(t)`` computes, with the same operations in the same
order (one function per family below, each a transcription of its NumPy formula in `lrlab.families` or
`lrlab.compose`), so it runs inside ``jax.jit``, ``jax.vmap`` and ``jax.grad`` and serializes with ``jax.export``.
`parameters(schedule)` is the pytree of the schedule's value parameters (``peak``, ``floor``, ``initial``, ``value``,
``factor``, ``levels`` ...), mirroring its structure; differentiate `evaluate` with respect to it. Lengths, counts,
shapes and the switches that select a formula (``cosine.exponent``, ``cosine_restarts.k`` and ``mult``,
``polynomial.k``, ``inverse_sqrt.power``) are structure: they stay Python numbers and are not differentiated.

Agreement with lrlab's float64 values (``jax_enable_x64``): to the last bit wherever the formula uses only
``+ - * /``, comparisons, ``floor``, ``sqrt`` and ``cos``; within a few ulps where it uses ``exp``, ``expm1``,
``log``, ``pow`` or ``tanh``, which XLA computes with its own approximations rather than the C library's
(tests/test_optax_native.py measures both). Without x64 the formulas run in float32, as optax's own schedules do.

Three things XLA does would change the last bits, and are undone (see the helpers below): it fuses a
multiplication that feeds an addition into one fused multiply-add, it turns a division by a constant or by a
broadcast scalar into a multiplication by the reciprocal, and it folds constant parameters into the formula in
its own order (`evaluate` passes them through an optimization barrier).

This module imports jax; ``import lrlab`` does not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lrlab import compose, families
from lrlab.errors import LrlabError
from lrlab.schedule import Schedule

__all__ = ["check_supported", "evaluate", "parameters"]

Params = Any  # a pytree: dict of floats / tuples / nested dicts mirroring the schedule
Array = jax.Array

#: family -> its value parameters (the fields `parameters` exposes), in field order
FAMILY_PARAMS: dict[type[Schedule], tuple[str, ...]] = {
    families.Constant: ("value",),
    families.Step: ("factor", "peak"),
    families.MultiStep: ("factor", "peak"),
    families.Exponential: ("gamma", "rate", "peak"),
    families.Linear: ("peak", "floor"),
    families.Polynomial: ("peak", "floor", "power"),
    families.Cosine: ("peak", "floor", "cycles"),
    families.CosineRestarts: ("decay", "peak", "floor"),
    families.Tanh: ("lb", "ub", "decay", "peak", "floor"),
    families.InverseSqrt: ("timescale", "peak"),
    families.Noam: ("scale",),
    families.Warmup: ("floor", "peak"),
    families.Cooldown: ("peak", "floor", "cycles", "power", "ratio"),
    families.OneCycle: ("peak", "initial", "floor"),
    families.Cyclic: ("floor", "peak", "gamma"),
    families.Piecewise: ("levels",),
}

#: composite -> (fields holding child schedules, value parameters)
COMPOSITE_FIELDS: dict[type[Schedule], tuple[tuple[str, ...], tuple[str, ...]]] = {
    compose.Join: (("pieces",), ()),
    compose.Overlay: (("head", "base"), ()),
    compose.Product: (("factors",), ()),
    compose.Sum: (("terms",), ()),
    compose.Shift: (("inner",), ()),
    compose.Clamp: (("inner",), ("min", "max")),
    compose.Repeat: (("inner",), ()),
}


# ---------------------------------------------------------------------------------------------- structure


def check_supported(schedule: Schedule) -> None:
    """Raise `LrlabError` naming the first schedule class in ``schedule`` that has no jax formula here."""
    kind = type(schedule)
    if kind not in FAMILY_PARAMS and kind not in COMPOSITE_FIELDS:
        raise LrlabError(
            f"{kind.__name__} ({schedule}) has no jax.numpy formula in lrlab.jax_schedules (supported: "
            f"{', '.join(sorted(c.name for c in (*FAMILY_PARAMS, *COMPOSITE_FIELDS)))}); evaluate it on the host "
            "instead, e.g. as a lookup table jnp.asarray(s.values(np.arange(total)))[jnp.minimum(count, total - 1)]"
        )
    for child in schedule.children():
        check_supported(child)


def parameters(schedule: Schedule) -> Params:
    """The value parameters of ``schedule`` as a pytree of floats, shaped like the schedule.

    A family gives ``{name: value}`` for its value fields that are set (``Piecewise`` gives ``levels`` as a
    tuple); a composite gives its child schedules' trees under its field names (a tuple for ``pieces``,
    ``factors``, ``terms``) and its own values (``clamp``'s ``min``/``max``).

    >>> from lrlab.families import Cosine
    >>> parameters(Cosine(total=100, floor=0.1))
    {'peak': 1.0, 'floor': 0.1, 'cycles': 0.5}
    """
    check_supported(schedule)
    kind = type(schedule)
    if kind in FAMILY_PARAMS:
        out: dict[str, Any] = {}
        for name in FAMILY_PARAMS[kind]:
            v = getattr(schedule, name)
            if v is not None:
                out[name] = tuple(float(x) for x in v) if isinstance(v, tuple) else float(v)
        return out
    children, values = COMPOSITE_FIELDS[kind]
    out = {}
    for name in children:
        v = getattr(schedule, name)
        out[name] = tuple(parameters(c) for c in v) if isinstance(v, tuple) else parameters(v)
    for name in values:
        v = getattr(schedule, name)
        if v is not None:
            out[name] = float(v)
    return out


def evaluate(schedule: Schedule, params: Params, t: Any) -> Array:
    """``schedule.values(t)`` computed in jax: ``t`` (any shape, clocks >= 0) -> values of the same shape.

    Args:
      schedule: a bound lrlab schedule (no fractions of the run or open lengths left) of supported classes.
      params: `parameters(schedule)`, or a tree of the same structure (traced values, e.g. under ``jax.grad``).
      t: the clock, any real dtype; it is cast to jax's default float (float64 with ``jax_enable_x64``).
    Returns:
      A float array of ``t``'s shape.
    """
    if schedule.needs_total:
        schedule._check_bound()
    dtype = jnp.result_type(float)
    t = jnp.asarray(t, dtype=dtype)
    # constants would be folded into the formula by XLA in its own order; the barrier keeps lrlab's
    params = jax.lax.optimization_barrier(jax.tree_util.tree_map(lambda x: jnp.asarray(x, dtype=dtype), params))
    return _eval(schedule, params, t)


def _eval(s: Schedule, p: Params, t: Array) -> Array:
    # every node's value rounds by itself before its parent uses it (see `_r`)
    return _r(_FORMULAS[type(s)](s, p, t), t)


# ---------------------------------------------------------------------------------------------- exact helpers
#
# Two things XLA does change the last bits of a formula, and these helpers undo them:
# - XLA fuses a multiplication that feeds an addition into one fused multiply-add (one rounding instead of two;
#   XLA:CPU always allows it). `_r(x, t)` adds a zero that XLA cannot fold (``t * 0``: ``0 * inf`` is NaN, so the
#   zero is not a constant to it), which makes a product round on its own, as NumPy rounds it: whether or not
#   the zero's addition is fused, ``x + 0`` is ``x``. Every node's value and every product that is added goes
#   through it.
# - XLA turns a division by a constant, or by a scalar broadcast over an array, into a multiplication by the
#   reciprocal. `_div(a, b, t)` gives the divisor the same non-foldable zero, so it is neither.


def _r(x: Any, t: Array) -> Array:
    """``x`` rounded by itself (not fused into the addition it feeds); ``t`` is the clock."""
    return x + t * 0.0


def _div(a: Any, b: Any, t: Array) -> Array:
    """``a / b`` as a true IEEE division, element by element; ``t`` is the clock."""
    return a / (b + t * 0.0)


def _floor_divide(a: Array, b: float) -> Array:
    """NumPy's ``floor_divide`` for floats ``a >= 0``, ``b > 0``: ``(a - fmod(a, b)) / b`` rounded to the nearest
    whole number (npy_divmod), which differs from ``floor(a / b)`` where ``a / b`` rounds up to a whole number."""
    mod = jnp.fmod(a, b)
    div = _div(a - mod, b, a)
    fl = jnp.floor(div)
    return jnp.where(div - fl > 0.5, fl + 1.0, fl)


def _count_le(edges: tuple[float, ...], t: Array) -> Array:
    """Number of ``edges`` <= t (``searchsorted(edges, t, side="right")``), as float."""
    e = jnp.asarray(np.asarray(edges, dtype=np.float64), dtype=t.dtype)
    return jnp.sum(t[..., None] >= e, axis=-1).astype(t.dtype)


def _total(s: Schedule) -> float:
    return float(s.total)  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------- families


def _constant(s: families.Constant, p: Params, t: Array) -> Array:
    return _r(p["value"], t)


def _step(s: families.Step, p: Params, t: Array) -> Array:
    k = _floor_divide(t, float(s.every))
    return p["peak"] * jnp.power(p["factor"], k)


def _multistep(s: families.MultiStep, p: Params, t: Array) -> Array:
    return p["peak"] * jnp.power(p["factor"], _count_le(s.milestones, t))


def _exponential(s: families.Exponential, p: Params, t: Array) -> Array:
    x = _div(t, float(s.every), t)
    if s.staircase:
        x = jnp.floor(x)
    if s.gamma is not None:
        return p["peak"] * jnp.power(p["gamma"], x)
    return p["peak"] * jnp.exp(-p["rate"] * x)


def _linear(s: families.Linear, p: Params, t: Array) -> Array:
    T = _total(s)
    tc = jnp.minimum(t, T)
    return jnp.where(t < T, _div(_r(p["peak"] * (T - tc), t) + _r(p["floor"] * tc, t), T, t), p["floor"])


def _polynomial(s: families.Polynomial, p: Params, t: Array) -> Array:
    T = _total(s)
    tc = jnp.minimum(t, T)
    frac = 1.0 - (_div(tc, T, t) if s.k == 1.0 else _div(jnp.power(tc, s.k), jnp.power(T, s.k), t))
    return _r((p["peak"] - p["floor"]) * jnp.power(frac, p["power"]), t) + p["floor"]


def _cosine(s: families.Cosine, p: Params, t: Array) -> Array:
    c = _div(t, _total(s), t)
    if not s.periodic:
        c = jnp.minimum(c, 1.0)
    c = c * (jnp.pi * p["cycles"] * 2.0)
    c = (jnp.cos(c) + 1.0) * 0.5
    if s.exponent != 1.0:
        c = jnp.power(c, s.exponent)
    return _r(c * (p["peak"] - p["floor"]), t) + p["floor"]


def _cycle_position(t: Array, period: float, mult: float) -> tuple[Array, Array, Array]:
    """`lrlab.families._cycle_position`: (cycle index, clock within the cycle, cycle length)."""
    if mult == 1.0:
        i = _floor_divide(t, period)
        return i, t - _r(period * i, t), jnp.full_like(t, period)
    i = jnp.floor(_div(jnp.log(1.0 - _r(_div(t, period, t) * (1.0 - mult), t)), float(np.log(mult)), t))
    i = jnp.maximum(i, 0.0)

    def start(k: Array) -> Array:
        return _r(_div(1.0 - jnp.power(mult, k), 1.0 - mult, t) * period, t)

    i = jnp.where(start(i) > t, i - 1.0, i)
    i = jnp.where(start(i + 1.0) <= t, i + 1.0, i)
    return i, t - start(i), jnp.power(mult, i) * period


def _cosine_restarts(s: families.CosineRestarts, p: Params, t: Array) -> Array:
    i, u, L = _cycle_position(t, float(s.period), s.mult)
    top = _r(p["peak"] * jnp.power(p["decay"], i), t)
    arg = _div(jnp.pi * u, L, t) if s.k == 1.0 else _div(jnp.pi * jnp.power(u, s.k), jnp.power(L, s.k), t)
    v = p["floor"] + _r(0.5 * (top - p["floor"]) * (1.0 + jnp.cos(arg)), t)
    return jnp.where(i < s.limit, v, p["floor"]) if s.limit else v


def _tanh(s: families.Tanh, p: Params, t: Array) -> Array:
    i, u, L = _cycle_position(t, float(s.period), s.mult)
    top = _r(p["peak"] * jnp.power(p["decay"], i), t)
    r = _div(u, L, t)
    x = _r(p["lb"] * (1.0 - r), t) + _r(p["ub"] * r, t)
    v = p["floor"] + _r(0.5 * (top - p["floor"]) * (1.0 - jnp.tanh(x)), t)
    return jnp.where(i < s.limit, v, p["floor"]) if s.limit else v


def _inverse_sqrt(s: families.InverseSqrt, p: Params, t: Array) -> Array:
    x = _div(t + p["timescale"], p["timescale"], t)
    if s.power == 0.5:
        return p["peak"] * _div(1.0, jnp.sqrt(x), t)
    return p["peak"] * jnp.power(x, -s.power)


def _noam(s: families.Noam, p: Params, t: Array) -> Array:
    n = t + 1.0
    return p["scale"] * s.d_model**-0.5 * jnp.minimum(jnp.power(n, -0.5), n * s.warmup**-1.5)


def _ramp(shape: str, x: Array, t: Array) -> Array:
    """`lrlab.families._ramp`: rising ramp f(x) on [0, 1]."""
    if shape == "linear":
        return x
    if shape == "cosine":
        return 0.5 * (1.0 - jnp.cos(jnp.pi * x))
    if shape == "sqrt":
        return 1.0 - jnp.sqrt(1.0 - x)
    return _div(-jnp.expm1(-2.0 * x), float(-np.expm1(-2.0)), t)


def _warmup_ramp(s: families.Warmup, p: Params, t: Array, peak: Array) -> Array:
    L = float(s.length)  # type: ignore[arg-type]
    if L == 0:
        return _r(peak, t)
    x = jnp.minimum(_div(t, L, t), 1.0)
    return jnp.where(t < L, _r((peak - p["floor"]) * _ramp(s.shape, x, t), t) + p["floor"], peak)


def _warmup(s: families.Warmup, p: Params, t: Array) -> Array:
    return _warmup_ramp(s, p, t, p["peak"] if s.peak is not None else jnp.asarray(1.0, t.dtype))


def _cooldown(s: families.Cooldown, p: Params, t: Array) -> Array:
    x = jnp.minimum(_div(t, _total(s), t), 1.0)
    if s.shape == "linear":
        f = 1.0 - x
    elif s.shape == "cosine":
        f = 0.5 * (1.0 + jnp.cos(jnp.pi * p["cycles"] * 2.0 * x))
    elif s.shape == "sqrt":
        f = 1.0 - jnp.sqrt(x)
    elif s.shape == "power":
        f = 1.0 - jnp.power(x, p["power"])
    else:
        f = _div(jnp.power(p["ratio"], x) - p["ratio"], 1.0 - p["ratio"], t)
    return _r((p["peak"] - p["floor"]) * f, t) + p["floor"]


def _onecycle(s: families.OneCycle, p: Params, t: Array) -> Array:
    t = jnp.minimum(t, _total(s) - 1.0)
    initial = _div(p["peak"], 25.0, t) if s.initial is None else p["initial"]
    floor = _div(initial, 1e4, t) if s.floor is None else p["floor"]
    level = {"initial": initial, "peak": p["peak"], "floor": floor}
    moves = ([("initial", "peak"), ("peak", "initial"), ("initial", "floor")] if s.three_phase
             else [("initial", "peak"), ("peak", "floor")])

    def anneal(a: Array, b: Array, pct: Array) -> Array:
        if s.shape == "cosine":
            return b + _r((a - b) / 2.0 * (jnp.cos(jnp.pi * pct) + 1), t)
        return _r((b - a) * pct, t) + a

    ends = [end_step for end_step, _, _ in s._phases()]
    begins = [0.0, *ends[:-1]]
    vals = [anneal(level[a], level[b], _div(t - begin, end_step - begin, t))
            for end_step, (a, b), begin in zip(ends, moves, begins)]
    out = vals[-1]
    for end_step, v in reversed(list(zip(ends[:-1], vals[:-1]))):
        out = jnp.where(t <= end_step, v, out)
    return out


def _cyclic(s: families.Cyclic, p: Params, t: Array) -> Array:
    up = float(s.up)
    down = up if s.down is None else float(s.down)
    size = up + down
    ratio = up / size
    cycle = jnp.floor(1 + _div(t, size, t))
    x = 1.0 + _div(t, size, t) - cycle
    scale = jnp.where(x <= ratio, _div(x, ratio, t), _div(x - 1, ratio - 1, t))
    height = _r((p["peak"] - p["floor"]) * scale, t)
    if s.mode == "triangular":
        return p["floor"] + height
    if s.mode == "triangular2":
        g = jnp.ldexp(jnp.ones_like(t), (1 - cycle).astype(jnp.int32))
    else:
        g = jnp.power(p["gamma"], t)
    return p["floor"] + _r(height * g, t)


def _piecewise(s: families.Piecewise, p: Params, t: Array) -> Array:
    vals = jnp.stack(p["levels"])
    n = len(s.times)
    if s.shape == "constant":
        return vals[_count_le(s.times, t).astype(jnp.int32)]
    times = jnp.asarray(np.asarray(s.times, dtype=np.float64), dtype=t.dtype)
    j = jnp.clip(_count_le(s.times, t).astype(jnp.int32) - 1, 0, max(n - 2, 0))
    out = jnp.where(t < s.times[0], vals[0], vals[-1])
    if n < 2:
        return out
    inside = (t >= s.times[0]) & (t < s.times[-1])
    a, b = vals[j], vals[j + 1]
    pct = _div(t - times[j], times[j + 1] - times[j], t)
    if s.shape == "linear":
        mid = a + _r(pct * (b - a), t)
    else:
        mid = b + _r((a - b) / 2.0 * (jnp.cos(jnp.pi * pct) + 1), t)
    return jnp.where(inside, mid, out)


# ---------------------------------------------------------------------------------------------- composites


def _piece(piece: Schedule, p: Params, t: Array, nxt: Schedule | None, p_nxt: Params) -> Array:
    """`lrlab.compose._eval_piece`: a warm-up with an open end ramps to where ``nxt`` starts."""
    if isinstance(piece, families.Warmup) and piece.peak is None:
        # the next piece at clock 0, written t * 0 so that it stays a value of the clock's shape
        target = jnp.asarray(1.0, t.dtype) if nxt is None else _eval(nxt, p_nxt, t * 0.0)
        return _warmup_ramp(piece, p, t, target)
    return _eval(piece, p, t)


def _join(s: compose.Join, p: Params, t: Array) -> Array:
    pieces, ps = s.pieces, p["pieces"]
    out: Array | None = None
    for i, (piece, start) in enumerate(zip(pieces, s.boundaries())):
        nxt = pieces[i + 1] if i + 1 < len(pieces) else None
        p_nxt = ps[i + 1] if i + 1 < len(pieces) else None
        # a clock before the piece's start is clamped to 0: its value is not used, and its gradient stays finite
        v = _piece(piece, ps[i], jnp.maximum(t - start, 0.0), nxt, p_nxt)
        out = v if out is None else jnp.where(t >= start, v, out)
    assert out is not None  # a join has at least two pieces
    return out


def _overlay(s: compose.Overlay, p: Params, t: Array) -> Array:
    L = float(s.head.length)  # type: ignore[arg-type]
    head = _piece(s.head, p["head"], t, s.base, p["base"])
    return jnp.where(t < L, head, _eval(s.base, p["base"], t))


def _product(s: compose.Product, p: Params, t: Array) -> Array:
    out = _eval(s.factors[0], p["factors"][0], t)
    for f, pf in zip(s.factors[1:], p["factors"][1:]):
        out = out * _eval(f, pf, t)
    return out


def _sum(s: compose.Sum, p: Params, t: Array) -> Array:
    out = _eval(s.terms[0], p["terms"][0], t)
    for f, pf in zip(s.terms[1:], p["terms"][1:]):
        out = out + _eval(f, pf, t)
    return out


def _shift(s: compose.Shift, p: Params, t: Array) -> Array:
    return _eval(s.inner, p["inner"], t + s.by)


def _clamp(s: compose.Clamp, p: Params, t: Array) -> Array:
    v = _eval(s.inner, p["inner"], t)
    if s.min is not None:
        v = jnp.maximum(v, p["min"])
    if s.max is not None:
        v = jnp.minimum(v, p["max"])
    return v


def _repeat(s: compose.Repeat, p: Params, t: Array) -> Array:
    L = float(s.inner.length)  # type: ignore[arg-type]
    k = _floor_divide(t, L)
    local = t - _r(k * L, t)
    if s.times:
        local = jnp.where(k >= s.times, L, local)
    return _eval(s.inner, p["inner"], local)


_FORMULAS: dict[type[Schedule], Callable[[Any, Params, Array], Array]] = {
    families.Constant: _constant,
    families.Step: _step,
    families.MultiStep: _multistep,
    families.Exponential: _exponential,
    families.Linear: _linear,
    families.Polynomial: _polynomial,
    families.Cosine: _cosine,
    families.CosineRestarts: _cosine_restarts,
    families.Tanh: _tanh,
    families.InverseSqrt: _inverse_sqrt,
    families.Noam: _noam,
    families.Warmup: _warmup,
    families.Cooldown: _cooldown,
    families.OneCycle: _onecycle,
    families.Cyclic: _cyclic,
    families.Piecewise: _piecewise,
    compose.Join: _join,
    compose.Overlay: _overlay,
    compose.Product: _product,
    compose.Sum: _sum,
    compose.Shift: _shift,
    compose.Clamp: _clamp,
    compose.Repeat: _repeat,
}
