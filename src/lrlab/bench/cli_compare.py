"""CLI commands `lrlab compare`, `lrlab report` and `lrlab train`: parse options, call the library, show progress.

Importing this module loads typer, numpy and `lrlab.bench.design` (whose `CompareConfig` supplies the defaults
the help shows); the rest of the harness, torch, matplotlib and rich load when a command runs.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from lrlab.bench.design import SCHEDULEFREE_LR_FACTOR, CompareConfig, default_schedules, parse_lr_option
from lrlab.bench.device import BACKENDS
from lrlab.bench.presets import PRESET_NAMES
from lrlab.bench.train import OPTIMIZERS
from lrlab.cli_options import Choice, CommaChoice, Task, option, refuse_beside_resume
from lrlab.errors import LrlabError

_DEFAULT_ROOT = Path("lrlab-runs")
#: when output is not a terminal, a plain progress line at most this often (seconds)
PLAIN_PROGRESS_EVERY_S = 10.0
_DEFAULTS = CompareConfig()
#: `compare` options that set a `CompareConfig` field of another name (the others have the field's name)
_FIELD_OF = {"confirm": "confirm_seeds"}


def _default(option: str) -> str:
    """``  \\[default: X]`` for a `compare` option, X read from `CompareConfig`'s defaults (so help cannot drift)."""
    value = getattr(_DEFAULTS, _FIELD_OF.get(option, option))
    if option == "branch":
        shown = "branch" if value else "no-branch"
    elif option == "schedules":
        shown = f"the {len(default_schedules(_DEFAULTS.steps))} common families"
    elif isinstance(value, tuple):
        shown = ",".join(map(str, value))
    else:
        shown = str(value)
    return f"  \\[default: {shown}]"


def _default_out(kind: str) -> Path:
    return _DEFAULT_ROOT / f"{kind}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def _split(text: str, sep: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(sep) if p.strip())


