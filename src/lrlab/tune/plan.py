"""What `lrlab tune` trains under a budget: the rung geometry (`Rungs`) and the plan (`Plan`, `choose_plan`).

Every run starts as a warm-up + constant *trunk* at one of several peak LRs. The trunks run to ``0.4 N`` (``N``: the
horizon) and each gets a short cool-down branch of ``0.1 N`` from its checkpoint: the loss at its end is the rung
score (the raw trunk loss favours low LRs, which have "annealed" already). The best ``keep`` trunks continue to
``0.8 N`` and end with a ``0.2 N`` 1-sqrt cool-down: exactly warm-up + stable + decay (WSD) over the full horizon,
measured. Each also gets a long linear cool-down from its ``0.4 N`` checkpoint to the horizon: the law fitted on
short cool-downs alone predicted long decays (warm-up + linear, cosine, inverse-sqrt) 0.07-0.42 nats too low on
`lm`; with this long decay in the fit set, warm-up + linear and + cosine within 0.017 (BENCHMARKS.md). The other
candidates are predicted from those curves, and the best few are re-run at full length.

Costs count every update trained once (a branch does not pay for its trunk again):
``peaks * 0.5 N + keep * 1.2 N + (confirm * seeds - 1) * N``; the ``- 1``: the best measured run is one of the
confirmed options and its seed-0 run is done already.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lrlab.checks import check
from lrlab.errors import LrlabError

#: updates the default `lrlab compare` trains per update of its horizon, shared prefixes once: 41,640 at 1,000
#: updates (BENCHMARKS.md, "Default lrlab compare wall time"). `lrlab tune`'s default budget is a quarter of it.
COMPARE_UPDATES_PER_HORIZON = 41.64
#: the default budget as a share of the default comparison's updates
DEFAULT_SHARE = 0.25
#: fractions of the horizon: end of the first trunk piece, its cool-down's length, end of the second piece
FIRST, FIRST_COOLDOWN, SECOND = 0.4, 0.1, 0.8
#: warm-up of every trunk, a fraction of the horizon (`lrlab compare`'s warm-ups and WSD's)
WARMUP = 0.05
#: evaluations per run: a short branch still gets several points for the law fit
EVALS_PER_RUN = 40


def default_budget(horizon: int) -> int:
    """A quarter of the updates the default `lrlab compare` trains at ``horizon`` (branched updates once)."""
    horizon = check.whole("horizon", horizon, minimum=1)
    return math.floor(horizon * COMPARE_UPDATES_PER_HORIZON * DEFAULT_SHARE)


@dataclass(frozen=True, kw_only=True)
class Rungs:
    """Where the trunks branch, in updates, for a horizon of ``horizon`` updates. Boundaries are multiples of
    ``eval_every`` so that a loss is measured exactly where each piece ends.

    Attributes:
        horizon: updates of a full run (>= 20).
        warmup: warm-up updates of every trunk (``ceil(0.05 * horizon)``, as `lrlab compare`'s warm-ups).
        first: end of the first trunk piece (~0.4 horizon).
        first_cooldown: length of its cool-down branch (~0.1 horizon); the rung score is the loss at its end.
        second: end of the second trunk piece (~0.8 horizon); the final cool-down runs from there to the horizon.
        eval_every: updates between loss reports (~horizon / 40).
    """

    horizon: int
    warmup: int
    first: int
    first_cooldown: int
    second: int
    eval_every: int

    @classmethod
    def for_horizon(cls, horizon: int, eval_every: int | None = None) -> Rungs:
        """The rungs of ``horizon`` updates (>= 20); ``eval_every`` None: ~horizon / 40."""
        horizon = check.whole("horizon", horizon, minimum=1)
        if horizon < 20:
            raise LrlabError(f"horizon must be a whole number >= 20 (tune splits each run into warm-up, trunk and "
                             f"cool-down pieces), got {horizon}")
        e = max(1, horizon // EVALS_PER_RUN) if eval_every is None else check.whole("eval_every", eval_every,
                                                                                     minimum=1)
        warm = max(1, math.ceil(WARMUP * horizon))

        def at(fraction: float) -> int:
            return max(e, round(fraction * horizon / e) * e)

        first, second = at(FIRST), at(SECOND)
        first_cooldown = at(FIRST + FIRST_COOLDOWN) - first
        if not warm < first < first + first_cooldown <= second < horizon:
            raise LrlabError(f"eval_every={e} is too coarse for a horizon of {horizon} updates: the pieces need "
                             f"warm-up < 0.4 N < 0.5 N <= 0.8 N < N on multiples of it; use eval_every <= "
                             f"{max(1, horizon // 10)}")
        return cls(horizon=horizon, warmup=warm, first=first, first_cooldown=first_cooldown, second=second,
                   eval_every=e)

    @property
    def trunk(self) -> str:
        """The trunk: warm-up then constant to the horizon."""
        return f"warmup({self.warmup}) >> constant()"

    def cooldown(self, at: int, length: int | None = None) -> str:
        """The trunk until update ``at``, then a 1-sqrt cool-down to 0 over ``length`` updates (None: to the horizon),
        then 0 (never trained: the branch stops where its cool-down ends)."""
        head = f"warmup({self.warmup}) >> constant(total={at - self.warmup}) >> "
        if length is None or at + length >= self.horizon:
            return head + "cooldown(shape=sqrt)"
        return head + f"cooldown(total={length}, shape=sqrt) >> constant(0)"

    @property
    def final(self) -> str:
        """The trunk with its final cool-down from ``second``: WSD over the whole horizon."""
        return self.cooldown(self.second)

    @property
    def long(self) -> str:
        """The trunk with a linear cool-down from ``first`` to 0 at the horizon: the long decay of the fit set."""
        return f"warmup({self.warmup}) >> constant(total={self.first - self.warmup}) >> cooldown(shape=linear)"

    @property
    def first_cost(self) -> int:
        """Updates of one peak's first rung: the trunk to ``first`` and its cool-down branch."""
        return self.first + self.first_cooldown

    @property
    def second_cost(self) -> int:
        """Updates of one survivor's second rung: its trunk to ``second``, the final cool-down and the long one."""
        return 2 * (self.horizon - self.first)


@dataclass(frozen=True, kw_only=True)
class Plan:
    """How many runs of each kind tune makes.

    Attributes:
        peaks: trunks of the first rung (>= 2), ``factor`` apart around the centre LR.
        keep: trunks that continue to the horizon (1 .. peaks).
        confirm: options re-run at full length (>= 1): the best measured run, the best predicted schedule and,
            when its call is close, the runner-up.
        seeds: seeds each confirmed option runs with (>= 1); its choice is made on their mean.
    """

    peaks: int
    keep: int
    confirm: int
    seeds: int

    def __post_init__(self) -> None:
        check.whole("peaks", self.peaks, minimum=2)
        check.whole("keep", self.keep, minimum=1)
        check.whole("confirm", self.confirm, minimum=1)
        check.whole("seeds", self.seeds, minimum=1)
        if self.keep > self.peaks:
            raise LrlabError(f"keep must be <= peaks ({self.peaks}), got {self.keep}")

    def cost(self, rungs: Rungs) -> int:
        """Updates this plan trains at most, without grid extensions."""
        return (self.peaks * rungs.first_cost + self.keep * rungs.second_cost
                + (self.confirm * self.seeds - 1) * rungs.horizon)


#: plans from the most thorough down; `choose_plan` takes the first that fits the budget
LADDER: tuple[Plan, ...] = (
    Plan(peaks=5, keep=3, confirm=3, seeds=2),
    Plan(peaks=5, keep=3, confirm=2, seeds=2),
    Plan(peaks=5, keep=3, confirm=3, seeds=1),
    Plan(peaks=5, keep=3, confirm=2, seeds=1),
    Plan(peaks=4, keep=3, confirm=2, seeds=1),
    Plan(peaks=3, keep=2, confirm=2, seeds=1),
    Plan(peaks=3, keep=2, confirm=1, seeds=1),
)


def choose_plan(budget: int, rungs: Rungs) -> Plan:
    """The most thorough plan of `LADDER` whose cost fits ``budget`` updates; `LrlabError` when none does (the
    message names the smallest budget that makes a decision)."""
    budget = check.whole("budget", budget, minimum=1)
    for plan in LADDER:
        if plan.cost(rungs) <= budget:
            return plan
    least = LADDER[-1].cost(rungs)
    raise LrlabError(f"budget {budget} updates is too small to make any decision at a horizon of {rungs.horizon}: "
                     "the smallest plan (3 peak LRs to 0.4 N with a cool-down each, 2 of them on to the horizon "
                     f"with two cool-downs) trains {least} updates ({least / rungs.horizon:.2f} x the horizon); "
                     f"allowed: budget >= {least}")


def extensions_allowed(budget: int, plan: Plan, rungs: Rungs) -> int:
    """How many extra first-rung peaks (past an edge of the grid) the budget leaves room for."""
    return max(0, (budget - plan.cost(rungs)) // rungs.first_cost)
