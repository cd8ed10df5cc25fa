"""Rendering of an `lrlab.bench.analysis.Analysis`: the terminal table (rich), ``report.md``, one PNG per figure and
a self-contained ``report.html`` (a jinja2 template; PNGs inlined as base64, inline CSS). It computes nothing the
analysis does not hold; matplotlib, rich and jinja2 are imported by the functions that use them (optional
dependencies). What each figure shows: docs/plots.md.
"""

from __future__ import annotations

import base64
import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lrlab.bench.analysis import Analysis, Contender, analyze, runs_at_best
from lrlab.files import atomic_write_bytes, atomic_write_text

#: the PNG files `write_plots` produces, in the order reports show them: file name -> caption
PLOTS: dict[str, str] = {
    "lr_curves.png": "Learning rate of every schedule at its best peak LR",
    "val_loss.png": "Validation loss of every schedule at its best peak LR (mean over seeds): the whole run, and "
                    "zoomed on the range where the schedules finish",
    "loss_curves.png": "Training (smoothed) and validation loss per schedule at its best peak LR",
    "sensitivity.png": "Final validation loss vs peak LR per schedule (the sensitivity curves; bars: seed std)",
    "gap_to_winner.png": "Gap of each schedule's final validation loss to the winner's, with its 95 % confidence "
                         "interval (paired t-test); hollow: not significant",
}
_INTRO = "Ranked at each schedule's own best peak LR (mean ± std over seeds)."

# ------------------------------------------------------------------------------------------------ formatting


def _fmt_loss(mean: float, std: float | None) -> str:
    if not math.isfinite(mean):
        return "diverged"
    return f"{mean:.3f} ± {std:.3f}" if std is not None else f"{mean:.3f}"


def _fmt_steps(c: Contender, target: float | None) -> str:
    if target is None:
        return "–"
    if c.steps_to_target is None:
        return "never"
    s = f"{c.steps_to_target:.0f}"
    return s if c.reached == c.n_seeds else f"{s} ({c.reached}/{c.n_seeds})"


def _fmt_sig(c: Contender) -> str:
    if c.rank == 1:
        return "winner"
    gap = f"+{c.gap:.3f}" if math.isfinite(c.gap) else "+inf"
    if c.significant is None:
        return f"{gap} ?"
    if c.gap_ci is not None:
        gap += f" ± {c.gap_ci[1] - c.gap:.3f}"
    return gap if c.significant else f"{gap} ≈"


#: how the table marks a best peak LR at the edge of its grid (the optimum may lie outside it)
EDGE_MARK = "(best at grid edge)"
#: what the marks in the table mean (printed under it)
LEGEND = ("vs #1: gap to the winner's final loss ± its 95 % confidence interval (paired t-test on the seed noise); "
          "≈: the interval includes 0, not significant; ?: no spread estimate (one seed); "
          f"{EDGE_MARK}: the best peak LR is the smallest or largest tried, so the optimum may lie outside the grid "
          "(raise --lr-extend); "
          "†: branched from a shared-prefix checkpoint")


def table_rows(a: Analysis) -> tuple[list[str], list[list[str]]]:
    """The ranked table as plain strings: (header, rows). Every renderer shows these same cells.

    Columns: rank; contender; its best peak LR (`EDGE_MARK` when it is the smallest or largest of the grid); final
    and best validation loss there (mean ± std over seeds); the first evaluation step at which it reached the
    target loss (``k/n``: only k of n seeds did); mean wall time per run; the gap to the winner's final loss with
    its 95 % interval and significance mark."""
    header = ["#", "schedule", "peak LR", "final val", "best val", "to target", "time", "vs #1"]
    rows = []
    for c in a.contenders:
        lr = f"{c.best_lr:.3g}" + (f" {EDGE_MARK}" if c.at_grid_edge else "")
        best = _fmt_loss(c.best_mean, c.best_std) if math.isfinite(c.best_mean) else "–"
        rows.append([str(c.rank), c.label + (" †" if c.branched else ""), lr, _fmt_loss(c.final_mean, c.final_std),
                     best, _fmt_steps(c, a.target_loss), f"{c.wall_time_s:.0f} s", _fmt_sig(c)])
    if a.single:  # one run (`lrlab train`): nothing to rank against
        keep = [1, 2, 3, 4, 6]
        return [header[i] for i in keep], [[r[i] for i in keep] for r in rows]
    return header, rows


