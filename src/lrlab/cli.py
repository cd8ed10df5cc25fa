"""The `lrlab` command line: parses arguments, calls the library, prints. Errors become one line and exit 2."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import json
import os
import re
import shutil
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lrlab.checks import check
from lrlab.cli_options import Choice, option
from lrlab.errors import LrlabError

if TYPE_CHECKING:
    from lrlab.schedule import Schedule

app = typer.Typer(
    name="lrlab",
    help="Exact, composable learning-rate schedules, and tools that tell you which one to use.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

SpecArg = Annotated[
    str, typer.Argument(help="schedule spec, e.g. 'warmup(0.06) >> cosine(floor=0.1)', or @file.json/.yaml")
]
TotalOpt = Annotated[float, typer.Option("--total", "-n", help="run length in clock units (updates)")]
#: the peers `show --as` writes code for (lrlab.native.PEERS; listed here so that the help needs no import)
PEERS = ("torch", "hf", "lightning", "optax", "timm")


def _version(value: bool) -> None:
    if value:
        from lrlab import __version__

        typer.echo(f"lrlab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", "-V", callback=_version, is_eager=True,
                                                help="Print the version and exit.")] = False) -> None:
    """Exact, composable learning-rate schedules, and tools that tell you which one to use."""


def _width() -> int:
    """Columns to write to: the terminal's (``COLUMNS`` when set), 80 when piped."""
    return max(40, shutil.get_terminal_size((80, 24)).columns)


def _wrap(text: str, indent: str = "", first: str | None = None) -> str:
    return textwrap.fill(text, width=_width(), initial_indent=indent if first is None else first,
                         subsequent_indent=indent, break_long_words=False, break_on_hyphens=False)


@app.command("list")
def list_cmd(as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False) -> None:
    """List schedule families and combinators with their arguments."""
    from lrlab.preview import summary
    from lrlab.spec import ALIASES, MACROS, REGISTRY, spec_fields

    rows: list[dict[str, str | list[str]]] = []
    for name, cls in REGISTRY.items():
        args = [k for k in spec_fields(cls) if k != "name"]
        rows.append({"name": name, "args": args, "summary": summary(cls)})
    for name, fn in MACROS.items():
        rows.append({"name": name, "args": list(fn.__kwdefaults__ or {}), "summary": summary(fn)})
    if as_json:
        typer.echo(json.dumps({"schedules": rows, "aliases": ALIASES}, indent=2))
        return
    for r in rows:
        typer.echo(_wrap(f"{r['name']}({', '.join(r['args'])})", "    ", ""))
        typer.echo(_wrap(str(r["summary"]), "    "))
    typer.echo(_wrap("aliases: " + ", ".join(f"{a} = {n}" for a, n in ALIASES.items()), "    ", ""))


