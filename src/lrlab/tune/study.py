"""`Tuner`: the ask/tell loop of `lrlab tune`. It hands out pieces of training (`TuneTrial`), takes back their
losses, and decides; any training loop can run the pieces (plain torch, Hugging Face Trainer, Lightning) or the
built-in harness does (`lrlab.tune.tune`).

The trials it asks for (`lrlab.tune.plan` has the geometry and the budget):

1. For each peak LR of a grid ``factor`` apart around the centre: a warm-up + constant trunk to ``0.4 N``, saving
   a checkpoint, and a ``0.1 N`` cool-down branch from that checkpoint. The loss at the branch's end is the peak's
   rung score. Where the best score is at an edge of the grid, a peak beyond it is added (``lr_extend``).
2. The ``keep`` best peaks continue their trunks to ``0.8 N`` (another checkpoint) and cool down to the horizon:
   the full warm-up-stable-decay run, measured. Each also decays linearly from its ``0.4 N`` checkpoint to the
   horizon: a second measured run, and the long decay the law needs to see (`lrlab.tune.plan`).
3. A law (`lrlab.tune.laws`) is fitted per surviving peak on its trunk and cool-down curves and predicts every
   candidate schedule there; each candidate's peak is interpolated between the peaks (`lrlab.tune.choose`).
   Predictions outside the law's support (no warm-up, steps, restarts) are shown, never re-run on their own.
4. The best measured run, the best predicted option and (when the call is close) the runner-up run at full length
   on ``seeds`` paired seeds; the pick is the lowest mean.

Every decision is a function of the losses told so far, and `Tuner.to_dict` keeps what was asked, told and
decided, so a tuner saved after each tell resumes exactly (`Tuner.from_dict`).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from lrlab.errors import LrlabError
from lrlab.tune.choose import Estimate, Option, edge_to_extend, final_pick, interpolate_peak, rank, survivors
from lrlab.tune.choose import to_confirm as choose_confirm
from lrlab.tune.config import TuneConfig
from lrlab.tune.laws import Chain, PeakFit, fit_peak, predict_final
from lrlab.tune.plan import Plan, Rungs, choose_plan, extensions_allowed
from lrlab.tune.result import TuneResult
from lrlab.tune.trial import TuneTrial, lr_factors

FORMAT = "lrlab.tune/1"


class Tuner:
    """Ask for trials, tell their losses, get the recommended schedule and peak LR.

    >>> from lrlab.tune import Tuner, TuneConfig
    >>> tuner = Tuner(TuneConfig(horizon=1000, lr=3e-3))
    >>> trial = tuner.ask()
    >>> trial.kind, trial.start, trial.stop, trial.checkpoint == trial.name
    ('trunk', 0, 400, True)

    Args:
        config: what to tune (`TuneConfig`); its ``task`` fields are ignored here.
    """

    def __init__(self, config: TuneConfig) -> None:
        if not isinstance(config, TuneConfig):
            raise LrlabError(f"config must be a lrlab.tune.TuneConfig, got {type(config).__name__}")
        self.config = config.resolved()
        self.rungs = Rungs.for_horizon(self.config.horizon, self.config.eval_every)
        assert self.config.budget is not None and self.config.lr is not None
        self.plan: Plan = choose_plan(self.config.budget, self.rungs)
        self._asked: dict[str, TuneTrial] = {}  # name -> trial, in ask order
        self._told: dict[str, dict[int, float]] = {}  # name -> step -> loss
        self._confirm: list[tuple[str, float]] | None = None  # decided once the finals are in
        self._fits: dict[int, PeakFit] = {}

    # ------------------------------------------------------------------------------------------ ask / tell

    def ask(self) -> TuneTrial | None:
        """The next trial to run, or None: when every trial is told and the tuner `finished`, or (with several
        trials out at once) when the next ones wait for the losses of those out."""
        for t in self._wanted():
            if t.name in self._asked:
                continue
            if t.resume_from is not None and t.resume_from not in self._told:
                continue
            trial = dataclasses.replace(t, number=len(self._asked))
            self._asked[trial.name] = trial
            return trial
        return None

    def tell(self, trial: TuneTrial | str, values: Mapping[int, float] | None = None) -> None:
        """Take the losses of a trial that `ask` handed out: ``values`` (update -> loss) and whatever
        ``trial.report`` recorded. The loss after ``trial.stop`` updates is required, unless the run diverged (a
        non-finite loss). The checkpoint named ``trial.checkpoint``, if any, must be saved before this call."""
        name = trial if isinstance(trial, str) else trial.name
        if name not in self._asked:
            raise LrlabError(f"tell: trial {name!r} was not handed out by this tuner's ask()")
        if name in self._told:
            raise LrlabError(f"tell: trial {name!r} was told already")
        asked = self._asked[name]
        reports: dict[int, float] = {}
        if not isinstance(trial, str):
            reports.update(trial.reports)
        for step, value in (values or {}).items():
            s = int(step)
            if not asked.start <= s <= asked.stop:
                raise LrlabError(f"tell: trial {name}: loss at update {s} is outside its span "
                                 f"[{asked.start}, {asked.stop}]")
            v = float(value)
            reports[s] = v if math.isfinite(v) else math.inf
        diverged = any(not math.isfinite(v) for v in reports.values())
        if asked.stop not in reports and not diverged:
            raise LrlabError(f"tell: trial {name}: report the loss after its last update (step {asked.stop}); got "
                             f"steps {sorted(reports) or 'none'}")
        self._told[name] = dict(sorted(reports.items()))

    @property
    def finished(self) -> bool:
        """True when every trial the plan needs is told (`result` is then available)."""
        return all(t.name in self._told for t in self._wanted())

    @property
    def spent(self) -> int:
        """Updates of the trials handed out so far (each counted once; a branch does not pay for its trunk)."""
        return sum(t.updates for t in self._asked.values())

    @property
    def trials(self) -> list[TuneTrial]:
        """The trials handed out, in ask order."""
        return list(self._asked.values())

    def pending(self) -> list[TuneTrial]:
        """Trials handed out and not told yet (after a resume: the ones to run again)."""
        return [t for t in self._asked.values() if t.name not in self._told]

    def losses_told(self) -> dict[str, dict[int, float]]:
        """trial name -> the losses told for it (update -> loss)."""
        return {k: dict(v) for k, v in self._told.items()}

    # ---------------------------------------------------------------------------------------- the design

    def schedule_choices(self) -> tuple[str, ...]:
        """Every schedule a trial of this tuner can have: the trunk, its cool-downs and the candidates."""
        r = self.rungs
        fixed = (r.trunk, r.cooldown(r.first, r.first_cooldown), r.final, r.long)
        return tuple(dict.fromkeys(fixed + tuple(self.config.schedules or ())))

    def peak_lr(self, j: int) -> float:
        """The ``j``-th peak LR of the grid (0 .. peaks-1; beyond those, the extensions)."""
        c = self.config
        assert c.lr is not None
        return float(c.lr * c.factor ** (j - (self.plan.peaks - 1) / 2))

    def _trial(self, kind: str, name: str, schedule: str, lr: float, seed: int, start: int, stop: int,
               resume_from: str | None, checkpoint: bool) -> TuneTrial:
        return TuneTrial(number=-1, name=name, kind=kind, schedule=schedule, lr=lr, seed=seed,
                         horizon=self.rungs.horizon, start=start, stop=stop, resume_from=resume_from,
                         checkpoint=name if checkpoint else None, eval_every=self.rungs.eval_every)

    def first_rung(self, j: int) -> tuple[TuneTrial, TuneTrial]:
        """Peak ``j``'s first rung: the trunk to ``first`` and its short cool-down branch (the score)."""
        r, s, lr = self.rungs, self.config.seed, self.peak_lr(j)
        trunk = self._trial("trunk", f"trunk-p{j}-s{s}-0-{r.first}", r.trunk, lr, s, 0, r.first, None, True)
        end = r.first + r.first_cooldown
        cool = self._trial("cooldown", f"cooldown-p{j}-s{s}-{r.first}-{end}", r.cooldown(r.first, r.first_cooldown),
                           lr, s, r.first, end, trunk.name, False)
        return trunk, cool

    def second_rung(self, j: int) -> tuple[TuneTrial, TuneTrial, TuneTrial]:
        """Peak ``j``'s second rung: the trunk on to ``second``, its WSD cool-down, and the long linear cool-down
        from the first checkpoint."""
        r, s, lr = self.rungs, self.config.seed, self.peak_lr(j)
        trunk1 = self.first_rung(j)[0]
        trunk = self._trial("trunk", f"trunk-p{j}-s{s}-{r.first}-{r.second}", r.trunk, lr, s, r.first, r.second,
                            trunk1.name, True)
        final = self._trial("final", f"final-p{j}-s{s}-{r.second}-{r.horizon}", r.final, lr, s, r.second,
                            r.horizon, trunk.name, False)
        long = self._trial("final", f"linear-p{j}-s{s}-{r.first}-{r.horizon}", r.long, lr, s, r.first, r.horizon,
                           trunk1.name, False)
        return trunk, final, long

    @property
    def _measured_specs(self) -> tuple[str, str]:
        """The schedules every kept peak runs in full: WSD, and the long linear cool-down."""
        return self.rungs.final, self.rungs.long

    def _diverged(self, name: str) -> bool:
        return any(not math.isfinite(v) for v in self._told.get(name, {}).values())

    def end_loss(self, name: str) -> float:
        """The loss told at the end of trial ``name``; inf if it (or a trial it continues) diverged."""
        t = self._asked[name]
        chain = [t]
        while chain[-1].resume_from is not None:
            chain.append(self._asked[chain[-1].resume_from])
        if any(self._diverged(x.name) for x in chain):
            return math.inf
        return self._told[name].get(t.stop, math.inf)

    def _grid(self) -> tuple[list[int], bool]:
        """The peaks of the first rung (grid and extensions) and whether every one is scored."""
        peaks = list(range(self.plan.peaks))
        room = min(extensions_allowed(self.config.budget or 0, self.plan, self.rungs), 2 * self.config.lr_extend)
        below = above = 0
        while True:
            scores = self._scores(peaks)
            if scores is None:
                return peaks, False
            j = edge_to_extend(scores)
            if j is None or below + above >= room:
                return peaks, True
            if j < min(peaks):
                if below >= self.config.lr_extend:
                    return peaks, True
                below += 1
            else:
                if above >= self.config.lr_extend:
                    return peaks, True
                above += 1
            peaks.append(j)

    def _scores(self, peaks: list[int]) -> dict[int, float] | None:
        """peak -> rung score (loss at the end of its cool-down branch), or None while one is not told."""
        out = {}
        for j in peaks:
            trunk, cool = self.first_rung(j)
            if trunk.name not in self._told:
                return None
            if self._diverged(trunk.name):
                out[j] = math.inf
                continue
            if cool.name not in self._told:
                return None
            out[j] = self.end_loss(cool.name)
        return out

    def _wanted(self) -> list[TuneTrial]:
        """Every trial the plan needs given the losses told so far, in a fixed order."""
        out: list[TuneTrial] = []
        peaks, scored = self._grid()
        for j in sorted(peaks):
            trunk, cool = self.first_rung(j)
            out.append(trunk)
            if not self._diverged(trunk.name):
                out.append(cool)
        if not scored:
            return out
        scores = self._scores(peaks)
        assert scores is not None
        kept = survivors(scores, self.plan.keep)
        for j in kept:
            trunk, final, long = self.second_rung(j)
            out.append(trunk)
            if not self._diverged(trunk.name):
                out.append(final)
            out.append(long)
        if not all(t.name in self._told for t in out):
            return out
        for option, seed in self._confirmations(kept):
            out.append(self._confirm_trial(option, seed, kept))
        return out

    # ------------------------------------------------------------------------------------------ analysis

    def _chains(self, j: int) -> list[Chain]:
        """The observed runs at peak ``j``: trunk (to 0.8 N where it got there), its cool-down branches."""
        r, lr = self.rungs, self.peak_lr(j)
        trunk1, cool = self.first_rung(j)
        trunk2, final, long = self.second_rung(j)
        pieces = {"trunk": [trunk1, trunk2], f"cooldown@{r.first}": [trunk1, cool],
                  f"final@{r.second}": [trunk1, trunk2, final], f"linear@{r.first}": [trunk1, long]}
        out = []
        for label, chain in pieces.items():
            told = [t for t in chain if t.name in self._told]
            if not told:
                continue
            if label != "trunk" and len(told) < len(chain):
                continue
            if label == "trunk" and told[0] is not trunk1:
                continue
            points: dict[int, float] = {}
            for t in told:
                points.update(self._told[t.name])
            stop = told[-1].stop
            steps = tuple(s for s in sorted(points) if s <= stop)
            out.append(Chain(label=label, lrs=lr * lr_factors(told[-1].schedule, r.horizon)[:stop], steps=steps,
                             losses=tuple(points[s] for s in steps)))
        return out

    def _same_run(self, spec: str, other: str) -> bool:
        n = self.rungs.horizon
        return bool(np.array_equal(lr_factors(spec, n), lr_factors(other, n)))

    def _label(self, spec: str) -> str:
        """The candidate spec that gives the same LRs as ``spec`` (e.g. ``wsd(...)`` for the final cool-down), else
        ``spec`` itself."""
        return next((c for c in self.config.schedules or () if self._same_run(c, spec)), spec)

    def _options(self, kept: list[int]) -> tuple[list[Option], Option | None]:
        """Every candidate at its chosen peak, ranked, and the best measured full run (None if all diverged)."""
        n = self.rungs.horizon
        measured: dict[tuple[str, int], float] = {}  # (schedule label, peak) -> final loss of the full run
        for j in kept:
            _, final, long = self.second_rung(j)
            for spec, trial in zip(self._measured_specs, (final, long)):
                loss = self.end_loss(trial.name) if trial.name in self._told else math.inf
                measured[(self._label(spec), j)] = loss
        for j in kept:
            if j not in self._fits:
                self._fits[j] = fit_peak(self.peak_lr(j), self._chains(j), law=self.config.law)
        candidates = list(self.config.schedules or ())
        for spec in self._measured_specs:
            if self._label(spec) not in candidates:
                candidates.append(self._label(spec))
        options = []
        for spec in candidates:
            points: list[tuple[float, Estimate]] = []
            for j in kept:
                pred = predict_final(self._fits[j], spec, n)
                if (spec, j) in measured:
                    m = measured[(spec, j)]
                    width = pred.half_width if pred is not None else 0.0
                    points.append((self.peak_lr(j), Estimate(loss=m, lo=m - width, hi=m + width, measured=True)))
                elif pred is not None:
                    points.append((self.peak_lr(j), pred))
            if not points:
                continue
            lr, est, how = interpolate_peak(points)
            if est.measured:
                how = "measured"
            options.append(Option(schedule=spec, lr=lr, estimate=est, how=how, at_peaks=tuple(points)))
        ranked = rank(options)
        finite = {k: m for k, m in measured.items() if math.isfinite(m)}
        best = None
        if finite:
            spec, jb = min(finite, key=lambda k: (finite[k], k[1], k[0]))
            mine = next(o for o in options if o.schedule == spec)
            point = next(e for lr, e in mine.at_peaks if lr == self.peak_lr(jb))
            best = Option(schedule=spec, lr=self.peak_lr(jb), estimate=point, how="measured", at_peaks=mine.at_peaks)
        return ranked, best

    def _confirmations(self, kept: list[int]) -> list[tuple[Option, int]]:
        """(option, seed) pairs of the confirmation runs, most important first, within the budget."""
        if self._confirm is None:
            ranked, best = self._options(kept)
            chosen = choose_confirm(ranked, best, self.plan.confirm)
            self._confirm = [(o.schedule, o.lr) for o in chosen]
        out = []
        left = (self.config.budget or 0) - self._committed(kept)
        for seed_i in range(self.plan.seeds):
            for spec, lr in self._confirm:
                seed = self.config.seed + seed_i
                opt = Option(schedule=spec, lr=lr, estimate=Estimate(loss=math.nan, lo=math.nan, hi=math.nan),
                             how="")
                if self._measured_name(opt, seed, kept) is not None:
                    continue
                cost = self._confirm_trial(opt, seed, kept).updates
                if cost > left:
                    continue
                left -= cost
                out.append((opt, seed))
        return out

    def _committed(self, kept: list[int]) -> int:
        """Updates of the first two rungs as planned (every trial of them, told or not)."""
        peaks, _ = self._grid()
        total = 0
        for j in peaks:
            trunk, cool = self.first_rung(j)
            total += trunk.updates + (0 if self._diverged(trunk.name) else cool.updates)
        for j in kept:
            trunk, final, long = self.second_rung(j)
            total += trunk.updates + long.updates + (0 if self._diverged(trunk.name) else final.updates)
        return total

    def _measured_name(self, option: Option, seed: int, kept: list[int]) -> str | None:
        """The trial whose chain is a full run of ``option`` at ``seed`` already (a second-rung final), if any."""
        if seed != self.config.seed:
            return None
        for j in kept:
            if not math.isclose(self.peak_lr(j), option.lr, rel_tol=1e-12):
                continue
            _, final, long = self.second_rung(j)
            for spec, trial in zip(self._measured_specs, (final, long)):
                if self._same_run(option.schedule, spec):
                    return trial.name
        return None

    def _confirm_trial(self, option: Option, seed: int, kept: list[int]) -> TuneTrial:
        """A full run of ``option`` at ``seed``; on the trunks' seed at a trunk's peak it branches from the latest
        trunk checkpoint whose LRs it shares bit for bit."""
        n = self.rungs.horizon
        spec = option.schedule
        start, parent = 0, None
        if seed == self.config.seed:
            peaks, _ = self._grid()
            mine = lr_factors(spec, n)
            for j in peaks:
                if not math.isclose(self.peak_lr(j), option.lr, rel_tol=1e-12):
                    continue
                trunks = [self.first_rung(j)[0]] + ([self.second_rung(j)[0]] if j in kept else [])
                for t in trunks:
                    if t.name in self._told and not self._diverged(t.name) and t.stop > start and np.array_equal(
                            mine[: t.stop], lr_factors(t.schedule, n)[: t.stop]):
                        start, parent = t.stop, t.name
        index = (self.config.schedules or ()).index(spec) if spec in (self.config.schedules or ()) else 99
        slug = re.sub(r"[^a-z0-9]+", "_", spec.lower()).strip("_")[:24]
        name = f"confirm-c{index:02d}-{slug}-lr{option.lr:.4g}-s{seed}"
        return self._trial("confirm", name, spec, float(option.lr), seed, start, n, parent, False)

    # --------------------------------------------------------------------------------------------- result

    def result(self) -> TuneResult:
        """The recommendation (`TuneResult`); `LrlabError` until the tuner is `finished`."""
        if not self.finished:
            waiting = [t.name for t in self._wanted() if t.name not in self._told]
            raise LrlabError(f"tune is not finished: {len(waiting)} trials to run or tell (next: {waiting[0]})")
        peaks, _ = self._grid()
        scores = self._scores(peaks) or {}
        kept = survivors(scores, self.plan.keep)
        ranked, best = self._options(kept)
        assert self._confirm is not None
        confirmed = []
        for spec, lr in self._confirm:
            runs: dict[int, float] = {}
            for seed_i in range(self.plan.seeds):
                seed = self.config.seed + seed_i
                probe = Option(schedule=spec, lr=lr, estimate=Estimate(loss=math.nan, lo=math.nan, hi=math.nan),
                               how="")
                name = self._measured_name(probe, seed, kept) or self._confirm_trial(probe, seed, kept).name
                if name in self._told:
                    runs[seed] = self.end_loss(name)
            base = next((o for o in ranked if o.schedule == spec and math.isclose(o.lr, lr, rel_tol=1e-12)), None)
            if base is None and best is not None and best.schedule == spec and math.isclose(best.lr, lr,
                                                                                              rel_tol=1e-12):
                base = best
            if base is None:
                base = next(o for o in ranked if o.schedule == spec)
                base = dataclasses.replace(base, lr=lr)
            confirmed.append(dataclasses.replace(base, measured=runs))
        pick = final_pick(confirmed)
        return TuneResult.build(tuner=self, scores=scores, kept=kept, ranked=ranked, measured_best=best,
                                confirmed=confirmed, pick=pick, fits=[self._fits[j] for j in kept if j in self._fits])

    # ------------------------------------------------------------------------------------------ persistence

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state: config, trials handed out, losses told and the confirmation decided."""
        return {"format": FORMAT, "config": self.config.to_dict(),
                "asked": [t.to_dict() for t in self._asked.values()],
                "told": {k: [[s, v if math.isfinite(v) else None] for s, v in r.items()]
                         for k, r in self._told.items()},
                "confirm": None if self._confirm is None else [[s, lr] for s, lr in self._confirm]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Tuner:
        """A tuner in the state `to_dict` saved (it continues exactly where that one was)."""
        if d.get("format") != FORMAT:
            raise LrlabError(f"not a saved lrlab tuner (format {d.get('format')!r}, expected {FORMAT!r})")
        tuner = cls(TuneConfig.from_dict(d["config"]))
        for t in d["asked"]:
            trial = TuneTrial(**t)
            tuner._asked[trial.name] = trial
        # a non-finite loss (divergence) is written as null: standard JSON has no infinity
        tuner._told = {k: {int(s): math.inf if v is None else float(v) for s, v in r} for k, r in d["told"].items()}
        if d.get("confirm") is not None:
            tuner._confirm = [(str(s), float(lr)) for s, lr in d["confirm"]]
        return tuner

    def save(self, path: str | Path) -> None:
        """Write `to_dict` to ``path`` as JSON, atomically."""
        from lrlab.files import write_json

        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> Tuner:
        """The tuner `save` wrote to ``path``."""
        from lrlab.files import read_json

        p = Path(path)
        if not p.is_file():
            raise LrlabError(f"no saved tuner at {str(p)!r}")
        return cls.from_dict(read_json(p, what="saved tuner"))
