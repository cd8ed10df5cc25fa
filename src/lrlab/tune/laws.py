"""The bridge to `lrlab.predict`: fit a loss-curve law on one peak LR's trunk and cool-down curves, and predict the
final loss of another schedule at that peak, with an interval. Nothing else in `lrlab.tune` touches the laws.

A fit that fails (too few points, a diverged curve, the optimiser giving up) is not an error: that peak then has
no predictions and tune decides on its measured runs alone (`PeakFit.error` says why).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lrlab.errors import LrlabError
from lrlab.tune.choose import Estimate

#: the law tune fits by default (`lrlab.predict`'s names: multipower, momentum, s1)
DEFAULT_LAW = "multipower"
#: bootstrap replicates of a fit (its interval): the confirmation runs, not the interval, settle close calls, and
#: each replicate is a full fit (~0.15 s for the multi-power law on one peak's curves at 1,000 updates)
BOOTSTRAP = 20


@dataclass(frozen=True, kw_only=True)
class Chain:
    """One observed run from update 0: the LR of every update and the loss at some steps.

    Attributes:
        label: what it is (``trunk``, ``cooldown@400``, ``final``).
        lrs: absolute LR of each update done, 0 .. len - 1.
        steps: updates done at each loss (increasing, <= len(lrs)).
        losses: the loss at each of ``steps``.
    """

    label: str
    lrs: np.ndarray
    steps: tuple[int, ...]
    losses: tuple[float, ...]

    @property
    def diverged(self) -> bool:
        return not all(math.isfinite(v) for v in self.losses)


@dataclass(frozen=True, kw_only=True)
class PeakFit:
    """A law fitted on one peak LR's chains; ``fitted`` is `lrlab.predict`'s fitted law (None when the fit failed,
    with ``error`` saying why)."""

    lr: float
    law: str
    chains: tuple[str, ...]
    fitted: Any = None
    error: str | None = None

    def summary(self) -> dict[str, Any]:
        """JSON-ready: the law, the curves it saw, its parameters and fit quality where `lrlab.predict` gives them."""
        out: dict[str, Any] = {"lr": self.lr, "law": self.law, "chains": list(self.chains), "error": self.error}
        f = self.fitted
        if f is not None:
            quality = getattr(f, "quality", None)
            out.update(params=dict(getattr(f, "params", {})), mae=getattr(quality, "mae", math.nan),
                       sigma=getattr(quality, "sigma", math.nan), n_evals=getattr(f, "n_evals", None),
                       notes=list(getattr(f, "notes", ())))
        return out


def fit_peak(lr: float, chains: Sequence[Chain], *, law: str = DEFAULT_LAW) -> PeakFit:
    """Fit ``law`` on the non-diverged ``chains`` of the peak ``lr`` (the trunk and its cool-down branches)."""
    usable = [c for c in chains if not c.diverged and len(c.steps) >= 2]
    names = tuple(c.label for c in usable)
    try:
        from lrlab.predict import Curve, fit
    except ImportError as e:  # pragma: no cover - lrlab.predict ships with lrlab
        return PeakFit(lr=lr, law=law, chains=names, error=f"lrlab.predict is not available ({e})")
    if not usable:
        return PeakFit(lr=lr, law=law, chains=names, error="no curve to fit (every one diverged)")
    curves = [Curve(lr=np.asarray(c.lrs, dtype=np.float64), steps=np.asarray(c.steps),
                    loss=np.asarray(c.losses, dtype=np.float64), label=c.label) for c in usable]
    try:
        fitted = fit(curves, law=law, quality=False, bootstrap=BOOTSTRAP)
    except (LrlabError, ValueError, RuntimeError, FloatingPointError, np.linalg.LinAlgError) as e:
        return PeakFit(lr=lr, law=law, chains=names, error=f"{type(e).__name__}: {e}")
    return PeakFit(lr=lr, law=law, chains=names, fitted=fitted)


def predict_final(fit: PeakFit, spec: str, horizon: int) -> Estimate | None:
    """The fitted law's final loss of ``spec`` (over ``horizon`` updates at the fit's peak LR), with its interval;
    None without a fit."""
    if fit.fitted is None:
        return None
    try:
        p = fit.fitted.predict(spec, total=horizon, peak_lr=fit.lr)
    except (LrlabError, ValueError, FloatingPointError) as e:
        raise LrlabError(f"predicting {spec!r} at peak {fit.lr:g}: {e}") from None
    loss = p.final
    lo, hi = p.final_interval
    if not math.isfinite(loss):
        return None
    notes = tuple(n for n in p.notes if not n.startswith("this run would make"))
    return Estimate(loss=loss, lo=min(lo, loss), hi=max(hi, loss), notes=notes)


def predict_curve(fit: PeakFit, spec: str, horizon: int, steps: Sequence[int]) -> np.ndarray | None:
    """The fitted law's loss of ``spec`` at ``steps`` (for the report's plot); None without a fit."""
    if fit.fitted is None:
        return None
    try:
        p = fit.fitted.predict(spec, total=horizon, peak_lr=fit.lr, steps=np.asarray(steps))
    except (LrlabError, ValueError, TypeError, FloatingPointError):
        return None
    return np.asarray(p.loss, dtype=np.float64)
