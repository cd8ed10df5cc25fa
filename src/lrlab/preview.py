"""Schedule preview: phases, value tables, a terminal plot and a PNG. Analysis returns data; drawing is separate.

matplotlib and plotext are imported inside the drawing functions only.
"""

from __future__ import annotations

import itertools
import re
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np
import numpy.typing as npt

from lrlab.compose import Join, Overlay
from lrlab.errors import LrlabError
from lrlab.families import (
    Cooldown,
    Cosine,
    CosineRestarts,
    Cyclic,
    Exponential,
    InverseSqrt,
    Linear,
    OneCycle,
    Piecewise,
    Polynomial,
    Warmup,
)
from lrlab.files import atomic_write_bytes
from lrlab.schedule import FloatArray, Schedule


@dataclass(frozen=True)
class Phase:
    """One piece of a schedule on the global clock: ``[start, end)`` (``end`` None: open)."""

    start: float
    end: float | None
    spec: str
    formula: str


def plain(text: str) -> str:
    """Docstring text for a terminal: RST/Markdown literals (````x````, ```x```) without their marks."""
    return re.sub(r"``(.+?)``|`([^`]+)`", lambda m: m.group(1) or m.group(2), text)


def summary(obj: object) -> str:
    """The first sentence of ``obj``'s docstring, as plain text on one line."""
    doc = (getattr(obj, "__doc__", None) or "").strip()
    para = " ".join(line.strip() for line in doc.split("\n\n")[0].splitlines())
    first = re.split(r"(?<=[.!?])\s(?=[A-Z])", para, maxsplit=1)[0]
    return plain(first)


_WARMUP = {"linear": "floor + (peak - floor) * p",
           "cosine": "floor + (peak - floor) * (1 - cos(pi * p)) / 2",
           "sqrt": "floor + (peak - floor) * (1 - sqrt(1 - p))",
           "exponential": "floor + (peak - floor) * (1 - exp(-2 p)) / (1 - exp(-2))"}
_COOLDOWN = {"linear": "floor + (peak - floor) * (1 - p)",
             "cosine": "floor + (peak - floor) * (1 + cos(2 pi * cycles * p)) / 2",
             "sqrt": "floor + (peak - floor) * (1 - sqrt(p))",
             "power": "floor + (peak - floor) * (1 - p ** power)",
             "exp": "floor + (peak - floor) * (ratio ** p - ratio) / (1 - ratio)"}


