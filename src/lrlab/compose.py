"""Composition: build warm-ups, restarts, floors and cool-downs from families, not per-family flags.

- `Join(pieces)` (`a >> b` in Python and in specs): pieces one after another, each on its own local clock
  (like `optax.join_schedules`); a warm-up prefix shifts the rest.
- `Overlay(head, base)` (`overlay(a, b)` in specs): both on the global clock, the head covering the start of
  the base (timm's default warm-up, `warmup_prefix=False`).
- `Product(factors)` (`a * b`, `0.5 * a`): pointwise product on the same clock; `Sum(terms)`: pointwise sum.
- `Clamp(inner, min, max)`, `Repeat(inner, times)`, `Shift(inner, by)` (skip the first `by` clock units).
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar, TypeVar

import numpy as np

from lrlab.errors import ScheduleError
from lrlab.families import Warmup
from lrlab.schedule import (
    FloatArray,
    Schedule,
    check_int,
    check_number,
    check_positive,
    is_fraction,
    resolve_length,
)

S = TypeVar("S", bound=Schedule)


def _as_schedules(name: str, items: Iterable[object]) -> tuple[Schedule, ...]:
    out: list[Schedule] = []
    for i, s in enumerate(items):
        if not isinstance(s, Schedule):
            raise ScheduleError(f"{name}[{i}] must be a schedule, got {s!r}")
        out.append(s)
    return tuple(out)


@dataclass(frozen=True, kw_only=True, repr=False)
class Join(Schedule):
    """Pieces one after another, each on its own local clock (like ``optax.join_schedules``).

    Piece ``i`` starts when pieces ``0..i-1`` have used their lengths (their ``total``). One piece may be left
    open (``total`` not given): it takes the rest of the run when bound. The last piece runs on past the end.
    A ``warmup(..)`` piece with ``peak=None`` (the default) ramps to the value the next piece starts at.

    >>> from lrlab.families import Warmup, Cosine
    >>> s = Join(pieces=(Warmup(total=10), Cosine(total=90)))
    >>> s(5), s(10)
    (0.5, 1.0)
    """

    name: ClassVar[str] = "join"
    pieces: tuple[Schedule, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "pieces", _as_schedules("join.pieces", self.pieces))
        if len(self.pieces) < 2:
            raise ScheduleError(f"join needs at least 2 pieces, got {len(self.pieces)}")
        open_middle = [str(p) for p in self.pieces[:-1] if p.length is None]
        if len(open_middle) > 1 or (open_middle and self.pieces[-1].length is None
                                     and not self.pieces[-1]._open_total_ok()):
            raise ScheduleError(
                f"join: only one piece may take the rest of the run, but {', '.join(open_middle)} and the last "
                "piece have no length: give all but one of them total=..."
            )

    def children(self) -> tuple[Schedule, ...]:
        return self.pieces

    @property
    def length(self) -> float | None:
        lengths = [p.length for p in self.pieces]
        if any(x is None or is_fraction(x) for x in lengths):
            return None
        return float(sum(lengths))  # type: ignore[arg-type]

    @property
    def needs_total(self) -> bool:
        if any(p.length is None for p in self.pieces[:-1]):
            return True
        return any(is_fraction(p.length) for p in self.pieces) or any(p.needs_total for p in self.pieces)

    def _bind(self, total: float, length: float | None = None) -> Join:
        total = check_positive("total", total)
        span = float(total if length is None else length)
        known = [None if p.length is None else resolve_length(p.length, total) for p in self.pieces]
        middle_open = [i for i, x in enumerate(known[:-1]) if x is None]
        open_i = middle_open[0] if middle_open else (len(known) - 1 if known[-1] is None else None)
        if open_i is not None:
            used = sum(x for x in known if x is not None)
            rest = span - used
            last = self.pieces[-1]
            if rest <= 0 and open_i == len(known) - 1 and last._open_total_ok():
                rest = 0.0  # an open-ended last piece (constant, step, ...) simply starts after the run
            elif rest <= 0:
                fixed = ", ".join(f"{p} takes {x:g}" for p, x in zip(self.pieces, known) if x is not None)
                raise ScheduleError(
                    f"join: {fixed}: {used:g} of the total {span:g} clock units, leaving nothing for "
                    f"{self.pieces[open_i]}; warm-up and fixed phases must be shorter than the total"
                )
            known[open_i] = rest
        first = self.pieces[0]
        if isinstance(first, Warmup) and known[0] is not None and known[0] >= total:
            # every length fixed, yet the warm-up alone outlasts the run: the rest would never be reached
            _warmup_too_long(first, known[0], total)
        bound = tuple(
            _bind_piece(p, total, L) if L is not None else p._bind(total, span) for p, L in zip(self.pieces, known)
        )
        return dataclasses.replace(self, pieces=bound)

    def boundaries(self) -> list[float]:
        """Start clock of every piece (needs every length but the last's)."""
        starts = [0.0]
        for p in self.pieces[:-1]:
            starts.append(starts[-1] + float(p.length))  # type: ignore[arg-type]
        return starts

    @functools.cached_property
    def _starts(self) -> list[float]:
        return self.boundaries()

    def _values(self, t: FloatArray) -> FloatArray:
        starts = self._starts
        if t.shape[0] == 1:
            # the scalar path: the same arithmetic on the one piece that holds t
            i = bisect.bisect_right(starts, float(t[0])) - 1
            nxt = self.pieces[i + 1] if i + 1 < len(self.pieces) else None
            return _eval_piece(self.pieces[i], t - starts[i], nxt)
        out = np.empty_like(t)
        if t.shape[0] > 1 and bool((t[1:] >= t[:-1]).all()):
            # sorted clocks (the usual arange): each piece owns one contiguous slice, no masks or gathers
            cut = [0, *np.searchsorted(t, starts[1:], side="left").tolist(), t.shape[0]]
            for i, piece in enumerate(self.pieces):
                if cut[i] < cut[i + 1]:
                    nxt = self.pieces[i + 1] if i + 1 < len(self.pieces) else None
                    out[cut[i]:cut[i + 1]] = _eval_piece(piece, t[cut[i]:cut[i + 1]] - starts[i], nxt)
            return out
        which = np.searchsorted(np.asarray(starts[1:]), t, side="right")
        for i, piece in enumerate(self.pieces):
            sel = which == i
            if not sel.any():
                continue
            nxt = self.pieces[i + 1] if i + 1 < len(self.pieces) else None
            out[sel] = _eval_piece(piece, t[sel] - starts[i], nxt)
        return out

    def bounds(self) -> tuple[float, float]:
        los, his = zip(*(p.bounds() for p in self.pieces))
        return (min(los), max(his))


def _warmup_too_long(w: Schedule, length: float, total: float) -> None:
    raise ScheduleError(
        f"warmup: {w} takes {length:g} clock units but the run's total is {total:g}: a warm-up must be shorter "
        "than the run (give fewer units, or a fraction of the run such as warmup(0.05))"
    )


def _eval_piece(piece: Schedule, t: FloatArray, nxt: Schedule | None) -> FloatArray:
    """Evaluate a piece; a warm-up with an open end ramps to where `nxt` starts."""
    if isinstance(piece, Warmup) and piece.peak is None:
        target = 1.0 if nxt is None else float(nxt._values(np.zeros(1))[0])
        return piece.ramp(t, target)
    return piece._values(t)


@dataclass(frozen=True, kw_only=True, repr=False)
class Overlay(Schedule):
    """``head`` over the start of ``base``, both on the global clock: ``head(t)`` while
    ``t < head.length``, then ``base(t)`` — ``base`` is not shifted, so the head hides its first part.

    This is timm's warm-up (``warmup_prefix=False``): the warm-up ramps to ``base(0)`` (the peak) and the
    decay underneath spans the whole run. ``Join`` is the prefix form (``warmup_prefix=True``, HF, optax).

    >>> from lrlab.families import Warmup, Linear
    >>> s = Overlay(head=Warmup(total=10), base=Linear(total=100))
    >>> s(5), s(10)
    (0.5, 0.9)
    """

    name: ClassVar[str] = "overlay"
    head: Schedule
    base: Schedule

    def __post_init__(self) -> None:
        for f in ("head", "base"):
            if not isinstance(getattr(self, f), Schedule):
                raise ScheduleError(f"overlay.{f} must be a schedule, got {getattr(self, f)!r}")
        if self.head.length is None:
            raise ScheduleError(f"overlay.head needs a length (total=...), got {self.head}")

    def children(self) -> tuple[Schedule, ...]:
        return (self.head, self.base)

    @property
    def length(self) -> float | None:
        return self.base.length

    def _bind(self, total: float, length: float | None = None) -> Overlay:
        total = check_positive("total", total)
        span = float(total if length is None else length)
        L = resolve_length(self.head.length, total)
        if isinstance(self.head, Warmup) and total <= L:
            _warmup_too_long(self.head, L, total)
        own = self.base.length
        if span <= L and (own is None or is_fraction(own)):
            # the base takes its span from the total, and the head would hide all of it; a base with a fixed
            # length of its own (a peer's schedule cut at a milestone, `compat.fit`) may be covered on purpose
            raise ScheduleError(
                f"overlay: head {self.head} takes {L:g} of the total {span:g} clock units; it must be shorter"
            )
        base = self.base._bind(total, span)
        return dataclasses.replace(self, head=_bind_piece(self.head, total, L), base=base)

    def _values(self, t: FloatArray) -> FloatArray:
        L = float(self.head.length)  # type: ignore[arg-type]
        out = np.empty_like(t)
        sel = t < L
        if sel.any():
            out[sel] = _eval_piece(self.head, t[sel], self.base)
        if (~sel).any():
            out[~sel] = self.base._values(t[~sel])
        return out

    def bounds(self) -> tuple[float, float]:
        (a, b), (c, d) = self.head.bounds(), self.base.bounds()
        return (min(a, c), max(b, d))


def _bind_piece(p: S, total: float, length: float) -> S:
    """Bind a piece to the span `length`, its own length field replaced by that absolute span."""
    if "total" in {f.name for f in dataclasses.fields(p)} and getattr(p, "beta2", None) is None:
        p = dataclasses.replace(p, total=length)  # type: ignore[call-arg]
    return p._bind(total, length)


@dataclass(frozen=True, kw_only=True, repr=False)
class Product(Schedule):
    """Pointwise product of schedules on the same clock: ``0.5 * cosine()``, or an untuned exponential
    warm-up multiplying a decay.

    >>> from lrlab.families import Constant, Linear
    >>> Product(factors=(Constant(value=0.5), Linear(total=10)))(5)
    0.25
    """

    name: ClassVar[str] = "product"
    factors: tuple[Schedule, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "factors", _as_schedules("product.factors", self.factors))
        if len(self.factors) < 2:
            raise ScheduleError(f"product needs at least 2 factors, got {len(self.factors)}")

    def children(self) -> tuple[Schedule, ...]:
        return self.factors

    @property
    def length(self) -> float | None:
        lengths = [f.length for f in self.factors if f.length is not None]
        return max(lengths) if lengths and not any(is_fraction(x) for x in lengths) else None

    def _bind(self, total: float, length: float | None = None) -> Product:
        return dataclasses.replace(self, factors=tuple(f._bind(total, length) for f in self.factors))

    def _values(self, t: FloatArray) -> FloatArray:
        out = self.factors[0]._values(t)
        for f in self.factors[1:]:
            out = out * f._values(t)
        return out

    def bounds(self) -> tuple[float, float]:
        lo, hi = self.factors[0].bounds()
        for f in self.factors[1:]:
            a, b = f.bounds()
            if not all(np.isfinite(v) for v in (lo, hi, a, b)):
                lo, hi = -np.inf, np.inf  # inf * 0 has no bound
                continue
            # a corner that overflows is inf, as the product of the values may be (1e200 * 1e200)
            corners = [x * y for x in (lo, hi) for y in (a, b)]
            lo, hi = min(corners), max(corners)
        return (lo, hi)


@dataclass(frozen=True, kw_only=True, repr=False)
class Sum(Schedule):
    """Pointwise sum of schedules on the same clock, added left to right: a floor under a decaying term, e.g.
    timm's WSD ``lr_min + (stable(t) - lr_min) * decay(t)``.

    >>> from lrlab.families import Constant, Linear
    >>> Sum(terms=(Constant(value=0.1), Linear(total=10)))(5)
    0.6
    """

    name: ClassVar[str] = "sum"
    terms: tuple[Schedule, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "terms", _as_schedules("sum.terms", self.terms))
        if len(self.terms) < 2:
            raise ScheduleError(f"sum needs at least 2 terms, got {len(self.terms)}")

    def children(self) -> tuple[Schedule, ...]:
        return self.terms

    @property
    def length(self) -> float | None:
        lengths = [f.length for f in self.terms if f.length is not None]
        return max(lengths) if lengths and not any(is_fraction(x) for x in lengths) else None

    def _bind(self, total: float, length: float | None = None) -> Sum:
        return dataclasses.replace(self, terms=tuple(f._bind(total, length) for f in self.terms))

    def _values(self, t: FloatArray) -> FloatArray:
        out = self.terms[0]._values(t)
        for f in self.terms[1:]:
            out = out + f._values(t)
        return out

    def bounds(self) -> tuple[float, float]:
        los, his = zip(*(f.bounds() for f in self.terms))
        return (float(sum(los)), float(sum(his)))


@dataclass(frozen=True, kw_only=True, repr=False)
class Shift(Schedule):
    """``inner`` started ``by`` clock units in: value ``inner(t + by)``, so the first ``by`` units are skipped.

    Needed where a peer's clock runs one step ahead of the update count (HF
    ``get_cosine_with_min_lr_schedule_with_warmup_lr_rate`` without warm-up decays from ``(t + 1) / T``).

    >>> from lrlab.families import Linear
    >>> Shift(inner=Linear(total=10), by=1)(0)
    0.9
    """

    name: ClassVar[str] = "shift"
    inner: Schedule
    by: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.inner, Schedule):
            raise ScheduleError(f"shift.inner must be a schedule, got {self.inner!r}")
        check_number("shift.by", self.by)
        if self.by < 0:
            raise ScheduleError(f"shift.by must be >= 0 (clock units of inner to skip), got {self.by}")

    def children(self) -> tuple[Schedule, ...]:
        return (self.inner,)

    @property
    def length(self) -> float | None:
        L = self.inner.length
        if L is None or is_fraction(L):
            return None
        return max(float(L) - self.by, 0.0)

    def _bind(self, total: float, length: float | None = None) -> Shift:
        return dataclasses.replace(self, inner=self.inner._bind(total, None if length is None else length + self.by))

    def _values(self, t: FloatArray) -> FloatArray:
        return self.inner._values(t + self.by)

    def bounds(self) -> tuple[float, float]:
        return self.inner.bounds()


