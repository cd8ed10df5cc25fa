"""How tune decides, as pure functions of numbers: which trunks survive a rung, where a schedule's best peak LR lies
between the peaks tried, how the options rank, which get re-run, and which one wins. Analysis returns data;
`lrlab.tune.report` displays it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True, kw_only=True)
class Estimate:
    """A final loss with an interval: ``lo <= loss <= hi``. ``measured``: the loss of a full run (seed 0), not a
    prediction (its interval is then that of the law, or the point itself when there is no law fit)."""

    loss: float
    lo: float
    hi: float
    measured: bool = False
    notes: tuple[str, ...] = ()

    @property
    def in_support(self) -> bool:
        """A measurement, or a prediction the law has no reservations about (``notes`` empty)."""
        return self.measured or not self.notes

    @property
    def half_width(self) -> float:
        return max(self.hi - self.loss, self.loss - self.lo, 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {"loss": self.loss, "lo": self.lo, "hi": self.hi, "measured": self.measured, "notes": list(self.notes)}


@dataclass(frozen=True, kw_only=True)
class Option:
    """A candidate schedule at its chosen peak LR.

    Attributes:
        schedule: lrlab spec (over the horizon).
        lr: the chosen peak LR.
        estimate: the final loss expected there.
        how: how ``lr`` was chosen: ``measured`` (a full run at a peak tried), ``interpolated`` (vertex of a
            parabola in log LR through the peaks' values) or ``best peak`` (the best of the peaks tried).
        at_peaks: (peak LR, estimate) at every surviving peak, as the law (or a run) gave them.
        measured: seed -> final loss of the full runs made of it (confirmation), empty when none.
    """

    schedule: str
    lr: float
    estimate: Estimate
    how: str
    at_peaks: tuple[tuple[float, Estimate], ...] = ()
    measured: Mapping[int, float] = field(default_factory=dict)

    @property
    def measured_mean(self) -> float:
        vals = list(self.measured.values())
        return math.fsum(vals) / len(vals) if vals else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {"schedule": self.schedule, "lr": self.lr, "estimate": self.estimate.to_dict(), "how": self.how,
                "at_peaks": [[lr, e.to_dict()] for lr, e in self.at_peaks],
                "measured": {str(k): v for k, v in sorted(self.measured.items())},
                "measured_mean": self.measured_mean if self.measured else None}


def survivors(scores: Mapping[int, float], keep: int) -> list[int]:
    """The ``keep`` peaks (indices) that go on: the best finite rung score and its neighbours, a window of adjacent
    peaks centred on the best (moved inwards at an edge; with an even ``keep``, the extra one on the side of the
    better neighbour). Best score first.

    A window, not the ``keep`` best scores: one seed's short cool-downs can rank two neighbours the wrong way round
    (``text`` readmes: 6e-3 scored below 1.2e-2 and 1.5e-3 and was dropped, leaving the peak between 3e-3 and
    1.2e-2 unmeasured), while the final loss against log LR has one valley that the parabola through the best peak
    and its two neighbours (`interpolate_peak`) needs."""
    finite = {j: s for j, s in scores.items() if math.isfinite(s)}
    if not finite:
        return []
    order = sorted(finite)
    i = order.index(min(finite, key=lambda j: (finite[j], j)))
    left = right = i
    while right - left + 1 < min(keep, len(order)):
        grow_left = left > 0 and (right == len(order) - 1 or i - left < right - i or (
            i - left == right - i and finite[order[left - 1]] <= finite[order[right + 1]]))
        if grow_left:
            left -= 1
        else:
            right += 1
    return sorted(order[left: right + 1], key=lambda j: (finite[j], j))


def edge_to_extend(scores: Mapping[int, float]) -> int | None:
    """The peak index to add past an edge: one below the smallest when the best score is at the smallest peak
    (or every score is infinite: all diverged), one above the largest when it is at the largest; None when the
    best is inside."""
    if not scores:
        return None
    lo, hi = min(scores), max(scores)
    finite = {j: s for j, s in scores.items() if math.isfinite(s)}
    if not finite:
        return lo - 1
    best = min(finite, key=lambda j: (finite[j], j))
    if best == lo:
        return lo - 1
    if best == hi:
        return hi + 1
    return None


def nice_lr(lr: float) -> float:
    """``lr`` rounded to 2 significant digits: the LR a person would type."""
    if lr <= 0 or not math.isfinite(lr):
        return lr
    return float(f"{lr:.2g}")


def interpolate_peak(points: Sequence[tuple[float, Estimate]]) -> tuple[float, Estimate, str]:
    """Where a schedule's final loss is lowest, from its estimates at the peaks tried.

    When the best point has a finite neighbour on each side (by LR), the answer is the vertex of the parabola in
    log LR through the three (it lies between the neighbours), rounded to 2 significant digits (`nice_lr`); its
    value is the parabola's there and its interval the best point's width. Otherwise it is the best point. A
    parabola through the best point and its two neighbours only: fitted through points further away it is pulled
    by the steep rise at high LRs and puts its vertex below any point tried. Returns (lr, estimate, how):
    ``interpolated`` or ``best peak``.
    """
    finite = sorted((lr, e) for lr, e in points if math.isfinite(e.loss))
    if not finite:
        lr, e = min(points, key=lambda p: p[0]) if points else (math.nan, Estimate(loss=math.inf, lo=math.inf,
                                                                                      hi=math.inf))
        return lr, e, "best peak"
    i = min(range(len(finite)), key=lambda k: (finite[k][1].loss, finite[k][0]))
    best_lr, best = finite[i]
    if i == 0 or i == len(finite) - 1:
        return best_lr, best, "best peak"
    trio = finite[i - 1: i + 2]
    x = np.log([lr for lr, _ in trio])
    y = np.asarray([e.loss for _, e in trio])
    a, b, c = np.polyfit(x, y, 2)
    if a <= 0:
        return best_lr, best, "best peak"
    lr = nice_lr(float(math.exp(-b / (2 * a))))
    if math.isclose(lr, best_lr, rel_tol=0.05):
        return best_lr, best, "best peak"
    value = float(a * math.log(lr) ** 2 + b * math.log(lr) + c)
    width = best.half_width
    notes = tuple(dict.fromkeys(n for _, e in trio for n in e.notes))
    return lr, Estimate(loss=value, lo=value - width, hi=value + width, notes=notes), "interpolated"


def rank(options: Sequence[Option]) -> list[Option]:
    """Options by expected final loss, lowest first (ties: the earlier in ``options``)."""
    order = {id(o): i for i, o in enumerate(options)}
    return sorted(options, key=lambda o: (o.estimate.loss if math.isfinite(o.estimate.loss) else math.inf,
                                          order[id(o)]))


def same_option(a: Option, b: Option) -> bool:
    return a.schedule == b.schedule and math.isclose(a.lr, b.lr, rel_tol=1e-9)


def is_close(best: Option, other: Option) -> bool:
    """Whether ``other``'s expected loss is within the wider of the two intervals of ``best``'s: a close call
    that a run should settle. No interval (width 0) is never close unless the losses are equal."""
    gap = other.estimate.loss - best.estimate.loss
    return gap <= max(best.estimate.half_width, other.estimate.half_width)


def to_confirm(ranked: Sequence[Option], measured_best: Option | None, slots: int) -> list[Option]:
    """The options to re-run at full length, at most ``slots``: the best measured run first (its seed-0 run is done
    already), then the best predicted option, then the runner-up (another schedule) when its call against the best
    is close (`is_close`). Predictions outside the law's support (`Estimate.in_support`) are not re-run: measured
    against the runs, the law was optimistic about exactly those (no warm-up, steps, restarts)."""
    chosen: list[Option] = []

    def add(o: Option) -> None:
        if len(chosen) < slots and not any(same_option(o, c) for c in chosen):
            chosen.append(o)

    if measured_best is not None:
        add(measured_best)
    finite = [o for o in ranked if math.isfinite(o.estimate.loss) and o.estimate.in_support]
    if finite:
        best = finite[0]
        add(best)
        runner = next((o for o in finite[1:] if o.schedule != best.schedule
                       and not any(same_option(o, c) for c in chosen)), None)
        if runner is not None and is_close(best, runner):
            add(runner)
    return chosen


def final_pick(confirmed: Sequence[Option]) -> Option | None:
    """The confirmed option with the lowest mean measured loss over the seeds all of them ran (paired seeds);
    ties go to the earlier one. None when none has a finite mean."""
    if not confirmed:
        return None
    shared = set.intersection(*(set(o.measured) for o in confirmed))

    def mean(o: Option) -> float:
        vals = [o.measured[s] for s in sorted(shared)] if shared else list(o.measured.values())
        return math.fsum(vals) / len(vals) if vals else math.inf

    scored = [(mean(o), i, o) for i, o in enumerate(confirmed)]
    finite = [t for t in scored if math.isfinite(t[0])]
    if not finite:
        return None
    return min(finite, key=lambda t: (t[0], t[1]))[2]