def _wrap_units(units: Sequence[str], width: int, indent: str, sep: str = " · ") -> list[str]:
    """Lay ``units`` out on lines of at most ``width`` characters, joined by ``sep``, never breaking inside a unit
    (one longer than a line is broken at its spaces, like a long spec)."""
    lines: list[str] = []
    line = ""
    room = max(10, width - len(indent))
    for unit in units:
        if line and len(line) + len(sep) + len(unit) <= room:
            line += sep + unit
            continue
        if line:
            lines.append(indent + line)
        pieces = textwrap.wrap(unit, room, break_long_words=False, break_on_hyphens=False) or [unit]
        lines += [indent + piece for piece in pieces[:-1]]
        line = pieces[-1]
    if line:
        lines.append(indent + line)
    return lines


def stacked_lines(a: Analysis, width: int) -> list[list[str]]:
    """The ranked table for a narrow terminal (or a pipe): one block of lines per contender, no line wider than
    ``width`` unless a single unbreakable token is. A block is the rank and the contender's label (wrapped at
    spaces), then ``column value`` pairs for the other columns, wrapped between pairs, so every cell of
    `table_rows` appears whole."""
    header, rows = table_rows(a)
    blocks = []
    for row in rows:
        cells = dict(zip(header, row))
        if a.single:
            head = _wrap_units([cells["schedule"]], width, "")
        else:
            head = _wrap_units([cells["schedule"]], width, "    ")
            head[0] = f"{cells['#']:>2}. " + head[0][4:]
        fields = [f"{h} {x}" for h, x in zip(header, row) if h not in ("#", "schedule")]
        blocks.append(head + _wrap_units(fields, width, "    "))
    return blocks


def provenance(a: Analysis) -> str:
    """``Task lm · Python 3.11.7 · corpus sha256 1a2b3c4d5e6f · device cpu``: what the numbers were measured on (the
    ``lm`` corpus is the interpreter's own standard library, so it changes with the Python version; results differ
    between devices)."""
    parts = [f"Task {a.task}"]
    if a.python:
        parts.append(f"Python {a.python}")
    if a.corpus_sha256:
        parts.append(f"{'data' if a.task == 'vision' else 'corpus'} sha256 {a.corpus_sha256[:12]}")
    if a.device:
        parts.append(f"device {a.device}")
    return " · ".join(parts)


def summary_lines(a: Analysis) -> list[str]:
    """Plain-text lines under the table: what was compared, the target, the spread, branching, notes."""
    lines = []
    if a.single:
        c = a.contenders[0]
        lines.append(provenance(a))
        lines.append(f"{c.label} at peak LR {c.best_lr:.3g} on task {a.task}, {a.steps} updates: final val loss "
                     f"{_fmt_loss(c.final_mean, c.final_std)}, best {c.best_mean:.3f}.")
        if a.total_wall_time_s is not None:
            lines.append(f"Total wall time: {a.total_wall_time_s:.0f} s.")
        return lines + list(a.notes)
    if a.contenders:
        w = a.contenders[0]
        ties = [c.label for c in a.contenders[1:] if c.significant is False]
        head = f"Winner: {w.label} at peak LR {w.best_lr:.3g} (final val loss {_fmt_loss(w.final_mean, w.final_std)})"
        if ties:
            head += "; not significantly different: " + ", ".join(ties)
        lines.append(head + ".")
    seeds = ", ".join(map(str, a.paired_seeds)) or "none shared"
    lines.append(f"{provenance(a)}; {a.steps} updates per run; {a.n_runs} runs; ranked on seeds {seeds} at each "
                 "schedule's best peak LR.")
    if a.target_loss is not None:
        lines.append(f"Steps to target: first evaluation at or below {a.target_source}.")
    if a.sigma is not None:
        n = len(a.paired_seeds)
        raw = f" (one schedule's raw seed-to-seed std is {a.seed_std:.3f})" if a.seed_std is not None else ""
        se = a.sigma * math.sqrt(2 / n)
        lines.append(f"Noise: seeds are paired (same initial weights and data order for every schedule), so gaps are "
                     f"judged against the seed-to-seed scatter of the differences, sigma = {a.sigma:.3f} per seed "
                     f"({a.sigma_dof} dof){raw}. Each gap is tested with a paired t-test on that pooled noise "
                     f"(standard error sigma·√(2/{n}) = {se:.3f}); '≈' marks a gap whose "
                     f"{100 * (1 - a.alpha):.0f} % interval includes 0 (p ≥ {a.alpha:g}).")
    lines.extend(f"† {b}" for b in a.branches)
    if a.total_wall_time_s is not None:
        lines.append(f"Total wall time: {a.total_wall_time_s:.0f} s.")
    lines.extend(a.notes)
    return lines


