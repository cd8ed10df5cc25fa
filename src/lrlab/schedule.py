"""The `Schedule` base class and length fields that resolve against the run's total (validators: `lrlab.checks`).

A schedule is a value: a frozen, keyword-only dataclass holding the arguments of one closed-form formula.
`s(t)` and `s.values(ts)` run the same NumPy float64 code, so the scalar and array paths return identical
numbers. The clock `t` is a float >= 0: by default the number of optimizer updates done so far, so `s(t)` is
the value in effect for update `t` (0-based).

Lengths (a period, a warm-up, milestones) are given in clock units, or as a fraction of the whole run: a float
in (0, 1), like Hugging Face's `warmup_ratio`. A length may also be left open (`None`: "the rest of the run").
`s.bind(total)` resolves fractions and open lengths; a fraction is rounded up to whole clock units
(`ceil(fraction * total)`, like `TrainingArguments.get_warmup_steps`, but without its floating-point wart:
`ceil(0.07 * 100)` is 7 here, not 8).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import numpy as np
import numpy.typing as npt

from lrlab.checks import Checks, describe
from lrlab.errors import ScheduleError

FloatArray = npt.NDArray[np.float64]
S = TypeVar("S", bound="Schedule")

#: metadata key marking a dataclass field as a length (clock units, a fraction of the run, or None)
LENGTH = "lrlab_length"


class _NotGiven:
    """The default of a family's old argument name (`Schedule.renamed`): nothing was given under it."""

    def __repr__(self) -> str:
        return "NOT_GIVEN"


#: default of an old argument name (``InitVar``): told apart from any value, None included
NOT_GIVEN: Any = _NotGiven()


def length_field(default: float | None = None, *, doc: str = "") -> Any:
    """A dataclass field holding a length: clock units (>= 1), a fraction of the run (0 < x < 1), or None."""
    return field(default=default, metadata={LENGTH: "one", "doc": doc})


def lengths_field(doc: str = "") -> Any:
    """A dataclass field holding an increasing tuple of clock positions (each may be a fraction of the run)."""
    return field(default=(), metadata={LENGTH: "many", "doc": doc})


# ---------------------------------------------------------------------------------------------- validators


def _short(value: object, limit: int = 60) -> str:
    return f"{describe(value, limit)} ({type(value).__name__})"


_CHECK = Checks(ScheduleError)
check_number = _CHECK.number
check_nonneg = _CHECK.nonneg
check_positive = _CHECK.positive
check_range = _CHECK.range
check_choice = _CHECK.choice
check_int = _CHECK.whole


def check_length(name: str, value: object, *, allow_none: bool = True, allow_zero: bool = False) -> None:
    """A length: None (open: the rest of the run), a fraction in (0, 1), or clock units >= 1 (0 if allowed)."""
    if value is None:
        if not allow_none:
            raise ScheduleError(f"{name} is required: give clock units (>= 1) or a fraction of the run in (0, 1)")
        return
    v = check_number(name, value)
    if v == 0 and allow_zero:
        return
    if v <= 0:
        allowed = ">= 0" if allow_zero else "> 0"
        raise ScheduleError(f"{name} must be {allowed} (clock units, or a fraction of the run in (0, 1)), got {v}")


def is_fraction(value: float | None) -> bool:
    return value is not None and 0 < value < 1


def resolve_length(value: float | None, total: float) -> float:
    """Clock units for a length: a fraction in (0, 1) becomes ceil(fraction * total); None becomes total."""
    if value is None:
        return float(total)
    if is_fraction(value):
        x = value * total
        # ceil like HF's get_warmup_steps, but 0.07 * 100 = 7.000000000000001 must give 7, not 8
        return float(math.ceil(x - 1e-9 * max(1.0, abs(x))))
    return float(value)