class ProgressView:
    """Shows `lrlab.bench.events.Event`s with rich: one bar per running job and one overall, each with ETA;
    a line per finished run. When the console is not a terminal (output piped or redirected to a file), where bars
    would print nothing until the end, it prints a plain progress line instead every ``every_s`` seconds of
    ``clock`` (and at the first update): updates done of all planned, per cent, runs in flight, elapsed and ETA."""

    def __init__(self, console: Any = None, *, every_s: float = PLAIN_PROGRESS_EVERY_S,
                 clock: Callable[[], float] = time.monotonic, header: str | None = None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.console = console or Console()
        self.live = bool(self.console.is_terminal)
        self.every_s = every_s
        self.clock = clock
        self.plain = {"done": 0, "total": 0, "started": math.nan, "printed": -math.inf}
        self.progress = Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("ETA"), TimeRemainingColumn(), console=self.console,
                                 transient=False, refresh_per_second=4)
        self.overall: Any = None
        self.tasks: dict[str, Any] = {}  # job -> rich task id of its bar
        self.pending: dict[str, Any] = {}  # job -> its start event, until a worker reports on it
        self.steps: dict[str, int] = {}  # job -> updates done as last shown
        #: printed before the first event, so that input refused before any work (nothing written) prints none
        self.header = header

    def __enter__(self) -> ProgressView:
        if self.live:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live:
            self.progress.stop()

    def __call__(self, event: Any) -> None:
        if self.header is not None:
            self.console.print(self.header, highlight=False, soft_wrap=True)
            self.header = None
        if not self.live:
            self._plain(event)
            return
        p = self.progress
        if event.kind == "phase":
            if not event.jobs:
                return
            if self.overall is None:
                self.overall = p.add_task("all runs (updates)", total=event.total)
            else:  # a later phase (the confirmation seeds) adds its updates to the overall bar
                p.update(self.overall, total=(self._total() + event.total))
        elif event.kind == "start":  # queued; its bar appears when a worker reports its first update
            self.pending[event.job] = event
            self.steps[event.job] = event.start
        elif event.kind == "step" and event.job in self.pending:
            queued = self.pending.pop(event.job)
            self.tasks[event.job] = p.add_task(_short(queued.label), total=queued.total - queued.start, completed=0)
            self.__call__(event)
        elif event.kind == "step" and event.job in self.tasks:
            delta = event.step - self.steps[event.job]
            if delta > 0:
                self.steps[event.job] = event.step
                p.advance(self.tasks[event.job], delta)
                if self.overall is not None:
                    p.advance(self.overall, delta)
        elif event.kind == "finish":
            self.pending.pop(event.job, None)
            tid = self.tasks.pop(event.job, None)
            done = self.steps.pop(event.job, event.start)
            if self.overall is not None and event.step > done:
                p.advance(self.overall, event.step - done)
            if tid is not None:
                p.remove_task(tid)
            if event.loss is not None:
                p.console.print(f"  done  {event.label}: final val loss {event.loss:.4f}", highlight=False,
                                markup=False, soft_wrap=True)
            else:
                p.console.print(f"  done  {event.label}", highlight=False, markup=False, soft_wrap=True)
        elif event.kind == "skip":
            loss = f"{event.loss:.4f}" if isinstance(event.loss, float) and math.isfinite(event.loss) else "–"
            p.console.print(f"  kept  {event.label}: final val loss {loss} (finished earlier)", highlight=False,
                            markup=False, soft_wrap=True)
        elif event.kind == "stopping":
            p.console.print("Ctrl-C: stopping; running runs save a checkpoint (Ctrl-C again to abandon them)")
        elif event.kind == "note":
            p.console.print(event.label, highlight=False, markup=False, soft_wrap=True)

    def _plain(self, event: Any) -> None:
        """Plain lines for a pipe: run lines as the bars' view prints them, and a progress line on a timer."""
        state = self.plain
        if event.kind == "phase":
            state["total"] += event.total
        elif event.kind == "start":
            self.steps[event.job] = event.start
        elif event.kind in ("step", "finish") and event.job in self.steps:
            now = self.clock()
            if math.isnan(state["started"]):
                state["started"] = now
            state["done"] += max(0, event.step - self.steps[event.job])
            self.steps[event.job] = event.step
            if event.kind == "finish":
                del self.steps[event.job]
            elif now - state["printed"] >= self.every_s:
                state["printed"] = now
                self.console.print(self._progress_line(now), highlight=False, markup=False, soft_wrap=True)
        if event.kind in ("finish", "skip", "stopping", "note"):
            with self._as_printer():
                self.__call__(event)

    def _progress_line(self, now: float) -> str:
        done, total = int(self.plain["done"]), int(self.plain["total"])
        elapsed = now - self.plain["started"]
        eta = "–"
        if done and elapsed > 0 and total > done:
            eta = _duration((total - done) * elapsed / done)
        share = f" ({100 * done / total:.0f} %)" if total else ""
        running = f" · {len(self.steps)} run{'s' if len(self.steps) != 1 else ''} in flight" if len(self.steps) > 1 \
            else ""
        return (f"progress: {done:,}/{total:,} updates{share}{running} · elapsed {_duration(elapsed)} · "
                f"ETA {eta}")

    @contextlib.contextmanager
    def _as_printer(self) -> Iterator[None]:
        """Let the bars' code print a run's line through the plain console (the bars are not running)."""
        self.live = True
        try:
            yield
        finally:
            self.live = False

    def _total(self) -> float:
        for t in self.progress.tasks:
            if t.id == self.overall:
                return float(t.total or 0)
        return 0.0


def _duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``1 h 02 min``."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def _short(label: str, width: int = 60) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def register(app: typer.Typer) -> None:
    """Add `compare`, `report` and `train` to the lrlab CLI."""
    app.command("compare")(compare)
    app.command("report")(report)
    app.command("train")(train_cmd)


