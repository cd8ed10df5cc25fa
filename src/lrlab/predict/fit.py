"""Fit a loss-curve law to recorded curves, and predict any schedule's curve with it.

The fit minimises a Huber loss of the log-loss residuals, ``log(loss) - log(law)`` (``huber`` is the Huber
threshold), with scipy's bounded trust-region least squares from several starts (the best of a small grid from
the S1-only fit), over the evaluations after each curve's warm-up (the laws describe the loss after it; step 0 has
no area yet). Evaluations that repeat another curve's — the shared prefix of a branched run is recorded in every
branch — count once. With runs both with and without a warm-up, the start-up factor ``K`` is fitted in a second
stage, on the cold runs alone with the law from the warmed-up ones held (`lrlab.predict.laws`).

Uncertainty is a block bootstrap: each replicate draws seeds with replacement (where the curves have several; a
seed's curves stay together, so paired runs stay paired), then evaluations with replacement within each curve,
and refits from the best fit. `FittedLaw.predict`'s interval is the spread of the replicates' predictions.

Fit quality is measured on data the fit did not see (`FitQuality`): the last ``holdout`` share of each curve's
evaluations, and each schedule left out in turn, where the rest still identify the law.

scipy is imported when a fit runs, so `import lrlab.predict` costs numpy only.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lrlab.checks import check
from lrlab.errors import LrlabError
from lrlab.predict.curves import Curve, lr_sequence
from lrlab.predict.laws import Features, Law, features, get_law, warmup_end
from lrlab.predict.support import FitScope, curve_notes, schedule_notes

#: central interval of the bootstrap predictions that `Prediction.lower`/`upper` span
LEVEL = 0.9


@dataclass(frozen=True, kw_only=True)
class _Data:
    """The fit's view of the curves: per curve its features (in the fit's LR unit) and log losses."""

    feats: tuple[Features, ...]
    logy: tuple[np.ndarray, ...]
    seeds: tuple[Any, ...]
    groups: tuple[str, ...]

    @property
    def n(self) -> int:
        return sum(y.size for y in self.logy)

    @property
    def starts(self) -> frozenset[bool]:
        """The kinds of start among the curves: True for a cold one (no warm-up), False for a warmed-up one."""
        return frozenset(f.cold for f in self.feats)

    def of_start(self, cold: bool) -> _Data:
        """The curves that start cold (no warm-up), or those that do not."""
        ix = [i for i, f in enumerate(self.feats) if f.cold == cold]
        return _Data(feats=tuple(self.feats[i] for i in ix), logy=tuple(self.logy[i] for i in ix),
                     seeds=tuple(self.seeds[i] for i in ix), groups=tuple(self.groups[i] for i in ix))


def _prepare(curves: Sequence[Curve], lr_unit: float, min_step: int,
             keep: Sequence[np.ndarray] | None = None) -> _Data:
    """Features of the evaluations after the warm-up (and >= min_step), each distinct evaluation once."""
    seen: set[bytes] = set()
    feats, logy, seeds, groups = [], [], [], []
    for i, c in enumerate(curves):
        lr = c.lr / lr_unit
        first = max(warmup_end(c.lr) + 1, min_step, 1)
        mask = c.steps >= first
        if keep is not None:
            mask &= keep[i]
        idx = []
        for j in np.flatnonzero(mask):
            s = int(c.steps[j])
            key = hashlib.sha1(c.lr[:s].tobytes() + np.float64(c.loss[j]).tobytes()
                               + repr(c.seed).encode()).digest()
            if key in seen:
                continue
            seen.add(key)
            idx.append(j)
        if not idx:
            continue
        ix = np.asarray(idx)
        feats.append(features(lr, c.steps[ix]))
        logy.append(np.log(c.loss[ix]))
        seeds.append(c.seed)
        groups.append(c.label)
    return _Data(feats=tuple(feats), logy=tuple(logy), seeds=tuple(seeds), groups=tuple(groups))


def _identifiable(law: Law, data: _Data, free: Sequence[str]) -> str | None:
    """Why ``data`` cannot identify ``law``'s free parameters, or None."""
    if data.n < len(free) + 2:
        return (f"{data.n} evaluations after the warm-up for {len(free)} free parameters; the {law.name} law needs "
                f"at least {len(free) + 2}")
    areas = np.unique(np.concatenate([f.area for f in data.feats]).round(9))
    if areas.size < 3:
        return f"only {areas.size} distinct LR areas among the evaluations; the power-law term needs 3 or more"
    if "K" in free:
        if len(data.starts) < 2:
            return "the start-up factor K needs runs both with and without a warm-up among the fitted evaluations"
        return _identifiable(law, data.of_start(cold=False), [n for n in free if n != "K"])
    if law.anneals and any(n in free for n in ("B", "C")):
        seen = any(bool(np.any((f.lag > 0) & (f.drop[None, :] > 0))) for f in data.feats)
        if not seen:
            return (f"the {law.name} law has an annealing term, and no curve's LR decreases after its warm-up "
                    "before an evaluation (e.g. only constant-LR runs); add a run with a cool-down "
                    "(lrlab.predict.design_runs says which), or fit law='s1'")
    return None


