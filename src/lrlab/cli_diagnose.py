"""CLI command `lrlab diagnose LOG`: read a Monitor's files, diagnose the run, print the findings.

Importing this module loads typer only; rich loads when the command runs.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any

import typer

from lrlab.cli_options import Choice, option
from lrlab.diagnose import Curves, Thresholds, diagnose, format_findings
from lrlab.errors import LrlabError
from lrlab.files import file_error, read_text
from lrlab.monitor_files import EVALS_CSV, JSONL_FILE, STEPS_CSV, load_curves

SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2}


def register(app: typer.Typer) -> None:
    """Add `diagnose` to the lrlab CLI."""
    app.command("diagnose")(diagnose_cmd)


def diagnose_cmd(
    log: Annotated[Path, typer.Argument(help="a Monitor's monitor.jsonl, steps.csv, or its folder")],
    total: Annotated[int | None, typer.Option("--total", "-n", help="planned updates of the run (if not recorded)")]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    fail_on: Annotated[str | None, option(Choice(("warning", "error")), help="exit 1 when a finding is at least "
                                                                              "this severe")] = None,
    threshold: Annotated[list[str] | None, typer.Option(
        "--threshold", "-t", help="change a detection threshold, NAME=VALUE (repeatable), e.g. slow_drop=0.05; "
                                  "the names are the fields of lrlab.diagnose.Thresholds")] = None,
) -> None:
    """Diagnose a recorded run: divergence, warm-up spikes, too slow, unstable validation, plateau, over-fitting,
    decay too early; each with an advice and the numbers behind it."""
    if fail_on is not None and fail_on not in ("warning", "error"):
        raise LrlabError(f"--fail-on must be warning or error, got {fail_on!r}")
    thresholds = parse_thresholds(threshold or [])
    curves = read_log(log, total_steps=total)
    findings = diagnose(curves, thresholds=thresholds)
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


def read_log(log: Path, *, total_steps: int | None = None) -> Curves:
    """`lrlab.monitor_files.load_curves` of ``log``, with a file that is not readable UTF-8 text (UTF-16, binary,
    unreadable) refused naming it, instead of a decoding error that names no file."""
    if log.exists() and not (log.is_file() or log.is_dir()):  # a pipe or a device would be read forever
        raise LrlabError(f"Monitor log {str(log)!r} is not a regular file or folder; expected a monitor.jsonl, "
                         "steps.csv or a Monitor folder")
    for path in _log_files(log):
        read_text(path, what="Monitor log")
    try:
        return load_curves(log, total_steps=total_steps)
    except OSError as e:
        raise file_error("read the Monitor log", log, e) from None
    except UnicodeDecodeError as e:  # a file that changed since it was checked
        raise LrlabError(f"Monitor log {str(log)!r} is not UTF-8 text ({e.reason} at byte {e.start})") from None


def _log_files(log: Path) -> list[Path]:
    """The files `load_curves` may read for ``log`` (those that exist)."""
    names = (JSONL_FILE, STEPS_CSV, EVALS_CSV)
    if log.is_dir():
        candidates = [log / n for n in names] + [log / "monitor" / n for n in names]
    else:
        evals = log.with_name(EVALS_CSV) if log.name == STEPS_CSV else log.with_name(log.stem + ".evals.csv")
        candidates = [log, evals] if log.suffix.lower() == ".csv" else [log]
    return [p for p in candidates if p.is_file()]


def parse_thresholds(items: list[str]) -> Thresholds:
    """`lrlab.diagnose.Thresholds` with the ``NAME=VALUE`` overrides of `items` (validated by Thresholds);
    `LrlabError` naming the allowed fields for an unknown name or a malformed item."""
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
