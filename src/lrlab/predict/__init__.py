"""`lrlab predict`: a schedule's loss curve from a few recorded runs, by a fitted loss-curve law.

    >>> import lrlab.predict as lp                                      # doctest: +SKIP
    >>> curves = lp.load_runs("lrlab-runs/design")                      # doctest: +SKIP
    >>> law = lp.fit(curves, law="multipower")                          # doctest: +SKIP
    >>> law.predict("wsd(warmup=0.05, decay=0.2)", total=2000).final    # doctest: +SKIP

Modules: `laws` (the formulas), `curves` (inputs: `Curve`, `load_runs`), `fit` (`fit`, `FittedLaw`, `Prediction`),
`support` (where a law is outside its support), `design` (which runs to make). numpy only; scipy loads when a fit
runs. See docs/predict.md.
"""

from __future__ import annotations

from lrlab.predict.curves import Curve, curve_from_schedule, load_runs, lr_sequence
from lrlab.predict.design import DEFAULT_BRANCHES, Branch, Design, design_runs, run_design
from lrlab.predict.fit import LEVEL, FitQuality, FittedLaw, HeldOut, Prediction, fit
from lrlab.predict.laws import LAW_NAMES, LAWS, Law, get_law
from lrlab.predict.plot import plot_fit
from lrlab.predict.support import FitScope

__all__ = [
    "DEFAULT_BRANCHES", "LAWS", "LAW_NAMES", "LEVEL", "Branch", "Curve", "Design", "FitQuality", "FitScope",
    "FittedLaw", "HeldOut", "Law", "Prediction", "curve_from_schedule", "design_runs", "fit", "get_law",
    "load_runs", "lr_sequence", "plot_fit", "run_design",
]