@dataclass(frozen=True, kw_only=True, repr=False)
class Clamp(Schedule):
    """Clamp a schedule into ``[min, max]`` (a floor or a ceiling), e.g. optax's ``end_value``.

    >>> from lrlab.families import Exponential
    >>> Clamp(inner=Exponential(gamma=0.5), min=0.2)(10)
    0.2
    """

    name: ClassVar[str] = "clamp"
    inner: Schedule
    min: float | None = None
    max: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.inner, Schedule):
            raise ScheduleError(f"clamp.inner must be a schedule, got {self.inner!r}")
        if self.min is None and self.max is None:
            raise ScheduleError("clamp needs min=..., max=... or both")
        if self.min is not None:
            check_number("clamp.min", self.min)
        if self.max is not None:
            check_number("clamp.max", self.max)
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ScheduleError(f"clamp.min must be <= clamp.max, got min={self.min}, max={self.max}")

    def children(self) -> tuple[Schedule, ...]:
        return (self.inner,)

    @property
    def length(self) -> float | None:
        return self.inner.length

    def _bind(self, total: float, length: float | None = None) -> Clamp:
        return dataclasses.replace(self, inner=self.inner._bind(total, length))

    def _values(self, t: FloatArray) -> FloatArray:
        v = self.inner._values(t)
        if self.min is not None:
            v = np.maximum(v, self.min)
        if self.max is not None:
            v = np.minimum(v, self.max)
        return v

    def bounds(self) -> tuple[float, float]:
        lo, hi = self.inner.bounds()
        if self.min is not None:
            lo, hi = max(lo, self.min), max(hi, self.min)
        if self.max is not None:
            lo, hi = min(lo, self.max), min(hi, self.max)
        return (lo, hi)


