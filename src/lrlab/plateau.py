"""Feedback on top of a schedule: a plateau controller and a divergence guard, each a value plus explicit state.

Both follow optax's stateful-schedule shape: a frozen config dataclass with ``init(...) -> state`` and
``update(state, ...) -> state``; the state is a frozen dataclass with ``to_dict()``/``from_dict()``, so it lives
in a checkpoint (``lrlab.torch.LRScheduler.state_dict()``) and a resumed run continues exactly.

- `Plateau` reduces a per-group *level* by ``factor`` when a reported metric stops improving, with the exact
  arithmetic of ``torch.optim.lr_scheduler.ReduceLROnPlateau`` (mode, threshold, threshold_mode, patience,
  cooldown, min_lr, eps). The scheduler sets ``lr = level * s(t)``: the level starts at the group's base LR, so
  with ``constant()`` the LR sequence is torch's, number for number; with any other schedule the reductions
  multiply the schedule. ``start``/``stop`` restrict it to a window of the clock, e.g. one phase of a join
  (`phase_window`), which torch cannot do (ReduceLROnPlateau does not fit in SequentialLR or ChainedScheduler).
- `DivergenceGuard` inspects each update's loss (and gradient norm) before the optimizer applies it: a NaN/inf,
  or a loss above ``spike`` times the mean of the last ``window`` accepted losses, skips the update and multiplies
  the LR by ``factor``.

Neither imports torch.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lrlab.errors import LrlabError
from lrlab.schedule import Schedule, check_choice, check_int, check_nonneg, check_number, check_range


class DivergenceError(LrlabError):
    """The divergence guard skipped ``max_skips`` updates in a row: the run is not recovering."""


def _field_error(name: str, value: object, allowed: str) -> LrlabError:
    return LrlabError(f"{name} must be {allowed}, got {value!r}")


def _checked(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a `lrlab.schedule.check_*` validator, re-raising as a plain LrlabError (these are not schedules)."""
    try:
        return fn(*args, **kwargs)
    except LrlabError as e:
        raise LrlabError(str(e)) from None


# ---------------------------------------------------------------------------------------------------- plateau


