"""Rendering of an `lrlab.bench.analysis.Analysis`: the rich terminal table, ``report.md``, one PNG per figure and
a self-contained ``report.html`` (PNGs inlined as base64, inline CSS). It computes nothing the analysis does not
hold; matplotlib and rich are imported by the functions that draw (optional dependencies).
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lrlab.bench.analysis import Analysis, Contender, analyze, runs_at_best
from lrlab.files import atomic_write_bytes, atomic_write_text

#: the PNG files `write_plots` produces, in the order reports show them: file name -> caption
PLOTS: dict[str, str] = {
    "lr_curves.png": "Learning rate of every schedule at its best peak LR",
    "val_loss.png": "Validation loss of every schedule at its best peak LR (mean over seeds)",
    "loss_curves.png": "Training (smoothed) and validation loss per schedule at its best peak LR",
    "sensitivity.png": "Final validation loss vs peak LR per schedule (the sensitivity curves)",
    "final_loss.png": "Final validation loss at each schedule's best peak LR (error bars: seed std)",
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
    return gap if c.significant else f"{gap} ≈"


#: how the table marks a best peak LR at the edge of its grid (the optimum may lie outside it)
EDGE_MARK = "(best at grid edge)"
#: what the marks in the table mean (printed under it)
LEGEND = ("≈: gap to the winner within seed-to-seed noise (not significant); ?: no spread estimate; "
          f"{EDGE_MARK}: the best peak LR is the smallest or largest tried, so the optimum may lie outside the grid "
          "(raise --lr-extend); "
          "†: branched from a shared-prefix checkpoint")


def table_rows(a: Analysis) -> tuple[list[str], list[list[str]]]:
    """The ranked table as plain strings: (header, rows). Every renderer shows these same cells.

    Columns: rank; contender; its best peak LR (`EDGE_MARK` when it is the smallest or largest of the grid); final
    and best validation loss there (mean ± std over seeds); the first evaluation step at which it reached the
    target loss (``k/n``: only k of n seeds did); mean wall time per run; the gap to the winner's final loss with
    its significance mark."""
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


def provenance(a: Analysis) -> str:
    """``Task lm · Python 3.11.7 · corpus sha256 1a2b3c4d5e6f``: what the numbers were measured on (the ``lm``
    corpus is the interpreter's own standard library, so it changes with the Python version)."""
    parts = [f"Task {a.task}"]
    if a.python:
        parts.append(f"Python {a.python}")
    if a.corpus_sha256:
        parts.append(f"{'data' if a.task == 'vision' else 'corpus'} sha256 {a.corpus_sha256[:12]}")
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
        lines.append(f"Noise: seeds are paired (same initial weights and data order for every schedule), so gaps are "
                     f"judged against the seed-to-seed scatter of the differences, sigma = {a.sigma:.3f} per seed "
                     f"({a.sigma_dof} dof){raw}; '≈' marks a gap below sigma·√(2/{n}) = "
                     f"{a.sigma * math.sqrt(2 / n):.3f}.")
    lines.extend(f"† {b}" for b in a.branches)
    if a.total_wall_time_s is not None:
        lines.append(f"Total wall time: {a.total_wall_time_s:.0f} s.")
    lines.extend(a.notes)
    return lines


def print_report(a: Analysis, console: Any = None) -> None:
    """Print the ranked table and the summary lines to the terminal (rich)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    header, rows = table_rows(a)
    title = a.title if a.single else f"{a.title}: ranked at each schedule's best peak LR"
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for h in header:
        if h == "schedule":
            table.add_column(h, justify="left", min_width=14, overflow="fold")
        else:
            table.add_column(h, justify="left" if h == "vs #1" else "right", no_wrap=h != "vs #1")
    for c, row in zip(a.contenders, rows):
        style = "bold green" if c.rank == 1 else ("yellow" if c.significant is False else "")
        table.add_row(*row, style=style)
    console.print(table)
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


def _save(fig: Any, path: Path) -> None:
    import io  # only the PNG writers need it

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    atomic_write_bytes(path, buf.getvalue())


def _finish(fig: Any, out: Path, name: str, written: list[str]) -> None:
    """Lay out, write atomically as ``out/name``, close, and record the figure's file name."""
    import matplotlib.pyplot as plt  # optional dependency

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


def plot_lr_curves(doc: Mapping[str, Any], shown: Sequence[Contender], color: Mapping[str, Any]) -> Any:
    """``lr_curves.png``: the LR of every schedule at its best peak LR, on one figure."""
    import matplotlib.pyplot as plt  # optional dependency

    fig, ax = plt.subplots(figsize=(9, 4.5))
    for c in shown:
        lr = np.asarray(runs_at_best(doc, c)[0]["result"]["lr"], dtype=np.float64)
        ax.plot(np.arange(lr.size), lr, label=f"{c.label} (peak {c.best_lr:.3g})", color=color[c.label], lw=1.6)
    ax.set_xlabel("update")
    ax.set_ylabel("learning rate")
    ax.set_title("Learning-rate schedules at their best peak LR")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")
    return fig


def plot_val_loss(doc: Mapping[str, Any], a: Analysis, shown: Sequence[Contender], color: Mapping[str, Any],
                  finite_vals: Sequence[float]) -> Any:
    """``val_loss.png``: the mean validation loss of every schedule at its best peak LR, on one figure."""
    import matplotlib.pyplot as plt  # optional dependency

    fig, ax = plt.subplots(figsize=(9, 4.5))
    for c in shown:
        runs = runs_at_best(doc, c)
        steps = runs[0]["result"]["eval_steps"]
        val = _mean_curve([r["result"]["val_loss"] for r in runs])
        ax.plot(steps[: val.size], val, marker="o", ms=2.5, label=c.label, color=color[c.label], lw=1.4)
    if a.target_loss is not None:
        ax.axhline(a.target_loss, color="#666", ls="--", lw=1, label=f"target {a.target_loss:.3f}")
    if finite_vals:  # zoom on the informative part: the early, high losses squash everything else
        lo, hi = min(finite_vals), float(np.percentile(finite_vals, 90))
        ax.set_ylim(lo - 0.05 * (hi - lo + 1e-9), hi)
    ax.set_xlabel("update")
    ax.set_ylabel("validation loss")
    ax.set_title("Validation loss at each schedule's best peak LR")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")
    return fig


def plot_loss_curves(doc: Mapping[str, Any], shown: Sequence[Contender], color: Mapping[str, Any],
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
        train = _mean_curve([r["result"]["train_loss"] for r in runs])
        window = max(1, train.size // 50)
        ax.plot(np.arange(train.size), train, color=color[c.label], alpha=0.25, lw=0.6)
        ax.plot(np.arange(train.size), _smooth(train, window), color=color[c.label], lw=1.2, label="train")
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


def plot_sensitivity(shown: Sequence[Contender], color: Mapping[str, Any], finite_vals: Sequence[float]) -> Any:
    """``sensitivity.png``: final validation loss against peak LR per schedule (circle: best; x: diverged)."""
    import matplotlib.pyplot as plt  # optional dependency

    fig, ax = plt.subplots(figsize=(9, 4.5))
    for c in shown:
        pts = [p for p in c.grid if math.isfinite(p.final_mean)]
        if not pts:
            continue
        ax.errorbar([p.lr for p in pts], [p.final_mean for p in pts],
                    yerr=[p.final_std or 0.0 for p in pts], marker="o", ms=4, capsize=3,
                    label=c.label, color=color[c.label], lw=1.2)
        ax.scatter([c.best_lr], [c.final_mean], s=90, facecolors="none", edgecolors=color[c.label], lw=1.5)
        for p in c.grid:
            if not math.isfinite(p.final_mean):
                ax.scatter([p.lr], [max(finite_vals or [0.0])], marker="x", color=color[c.label])
    ax.set_xscale("log")
    ax.set_xlabel("peak learning rate")
    ax.set_ylabel("final validation loss")
    ax.set_title("Sensitivity: final loss vs peak LR (circle: best; x: diverged)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    return fig


def plot_final_loss(shown: Sequence[Contender], color: Mapping[str, Any]) -> Any:
    """``final_loss.png``: a bar per schedule, its final validation loss at its best peak LR (error bars: seed
    std)."""
    import matplotlib.pyplot as plt  # optional dependency

    fig, ax = plt.subplots(figsize=(9, 0.45 * len(shown) + 1.6))
    finite = [c for c in shown if math.isfinite(c.final_mean)]
    ys = np.arange(len(finite))[::-1]
    ax.barh(ys, [c.final_mean for c in finite], xerr=[c.final_std or 0.0 for c in finite], capsize=3,
            color=[color[c.label] for c in finite], alpha=0.85)
    ax.set_yticks(ys, [c.label for c in finite], fontsize=7)
    if finite:
        lo = min(c.final_mean - (c.final_std or 0.0) for c in finite)
        hi = max(c.final_mean + (c.final_std or 0.0) for c in finite)
        ax.set_xlim(lo - 0.2 * (hi - lo + 1e-3), hi + 0.1 * (hi - lo + 1e-3))
    ax.set_xlabel("final validation loss at best peak LR (lower is better)")
    ax.grid(alpha=0.3, axis="x")
    return fig


def write_plots(doc: Mapping[str, Any], a: Analysis, out_dir: str | Path) -> list[str]:
    """Write the PNGs of `PLOTS` into ``out_dir``; returns the file names written (in `PLOTS` order). One run
    (`lrlab train`) gets no sensitivity curve and no bar chart: there is nothing to compare."""
    import matplotlib  # optional dependency

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    written: list[str] = []
    shown = [c for c in a.contenders if runs_at_best(doc, c)]
    if not shown:
        return written
    colors = plt.get_cmap("tab10" if len(shown) <= 10 else "tab20")
    color = {c.label: colors(i % colors.N) for i, c in enumerate(shown)}
    finite_vals = _val_range(doc, shown)
    _finish(plot_lr_curves(doc, shown, color), out, "lr_curves.png", written)
    _finish(plot_val_loss(doc, a, shown, color, finite_vals), out, "val_loss.png", written)
    _finish(plot_loss_curves(doc, shown, color, finite_vals), out, "loss_curves.png", written)
    if not a.single:
        _finish(plot_sensitivity(shown, color, finite_vals), out, "sensitivity.png", written)
        _finish(plot_final_loss(shown, color), out, "final_loss.png", written)
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


def html_report(a: Analysis, plots: Mapping[str, bytes]) -> str:
    """``report.html``: the same table, summary and sensitivity grid as report.md, with the PNGs inlined as
    base64 data URIs and the CSS inline; it needs nothing outside the file."""
    esc = html.escape
    header, rows = table_rows(a)
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{esc(a.title)}</title>", f"<style>{_CSS}</style></head><body>",
             f"<h1>{esc(a.title)}</h1>",
             f"<p>{esc(_INTRO if not a.single else 'One training run.')}</p>",
             '<table id="ranking"><thead><tr>' + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr></thead><tbody>"]
    for c, row in zip(a.contenders, rows):
        cls = "winner" if c.rank == 1 else ("tie" if c.significant is False else "")
        cells = "".join(f'<td class="name">{esc(x)}</td>' if i == 1 else f"<td>{esc(x)}</td>"
                        for i, x in enumerate(row))
        parts.append(f'<tr class="{cls}">{cells}</tr>')
    parts.append("</tbody></table>")
    if not a.single:
        parts.append(f'<p class="legend">{esc(LEGEND)}</p>')
    parts.append('<ul class="notes">' + "".join(f"<li>{esc(line)}</li>" for line in summary_lines(a)) + "</ul>")
    if a.has_grid:
        sens_header, sens_rows = sensitivity_rows(a)
        parts.append("<h2>Final validation loss at each peak LR</h2>")
        parts.append('<table id="sensitivity"><thead><tr>' + "".join(f"<th>{esc(h)}</th>" for h in sens_header)
                     + "</tr></thead><tbody>")
        for r in sens_rows:
            parts.append("<tr>" + f'<td class="name">{esc(r[0])}</td>' + "".join(f"<td>{esc(x)}</td>" for x in r[1:])
                         + "</tr>")
        parts.append("</tbody></table>")
    for name, data in plots.items():
        b64 = base64.b64encode(data).decode("ascii")
        caption = esc(PLOTS.get(name, name))
        parts.append(f'<figure><img alt="{caption}" src="data:image/png;base64,{b64}">'
                     f"<figcaption>{caption}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(doc: Mapping[str, Any], out_dir: str | Path, *, plots: bool = True) -> Analysis:
    """Analyse ``doc`` and write ``report.md``, the PNGs (``plots=True``) and ``report.html`` into ``out_dir``.
    Returns the analysis (for the terminal table)."""
    out = Path(out_dir)
    a = analyze(doc)
    names = write_plots(doc, a, out) if plots else []
    atomic_write_text(out / "report.md", markdown(a, plots=names))
    atomic_write_text(out / "report.html", html_report(a, {n: (out / n).read_bytes() for n in names}))
    return a
