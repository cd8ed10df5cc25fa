"""CLI command `lrlab tune`: parse options, call `lrlab.tune.runner.run_tune`, show progress and the result.

Importing this module loads typer, numpy and `lrlab.tune.config` (its optimizers and laws, which the options check);
the harness, torch and rich load when the command runs.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from lrlab.bench.device import BACKENDS
from lrlab.bench.presets import PRESET_NAMES
from lrlab.cli_options import Choice, Task, option, refuse_beside_resume
from lrlab.errors import LrlabError
from lrlab.tune.config import LAWS, NO_SCHEDULE, OPTIMIZERS, TuneConfig

#: the task and the horizon when --task and --steps are not given (`TuneConfig` has no defaults for them)
TASK, STEPS = "lm", 1000
#: where the other options' defaults come from, so that the help cannot drift from them
_CONFIG = TuneConfig(horizon=STEPS)


class TuneOptimizer(Choice):
    """One of tune's optimizers; ``schedulefree`` is refused saying why (`lrlab.tune.config.NO_SCHEDULE`)."""

    def __call__(self, value: str) -> str:
        if value == "schedulefree":
            raise typer.BadParameter(NO_SCHEDULE)
        return super().__call__(value)


def lr_value(value: str) -> str:
    """``--lr``: a number or ``find`` (kept as the text given; `TuneConfig` checks the number)."""
    if value.strip().lower() == "find":
        return "find"
    try:
        float(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is neither a number nor find") from None
    return value


def _default(value: object) -> str:
    """``  \\[default: X]``: the help of an option whose default is None, so that a given one can be told apart
    (`lrlab.cli_options.refuse_beside_resume`)."""
    return f"  \\[default: {value}]"


def register(app: typer.Typer) -> None:
    """Add `tune` to the lrlab CLI."""
    app.command("tune")(tune)


def tune(
    task: Annotated[str | None, option(Task(), help="lm | vision | text:PATH | hf:NAME" + _default(TASK))] = None,
    preset: Annotated[str | None, option(Choice(PRESET_NAMES), help="model size" + _default(_CONFIG.preset))]
    = None,
    steps: Annotated[int | None, typer.Option(
        help="horizon: optimizer updates of the run to tune for" + _default(STEPS))] = None,
    optimizer: Annotated[str | None, option(
        TuneOptimizer(OPTIMIZERS, "NAME"), help=" | ".join(OPTIMIZERS) + _default(_CONFIG.optimizer))] = None,
    lr: Annotated[str | None, typer.Option(
        parser=lr_value, metavar="LR|find",
        help="centre of the peak-LR grid: a number, or find (the peak LR `lrlab find` suggests, from its 300-update "
             "range test, as `lrlab compare --lr find`)  \\[default: lrlab compare's measured centre for the "
             "optimizer]")] = None,
    budget: Annotated[int | None, typer.Option(
        help="updates to train in all, branched ones once  \\[default: 1/4 of the default lrlab compare's]")] = None,
    schedules: Annotated[str | None, typer.Option(
        help="';'-separated candidate specs  \\[default: the 9 lrlab compare compares]")] = None,
    lr_extend: Annotated[int | None, typer.Option(
        help="peaks to add past an edge of the grid when the best is there (budget permitting)"
             + _default(_CONFIG.lr_extend))] = None,
    law: Annotated[str | None, option(
        Choice(LAWS, "LAW"), help="loss-curve law fitted per peak: " + " | ".join(LAWS) + _default(_CONFIG.law))]
    = None,
    seed: Annotated[int | None, typer.Option(
        help="seed of the trunks; confirmations use seed, seed+1, ..." + _default(_CONFIG.seed))] = None,
    batch_size: Annotated[int | None, typer.Option(help="batch size  \\[default: the preset's]")] = None,
    checkpoint_every: Annotated[int | None, typer.Option(
        help="updates between checkpoints of a running trial" + _default(_CONFIG.checkpoint_every))] = None,
    out: Annotated[Path | None, typer.Option(help="output folder  \\[default: lrlab-runs/tune-TIMESTAMP]")] = None,
    workers: Annotated[int | None, typer.Option(
        help="parallel runs  \\[default: min(2, cores); on GPUs, one per GPU]")] = None,
    device: Annotated[str | None, typer.Option(
        help="auto (CUDA, then MPS, then the CPU) | cpu | cuda (every GPU, one worker each) | cuda:N | mps  "
             "\\[default: auto; with --resume, the kind of device the tune ran on]")] = None,
    backend: Annotated[str, option(Choice(BACKENDS), help="local (processes) or a Ray cluster")] = "local",
    address: Annotated[str | None, typer.Option(help="Ray cluster address (with --backend ray)")] = None,
    resume: Annotated[Path | None, typer.Option(
        help="finish the tune in this folder after a crash (its settings are the folder's)")] = None,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="write tune.png")] = True,
) -> None:
    """Find the best schedule and peak LR for a run of --steps updates, for a quarter of a grid's compute."""
    from lrlab.tune.runner import run_tune

    given = {name: value for name, value in (
        ("task", task), ("preset", preset), ("steps", steps), ("optimizer", optimizer), ("lr", lr),
        ("budget", budget), ("schedules", schedules), ("lr_extend", lr_extend), ("law", law), ("seed", seed),
        ("batch_size", batch_size), ("checkpoint_every", checkpoint_every)) if value is not None}
    config = None
    if resume is None:
        fields: dict[str, Any] = {k: v for k, v in given.items() if k not in ("steps", "lr", "schedules")}
        if schedules is not None:
            fields["schedules"] = tuple(p.strip() for p in schedules.split(";") if p.strip())
        if lr == "find":
            fields["lr_find"] = True
        elif lr is not None:
            fields["lr"] = float(lr)
        config = TuneConfig(**{"task": TASK, **fields, "horizon": steps if steps is not None else STEPS})
        out_dir = out if out is not None else Path("lrlab-runs") / f"tune-{datetime.now():%Y%m%d-%H%M%S}"
    else:
        refuse_beside_resume(list(given), "tune.json")
        if out is not None and out != resume:
            raise LrlabError(f"--resume {resume} writes into that folder; drop --out {out}")
        out_dir = resume
    from rich.console import Console

    from lrlab.bench.cli_compare import ProgressView

    console = Console()
    t0 = time.monotonic()
    with ProgressView(console, header=f"lrlab tune → {out_dir}") as view:
        doc, result = run_tune(config, out_dir, resume=resume is not None, workers=workers, backend=backend,
                               address=address, on_event=view,
                               device=device if device is not None or resume is not None else "auto")
    if view.header is not None:  # no event came (e.g. a finished folder resumed): say where, still
        console.print(view.header, highlight=False, soft_wrap=True)
    if result is None:
        console.print(f"interrupted; `lrlab tune --resume {out_dir}` finishes it", highlight=False, soft_wrap=True)
        raise typer.Exit(130)
    from lrlab.tune.report import print_result, write_report

    written = write_report(doc, result, out_dir, plots=plots)
    print_result(result, console)
    console.print(f"wrote {out_dir}/results.json, " + ", ".join(written) + f" in {time.monotonic() - t0:.0f} s",
                  highlight=False, soft_wrap=True)
