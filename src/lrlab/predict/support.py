"""Where a law is outside its support: what the notes of a fit and of a prediction say, never silently.

The laws were derived for single-pass training with a warm-up and an LR that does not rise again afterwards, and
a fit only knows the horizons and peak LRs it saw. Each check returns a sentence; nothing here changes a number.
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from dataclasses import dataclass

import numpy as np

from lrlab.predict.curves import Curve
from lrlab.predict.laws import is_cold, warmup_end

#: an LR cut to below this share of its value in one update counts as abrupt (a step decay)
ABRUPT = 0.5


@dataclass(frozen=True, kw_only=True)
class FitScope:
    """What the fitted curves covered.

    Attributes:
        max_total: the longest fitted run (updates).
        peak_lrs: (smallest, largest) peak LR of the fitted curves.
        warmup: some fitted curve had a warm-up (`lrlab.predict.fit` counts only curves with fitted evaluations).
        cold: some fitted curve started at its peak without a warm-up (so the start-up factor ``K`` was fitted,
            where ``warmup`` holds too).
        abrupt: some fitted curve had an abrupt drop (a step).
        passes_per_update: passes over the training data per update (None: unknown).
    """

    max_total: int
    peak_lrs: tuple[float, float]
    warmup: bool
    abrupt: bool
    cold: bool = False
    passes_per_update: float | None = None

    @classmethod
    def of(cls, curves: Sequence[Curve], starts: Set[bool]) -> FitScope:
        """The scope of a fit on ``curves`` whose fitted evaluations had the kinds of start ``starts`` (True: cold,
        False: warmed-up; ``min_step`` can leave a curve without any)."""
        peaks = [c.peak_lr for c in curves]
        per = [c.data_passes / c.total for c in curves if c.data_passes is not None and c.total]
        return cls(max_total=max(c.total for c in curves), peak_lrs=(min(peaks), max(peaks)),
                   warmup=False in starts, cold=True in starts,
                   abrupt=any(_abrupt(c.lr) is not None for c in curves),
                   passes_per_update=max(per) if per else None)


def _rise(lr: np.ndarray) -> int | None:
    """The first update after the warm-up whose LR is above the one before (a restart), or None."""
    w = warmup_end(lr)
    up = np.flatnonzero(np.diff(lr[w:]) > 1e-12 * max(float(lr.max()), 1e-300))
    return int(w + up[0] + 1) if up.size else None


def _abrupt(lr: np.ndarray) -> int | None:
    """The first update whose LR is below `ABRUPT` x the previous one (from a non-zero LR), or None."""
    prev, cur = lr[:-1], lr[1:]
    hit = np.flatnonzero((prev > 0) & (cur < ABRUPT * prev) & (prev > 1e-3 * float(lr.max())))
    return int(hit[0] + 1) if hit.size else None


def curve_notes(curve: Curve) -> list[str]:
    """Notes on a fitted curve that lies outside the laws' support."""
    name = curve.label or curve.source or "a curve"
    notes = []
    if curve.data_passes is not None and curve.data_passes > 1.0:
        notes.append(f"fitted on multi-epoch data: {name} made {curve.data_passes:.2f} passes over its training "
                     "data; the laws describe single-pass training (repeated data lowers the training loss and "
                     "can raise the validation loss)")
    r = _rise(curve.lr)
    if r is not None:
        notes.append(f"fitted curve {name} has an LR that rises again after the warm-up (update {r}): outside "
                     "the laws' support (they were derived for non-increasing LRs after warm-up)")
    return notes


def schedule_notes(lr: np.ndarray, scope: FitScope) -> list[str]:
    """Notes on predicting the run with per-update LRs ``lr`` from a fit that covered ``scope``."""
    notes = []
    cold = is_cold(lr)
    r = _rise(lr)
    if r is not None:
        notes.append(f"the LR rises again after the warm-up (update {r}: a restart or cycle): outside the laws' "
                     "support; the multi-power law counts a rise as a negative drop, the others likewise, untested")
    if cold and not scope.cold:
        notes.append("no warm-up, and the fit saw no run without one: the start-up cost of starting at the peak LR "
                     "was not measured (fit with a run without a warm-up too: the design's start-up probe)")
    if not cold and not scope.warmup:
        notes.append("a warm-up, and the fit saw no run with one: the fit measured the cost of starting at the peak "
                     "LR, not the warm-up's gain")
    a = _abrupt(lr)
    if a is not None and not scope.abrupt:
        notes.append(f"abrupt LR drop at update {a} (a step), and the fitted runs had none")
    if lr.size > 1.05 * scope.max_total:
        notes.append(f"horizon {lr.size} updates is {lr.size / scope.max_total:.1f}x the longest fitted run "
                     f"({scope.max_total}): extrapolated in time")
    lo, hi = scope.peak_lrs
    peak = float(lr.max())
    if peak > 1.1 * hi or peak < lo / 1.1:
        notes.append(f"peak LR {peak:.3g} is outside the fitted runs' peaks ({lo:.3g}..{hi:.3g}): the laws' "
                     "parameters depend on the peak LR; fit at the peak you will use")
    if scope.passes_per_update is not None and scope.passes_per_update * lr.size > 1.0:
        notes.append(f"this run would make {scope.passes_per_update * lr.size:.2f} passes over the training "
                     "data (multi-epoch): outside the laws' single-pass support")
    return notes