@dataclass(frozen=True, kw_only=True)
class PlateauState:
    """Where the plateau controller stands.

    Attributes:
      levels: per param group, the base the schedule multiplies (LR units with ``absolute=False``: the group's
        base LR after the reductions so far; a plain multiplier starting at 1.0 with ``absolute=True``).
      best: best metric so far (``inf`` in mode min / ``-inf`` in mode max before the first report).
      num_bad: reports since the last improvement (torch's ``num_bad_epochs``).
      cooldown_left: reports left in the cooldown after a reduction (torch's ``cooldown_counter``).
      reductions: how many reports reduced at least one level. A reduction that ``eps`` blocks for every group
        (the change would be ``eps`` or less, e.g. at ``min_lr``) is not counted: the LR did not change (torch
        likewise changes and logs nothing), though the cooldown starts as in torch.
    """

    levels: tuple[float, ...]
    best: float
    num_bad: int = 0
    cooldown_left: int = 0
    reductions: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (str/float/int/list): safe for ``torch.load(weights_only=True)`` and JSON."""
        return {"levels": list(self.levels), "best": self.best, "num_bad": self.num_bad,
                "cooldown_left": self.cooldown_left, "reductions": self.reductions}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PlateauState:
        try:
            return cls(levels=tuple(float(x) for x in d["levels"]), best=float(d["best"]), num_bad=int(d["num_bad"]),
                       cooldown_left=int(d["cooldown_left"]), reductions=int(d["reductions"]))
        except (KeyError, TypeError, ValueError) as e:
            raise LrlabError(f"plateau state must hold levels, best, num_bad, cooldown_left, reductions; got {d!r}"
                             f" ({e})") from None


PLATEAU_MODES = ("min", "max")
THRESHOLD_MODES = ("rel", "abs")


@dataclass(frozen=True, kw_only=True)
class Plateau:
    """Reduce the LR when a metric stops improving: ``torch.optim.lr_scheduler.ReduceLROnPlateau``'s rule on a
    per-group level that multiplies the schedule.

    On each report of ``metric`` (inside the window ``start <= t < stop``): if it is better than ``best`` (mode
    min, rel: ``metric < best * (1 - threshold)``; abs: ``metric < best - threshold``; mode max mirrored) it
    becomes ``best`` and the bad count resets, otherwise the bad count grows; during a cooldown the bad count is
    held at 0; when it exceeds ``patience`` each level becomes ``max(level * factor, min_lr)`` unless that changes
    it by no more than ``eps``, and a cooldown of ``cooldown`` reports starts (also when ``eps`` blocked every
    level, as in torch; ``reductions`` counts only the reports that changed a level).

    Args:
      mode: ``min`` (a loss) or ``max`` (an accuracy).
      factor: multiplier per reduction, in (0, 1).
      patience: reports without improvement tolerated before a reduction (whole number >= 0).
      threshold: significance of an improvement (>= 0), relative or absolute per ``threshold_mode``.
      threshold_mode: ``rel`` or ``abs``.
      cooldown: reports ignored after a reduction (whole number >= 0).
      min_lr: floor of the level (>= 0); one number, or one per param group. In LR units with the scheduler's
        default ``absolute=False`` (the base LR is the starting level); a floor on the multiplier with
        ``absolute=True``. The schedule multiplies on top, so a decaying schedule still goes below it.
      eps: smallest reduction applied (>= 0).
      start, stop: the clock window in which reports count (clock units; ``stop=None``: no end). Reports
        outside it leave the state unchanged; reductions made inside it persist after ``stop``.

    Matches: torch ``ReduceLROnPlateau`` (2.x) exactly, for the LR sequence, given ``constant()`` as the
    schedule and one report per torch ``step(metric)``; torch's ``last_epoch`` has no counterpart here (the
    clock is the scheduler's). Unlike timm's ``PlateauLRScheduler`` the state is saved and resumed.

    >>> p = Plateau(patience=0, factor=0.5)
    >>> s = p.init((0.1,))
    >>> for m in (1.0, 2.0, 3.0):
    ...     s = p.update(s, m, t=0)
    >>> s.levels
    (0.025,)
    """

    mode: str = "min"
    factor: float = 0.1
    patience: int = 10
    threshold: float = 1e-4
    threshold_mode: str = "rel"
    cooldown: int = 0
    min_lr: float | tuple[float, ...] = 0.0
    eps: float = 1e-8
    start: float = 0.0
    stop: float | None = None

    def __post_init__(self) -> None:
        _checked(check_choice, "plateau.mode", self.mode, PLATEAU_MODES)
        _checked(check_range, "plateau.factor", self.factor, 0.0, 1.0, lo_open=True, hi_open=True)
        object.__setattr__(self, "patience", _checked(check_int, "plateau.patience", self.patience))
        _checked(check_nonneg, "plateau.threshold", self.threshold)
        _checked(check_choice, "plateau.threshold_mode", self.threshold_mode, THRESHOLD_MODES)
        object.__setattr__(self, "cooldown", _checked(check_int, "plateau.cooldown", self.cooldown))
        if isinstance(self.min_lr, (list, tuple)):
            object.__setattr__(self, "min_lr", tuple(self.min_lr))
            for i, m in enumerate(self.min_lr):
                _checked(check_nonneg, f"plateau.min_lr[{i}]", m)
        else:
            _checked(check_nonneg, "plateau.min_lr", self.min_lr)
        _checked(check_nonneg, "plateau.eps", self.eps)
        _checked(check_nonneg, "plateau.start", self.start)
        if self.stop is not None:
            _checked(check_number, "plateau.stop", self.stop)
            if self.stop <= self.start:
                raise _field_error("plateau.stop", self.stop, f"> plateau.start ({self.start:g}) or None")

    # ------------------------------------------------------------------------------------------ functions
    def min_lrs(self, groups: int) -> tuple[float, ...]:
        """The floor per param group."""
        if isinstance(self.min_lr, tuple):
            if len(self.min_lr) != groups:
                raise LrlabError(
                    f"plateau.min_lr holds {len(self.min_lr)} values but the optimizer has {groups} param groups: "
                    "give one number or one per group"
                )
            return self.min_lr
        return (float(self.min_lr),) * groups

    def init(self, levels: Sequence[float]) -> PlateauState:
        """The state before any report. ``levels``: per param group, the starting level (base LR or 1.0)."""
        self.min_lrs(len(levels))
        worst = math.inf if self.mode == "min" else -math.inf
        return PlateauState(levels=tuple(float(x) for x in levels), best=worst)

    def active(self, t: float) -> bool:
        """Whether a report at clock ``t`` counts."""
        return t >= self.start and (self.stop is None or t < self.stop)

    def is_better(self, a: float, best: float) -> bool:
        """torch's ``_is_better``, operation for operation."""
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min":
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def update(self, state: PlateauState, metric: float, t: float) -> PlateauState:
        """The state after one report of ``metric`` at clock ``t``.

        A NaN metric counts as "not better" (as in torch): it is a bad report, not an error.
        """
        current = float(metric)
        if not self.active(t):
            return state
        best, num_bad, cooldown_left = state.best, state.num_bad, state.cooldown_left
        if self.is_better(current, best):
            best, num_bad = current, 0
        else:
            num_bad += 1
        if cooldown_left > 0:
            cooldown_left -= 1
            num_bad = 0  # bad reports in a cooldown are ignored
        levels, reductions = state.levels, state.reductions
        if num_bad > self.patience:
            floors = self.min_lrs(len(levels))
            new_levels = []
            for old, floor in zip(levels, floors):
                new = max(old * self.factor, floor)
                new_levels.append(new if old - new > self.eps else old)
            if any(new != old for new, old in zip(new_levels, levels)):  # torch: only a change beyond eps counts
                levels, reductions = tuple(new_levels), reductions + 1
            cooldown_left, num_bad = self.cooldown, 0
        return PlateauState(levels=levels, best=best, num_bad=num_bad, cooldown_left=cooldown_left,
                            reductions=reductions)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if isinstance(self.min_lr, tuple):
            d["min_lr"] = list(self.min_lr)
        return d


