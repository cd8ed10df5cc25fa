"""`TuneConfig`: everything that decides what `lrlab tune` trains and how it chooses, with every default in one place.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lrlab.checks import check
from lrlab.errors import LrlabError

#: optimizers tune accepts: `lrlab.bench.train.OPTIMIZERS` except schedule-free, which has no schedule to tune
OPTIMIZERS = ("sgd", "adagrad", "rmsprop", "adam", "adamw")
#: LR-curve laws tune can fit (`lrlab.predict.LAW_NAMES`)
LAWS = ("multipower", "momentum", "s1")
#: why tune refuses the schedule-free optimizer (the config and the CLI say it alike)
NO_SCHEDULE = ("'schedulefree' has no schedule to tune (it is the no-schedule contender); choose from "
               f"{', '.join(OPTIMIZERS)}, or compare it with `lrlab compare`")


@dataclass(frozen=True, kw_only=True)
class TuneConfig:
    """What to tune, and with how much compute.

    Args:
        horizon: updates of the run to tune for (>= 20).
        optimizer: ``sgd`` | ``adagrad`` | ``rmsprop`` | ``adam`` | ``adamw`` (its name only matters to the
            built-in tasks and to the default centre LR).
        lr: centre of the peak-LR grid (> 0); None: `lrlab compare`'s measured default for ``optimizer``, or with
            ``lr_find`` the range test's peak LR (`lrlab.tune.tune` and `lrlab.tune.runner.run_tune` run it and
            write it here: a resolved config holds the centre it tuned around).
        lr_find: centre the grid on the peak LR ``lrlab find`` suggests, as ``lrlab compare --lr find`` does
            (`lrlab.bench.find.peak_on_task`, on seed ``seed`` of ``task``); built-in tasks only. A `Tuner` (your own
            loop) needs ``lr``: run your range test and give its `lrlab.range_test.peak_lr`.
        budget: updates tune may train in all (branched updates counted once); None: a quarter of what the
            default `lrlab compare` trains at this horizon (`lrlab.tune.plan.default_budget`).
        schedules: the candidate schedules (lrlab specs, bound to ``horizon``); None: the nine `lrlab compare`
            compares by default.
        factor: ratio between neighbouring peak LRs of the grid (> 1).
        lr_extend: where the best rung score is at an edge of the grid, try up to this many more peaks beyond
            it (>= 0), budget permitting.
        eval_every: updates between loss reports (>= 1); None: ~horizon / 40.
        law: the loss-curve law fitted per peak LR: ``multipower`` | ``momentum`` | ``s1`` (`lrlab.predict`).
        seed: the seed of the trunks; confirmation runs use ``seed``, ``seed + 1``, ... (paired).
        task: for `lrlab.tune.tune` (the built-in harness): ``lm`` | ``vision`` | ``text:PATH`` | ``hf:NAME``;
            None for a loop of your own (`lrlab.tune.Tuner`).
        preset: the built-in model size: ``tiny`` | ``small`` | ``base``.
        batch_size: built-in tasks: None for the preset's.
        eval_batches: built-in tasks: validation batches per evaluation (>= 1).
        checkpoint_every: built-in tasks: updates between checkpoints of a running trial (what a crash can lose;
            0: only where tune branches).
    """

    horizon: int
    optimizer: str = "adamw"
    lr: float | None = None
    lr_find: bool = False
    budget: int | None = None
    schedules: tuple[str, ...] | None = None
    factor: float = 2.0
    lr_extend: int = 2
    eval_every: int | None = None
    law: str = "multipower"
    seed: int = 0
    task: str | None = None
    preset: str = "tiny"
    batch_size: int | None = None
    eval_batches: int = 8
    checkpoint_every: int = 500

    def __post_init__(self) -> None:
        check.whole("horizon", self.horizon, minimum=1)
        if self.optimizer == "schedulefree":
            raise LrlabError(f"optimizer {NO_SCHEDULE}")
        check.choice("optimizer", self.optimizer, OPTIMIZERS)
        if self.lr is not None:
            check.positive("lr", self.lr)
        if not isinstance(self.lr_find, bool):
            raise LrlabError(f"lr_find must be true or false, got {self.lr_find!r}")
        if self.budget is not None:
            check.whole("budget", self.budget, minimum=1)
        if self.schedules is not None:
            if isinstance(self.schedules, str) or not self.schedules:
                raise LrlabError("schedules must be a non-empty tuple of lrlab specs, e.g. "
                                 "('wsd(warmup=0.05, decay=0.2)', 'warmup(0.05) >> cosine()')")
            if len(set(self.schedules)) != len(self.schedules):
                raise LrlabError(f"schedules lists one twice: {'; '.join(self.schedules)}")
        f = check.number("factor", self.factor)
        if f <= 1:
            raise LrlabError(f"factor must be a number > 1 (the ratio between neighbouring peak LRs), got {f}")
        check.whole("lr_extend", self.lr_extend, minimum=0)
        if self.eval_every is not None:
            check.whole("eval_every", self.eval_every, minimum=1)
        check.choice("law", self.law, LAWS)
        check.whole("seed", self.seed, minimum=0)
        if self.task is not None:
            _check_task(self.task)
        check.choice("preset", self.preset, ("tiny", "small", "base"))
        if self.batch_size is not None:
            check.whole("batch_size", self.batch_size, minimum=1)
        check.whole("eval_batches", self.eval_batches, minimum=1)
        check.whole("checkpoint_every", self.checkpoint_every, minimum=0)

    def resolved(self) -> TuneConfig:
        """This config with ``lr``, ``budget`` and ``schedules`` filled in and every spec checked at the horizon.
        With ``lr_find`` the range test gives ``lr`` (`centred`); until it has run, `LrlabError`."""
        from lrlab.tune.plan import default_budget

        if self.lr is None and self.lr_find:
            raise LrlabError("lr_find: the centre of the peak-LR grid comes from an LR range test, which "
                             "lrlab.tune.tune runs on a built-in task; for a loop of your own give lr (the peak_lr "
                             "of your range test, lrlab.range_test)")
        lr = self.lr if self.lr is not None else default_lr(self.optimizer)
        budget = self.budget if self.budget is not None else default_budget(self.horizon)
        schedules = self.schedules if self.schedules is not None else default_schedules(self.horizon)
        for spec in schedules:
            check_spec(spec, self.horizon)
        return dataclasses.replace(self, lr=float(lr), budget=int(budget), schedules=tuple(schedules))

    def centred(self, lr: float) -> TuneConfig:
        """This config, resolved, centred on ``lr`` (with ``lr_find``: the peak LR its range test found)."""
        return dataclasses.replace(self, lr=check.positive("lr", lr)).resolved()

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["schedules"] = list(self.schedules) if self.schedules is not None else None
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TuneConfig:
        kw = check.fields("tune config", d, cls)
        if kw.get("schedules") is not None:
            kw["schedules"] = tuple(kw["schedules"])
        return cls(**kw)


def default_lr(optimizer: str) -> float:
    """`lrlab compare`'s grid centre for ``optimizer`` (measured on the `lm` task; BENCHMARKS.md)."""
    from lrlab.bench.design import DEFAULT_LR

    return float(DEFAULT_LR[optimizer])


