"""Schedule preview: phases, value tables, a terminal plot and a PNG. Analysis returns data; drawing is separate.

matplotlib and plotext are imported inside the drawing functions only.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np
import numpy.typing as npt

from lrlab.compose import Join, Overlay
from lrlab.errors import LrlabError
from lrlab.files import atomic_write_bytes
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
            return " ".join(x for x in text if x).replace("``", "").split(". ")[0].rstrip(".")
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
    """Everything a plot or a table shows: clocks, values, phases, and where the peak and minimum are.

    ``t``/``values`` are the points to draw (at most about ``points`` of them, always including the phase
    boundaries, the peak and the minimum); ``peak``/``min`` are found on every integer clock when the run is at
    most `EXACT_LIMIT` clock units long, so a restart's spike cannot fall between two samples.
    """

    spec: str
    total: float
    t: FloatArray
    values: FloatArray
    phases: list[Phase]
    peak_t: float
    peak: float
    min_t: float
    min: float


#: runs up to this many clock units are evaluated at every integer clock to find the peak and the minimum
EXACT_LIMIT = 1_000_000


def _extrema(t: FloatArray, v: FloatArray) -> tuple[int, int]:
    """Indices of the peak (first maximum) and the minimum.

    The minimum is looked for after the peak (the floor a decay reaches; a warm-up's start is not
    interesting), unless nothing after the peak is lower: then (a rising schedule) it is the overall minimum.
    """
    i_max = int(np.argmax(v))
    i_min = i_max + int(np.argmin(v[i_max:]))
    if v[i_min] >= v[i_max]:
        i_min = int(np.argmin(v))
    return i_max, i_min


def _decimate(n: int, v: FloatArray, points: int, keep: list[int]) -> npt.NDArray[np.int64]:
    """Indices into ``v`` to draw: the lowest and highest value of each of ``points // 2`` buckets (so spikes
    and dips survive), plus ``keep``."""
    if n <= points:
        return np.arange(n, dtype=np.int64)
    buckets = max(points // 2, 1)
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    idx = [0, n - 1, *keep]
    for a, b in itertools.pairwise(edges.tolist()):
        if b > a:
            seg = v[a:b]
            idx += [a + int(np.argmin(seg)), a + int(np.argmax(seg))]
    return np.unique(np.asarray(idx, dtype=np.int64))


def check_total(total: object) -> None:
    """Raise `LrlabError` unless ``total`` is a finite number of clock units > 0."""
    if isinstance(total, bool) or not isinstance(total, (int, float, np.integer, np.floating)) or not (
        0 < total < float("inf")
    ):
        raise LrlabError(f"total must be a positive number of clock units, got {total}")


def preview(schedule: Schedule, total: float, points: int = 2000) -> Preview:
    """Evaluate a schedule over ``[0, total]`` for a plot: every integer clock when ``total`` is at most
    `EXACT_LIMIT`, else ``points`` samples plus the phase boundaries.

    Args:
      schedule: the schedule (bound to ``total`` here if it has fractions or open lengths).
      total: the run's length in clock units (> 0).
      points: about how many points to keep for drawing (>= 2).
    Returns:
      A `Preview`. Raises `LrlabError` for a bad ``total``.
    """
    check_total(total)
    if points < 2:
        raise LrlabError(f"points must be >= 2, got {points}")
    bound = schedule.bind(total) if schedule.needs_total else schedule
    ph = phases(bound, total)
    edges = sorted({x for p in ph for x in (p.start, p.start - 1) if 0 <= x <= total})
    if total <= EXACT_LIMIT:
        t_all = np.arange(0, int(np.ceil(total)) + 1, dtype=np.float64)
    else:
        t_all = np.unique(np.concatenate([np.round(np.linspace(0, total, points)), edges]))
    v_all = bound.values(t_all)
    i_max, i_min = _extrema(t_all, v_all)
    keep = [i_max, i_min, *np.searchsorted(t_all, edges).tolist()]
    idx = _decimate(t_all.shape[0], v_all, points, [min(i, t_all.shape[0] - 1) for i in keep])
    return Preview(str(schedule), float(total), t_all[idx], v_all[idx], ph, float(t_all[i_max]),
                   float(v_all[i_max]), float(t_all[i_min]), float(v_all[i_min]))


def value_table(schedule: Schedule, total: float, at: list[float] | None = None) -> list[tuple[float, float]]:
    """(clock, value) rows; by default at 0, each phase boundary, 10 % steps, the last update and total."""
    bound = schedule.bind(total) if schedule.needs_total else schedule
    if at is None:
        marks = {0.0, float(total) - 1, float(total)}
        marks |= {round(total * k / 10) for k in range(1, 10)}
        marks |= {p.start for p in phases(bound, total)}
        at = sorted(m for m in marks if 0 <= m <= total)
    return [(float(x), float(y)) for x, y in zip(at, bound.values(np.asarray(at, dtype=np.float64)))]


def _need(module: str, what: str) -> NoReturn:
    raise LrlabError(f"{what} needs {module}, which is not installed: pip install 'lrlab[plot]'")


def _atomic_save(fig: object, path: Path) -> None:
    import io

    buf = io.BytesIO()
    try:
        # the format from the file's extension, as savefig(path) would; none: matplotlib's default (png)
        fig.savefig(buf, format=path.suffix[1:] or None, dpi=120)  # type: ignore[attr-defined]
        atomic_write_bytes(path, buf.getvalue())
    except OSError as e:
        raise LrlabError(f"cannot write the plot to {str(path)!r}: {e.strerror or e}") from None
    except ValueError as e:  # matplotlib: an extension it has no writer for
        raise LrlabError(f"cannot write the plot to {str(path)!r}: {e}") from None


def check_plot_path(path: str | Path) -> Path:
    """``path`` as a `Path`; raises `LrlabError` when it is an existing folder (``run.v2`` would otherwise be
    read as a file of format "v2")."""
    out = Path(path)
    if out.is_dir():
        raise LrlabError(f"cannot write the plot to {str(out)!r}: it is a folder; give a file name such as "
                         f"{str(out / 'lr.png')!r}")
    return out


def plot_png(p: Preview, path: str | Path, *, base_lr: float | None = None) -> Path:
    """Write a PNG of the schedule with phase boundaries dashed and the peak/minimum marked.

    Raises `LrlabError` when matplotlib is missing or the file cannot be written (`check_plot_path`).
    """
    out = check_plot_path(path)
    try:
        import matplotlib
    except ImportError:
        _need("matplotlib", "the PNG plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scale = 1.0 if base_lr is None else base_lr
    fig, ax = plt.subplots(figsize=(8, 4))
    try:
        ax.plot(p.t, p.values * scale, color="#1f6feb", lw=2)
        for ph in p.phases[1:]:
            ax.axvline(ph.start, color="#888", ls="--", lw=1)
        peak_label = f"peak {p.peak * scale:.4g} @ {p.peak_t:g}"
        ax.scatter([p.peak_t], [p.peak * scale], color="#d73a49", zorder=3, label=peak_label)
        ax.scatter([p.min_t], [p.min * scale], color="#2da44e", zorder=3,
                   label=f"min {p.min * scale:.4g} @ {p.min_t:g}")
        ax.set_xlabel("clock t (optimizer updates)")
        ax.set_ylabel("learning rate" if base_lr is not None else "LR factor")
        ax.set_title(p.spec, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
        fig.tight_layout()
        _atomic_save(fig, out)
    finally:
        plt.close(fig)
    return out


def plot_terminal(p: Preview, *, width: int = 80, height: int = 20) -> str:
    """The plot as text for the terminal (plotext), phase boundaries as vertical lines, the peak marked ``▲``
    and the minimum ``▼``.

    Raises `LrlabError` when plotext is missing.
    """
    try:
        import plotext as plx
    except ImportError:
        _need("plotext", "the terminal plot")

    plx.clf()
    plx.plotsize(width, height)
    plx.theme("clear")
    plx.plot(p.t.tolist(), p.values.tolist(), marker="braille")
    for ph in p.phases[1:]:
        plx.vline(ph.start)
    plx.scatter([p.peak_t], [p.peak], marker="▲", label=f"peak {p.peak:.4g} @ {p.peak_t:g}")
    plx.scatter([p.min_t], [p.min], marker="▼", label=f"min {p.min:.4g} @ {p.min_t:g}")
    plx.title(p.spec)
    plx.xlabel("t")
    return str(plx.build())