def formula(s: Schedule) -> str:
    """The formula of ``s`` as plain text, for the shape, mode or form ``s`` uses (not every shape its family
    has); ``t`` is the clock local to ``s``. A composite gets its docstring's first line."""
    if isinstance(s, Warmup):
        text = _WARMUP[s.shape] + ", p = t / total"
        return text if s.peak is not None else text + " (peak: where the next piece starts)"
    if isinstance(s, Cooldown):
        f = _COOLDOWN[s.shape]
        if s.shape == "cosine" and s.cycles == 0.5:
            f = "floor + (peak - floor) * (1 + cos(pi * p)) / 2"
        return f + ", p = min(t / total, 1)"
    if isinstance(s, Cosine):
        c = "(1 + cos(pi * p)) / 2" if s.cycles == 0.5 else "(1 + cos(2 pi * cycles * p)) / 2"
        if s.exponent != 1:
            c = f"({c}) ** exponent"
        return f"floor + (peak - floor) * {c}, p = " + ("t / total" if s.periodic else "min(t / total, 1)")
    if isinstance(s, Linear):
        return "peak + (floor - peak) * t / total, then floor"
    if isinstance(s, Polynomial):
        if s.k != 1:
            return "floor + (peak - floor) * (1 - min(t, total) ** k / total ** k) ** power"
        return "floor + (peak - floor) * (1 - min(t, total) / total) ** power"
    if isinstance(s, Exponential):
        p = "floor(t / every)" if s.staircase else ("t" if s.every == 1 else "t / every")
        return f"peak * gamma ** {p}" if s.gamma is not None else f"peak * exp(-rate * {p})"
    if isinstance(s, InverseSqrt):
        if s.power == 0.5:
            return "peak / sqrt((t + timescale) / timescale)"
        return "peak * ((t + timescale) / timescale) ** -power"
    if isinstance(s, OneCycle):
        how = "cosine" if s.shape == "cosine" else "linear"
        if s.three_phase:
            return (f"initial -> peak until pct_start * total, back to initial until 2 * pct_start * total, then "
                    f"-> floor at total - 1 ({how} annealing)")
        return f"initial -> peak until pct_start * total, then -> floor at total - 1 ({how} annealing)"
    if isinstance(s, Cyclic):
        grow = {"triangular": "", "triangular2": ", the height halved every cycle",
                "exp_range": ", the height times gamma ** t"}[s.mode]
        return f"triangles between floor and peak: up for up, down for down clock units{grow}"
    if isinstance(s, CosineRestarts):
        top = "peak" if s.decay == 1 else "peak * decay ** i"
        x = "u / L" if s.k == 1 else "(u / L) ** k"
        where = "u = t mod period, L = period" if s.mult == 1 else \
            "u the clock within cycle i, which lasts L = period * mult ** i"
        text = f"floor + ({top} - floor) * (1 + cos(pi * {x})) / 2, {where}"
        if s.decay != 1 and s.mult == 1:
            text += ", i = floor(t / period)"
        return text + ("; floor after limit cycles" if s.limit else "")
    if isinstance(s, Piecewise):
        return {"constant": "levels[i] from times[i] on",
                "linear": "levels interpolated linearly between times",
                "cosine": "levels interpolated by a half cosine between times"}[s.shape]
    doc = (type(s).__doc__ or "").strip()
    lines = doc.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("Formula"):
            parts = [line.strip().removeprefix("Formula:").strip()]
            for nxt in lines[i + 1 :]:
                if not nxt.strip() or nxt.strip().startswith(("Args", "Matches", ">>>")):
                    break
                parts.append(nxt.strip())
            return plain(" ".join(x for x in parts if x)).split(". ")[0].rstrip(".")
    return summary(type(s)) or type(s).__name__


def phases(schedule: Schedule, total: float) -> list[Phase]:
    """Top-level phases of a bound schedule over ``[0, total)``."""
    if isinstance(schedule, Join):
        starts = schedule.boundaries()
        out = []
        for i, piece in enumerate(schedule.pieces):
            end = starts[i + 1] if i + 1 < len(starts) else float(total)
            out.append(Phase(starts[i], end, str(piece), formula(piece)))
        return out
    if isinstance(schedule, Overlay):
        L = float(schedule.head.length)  # type: ignore[arg-type]
        return [Phase(0.0, L, str(schedule.head), formula(schedule.head)),
                Phase(L, float(total), str(schedule.base), formula(schedule.base))]
    return [Phase(0.0, float(total), str(schedule), formula(schedule))]


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


def _several(p: Preview | Sequence[Preview]) -> list[Preview]:
    ps = [p] if isinstance(p, Preview) else list(p)
    if not ps:
        raise LrlabError("nothing to plot: give at least one schedule")
    return ps