def compare(
    task: Annotated[str | None, option(Task(), help="lm | vision | text:PATH | hf:NAME" + _default("task"))] = None,
    preset: Annotated[str | None, option(Choice(PRESET_NAMES), help="model size" + _default("preset"))] = None,
    steps: Annotated[int | None, typer.Option(help="optimizer updates per run" + _default("steps"))] = None,
    seeds: Annotated[int | None, typer.Option(help="seeds per setting: mean ± std over them" + _default("seeds"))]
    = None,
    schedules: Annotated[str | None, typer.Option(
        help="';'-separated specs, e.g. \"constant(); warmup(0.05) >> cosine()\"" + _default("schedules"))] = None,
    optimizers: Annotated[str | None, option(
        CommaChoice(OPTIMIZERS), help="comma-separated, of: " + ", ".join(OPTIMIZERS) + _default("optimizers"))]
    = None,
    lr: Annotated[str | None, typer.Option(
        help="centre of the peak-LR grid: NAME=NUMBER pairs, e.g. sgd=0.3,adam=1e-3; one NUMBER (every optimizer, "
             f"but schedulefree gets {SCHEDULEFREE_LR_FACTOR:g}x it: its good LRs are 1-10x AdamW's); or find (the "
             "peak LR `lrlab find` suggests)  \\[default: a measured LR per optimizer]")] = None,
    lr_grid: Annotated[int | None, typer.Option(
        help="peak LRs per schedule, log-spaced around --lr; each is ranked at its best" + _default("lr_grid"))]
    = None,
    lr_grid_factor: Annotated[float | None, typer.Option(
        help="ratio between neighbouring grid LRs" + _default("lr_grid_factor"))] = None,
    lr_extend: Annotated[int | None, typer.Option(
        help="where a schedule's best peak LR is at an edge of the grid, try up to N more LRs beyond it (0: off)"
             + _default("lr_extend"))] = None,
    batch_size: Annotated[int | None, typer.Option(help="batch size  \\[default: the preset's]")] = None,
    eval_every: Annotated[int | None, typer.Option(help="updates between evaluations" + _default("eval_every"))]
    = None,
    eval_batches: Annotated[int | None, typer.Option(
        help="validation batches per evaluation" + _default("eval_batches"))] = None,
    confirm: Annotated[int | None, typer.Option(
        help="with --seeds 1: re-run every schedule at its best peak LRs with N more seeds, to choose its LR on "
             "more than one seed and measure noise (0: off)" + _default("confirm"))] = None,
    confirm_top: Annotated[int | None, typer.Option(
        help="how many of each schedule's best peak LRs (on seed 0) --confirm re-runs" + _default("confirm_top"))]
    = None,
    confirm_close: Annotated[float | None, typer.Option(
        help="share of the schedules, closest calls on seed 0 first, whose LRs after the best --confirm re-runs "
             "(1: all)" + _default("confirm_close"))] = None,
    checkpoint_every: Annotated[int | None, typer.Option(
        help="updates between checkpoints" + _default("checkpoint_every"))] = None,
    branch: Annotated[bool | None, typer.Option(
        "--branch/--no-branch", help="runs sharing an LR prefix branch from one checkpoint" + _default("branch"))]
    = None,
    target_loss: Annotated[float | None, typer.Option(
        help="loss for 'steps to target'  \\[default: the baseline's final loss]")] = None,
    out: Annotated[Path | None, typer.Option(help="output folder  \\[default: a new folder in lrlab-runs]")] = None,
    workers: Annotated[int | None, typer.Option(help="parallel runs  \\[default: min(2, cores); on GPUs, one per GPU]")]
    = None,
    device: Annotated[str | None, typer.Option(
        help="auto (CUDA, then MPS, then the CPU) | cpu | cuda (every GPU, one worker each) | cuda:N | mps  "
             "\\[default: auto; with --resume, the kind of device the comparison ran on]")] = None,
    backend: Annotated[str, option(Choice(BACKENDS), help="local (processes) or a Ray cluster")] = "local",
    address: Annotated[str | None, typer.Option(help="Ray cluster address (with --backend ray)")] = None,
    resume: Annotated[Path | None, typer.Option(help="finish the comparison in this folder after a crash")] = None,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="write PNG plots")] = True,
) -> None:
    """Train a set of LR schedules on a built-in task and rank each at its own best peak LR."""
    # the harness loads when a command runs: keeps `lrlab --help` light
    from lrlab.bench.compare import run_compare
    from lrlab.bench.report import print_report, write_report

    given: dict[str, Any] = {}
    for name, value in (("task", task), ("preset", preset), ("steps", steps), ("seeds", seeds),
                        ("lr_grid", lr_grid), ("lr_grid_factor", lr_grid_factor), ("lr_extend", lr_extend),
                        ("confirm_top", confirm_top), ("confirm_close", confirm_close), ("batch_size", batch_size),
                        ("eval_every", eval_every), ("eval_batches", eval_batches), ("confirm", confirm),
                        ("checkpoint_every", checkpoint_every), ("branch", branch),
                        ("target_loss", target_loss)):
        if value is not None:
            given[_FIELD_OF.get(name, name)] = value
    if schedules is not None:
        given["schedules"] = _split(schedules, ";")
    if optimizers is not None:
        given["optimizers"] = _split(optimizers, ",")
    if lr is not None:
        pairs, find = parse_lr_option(lr)
        names = given.get("optimizers", _DEFAULTS.optimizers)
        if "=" not in lr:  # one number for every optimizer compared
            pairs = tuple((k, v) for k, v in pairs if k in names)
        given["lr"] = pairs
        given["lr_find"] = find
    if resume is not None:
        option_of = {f: o for o, f in _FIELD_OF.items()} | {"lr_find": "lr"}
        refuse_beside_resume([option_of.get(k, k) for k in given], "compare.json")
        if out is not None and out != resume:
            raise LrlabError(f"--resume {resume} writes into that folder; drop --out {out}")
        config = None
        out_dir = resume
    else:
        config = CompareConfig(**given)
        out_dir = out if out is not None else _default_out("compare")

    from rich.console import Console

    console = Console()
    t0 = time.monotonic()
    with ProgressView(console, header=f"lrlab compare → {out_dir}") as view:
        doc = run_compare(config, out_dir, resume=resume is not None, workers=workers, backend=backend,
                          address=address, on_event=view,
                          device=device if device is not None or resume is not None else "auto")
    if view.header is not None:  # no event came (e.g. a finished folder resumed): say where, still
        console.print(view.header, highlight=False, soft_wrap=True)
    finished = [t for t in doc["trials"] if t.get("result") is not None]
    if finished:
        a = write_report(doc, out_dir, plots=plots)
        print_report(a, console)
        console.print(f"wrote {out_dir}/results.json, report.md, report.html" + (" and PNGs" if plots else "")
                      + f" in {time.monotonic() - t0:.0f} s", highlight=False, soft_wrap=True)
    if doc["status"] == "interrupted":
        console.print(f"interrupted: {len(finished)} of {doc['n_planned']} runs finished; "
                      f"`lrlab compare --resume {out_dir}` finishes the rest", highlight=False, soft_wrap=True)
        raise typer.Exit(130)