def _pack(law: Law, free: Sequence[str], p: Mapping[str, float]) -> np.ndarray:
    spec = {q.name: q for q in law.params}
    return np.array([np.log(p[n]) if spec[n].log else p[n] for n in free], dtype=np.float64)


def _unpack(law: Law, free: Sequence[str], x: np.ndarray, fixed: Mapping[str, float]) -> dict[str, float]:
    spec = {q.name: q for q in law.params}
    p = dict(fixed)
    for n, v in zip(free, x):
        p[n] = float(np.exp(v)) if spec[n].log else float(v)
    return p


def _bounds(law: Law, free: Sequence[str], data: _Data) -> tuple[np.ndarray, np.ndarray]:
    spec = {q.name: q for q in law.params}
    lo, hi = [], []
    for n in free:
        q = spec[n]
        a, b = q.lo, q.hi
        if n == "L0":
            b = float(np.exp(max(y.max() for y in data.logy)))
        lo.append(np.log(a) if q.log else a)
        hi.append(np.log(b) if q.log else b)
    return np.asarray(lo), np.asarray(hi)


def _residuals(law: Law, p: Mapping[str, float], data: _Data) -> np.ndarray:
    out = []
    for f, y in zip(data.feats, data.logy):
        pred = law.loss(p, f)
        out.append(y - np.log(np.maximum(pred, 1e-6)) - np.where(pred > 1e-6, 0.0, 1e-6 - pred))
    return np.concatenate(out)


def _starts(law: Law, data: _Data, fixed: Mapping[str, float]) -> list[dict[str, float]]:
    """Starting points: the S1 term from a small grid (A solved in closed form), the rest from a grid."""
    area = np.concatenate([f.area for f in data.feats])
    y = np.exp(np.concatenate(data.logy))
    base = []
    for frac in (0.3, 0.6, 0.85):
        for alpha in (0.15, 0.4, 0.8):
            l0 = fixed.get("L0", frac * float(y.min()))
            a = fixed.get("alpha", alpha)
            amp = float(np.exp(np.mean(np.log(np.maximum(y - l0, 1e-9)) + a * np.log(area))))
            p = {"L0": l0, "A": fixed.get("A", amp), "alpha": a}
            r = np.log(y) - np.log(p["L0"] + p["A"] * area ** (-p["alpha"]))
            base.append((float(np.sum(r * r)), p))
    base.sort(key=lambda t: t[0])
    heads = [p for _, p in base[:3]]
    spread = float(np.ptp(y)) or 0.1
    if law.name == "s1":
        tails: list[dict[str, float]] = [{}]
    elif law.name == "multipower":
        tails = [{"B": b * spread, "C": c, "beta": 0.5, "gamma": 0.5}
                 for b in (0.1, 0.5) for c in (0.01, 0.3, 3.0)]
    else:
        tails = [{"C": c * spread, "tau": tau} for c in (1e-3, 1e-2) for tau in (30.0, 300.0, 3000.0)]
    out = []
    for h in heads[: 3 if law.name == "s1" else 2]:
        for t in tails:
            p = {**h, **t, **fixed}
            out.append(p)
    return out


