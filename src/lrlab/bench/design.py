"""What a comparison runs: `CompareConfig` (every default in one place) and the trial design — the LR grid around
each optimizer's centre (`expand_trials`), its extension past an edge (`extend_trials`) and the confirmation seeds
(`confirm_trials`). Each phase is a pure function of the config and the results so far. Why the defaults are what
they are: docs/harness.md and BENCHMARKS.md.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import lrlab
from lrlab.bench.analysis import analyze, mean_final
from lrlab.bench.presets import PRESET_NAMES
from lrlab.bench.tasks import check_task_name
from lrlab.bench.train import OPTIMIZERS, check_sizes
from lrlab.checks import check, describe
from lrlab.errors import LrlabError

#: centre of each optimizer's peak-LR grid when ``--lr`` does not name one: AdamW's brackets the best constant and
#: decaying schedules' peaks on the `lm` task; the others are `lrlab.bench.find` range-test medians (the rule
#: ``--lr find`` used before issue #11), rounded (the measurements: docs/harness.md). Schedule-free's is
#: `SCHEDULEFREE_LR_FACTOR` x AdamW's (its authors recommend 1-10x).
SCHEDULEFREE_LR_FACTOR = 2.0
#: the most seeds, grid LRs, extension LRs or confirmation seeds a comparison accepts (each multiplies its runs)
MAX_COUNT = 1000
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
    steps = check.whole("steps", steps, minimum=1)
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
        lr_find: take each optimizer's grid centre from an LR range test instead (``--lr find``): the peak LR
            ``lrlab find`` suggests (`lrlab.bench.find.peak_on_task`), on seed 0.
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
            500 by default: an atomic, fsynced checkpoint costs about two tiny-model updates, so this period keeps
            them well under 1 % of the training time (BENCHMARKS.md); a finished trial writes none at its end.
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
        check_task_name(self.task)
        check.choice("preset", self.preset, PRESET_NAMES)
        for name in ("title", "schedulefree_schedule"):
            if not isinstance(getattr(self, name), str):
                raise LrlabError(f"{name} must be a string, got {describe(getattr(self, name))}")
        for name in ("lr_find", "branch"):
            if not isinstance(getattr(self, name), bool):
                raise LrlabError(f"{name} must be true or false, got {describe(getattr(self, name))}")
        for name in ("schedules", "optimizers"):
            value = getattr(self, name)
            if value is None and name == "schedules":
                continue
            if not (isinstance(value, (tuple, list)) and all(isinstance(v, str) for v in value)):
                raise LrlabError(f"{name} must be a sequence of strings, got {describe(value)}")
            object.__setattr__(self, name, tuple(value))
        if not (isinstance(self.lr, (tuple, list)) and all(isinstance(p, (tuple, list)) and len(p) == 2
                                                           and isinstance(p[0], str) for p in self.lr)):
            raise LrlabError(f"lr must be a sequence of (optimizer, peak LR) pairs, got {describe(self.lr)}")
        object.__setattr__(self, "lr", tuple((p[0], p[1]) for p in self.lr))
        whole = {"steps": 10, "seeds": 1, "lr_grid": 1, "lr_extend": 0, "confirm_seeds": 0, "confirm_top": 1,
                 "eval_every": 1, "eval_batches": 1, "checkpoint_every": 0}
        if self.batch_size is not None:
            whole["batch_size"] = 1
        for name, minimum in whole.items():
            object.__setattr__(self, name, check.whole(name, getattr(self, name), minimum=minimum))
        check_sizes(self.steps, self.batch_size, self.eval_batches)
        for name in ("seeds", "lr_grid", "lr_extend", "confirm_seeds", "confirm_top"):
            if getattr(self, name) > MAX_COUNT:
                raise LrlabError(f"{name} must be at most {MAX_COUNT} (each one multiplies the runs), got "
                                 f"{getattr(self, name):,}")
        if not (isinstance(self.confirm_close, (int, float)) and not isinstance(self.confirm_close, bool)
                and 0 <= self.confirm_close <= 1):
            raise LrlabError(f"confirm_close must be a number in [0, 1] (a share of the contenders), got "
                             f"{self.confirm_close!r}")
        if not (isinstance(self.lr_grid_factor, (int, float)) and self.lr_grid_factor > 1
                and math.isfinite(self.lr_grid_factor)):
            raise LrlabError(f"lr_grid_factor must be a number > 1, got {self.lr_grid_factor!r}")
        check.range("branch_min", self.branch_min, 0, 1)
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
            if not (isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
                    and math.isfinite(value)):
                raise LrlabError(f"lr for {name} must be a positive number, got {value!r}")
        if self.schedules is not None:
            if not self.schedules:
                raise LrlabError("schedules must hold at least one spec, e.g. 'constant(); cosine()'")
            if len(set(self.schedules)) != len(self.schedules):
                raise LrlabError(f"schedules lists one twice: {'; '.join(self.schedules)}")
        if self.target_loss is not None and not (isinstance(self.target_loss, (int, float))
                                                 and not isinstance(self.target_loss, bool)
                                                 and math.isfinite(self.target_loss)):
            raise LrlabError(f"target_loss must be a finite number, got {self.target_loss!r}")

    def resolved(self) -> CompareConfig:
        """This config with ``schedules`` filled in and every spec checked against ``steps``."""
        schedules = self.schedules if self.schedules is not None else default_schedules(self.steps)
        out = dataclasses.replace(self, schedules=tuple(schedules))
        for spec in out.contender_schedules():
            check_spec(spec, self.steps)
        if not self.lr_find:  # every peak LR the grid and its extension may try: a finite number > 0
            for opt, center in lr_centers(self).items():
                for j in (-self.lr_extend, self.lr_grid - 1 + self.lr_extend):  # the smallest and the largest
                    lr = grid_lr(center, self.lr_grid, self.lr_grid_factor, j)
                    if not (math.isfinite(lr) and lr > 0):
                        raise LrlabError(f"the peak-LR grid of {opt} around {center:g} with lr_grid_factor "
                                         f"{self.lr_grid_factor:g} reaches {lr!r}; give a smaller --lr-grid-factor "
                                         "or --lr-grid (or a --lr nearer 1)")
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
        """The config of a `to_dict` (e.g. read from ``compare.json``): every field is checked as fresh input is,
        and a value of the wrong JSON type (``"schedules": "cosine()"``) is refused, not converted."""
        if not isinstance(d, Mapping):
            raise LrlabError(f"compare config must be a JSON object, got {describe(d)}")
        kw = check.fields("compare config", d, cls)
        for name in ("schedules", "optimizers"):
            if kw.get(name) is not None:
                if not isinstance(kw[name], list):
                    raise LrlabError(f"{name} must be a list of strings, got {describe(kw[name])}")
                kw[name] = tuple(kw[name])
        if "lr" in kw:
            pairs = kw["lr"]
            if not (isinstance(pairs, list) and all(isinstance(p, list) and len(p) == 2 for p in pairs)):
                raise LrlabError(f"lr must be a list of [optimizer, peak LR] pairs, got {describe(pairs)}")
            kw["lr"] = tuple((p[0], p[1]) for p in pairs)
        return cls(**kw)


def check_spec(spec: str, steps: int) -> None:
    """Parse ``spec`` bound to ``steps`` updates; a bad spec raises `LrlabError` naming it."""
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
    never chosen as best (`lrlab.bench.analysis.analyze`)."""
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
            best_on_grid = mean_final([t for t in best_runs if int(t["seed"]) in grid_seeds])
            passed = [(lr, runs) for lr, runs in sorted(by_lr.items())
                      if {int(t["seed"]) for t in runs} == grid_seeds and mean_final(runs) < best_on_grid]
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


