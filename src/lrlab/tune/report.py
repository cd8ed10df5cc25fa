"""Display of a `TuneResult`: a Markdown report, a figure, console lines. Nothing here decides anything
(`lrlab.tune.choose` and `lrlab.tune.study` do); matplotlib loads only when a figure is drawn.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lrlab.files import atomic_write_bytes, atomic_write_text
from lrlab.tune.result import TuneResult

FIGURE = "tune.png"
REPORT = "report.md"


def _loss(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.4f}" if math.isfinite(x) else "diverged"


def headline(r: TuneResult) -> str:
    """One line: the pick, its peak LR and its loss."""
    measured = f"; measured {_loss(r.measured_mean)} over {len(r.measured)} seed(s)" if r.measured else ""
    return (f"{r.schedule} at peak LR {r.lr:.3g}: expected final loss {_loss(r.estimate.loss)} "
            f"[{_loss(r.estimate.lo)}, {_loss(r.estimate.hi)}]{measured}")


def option_rows(r: TuneResult, limit: int | None = None) -> list[list[str]]:
    """# | schedule | peak LR | how chosen | expected (interval) | measured mean (seeds)."""
    rows = []
    for i, o in enumerate(r.options[:limit] if limit else r.options, 1):
        est = o.estimate
        kind = "measured" if est.measured else ("predicted" if est.in_support else "predicted, outside the law's "
                                                                                   "support")
        measured = (f"{_loss(o.measured_mean)} ({len(o.measured)})" if o.measured else "–")
        mark = " ← pick" if o.schedule == r.schedule and math.isclose(o.lr, r.lr) else ""
        rows.append([str(i), o.schedule + mark, f"{o.lr:.3g}", o.how,
                     f"{_loss(est.loss)} [{_loss(est.lo)}, {_loss(est.hi)}] ({kind})", measured])
    return rows


def _centre_lines(doc: Mapping[str, Any]) -> list[str]:
    """Where the peak-LR grid's centre came from, when an LR range test set it (``--lr find``): compare's note."""
    finds = doc.get("lr_find")
    if not isinstance(finds, Mapping) or not finds:
        return []
    from lrlab.bench.compare import lr_find_note

    return [lr_find_note(finds, {doc["config"]["optimizer"]: doc["config"].get("lr")}).capitalize() + ".", ""]