def _jacobian(law: Law, free: Sequence[str], p: Mapping[str, float], data: _Data) -> np.ndarray:
    """d(residual)/d(packed parameter): residual = log y - log law, so -(d law / d q) / law (x q for a log q)."""
    spec = {q.name: q for q in law.params}
    rows = []
    for f in data.feats:
        value, grad = law.loss_and_grad(p, f)
        inv = -1.0 / np.maximum(value, 1e-6)
        rows.append(np.stack([inv * grad[n] * (p[n] if spec[n].log else 1.0) for n in free], axis=1))
    return np.concatenate(rows)


def _solve_staged(law: Law, data: _Data, free: Sequence[str], fixed: Mapping[str, float], huber: float,
                  max_nfev: int, starts: list[dict[str, float]] | None = None) -> dict[str, float]:
    """The fit: with the start-up factor ``K`` free, in two stages — the law on the warmed-up curves, then ``K``
    alone on the cold ones with the rest held — so that a short, steep cold probe cannot bend the law the
    warmed-up schedules are predicted with; otherwise in one."""
    if "K" not in free:
        return _solve(law, data, free, fixed, starts or _starts(law, data, fixed), huber, max_nfev)[0]
    warm, cold = data.of_start(cold=False), data.of_start(cold=True)
    rest = [n for n in free if n != "K"]
    held = {**fixed, "K": 1.0}
    p, _ = _solve(law, warm, rest, held, starts or _starts(law, warm, held), huber, max_nfev)
    k0 = float(starts[0].get("K", 1.0)) if starts else 1.0
    q, _ = _solve(law, cold, ["K"], {n: v for n, v in p.items() if n != "K"}, [{**p, "K": k0}], huber, max_nfev)
    return q


def _solve(law: Law, data: _Data, free: Sequence[str], fixed: Mapping[str, float], starts: list[dict[str, float]],
           huber: float, max_nfev: int) -> tuple[dict[str, float], float]:
    """Least squares (Huber loss) from each start for a few iterations, then the best two to convergence."""
    from scipy.optimize import least_squares

    lo, hi = _bounds(law, free, data)

    def run(x0: np.ndarray, nfev: int) -> Any:
        x0 = np.clip(x0, lo + 1e-9 * (hi - lo), hi - 1e-9 * (hi - lo))
        try:
            return least_squares(lambda x: _residuals(law, _unpack(law, free, x, fixed), data), x0,
                                 jac=lambda x: _jacobian(law, free, _unpack(law, free, x, fixed), data),
                                 bounds=(lo, hi), loss="huber", f_scale=huber, x_scale="jac", max_nfev=nfev)
        except (ValueError, FloatingPointError):  # pragma: no cover - a start scipy refuses
            return None

    firsts = [r for r in (run(_pack(law, free, s), 25 if len(starts) > 2 else max_nfev) for s in starts)
              if r is not None and np.isfinite(r.cost)]
    firsts.sort(key=lambda r: r.cost)
    finals = [r for r in (run(r.x, max_nfev) for r in firsts[:2]) if r is not None and np.isfinite(r.cost)]
    if not finals:
        raise LrlabError(f"the {law.name} law could not be fitted to these curves (no start converged)")
    best = min(finals, key=lambda r: r.cost)
    return _unpack(law, free, best.x, fixed), float(best.cost)


