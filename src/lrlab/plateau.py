"""`Plateau`: reduce the LR when a reported metric stops improving; a value plus explicit state.

It follows optax's stateful-schedule shape: a frozen config dataclass with ``init(...) -> state`` and
``update(state, ...) -> state``; the state is a frozen dataclass with ``to_dict()``/``from_dict()``, so it lives
in a checkpoint (``lrlab.torch.LRScheduler.state_dict()``) and a resumed run continues exactly.

`Plateau` reduces a per-group *level* by ``factor`` with the exact arithmetic of
``torch.optim.lr_scheduler.ReduceLROnPlateau``; the scheduler sets ``lr = level * s(t)``. ``start``/``stop``
restrict it to a window of the clock, e.g. one phase of a join (`phase_window`), which torch cannot do
(ReduceLROnPlateau does not fit in SequentialLR or ChainedScheduler). The divergence guard, the other feedback
controller, is `lrlab.guard` (re-exported here for older imports). This module does not import torch.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lrlab.checks import check, describe
from lrlab.compose import Join
from lrlab.errors import LrlabError
from lrlab.guard import DivergenceError, DivergenceGuard, GuardEvent, GuardState
from lrlab.schedule import Schedule

# DivergenceError .. GuardState: re-exported, the guard lived here before `lrlab.guard`
__all__ = [
    "PLATEAU_MODES",
    "THRESHOLD_MODES",
    "DivergenceError",
    "DivergenceGuard",
    "GuardEvent",
    "GuardState",
    "Plateau",
    "PlateauState",
    "phase_window",
]

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
        check.choice("plateau.mode", self.mode, PLATEAU_MODES)
        check.range("plateau.factor", self.factor, 0.0, 1.0, lo_open=True, hi_open=True)
        object.__setattr__(self, "patience", check.whole("plateau.patience", self.patience))
        check.nonneg("plateau.threshold", self.threshold)
        check.choice("plateau.threshold_mode", self.threshold_mode, THRESHOLD_MODES)
        object.__setattr__(self, "cooldown", check.whole("plateau.cooldown", self.cooldown))
        if isinstance(self.min_lr, (list, tuple)):
            object.__setattr__(self, "min_lr", tuple(self.min_lr))
            for i, m in enumerate(self.min_lr):
                check.nonneg(f"plateau.min_lr[{i}]", m)
        else:
            check.nonneg("plateau.min_lr", self.min_lr)
        check.nonneg("plateau.eps", self.eps)
        check.nonneg("plateau.start", self.start)
        if self.stop is not None and check.number("plateau.stop", self.stop) <= self.start:
            raise LrlabError(f"plateau.stop must be > plateau.start ({self.start:g}) or None, got {self.stop!r}")

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
    if not isinstance(schedule, Join):
        raise LrlabError(f"phase_window needs a join of phases (a >> b), got {schedule}")
    if schedule.needs_total:
        raise LrlabError(f"phase_window needs a bound schedule (lrlab.parse(..., total=N)), got {schedule}")
    n = len(schedule.pieces)
    if isinstance(index, bool) or not isinstance(index, int) or not -n <= index < n:
        raise LrlabError(f"index must be a piece index in [0, {n - 1}] (or negative from the end), got "
                         f"{describe(index)}")
    index %= n
    starts = schedule.boundaries()
    stop = starts[index + 1] if index + 1 < n else None
    return (float(starts[index]), None if stop is None else float(stop))
