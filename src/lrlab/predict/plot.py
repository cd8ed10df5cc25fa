"""Display of a fit: observed vs fitted curves, and the predicted curves with their intervals (matplotlib, lazy)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lrlab.errors import LrlabError
from lrlab.files import atomic_write_bytes
from lrlab.predict.curves import Curve
from lrlab.predict.fit import FittedLaw, Prediction
from lrlab.predict.laws import is_cold


def plot_fit(fitted: FittedLaw, curves: Sequence[Curve], predictions: Sequence[Prediction],
             path: str | Path) -> Path:
    """Write a PNG: left, each fitted curve's evaluations (dots) and the law's curve for its LRs (line); right,
    each prediction with its interval (band). Returns the path. `LrlabError` when matplotlib is missing."""
    out = Path(path)
    if out.suffix.lower() != ".png":
        raise LrlabError(f"plot path must end in .png, got {str(out)!r}")
    try:
        import matplotlib
    except ImportError:
        raise LrlabError("the plot needs matplotlib: pip install 'lrlab[plot]' (or pass --no-plot)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))
    try:
        colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        labels = list(dict.fromkeys(c.label for c in curves))
        for c in curves:
            colour = colours[labels.index(c.label) % len(colours)]
            keep = c.steps > 0
            left.plot(c.steps[keep], c.loss[keep], ".", ms=3, color=colour, alpha=0.6)
        for label in labels:
            c = next(x for x in curves if x.label == label)
            at = np.unique(np.linspace(1, c.total, 200).round().astype(np.int64))
            p = fitted.predict(c.lr, steps=at, interval=False)
            left.plot(p.steps, p.loss, color=colours[labels.index(label) % len(colours)], lw=1.5,
                      label=label[:48] + (" (no warm-up)" if is_cold(c.lr) else ""))
        left.set_title(f"fitted: {fitted.law} law on {fitted.n_curves} curves (in-fit MAE "
                       f"{fitted.quality.mae:.3f})", fontsize=10)
        for i, p in enumerate(predictions):
            colour = colours[i % len(colours)]
            right.fill_between(p.steps, p.lower, p.upper, color=colour, alpha=0.2, lw=0)
            right.plot(p.steps, p.loss, color=colour, lw=1.5, ls="--" if p.notes else "-",
                       label=f"{p.label[:40]}: {p.final:.3f}" + (" *" if p.notes else ""))
        right.set_title("predicted (band: 90 % bootstrap interval; dashed, *: outside the law's support)",
                        fontsize=10)
        lows = [float(np.min(p.lower[len(p.lower) // 10:])) for p in predictions] + [
            float(np.min(c.loss)) for c in curves]
        highs = [float(np.max(p.upper[len(p.upper) // 10:])) for p in predictions]
        if highs:
            right.set_ylim(min(lows) - 0.02, max(highs) + 0.02)
        for ax in (left, right):
            ax.set_xlabel("updates")
            ax.set_ylabel("loss")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="upper right")
        top = float(np.quantile(np.concatenate([c.loss[c.steps > 0] for c in curves]), 0.9))
        left.set_ylim(min(float(np.min(c.loss)) for c in curves) - 0.02, top)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110)
        atomic_write_bytes(out, buf.getvalue())
    finally:
        plt.close(fig)
    return out