@app.command()
def show(
    spec: SpecArg,
    total: TotalOpt,
    at: Annotated[str | None, typer.Option(help="comma-separated clocks, e.g. 0,100,500")] = None,
    lr: Annotated[float | None, typer.Option(help="base LR: also print absolute LRs (with --as: written into the "
                                                  "code where the peer needs a number)")] = None,
    as_peer: Annotated[str | None, option(Choice(PEERS, "PEER"), "--as", help="print the schedule as this peer's own "
                                                                       "code instead (exit 2 if it cannot express "
                                                                       "it exactly)")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Print a schedule's phases with their formulas, and a table of values; or, with --as, the schedule
    written as torch, Hugging Face, Lightning, optax or timm code (no lrlab needed to run it)."""
    from lrlab.spec import load

    _check_lr(lr)
    schedule = load(spec, total=total)
    if as_peer is not None:
        _show_native(schedule, as_peer, total, lr, as_json)
        return
    from lrlab.preview import phases, value_table

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
    typer.echo(_wrap(f"{load(spec)}  (total={total:g}; bound: {schedule})", "    ", ""))
    for p in ph:
        end = "∞" if p.end is None else f"{p.end:g}"
        typer.echo(_wrap(f"[{p.start:g}, {end})  {p.spec}", "      ", "  "))
        typer.echo(_wrap(p.formula, "        ", "      "))
    table = [("t", "value", *(["lr"] if lr else []))]
    table += [(f"{t:g}", f"{v:.6g}", *([f"{v * lr:.6g}"] if lr else [])) for t, v in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for r in table:
        typer.echo("  ".join(cell.rjust(w) for cell, w in zip(r, widths)))


def _show_native(schedule: Schedule, peer: str, total: float, lr: float | None, as_json: bool) -> None:
    from lrlab.native import native

    code = native(schedule, peer, total=total, lr=lr)
    if as_json:
        typer.echo(json.dumps({"peer": peer, "spec": code.spec, "total": code.total, "imports": list(code.imports),
                               "body": code.body, "code": code.code}, indent=2))
    else:
        typer.echo(code.code, nl=False)


@app.command()
def plot(
    spec: Annotated[str, typer.Argument(
        help="schedule spec, or several separated by ';' to overlay them, e.g. 'cosine(); linear()'; or "
             "@file.json/.yaml")],
    total: TotalOpt,
    out: Annotated[Path | None, typer.Option(help="write a PNG here (e.g. lr.png)")] = None,
    lr: Annotated[float | None, typer.Option(help="base LR: plot absolute LRs")] = None,
    terminal: Annotated[bool, typer.Option(help="draw the plot in the terminal")] = True,
    log_y: Annotated[bool, typer.Option("--log-y", help="logarithmic LR axis (values <= 0 are left out)")] = False,
) -> None:
    """Plot a schedule in the terminal and/or as a PNG, with phase boundaries and peak/minimum marked; or
    several schedules overlaid, one colour each."""
    from lrlab.preview import check_plot_path, check_total, plot_png, plot_terminal, preview
    from lrlab.spec import load

    check_total(total)
    _check_lr(lr)
    if out is not None:
        check_plot_path(out)
    specs = [s.strip() for s in spec.split(";") if s.strip()]
    if not specs:
        raise LrlabError(f"give at least one schedule spec (several separated by ';'), got {spec!r}")
    # bound here, so plot validates the spec as show does
    previews = [preview(load(s, total=total), total) for s in specs]
    if len(previews) > 1:  # overlaid: each labelled as written (its canonical text), not bound
        previews = [dataclasses.replace(p, spec=str(load(s))) for p, s in zip(previews, specs)]
    if terminal:
        typer.echo(plot_terminal(previews, log_y=log_y))
    elif len(previews) > 1:
        typer.echo("\n".join(f"  {i + 1}: {p.spec}" for i, p in enumerate(previews)))
    for i, p in enumerate(previews):
        line = f"peak {p.peak:.6g} at t={p.peak_t:g}; minimum {p.min:.6g} at t={p.min_t:g}"
        typer.echo(line if len(previews) == 1 else f"{i + 1}: {line}")
    if out is not None:
        path = plot_png(previews, out, base_lr=lr, log_y=log_y)
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


# ------------------------------------------------------------------------------ optional dependencies
@dataclass(frozen=True)
class Need:
    """An optional package a verb imports: ``module``, from the extra ``extra``; needed always, or only when
    the option ``when`` is given (``"--task=vision"``: with that value), or unless the flag ``unless`` is."""

    module: str
    extra: str
    when: str | None = None
    unless: str | None = None
    why: str = ""


#: what each verb needs beyond `import lrlab` (numpy), checked before the verb runs, so that nothing (a run
#: folder) is created for a command that cannot finish
NEEDS: dict[str, tuple[Need, ...]] = {
    "compare": (Need("torch", "bench"), Need("matplotlib", "bench", unless="--no-plots", why="for its plots"),
                Need("sklearn", "bench", when="--task=vision", why="for the vision task")),
    "train": (Need("torch", "bench"), Need("matplotlib", "bench", unless="--no-plots", why="for its plots"),
              Need("sklearn", "bench", when="--task=vision", why="for the vision task")),
    "report": (Need("matplotlib", "plot", unless="--no-plots", why="for its plots"),),
    "find": (Need("torch", "bench"), Need("matplotlib", "plot", when="--out", why="for the plot"),
             Need("sklearn", "bench", when="--task=vision", why="for the vision task")),
    "suggest": (Need("torch", "bench", when="--find", why="for --find"),),
    "tune": (Need("torch", "bench"), Need("scipy", "bench"),
             Need("matplotlib", "bench", unless="--no-plots", why="for its plots"),
             Need("sklearn", "bench", when="--task=vision", why="for the vision task")),
    "predict": (Need("scipy", "predict"), Need("matplotlib", "plot", unless="--no-plot", why="for its plot")),
    "plot": (Need("plotext", "plot", unless="--no-terminal", why="for the terminal plot"),
             Need("matplotlib", "plot", when="--out", why="for the PNG")),
    "show": (),
}
#: the extra that installs each optional package (for a missing one found while a verb runs)
EXTRAS = {"torch": "bench", "matplotlib": "plot", "plotext": "plot", "scipy": "predict", "sklearn": "bench",
          "schedulefree": "bench", "yaml": "bench", "ray": "ray", "transformers": "hf", "datasets": "hf",
          "accelerate": "hf"}


def _given(args: list[str], option: str) -> bool:
    name, _, value = option.partition("=")
    for i, a in enumerate(args):
        if a == name:
            if not value:
                return True
            if i + 1 < len(args) and args[i + 1] == value:
                return True
        elif a == f"{name}={value}" and value:
            return True
    return False


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a half-imported module or one without a spec: let the verb find out
        return True


def _verb(args: list[str]) -> str | None:
    return next((a for a in args if not a.startswith("-")), None)


def check_needs(args: list[str]) -> None:
    """Raise `LrlabError` (one line: the verb, the package, the pip command) when the verb in ``args`` needs an
    optional package that is not installed. Help (-h) never needs one."""
    verb = _verb(args)
    if verb is None or "-h" in args or "--help" in args:
        return
    for need in NEEDS.get(verb, ()):
        if need.when is not None and not _given(args, need.when):
            continue
        if need.unless is not None and _given(args, need.unless):
            continue
        if not _installed(need.module):
            raise LrlabError(_missing(verb, need.module, need.extra, need.why, need.unless))


def _missing(verb: str | None, module: str, extra: str, why: str = "", unless: str | None = None) -> str:
    pip = {"sklearn": "scikit-learn", "yaml": "pyyaml"}.get(module, module)
    what = f"lrlab {verb}" if verb else "lrlab"
    return (f"{what} needs {pip}{' ' + why if why else ''}: pip install 'lrlab[{extra}]'"
            + (f" (or pass {unless})" if unless else ""))


# ------------------------------------------------------------------------------ help text
def _tidy(text: str) -> str:
    """Docstring text as help: RST literals without their marks, each paragraph on one line (the help
    formatter wraps it to the terminal)."""
    from lrlab.preview import plain

    paragraphs = re.split(r"\n\s*\n", plain(text).strip())
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


def _tidy_command(cmd: Any) -> None:
    for attr in ("help", "short_help"):
        if getattr(cmd, attr, None):
            setattr(cmd, attr, _tidy(getattr(cmd, attr)))
    for p in getattr(cmd, "params", ()):
        if getattr(p, "help", None):
            p.help = _tidy(p.help)
    for sub in getattr(cmd, "commands", {}).values():
        _tidy_command(sub)


def command() -> Any:
    """The click command of the CLI, its help texts as plain text."""
    cmd = typer.main.get_command(app)
    _tidy_command(cmd)
    return cmd


def main(argv: list[str] | None = None) -> int:
    """Entry point. Usage errors exit 2 (typer); `LrlabError` prints `error: message` on stderr, exit 2, as
    does a missing optional package (checked before the verb runs, so it creates nothing); Ctrl-C exits 130.
    With `argv` given (tests), the exit code is returned instead of raised."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if "_LRLAB_COMPLETE" not in os.environ:  # shell completion needs no extra
            check_needs(args)
        command().main(args=args, prog_name="lrlab")
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except LrlabError as e:
        typer.echo(f"error: {e}", err=True)
        code = 2
    except OSError as e:  # a file or folder the verb could not use (lrlab's own reads and writes name it already)
        from lrlab.files import file_error

        typer.echo(f"error: {file_error('use', e.filename, e) if e.filename else e}", err=True)
        code = 2
    except ModuleNotFoundError as e:
        top = (e.name or "").split(".")[0]
        if top not in EXTRAS:
            raise
        typer.echo(f"error: {_missing(_verb(args), top, EXTRAS[top])}", err=True)
        code = 2
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        code = 130
    if argv is None:
        sys.exit(code)
    return code


if __name__ == "__main__":
    main()
