"""CLI commands `lrlab diagnose`, `lrlab find` and `lrlab suggest`: parse options, call the library, print.

Importing this module loads typer only; torch, matplotlib and rich load when a command runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lrlab.errors import LrlabError

if TYPE_CHECKING:
    from lrlab.diagnose import Thresholds

SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2}


def register(app: typer.Typer) -> None:
    """Add `diagnose`, `find` and `suggest` to the lrlab CLI."""
    app.command("diagnose")(diagnose_cmd)
    app.command("find")(find_cmd)
    app.command("suggest")(suggest_cmd)


def diagnose_cmd(
    log: Annotated[Path, typer.Argument(help="a Monitor's monitor.jsonl, steps.csv, or its folder")],
    total: Annotated[int | None, typer.Option("--total", "-n", help="planned updates of the run (if not recorded)")]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    fail_on: Annotated[str | None, typer.Option(help="exit 1 when a finding is at least this severe: warning | error")]
    = None,
    threshold: Annotated[list[str] | None, typer.Option(
        "--threshold", "-t", help="change a detection threshold, NAME=VALUE (repeatable), e.g. slow_drop=0.05; "
                                  "the names are the fields of lrlab.diagnose.Thresholds")] = None,
) -> None:
    """Diagnose a recorded run: divergence, warm-up spikes, too slow, unstable validation, plateau, over-fitting,
    decay too early; each with an advice and the numbers behind it."""
    from lrlab.diagnose import diagnose, format_findings
    from lrlab.monitor import load_curves

    if fail_on is not None and fail_on not in ("warning", "error"):
        raise LrlabError(f"--fail-on must be warning or error, got {fail_on!r}")
    thresholds = parse_thresholds(threshold or [])
    curves = load_curves(log, total_steps=total)
    findings = diagnose(curves, thresholds=thresholds)
    if as_json:
        typer.echo(json.dumps({"log": str(log), "n_steps": len(curves.step), "n_evals": len(curves.eval_step),
                               "total_steps": curves.total_steps, "findings": [f.to_dict() for f in findings]},
                              indent=2))
    else:
        from rich.console import Console
        from rich.table import Table

        console = Console()
        console.print(f"[bold]{log}[/bold]: {len(curves.step)} updates, {len(curves.eval_step)} evaluations")
        if not findings:
            console.print(format_findings(findings))
        else:
            table = Table(show_lines=True)
            table.add_column("severity")
            table.add_column("step", justify="right")
            table.add_column("finding", style="bold")
            table.add_column("what and advice")
            colour = {"error": "red", "warning": "yellow", "info": "cyan"}
            for f in findings:
                table.add_row(f"[{colour[f.severity]}]{f.severity}[/]", str(f.step), f.kind,
                              f"{f.message}\n[green]advice:[/green] {f.advice}")
            console.print(table)
    if fail_on is not None and any(SEVERITY_RANK[f.severity] >= SEVERITY_RANK[fail_on] for f in findings):
        raise typer.Exit(1)


def parse_thresholds(items: list[str]) -> Thresholds:
    """`lrlab.diagnose.Thresholds` with the ``NAME=VALUE`` overrides of `items` (validated by Thresholds);
    `LrlabError` naming the allowed fields for an unknown name or a malformed item."""
    from dataclasses import fields

    from lrlab.diagnose import Thresholds

    types = {f.name: f.type for f in fields(Thresholds)}
    allowed = ", ".join(types)
    values: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name, text = name.strip(), text.strip()
        if not sep or not name or not text:
            raise LrlabError(f"--threshold must be NAME=VALUE, got {item!r}; NAME is one of: {allowed}")
        if name not in types:
            raise LrlabError(f"--threshold: unknown threshold {name!r}; choose from: {allowed}")
        try:
            values[name] = int(text) if types[name] in ("int", int) else float(text)
        except ValueError:
            kind = "an integer" if types[name] in ("int", int) else "a number"
            raise LrlabError(f"--threshold {name} must be {kind}, got {text!r}") from None
    return Thresholds(**values)


def find_cmd(
    task: Annotated[str, typer.Option(help="built-in task: lm | vision (or text:PATH)")] = "lm",
    preset: Annotated[str, typer.Option(help="model size: tiny | small | base")] = "tiny",
    optimizer: Annotated[str, typer.Option(help="sgd | adagrad | rmsprop | adam | adamw | schedulefree")] = "adamw",
    start_lr: Annotated[float, typer.Option(help="first LR of the sweep")] = 1e-6,
    end_lr: Annotated[float, typer.Option(help="last LR of the sweep")] = 10.0,
    num_iter: Annotated[int, typer.Option(help="updates in the sweep")] = 100,
    mode: Annotated[str, typer.Option(help="exp | linear")] = "exp",
    accumulation_steps: Annotated[int, typer.Option(help="micro-batches per update")] = 1,
    batch_size: Annotated[int | None, typer.Option(help="batch size  [default: the preset's]")] = None,
    seed: Annotated[int, typer.Option(help="seed of the weights and the batches")] = 0,
    out: Annotated[Path | None, typer.Option(help="write the plot here (PNG) with the suggestions marked")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """LR range test on a built-in task: suggestions by steepest descent (against log LR), valley, minimum/10."""
    from lrlab.range_test import find_on_task, median_suggestion, plot_range_test, suggest_all

    result = find_on_task(task, preset=preset, optimizer=optimizer, seed=seed, start_lr=start_lr, end_lr=end_lr,
                          num_iter=num_iter, mode=mode, accumulation_steps=accumulation_steps, batch_size=batch_size)
    found = suggest_all(result)
    peak = median_suggestion(found)
    if out is not None:
        plot_range_test(result, out, suggestions=found,
                        title=f"LR range test: {task} ({preset}), {optimizer}")
    if as_json:
        typer.echo(json.dumps({"task": task, "preset": preset, "optimizer": optimizer,
                               "suggestions": [s.to_dict() for s in found], "median": peak,
                               "result": result.to_dict(), "plot": str(out) if out is not None else None}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"LR range test: {task} ({preset}), {optimizer}: {len(result.lrs)} updates from "
                  f"{result.start_lr:g} ({result.mode}), {result.stop_reason}", highlight=False)
    table = Table()
    table.add_column("rule", style="bold")
    table.add_column("LR", justify="right")
    table.add_column("how")
    for s in found:
        table.add_row(s.rule, f"{s.lr:.3g}", s.note)
    console.print(table)
    console.print(f"median of the three: {peak:.3g}", highlight=False)
    if out is not None:
        console.print(f"wrote {out}", highlight=False)


def suggest_cmd(
    task: Annotated[str, typer.Option(help="lm | vision | finetune")],
    steps: Annotated[int, typer.Option(help="planned optimizer updates")],
    optimizer: Annotated[str, typer.Option(help="adamw | adam | sgd | schedulefree | adagrad | rmsprop")] = "adamw",
    find: Annotated[bool, typer.Option("--find", help="measure the peak LR with the range test (built-in task)")]
    = False,
    preset: Annotated[str, typer.Option(help="model size for --find: tiny | small | base")] = "tiny",
    seed: Annotated[int, typer.Option(help="seed for --find")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Suggest a full schedule spec (warm-up, decay shape, minimum LR, peak LR) with its reasons."""
    from lrlab.suggest import format_suggestion, suggest

    s = suggest(task, steps, optimizer=optimizer, find=find, preset=preset, seed=seed)
    if as_json:
        typer.echo(json.dumps(s.to_dict(), indent=2))
    else:
        typer.echo(format_suggestion(s))