def as_clock_array(ts: object) -> FloatArray:
    """Validate clocks: real numbers, finite and >= 0 (a clear error instead of a silent NaN learning rate).

    Text such as ``"5"`` is refused rather than converted: a clock read from a config file as a string is a bug
    upstream that should not pass silently.
    """
    raw = np.asarray(ts)
    if raw.dtype.kind not in "iuf":
        raise ScheduleError(f"clock t must be a finite number >= 0 (or an array of them), got {_short(ts)}")
    arr = raw.astype(np.float64, copy=False)
    if arr.size and not (np.isfinite(arr).all() and (arr >= 0).all()):
        bad = arr[~(np.isfinite(arr) & (arr >= 0))].reshape(-1)[0]
        raise ScheduleError(f"clock t must be a finite number >= 0, got {bad}")
    return arr


# ------------------------------------------------------------------------------------------------- base


@dataclass(frozen=True, kw_only=True, repr=False)
class Schedule:
    """Base of every schedule: a closed-form function of the clock `t`.

    Subclasses set `name` (the spec name) and implement `_values(t)` for a 1-D float64 array of clocks that
    are already validated, with every length resolved. Composite schedules also override `children()`,
    `bind()` and `length`.
    """

    name: ClassVar[str] = ""
    #: old argument name -> its current name. Constructors (as ``InitVar`` fields defaulting to `NOT_GIVEN`), spec
    #: text and dicts accept the old name; text and dicts are written with the current one.
    renamed: ClassVar[Mapping[str, str]] = {}

    def _take_renamed(self, **old: Any) -> None:
        """Move values given under old argument names (`renamed`) to their current fields (from ``__post_init__``).

        Giving both names is refused when the current one is not at its default (the constructor cannot tell a
        default from the same value given on purpose; spec text and dicts refuse any pair).
        """
        fields = {f.name: f for f in dataclasses.fields(self)}
        for old_name, value in old.items():
            if value is NOT_GIVEN:
                continue
            new = self.renamed[old_name]
            current = getattr(self, new)
            if not (current is fields[new].default or current == fields[new].default):
                raise ScheduleError(
                    f"{self.name}: give {new} or its old name {old_name}, not both; got {new}={current!r}, "
                    f"{old_name}={describe(value)}"
                )
            object.__setattr__(self, new, value)

    # ------------------------------------------------------------------------------------- evaluation
    def _values(self, t: FloatArray) -> FloatArray:
        raise NotImplementedError

    def values(self, ts: object) -> FloatArray:
        """Evaluate at many clocks at once; same numbers as calling the schedule at each one."""
        arr = as_clock_array(ts)
        if self._unbound:
            self._check_bound()
        flat = arr.reshape(-1)
        return np.asarray(self._values(flat), dtype=np.float64).reshape(arr.shape)

    def __call__(self, t: float) -> float:
        """The value in effect for clock `t` (for the default clock: optimizer update number `t`, 0-based).

        Runs the same `_values` code as `values()` on a one-element array, so both paths agree exactly.
        """
        if isinstance(t, bool) or not isinstance(t, (int, float, np.integer, np.floating)):
            raise ScheduleError(f"clock t must be a finite number >= 0, got {_short(t)}")
        if not 0 <= t < math.inf:
            as_clock_array(t)
        if self._unbound:
            self._check_bound()
        return float(self._values(np.array([t], dtype=np.float64))[0])

    @functools.cached_property
    def _unbound(self) -> bool:
        # computed once: a frozen schedule cannot change (cached_property writes __dict__ directly)
        return self.needs_total

    # ------------------------------------------------------------------------------------- structure
    def children(self) -> tuple[Schedule, ...]:
        """Schedules this one is built from (empty for a family)."""
        return ()

    @property
    def length(self) -> float | None:
        """The clock span this schedule occupies when joined before another one (None: open)."""
        return getattr(self, "total", None)

    def length_fields(self) -> Iterable[dataclasses.Field[Any]]:
        return (f for f in dataclasses.fields(self) if LENGTH in f.metadata)

    @property
    def needs_total(self) -> bool:
        """True while a fraction of the run or an open length still waits for `bind(total)`."""
        for f in self.length_fields():
            v = getattr(self, f.name)
            if f.metadata[LENGTH] == "one":
                if f.name == "total" and v is None and not self._open_total_ok():
                    return True
                if is_fraction(v):
                    return True
            elif any(is_fraction(x) for x in v):
                return True
        return any(c.needs_total for c in self.children())

    def _open_total_ok(self) -> bool:
        """Whether `total=None` means something without binding (e.g. constant: forever)."""
        return True

    def _check_bound(self) -> None:
        if self.needs_total:
            raise ScheduleError(
                f"{self} has a length given as a fraction of the run, or left open, but no total is known: "
                "pass total=... to lrlab.parse() or call .bind(total)"
            )

    def bind(self: S, total: float) -> S:
        """Resolve every fraction of the run against `total` clock units, and check the values over the run.

        Args:
          total: the whole run's length in clock units (> 0). Fractions are fractions of this.
        Returns:
          A new schedule with no fractions or open lengths left. Raises `ScheduleError` when a value at an
          integer clock in ``0 .. total`` is not a finite number >= 0 (naming the first such clock and value;
          see `check_run`): a learning rate that overflows or goes negative is refused here, not mid-run.
        """
        bound = self._bind(check_positive("total", total))
        check_run(bound, total)
        return bound

    def _bind(self: S, total: float, length: float | None = None) -> S:
        """`bind` without the check of the values: composites bind their parts with this, since a part may
        take values the whole never shows (timm's WSD subtracts a floor inside a sum that adds it back).

        Args:
          total: the whole run's length in clock units. Fractions are fractions of this.
          length: the span this schedule occupies inside a composite (default: `total`); an open
            `total=None` field takes it.
        """
        total = check_positive("total", total)
        span = total if length is None else length
        changes: dict[str, Any] = {}
        for f in self.length_fields():
            v = getattr(self, f.name)
            if f.metadata[LENGTH] == "one":
                if f.name == "total":
                    if v is None:
                        changes[f.name] = float(span)
                    elif is_fraction(v):
                        changes[f.name] = resolve_length(v, total)
                elif is_fraction(v):
                    changes[f.name] = resolve_length(v, total)
            else:
                if any(is_fraction(x) for x in v):
                    changes[f.name] = tuple(resolve_length(x, total) for x in v)
        return dataclasses.replace(self, **changes) if changes else self

    def bounds(self) -> tuple[float, float]:
        """Declared (lowest, highest) value the schedule can take, for any clock."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------------- operators
    def __rshift__(self, other: Schedule) -> Schedule:
        from lrlab.compose import Join

        if not isinstance(other, Schedule):
            return NotImplemented
        left = self.pieces if isinstance(self, Join) else (self,)
        right = other.pieces if isinstance(other, Join) else (other,)
        return Join(pieces=(*left, *right))

    def __mul__(self, other: object) -> Schedule:
        from lrlab.compose import Product
        from lrlab.families import Constant

        if isinstance(other, (int, float)) and not isinstance(other, bool):
            other = Constant(value=float(other))
        if not isinstance(other, Schedule):
            return NotImplemented
        left = self.factors if isinstance(self, Product) else (self,)
        right = other.factors if isinstance(other, Product) else (other,)
        return Product(factors=(*left, *right))

    def __rmul__(self, other: object) -> Schedule:
        from lrlab.families import Constant

        if isinstance(other, (int, float)) and not isinstance(other, bool):
            return Constant(value=float(other)) * self
        return NotImplemented

    # ------------------------------------------------------------------------------------- text
    def __str__(self) -> str:
        from lrlab.spec import format_spec

        return format_spec(self)

    def __repr__(self) -> str:
        return str(self)

    def to_dict(self) -> dict[str, Any]:
        from lrlab.spec import to_dict

        return to_dict(self)


# ----------------------------------------------------------------------------------------------- run check

#: a run of up to this many clock units is checked at every integer clock, a longer one at `RUN_CHECK_SAMPLES`
#: evenly spaced clocks
RUN_CHECK_EVERY = 1 << 24
RUN_CHECK_SAMPLES = 1 << 20
_BLOCK = 1 << 18  # clocks per vector evaluation: bounded memory, and an early stop at the first bad block
#: values this small leave every formula far from overflowing, so declared bounds within it can be trusted
_SAFE = 1e100


def _cut(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _declared_safe(s: Schedule) -> bool:
    """Whether `bounds()` alone proves every value finite and >= 0: the whole is declared within [0, 1e100] and
    every part within [-1e100, 1e100] (a clamp can hide a part's inf, but not the NaN of inf * 0)."""
    try:
        lo, hi = s.bounds()
        if not (lo >= 0 and hi <= _SAFE):
            return False
        parts = list(s.children())
        while parts:
            part = parts.pop()
            lo, hi = part.bounds()
            if not (lo >= -_SAFE and hi <= _SAFE):
                return False
            parts.extend(part.children())
    except NotImplementedError:
        return False
    return True


def _run_clocks(total: float, exhaustive: bool) -> Iterable[FloatArray]:
    """Blocks of the clocks to check: every integer in 0 .. total (and total itself), or evenly spaced ones."""
    if not exhaustive and total > 256:
        yield np.round(np.arange(257, dtype=np.float64) * (total / 256))  # a repeated clock does no harm
        return
    if total <= RUN_CHECK_EVERY:
        n = int(total) + 1
        for a in range(0, n, _BLOCK):
            yield np.arange(a, min(a + _BLOCK, n), dtype=np.float64)
        if total != int(total):
            yield np.array([total])
        return
    clocks = np.round(np.linspace(0.0, total, RUN_CHECK_SAMPLES))
    for a in range(0, clocks.shape[0], _BLOCK):
        yield clocks[a : a + _BLOCK]


def check_run(s: Schedule, total: float) -> None:
    """Raise `ScheduleError` unless a bound schedule's values are finite numbers >= 0 over the run.

    Checked at every integer clock ``0 .. total`` (at `RUN_CHECK_SAMPLES` evenly spaced clocks past
    `RUN_CHECK_EVERY`), one vector evaluation per block of clocks, unless the declared `bounds()` already prove it:
    then a coarse grid of 257 clocks is evaluated as a guard. The error names the first bad clock and its value.
    """
    if s.needs_total:
        s._check_bound()
    for t in _run_clocks(float(total), exhaustive=not _declared_safe(s)):
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below, as an error
            v = np.asarray(s._values(t), dtype=np.float64)
        bad = ~(np.isfinite(v) & (v >= 0))
        if bad.any():
            i = int(np.argmax(bad))
            value = float(v[i])
            why = ("it overflows float64: put a clamp(..., max=...) around a growing schedule" if math.isinf(value)
                   else "a floor or a factor below 0 gives negative values" if value < 0 else
                   "a product of inf and 0, or inf minus inf, gives NaN")
            raise ScheduleError(
                f"{_cut(str(s))} gives {value!r} at t={t[i]:g} of a run of {total:g} clock units; a schedule's "
                f"values must be finite numbers >= 0 over the run ({why})"
            )


class BlockCache:
    """Fast repeated evaluation at integer clocks, for per-step use in a training loop.

    Values at integer clocks are computed a block at a time on the vector path, so every number is exactly
    `schedule.values(t)`; a lookup costs a few hundred nanoseconds instead of a NumPy call. Other clocks
    (fractional token or epoch clocks) fall through to `schedule(t)`. The cache holds no state that changes a
    value: it is a memo of a pure function.

    >>> from lrlab.families import Cosine
    >>> c = BlockCache(Cosine(total=100))
    >>> c(50) == Cosine(total=100)(50)
    True
    """

    __slots__ = ("_block", "_k", "_vals", "schedule")

    def __init__(self, schedule: Schedule, block: int = 1024) -> None:
        if block < 1:
            raise ScheduleError(f"block must be >= 1, got {block}")
        if schedule.needs_total:
            schedule._check_bound()
        self.schedule = schedule
        self._block = int(block)
        self._k = -1
        self._vals: list[float] = []

    def __call__(self, t: float) -> float:
        i = int(t) if isinstance(t, (int, float)) and t == t and 0 <= t < 2**52 else -1
        if i < 0 or i != t:
            return self.schedule(t)
        k, r = divmod(i, self._block)
        if k != self._k:
            start = k * self._block
            self._vals = self.schedule.values(np.arange(start, start + self._block, dtype=np.float64)).tolist()
            self._k = k
        return self._vals[r]