@dataclass(frozen=True, kw_only=True)
class HeldOut:
    """Error of a fit on evaluations it did not see.

    Attributes:
        what: ``last 20% of each curve`` or ``schedule LABEL left out``.
        mae: mean absolute error of the loss (nats), over the held-out evaluations; nan if not measurable.
        final_error: predicted minus observed loss at the last held-out evaluation (of the left-out schedule;
            the mean over curves for the tail hold-out).
        n: held-out evaluations.
        note: why it could not be measured, if it could not.
    """

    what: str
    mae: float
    final_error: float
    n: int
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class FitQuality:
    """How well the law fits: in-sample, and on held-out evaluations.

    Attributes:
        mae: mean absolute error of the loss over the fitted evaluations (nats).
        sigma: robust spread of the log-loss residuals (1.4826 x median absolute deviation), ~ the relative noise
            of one evaluation.
        holdout: the fit on the first part of each curve, scored on the rest.
        leave_one_out: one entry per schedule left out (empty with a single schedule).
    """

    mae: float
    sigma: float
    holdout: HeldOut | None = None
    leave_one_out: tuple[HeldOut, ...] = ()


@dataclass(frozen=True, kw_only=True, eq=False)
class Prediction:
    """A schedule's predicted loss curve.

    Attributes:
        label: the schedule (spec text, or ``per-update LRs``).
        law: the law's name.
        steps: updates done at each predicted point.
        loss: predicted loss at ``steps`` (the best fit).
        lower, upper: the central `LEVEL` interval of the bootstrap replicates' predictions (uncertainty of the
            law's parameters given the fitted curves; it does not include one run's seed-to-seed noise, which
            `FitQuality.sigma` measures).
        total: updates of the predicted run; peak_lr: its largest LR.
        notes: where the schedule is outside what the law was fitted on or derived for.
        held_out_error: root mean square of the final-loss errors on the fit's left-out schedules
            (`FitQuality.leave_one_out`; nan when not measured): the law's own error on a schedule it did not
            see, which the bootstrap interval does not contain. Differences between schedules below it are not
            resolved.
    """

    label: str
    law: str
    steps: np.ndarray
    loss: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    total: int
    peak_lr: float
    notes: tuple[str, ...] = ()
    held_out_error: float = float("nan")

    @property
    def final(self) -> float:
        """Predicted loss at the last of ``steps``."""
        return float(self.loss[-1])

    @property
    def final_interval(self) -> tuple[float, float]:
        return float(self.lower[-1]), float(self.upper[-1])

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "law": self.law, "total": self.total, "peak_lr": self.peak_lr,
                "final": self.final, "final_interval": list(self.final_interval), "level": LEVEL,
                "steps": self.steps.tolist(), "loss": self.loss.tolist(), "lower": self.lower.tolist(),
                "upper": self.upper.tolist(), "notes": list(self.notes), "held_out_error": self.held_out_error}