def _style(c: Contender, single: bool) -> str:
    if single:
        return ""
    return "bold green" if c.rank == 1 else ("yellow" if c.significant is False else "")


def print_report(a: Analysis, console: Any = None) -> None:
    """Print the ranked table and the summary lines to the terminal (rich). The table is laid out in columns when
    it fits the console's width, else stacked (`stacked_lines`): every cell stays whole either way."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = console or Console()
    header, rows = table_rows(a)
    title = a.title if a.single else f"{a.title}: ranked at each schedule's best peak LR"
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for h in header:
        table.add_column(h, justify="left" if h in ("schedule", "vs #1") else "right", no_wrap=True)
    for c, row in zip(a.contenders, rows):
        table.add_row(*row, style=_style(c, a.single))
    if console.measure(table, options=console.options.update_width(10**6)).maximum <= console.width:
        console.print(table)
    else:
        console.print(Text(title, style="italic"), soft_wrap=True)
        for c, block in zip(a.contenders, stacked_lines(a, console.width)):
            for line in block:
                console.print(Text(line, style=_style(c, a.single)), soft_wrap=True)
    if not a.single:
        console.print(LEGEND, highlight=False, markup=False, style="dim")
    for line in summary_lines(a):
        console.print(line, highlight=False, markup=False)


def markdown(a: Analysis, *, plots: Sequence[str] = ()) -> str:
    """``report.md``: the table, the summary, the sensitivity grid and links to the PNGs."""
    header, rows = table_rows(a)
    out = [f"# {a.title}", "", _INTRO if not a.single else "One training run.", ""]
    out.append("| " + " | ".join(header) + " |")
    out.append("|" + "|".join("---" if h in ("schedule", "vs #1") else "---:" for h in header) + "|")
    out += ["| " + " | ".join(_md_cell(x) for x in r) + " |" for r in rows]
    out += [""] + ([f"_{_md_cell(LEGEND)}_", ""] if not a.single else [])
    out += [f"- {_md_cell(line)}" for line in summary_lines(a)] + [""]
    if a.has_grid:
        sens_header, sens_rows = sensitivity_rows(a)
        out += ["## Final validation loss at each peak LR", ""]
        out.append("| " + " | ".join(sens_header) + " |")
        out.append("|---|" + "---:|" * (len(sens_header) - 1))
        out += ["| " + " | ".join(_md_cell(x) for x in r) + " |" for r in sens_rows]
        out.append("")
    for name in plots:
        out += [f"![{PLOTS.get(name, name)}]({name})", ""]
    return "\n".join(out)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def sensitivity_rows(a: Analysis) -> tuple[list[str], list[list[str]]]:
    """Final validation loss per (contender, peak LR): header has every LR tried, '←' marks each best."""
    lrs = sorted({p.lr for c in a.contenders for p in c.grid})
    header = ["schedule"] + [f"{lr:.3g}" for lr in lrs]
    rows = []
    for c in a.contenders:
        by = {p.lr: p for p in c.grid}
        cells = [c.label]
        for lr in lrs:
            p = by.get(lr)
            cells.append("" if p is None else _fmt_loss(p.final_mean, p.final_std) + (" ←" if lr == c.best_lr else ""))
        rows.append(cells)
    return header, rows


# ------------------------------------------------------------------------------------------------- plotting

#: Okabe & Ito's colour-blind-safe palette, without its yellow (too faint on white) and black (the colour of the
#: validation and target lines); after these, the colours repeat with another line style and marker
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h", "*", "p")
LINESTYLES = ("-", "--", "-.", ":")


def plot_styles(shown: Sequence[Contender]) -> dict[str, dict[str, Any]]:
    """label -> matplotlib keyword arguments (color, marker, linestyle) for each contender, in rank order: colour,
    marker and line style all differ between neighbours, so the curves stay apart in grey and for colour-blind
    readers."""
    return {c.label: {"color": PALETTE[i % len(PALETTE)], "marker": MARKERS[i % len(MARKERS)],
                      "linestyle": LINESTYLES[(i // len(PALETTE)) % len(LINESTYLES)]}
            for i, c in enumerate(shown)}


def _legend_label(c: Contender, single: bool) -> str:
    return c.label if single else f"{c.rank}. {c.label}"


def _legend_below(fig: Any, handles: Sequence[Any], labels: Sequence[str]) -> None:
    """The legend under the axes, outside them (nothing covered), in as many columns as fit."""
    longest = max((len(x) for x in labels), default=10)
    ncol = max(1, min(len(labels), int(110 // max(longest, 12))))
    fig.legend(handles, labels, loc="outside lower center", ncol=ncol, fontsize=8, frameon=False)


def _save(fig: Any, path: Path) -> None:
    import io  # only the PNG writers need it

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    atomic_write_bytes(path, buf.getvalue())


def _finish(fig: Any, out: Path, name: str, written: list[str]) -> None:
    """Lay out, write atomically as ``out/name``, close, and record the figure's file name."""
    import matplotlib.pyplot as plt  # optional dependency

    if fig.get_layout_engine() is None:
        fig.tight_layout()
    _save(fig, out / name)
    plt.close(fig)
    written.append(name)


