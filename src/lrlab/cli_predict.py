"""CLI command `lrlab predict`: fit a loss-curve law to recorded runs, predict schedules, print them ranked.

Importing this module loads typer only; numpy, scipy and matplotlib load when the command runs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lrlab.checks import check
from lrlab.cli_options import Choice, option
from lrlab.errors import LrlabError

if TYPE_CHECKING:
    from lrlab.predict import FittedLaw, Prediction


#: the laws `lrlab.predict.fit` knows (its LAW_NAMES; not imported, to keep this module light)
LAWS = ("multipower", "momentum", "s1")


def register(app: typer.Typer) -> None:
    """Add `predict` to the lrlab CLI."""
    app.command("predict")(predict_cmd)


def predict_cmd(
    runs: Annotated[list[Path], typer.Argument(help="lrlab compare/train folders (results.json) or Monitor logs "
                                                    "(monitor.jsonl, steps.csv) to fit on")],
    schedules: Annotated[str | None, typer.Option(
        "--schedules", "-s", help="specs to predict, separated by ';' (default: the 9 schedules of lrlab compare)")]
    = None,
    steps: Annotated[int | None, typer.Option("--steps", "-n", help="updates of the predicted runs (default: the "
                                                                    "longest fitted run)")] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="peak LR of the predicted runs (default: the fitted "
                                                          "runs' peak)")] = None,
    law: Annotated[str, option(Choice(LAWS), help="loss-curve law")] = "multipower",
    bootstrap: Annotated[int, typer.Option(help="bootstrap replicates for the intervals")] = 40,
    plot: Annotated[Path, typer.Option(help="write the observed-vs-predicted plot here (.png)")]
    = Path("lrlab-predict.png"),
    no_plot: Annotated[bool, typer.Option("--no-plot", help="write no plot")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Predict schedules' loss curves from a few recorded runs with a fitted loss-curve law (multi-power law by
    default), ranked by predicted final loss, with intervals, the fit's held-out error, and where the law is
    outside its support."""
    import lrlab.predict as lp

    if not runs:
        raise LrlabError("give at least one run folder or log to fit on")
    lp.get_law(law)
    if steps is not None:
        check.whole("--steps", steps, minimum=1)
    curves = [c for r in runs for c in lp.load_runs(r)]
    total = steps if steps is not None else max(c.total for c in curves)
    specs = _specs(schedules, total)
    for s in specs:  # refuse a bad spec before the fit, which takes a while
        lp.lr_sequence(s, total=total, peak_lr=lr if lr is not None else 1.0)
    fitted = lp.fit(curves, law=law, bootstrap=bootstrap)
    preds = sorted((fitted.predict(s, total=total, peak_lr=lr) for s in specs), key=lambda p: p.final)
    written = None if no_plot else lp.plot_fit(fitted, curves, preds, plot)
    if as_json:
        typer.echo(json.dumps({"fit": _clean(fitted.to_dict()), "steps": total,
                               "predictions": [_clean({k: v for k, v in p.to_dict().items()
                                                       if k not in ("steps", "loss", "lower", "upper")})
                                               for p in preds],
                               "plot": str(written) if written else None}, indent=2))
        return
    _print(fitted, preds, total, runs, written)


def _specs(text: str | None, total: int) -> list[str]:
    if text is None:
        from lrlab.bench.design import default_schedules  # the harness's list; torch-free, loaded only when needed

        return list(default_schedules(total))
    specs = [s.strip() for s in text.split(";") if s.strip()]
    if not specs:
        raise LrlabError(f"--schedules must hold at least one spec separated by ';', got {text!r}")
    return specs


def _clean(obj: Any) -> Any:
    """JSON-safe: non-finite floats as strings."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def _print(fitted: FittedLaw, preds: list[Prediction], total: int, runs: list[Path], plot: Path | None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    q = fitted.quality
    console.print(f"[bold]{fitted.law}[/bold] law fitted on {fitted.n_curves} curves ({fitted.n_evals} "
                  f"evaluations) from {', '.join(str(r) for r in runs)}")
    table = Table(title=f"predicted final loss at {total} updates (90 % interval: bootstrap over seeds and "
                        "evaluations)")
    table.add_column("#", justify="right")
    table.add_column("schedule", overflow="fold")  # a spec cut short with "…" reads as another one
    table.add_column("final loss", justify="right")
    table.add_column("interval", justify="right")
    table.add_column("outside the law's support (notes below)")
    notes: list[str] = []
    for i, p in enumerate(preds, 1):
        lo, hi = p.final_interval
        marks = []
        for n in p.notes:
            if n not in notes:
                notes.append(n)
            marks.append(f"[{notes.index(n) + 1}]")
        table.add_row(str(i), p.label, f"{p.final:.4f}", f"{lo:.4f} .. {hi:.4f}", " ".join(marks) or "-")
    console.print(table)
    if preds and math.isfinite(preds[0].held_out_error):
        console.print(f"held-out error of the law (RMS final error of each fitted schedule left out): "
                      f"{preds[0].held_out_error:.4f}; the interval does not contain it")
    for k, n in enumerate(notes, 1):
        console.print(f"  [{k}] {n}", highlight=False)
    console.print(f"fit quality: in-fit MAE {q.mae:.4f}, residual spread {q.sigma:.4f} (log loss)")
    if q.holdout is not None:
        h = q.holdout
        console.print(f"  held out, {h.what}: " + (f"MAE {h.mae:.4f} over {h.n} evaluations" if h.n else h.note))
    for h in q.leave_one_out:
        console.print(f"  {h.what}: " + (f"MAE {h.mae:.4f}, final error {h.final_error:+.4f}" if h.n else h.note))
    console.print("  (differences between schedules below the held-out error are not resolved by the law)")
    for n in fitted.notes:
        console.print(f"[yellow]note:[/yellow] {n}")
    params = ", ".join(f"{k}={v:.4g}" for k, v in fitted.params.items())
    console.print(f"parameters (LR unit {fitted.lr_unit:g}): {params}")
    if "K" not in fitted.fixed:
        console.print(f"start-up factor K = {fitted.params['K']:.3g} (fitted from the runs without a warm-up): "
                      f"starting at the peak without one still costs {fitted.cold_start_cost(total):+.4f} at "
                      f"{total} updates")
    if plot is not None:
        console.print(f"wrote {plot}")