def report(
    folder: Annotated[Path, typer.Argument(help="an --out folder of `lrlab compare` or `lrlab train`")],
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="write PNG plots")] = True,
) -> None:
    """Re-render report.md, report.html and the PNGs from FOLDER/results.json, and print the ranked table."""
    from rich.console import Console

    # the harness loads when a command runs: keeps `lrlab --help` light
    from lrlab.bench.analysis import load_results
    from lrlab.bench.report import print_report, write_report

    doc = load_results(folder)
    a = write_report(doc, folder, plots=plots)
    print_report(a, Console())


def train_cmd(
    schedule: Annotated[str, typer.Option(help="lrlab spec, e.g. 'warmup(0.05) >> cosine()'")] = "constant()",
    task: Annotated[str, option(Task(), help="lm | vision | text:PATH | hf:NAME")] = "lm",
    preset: Annotated[str, option(Choice(PRESET_NAMES), help="model size")] = "tiny",
    optimizer: Annotated[str, option(Choice(OPTIMIZERS, "NAME"), help=" | ".join(OPTIMIZERS))] = "adamw",
    lr: Annotated[float, typer.Option(help="peak LR: the schedule's values multiply it")] = 1e-2,
    steps: Annotated[int, typer.Option(help="optimizer updates")] = 1000,
    seed: Annotated[int, typer.Option(help="initial weights and data order")] = 0,
    batch_size: Annotated[int | None, typer.Option(help="batch size  \\[default: the preset's]")] = None,
    eval_every: Annotated[int, typer.Option(help="updates between evaluations")] = 50,
    checkpoint_every: Annotated[int, typer.Option(help="updates between checkpoints (0: never)")] = 500,
    out: Annotated[Path | None, typer.Option(help="output folder  \\[default: a new folder in lrlab-runs]")] = None,
    resume: Annotated[bool, typer.Option(help="continue from the checkpoint in --out")] = False,
    device: Annotated[str, typer.Option(help="auto (CUDA, then MPS, then the CPU) | cpu | cuda | cuda:N | mps; under "
                                             "torchrun, cuda is each process's own GPU")] = "auto",
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="write PNG plots")] = True,
) -> None:
    """Train one run with the Monitor attached; writes results.json, the report and the Monitor's logs.

    Under torchrun (e.g. ``torchrun --nproc_per_node=2 -m lrlab.cli train ...``) the processes train the run
    together with DDP, each on a slice of every update's batch; rank 0 alone shows progress and writes the files."""
    from lrlab.bench.single import distributed, shared_path, train_one  # keeps `lrlab --help` light

    if resume and out is None:
        raise LrlabError("--resume needs --out: the folder of the run to continue")
    with distributed() as (rank, world):
        # one folder for every process: rank 0's timestamp
        out_dir = out if out is not None else shared_path(_default_out("train"), world)
        kwargs: dict[str, Any] = dict(
            schedule=schedule, task=task, preset=preset, optimizer=optimizer, lr=lr, steps=steps, seed=seed,
            batch_size=batch_size, eval_every=eval_every, checkpoint_every=checkpoint_every, out_dir=out_dir,
            resume=resume, device=device)
        if rank != 0:  # rank 0 shows progress and writes the artefacts
            if train_one(**kwargs)["trials"][0].get("result") is None:
                raise typer.Exit(130)
            return
        _train_and_report(kwargs, plots)


def _train_and_report(kwargs: dict[str, Any], plots: bool) -> None:
    from rich.console import Console

    # the harness loads when a command runs: keeps `lrlab --help` light
    from lrlab.bench.report import print_report, write_report
    from lrlab.bench.single import train_one

    out_dir = kwargs["out_dir"]
    console = Console()
    console.print(f"lrlab train → {out_dir}", highlight=False, soft_wrap=True)
    with ProgressView(console) as view:
        doc = train_one(**kwargs, on_event=view)
    if doc["trials"][0].get("result") is None:
        console.print(f"interrupted; `lrlab train ... --out {out_dir} --resume` continues", highlight=False,
                      soft_wrap=True)
        raise typer.Exit(130)
    a = write_report(doc, out_dir, plots=plots)
    print_report(a, console)
    for note in doc.get("monitor_files", []):
        console.print(f"monitor: {note}", highlight=False, soft_wrap=True)