def default_schedules(horizon: int) -> tuple[str, ...]:
    """The schedules `lrlab compare` compares by default at ``horizon`` updates."""
    from lrlab.bench.design import default_schedules as compare_defaults

    return tuple(compare_defaults(horizon))


def check_spec(spec: str, horizon: int) -> None:
    """Parse ``spec`` bound to ``horizon``; `LrlabError` naming the spec when it is bad."""
    import lrlab

    if not isinstance(spec, str):
        raise LrlabError(f"schedules must be lrlab spec strings, got {spec!r}")
    try:
        values = lrlab.parse(spec, total=horizon).values([0.0, horizon - 1.0])
    except LrlabError as e:
        raise LrlabError(f"schedule {spec!r}: {e}") from None
    if not all(math.isfinite(v) and v >= 0 for v in values):
        raise LrlabError(f"schedule {spec!r} gives LR factors {list(values)} at its ends; they must be finite, >= 0")


def _check_task(task: str) -> None:
    from lrlab.bench.tasks import TASK_FORMS

    ok = isinstance(task, str) and (task in ("lm", "vision") or (task.startswith(("text:", "hf:"))
                                                                and bool(task.split(":", 1)[1])))
    if not ok:
        raise LrlabError(f"task {task!r} is not supported; choose from {TASK_FORMS}")
