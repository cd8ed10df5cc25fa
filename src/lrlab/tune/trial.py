"""`TuneTrial`: one piece of training that `lrlab.tune.Tuner.ask` hands out, and what the loop reports back.

A trial is a segment of a run: train from update ``start`` to update ``stop`` (exclusive) with ``lr = lr_at(t)``,
starting from scratch (``start == 0``) or from the checkpoint another trial saved (``resume_from``), and save a
checkpoint at ``stop`` when ``checkpoint`` names one. Optuna's vocabulary where it fits: a trial has a ``number``
and ``params``, the loop calls ``trial.report(value, step)`` and then ``tuner.tell(trial)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lrlab.checks import check
from lrlab.errors import LrlabError

#: what a trial trains: a piece of a warm-up + constant trunk, a short cool-down branch off a trunk (the rung
#: score), the cool-down that ends a trunk at the horizon, or a candidate schedule at its chosen peak
KINDS = ("trunk", "cooldown", "final", "confirm")


@dataclass(frozen=True, kw_only=True)
class TuneTrial:
    """A segment of training to run.

    Attributes:
        number: the order in which `Tuner.ask` handed it out (0, 1, ...), like ``optuna.Trial.number``.
        name: a stable, file-name-safe id; checkpoints are named by the trial that saved them.
        kind: one of `KINDS`.
        schedule: lrlab spec of the whole run's LR factors over ``horizon`` updates (the peak multiplies them).
        lr: the peak LR.
        seed: initial weights and data order; runs of one seed are paired.
        horizon: updates of the whole run (the schedule is bound to it).
        start: the first update to train (0-based; ``start`` updates are done when it begins).
        stop: train until ``stop`` updates are done.
        resume_from: None (start from scratch, ``start == 0``), or the ``checkpoint`` name of an earlier trial: load
            that state (model, optimizer, RNG) and continue from update ``start``.
        checkpoint: None, or the name to save the state under when ``stop`` updates are done; later trials
            resume from it.
        eval_every: report the loss every this many updates (and always at ``stop``).
    """

    number: int
    name: str
    kind: str
    schedule: str
    lr: float
    seed: int
    horizon: int
    start: int
    stop: int
    resume_from: str | None = None
    checkpoint: str | None = None
    eval_every: int = 25
    _reports: dict[int, float] = field(default_factory=dict, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        check.choice("kind", self.kind, KINDS)
        if not 0 <= self.start < self.stop <= self.horizon:
            raise LrlabError(f"trial {self.name}: need 0 <= start < stop <= horizon, got start={self.start}, "
                             f"stop={self.stop}, horizon={self.horizon}")
        if (self.start == 0) != (self.resume_from is None):
            raise LrlabError(f"trial {self.name}: a trial resumes from a checkpoint exactly when start > 0 "
                             f"(start={self.start}, resume_from={self.resume_from!r})")

    @property
    def params(self) -> dict[str, Any]:
        """``{"schedule", "lr", "seed"}``, as ``optuna.Trial.params`` names a trial's choices."""
        return {"schedule": self.schedule, "lr": self.lr, "seed": self.seed}

    @property
    def updates(self) -> int:
        """Updates this trial trains: ``stop - start`` (what it costs of the budget)."""
        return self.stop - self.start

    def factors(self) -> np.ndarray:
        """The schedule's factors for every update of the run, 0 .. horizon - 1."""
        return lr_factors(self.schedule, self.horizon)

    def lr_at(self, t: int) -> float:
        """The LR to train update ``t`` with (0-based): ``lr * schedule(t)``, as `lrlab.bench.train` computes it."""
        return float(self.lr * self.factors()[int(t)])

    def report(self, value: float, step: int) -> None:
        """Record the loss after ``step`` updates (``start < step <= stop``), like ``optuna.Trial.report``. A
        non-finite value marks the run as diverged; the trial may then stop early."""
        step = check.whole("step", step, minimum=0)
        if not self.start <= step <= self.stop:
            raise LrlabError(f"trial {self.name}: report step must be in [{self.start}, {self.stop}], got {step}")
        v = float(value)
        self._reports[step] = v if math.isfinite(v) else math.inf

    @property
    def reports(self) -> dict[int, float]:
        """step -> loss reported so far (``inf`` for a non-finite loss)."""
        return dict(sorted(self._reports.items()))

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "name": self.name, "kind": self.kind, "schedule": self.schedule,
                "lr": self.lr, "seed": self.seed, "horizon": self.horizon, "start": self.start, "stop": self.stop,
                "resume_from": self.resume_from, "checkpoint": self.checkpoint, "eval_every": self.eval_every}


_FACTORS: dict[tuple[str, int], np.ndarray] = {}


def lr_factors(spec: str, horizon: int) -> np.ndarray:
    """The factors of ``spec`` bound to ``horizon`` for updates 0 .. horizon - 1 (cached; read-only)."""
    key = (spec, horizon)
    if key not in _FACTORS:
        import lrlab

        values = lrlab.parse(spec, total=horizon).values(np.arange(horizon, dtype=np.float64))
        values.setflags(write=False)
        if len(_FACTORS) > 256:
            _FACTORS.clear()
        _FACTORS[key] = values
    return _FACTORS[key]
