"""CLI command `lrlab tune`: parse options, call `lrlab.tune.runner.run_tune`, show progress and the result.

Importing this module loads typer, numpy and `lrlab.tune.config` (its optimizers and laws, which the options check);
the harness, torch and rich load when the command runs.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from lrlab.bench.presets import PRESET_NAMES
from lrlab.cli_options import Choice, Task, option
from lrlab.errors import LrlabError
from lrlab.tune.config import LAWS, NO_SCHEDULE, OPTIMIZERS

#: `lrlab.tune.runner.BACKENDS` (the runner loads the harness; this module must not)
BACKENDS = ("local", "ray")


class TuneOptimizer(Choice):
    """One of tune's optimizers; ``schedulefree`` is refused saying why (`lrlab.tune.config.NO_SCHEDULE`)."""

    def __call__(self, value: str) -> str:
        if value == "schedulefree":
            raise typer.BadParameter(NO_SCHEDULE)
        return super().__call__(value)


def register(app: typer.Typer) -> None:
    """Add `tune` to the lrlab CLI."""
    app.command("tune")(tune)


def tune(
    task: Annotated[str, option(Task(), help="lm | vision | text:PATH | hf:NAME")] = "lm",
    preset: Annotated[str, option(Choice(PRESET_NAMES), help="model size")] = "tiny",
    steps: Annotated[int, typer.Option(help="horizon: optimizer updates of the run to tune for")] = 1000,
    optimizer: Annotated[str, option(TuneOptimizer(OPTIMIZERS, "NAME"), help=" | ".join(OPTIMIZERS))] = "adamw",
    lr: Annotated[float | None, typer.Option(
        help="centre of the peak-LR grid  \\[default: lrlab compare's measured centre for the optimizer]")] = None,
    budget: Annotated[int | None, typer.Option(
        help="updates to train in all, branched ones once  \\[default: 1/4 of the default lrlab compare's]")] = None,
    schedules: Annotated[str | None, typer.Option(
        help="';'-separated candidate specs  \\[default: the 9 lrlab compare compares]")] = None,
    lr_extend: Annotated[int, typer.Option(
        help="peaks to add past an edge of the grid when the best is there (budget permitting)")] = 2,
    law: Annotated[str, option(Choice(LAWS, "LAW"), help="loss-curve law fitted per peak: " + " | ".join(LAWS))]
    = "multipower",
    seed: Annotated[int, typer.Option(help="seed of the trunks; confirmations use seed, seed+1, ...")] = 0,
    batch_size: Annotated[int | None, typer.Option(help="batch size  \\[default: the preset's]")] = None,
    checkpoint_every: Annotated[int, typer.Option(help="updates between checkpoints of a running trial")] = 500,
    out: Annotated[Path | None, typer.Option(help="output folder  \\[default: lrlab-runs/tune-TIMESTAMP]")] = None,
    workers: Annotated[int | None, typer.Option(
        help="parallel runs  \\[default: min(2, cores); on GPUs, one per GPU]")] = None,
    device: Annotated[str | None, typer.Option(
        help="auto (CUDA, then MPS, then the CPU) | cpu | cuda (every GPU, one worker each) | cuda:N | mps  "
             "\\[default: auto; with --resume, the kind of device the tune ran on]")] = None,
    backend: Annotated[str, option(Choice(BACKENDS), help="local (processes) or a Ray cluster")] = "local",
    address: Annotated[str | None, typer.Option(help="Ray cluster address (with --backend ray)")] = None,
    resume: Annotated[Path | None, typer.Option(help="finish the tune in this folder after a crash")] = None,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="write tune.png")] = True,
) -> None:
    """Find the best schedule and peak LR for a run of --steps updates, for a quarter of a grid's compute."""
    from lrlab.tune.config import TuneConfig
    from lrlab.tune.runner import run_tune

    config = None
    if resume is None:
        specs = tuple(p.strip() for p in schedules.split(";") if p.strip()) if schedules is not None else None
        config = TuneConfig(task=task, preset=preset, horizon=steps, optimizer=optimizer, lr=lr, budget=budget,
                            schedules=specs, lr_extend=lr_extend, law=law, seed=seed, batch_size=batch_size,
                            checkpoint_every=checkpoint_every)
        out_dir = out if out is not None else Path("lrlab-runs") / f"tune-{datetime.now():%Y%m%d-%H%M%S}"
    else:
        if out is not None and out != resume:
            raise LrlabError(f"--resume {resume} writes into that folder; drop --out {out}")
        out_dir = resume
    from rich.console import Console

    from lrlab.bench.cli_compare import ProgressView

    console = Console()
    console.print(f"lrlab tune → {out_dir}", highlight=False, soft_wrap=True)
    t0 = time.monotonic()
    with ProgressView(console) as view:
        doc, result = run_tune(config, out_dir, resume=resume is not None, workers=workers, backend=backend,
                               address=address, on_event=view,
                               device=device if device is not None or resume is not None else "auto")
    if result is None:
        console.print(f"interrupted; `lrlab tune --resume {out_dir}` finishes it", highlight=False, soft_wrap=True)
        raise typer.Exit(130)
    from lrlab.tune.report import print_result, write_report

    written = write_report(doc, result, out_dir, plots=plots)
    print_result(result, console)
    console.print(f"wrote {out_dir}/results.json, " + ", ".join(written) + f" in {time.monotonic() - t0:.0f} s",
                  highlight=False, soft_wrap=True)