@dataclass(frozen=True, kw_only=True, eq=False)
class FittedLaw:
    """A law fitted to curves. `predict` gives any schedule's curve, at any horizon.

    Attributes:
        law: ``multipower`` | ``momentum`` | ``s1``.
        params: name -> fitted value (in the LR unit ``lr_unit``; ``tau`` in updates, ``lam = 1 - 1/tau``).
        fixed: the parameters that were held fixed.
        lr_unit: the LR the parameters are expressed in (the largest LR of the fitted curves).
        samples: bootstrap replicates of ``params`` (one dict each).
        quality: `FitQuality`.
        scope: what the curves covered (`lrlab.predict.support.FitScope`), for the notes of `predict`.
        n_curves, n_evals: curves and distinct evaluations fitted.
        notes: where the fitted curves themselves are outside the law's support.
    """

    law: str
    params: Mapping[str, float]
    fixed: Mapping[str, float]
    lr_unit: float
    samples: tuple[Mapping[str, float], ...]
    quality: FitQuality
    scope: FitScope
    n_curves: int
    n_evals: int
    notes: tuple[str, ...] = ()

    def predict(self, schedule: object, *, total: int | None = None, peak_lr: float | None = None,
                steps: Sequence[int] | np.ndarray | None = None, interval: bool = True) -> Prediction:
        """The predicted loss curve of ``schedule``.

        Args:
            schedule: spec text or `lrlab.Schedule` (factors of ``peak_lr``), or a per-update LR sequence.
            total: updates of the run (required for a spec or Schedule; any horizon).
            peak_lr: LR the schedule multiplies; None: the fitted curves' peak (``lr_unit``).
            steps: where to predict (updates done, 1 .. total); None: ~200 points ending at ``total``.
            interval: compute the bootstrap interval (False: ``lower == upper == loss``, faster).
        """
        from lrlab.schedule import Schedule

        is_schedule = isinstance(schedule, (str, Schedule))
        lr = lr_sequence(schedule, total=total, peak_lr=(peak_lr if peak_lr is not None else self.lr_unit)
                         if is_schedule else peak_lr)
        n = lr.size
        if steps is None:
            at = np.unique(np.linspace(0, n, 201).round().astype(np.int64))
            at = at[at > 0]
        else:
            at = np.asarray(steps)
            if at.ndim != 1 or at.size == 0 or np.any(at != np.round(at)) or np.any(np.diff(at) <= 0):
                raise LrlabError("steps must be a non-empty, strictly increasing sequence of whole numbers")
            at = at.astype(np.int64)
            if at[0] < 1 or at[-1] > n:
                raise LrlabError(f"steps must be in 1 .. {n} (the run's updates), got {int(at[0])} .. {int(at[-1])}")
        law = get_law(self.law)
        f = features(lr / self.lr_unit, at)
        loss = law.loss(self.params, f)
        lower = upper = loss
        if interval and self.samples:
            reps = np.stack([law.loss(s, f) for s in self.samples])
            lower = np.quantile(reps, (1 - LEVEL) / 2, axis=0)
            upper = np.quantile(reps, (1 + LEVEL) / 2, axis=0)
            lower, upper = np.minimum(lower, loss), np.maximum(upper, loss)
        label = str(schedule) if is_schedule else "per-update LRs"
        errors = [h.final_error for h in self.quality.leave_one_out if h.n and np.isfinite(h.final_error)]
        return Prediction(label=label, law=self.law, steps=at, loss=loss, lower=lower, upper=upper, total=n,
                          peak_lr=float(lr.max()), notes=tuple(schedule_notes(lr, self.scope)),
                          held_out_error=float(np.sqrt(np.mean(np.square(errors)))) if errors else float("nan"))

    def cold_start_cost(self, updates: int) -> float:
        """The loss a run at the fitted peak LR without a warm-up still pays after ``updates`` updates, against one
        with a warm-up of the same LR area: ``(K - 1) * A * updates^(-alpha)`` (0 when ``K`` was not fitted)."""
        updates = check.whole("updates", updates, minimum=1)
        p = self.params
        return float((p.get("K", 1.0) - 1.0) * p["A"] * updates ** (-p["alpha"]))

    def to_dict(self) -> dict[str, Any]:
        return {"law": self.law, "params": dict(self.params), "fixed": dict(self.fixed), "lr_unit": self.lr_unit,
                "n_curves": self.n_curves, "n_evals": self.n_evals, "n_bootstrap": len(self.samples),
                "quality": dataclasses.asdict(self.quality), "scope": dataclasses.asdict(self.scope),
                "notes": list(self.notes)}