def markdown(doc: Mapping[str, Any], r: TuneResult, *, figure: str | None = None) -> str:
    """The report: recommendation, options, the runs made and why."""
    cfg = doc["config"]
    lines = [f"# lrlab tune: {cfg.get('task') or 'your loop'}, {r.horizon} updates, {cfg['optimizer']}", "",
             f"**Recommendation:** `{r.schedule}` at peak LR **{r.lr:.3g}** — expected final loss "
             f"{_loss(r.estimate.loss)} [{_loss(r.estimate.lo)}, {_loss(r.estimate.hi)}]"
             + (f", measured {_loss(r.measured_mean)} (mean of {len(r.measured)} seed(s))" if r.measured else "")
             + ".", "",
             f"Compute: {r.spent:,} updates trained of a budget of {r.budget:,} ({r.spent / r.compare_updates:.0%} of "
             f"the {r.compare_updates:,} the default `lrlab compare` trains at this horizon); wall time "
             f"{doc.get('wall_time_s', 0.0):.0f} s.", "", *_centre_lines(doc), "## Options", "",
             "| # | schedule | peak LR | LR chosen by | final loss expected [interval] | measured (seeds) |",
             "|---:|---|---:|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in option_rows(r)]
    lines += ["", "Intervals of predictions are the law's bootstrap interval (parameter uncertainty, not seed "
              "noise)." + (f" Paired seed noise of the confirmed options: σ = {r.noise[0]:.4f} ({r.noise[1]} dof)."
                           if r.noise else ""), "", "## Why", ""]
    lines += [f"- {w}" for w in r.why]
    lines += ["", "## Peak LRs of the first rung", "",
              "| peak LR | rung score | kept | full WSD run | full run, linear cool-down from 0.4 N |",
              "|---:|---:|---|---:|---:|"]
    lines += [f"| {p.lr:.3g} | {_loss(p.score)} | {'yes' if p.kept else 'no'} | {_loss(p.final)} | "
              f"{_loss(p.linear)} |" for p in r.peaks]
    lines += ["", "## Law fits", "", "| peak LR | law | curves | MAE | note |", "|---:|---|---|---:|---|"]
    for f in r.fits:
        lines.append(f"| {f['lr']:.3g} | {f['law']} | {', '.join(f['chains'])} | "
                     f"{f.get('mae', float('nan')):.4f} | {f.get('error') or '; '.join(f.get('notes', [])) or ''} |")
    lines += ["", "## Runs made", "", "| # | trial | kind | schedule | peak LR | seed | updates | loss at end |",
              "|---:|---|---|---|---:|---:|---|---:|"]
    for t in r.trials:
        losses = dict((int(s), v) for s, v in t["losses"])
        end = losses.get(t["stop"], math.inf if any(not math.isfinite(v) for v in losses.values()) else None)
        branch = f" from {t['resume_from']}" if t["resume_from"] else ""
        lines.append(f"| {t['number']} | {t['name']} | {t['kind']} | `{t['schedule']}` | {t['lr']:.3g} | {t['seed']} "
                     f"| [{t['start']}, {t['stop']}){branch} | {_loss(end)} |")
    if figure:
        lines += ["", f"![curves and predictions]({figure})"]
    return "\n".join(lines) + "\n"


def figure(doc: Mapping[str, Any], r: TuneResult) -> Any:
    """Left: the loss curves of the kept peaks (trunks, cool-downs, full runs) and the law's curve for the
    recommended schedule; right: each leading option's expected final loss against the peak LR."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    kept = {round(p.lr, 15) for p in r.peaks if p.kept}
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    by_lr: dict[float, str] = {}
    for t in doc.get("trials", ()):
        curve = t.get("curve")
        if not curve or round(t["lr"], 15) not in kept or t["kind"] == "confirm":
            continue
        color = by_lr.setdefault(round(t["lr"], 15), colors[len(by_lr) % len(colors)])
        pts = [(s, v) for s, v in zip(curve["eval_steps"], curve["val_loss"])
               if t["start"] <= s <= t["stop"] and math.isfinite(v)]
        if pts:
            xs, ys = zip(*pts)
            left.plot(xs, ys, color=color, lw=1.2, ls="-" if t["kind"] == "trunk" else "--",
                      label=f"peak {t['lr']:.3g}" if t["kind"] == "trunk" and t["start"] == 0 else None)
    for t in doc.get("trials", ()):
        curve = t.get("curve")
        if t["kind"] == "confirm" and curve:
            pts = [(s, v) for s, v in zip(curve["eval_steps"], curve["val_loss"]) if math.isfinite(v)]
            if pts:
                xs, ys = zip(*pts)
                left.plot(xs, ys, color="black", lw=0.8, alpha=0.6, label=f"confirm {t['schedule'][:28]} "
                          f"{t['lr']:.3g} s{t['seed']}")
    left.set_xlabel("update")
    left.set_ylabel("validation loss")
    left.set_title("runs made (solid: trunks, dashed: cool-downs)")
    finite = [v for t in doc.get("trials", ()) if t.get("curve") for v in t["curve"]["val_loss"]
              if math.isfinite(v)]
    if finite:
        lo = min(finite)
        left.set_ylim(lo - 0.05 * abs(lo), lo + 2.0 * (sorted(finite)[len(finite) // 2] - lo) + 1e-9)
    left.legend(fontsize=7)
    for i, o in enumerate(r.options[:6]):
        pts = [(lr, e.loss) for lr, e in o.at_peaks if math.isfinite(e.loss)]
        if not pts:
            continue
        xs, ys = zip(*pts)
        c = colors[i % len(colors)]
        right.plot(xs, ys, "o-", color=c, lw=1, label=o.schedule[:36])
        right.plot([o.lr], [o.estimate.loss], "*", color=c, ms=11)
    right.set_xscale("log")
    right.set_xlabel("peak LR")
    right.set_ylabel("final loss (measured or predicted)")
    right.set_title("leading options by peak LR (★: chosen peak)")
    right.legend(fontsize=7)
    fig.tight_layout()
    return fig


def write_report(doc: Mapping[str, Any], r: TuneResult, out_dir: str | Path, *, plots: bool = True) -> list[str]:
    """Write ``report.md`` (and ``tune.png`` with ``plots``) into ``out_dir``; returns the files written."""
    out = Path(out_dir)
    written = []
    name = None
    if plots:
        import matplotlib.pyplot as plt

        fig = figure(doc, r)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110)
        plt.close(fig)
        atomic_write_bytes(out / FIGURE, buf.getvalue())
        written.append(FIGURE)
        name = FIGURE
    atomic_write_text(out / REPORT, markdown(doc, r, figure=name))
    written.append(REPORT)
    return written


def print_result(r: TuneResult, console: Any = None, *, limit: int = 6) -> None:
    """The recommendation and the leading options as a rich table."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    console.print(f"[bold]recommended:[/bold] {headline(r)}", highlight=False)  # prose: wrapped to the width
    table = Table()
    for col in ("#", "schedule", "peak LR", "chosen by", "expected [interval]", "measured (seeds)"):
        # a spec cut short with "…" reads as another one: fold it over lines instead
        table.add_column(col, justify="right" if col in ("#", "peak LR") else "left",
                         overflow="fold" if col == "schedule" else "ellipsis")
    for row in option_rows(r, limit):
        table.add_row(*row)
    console.print(table)
    console.print(f"spent {r.spent:,} updates of {r.budget:,} ({r.spent / r.compare_updates:.0%} of the default "
                  f"compare's {r.compare_updates:,})", highlight=False)