def _mean_curve(curves: Sequence[Sequence[float]]) -> np.ndarray:
    n = min(len(c) for c in curves)
    return np.mean(np.asarray([np.asarray(c[:n], dtype=np.float64) for c in curves]), axis=0)


def _smooth(y: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average (the first points average what exists so far)."""
    if y.size == 0 or window <= 1:
        return y
    c = np.cumsum(np.insert(y, 0, 0.0))
    idx = np.arange(1, y.size + 1)
    lo = np.maximum(0, idx - window)
    return (c[idx] - c[lo]) / (idx - lo)


def _val_range(doc: Mapping[str, Any], shown: Sequence[Contender]) -> list[float]:
    """Every finite point of the shown contenders' mean validation curves (what the loss plots zoom on)."""
    out: list[float] = []
    for c in shown:
        val = _mean_curve([r["result"]["val_loss"] for r in runs_at_best(doc, c)])
        out += [float(v) for v in val if math.isfinite(v)]
    return out


def decisive_range(finals: Sequence[float]) -> tuple[float, float, float]:
    """The y-range where the contenders finish apart: ``(low, high, cap)`` from just below the best final loss to
    just above the worst one that is not an outlier (``cap``: finals above it, more than 4 times as far from the
    best as the median final is, lie off the top). One contender, or equal finals, get ±5 % around them."""
    xs = sorted(v for v in finals if math.isfinite(v))
    if not xs:
        return 0.0, 1.0, math.inf
    best = xs[0]
    median = float(np.median(xs))
    cap = best + 4 * (median - best) if median > best else math.inf
    worst = max(v for v in xs if v <= cap)
    span = worst - best if worst > best else 0.05 * max(abs(best), 1e-3)
    return best - 0.12 * span, worst + 0.12 * span, cap


def plot_lr_curves(doc: Mapping[str, Any], shown: Sequence[Contender], style: Mapping[str, Mapping[str, Any]],
                   *, single: bool = False) -> Any:
    """``lr_curves.png``: the LR of every schedule at its best peak LR, on one figure; the legend below it."""
    import matplotlib.pyplot as plt  # optional dependency

    rows = math.ceil(len(shown) / 2)
    fig, ax = plt.subplots(figsize=(9, 4.2 + 0.22 * rows), layout="constrained")
    for i, c in enumerate(shown):
        lr = np.asarray(runs_at_best(doc, c)[0]["result"]["lr"], dtype=np.float64)
        every = max(1, lr.size // 8)
        ax.plot(np.arange(lr.size), lr, label=f"{_legend_label(c, single)} (peak {c.best_lr:.3g})",
                lw=2.4 if c.rank == 1 and not single else 1.5, ms=5,
                markevery=(min(lr.size - 1, (i * every) // max(1, len(shown))), every), **style[c.label])
    ax.set_xlabel("update")
    ax.set_ylabel("learning rate")
    ax.set_title("Learning-rate schedules at their best peak LR")
    ax.grid(alpha=0.3)
    _legend_below(fig, *ax.get_legend_handles_labels())
    return fig


def plot_val_loss(doc: Mapping[str, Any], a: Analysis, shown: Sequence[Contender],
                  style: Mapping[str, Mapping[str, Any]], finite_vals: Sequence[float]) -> Any:
    """``val_loss.png``: the mean validation loss of every schedule at its best peak LR. With several schedules:
    a small panel with the whole run (log scale) and a large one zoomed on `decisive_range`, from the best final
    loss to the worst (outliers are named above it); the legend below."""
    import matplotlib.pyplot as plt  # optional dependency

    curves = []
    for c in shown:
        runs = runs_at_best(doc, c)
        val = _mean_curve([r["result"]["val_loss"] for r in runs])
        curves.append((c, np.asarray(runs[0]["result"]["eval_steps"][: val.size]), val))
    rows = math.ceil(len(shown) / 2)
    if len(shown) == 1:
        fig, zoom = plt.subplots(figsize=(9, 4.5), layout="constrained")
        whole = None
    else:
        fig, (whole, zoom) = plt.subplots(1, 2, figsize=(11, 4.6 + 0.22 * rows), layout="constrained",
                                          gridspec_kw={"width_ratios": [1, 2.3]})
    for ax in (whole, zoom):
        if ax is None:
            continue
        for c, steps, val in curves:
            winner = c.rank == 1 and not a.single
            ax.plot(steps, val, label=_legend_label(c, a.single), lw=2.2 if winner else 1.3,
                    ms=3.5 if ax is zoom else 2, **style[c.label])
        if a.target_loss is not None:
            ax.axhline(a.target_loss, color="#444", ls=(0, (1, 2)), lw=1.1, label=f"target {a.target_loss:.3f}")
        ax.grid(alpha=0.3, which="both")
        ax.set_xlabel("update")
    finals = [float(val[-1]) for _, _, val in curves if val.size]
    if whole is not None:
        from matplotlib.ticker import FuncFormatter

        whole.set_yscale("log")
        plain = FuncFormatter(lambda v, _: f"{v:g}")
        whole.yaxis.set_major_formatter(plain)
        whole.yaxis.set_minor_formatter(plain)
        whole.tick_params(axis="y", which="minor", labelsize=7)
        whole.set_title("whole run (log scale)", fontsize=9)
        whole.set_ylabel("validation loss")
        lo, hi, cap = decisive_range(finals)
        whole.axhspan(lo, hi, color="#888", alpha=0.15, lw=0)
        zoom.set_ylim(lo, hi)
        entered = [int(steps[np.argmax(val <= hi)]) for _, steps, val in curves if val.size and np.any(val <= hi)]
        if entered:
            gap = int(np.median(np.diff(curves[0][1]))) if curves[0][1].size > 1 else 0
            zoom.set_xlim(max(0, min(entered) - gap), max(int(s[-1]) for _, s, _ in curves if s.size) + gap / 2)
        off = [f"{c.rank}. {c.label} ({float(val[-1]):.3f})" for c, _, val in curves if val.size and val[-1] > cap]
        if off:
            zoom.text(0.01, 0.98, "finish above this range: " + "; ".join(off), transform=zoom.transAxes,
                      va="top", fontsize=7, color="#444")
        zoom.set_title("zoomed on where they finish (the shaded band on the left)", fontsize=9)
    elif finite_vals:  # one curve: the early, high losses would squash the rest
        lo_v, hi_v = min(finite_vals), float(np.percentile(finite_vals, 90))
        zoom.set_ylim(lo_v - 0.05 * (hi_v - lo_v + 1e-9), hi_v)
        zoom.set_ylabel("validation loss")
    fig.suptitle("Validation loss at each schedule's best peak LR" + (" (mean over seeds)" if not a.single else ""))
    _legend_below(fig, *zoom.get_legend_handles_labels())
    return fig


def plot_loss_curves(doc: Mapping[str, Any], shown: Sequence[Contender], style: Mapping[str, Mapping[str, Any]],
                     finite_vals: Sequence[float]) -> Any:
    """``loss_curves.png``: training (raw and smoothed) and validation loss, one panel per schedule."""
    import matplotlib.pyplot as plt  # optional dependency

    n = len(shown)
    cols = min(3, n)
    rows_n = math.ceil(n / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(4.2 * cols, 3.0 * rows_n), squeeze=False, sharey=True)
    for i, c in enumerate(shown):
        ax = axes[i // cols][i % cols]
        runs = runs_at_best(doc, c)
        color = style[c.label]["color"]
        train = _mean_curve([r["result"]["train_loss"] for r in runs])
        window = max(1, train.size // 50)
        ax.plot(np.arange(train.size), train, color=color, alpha=0.25, lw=0.6)
        ax.plot(np.arange(train.size), _smooth(train, window), color=color, lw=1.2, label="train")
        val = _mean_curve([r["result"]["val_loss"] for r in runs])
        ax.plot(runs[0]["result"]["eval_steps"][: val.size], val, color="black", marker="o", ms=2, lw=1, label="val")
        ax.set_title(f"{c.label} @ {c.best_lr:.3g}", fontsize=8)
        ax.grid(alpha=0.3)
        if finite_vals:
            lo, hi = min(finite_vals), float(np.percentile(finite_vals, 90))
            ax.set_ylim(lo - 0.15 * (hi - lo + 1e-9), hi + 0.1 * (hi - lo + 1e-9))
        if i == 0:
            ax.legend(fontsize=7)
    for j in range(n, rows_n * cols):
        axes[j // cols][j % cols].axis("off")
    fig.supxlabel("update", fontsize=9)
    fig.supylabel("loss", fontsize=9)
    return fig


def plot_sensitivity(shown: Sequence[Contender], style: Mapping[str, Mapping[str, Any]]) -> Any:
    """``sensitivity.png``: final validation loss against peak LR per schedule, mean ± seed std at each LR. The
    schedules' points are dodged sideways (by a few per cent of the LR) so that bars at one LR do not overlap;
    a ring marks each best, x a diverged LR, and a triangle on the top edge a point above the plotted range."""
    import matplotlib.pyplot as plt  # optional dependency

    rows = math.ceil(len(shown) / 2)
    fig, ax = plt.subplots(figsize=(9, 4.4 + 0.22 * rows), layout="constrained")
    points = [p.final_mean for c in shown for p in c.grid if math.isfinite(p.final_mean)]
    lo, hi, cap = decisive_range(points)
    inside = [(p.final_mean, p.final_std or 0.0) for c in shown for p in c.grid if p.final_mean <= cap]
    pad = 0.02 * (hi - lo)
    lo = min([lo, *(m - s - pad for m, s in inside)])  # whole error bars, but not an outlier's
    hi = max([hi, *(m + s + pad for m, s in inside)])
    step = 0.035  # dodge in ln(LR) between neighbours: +-15 % for nine schedules, well inside a factor-2 grid
    for i, c in enumerate(shown):
        k = math.exp(step * (i - (len(shown) - 1) / 2))
        st = style[c.label]
        pts = [p for p in c.grid if math.isfinite(p.final_mean) and p.final_mean <= cap]
        if pts:
            ax.errorbar([p.lr * k for p in pts], [p.final_mean for p in pts], yerr=[p.final_std or 0.0 for p in pts],
                        ms=5, capsize=2.5, elinewidth=1, label=f"{c.rank}. {c.label}",
                        lw=2.2 if c.rank == 1 else 1.2, **st)
        if math.isfinite(c.final_mean) and c.final_mean <= cap:
            ax.scatter([c.best_lr * k], [c.final_mean], s=150, facecolors="none", edgecolors=st["color"], lw=1.6,
                       zorder=5)
        for p in c.grid:
            if not math.isfinite(p.final_mean):
                ax.scatter([p.lr * k], [hi], marker="x", s=40, color=st["color"], clip_on=False, zorder=5)
            elif p.final_mean > cap:
                ax.scatter([p.lr * k], [hi], marker="^", s=40, color=st["color"], clip_on=False, zorder=5)
    ax.set_ylim(lo, hi)
    ax.set_xscale("log")
    lrs = sorted({p.lr for c in shown for p in c.grid})
    ax.set_xticks(lrs, [f"{lr:.3g}" for lr in lrs], fontsize=8)
    ax.minorticks_off()
    ax.set_xlabel("peak learning rate (points of one LR spread sideways so that none hides another)")
    ax.set_ylabel("final validation loss")
    ax.set_title("Sensitivity: final loss vs peak LR (ring: best; x: diverged; ▲: above the range)")
    ax.grid(alpha=0.3, which="both")
    _legend_below(fig, *ax.get_legend_handles_labels())
    return fig


def plot_gap(a: Analysis, shown: Sequence[Contender], style: Mapping[str, Mapping[str, Any]]) -> Any:
    """``gap_to_winner.png``: each schedule's gap to the winner's final loss (dot) with its 95 % confidence interval
    (bar, `lrlab.bench.analysis.gap_test`) and the gap on each paired seed (small dots). Filled: significant;
    hollow with '≈': the interval includes 0. The axis starts at the winner (0), so lengths are gaps."""
    import matplotlib.pyplot as plt  # optional dependency

    fig, ax = plt.subplots(figsize=(10.5, 0.42 * len(shown) + 1.9), layout="constrained")
    ys = np.arange(len(shown))[::-1].astype(float)
    finite_x: list[float] = [0.0]
    for c in shown:
        finite_x += [g for g in c.seed_gaps if math.isfinite(g)]
        if c.gap_ci is not None:
            finite_x += list(c.gap_ci)
        elif math.isfinite(c.gap):
            finite_x.append(c.gap)
    x_lo, x_hi = min(finite_x), max(finite_x)
    pad = 0.06 * (x_hi - x_lo or 0.01)
    ax.axvline(0.0, color="#444", lw=1)
    for y, c in zip(ys, shown):
        st = style[c.label]
        gaps = [g for g in c.seed_gaps if math.isfinite(g)]
        if c.rank > 1 and gaps:
            jitter = np.linspace(-0.12, 0.12, len(gaps)) if len(gaps) > 1 else np.zeros(1)
            ax.scatter(gaps, y + jitter, s=12, color=st["color"], alpha=0.45, lw=0, zorder=3)
        if not math.isfinite(c.gap):
            ax.text(x_hi + pad, y, "diverged", va="center", ha="right", fontsize=8, color=st["color"])
            continue
        filled = c.rank == 1 or c.significant is True
        xerr = None if c.gap_ci is None else [[c.gap - c.gap_ci[0]], [c.gap_ci[1] - c.gap]]
        ax.errorbar([c.gap], [y], xerr=xerr, marker=st["marker"], ms=8, capsize=4, lw=1.6, color=st["color"],
                    mfc=st["color"] if filled else "white", mec=st["color"], mew=1.6, zorder=4)
    labels = []
    for c in shown:
        if c.rank == 1:
            note = f"winner, {c.final_mean:.3f}"
        elif not math.isfinite(c.gap):
            note = "diverged"
        elif c.significant is None:
            note = f"+{c.gap:.3f} ? (one seed)"
        elif c.gap_ci is not None:
            p = c.p_value if c.p_value is not None else math.nan
            note = (f"+{c.gap:.3f} [{c.gap_ci[0]:+.3f}, {c.gap_ci[1]:+.3f}] p={p:.2g}"
                    + ("" if c.significant else "  ≈ not significant"))
        else:
            note = f"+{c.gap:.3f}"
        labels.append(note)
    right = ax.secondary_yaxis("right")
    right.set_yticks(ys, labels, fontsize=7.5)
    right.tick_params(length=0)
    ax.set_yticks(ys, [f"{c.rank}. {c.label}" for c in shown], fontsize=8)
    ax.set_ylim(-0.7, len(shown) - 0.3)
    ax.set_xlim(x_lo - pad, x_hi + pad)
    ax.set_xlabel("final validation loss minus the winner's (lower is better; 0: as good as the winner)")
    ax.set_title("Gap to the winner with 95 % intervals (paired t-test; hollow: not significant; dots: each seed)",
                 fontsize=10)
    ax.grid(alpha=0.3, axis="x")
    return fig


def write_plots(doc: Mapping[str, Any], a: Analysis, out_dir: str | Path) -> list[str]:
    """Write the PNGs of `PLOTS` into ``out_dir``; returns the file names written (in `PLOTS` order). One run
    (`lrlab train`) gets no sensitivity curve and no gap plot: there is nothing to compare."""
    import matplotlib  # optional dependency

    matplotlib.use("Agg")

    out = Path(out_dir)
    written: list[str] = []
    shown = [c for c in a.contenders if runs_at_best(doc, c)]
    if not shown:
        return written
    style = plot_styles(shown)
    finite_vals = _val_range(doc, shown)
    _finish(plot_lr_curves(doc, shown, style, single=a.single), out, "lr_curves.png", written)
    _finish(plot_val_loss(doc, a, shown, style, finite_vals), out, "val_loss.png", written)
    _finish(plot_loss_curves(doc, shown, style, finite_vals), out, "loss_curves.png", written)
    if not a.single:
        _finish(plot_sensitivity(shown, style), out, "sensitivity.png", written)
        _finish(plot_gap(a, shown, style), out, "gap_to_winner.png", written)
    return written


# ----------------------------------------------------------------------------------------------------- HTML

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1100px;
       color: #1f2328; background: #ffffff; padding: 0 1em; }
h1 { font-size: 1.6em; border-bottom: 1px solid #d0d7de; padding-bottom: .3em; }
h2 { font-size: 1.25em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #d0d7de; padding: 4px 10px; text-align: right; }
th { background: #f6f8fa; }
#ranking th:nth-child(2), #sensitivity th:first-child, td.name { text-align: left; }
td.name { font-family: ui-monospace, Menlo, Consolas, monospace; }
tr.winner td { background: #dafbe1; font-weight: 600; }
tr.tie td { background: #fff8c5; }
ul.notes li { margin: .3em 0; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; border: 1px solid #d0d7de; }
figcaption, p.legend { color: #59636e; font-size: 0.9em; }
"""

#: report.html; jinja2 escapes every value (autoescape) except the CSS
_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{{ title }}</title>
<style>{{ css | safe }}</style></head><body>
<h1>{{ title }}</h1>
<p>{{ intro }}</p>
<table id="ranking"><thead><tr>{% for h in header %}<th>{{ h }}</th>{% endfor %}</tr></thead><tbody>
{% for row in rows %}<tr class="{{ row.cls }}">{% for x in row.cells %}<td{% if loop.index0 == 1 %} class="name"\
{% endif %}>{{ x }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table>
{% if legend %}<p class="legend">{{ legend }}</p>
{% endif %}<ul class="notes">{% for line in summary %}<li>{{ line }}</li>{% endfor %}</ul>
{% if sensitivity %}<h2>Final validation loss at each peak LR</h2>
<table id="sensitivity"><thead><tr>{% for h in sensitivity.header %}<th>{{ h }}</th>{% endfor %}</tr></thead><tbody>
{% for r in sensitivity.rows %}<tr><td class="name">{{ r[0] }}</td>{% for x in r[1:] %}<td>{{ x }}</td>{% endfor %}\
</tr>
{% endfor %}</tbody></table>
{% endif %}{% for fig in figures %}<figure><img alt="{{ fig.caption }}" src="data:image/png;base64,{{ fig.b64 }}">\
<figcaption>{{ fig.caption }}</figcaption></figure>
{% endfor %}</body></html>
"""


def html_report(a: Analysis, plots: Mapping[str, bytes]) -> str:
    """``report.html``: the same table, summary and sensitivity grid as report.md, with the PNGs inlined as
    base64 data URIs and the CSS inline; it needs nothing outside the file."""
    import jinja2  # optional dependency (the `plot` and `bench` extras)

    header, rows = table_rows(a)
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    sensitivity = None
    if a.has_grid:
        sens_header, sens_rows = sensitivity_rows(a)
        sensitivity = {"header": sens_header, "rows": sens_rows}
    return env.from_string(_TEMPLATE).render(
        title=a.title, css=_CSS, intro=_INTRO if not a.single else "One training run.", header=header,
        rows=[{"cls": "winner" if c.rank == 1 else ("tie" if c.significant is False else ""), "cells": row}
              for c, row in zip(a.contenders, rows)],
        legend=LEGEND if not a.single else "", summary=summary_lines(a), sensitivity=sensitivity,
        figures=[{"caption": PLOTS.get(name, name), "b64": base64.b64encode(data).decode("ascii")}
                 for name, data in plots.items()])


def write_report(doc: Mapping[str, Any], out_dir: str | Path, *, plots: bool = True) -> Analysis:
    """Analyse ``doc`` and write ``report.md``, the PNGs (``plots=True``) and ``report.html`` into ``out_dir``.
    Returns the analysis (for the terminal table)."""
    out = Path(out_dir)
    a = analyze(doc)
    names = write_plots(doc, a, out) if plots else []
    atomic_write_text(out / "report.md", markdown(a, plots=names))
    atomic_write_text(out / "report.html", html_report(a, {n: (out / n).read_bytes() for n in names}))
    return a
