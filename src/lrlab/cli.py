"""The `lrlab` command line: parses arguments, calls the library, prints. Errors become one line and exit 2."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from lrlab.checks import check
from lrlab.errors import LrlabError

app = typer.Typer(
    name="lrlab",
    help="Exact, composable learning-rate schedules, and tools that tell you which one to use.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

SpecArg = Annotated[
    str, typer.Argument(help="schedule spec, e.g. 'warmup(0.06) >> cosine(floor=0.1)', or @file.json/.yaml")
]
TotalOpt = Annotated[float, typer.Option("--total", "-n", help="run length in clock units (updates)")]


@app.command("list")
def list_cmd(as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False) -> None:
    """List schedule families and combinators with their arguments."""
    from lrlab.spec import ALIASES, MACROS, REGISTRY, spec_fields

    rows: list[dict[str, str | list[str]]] = []
    for name, cls in REGISTRY.items():
        args = [k for k in spec_fields(cls) if k != "name"]
        summary = (cls.__doc__ or "").strip().splitlines()[0]
        rows.append({"name": name, "args": args, "summary": summary})
    for name, fn in MACROS.items():
        summary = (fn.__doc__ or "").strip().splitlines()[0]
        rows.append({"name": name, "args": list(fn.__kwdefaults__ or {}), "summary": summary})
    if as_json:
        typer.echo(json.dumps({"schedules": rows, "aliases": ALIASES}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="lrlab schedules")
    table.add_column("name", style="bold")
    table.add_column("arguments")
    table.add_column("what")
    for r in rows:
        table.add_row(str(r["name"]), ", ".join(r["args"]), str(r["summary"]))
    Console().print(table)


@app.command()
def show(
    spec: SpecArg,
    total: TotalOpt,
    at: Annotated[str | None, typer.Option(help="comma-separated clocks, e.g. 0,100,500")] = None,
    lr: Annotated[float | None, typer.Option(help="base LR: also print absolute LRs")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Print a schedule's phases with their formulas, and a table of values."""
    from lrlab.preview import phases, value_table
    from lrlab.spec import load

    _check_lr(lr)
    schedule = load(spec, total=total)
    clocks = None
    if at:
        try:
            clocks = [float(x) for x in at.split(",") if x.strip()]
        except ValueError:
            raise LrlabError(f"--at must be comma-separated numbers, got {at!r}") from None
    rows = value_table(schedule, total, clocks)
    ph = phases(schedule, total)
    if as_json:
        typer.echo(json.dumps({
            "spec": str(load(spec)), "bound": str(schedule), "total": total,
            "phases": [{"start": p.start, "end": p.end, "spec": p.spec, "formula": p.formula} for p in ph],
            "values": [{"t": t, "value": v, **({"lr": v * lr} if lr else {})} for t, v in rows],
        }, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]{load(spec)}[/bold]  (total={total:g}; bound: {schedule})")
    for p in ph:
        end = "∞" if p.end is None else f"{p.end:g}"
        console.print(f"  [{p.start:g}, {end})  [cyan]{p.spec}[/cyan]\n      {p.formula}")
    table = Table()
    table.add_column("t", justify="right")
    table.add_column("value", justify="right")
    if lr:
        table.add_column("lr", justify="right")
    for t, v in rows:
        table.add_row(f"{t:g}", f"{v:.6g}", *([f"{v * lr:.6g}"] if lr else []))
    console.print(table)


@app.command()
def plot(
    spec: SpecArg,
    total: TotalOpt,
    out: Annotated[Path | None, typer.Option(help="write a PNG here (e.g. lr.png)")] = None,
    lr: Annotated[float | None, typer.Option(help="base LR: plot absolute LRs")] = None,
    terminal: Annotated[bool, typer.Option(help="draw the plot in the terminal")] = True,
) -> None:
    """Plot a schedule in the terminal and/or as a PNG, with phase boundaries and peak/minimum marked."""
    from lrlab.preview import check_plot_path, check_total, plot_png, plot_terminal, preview
    from lrlab.spec import load

    check_total(total)
    _check_lr(lr)
    if out is not None:
        check_plot_path(out)
    p = preview(load(spec, total=total), total)  # bound here, so plot validates the spec as show does
    if terminal:
        typer.echo(plot_terminal(p))
    typer.echo(f"peak {p.peak:.6g} at t={p.peak_t:g}; minimum {p.min:.6g} at t={p.min_t:g}")
    if out is not None:
        path = plot_png(p, out, base_lr=lr)
        typer.echo(f"wrote {path}")


def _check_lr(lr: float | None) -> None:
    if lr is not None:
        check.positive("--lr", lr)


# Area modules add their commands; each exposes register(app). A missing optional dependency only hides
# that area's commands.
_AREAS = ("lrlab.bench.cli_compare", "lrlab.cli_diagnose", "lrlab.cli_find", "lrlab.cli_tune", "lrlab.cli_predict")
for _name in _AREAS:
    try:
        _module = importlib.import_module(_name)
    except ModuleNotFoundError as _e:  # pragma: no cover - depends on installed extras
        if _e.name and _e.name.startswith("lrlab"):
            continue
        raise
    _module.register(app)


def main(argv: list[str] | None = None) -> int:
    """Entry point. Usage errors exit 2 (typer); `LrlabError` prints `error: message` on stderr, exit 2;
    Ctrl-C exits 130. With `argv` given (tests), the exit code is returned instead of raised."""
    try:
        app(args=argv, prog_name="lrlab")
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except LrlabError as e:
        typer.echo(f"error: {e}", err=True)
        code = 2
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        code = 130
    if argv is None:
        sys.exit(code)
    return code


if __name__ == "__main__":
    main()