def phase_window(schedule: Schedule, index: int) -> tuple[float, float | None]:
    """``(start, stop)`` clock window of piece ``index`` of a bound join (``a >> b >> c``), for `Plateau`.

    The last piece's window has no end (``stop=None``).

    >>> import lrlab
    >>> phase_window(lrlab.parse("warmup(100) >> constant(total=500) >> cooldown(400)"), 1)
    (100.0, 600.0)
    """
    from lrlab.compose import Join

    if not isinstance(schedule, Join):
        raise LrlabError(f"phase_window needs a join of phases (a >> b), got {schedule}")
    if schedule.needs_total:
        raise LrlabError(f"phase_window needs a bound schedule (lrlab.parse(..., total=N)), got {schedule}")
    n = len(schedule.pieces)
    if isinstance(index, bool) or not isinstance(index, int) or not -n <= index < n:
        raise _field_error("index", index, f"a piece index in [0, {n - 1}] (or negative from the end)")
    index %= n
    starts = schedule.boundaries()
    stop = starts[index + 1] if index + 1 < n else None
    return (float(starts[index]), None if stop is None else float(stop))


# ---------------------------------------------------------------------------------------------------- guard


@dataclass(frozen=True, kw_only=True)
class GuardEvent:
    """One skipped update.

    Attributes:
      kind: ``nan`` / ``inf`` (the loss), ``grad`` (non-finite gradient norm), or ``spike``.
      t: the scheduler's clock at the skipped update.
      loss: the loss of the skipped update.
      reference: mean of the recent accepted losses the spike test compared against (nan when none).
      scale: the LR multiplier after this event.
    """

    kind: str
    t: float
    loss: float
    reference: float
    scale: float

    def __str__(self) -> str:
        why = {"nan": "the loss is NaN", "inf": "the loss is infinite", "grad": "the gradient norm is not finite",
               "spike": f"the loss spiked to {self.loss:g}, over the recent mean {self.reference:g}"}.get(
                   self.kind, self.kind)
        return f"skipped the update at t={self.t:g}: {why}; LR multiplier now {self.scale:g}"