def _positive(t: FloatArray, v: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The points a log axis can show (values > 0)."""
    keep = v > 0
    return t[keep], v[keep]


#: line colours of overlaid schedules, PNG (matplotlib's tab10) and terminal (plotext's names)
_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
_TERM_COLOURS = ("blue", "orange", "green", "red", "magenta", "cyan", "gray", "black")
#: marker of each overlaid schedule in a terminal without colours (piped)
_TERM_MARKERS = ("braille", "•", "x", "+", "o", "*", "#", "@")


def plot_png(p: Preview | Sequence[Preview], path: str | Path, *, base_lr: float | None = None,
             log_y: bool = False) -> Path:
    """Write a PNG of one schedule (phase boundaries dashed, peak and minimum marked) or of several overlaid,
    one colour and legend entry each.

    Args:
      p: a `Preview`, or several (each schedule's own total may differ).
      path: the file (its extension picks the format, default PNG).
      base_lr: multiply the values by it (plot absolute LRs).
      log_y: a logarithmic value axis (values <= 0 are left out).
    Raises `LrlabError` when matplotlib is missing or the file cannot be written (`check_plot_path`).
    """
    ps = _several(p)
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
        for i, q in enumerate(ps):
            t, v = _positive(q.t, q.values) if log_y else (q.t, q.values)
            colour = _COLOURS[i % len(_COLOURS)]
            ax.plot(t, v * scale, color=colour, lw=2, label=q.spec if len(ps) > 1 else None)
        if len(ps) == 1:
            q = ps[0]
            for ph in q.phases[1:]:
                ax.axvline(ph.start, color="#888", ls="--", lw=1)
            for at, value, what, colour in ((q.peak_t, q.peak, "peak", "#d73a49"),
                                            (q.min_t, q.min, "min", "#2da44e")):
                if value > 0 or not log_y:
                    ax.scatter([at], [value * scale], color=colour, zorder=3,
                               label=f"{what} {value * scale:.4g} @ {at:g}")
            ax.set_title(q.spec, fontsize=10)
        if log_y:
            ax.set_yscale("log")
        ax.set_xlabel("clock t (optimizer updates)")
        ax.set_ylabel("learning rate" if base_lr is not None else "LR factor")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
        fig.tight_layout()
        _atomic_save(fig, out)
    finally:
        plt.close(fig)
    return out


def terminal_width() -> int:
    """Columns for a terminal plot: the terminal's (``COLUMNS`` when set; 80 when piped), at most 120."""
    return max(40, min(shutil.get_terminal_size((80, 24)).columns, 120))


def plot_terminal(p: Preview | Sequence[Preview], *, width: int | None = None, height: int = 20,
                  log_y: bool = False, colour: bool | None = None) -> str:
    """The plot as text for the terminal (plotext): one schedule with its phase boundaries as vertical lines,
    the peak marked ``▲`` and the minimum ``▼``; or several overlaid, one colour and legend entry each.

    Args:
      p: a `Preview`, or several.
      width: columns (default `terminal_width`); height: rows.
      log_y: a logarithmic value axis (values <= 0 are left out).
      colour: ANSI colours (overlaid schedules in colours); default: when stdout is a terminal. Without, no
        escape codes, and each overlaid schedule has its own marker.
    Raises `LrlabError` when plotext is missing.
    """
    ps = _several(p)
    if colour is None:
        colour = sys.stdout.isatty()
    try:
        import plotext as plx
    except ImportError:
        _need("plotext", "the terminal plot")

    plx.clf()
    plx.plotsize(width or terminal_width(), height)
    plx.theme("clear")
    if log_y:
        plx.yscale("log")
    for i, q in enumerate(ps):
        t, v = _positive(q.t, q.values) if log_y else (q.t, q.values)
        if len(ps) == 1:
            plx.plot(t.tolist(), v.tolist(), marker="braille")
        elif colour:
            plx.plot(t.tolist(), v.tolist(), marker="braille", label=f"{i + 1}",
                     color=_TERM_COLOURS[i % len(_TERM_COLOURS)])
        else:
            plx.plot(t.tolist(), v.tolist(), marker=_TERM_MARKERS[i % len(_TERM_MARKERS)], label=f"{i + 1}")
    if len(ps) == 1:
        q = ps[0]
        for ph in q.phases[1:]:
            plx.vline(ph.start)
        for at, value, what, mark in ((q.peak_t, q.peak, "peak", "▲"), (q.min_t, q.min, "min", "▼")):
            if value > 0 or not log_y:
                plx.scatter([at], [value], marker=mark, label=f"{what} {value:.4g} @ {at:g}")
        plx.title(q.spec)
    plx.xlabel("t")
    text = str(plx.build())
    if not colour:  # plotext resets the colour at every line's end, even in its colourless theme
        text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    if len(ps) > 1:  # the legend names schedules by number; long specs would not fit in the plot
        text += "\n" + "\n".join(f"  {i + 1}: {q.spec}" for i, q in enumerate(ps))
    return text
