"""Designed fit runs: which few runs to make so a loss-curve law can be fitted for one horizon and peak LR.

A warm-up + constant *trunk* runs to the horizon, and each *branch* leaves it for a cool-down over the run's
last part. All of them share their LR sequence bit for bit up to the branch point, so `lrlab compare`'s prefix
branching trains the shared part once: the design costs ``1 + sum(branch fractions)`` run-equivalents in updates.
The default branches differ in length and shape — a long linear cool-down (the last 50 %), a short 1-sqrt one
(the last 10 %) and an abrupt drop to 0.1 x peak (the last 25 %, the "two-stage" schedule the multi-power-law
paper fits on) — so the fit sees the annealing bonus as a function of both how far and how long the LR fell.

A *start-up probe* — a short run of ``constant()`` at the peak without a warm-up, over the first ``probe`` share
of the horizon — measures what starting at the peak costs (the laws' start-up factor ``K``, see
`lrlab.predict.laws`), so that schedules without a warm-up can be predicted too. The default design's branches
(0.85) and probe (0.15) cost 2.0 run-equivalents. The probe cannot share the trunk's prefix (it has no warm-up),
so `run_design` trains it as its own short `lrlab compare` run in ``OUT/probe``, which `load_runs(OUT)` reads
with the rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lrlab.checks import check
from lrlab.errors import LrlabError
from lrlab.predict.curves import PROBE_DIR

#: shapes a branch may have: a `cooldown` shape, or ``step`` (a drop to ``step_to`` x peak held to the end)
BRANCH_SHAPES = ("linear", "cosine", "sqrt", "step")
#: the start-up probe's schedule: the peak from update 0
PROBE_SPEC = "constant()"
#: the default probe length, a share of the horizon: the cost of a cold start is set within the first ~100-150
#: updates on the built-in tasks (BENCHMARKS.md, "Loss-curve prediction")
DEFAULT_PROBE = 0.15
#: the shortest probe: `lrlab compare`'s shortest run
PROBE_MIN = 10


@dataclass(frozen=True, kw_only=True)
class Branch:
    """One cool-down branch of a design.

    Args:
        fraction: the share of the run the cool-down takes, in (0, 1); it starts at ``(1 - fraction) * total``.
        shape: ``linear`` | ``cosine`` | ``sqrt`` (a `cooldown` to 0) or ``step`` (a drop to ``step_to`` x peak).
        step_to: the level after a ``step`` drop, in (0, 1) of the peak; unused by the other shapes.
    """

    fraction: float
    shape: str = "linear"
    step_to: float = 0.1

    def __post_init__(self) -> None:
        check.range("fraction", self.fraction, 0.0, 1.0, lo_open=True, hi_open=True)
        check.choice("shape", self.shape, BRANCH_SHAPES)
        check.range("step_to", self.step_to, 0.0, 1.0, lo_open=True, hi_open=True)


DEFAULT_BRANCHES: tuple[Branch, ...] = (Branch(fraction=0.5, shape="linear"), Branch(fraction=0.1, shape="sqrt"),
                                        Branch(fraction=0.25, shape="step", step_to=0.1))


@dataclass(frozen=True, kw_only=True)
class Design:
    """The runs to make: ``specs[0]`` is the trunk, the rest its branches (lrlab specs bound to ``total``).

    Attributes:
        total: updates per run (the horizon the law is fitted at).
        peak_lr: the peak LR every run uses (the schedules multiply it).
        warmup: warm-up updates of the trunk (and so of every branch).
        specs: trunk first, then one spec per branch.
        branch_starts: the update where each branch leaves the trunk.
        probe: updates of the start-up probe (`PROBE_SPEC` from update 0, no warm-up); 0: no probe.
        cost: run-equivalents of updates with the shared prefix trained once:
            ``1 + sum(fractions) + probe / total``.
        eval_every: the evaluation period to run them with: ~40 evaluations per run, so that a short branch
            still has several.
    """

    total: int
    peak_lr: float
    warmup: int
    specs: tuple[str, ...]
    branch_starts: tuple[int, ...]
    cost: float
    eval_every: int
    probe: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, "peak_lr": self.peak_lr, "warmup": self.warmup, "specs": list(self.specs),
                "branch_starts": list(self.branch_starts), "probe": self.probe, "probe_spec": PROBE_SPEC,
                "cost": self.cost, "eval_every": self.eval_every}


def design_runs(total: int, *, peak_lr: float, warmup: float = 0.05,
                branches: tuple[Branch, ...] = DEFAULT_BRANCHES, probe: float = DEFAULT_PROBE,
                max_cost: float = 2.0) -> Design:
    """The fit runs for a horizon of ``total`` updates at ``peak_lr``.

    Args:
        total: updates per run, >= 20.
        peak_lr: peak learning rate, > 0.
        warmup: warm-up length: a fraction of ``total`` in (0, 1), or updates (>= 1); at least 1 update.
        branches: the cool-down branches (at least one: the laws need an LR decrease to fit their annealing term).
        probe: the start-up probe's length: a share of ``total`` in [0, 1) (0: none; then schedules without a
            warm-up are predicted without their start-up cost, and say so), or updates (>= 1). At least 10
            updates: the default share needs ``total >= 67``.
        max_cost: refuse a design costing more run-equivalents than this (> 1).
    Returns:
        The `Design`. Its specs run under `lrlab compare` with one peak LR (`run_design`).

    >>> d = design_runs(1000, peak_lr=6e-3)
    >>> d.specs[0], d.probe, d.cost
    ('warmup(50) >> constant()', 150, 2.0)
    """
    total = check.whole("total", total, minimum=20)
    peak_lr = check.positive("peak_lr", peak_lr)
    w = check.positive("warmup", warmup)
    w_updates = max(1, math.ceil(w * total)) if w < 1 else round(w)
    pr = check.number("probe", probe)
    if pr < 0:
        raise LrlabError(f"probe must be >= 0 (a share of total in [0, 1), or updates), got {probe!r}")
    probe_updates = (math.ceil(pr * total - 1e-9) if pr < 1 else round(pr))
    shortest = max(PROBE_MIN, 2 * eval_step(total))
    if probe_updates and not shortest <= probe_updates < total:
        raise LrlabError(f"probe is {probe_updates} updates; allowed: 0 (none) or {shortest} .. {total - 1} "
                         f"updates (a run of at least {PROBE_MIN} updates with two evaluations, shorter than the "
                         "design's runs)")
    if not branches:
        raise LrlabError("branches must hold at least one Branch: the laws need an LR decrease to be fitted")
    starts, specs = [], [f"warmup({w_updates}) >> constant()"]
    for b in branches:
        if not isinstance(b, Branch):
            raise LrlabError(f"branches must be Branch values, got {b!r}")
        start = round((1.0 - b.fraction) * total)
        if start <= w_updates + max(1, total // 20):
            raise LrlabError(f"branch fraction {b.fraction} starts at update {start}, inside or just after the "
                             f"warm-up ({w_updates} updates); allowed: a start after update "
                             f"{w_updates + max(1, total // 20)}")
        stable = start - w_updates
        tail = (f"constant({b.step_to:g})" if b.shape == "step" else f"cooldown(shape={b.shape})")
        specs.append(f"warmup({w_updates}) >> constant(total={stable}) >> {tail}")
        starts.append(start)
    if len(set(specs)) != len(specs):
        raise LrlabError("branches repeat one cool-down (same fraction and shape); give each branch its own")
    cost = round(1.0 + sum((total - s) / total for s in starts) + probe_updates / total, 6)
    if cost > max_cost:
        raise LrlabError(f"the design costs {cost:g} run-equivalents, more than max_cost={max_cost:g}; use fewer "
                         "or shorter branches, or a shorter probe")
    return Design(total=total, peak_lr=peak_lr, warmup=w_updates, specs=tuple(specs),
                  branch_starts=tuple(starts), cost=cost, eval_every=eval_step(total), probe=probe_updates)


def eval_step(total: int) -> int:
    """A design's evaluation period: ~40 evaluations per run, so that a short branch or the probe has several."""
    return max(1, total // 40)


def run_design(design: Design, out_dir: str | Path, *, task: str = "lm", preset: str = "tiny",
               optimizer: str = "adamw", seeds: int = 1, workers: int | None = None,
               resume: bool = False) -> dict[str, Any]:
    """Train a design with `lrlab compare` (shared prefixes trained once) in ``out_dir``, and its start-up probe
    (if any) in ``out_dir/probe``; returns the design's results document (``out_dir/results.json``).
    `lrlab.predict.load_runs(out_dir)` reads both. Needs the ``bench`` extra."""
    from lrlab.bench.compare import CompareConfig, run_compare

    common: dict[str, Any] = {"task": task, "preset": preset, "seeds": seeds, "optimizers": (optimizer,),
                              "lr": ((optimizer, design.peak_lr),), "lr_grid": 1, "lr_extend": 0,
                              "confirm_seeds": 0, "eval_every": design.eval_every}
    cfg = CompareConfig(**common, steps=design.total, schedules=design.specs, branch=True, branch_min=0.05,
                        title=f"lrlab predict design ({design.total} updates, peak {design.peak_lr:g})")
    doc = run_compare(None if resume else cfg, out_dir, resume=resume, workers=workers)
    if design.probe:
        probe = CompareConfig(**common, steps=design.probe, schedules=(PROBE_SPEC,),
                              title=f"lrlab predict start-up probe ({design.probe} updates, peak "
                                    f"{design.peak_lr:g})")
        folder = Path(out_dir) / PROBE_DIR
        started = resume and (folder / "compare.json").is_file()  # a resume may come before the probe began
        run_compare(None if started else probe, folder, resume=started, workers=workers)
    return doc