def fit(curves: Sequence[Curve] | Curve, *, law: str = "multipower", fixed: Mapping[str, float] | None = None,
        huber: float = 1e-3, bootstrap: int = 40, holdout: float = 0.2, quality: bool = True, min_step: int = 0,
        seed: int = 0) -> FittedLaw:
    """Fit ``law`` to ``curves``.

    Args:
        curves: one or more `Curve` (e.g. from `load_runs`); several seeds of one schedule are welcome.
        law: ``multipower`` (default) | ``momentum`` | ``s1`` (the baseline without an annealing term).
        fixed: parameters to hold at a value instead of fitting, e.g. ``{"tau": 1000}`` (the momentum law's
            ``lam = 0.999``). Names: `lrlab.predict.LAWS[law].names`. The start-up factor ``K`` (see
            `lrlab.predict.laws`) is fitted when the curves hold runs both with and without a warm-up, and fixed
            at 1 otherwise; ``{"K": 1.0}`` turns it off.
        huber: Huber threshold on the log-loss residual (> 0); 1e-3 (the multi-power-law paper's) is nearly L1.
        bootstrap: bootstrap replicates for the intervals (>= 0; 0: none).
        holdout: share of each curve's last evaluations held out to score the fit, in [0, 0.5] (0: skip).
        quality: also score the fit on held-out data (`FitQuality`): one extra fit for the tail hold-out and one
            per schedule left out.
        min_step: ignore evaluations before this update (besides the warm-up, which is always left out).
        seed: the bootstrap's random seed.
    Returns:
        The `FittedLaw`. `LrlabError` when the curves cannot identify the law (too few evaluations, or an
        annealing law and no LR decrease), naming what is missing.
    """
    lw = get_law(law)
    fixed = dict(fixed or {})
    for k, v in fixed.items():
        if k not in lw.names:
            raise LrlabError(f"fixed names {k!r}, not a parameter of the {law} law; its parameters: "
                             f"{', '.join(lw.names)}")
        check.number(f"fixed[{k!r}]", v)
    huber = check.positive("huber", huber)
    bootstrap = check.whole("bootstrap", bootstrap, minimum=0)
    holdout = check.range("holdout", holdout, 0.0, 0.5)
    min_step = check.whole("min_step", min_step, minimum=0)
    if isinstance(curves, Curve):
        curves = [curves]
    curves = list(curves)
    if not curves:
        raise LrlabError("curves must hold at least one Curve to fit")
    for c in curves:
        if not isinstance(c, Curve):
            raise LrlabError(f"curves must be lrlab.predict.Curve values, got {type(c).__name__}")
    lr_unit = max(c.peak_lr for c in curves)
    if lr_unit <= 0:
        raise LrlabError("every curve's LR is 0; nothing to fit")
    data = _prepare(curves, lr_unit, min_step)
    if "K" not in fixed and len(data.starts) < 2:
        fixed["K"] = 1.0  # one kind of start only: nothing to scale (a cold-only fit's A is the cold one)
    free = [n for n in lw.names if n not in fixed]
    why = _identifiable(lw, data, free)
    if why:
        raise LrlabError(f"cannot fit the {law} law: {why}")
    params = _solve_staged(lw, data, free, fixed, huber, 400)
    resid = _residuals(lw, params, data)
    y = np.exp(np.concatenate(data.logy))
    mae = float(np.mean(np.abs(y - y * np.exp(-resid))))
    sigma = float(1.4826 * np.median(np.abs(resid - np.median(resid))))
    samples = _bootstrap(lw, data, free, fixed, params, huber, bootstrap, seed)
    hold: HeldOut | None = None
    loo: tuple[HeldOut, ...] = ()
    if quality:
        hold = _tail_holdout(lw, curves, lr_unit, min_step, free, fixed, huber, holdout) if holdout > 0 else None
        loo = _leave_one_out(lw, curves, lr_unit, min_step, free, fixed, huber)
    scope = FitScope.of(curves, data.starts)
    notes = tuple(n for c in curves for n in curve_notes(c))
    return FittedLaw(law=law, params=params, fixed=fixed, lr_unit=lr_unit, samples=samples,
                     quality=FitQuality(mae=mae, sigma=sigma, holdout=hold, leave_one_out=loo), scope=scope,
                     n_curves=len(curves), n_evals=data.n, notes=tuple(dict.fromkeys(notes)))


