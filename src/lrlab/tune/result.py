"""`TuneResult`: what `lrlab tune` recommends and the evidence for it, as data (`lrlab.tune.report` renders it)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lrlab.tune.choose import Estimate, Option, same_option
from lrlab.tune.plan import COMPARE_UPDATES_PER_HORIZON

if TYPE_CHECKING:
    from lrlab.tune.laws import PeakFit
    from lrlab.tune.study import Tuner


@dataclass(frozen=True, kw_only=True)
class PeakRecord:
    """One peak LR of the first rung: its score, whether it went on to the horizon, and the final losses of its two
    full runs there (WSD; the long linear cool-down)."""

    index: int
    lr: float
    score: float
    kept: bool
    final: float | None
    linear: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "lr": self.lr, "score": self.score, "kept": self.kept, "final": self.final,
                "linear": self.linear}


@dataclass(frozen=True, kw_only=True)
class TuneResult:
    """The recommendation and its evidence.

    Attributes:
        schedule: the recommended schedule (lrlab spec, bound to ``horizon`` when it has fractions).
        lr: its peak LR.
        estimate: its final loss expected at ``lr`` before confirmation (law prediction, or the measured run),
            with an interval.
        measured: seed -> final loss of its full runs.
        options: the pick first, then every other candidate at its chosen peak, best expected first — those
            measured or predicted within the law's support before those outside it — with the runs made of those
            that were confirmed.
        peaks: the first rung's peaks with their scores.
        fits: the law fitted at each kept peak (`lrlab.tune.laws.PeakFit.summary`).
        noise: (sigma, degrees of freedom) of the paired seed-to-seed noise of the confirmed options' differences,
            or None with one seed.
        spent: updates trained (branched ones once); budget: the budget.
        compare_updates: what the default `lrlab compare` trains at this horizon (the reference of the budget).
        horizon: the run's updates.
        trials: every trial made (`TuneTrial.to_dict` plus its losses).
        why: the decision in sentences.
    """

    schedule: str
    lr: float
    estimate: Estimate
    measured: Mapping[int, float]
    options: tuple[Option, ...]
    peaks: tuple[PeakRecord, ...]
    fits: tuple[dict[str, Any], ...]
    noise: tuple[float, int] | None
    spent: int
    budget: int
    compare_updates: int
    horizon: int
    trials: tuple[dict[str, Any], ...]
    why: tuple[str, ...]

    @property
    def runners_up(self) -> tuple[Option, ...]:
        """The options after the pick, best expected first."""
        return tuple(o for o in self.options if not (o.schedule == self.schedule and math.isclose(o.lr, self.lr)))

    @property
    def measured_mean(self) -> float:
        vals = list(self.measured.values())
        return math.fsum(vals) / len(vals) if vals else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {"schedule": self.schedule, "lr": self.lr, "estimate": self.estimate.to_dict(),
                "measured": {str(k): v for k, v in sorted(self.measured.items())},
                "measured_mean": self.measured_mean if self.measured else None,
                "options": [o.to_dict() for o in self.options], "peaks": [p.to_dict() for p in self.peaks],
                "fits": list(self.fits), "noise": list(self.noise) if self.noise else None, "spent": self.spent,
                "budget": self.budget, "compare_updates": self.compare_updates, "horizon": self.horizon,
                "trials": list(self.trials), "why": list(self.why)}

    @classmethod
    def build(cls, *, tuner: Tuner, scores: Mapping[int, float], kept: Sequence[int], ranked: Sequence[Option],
              measured_best: Option | None, confirmed: Sequence[Option], pick: Option | None,
              fits: Sequence[PeakFit]) -> TuneResult:
        """Assemble the result from the tuner's analysis (`Tuner.result` calls it)."""
        n = tuner.rungs.horizon
        r = tuner.rungs
        peaks = []
        told = tuner.losses_told()
        for j in sorted(scores):
            _, final, long = tuner.second_rung(j)
            ends = [tuner.end_loss(t.name) if j in kept and t.name in told else None for t in (final, long)]
            peaks.append(PeakRecord(index=j, lr=tuner.peak_lr(j), score=scores[j], kept=j in kept, final=ends[0],
                                    linear=ends[1]))
        options = []
        for o in ranked:
            match = next((c for c in confirmed if same_option(c, o)), None)
            options.append(match if match is not None else o)
        for c in confirmed:
            if not any(same_option(c, o) for o in options):
                options.append(c)
        if pick is None:  # every confirmation diverged: fall back on the best expected option
            pick = next((o for o in options if o.estimate.in_support), options[0] if options else None)
        if pick is None:
            from lrlab.errors import LrlabError

            raise LrlabError("tune could not recommend anything: every run diverged; try a lower centre LR (lr)")
        # shown in this order: the pick, then what was measured or predicted within the law's support, then the
        # predictions the law itself has reservations about
        chosen = pick
        rest = [o for o in options if not same_option(o, chosen)]
        options = [chosen, *sorted(rest, key=lambda o: (not o.estimate.in_support, o.estimate.loss))]
        noise = _paired_noise(confirmed)
        spent = tuner.spent
        compare = round(COMPARE_UPDATES_PER_HORIZON * n)
        fmt = _fmt
        why = [
            f"Peak LRs tried ({len(scores)}, x{tuner.config.factor:g} apart): each trained warm-up + constant to "
            f"update {r.first}, then cooled down (1-sqrt) over {r.first_cooldown} updates; the loss there is its "
            "score: " + ", ".join(f"{tuner.peak_lr(j):.3g} -> {fmt(scores[j])}" for j in sorted(scores)) + ".",
            f"Kept the best {len(kept)} ({', '.join(f'{tuner.peak_lr(j):.3g}' for j in kept)}): their trunks went on "
            f"to update {r.second} and cooled down to the horizon ({n}), a full warm-up-stable-decay run each: "
            + ", ".join(f"{p.lr:.3g} -> {fmt(p.final)}" for p in peaks if p.kept)
            + f"; and each decayed linearly from update {r.first} to the horizon: "
            + ", ".join(f"{p.lr:.3g} -> {fmt(p.linear)}" for p in peaks if p.kept) + ".",
        ]
        fitted = [f for f in fits if f.fitted is not None]
        if fitted:
            inside = [o for o in ranked if o.estimate.in_support]
            why.append(f"The {tuner.config.law} law was fitted at each kept peak on its trunk and cool-down curves and "
                       f"predicted every candidate there; each candidate's peak is the vertex of a parabola in log LR "
                       f"through its best peak and their neighbours (or its best peak). Best expected within the "
                       f"law's support: {inside[0].schedule} at {inside[0].lr:.3g}, {fmt(inside[0].estimate.loss)} "
                       f"[{fmt(inside[0].estimate.lo)}, {fmt(inside[0].estimate.hi)}]." if inside else "")
            outside = [o.schedule for o in ranked if not o.estimate.in_support]
            if outside:
                why.append("Predicted outside the law's support, shown but not re-run: " + "; ".join(outside) + ".")
        else:
            errors = "; ".join(f"{f.lr:.3g}: {f.error}" for f in fits if f.error)
            why.append(f"No law could be fitted ({errors or 'no fits'}); the choice rests on the measured runs.")
        if confirmed:
            seeds = sorted({s for c in confirmed for s in c.measured})
            why.append(f"Re-run at full length on seed(s) {', '.join(map(str, seeds))}: "
                       + "; ".join(f"{c.schedule} at {c.lr:.3g}: mean {fmt(c.measured_mean)}" for c in confirmed)
                       + f". Pick: the lowest mean, {pick.schedule} at {pick.lr:.3g}.")
        if noise is not None:
            why.append(f"Paired seed-to-seed noise of the differences: sigma {noise[0]:.4f} ({noise[1]} dof).")
        why.append(f"Spent {spent:,} updates of a budget of {tuner.config.budget:,} ({spent / compare:.0%} of the "
                   f"{compare:,} the default `lrlab compare` trains at this horizon).")
        trials = tuple({**t.to_dict(), "losses": [[s, v] for s, v in tuner.losses_told().get(t.name, {}).items()]}
                       for t in tuner.trials)
        est = pick.estimate
        return cls(schedule=pick.schedule, lr=pick.lr, estimate=est, measured=dict(pick.measured),
                   options=tuple(options), peaks=tuple(peaks), fits=tuple(f.summary() for f in fits), noise=noise,
                   spent=spent, budget=int(tuner.config.budget or 0), compare_updates=compare, horizon=n,
                   trials=trials, why=tuple(w for w in why if w))


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.4f}" if math.isfinite(x) else "diverged"


def _paired_noise(confirmed: Sequence[Option]) -> tuple[float, int] | None:
    """`lrlab compare`'s paired noise (`lrlab.bench.analysis.paired_noise`) over the confirmed options and the seeds
    all of them ran; None without two options and two shared seeds, or with a diverged run."""
    from lrlab.bench.analysis import paired_noise

    if len(confirmed) < 2:
        return None
    shared = sorted(set.intersection(*(set(o.measured) for o in confirmed)))
    table = {f"{i}": {s: o.measured[s] for s in shared} for i, o in enumerate(confirmed)}
    if not all(math.isfinite(v) for row in table.values() for v in row.values()):
        return None
    sigma, dof = paired_noise(table, shared)
    return None if sigma is None else (sigma, dof)