@dataclass(frozen=True, kw_only=True)
class GuardState:
    """Guard state: the LR multiplier, recent accepted losses, skip counters."""

    scale: float = 1.0
    recent: tuple[float, ...] = ()
    consecutive: int = 0
    skipped: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "recent": list(self.recent), "consecutive": self.consecutive,
                "skipped": self.skipped}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GuardState:
        try:
            return cls(scale=float(d["scale"]), recent=tuple(float(x) for x in d["recent"]),
                       consecutive=int(d["consecutive"]), skipped=int(d["skipped"]))
        except (KeyError, TypeError, ValueError) as e:
            raise LrlabError(f"guard state must hold scale, recent, consecutive, skipped; got {d!r} ({e})") from None


@dataclass(frozen=True, kw_only=True)
class DivergenceGuard:
    """Skip an update whose loss is NaN/inf, whose gradient norm is non-finite, or whose loss spikes; then
    multiply the LR by ``factor``.

    A spike is ``loss > spike * mean(last window accepted losses)``, tested once ``window`` losses have been
    accepted (it assumes a positive loss, such as cross-entropy). Skipped losses never enter the reference.

    Args:
      spike: ratio to the recent mean that counts as a spike (> 1; ``inf``: only NaN/inf are caught).
      window: accepted losses in the reference mean (whole number >= 1).
      factor: LR multiplier applied at each skip, in (0, 1] (1: skip without reducing).
      min_scale: floor of the accumulated multiplier (>= 0).
      max_skips: after this many consecutive skips, raise `DivergenceError` (0: never).
      check_grads: also skip when the gradient norm is non-finite (the scheduler computes it when not given).

    >>> g = DivergenceGuard(window=2, spike=2.0, factor=0.5)
    >>> s = g.init()
    >>> for loss in (1.0, 1.2):
    ...     s, event = g.update(s, loss, t=0)
    >>> s, event = g.update(s, 5.0, t=2)
    >>> event.kind, event.reference, s.scale
    ('spike', 1.1, 0.5)
    """

    spike: float = 3.0
    window: int = 20
    factor: float = 0.5
    min_scale: float = 0.0
    max_skips: int = 10
    check_grads: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.spike, bool) or not isinstance(self.spike, (int, float)) or not self.spike > 1:
            raise _field_error("guard.spike", self.spike, "a number > 1 (or inf to catch only NaN/inf)")
        object.__setattr__(self, "window", _checked(check_int, "guard.window", self.window, minimum=1))
        _checked(check_range, "guard.factor", self.factor, 0.0, 1.0, lo_open=True)
        _checked(check_nonneg, "guard.min_scale", self.min_scale)
        object.__setattr__(self, "max_skips", _checked(check_int, "guard.max_skips", self.max_skips))
        if not isinstance(self.check_grads, bool):
            raise _field_error("guard.check_grads", self.check_grads, "True or False")

    def init(self) -> GuardState:
        return GuardState()

    def update(self, state: GuardState, loss: float, t: float,
               grad_norm: float | None = None) -> tuple[GuardState, GuardEvent | None]:
        """Judge one update. Returns the new state and the event when the update must be skipped (else None).

        Raises `DivergenceError` when this skip makes ``max_skips`` in a row.
        """
        loss = float(loss)
        ref = math.fsum(state.recent) / len(state.recent) if state.recent else math.nan
        kind = None
        if math.isnan(loss):
            kind = "nan"
        elif math.isinf(loss):
            kind = "inf"
        elif grad_norm is not None and not math.isfinite(float(grad_norm)):
            kind = "grad"
        elif len(state.recent) >= self.window and loss > self.spike * ref:
            kind = "spike"
        if kind is None:
            recent = (*state.recent, loss)[-self.window:]
            return dataclasses.replace(state, recent=recent, consecutive=0), None
        scale = max(state.scale * self.factor, self.min_scale)
        new = GuardState(scale=scale, recent=state.recent, consecutive=state.consecutive + 1,
                         skipped=state.skipped + 1)
        if self.max_skips and new.consecutive >= self.max_skips:
            raise DivergenceError(
                f"the divergence guard skipped {new.consecutive} updates in a row (guard.max_skips="
                f"{self.max_skips}); last loss {loss!r} ({kind}) at t={t:g}, LR multiplier now {scale:g}: the run "
                "is not recovering — lower the peak LR, lengthen the warm-up, or raise guard.max_skips"
            )
        return new, GuardEvent(kind=kind, t=float(t), loss=loss, reference=ref, scale=scale)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
