"""CLI commands `lrlab find` (the LR range test on a built-in task) and `lrlab suggest` (a full schedule).

Importing this module loads typer and the lists its options check (torch-free modules); torch, matplotlib and
rich load when a command runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from lrlab.bench.presets import PRESET_NAMES
from lrlab.bench.train import OPTIMIZERS
from lrlab.cli_options import Choice, Task, option
from lrlab.range_test import CALIBRATED_SWEEP
from lrlab.suggest import OPTIMIZERS as SUGGEST_OPTIMIZERS
from lrlab.suggest import TASKS as SUGGEST_TASKS


def register(app: typer.Typer) -> None:
    """Add `find` and `suggest` to the lrlab CLI."""
    app.command("find")(find_cmd)
    app.command("suggest")(suggest_cmd)


def find_cmd(
    task: Annotated[str, option(Task(), help="lm | vision | text:PATH | hf:NAME")] = "lm",
    preset: Annotated[str, option(Choice(PRESET_NAMES), help="model size")] = "tiny",
    optimizer: Annotated[str, option(Choice(OPTIMIZERS, "NAME"), help=" | ".join(OPTIMIZERS))] = "adamw",
    start_lr: Annotated[float, typer.Option(help="first LR of the sweep")] = CALIBRATED_SWEEP[0],
    end_lr: Annotated[float, typer.Option(help="last LR of the sweep")] = CALIBRATED_SWEEP[1],
    num_iter: Annotated[int, typer.Option(
        help=f"updates in the sweep (peak_lr is calibrated on {CALIBRATED_SWEEP[2]})")] = CALIBRATED_SWEEP[2],
    mode: Annotated[str, option(Choice(("exp", "linear")), help="spacing of the swept LRs")] = "exp",
    accumulation_steps: Annotated[int, typer.Option(help="micro-batches per update")] = 1,
    batch_size: Annotated[int | None, typer.Option(help="batch size  \\[default: the preset's]")] = None,
    seed: Annotated[int, typer.Option(help="seed of the weights and the batches")] = 0,
    out: Annotated[Path | None, typer.Option(help="write the plot here (PNG) with the suggestions marked")] = None,
    device: Annotated[str, typer.Option(help="auto (CUDA, then MPS, then the CPU) | cpu | cuda | cuda:N | mps")]
    = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """LR range test on a built-in task: the peak LR for a full run (a calibrated fraction of the divergence
    boundary), and the classic rules: steepest descent (against log LR), valley, minimum/10."""
    # here, not at the top: the range test trains a model (torch)
    from lrlab.bench.device import resolve_device
    from lrlab.bench.find import find_on_task
    from lrlab.range_test import median_suggestion, peak_lr, plot_range_test, suggest_all

    result = find_on_task(task, preset=preset, optimizer=optimizer, seed=seed, start_lr=start_lr, end_lr=end_lr,
                          num_iter=num_iter, mode=mode, accumulation_steps=accumulation_steps, batch_size=batch_size,
                          device=resolve_device(device))
    found = suggest_all(result)
    peak = peak_lr(result)
    if out is not None:
        plot_range_test(result, out, suggestions=(peak, *found),
                        title=f"LR range test: {task} ({preset}), {optimizer}")
    if as_json:
        typer.echo(json.dumps({"task": task, "preset": preset, "optimizer": optimizer, "peak": peak.to_dict(),
                               "suggestions": [s.to_dict() for s in found], "median": median_suggestion(found),
                               "result": result.to_dict(), "plot": str(out) if out is not None else None}, indent=2))
        return
    from rich.console import Console  # rich is slow to import: only for the table
    from rich.table import Table

    console = Console()
    console.print(f"LR range test: {task} ({preset}), {optimizer}: {len(result.lrs)} updates from "
                  f"{result.start_lr:g} ({result.mode}), {result.stop_reason}", highlight=False)
    table = Table()
    table.add_column("rule", style="bold")
    table.add_column("LR", justify="right")
    table.add_column("how")
    for s in (peak, *found):
        table.add_row(s.rule, f"{s.lr:.3g}", s.note)
    console.print(table)
    console.print(f"peak LR for a full run with warm-up: {peak.lr:.3g} (the classic rules' median: "
                  f"{median_suggestion(found):.3g}, which is off by up to 4x on lrlab's tasks: BENCHMARKS.md)",
                  highlight=False)
    if out is not None:
        console.print(f"wrote {out}", highlight=False)


def suggest_cmd(
    task: Annotated[str, option(Choice(SUGGEST_TASKS), help="the kind of training")],
    steps: Annotated[int, typer.Option(help="planned optimizer updates")],
    optimizer: Annotated[str, option(Choice(SUGGEST_OPTIMIZERS, "NAME"), help=" | ".join(SUGGEST_OPTIMIZERS))]
    = "adamw",
    find: Annotated[bool, typer.Option("--find", help="measure the peak LR with the range test (built-in task)")]
    = False,
    preset: Annotated[str | None, option(Choice(PRESET_NAMES), help="built-in model: its measured peak LR, and "
                                                                     "the model of --find  \\[default: your own "
                                                                     "model]")] = None,
    seed: Annotated[int, typer.Option(help="seed for --find")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Suggest a full schedule spec (warm-up, decay shape, minimum LR, peak LR) with its reasons."""
    from lrlab.cli import _width
    from lrlab.suggest import format_suggestion, suggest  # suggest --find imports torch; keep `--help` fast

    s = suggest(task, steps, optimizer=optimizer, find=find, preset=preset, seed=seed)
    if as_json:  # unwrapped: for programs
        typer.echo(json.dumps(s.to_dict(), indent=2))
    else:
        typer.echo(format_suggestion(s, width=_width()))