def _bootstrap(law: Law, data: _Data, free: Sequence[str], fixed: Mapping[str, float], best: Mapping[str, float],
               huber: float, n: int, seed: int) -> tuple[dict[str, float], ...]:
    if n == 0:
        return ()
    rng = np.random.default_rng(seed)
    seed_ids = sorted({repr(s) for s in data.seeds})
    out = []
    for _ in range(n):
        draw = rng.choice(len(seed_ids), size=len(seed_ids)) if len(seed_ids) > 1 else np.zeros(1, dtype=int)
        feats, logy, seeds, groups = [], [], [], []
        for d in draw:
            for f, y, s, g in zip(data.feats, data.logy, data.seeds, data.groups):
                if repr(s) != seed_ids[d]:
                    continue
                ix = np.sort(rng.integers(0, y.size, size=y.size))
                feats.append(dataclasses.replace(f, steps=f.steps[ix], area=f.area[ix], since=f.since[ix],
                                                 lag=f.lag[ix]))
                logy.append(y[ix])
                seeds.append(s)
                groups.append(g)
        rep = _Data(feats=tuple(feats), logy=tuple(logy), seeds=tuple(seeds), groups=tuple(groups))
        if _identifiable(law, rep, free):
            continue
        try:
            p = _solve_staged(law, rep, free, fixed, huber, 200, [dict(best)])
        except LrlabError:
            continue
        out.append(p)
    return tuple(out)


def _score(law: Law, p: Mapping[str, float], curves: Sequence[Curve], lr_unit: float,
           masks: Sequence[np.ndarray]) -> tuple[float, float, int]:
    errs, finals = [], []
    for c, m in zip(curves, masks):
        if not np.any(m):
            continue
        pred = law.loss(p, features(c.lr / lr_unit, c.steps[m]))
        e = pred - c.loss[m]
        errs.append(np.abs(e))
        finals.append(float(e[-1]))
    if not errs:
        return float("nan"), float("nan"), 0
    a = np.concatenate(errs)
    return float(a.mean()), float(np.mean(finals)), int(a.size)


def _tail_holdout(law: Law, curves: Sequence[Curve], lr_unit: float, min_step: int, free: Sequence[str],
                  fixed: Mapping[str, float], huber: float, share: float) -> HeldOut:
    what = f"last {share:.0%} of each curve's evaluations"
    keep, test = [], []
    for c in curves:
        first = max(warmup_end(c.lr) + 1, min_step, 1)
        post = np.flatnonzero(c.steps >= first)
        k = int(np.ceil(share * post.size))
        held = np.zeros(c.steps.size, dtype=bool)
        if k:
            held[post[-k:]] = True
        keep.append(~held)
        test.append(held)
    data = _prepare(curves, lr_unit, min_step, keep)
    why = _identifiable(law, data, free)
    if why:
        return HeldOut(what=what, mae=float("nan"), final_error=float("nan"), n=0, note=f"not measurable: {why}")
    p = _solve_staged(law, data, free, fixed, huber, 400)
    mae, final, n = _score(law, p, curves, lr_unit, test)
    return HeldOut(what=what, mae=mae, final_error=final, n=n)


def _leave_one_out(law: Law, curves: Sequence[Curve], lr_unit: float, min_step: int, free: Sequence[str],
                   fixed: Mapping[str, float], huber: float) -> tuple[HeldOut, ...]:
    labels = list(dict.fromkeys(c.label for c in curves))
    if len(labels) < 2:
        return ()
    out = []
    for label in labels:
        what = f"schedule {label} left out"
        rest = [c for c in curves if c.label != label]
        gone = [c for c in curves if c.label == label]
        data = _prepare(rest, lr_unit, min_step)
        why = _identifiable(law, data, free)
        if why:
            out.append(HeldOut(what=what, mae=float("nan"), final_error=float("nan"), n=0,
                               note=f"not measurable: {why}"))
            continue
        p = _solve_staged(law, data, free, fixed, huber, 400)
        masks = [c.steps >= max(warmup_end(c.lr) + 1, min_step, 1) for c in gone]
        mae, final, n = _score(law, p, gone, lr_unit, masks)
        out.append(HeldOut(what=what, mae=mae, final_error=final, n=n))
    return tuple(out)
