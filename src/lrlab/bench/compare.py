"""`lrlab compare`: train every schedule × optimizer × seed × peak LR and rank each schedule at its own best peak LR.

Two facts shape the default (see the README): comparing schedules at one shared peak LR is misleading — a decaying
schedule wants a larger peak than a constant one — so every schedule runs on a small grid of peak LRs and is
ranked at its best; and decay only pays off once the run is long enough, so the default budget is as long as the
4-minute, 2-core limit allows. `CompareConfig` holds every default in one place.

How a comparison runs
    1. `expand_trials` lists the trials: (schedule, optimizer, seed, peak LR). Within a seed every schedule
       starts from the same initial weights and sees the same data order (`TrainConfig.seed`).
    2. `plan_jobs` turns them into jobs. Trials with the same optimizer, seed and peak LR whose LR sequences
       agree bit for bit up to some update (``constant()`` and ``step(...)`` until the first drop,
       ``constant()`` and a cool-down) share that prefix: one *prefix job* trains it once and saves a
       checkpoint, and each trial resumes from a copy. The report lists every run that branched.
    3. Jobs run on a local process pool (``workers`` processes, each with ``cores // workers`` torch threads)
       or as Ray tasks. Every finished trial is written at once, atomically, to ``DIR/runs/<trial-id>.json``;
       training checkpoints go to ``DIR/ckpt/<job-id>/`` every ``checkpoint_every`` updates, so a crash or
       ``kill -9`` loses at most that much work: ``run_compare(..., resume=True)`` skips finished trials and
       resumes the others from their checkpoints, with results identical to an uninterrupted run (bitwise on
       CPU: the thread count is kept from the first session). A resumed session plans the same jobs as the first
       (`pending_jobs`), so it continues a half-trained prefix and branches from a finished one. ``compare.json`` and
       ``results.json`` record the Python version and the data's SHA-256; resuming under another refuses.
    4. Where a contender's best peak LR is the smallest or largest of its grid, the optimum may lie outside it:
       `extend_trials` adds the next grid LR beyond that edge (at every seed), up to ``lr_extend`` LRs per side,
       one round at a time, until the best is inside.
    5. With one seed, every contender is re-run at its best peak LR with ``confirm_seeds`` more seeds — the closest
       calls (``confirm_close``) at their runner-up LR too — and its best LR is then chosen on the mean over all
       seeds, not on seed 0 alone (which favours an LR that was lucky on it). Seeds are paired (same initial weights
       and data order for every schedule), so this also measures the noise in schedule-to-schedule differences that
       the report's significance marks use. If that moves a best LR to an edge, the grid is extended again (step 4):
       the new LR on seed 0 first, and on the other seeds only if it beats the best there.
    6. ``DIR/results.json`` gathers the config and every run's curves; `lrlab.bench.report` ranks and renders.

Ctrl-C (KeyboardInterrupt in the driver) stops the running jobs at their next update — each saves a checkpoint —
keeps every finished trial, writes ``results.json`` with ``status: "interrupted"`` and returns.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import queue as queue_mod
import re
import shutil
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lrlab.bench.train import OPTIMIZERS
from lrlab.errors import LrlabError
from lrlab.files import atomic_write_text

FORMAT = "lrlab.compare/1"
BACKENDS = ("local", "ray")
CONFIG_FILE = "compare.json"
#: a worker posts its progress at most this often (seconds); the bars refresh 4 times a second
PROGRESS_EVERY_S = 0.5
#: a worker looks at the driver's stop request (Ctrl-C) at most this often (seconds)
STOP_CHECK_EVERY_S = 0.1
RESULTS_FILE = "results.json"

#: centre of each optimizer's peak-LR grid when ``--lr`` does not name one. Measured on the `lm` task, tiny preset,
#: 600 updates (seed 0): AdamW's best constant LR was 4e-3 and warm-up + cosine's and WSD's 8e-3, so the default
#: grid 3e-3, 6e-3, 1.2e-2 brackets both. At the default 1,000 updates a grid one step lower (1.5e-3 .. 6e-3) put
#: every schedule's best at 6e-3, its top edge (BENCHMARKS.md), which this grid brackets. The others come from
#: `lrlab.range_test` on the same task (the geometric median of its three suggestions: sgd 0.089, adagrad 0.033,
#: rmsprop 0.0021, adam 0.015, schedulefree 0.011),
#: rounded; schedule-free's is `SCHEDULEFREE_LR_FACTOR` x AdamW's (its authors recommend 1-10x).
SCHEDULEFREE_LR_FACTOR = 2.0
DEFAULT_LR: dict[str, float] = {
    "sgd": 0.1,
    "adagrad": 3e-2,
    "rmsprop": 2e-3,
    "adam": 6e-3,
    "adamw": 6e-3,
    "schedulefree": 1.2e-2,
}


def default_schedules(steps: int) -> tuple[str, ...]:
    """The families practitioners compare, as spec strings for a run of ``steps`` updates.

    Lengths are fractions of the run, so the set scales with ``steps``; exponential decay reaches 1 % of the
    peak at the end and inverse-sqrt uses the warm-up length as its timescale (Hugging Face's choice), which
    need ``steps`` to write down. The first entry is the baseline that "steps to target" measures against.
    """
    gamma = 0.01 ** (1.0 / steps)
    warm = max(1, math.ceil(0.05 * steps))
    return (
        "constant()",
        "step(0.34, factor=0.1)",  # torch StepLR: x0.1 at a third and two thirds of the run
        f"exponential({gamma:.8g})",  # x0.01 over the run
        "cosine()",
        "cosine_restarts(0.143, mult=2)",  # SGDR: 3 cycles (1 + 2 + 4 = 7 x 0.143 >= 1) ending at the run's end
        "warmup(0.05) >> linear()",  # BERT
        "warmup(0.05) >> cosine()",
        "wsd(warmup=0.05, decay=0.2)",  # warmup-stable-decay, 1-sqrt cool-down over the last 20 %
        f"warmup(0.05) >> inverse_sqrt({warm})",
    )


@dataclass(frozen=True, kw_only=True)
class CompareConfig:
    """Everything that decides a comparison's numbers. The defaults are `lrlab compare` with no arguments.

    Args:
        task: built-in task (``lm``, ``vision``) or ``text:PATH`` / ``hf:NAME`` (see `lrlab.bench.tasks`).
        preset: model/data size, ``tiny`` | ``small`` | ``base``.
        steps: optimizer updates per run (>= 10).
        seeds: seeds per setting, 0 .. seeds-1 (>= 1); the table shows mean ± std over them.
        schedules: lrlab spec strings; None: `default_schedules` (steps). The first is the baseline.
        optimizers: any of `OPTIMIZERS`. ``schedulefree`` runs only ``schedulefree_schedule`` (it is the
            "no schedule" contender).
        lr: (optimizer, peak LR) pairs: the centre of that optimizer's grid; others use `DEFAULT_LR`
            (`parse_lr_option` reads ``--lr``).
        lr_find: take each optimizer's grid centre from an LR range test instead (``--lr find``).
        lr_grid: peak LRs per schedule (>= 1), log-spaced around the centre.
        lr_grid_factor: ratio between neighbouring grid LRs (> 1).
        lr_extend: when a contender's best peak LR is at an edge of its grid (and ``lr_grid >= 2``), try the next
            LR beyond that edge, ``lr_grid_factor`` further out, at every seed; repeat while the best stays at the
            edge, up to this many extra LRs (0: off; the report then flags bests at the edge).
        confirm_seeds: with ``seeds == 1``, re-run every contender at its best peak LRs with seeds
            1 .. confirm_seeds, to choose its best LR on more than one seed and to measure the noise of the
            comparison (0: off; significance is then unknown).
        confirm_top: how many of each contender's best peak LRs on seed 0 the confirmation seeds re-run (>= 1);
            the best LR is then the one with the lowest mean over all seeds. 1 keeps seed 0's choice.
        confirm_close: the share of contenders (in [0, 1]) whose LRs after the best are re-run too: those whose
            choice on seed 0 was the closest call (smallest gap from the best to the runner-up) first. 1: all.
        schedulefree_schedule: the schedule schedule-free runs with.
        batch_size: None: the preset's.
        eval_every, eval_batches: evaluation period (updates) and size (batches).
        checkpoint_every: updates between checkpoints (what a crash can lose); 0: never (no resume mid-run).
            500 by default: each atomic, fsynced checkpoint costs 11-25 ms on the tiny model (a 6-9 ms update),
            so one every 250 updates cost up to 1.5 % of the training time and every 500 ~0.2-0.4 %
            (BENCHMARKS.md); a finished trial writes none at its end, since it is deleted at once.
        branch: let trials that share an LR prefix branch from one checkpoint; branch_min: the shortest shared
            prefix worth branching for, as a fraction of ``steps``.
        target_loss: loss for "steps to target"; None: the baseline's final loss at its best peak LR.
        title: report title.
    """

    task: str = "lm"
    preset: str = "tiny"
    steps: int = 1000
    seeds: int = 1
    schedules: tuple[str, ...] | None = None
    optimizers: tuple[str, ...] = ("adamw",)
    lr: tuple[tuple[str, float], ...] = ()
    lr_find: bool = False
    lr_grid: int = 3
    lr_grid_factor: float = 2.0
    lr_extend: int = 2
    confirm_seeds: int = 1
    confirm_top: int = 2
    confirm_close: float = 0.5
    schedulefree_schedule: str = "warmup(0.05) >> constant()"
    batch_size: int | None = None
    eval_every: int = 50
    eval_batches: int = 8
    checkpoint_every: int = 500
    branch: bool = True
    branch_min: float = 0.1
    target_loss: float | None = None
    title: str = "lrlab compare"

    def __post_init__(self) -> None:
        _check_int("steps", self.steps, 10)
        _check_int("seeds", self.seeds, 1)
        _check_int("lr_grid", self.lr_grid, 1)
        _check_int("lr_extend", self.lr_extend, 0)
        _check_int("confirm_seeds", self.confirm_seeds, 0)
        _check_int("confirm_top", self.confirm_top, 1)
        if not (isinstance(self.confirm_close, (int, float)) and 0 <= self.confirm_close <= 1):
            raise LrlabError(f"confirm_close must be a number in [0, 1] (a share of the contenders), got "
                             f"{self.confirm_close!r}")
        _check_int("eval_every", self.eval_every, 1)
        _check_int("eval_batches", self.eval_batches, 1)
        _check_int("checkpoint_every", self.checkpoint_every, 0)
        if self.batch_size is not None:
            _check_int("batch_size", self.batch_size, 1)
        if not (isinstance(self.lr_grid_factor, (int, float)) and self.lr_grid_factor > 1
                and math.isfinite(self.lr_grid_factor)):
            raise LrlabError(f"lr_grid_factor must be a number > 1, got {self.lr_grid_factor!r}")
        if not 0 <= self.branch_min <= 1:
            raise LrlabError(f"branch_min must be in [0, 1] (a fraction of steps), got {self.branch_min!r}")
        if not self.optimizers:
            raise LrlabError(f"optimizers must name at least one of {', '.join(OPTIMIZERS)}")
        for name in self.optimizers:
            if name not in OPTIMIZERS:
                raise LrlabError(f"optimizer {name!r} is not supported; choose from {', '.join(OPTIMIZERS)}")
        if len(set(self.optimizers)) != len(self.optimizers):
            raise LrlabError(f"optimizers lists one twice: {', '.join(self.optimizers)}")
        for name, value in self.lr:
            if name not in self.optimizers:
                raise LrlabError(f"lr names optimizer {name!r}, which is not compared; optimizers: "
                                 f"{', '.join(self.optimizers)}")
            if not (isinstance(value, (int, float)) and value > 0 and math.isfinite(value)):
                raise LrlabError(f"lr for {name} must be a positive number, got {value!r}")
        if self.schedules is not None:
            if not self.schedules:
                raise LrlabError("schedules must hold at least one spec, e.g. 'constant(); cosine()'")
            if len(set(self.schedules)) != len(self.schedules):
                raise LrlabError(f"schedules lists one twice: {'; '.join(self.schedules)}")
        if self.target_loss is not None and not (isinstance(self.target_loss, (int, float))
                                                 and math.isfinite(self.target_loss)):
            raise LrlabError(f"target_loss must be a finite number, got {self.target_loss!r}")

    def resolved(self) -> CompareConfig:
        """This config with ``schedules`` filled in and every spec checked against ``steps``."""
        schedules = self.schedules if self.schedules is not None else default_schedules(self.steps)
        out = dataclasses.replace(self, schedules=tuple(schedules))
        for spec in out.contender_schedules():
            check_spec(spec, self.steps)
        return out

    def contender_schedules(self) -> list[str]:
        specs = list(self.schedules or ())
        if "schedulefree" in self.optimizers:
            specs.append(self.schedulefree_schedule)
        return specs

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["schedules"] = list(self.schedules) if self.schedules is not None else None
        d["optimizers"] = list(self.optimizers)
        d["lr"] = [[k, v] for k, v in self.lr]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CompareConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise LrlabError(f"compare config has unknown fields {sorted(unknown)}; known: {sorted(known)}")
        kw = dict(d)
        if kw.get("schedules") is not None:
            kw["schedules"] = tuple(kw["schedules"])
        if "optimizers" in kw:
            kw["optimizers"] = tuple(kw["optimizers"])
        if "lr" in kw:
            kw["lr"] = tuple((str(k), float(v)) for k, v in kw["lr"])
        return cls(**kw)


def _check_int(name: str, value: object, lo: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise LrlabError(f"{name} must be an integer >= {lo}, got {value!r}")


def check_spec(spec: str, steps: int) -> None:
    """Parse ``spec`` bound to ``steps`` updates; a bad spec raises `LrlabError` naming it."""
    import lrlab

    try:
        lrlab.parse(spec, total=steps)
    except LrlabError as e:
        raise LrlabError(f"schedule {spec!r}: {e}") from None


def parse_lr_option(text: str) -> tuple[tuple[tuple[str, float], ...], bool]:
    """``--lr`` text -> (per-optimizer LRs, find?). Accepts ``find``, ``adamw=1e-2,sgd=0.3`` (each named optimizer
    at its value) or one number: that LR for every optimizer except ``schedulefree``, which gets
    `SCHEDULEFREE_LR_FACTOR` times it (schedule-free's good LRs are 1-10x AdamW's); name it to set it directly."""
    text = text.strip()
    if text == "find":
        return (), True
    pairs: list[tuple[str, float]] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, _, value = part.rpartition("=")
        try:
            lr = float(value)
        except ValueError:
            raise LrlabError(f"--lr must be a number, NAME=NUMBER pairs or 'find', got {text!r}") from None
        if name:
            pairs.append((name.strip(), lr))
        else:
            pairs += [(n, lr * SCHEDULEFREE_LR_FACTOR if n == "schedulefree" else lr) for n in OPTIMIZERS]
    if not pairs:
        raise LrlabError(f"--lr must be a number, NAME=NUMBER pairs or 'find', got {text!r}")
    return tuple(pairs), False


# ------------------------------------------------------------------------------------------------- trials


@dataclass(frozen=True, kw_only=True)
class Trial:
    """One training run of the comparison."""

    id: str
    schedule: str
    optimizer: str
    seed: int
    lr: float
    lr_index: int  # position in the optimizer's grid (0 = its smallest LR; < 0 or >= lr_grid: an extension)
    phase: str  # "grid", "extend" or "confirm"

    def train_kwargs(self, config: CompareConfig) -> dict[str, Any]:
        """Keyword arguments of `lrlab.bench.train.TrainConfig` for this trial."""
        return {
            "task": config.task, "preset": config.preset, "schedule": self.schedule, "optimizer": self.optimizer,
            "lr": self.lr, "steps": config.steps, "seed": self.seed, "batch_size": config.batch_size,
            "eval_every": config.eval_every, "eval_batches": config.eval_batches,
            "checkpoint_every": config.checkpoint_every,
        }


def _slug(spec: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", spec.lower()).strip("_")[:32] or "schedule"


def grid_lr(center: float, k: int, factor: float, j: int) -> float:
    """The ``j``-th LR of the ``k``-point grid around ``center`` (`lr_grid`); ``j`` outside 0 .. k-1 continues
    the grid beyond its edges, as `extend_trials` does."""
    return center * factor ** (j - (k - 1) / 2)


def lr_grid(center: float, k: int, factor: float) -> list[float]:
    """``k`` peak LRs log-spaced around ``center``, neighbours ``factor`` apart (centre included when k is odd)."""
    return [grid_lr(center, k, factor, j) for j in range(k)]


def trial_id(config: CompareConfig, schedule: str, optimizer: str, lr_index: int, seed: int) -> str:
    index = config.contender_schedules().index(schedule)
    return f"{index:02d}-{_slug(schedule)}-{optimizer}-lr{lr_index}-s{seed}"


def expand_trials(config: CompareConfig, centers: Mapping[str, float]) -> list[Trial]:
    """The grid trials of a resolved config: every contender × peak LR × seed, baseline first."""
    assert config.schedules is not None, "call config.resolved() first"
    trials = []
    for optimizer in config.optimizers:
        specs = [config.schedulefree_schedule] if optimizer == "schedulefree" else list(config.schedules)
        grid = lr_grid(centers[optimizer], config.lr_grid, config.lr_grid_factor)
        for seed in range(config.seeds):
            for schedule in specs:
                for j, lr in enumerate(grid):
                    trials.append(Trial(id=trial_id(config, schedule, optimizer, j, seed), schedule=schedule,
                                        optimizer=optimizer, seed=seed, lr=lr, lr_index=j, phase="grid"))
    return trials


def _grid_indices(doc: Mapping[str, Any]) -> dict[tuple[str, str], dict[float, int]]:
    """(schedule, optimizer) -> peak LR -> its grid index, over the trials of a results document."""
    out: dict[tuple[str, str], dict[float, int]] = {}
    for t in doc["trials"]:
        out.setdefault((t["schedule"], t["optimizer"]), {})[float(t["lr"])] = int(t["lr_index"])
    return out


def _in_order(config: CompareConfig, trials: list[Trial]) -> list[Trial]:
    """``trials`` in `expand_trials`' order: optimizer, seed, schedule, LR."""
    specs = config.contender_schedules()
    return sorted(trials, key=lambda t: (config.optimizers.index(t.optimizer), t.seed, specs.index(t.schedule),
                                         t.lr_index))


def extend_trials(config: CompareConfig, doc: Mapping[str, Any], centers: Mapping[str, float]) -> list[Trial]:
    """One round of grid extension: for every contender whose best peak LR is at an edge of the LRs it has tried
    (the smallest or the largest), the next grid LR beyond that edge, at the grid's seeds — unless it has
    ``lr_extend`` extra LRs on that side already. Empty when no contender needs one (or ``lr_grid < 2``: one LR has
    no edge to judge by). A contender that diverged at every LR extends downwards.

    After the confirmation seeds, a contender's best LR has more seeds than the grid's: a new LR is then screened
    on the grid's seeds first, like the grid itself, and run on the best's other seeds (in the next round) only if
    it beats the best there. One that does not is the evidence that the best is inside; having fewer seeds, it is
    never chosen as best (`lrlab.bench.report.analyze`)."""
    from lrlab.bench.report import analyze

    if config.lr_grid < 2 or not config.lr_extend:
        return []
    indices = _grid_indices(doc)
    grid_seeds = set(range(config.seeds))
    by_id = {str(t["id"]): t for t in doc["trials"]}
    out = []
    for c in analyze(doc).contenders:
        best_runs = [by_id[i] for i in c.trial_ids]
        best_seeds = {int(t["seed"]) for t in best_runs}
        if best_seeds > grid_seeds:  # confirmed: complete the extension LRs that passed the screen
            by_lr: dict[float, list[Mapping[str, Any]]] = {}
            for t in doc["trials"]:
                if (t["schedule"], t["optimizer"], t["phase"]) == (c.schedule, c.optimizer, "extend") and t["result"]:
                    by_lr.setdefault(float(t["lr"]), []).append(t)
            best_on_grid = _mean_final([t for t in best_runs if int(t["seed"]) in grid_seeds])
            passed = [(lr, runs) for lr, runs in sorted(by_lr.items())
                      if {int(t["seed"]) for t in runs} == grid_seeds and _mean_final(runs) < best_on_grid]
            for lr, runs in passed:
                j = int(runs[0]["lr_index"])
                for seed in sorted(best_seeds - grid_seeds):
                    out.append(Trial(id=trial_id(config, c.schedule, c.optimizer, j, seed), schedule=c.schedule,
                                     optimizer=c.optimizer, seed=seed, lr=lr, lr_index=j, phase="extend"))
            if passed:
                continue
        if not c.at_grid_edge:
            continue
        tried = sorted(indices[(c.schedule, c.optimizer)].values())
        if c.lr_index == 0:  # best at the smallest LR: go one step lower
            j = tried[0] - 1
            if -j > config.lr_extend:
                continue
        else:
            j = tried[-1] + 1
            if j - (config.lr_grid - 1) > config.lr_extend:
                continue
        lr = grid_lr(centers[c.optimizer], config.lr_grid, config.lr_grid_factor, j)
        for seed in sorted(grid_seeds):
            out.append(Trial(id=trial_id(config, c.schedule, c.optimizer, j, seed), schedule=c.schedule,
                             optimizer=c.optimizer, seed=seed, lr=lr, lr_index=j, phase="extend"))
    return _in_order(config, out)


def _mean_final(runs: Sequence[Mapping[str, Any]]) -> float:
    """Mean final validation loss of finished runs (inf if any diverged; inf for none)."""
    from lrlab.bench.report import final_loss

    vals = [final_loss(t["result"]) for t in runs]
    return math.fsum(vals) / len(vals) if vals else math.inf


def confirm_trials(config: CompareConfig, doc: Mapping[str, Any]) -> list[Trial]:
    """With one seed: every contender that did not diverge at its best peak LR on seed 0, and for the
    ``confirm_close`` share of them whose choice was the closest call (smallest seed-0 gap from the best to the
    runner-up) at their next ``confirm_top - 1`` best too (those that did not diverge), seeds 1 .. confirm_seeds;
    its best LR is then chosen on the mean over all seeds.

    Re-running the runner-up guards against the winner's curse of choosing on one seed (the default run's warm-up
    + linear: 1.2e-2 won seed 0 by 0.010, 1.897 against 6e-3's 1.907, then gave 2.058 on seed 1 against 1.928).
    Only the closest calls get it by default: a third more runs for every contender does not fit the default
    comparison in its 4 minutes, and a runner-up far behind on seed 0 rarely wins on the mean."""
    from lrlab.bench.report import analyze

    if config.seeds != 1 or not config.confirm_seeds:
        return []
    indices = _grid_indices(doc)
    out = []
    ranked = {}
    for c in [c for c in analyze(doc).contenders if math.isfinite(c.final_mean)]:
        ranked[c] = sorted((p for p in c.grid if math.isfinite(p.final_mean)), key=lambda p: (p.final_mean, p.lr))
    gaps = sorted((points[1].final_mean - points[0].final_mean, c.label) for c, points in ranked.items()
                  if len(points) > 1)
    close = {label for _, label in gaps[: math.ceil(config.confirm_close * len(gaps) - 1e-9)]}
    for c, points in ranked.items():
        for p in points[: config.confirm_top if c.label in close else 1]:
            j = indices[(c.schedule, c.optimizer)][p.lr]
            for seed in range(1, config.confirm_seeds + 1):
                out.append(Trial(id=trial_id(config, c.schedule, c.optimizer, j, seed), schedule=c.schedule,
                                 optimizer=c.optimizer, seed=seed, lr=p.lr, lr_index=j, phase="confirm"))
    return _in_order(config, out)


# --------------------------------------------------------------------------------------- branching plan


@dataclass(frozen=True, kw_only=True)
class Job:
    """A unit of work for a worker: train ``train`` from update ``start`` (the checkpoint of job ``parent``, or
    scratch) to update ``stop``. A trial job finishes its trial; a prefix job (``trial`` None) trains an LR
    prefix its children share and leaves its checkpoint for them."""

    id: str
    trial: Trial | None
    train: dict[str, Any]
    start: int
    stop: int
    parent: str | None


def _lr_factors(spec: str, steps: int) -> Any:
    import numpy as np

    import lrlab

    return lrlab.parse(spec, total=steps).values(np.arange(steps, dtype=np.float64))


def _common_prefix(a: Any, b: Any) -> int:
    import numpy as np

    diff = np.flatnonzero(a != b)
    return int(diff[0]) if diff.size else int(a.size)


def plan_jobs(trials: Sequence[Trial], config: CompareConfig) -> list[Job]:
    """Jobs for ``trials``, parents before children. Trials with the same optimizer, seed and peak LR form a
    tree by their shared LR prefixes (equal bit for bit); a shared segment of at least ``branch_min * steps``
    updates becomes one prefix job."""
    if not config.branch:
        return [Job(id=t.id, trial=t, train=t.train_kwargs(config), start=0, stop=config.steps, parent=None)
                for t in trials]
    groups: dict[tuple[str, int, float], list[Trial]] = {}
    for t in trials:
        groups.setdefault((t.optimizer, t.seed, t.lr), []).append(t)
    factors = {spec: _lr_factors(spec, config.steps) for spec in {t.schedule for t in trials}}
    min_len = max(1, math.ceil(config.branch_min * config.steps))
    jobs: list[Job] = []

    def build(members: list[Trial], start: int, parent: str | None) -> None:
        if len(members) == 1:
            t = members[0]
            jobs.append(Job(id=t.id, trial=t, train=t.train_kwargs(config), start=start, stop=config.steps,
                            parent=parent))
            return
        pref = {(a.id, b.id): _common_prefix(factors[a.schedule], factors[b.schedule])
                for i, a in enumerate(members) for b in members[i + 1:]}
        split = min(pref.values())
        if split - start >= min_len:
            key = "|".join([*sorted(m.id for m in members), str(split)])
            pid = f"prefix-{hashlib.sha1(key.encode()).hexdigest()[:12]}"
            jobs.append(Job(id=pid, trial=None, train=members[0].train_kwargs(config), start=start, stop=split,
                            parent=parent))
            start, parent = split, pid
        # members still together after `split`: connected components of "prefix longer than split"
        comps: list[list[Trial]] = []
        for m in members:
            joined = [c for c in comps if any(pref.get((m.id, o.id), pref.get((o.id, m.id), 0)) > split for o in c)]
            merged = [m] + [x for c in joined for x in c]
            comps = [c for c in comps if c not in joined] + [merged]
        for comp in sorted(comps, key=lambda c: min(members.index(x) for x in c)):
            build(sorted(comp, key=members.index), start, parent)

    for members in groups.values():
        build(members, 0, None)
    return jobs


# ------------------------------------------------------------------------------------------------ workers

#: per-process worker state, set by `_init_worker` in each pool process (stop event, progress queue)
_WORKER: dict[str, Any] = {}


def _init_worker(stop: Any, progress: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver handles Ctrl-C and tells workers via `stop`
    _WORKER.update(stop=stop, progress=progress)


def _has_checkpoint(folder: Path) -> bool:
    from lrlab.bench.train import CHECKPOINT

    return (folder / CHECKPOINT).is_file()


def worker_hooks(progress: Any, stop_event: Any, job_id: str, done: int,
                 stop_at: int) -> tuple[Callable[..., None], Callable[[], bool]]:
    """`train`'s ``on_step`` and ``should_stop`` for a job that has ``done`` updates and ends at ``stop_at``:
    progress goes to the ``progress`` queue (None: nowhere), and the run stops at ``stop_at`` or when the driver
    sets ``stop_event`` (None: never). `run_job` uses them; ``benchmarks/harness_overhead.py`` times them."""
    clock = {"step": done, "last_post": 0.0, "last_check": 0.0}

    # both run every update, so each does its costly part on a timer (benchmarks/harness_overhead.py): a put on
    # the progress queue wakes its feeder thread, and a multiprocessing Event's is_set() takes ~10 us of locks
    def on_step(step: int, **_: Any) -> None:
        clock["step"] = step + 1  # `step` is the 0-based update just done
        now = time.monotonic()
        if progress is not None and (now - clock["last_post"] > PROGRESS_EVERY_S or step + 1 >= stop_at):
            clock["last_post"] = now
            with contextlib.suppress(queue_mod.Full):  # the driver drains it; a lost tick only delays a bar
                progress.put_nowait((job_id, step + 1, stop_at))

    def should_stop() -> bool:  # train() asks before every update
        if clock["step"] >= stop_at:  # a prefix job ends where its children branch off
            return True
        if stop_event is None:
            return False
        now = time.monotonic()
        if now - clock["last_check"] < STOP_CHECK_EVERY_S:
            return False
        clock["last_check"] = now
        return bool(stop_event.is_set())

    return on_step, should_stop


def run_job(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Run one job in this process (pool worker or Ray task). Returns ``{"id", "status", "result"}``: status is
    ``done`` (result: RunResult dict for a trial job, None for a prefix job) or ``stopped`` (asked to stop; the
    checkpoint in its folder holds the progress)."""
    import torch

    from lrlab.bench.train import CHECKPOINT, TrainConfig, train

    torch.set_num_threads(int(payload["threads"]))
    job_id = str(payload["id"])
    ckpt = Path(payload["ckpt_dir"])
    if payload.get("parent_dir") and not _has_checkpoint(ckpt):
        # branch: start from the parent's checkpoint at the end of the shared prefix (train() accepts it when the
        # schedules' LRs agree on every update it has done)
        ckpt.mkdir(parents=True, exist_ok=True)
        tmp = ckpt / (CHECKPOINT + ".branch")
        shutil.copyfile(Path(payload["parent_dir"]) / CHECKPOINT, tmp)
        os.replace(tmp, ckpt / CHECKPOINT)
    stop_at = int(payload["stop"])
    total = int(payload["train"]["steps"])
    progress = _WORKER.get("progress")
    stop_event = _WORKER.get("stop")
    # updates done so far: a job resumed after a crash starts where its own checkpoint stands
    done = _checkpoint_step(ckpt) if _has_checkpoint(ckpt) else int(payload["start"])
    on_step, should_stop = worker_hooks(progress, stop_event, job_id, done, stop_at)
    if progress is not None:
        progress.put_nowait((job_id, done, stop_at))
    # a finished trial's checkpoint is deleted at once: not writing it saves an fsynced write per run (a prefix job
    # is stopped by should_stop at its end, and a stopped run always writes the checkpoint its children need)
    result = train(TrainConfig(**payload["train"]), out_dir=ckpt, resume=True, on_step=on_step,
                   should_stop=should_stop, save_final=False)
    if stop_at < total:  # a prefix job: done when its checkpoint stands at the end of the prefix
        if result.steps_done < stop_at and not result.diverged:
            return {"id": job_id, "status": "stopped", "result": None}
        _atomic_json(ckpt / "DONE.json", {"step": result.steps_done})
        return {"id": job_id, "status": "done", "result": None}
    if result.stopped:
        return {"id": job_id, "status": "stopped", "result": None}
    return {"id": job_id, "status": "done", "result": result.to_dict()}


def run_ray_job(payload: Mapping[str, Any], progress: Any) -> dict[str, Any]:
    """`run_job` as a Ray task: ``progress`` (a ``ray.util.queue.Queue``) carries its step reports to the driver."""
    _WORKER["progress"] = progress
    return run_job(payload)


def _checkpoint_step(folder: Path) -> int:
    import torch

    from lrlab.bench.train import CHECKPOINT

    path = folder / CHECKPOINT
    if not path.is_file():
        return 0
    return int(torch.load(path, map_location="cpu", weights_only=True)["step"])


def _atomic_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, allow_nan=True))


# ----------------------------------------------------------------------------------------------- backends


class _LocalBackend:
    """A pool of spawned processes; progress and the stop flag go through multiprocessing primitives."""

    def __init__(self, workers: int) -> None:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        ctx = mp.get_context("spawn")  # a fresh interpreter per worker: no forked torch thread pools
        self.stop = ctx.Event()
        self.progress = ctx.Queue()
        self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                                        initargs=(self.stop, self.progress))

    def submit(self, payload: dict[str, Any]) -> Any:
        return self.pool.submit(run_job, payload)

    def wait(self, handles: Sequence[Any], timeout: float) -> list[Any]:
        from concurrent.futures import FIRST_COMPLETED, wait

        done, _ = wait(list(handles), timeout=timeout, return_when=FIRST_COMPLETED)
        return list(done)

    def result(self, handle: Any) -> dict[str, Any]:
        out: dict[str, Any] = handle.result()
        return out

    def drain(self) -> list[tuple[str, int, int]]:
        items = []
        while True:
            try:
                items.append(self.progress.get_nowait())
            except queue_mod.Empty:
                return items

    def request_stop(self, handles: Sequence[Any]) -> None:
        self.stop.set()
        for h in handles:
            h.cancel()  # those not started yet

    def close(self) -> None:
        self.stop.set()  # anything still running (an interrupt outside the job loop) checkpoints and returns
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.progress.close()


class _RayBackend:
    """Each job is a Ray task needing ``threads`` CPUs. Checkpoints go to the same ``DIR`` path on the worker's
    node: resuming mid-run needs a filesystem shared with the driver (finished trials are gathered by the
    driver either way). Progress goes through a ``ray.util.queue.Queue`` (an actor holding no CPU)."""

    def __init__(self, address: str | None, threads: int) -> None:
        try:
            import ray
        except ModuleNotFoundError:
            raise LrlabError("backend 'ray' needs Ray: pip install 'lrlab[ray]'") from None
        self.ray = ray
        if not ray.is_initialized():
            ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
        from ray.util.queue import Queue

        self.remote = ray.remote(num_cpus=threads, max_retries=0)(run_ray_job)
        self.progress = Queue(actor_options={"num_cpus": 0})

    def submit(self, payload: dict[str, Any]) -> Any:
        return self.remote.remote(payload, self.progress)

    def wait(self, handles: Sequence[Any], timeout: float) -> list[Any]:
        done, _ = self.ray.wait(list(handles), num_returns=1, timeout=timeout)
        return list(done)

    def result(self, handle: Any) -> dict[str, Any]:
        out: dict[str, Any] = self.ray.get(handle)
        return out

    def drain(self) -> list[tuple[str, int, int]]:
        n = self.progress.qsize()
        return [tuple(x) for x in self.progress.get_nowait_batch(n)] if n else []

    def request_stop(self, handles: Sequence[Any]) -> None:
        for h in handles:
            self.ray.cancel(h)

    def close(self) -> None:
        self.progress.shutdown()


# ------------------------------------------------------------------------------------------------- events


@dataclass(frozen=True, kw_only=True)
class Event:
    """Progress report for a display. kind: ``phase`` (a new batch of jobs: ``total`` updates in ``jobs``
    jobs), ``start``/``step`` (job ``job`` at update ``step`` of ``total``), ``finish`` (``loss``: final val
    loss of a trial; None for a prefix), ``skip`` (already finished), ``stopping`` (Ctrl-C)."""

    kind: str
    job: str = ""
    label: str = ""
    step: int = 0
    start: int = 0
    total: int = 0
    jobs: int = 0
    loss: float | None = None


EventSink = Callable[[Event], None]


# ------------------------------------------------------------------------------------------------- driver


def default_workers() -> int:
    return max(1, min(2, _cores()))


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class CompareRun:
    """The state of one comparison folder: config, finished trials, and the results document."""

    def __init__(self, out_dir: Path, config: CompareConfig, meta: dict[str, Any]) -> None:
        self.out = out_dir
        self.config = config
        self.meta = meta  # compare.json: config, lr centres, lr-find data, threads, sessions

    @property
    def runs_dir(self) -> Path:
        return self.out / "runs"

    def ckpt_dir(self, job_id: str) -> Path:
        return self.out / "ckpt" / job_id

    def finished(self) -> dict[str, dict[str, Any]]:
        out = {}
        if self.runs_dir.is_dir():
            for p in sorted(self.runs_dir.glob("*.json")):
                rec = json.loads(p.read_text())
                out[rec["id"]] = rec
        return out

    def save_meta(self) -> None:
        _atomic_json(self.out / CONFIG_FILE, self.meta)

    def document(self, trials: Sequence[Trial], status: str) -> dict[str, Any]:
        done = self.finished()
        records = []
        for t in trials:
            rec = done.get(t.id)
            records.append(rec if rec is not None else {**_trial_record(t), "result": None})
        return {
            "format": FORMAT, "title": self.config.title, "status": status, "created": self.meta["created"],
            "config": self.config.to_dict(), "lr_centers": self.meta["lr_centers"],
            "lr_find": self.meta.get("lr_find"), "execution": self.meta["execution"],
            "python": self.meta.get("python"), "corpus_sha256": self.meta.get("corpus_sha256"),
            "sessions": self.meta["sessions"], "n_planned": len(trials),
            "wall_time_s": sum(float(s.get("wall_time_s", 0.0)) for s in self.meta["sessions"]),
            "trials": records,
        }


def _trial_record(t: Trial, branched_from: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"id": t.id, "schedule": t.schedule, "optimizer": t.optimizer, "seed": t.seed, "lr": t.lr,
            "lr_index": t.lr_index, "phase": t.phase, "branched_from": dict(branched_from) if branched_from else None}


def open_run(out_dir: str | Path, config: CompareConfig | None, *, resume: bool, workers: int | None = None,
             backend: str = "local") -> CompareRun:
    """Create ``out_dir`` for a new comparison (``resume=False``; it must not hold one), or reopen one
    (``resume=True``; its saved config is used and ``config`` must be None or equal to it)."""
    out = Path(out_dir)
    meta_path = out / CONFIG_FILE
    if resume:
        if not meta_path.is_file():
            raise LrlabError(f"--resume {str(out)!r}: no {CONFIG_FILE} there; give the --out folder of an earlier "
                             "`lrlab compare`")
        meta = json.loads(meta_path.read_text())
        saved = CompareConfig.from_dict(meta["config"])
        if config is not None and config.resolved() != saved:
            raise LrlabError(f"--resume {str(out)!r}: the folder holds a comparison with other settings; resume "
                             "it without changing --task/--steps/--schedules/... (or use a new --out)")
        _check_same_data(out, meta, saved.task)
        if workers is not None:
            meta["execution"]["workers"] = workers
        meta["execution"]["backend"] = backend
        return CompareRun(out, saved, meta)
    if meta_path.exists():
        raise LrlabError(f"--out {str(out)!r} already holds a comparison; use --resume {out} to finish it, or "
                         "another --out")
    cfg = (config or CompareConfig()).resolved()
    n_workers = workers if workers is not None else default_workers()
    if n_workers < 1:
        raise LrlabError(f"workers must be an integer >= 1, got {n_workers}")
    meta = {"format": FORMAT, "created": _now(), "config": cfg.to_dict(), **_fingerprint(cfg.task),
            "lr_centers": None, "lr_find": None,
            "execution": {"backend": backend, "workers": n_workers, "cores": _cores(),
                          "threads": max(1, _cores() // n_workers)},
            "sessions": []}
    out.mkdir(parents=True, exist_ok=True)
    run = CompareRun(out, cfg, meta)
    run.save_meta()
    return run


def _fingerprint(task: str) -> dict[str, Any]:
    """``python`` and ``corpus_sha256`` of ``task`` here and now (`lrlab.bench.tasks.data_fingerprint`)."""
    from lrlab.bench.tasks import data_fingerprint, data_info

    return data_fingerprint(data_info(task))


def _check_same_data(out: Path, meta: Mapping[str, Any], task: str) -> None:
    """Refuse to resume a comparison under another Python or on other data: its runs would not be comparable (the
    ``lm`` corpus is the interpreter's own standard library)."""
    now = _fingerprint(task)
    differ = [k for k in ("python", "corpus_sha256") if meta.get(k) is not None and meta[k] != now[k]]
    if differ:
        changes = "; ".join(f"{k} {meta[k]} then, {now[k]} now" for k in differ)
        raise LrlabError(f"--resume {str(out)!r}: the comparison was started on other data or another Python "
                         f"({changes}); its runs would not be comparable. Resume it with the original interpreter "
                         "and data, or start a new --out")


def lr_centers(config: CompareConfig) -> dict[str, float]:
    """Centre of each optimizer's peak-LR grid: ``config.lr`` where given, else `DEFAULT_LR`."""
    given = dict(config.lr)
    return {opt: float(given.get(opt, DEFAULT_LR[opt])) for opt in config.optimizers}


def run_compare(config: CompareConfig | None, out_dir: str | Path, *, resume: bool = False,
                workers: int | None = None, backend: str = "local", address: str | None = None,
                on_event: EventSink | None = None) -> dict[str, Any]:
    """Run (or finish, with ``resume=True``) a comparison in ``out_dir``; returns the results document also
    written to ``out_dir/results.json``. Its ``status`` is ``complete``, or ``interrupted`` after Ctrl-C."""
    if backend not in BACKENDS:
        raise LrlabError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise LrlabError(f"workers must be an integer >= 1, got {workers!r}")
    run = open_run(out_dir, config, resume=resume, workers=workers, backend=backend)
    emit = on_event or (lambda e: None)
    session = {"started": _now(), "resumed": resume, "wall_time_s": 0.0}
    run.meta["sessions"].append(session)
    t0 = time.monotonic()
    cfg = run.config
    trials: list[Trial] = []
    status = "running"
    try:
        if run.meta["lr_centers"] is None:
            if cfg.lr_find:
                finds = {opt: lr_range_test(cfg, opt, threads=_cores()) for opt in cfg.optimizers}
                run.meta["lr_find"] = finds
                run.meta["lr_centers"] = {opt: f["suggestion"] for opt, f in finds.items()}
            else:
                run.meta["lr_centers"] = lr_centers(cfg)
            run.save_meta()
        trials = expand_trials(cfg, run.meta["lr_centers"])
        ex = run.meta["execution"]
        engine = (_LocalBackend(ex["workers"]) if backend == "local" else _RayBackend(address, ex["threads"]))
        try:
            # later phases are planned from the results so far, so a resumed comparison plans the same ones;
            # extension runs again after the confirmation seeds, which can move a best LR to an edge
            status = _execute(run, trials, engine, emit)
            for phase, rounds in (("extend", cfg.lr_extend), ("confirm", 1), ("extend", 2 * cfg.lr_extend)):
                for _ in range(rounds):
                    if status != "complete":
                        break
                    so_far = run.document(trials, "running")
                    extra = (extend_trials(cfg, so_far, run.meta["lr_centers"]) if phase == "extend"
                             else confirm_trials(cfg, so_far))
                    if not extra:
                        break
                    trials = trials + extra
                    status = _execute(run, extra, engine, emit)
        finally:
            engine.close()
    except KeyboardInterrupt:
        status = "interrupted"
    finally:
        session["wall_time_s"] = time.monotonic() - t0
        run.save_meta()
        doc = run.document(trials, status if status != "running" else "failed")
        _atomic_json(run.out / RESULTS_FILE, doc)
    if status == "complete":
        shutil.rmtree(run.out / "ckpt", ignore_errors=True)
    return doc


def pending_jobs(jobs: Sequence[Job], finished: set[str], started: Callable[[str], bool],
                 prefix_done: Callable[[str], bool]) -> list[Job]:
    """The jobs of a plan (`plan_jobs` over *all* of a phase's trials) that are left to run, in plan order: every
    unfinished trial, and every prefix job that an unfinished job still needs — one with no checkpoint of its own
    yet (``started`` is False) — unless the prefix is complete already (``prefix_done``). Planning over every trial,
    finished or not, keeps the prefix ids of a resumed comparison those of the first session, so a prefix trained
    halfway before a crash is continued, not orphaned, and a finished one is branched from, not retrained."""
    children: dict[str | None, list[Job]] = {}
    for j in jobs:
        children.setdefault(j.parent, []).append(j)
    memo: dict[str, bool] = {}

    def needed(j: Job) -> bool:
        if j.id not in memo:
            if j.trial is not None:
                memo[j.id] = j.id not in finished
            else:
                memo[j.id] = not prefix_done(j.id) and any(needed(c) and not started(c.id)
                                                           for c in children.get(j.id, []))
        return memo[j.id]

    return [j for j in jobs if needed(j)]


def _execute(run: CompareRun, trials: Sequence[Trial], engine: Any, emit: EventSink) -> str:
    """Run the jobs of ``trials`` that are not finished. Returns ``complete`` or ``interrupted``."""
    done = run.finished()
    for t in trials:
        if t.id in done:
            emit(Event(kind="skip", job=t.id, label=_label(t), loss=done[t.id]["result"].get("final_val_loss")))
    plan = plan_jobs(trials, run.config)  # all of them: the same plan, and prefix ids, as the first session's
    by_id = {j.id: j for j in plan}
    jobs = pending_jobs(plan, set(done), lambda i: _has_checkpoint(run.ckpt_dir(i)),
                        lambda i: (run.ckpt_dir(i) / "DONE.json").is_file())
    pending = {j.id for j in jobs}
    children: dict[str | None, list[Job]] = {}
    for j in jobs:
        children.setdefault(j.parent, []).append(j)
    emit(Event(kind="phase", total=sum(j.stop - j.start for j in jobs), jobs=len(jobs)))
    # a job can start when its parent's checkpoint is complete (the parent is not pending) or it has its own
    ready = [j for j in jobs if j.parent not in pending or _has_checkpoint(run.ckpt_dir(j.id))]
    submitted: set[str] = set()
    threads = run.meta["execution"]["threads"]
    running: dict[Any, Job] = {}
    remaining_children = {pid: {c.id for c in cs} for pid, cs in children.items() if pid is not None}
    interrupted = False
    try:
        while ready or running:
            ready.sort(key=lambda x: (x.trial is not None, plan.index(x)))
            while ready:
                j = ready.pop(0)
                if j.id in submitted:
                    continue
                submitted.add(j.id)
                payload = {"id": j.id, "train": j.train, "start": j.start, "stop": j.stop, "threads": threads,
                           "ckpt_dir": str(run.ckpt_dir(j.id)),
                           "parent_dir": str(run.ckpt_dir(j.parent)) if j.parent else None}
                running[engine.submit(payload)] = j
                emit(Event(kind="start", job=j.id, label=_job_label(j), step=j.start, start=j.start, total=j.stop))
            for h in engine.wait(list(running), 0.2):
                j = running.pop(h)
                out = engine.result(h)
                if out["status"] != "done":
                    continue
                if j.trial is not None:
                    rec = {**_trial_record(j.trial, _branch_info(j, by_id)), "result": out["result"]}
                    _atomic_json(run.runs_dir / f"{j.id}.json", rec)
                    shutil.rmtree(run.ckpt_dir(j.id), ignore_errors=True)
                    emit(Event(kind="finish", job=j.id, label=_job_label(j), step=j.stop, total=j.stop,
                               loss=out["result"].get("final_val_loss")))
                else:
                    emit(Event(kind="finish", job=j.id, label=_job_label(j), step=j.stop, total=j.stop))
                    ready += [c for c in children.get(j.id, []) if c.id not in submitted]
                if j.parent is not None and j.parent in remaining_children:
                    remaining_children[j.parent].discard(j.id)
                    if not remaining_children[j.parent]:
                        shutil.rmtree(run.ckpt_dir(j.parent), ignore_errors=True)
            for job_id, step, total in engine.drain():
                emit(Event(kind="step", job=job_id, step=step, total=total))
    except KeyboardInterrupt:
        interrupted = True
        emit(Event(kind="stopping"))
        engine.request_stop(list(running))
        try:
            while running:  # let running jobs checkpoint and return; a second Ctrl-C abandons them
                for h in engine.wait(list(running), 0.5):
                    j = running.pop(h)
                    try:
                        out = engine.result(h)
                    except Exception:  # cancelled before it started, or cancelled Ray task
                        continue
                    if out["status"] == "done" and j.trial is not None:
                        rec = {**_trial_record(j.trial, _branch_info(j, by_id)), "result": out["result"]}
                        _atomic_json(run.runs_dir / f"{j.id}.json", rec)
        except KeyboardInterrupt:
            pass
    return "interrupted" if interrupted else "complete"


def _branch_info(job: Job, by_id: Mapping[str, Job]) -> dict[str, Any] | None:
    """Where a branched trial started: the prefix job whose checkpoint it copied (``trial``), that checkpoint's
    update (``step``), and ``chain``: every prefix job it continues, outermost first, each with its span of
    updates — prefixes nest when schedules part at different updates."""
    if job.parent is None:
        return None
    chain: list[dict[str, Any]] = []
    pid: str | None = job.parent
    while pid is not None:
        p = by_id[pid]
        chain.insert(0, {"prefix": p.id, "start": p.start, "stop": p.stop})
        pid = p.parent
    return {"trial": job.parent, "step": job.start, "chain": chain}


def _label(t: Trial) -> str:
    return f"{t.schedule} · {t.optimizer} · lr {t.lr:.3g} · seed {t.seed}"


def _job_label(j: Job) -> str:
    if j.trial is not None:
        return _label(j.trial)
    t = j.train
    return f"shared prefix [{j.start}, {j.stop}) · {t['optimizer']} · lr {t['lr']:.3g} · seed {t['seed']}"


# ---------------------------------------------------------------------------------------------- LR finder


def lr_range_test(config: CompareConfig, optimizer: str, *, threads: int) -> dict[str, Any]:
    """``--lr find``: the LR range test of `lrlab.range_test.find_on_task` (100 updates, LR 1e-6 -> 10,
    exponential) on seed 0 of the task with ``optimizer``. The grid centre is the geometric median of its three
    suggestions (steepest, valley, minimum/10). Returns the curve, the suggestions and ``suggestion``."""
    import torch

    from lrlab.range_test import find_on_task, median_suggestion, suggest_all

    torch.set_num_threads(threads)
    result = find_on_task(config.task, preset=config.preset, optimizer=optimizer, seed=0,
                          batch_size=config.batch_size)
    suggestions = suggest_all(result)
    return {"result": result.to_dict(), "suggestions": [s.to_dict() for s in suggestions],
            "suggestion": median_suggestion(suggestions), "rule": "geometric median of steepest, valley, minimum/10"}


# ------------------------------------------------------------------------------------------------ one run


def train_one(*, schedule: str, task: str = "lm", preset: str = "tiny", optimizer: str = "adamw", lr: float = 1e-2,
              steps: int = 1000, seed: int = 0, batch_size: int | None = None, eval_every: int = 50,
              checkpoint_every: int = 500, out_dir: str | Path, resume: bool = False,
              on_event: EventSink | None = None) -> dict[str, Any]:
    """`lrlab train`: one run in this process with the Monitor attached (when `lrlab.monitor` is installed).

    Writes ``out_dir/results.json`` in the comparison format (one trial), so `lrlab.bench.report` renders it
    like a comparison; the Monitor's logs go to ``out_dir/monitor/``. Ctrl-C stops at the next update with a
    checkpoint in ``out_dir/ckpt`` (``resume=True`` continues it); the returned document then has no result.

    Under ``torchrun`` with several processes (``WORLD_SIZE`` > 1) every process calls this: they join a gloo
    process group (`lrlab.bench.train.init_distributed`) and train one run with DDP, each on its slice of every
    update's batch (see `lrlab.bench.train`); ``out_dir`` must be the same folder for all. Only rank 0 attaches the
    Monitor, reports progress and writes ``results.json`` and the checkpoints; every rank returns the document.
    """
    if optimizer not in OPTIMIZERS:
        raise LrlabError(f"optimizer {optimizer!r} is not supported; choose from {', '.join(OPTIMIZERS)}")
    if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
        raise LrlabError(f"lr must be a positive number, got {lr!r}")
    _check_int("seed", seed, 0)
    cfg = CompareConfig(task=task, preset=preset, steps=steps, schedules=(schedule,), optimizers=(optimizer,),
                        lr=((optimizer, float(lr)),), lr_grid=1, confirm_seeds=0, batch_size=batch_size,
                        eval_every=eval_every, checkpoint_every=checkpoint_every, branch=False, title="lrlab train")
    cfg = cfg.resolved()  # checks the spec before torch loads

    import torch
    import torch.distributed

    from lrlab.bench.train import TrainConfig, init_distributed, train

    owned = not (torch.distributed.is_available() and torch.distributed.is_initialized())
    rank, world = init_distributed()
    lead = rank == 0
    out = Path(out_dir)
    ckpt = out / "ckpt"
    if not resume and (out / RESULTS_FILE).exists():
        raise LrlabError(f"--out {str(out)!r} already holds a run; use another --out (or --resume to continue it)")
    out.mkdir(parents=True, exist_ok=True)
    t = Trial(id=f"00-{_slug(schedule)}-{optimizer}-lr0-s{seed}", schedule=schedule, optimizer=optimizer, seed=seed,
              lr=float(lr), lr_index=0, phase="grid")
    emit = (on_event if lead else None) or (lambda e: None)
    monitor, monitor_note = _make_monitor(out / "monitor", steps) if lead else (None, None)
    stop = {"requested": False}

    def on_sigint(signum: int, frame: Any) -> None:
        stop["requested"] = True
        emit(Event(kind="stopping"))

    def on_step(step: int, **_: Any) -> None:
        emit(Event(kind="step", job=t.id, step=step + 1, total=steps))

    # the processes of this machine share its cores
    threads = max(1, _cores() // int(os.environ.get("LOCAL_WORLD_SIZE", world)))
    torch.set_num_threads(threads)
    emit(Event(kind="phase", total=steps, jobs=1))
    emit(Event(kind="start", job=t.id, label=_label(t), total=steps))
    previous = signal.signal(signal.SIGINT, on_sigint)
    t0 = time.monotonic()
    try:
        result = train(TrainConfig(**t.train_kwargs(cfg)), out_dir=ckpt, resume=resume, monitor=monitor,
                       on_step=on_step, should_stop=lambda: stop["requested"])
    finally:
        signal.signal(signal.SIGINT, previous)
        if world > 1 and owned:
            torch.distributed.destroy_process_group()
    done = not result.stopped
    record = {**_trial_record(t), "result": result.to_dict() if done else None}
    doc = {"format": FORMAT, "title": cfg.title, "status": "complete" if done else "interrupted", "created": _now(),
           "config": cfg.to_dict(), "lr_centers": {optimizer: float(lr)}, "lr_find": None,
           "execution": {"backend": "in-process" if world == 1 else "torchrun (DDP, gloo)", "workers": 1,
                         "processes": world, "cores": _cores(), "threads": threads},
           **_fingerprint(task),
           "sessions": [{"started": _now(), "resumed": resume, "wall_time_s": time.monotonic() - t0}],
           "n_planned": 1, "wall_time_s": time.monotonic() - t0, "trials": [record],
           "notes": ([monitor_note] if monitor_note else []) + _finding_notes(monitor),
           "monitor_files": sorted(str(p) for p in (out / "monitor").glob("*")) if monitor is not None else []}
    if not lead:  # one writer: rank 0
        return doc
    _atomic_json(out / RESULTS_FILE, doc)
    if done:
        emit(Event(kind="finish", job=t.id, label=_label(t), step=steps, total=steps,
                   loss=record["result"]["final_val_loss"]))
        shutil.rmtree(ckpt, ignore_errors=True)
    return doc


def _finding_notes(monitor: Any) -> list[str]:
    """The Monitor's live diagnoses as report notes (`lrlab.diagnose.Finding`: severity, step, message, advice)."""
    if monitor is None:
        return []
    return [f"Monitor {f.severity} at update {f.step} ({f.kind}): {f.message} {f.advice}" for f in monitor.findings]


def _make_monitor(folder: Path, steps: int) -> tuple[Any, str | None]:
    """The lrlab Monitor writing into ``folder``, or (None, a note saying why there is none)."""
    try:
        from lrlab.monitor import Monitor
    except ModuleNotFoundError:
        return None, "No Monitor attached: lrlab.monitor is not available in this installation."
    folder.mkdir(parents=True, exist_ok=True)
    return Monitor(out_dir=folder, total_steps=steps), None