@dataclass(frozen=True, kw_only=True, repr=False)
class Repeat(Schedule):
    """Run ``inner`` (which needs a length) ``times`` times in a row (0: forever); afterwards hold its end.

    >>> from lrlab.families import Linear
    >>> Repeat(inner=Linear(total=10), times=2)(15)
    0.5
    """

    name: ClassVar[str] = "repeat"
    inner: Schedule
    times: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.inner, Schedule):
            raise ScheduleError(f"repeat.inner must be a schedule, got {self.inner!r}")
        object.__setattr__(self, "times", check_int("repeat.times", self.times))
        if self.inner.length is None:
            raise ScheduleError(f"repeat.inner needs a length (total=...) to repeat, got {self.inner}")

    def children(self) -> tuple[Schedule, ...]:
        return (self.inner,)

    @property
    def length(self) -> float | None:
        L = self.inner.length
        if not self.times or L is None or is_fraction(L):
            return None
        return L * self.times

    def _bind(self, total: float, length: float | None = None) -> Repeat:
        L = resolve_length(self.inner.length, total)
        return dataclasses.replace(self, inner=_bind_piece(self.inner, total, L))

    def _values(self, t: FloatArray) -> FloatArray:
        L = float(self.inner.length)  # type: ignore[arg-type]
        k = np.floor_divide(t, L)
        local = t - k * L
        if self.times:
            done = k >= self.times
            local = np.where(done, L, local)
        return self.inner._values(local)

    def bounds(self) -> tuple[float, float]:
        return self.inner.bounds()


def wsd(*, warmup: float = 0.0, decay: float = 0.2, total: float | None = None, shape: str = "sqrt",
        warmup_shape: str = "linear", floor: float = 0.0, peak: float = 1.0) -> Schedule:
    """Warmup-stable-decay: a warm-up, a constant ``peak``, and a cooldown to ``floor`` over the last
    ``decay`` clock units (or fraction of the run). Built as ``warmup >> constant >> cooldown``.

    >>> s = wsd(warmup=10, decay=20, total=100)
    >>> s(5), s(50), s(100)
    (0.5, 1.0, 0.0)
    """
    from lrlab.families import Constant, Cooldown, Warmup

    check_number("wsd.peak", peak)
    check_number("wsd.floor", floor)
    pieces: list[Schedule] = []
    if warmup:
        pieces.append(Warmup(total=warmup, shape=warmup_shape))
    pieces.append(Constant(value=peak, total=None))
    pieces.append(Cooldown(total=decay, shape=shape, peak=peak, floor=floor))
    s: Schedule = Join(pieces=tuple(pieces))
    return s.bind(total) if total is not None else s