def confirm_trials(config: CompareConfig, doc: Mapping[str, Any]) -> list[Trial]:
    """With one seed: every contender that did not diverge at its best peak LR on seed 0, and for the
    ``confirm_close`` share of them whose choice was the closest call (smallest seed-0 gap from the best to the
    runner-up) at their next ``confirm_top - 1`` best too (those that did not diverge), seeds 1 .. confirm_seeds;
    its best LR is then chosen on the mean over all seeds.

    Re-running the runner-up guards against the winner's curse of choosing on one seed (an example from the
    default run: BENCHMARKS.md). Only the closest calls get it by default: a third more runs for every contender
    does not fit the default comparison in its 4 minutes, and a runner-up far behind on seed 0 rarely wins on the
    mean."""
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


def lr_centers(config: CompareConfig) -> dict[str, float]:
    """Centre of each optimizer's peak-LR grid: ``config.lr`` where given, else `DEFAULT_LR`."""
    given = dict(config.lr)
    return {opt: float(given.get(opt, DEFAULT_LR[opt])) for opt in config.optimizers}


def trial_record(t: Trial, branched_from: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A trial's entry in ``results.json`` (its ``result`` added when it has one)."""
    return {"id": t.id, "schedule": t.schedule, "optimizer": t.optimizer, "seed": t.seed, "lr": t.lr,
            "lr_index": t.lr_index, "phase": t.phase, "branched_from": dict(branched_from) if branched_from else None}


def trial_label(t: Trial) -> str:
    """How progress lines name a trial."""
    return f"{t.schedule} · {t.optimizer} · lr {t.lr:.3g} · seed {t.seed}"
