"""CLI command `lrlab diagnose LOG`: read a run's log (a Monitor's files, or another tool's: `lrlab.log_readers`),
diagnose the run, print the findings.

Importing this module loads typer only; rich loads when the command runs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any

import typer

from lrlab.checks import check
from lrlab.cli_options import Choice, option
from lrlab.diagnose import Curves, Thresholds, diagnose, format_findings
from lrlab.errors import LrlabError
from lrlab.files import file_error
from lrlab.log_readers import CONVENTIONS, FIELDS, KINDS, detect, load_log
from lrlab.monitor import at_chance, log_coverage
from lrlab.monitor_files import load_curves

SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2}


def register(app: typer.Typer) -> None:
    """Add `diagnose` to the lrlab CLI."""
    app.command("diagnose")(diagnose_cmd)


def diagnose_cmd(
    log: Annotated[Path, typer.Argument(help="a Monitor's monitor.jsonl, steps.csv or folder; HF's trainer_state.json "
                                             "or output_dir; a TensorBoard event folder; a CSV (Lightning's "
                                             "metrics.csv)")],
    total: Annotated[int | None, typer.Option("--total", "-n", help="planned updates of the run (if not recorded)")]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    fail_on: Annotated[str | None, option(Choice(("warning", "error")), help="exit 1 when a finding is at least "
                                                                              "this severe")] = None,
    threshold: Annotated[list[str] | None, typer.Option(
        "--threshold", "-t", help="change a detection threshold, NAME=VALUE (repeatable), e.g. slow_drop=0.05; "
                                  "the names are the fields of lrlab.diagnose.Thresholds")] = None,
    log_format: Annotated[str | None, option(Choice(KINDS), "--format",
                                             help=f"the log's format: {', '.join(KINDS)} (default: from the "
                                                  "file names)")] = None,
    column: Annotated[list[str] | None, typer.Option(
        "--column", "-c", help=f"FIELD=NAME: the log's column or tag for an lrlab field ({', '.join(FIELDS)}); "
                               "repeatable, e.g. --column loss=train_loss_step")] = None,
    convention: Annotated[str | None, option(Choice(tuple(CONVENTIONS)),
                                             help=f"the log's step numbering: {', '.join(CONVENTIONS)} "
                                                  "(default: the tool's)")] = None,
    lr: Annotated[float | None, typer.Option(help="the run's constant LR, for a log that records none")] = None,
    classes: Annotated[int | None, typer.Option(
        help="classes (a language model: its vocabulary size): a loss that ends at ln(classes), a uniform guess, is "
             "reported")] = None,
) -> None:
    """Diagnose a recorded run: divergence, warm-up spikes, too slow, unstable validation, plateau, over-fitting,
    decay too early; each with an advice and the numbers behind it."""
    if fail_on is not None and fail_on not in ("warning", "error"):
        raise LrlabError(f"--fail-on must be warning or error, got {fail_on!r}")
    thresholds = parse_thresholds(threshold or [])
    curves = read_log(log, total_steps=total, kind=log_format, columns=parse_columns(column or []),
                      convention=convention, lr=lr)
    extra = [log_coverage(curves, thresholds)]  # "no problems found" must not hide a log too coarse to check
    if classes is not None:
        extra.append(at_chance(curves, math.log(check.whole("--classes", classes, minimum=2))))
    findings = [f for f in extra if f is not None] + diagnose(curves, thresholds=thresholds)
    if as_json:
        typer.echo(json.dumps({"log": str(log), "n_steps": len(curves.step), "n_evals": len(curves.eval_step),
                               "total_steps": curves.total_steps, "findings": [f.to_dict() for f in findings]},
                              indent=2))
    else:
        from rich.console import Console  # rich is slow to import: only for the table
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


def read_log(log: Path, *, total_steps: int | None = None, kind: str | None = None,
             columns: dict[str, str] | None = None, convention: str | None = None, lr: float | None = None) -> Curves:
    """The curves of ``log``: `lrlab.log_readers.load_log` for another tool's log, else
    `lrlab.monitor_files.load_curves`; their readers refuse a file that is not UTF-8 text (UTF-16, binary) naming
    it (`lrlab.files.read_text`), and an unreadable one is refused here."""
    if log.exists() and not (log.is_file() or log.is_dir()):  # a pipe or a device would be read forever
        raise LrlabError(f"Monitor log {str(log)!r} is not a regular file or folder; expected a monitor.jsonl, "
                         "steps.csv or a Monitor folder")
    if log.exists() and (kind or detect(log)) != "lrlab":
        try:
            return load_log(log, kind=kind, columns=columns, convention=convention, lr=lr, total_steps=total_steps)
        except OSError as e:
            raise file_error("read the log", log, e) from None
    if columns or convention is not None or lr is not None:
        raise LrlabError("--column, --convention and --lr are for other tools' logs; lrlab's Monitor files name "
                         "their fields themselves")
    try:
        return load_curves(log, total_steps=total_steps)
    except OSError as e:
        raise file_error("read the Monitor log", log, e) from None


def parse_columns(items: list[str]) -> dict[str, str]:
    """``FIELD=NAME`` items as a mapping for `lrlab.log_readers.load_log`; `LrlabError` naming the fields for a
    malformed item or an unknown field."""
    return dict(_pairs(items, "--column", "FIELD=NAME", "field", FIELDS))


def _pairs(items: list[str], option: str, form: str, noun: str, allowed: Sequence[str]) -> list[tuple[str, str]]:
    """``KEY=VALUE`` items split and checked: the key one of `allowed`, both sides non-empty."""
    key = form.split("=")[0]
    out = []
    for item in items:
        name, sep, text = item.partition("=")
        name, text = name.strip(), text.strip()
        if not sep or not name or not text:
            raise LrlabError(f"{option} must be {form}, got {item!r}; {key} is one of: {', '.join(allowed)}")
        if name not in allowed:
            raise LrlabError(f"{option}: unknown {noun} {name!r}; choose from: {', '.join(allowed)}")
        out.append((name, text))
    return out


def parse_thresholds(items: list[str]) -> Thresholds:
    """`lrlab.diagnose.Thresholds` with the ``NAME=VALUE`` overrides of `items` (validated by Thresholds);
    `LrlabError` naming the allowed fields for an unknown name or a malformed item."""
    types = {f.name: f.type for f in fields(Thresholds)}
    values: dict[str, Any] = {}
    for name, text in _pairs(items, "--threshold", "NAME=VALUE", "threshold", list(types)):
        try:
            values[name] = int(text) if types[name] in ("int", int) else float(text)
        except ValueError:
            kind = "an integer" if types[name] in ("int", int) else "a number"
            raise LrlabError(f"--threshold {name} must be {kind}, got {text!r}") from None
    return Thresholds(**values)
