"""Schedule preview: phases, value tables, a terminal plot and a PNG. Analysis returns data; drawing is separate.

matplotlib and plotext are imported inside the drawing functions only.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lrlab.compose import Join, Overlay
from lrlab.errors import LrlabError
from lrlab.schedule import FloatArray, Schedule


@dataclass(frozen=True)
class Phase:
    """One piece of a schedule on the global clock: ``[start, end)`` (``end`` None: open)."""

    start: float
    end: float | None
    spec: str
    formula: str


def _formula(s: Schedule) -> str:
    doc = (type(s).__doc__ or "").strip()
    lines = doc.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("Formula"):
            text = [line.strip().removeprefix("Formula:").strip()]
            for nxt in lines[i + 1 :]:
                if not nxt.strip() or nxt.strip().startswith(("Args", "Matches", ">>>")):
                    break
                text.append(nxt.strip())
            return " ".join(x for x in text if x).replace("``", "").split(". ")[0]
    return lines[0] if lines else type(s).__name__


def phases(schedule: Schedule, total: float) -> list[Phase]:
    """Top-level phases of a bound schedule over ``[0, total)``."""
    if isinstance(schedule, Join):
        starts = schedule.boundaries()
        out = []
        for i, piece in enumerate(schedule.pieces):
            end = starts[i + 1] if i + 1 < len(starts) else float(total)
            out.append(Phase(starts[i], end, str(piece), _formula(piece)))
        return out
    if isinstance(schedule, Overlay):
        L = float(schedule.head.length)  # type: ignore[arg-type]
        return [Phase(0.0, L, str(schedule.head), _formula(schedule.head)),
                Phase(L, float(total), str(schedule.base), _formula(schedule.base))]
    return [Phase(0.0, float(total), str(schedule), _formula(schedule))]


@dataclass(frozen=True)
class Preview:
    """Everything a plot or a table shows: clocks, values, phases, and where the peak and minimum are."""

    spec: str
    total: float
    t: FloatArray
    values: FloatArray
    phases: list[Phase]
    peak_t: float
    peak: float
    min_t: float
    min: float


def preview(schedule: Schedule, total: float, points: int = 2000) -> Preview:
    """Sample a schedule over ``[0, total]`` (integer clocks when ``total`` is small)."""
    if not total or total <= 0:
        raise LrlabError(f"total must be a positive number of clock units, got {total}")
    bound = schedule.bind(total) if schedule.needs_total else schedule
    if total <= points:
        t = np.arange(0, int(np.ceil(total)) + 1, dtype=np.float64)
    else:
        t = np.unique(np.round(np.linspace(0, total, points)))
    v = bound.values(t)
    i_max = int(np.argmax(v))
    # the minimum after the peak: the floor a decay reaches (a warm-up's start is not interesting)
    i_min = i_max + int(np.argmin(v[i_max:]))
    return Preview(str(schedule), float(total), t, v, phases(bound, total), float(t[i_max]), float(v[i_max]),
                   float(t[i_min]), float(v[i_min]))


def value_table(schedule: Schedule, total: float, at: list[float] | None = None) -> list[tuple[float, float]]:
    """(clock, value) rows; by default at 0, each phase boundary, 10 % steps, the last update and total."""
    bound = schedule.bind(total) if schedule.needs_total else schedule
    if at is None:
        marks = {0.0, float(total) - 1, float(total)}
        marks |= {round(total * k / 10) for k in range(1, 10)}
        marks |= {p.start for p in phases(bound, total)}
        at = sorted(m for m in marks if 0 <= m <= total)
    return [(float(x), float(y)) for x, y in zip(at, bound.values(np.asarray(at, dtype=np.float64)))]


def _atomic_save(fig: object, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=120)  # type: ignore[attr-defined]
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def plot_png(p: Preview, path: str | Path, *, base_lr: float | None = None) -> Path:
    """Write a PNG of the schedule with phase boundaries dashed and the peak/minimum marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scale = 1.0 if base_lr is None else base_lr
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(p.t, p.values * scale, color="#1f6feb", lw=2)
    for ph in p.phases[1:]:
        ax.axvline(ph.start, color="#888", ls="--", lw=1)
    peak_label = f"peak {p.peak * scale:.4g} @ {p.peak_t:g}"
    ax.scatter([p.peak_t], [p.peak * scale], color="#d73a49", zorder=3, label=peak_label)
    ax.scatter([p.min_t], [p.min * scale], color="#2da44e", zorder=3, label=f"min {p.min * scale:.4g} @ {p.min_t:g}")
    ax.set_xlabel("clock t (optimizer updates)")
    ax.set_ylabel("learning rate" if base_lr is not None else "LR factor")
    ax.set_title(p.spec, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    out = Path(path)
    _atomic_save(fig, out)
    plt.close(fig)
    return out


def plot_terminal(p: Preview, *, width: int = 80, height: int = 20) -> str:
    """The plot as text for the terminal (plotext)."""
    import plotext as plx

    plx.clf()
    plx.plotsize(width, height)
    plx.theme("clear")
    plx.plot(p.t.tolist(), p.values.tolist(), marker="braille")
    for ph in p.phases[1:]:
        plx.vline(ph.start)
    plx.title(p.spec)
    plx.xlabel("t")
    return str(plx.build())
