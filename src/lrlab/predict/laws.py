"""Loss-curve laws: the loss after ``s`` updates as a function of the LR schedule so far. One formula each.

Notation (per curve): ``eta[u]`` is the LR of update ``u`` (0-based), in units of the fit's reference LR (the
peak), and an evaluation at step ``s`` sees updates ``0 .. s-1``. ``w`` is the warm-up's end: the first update
at the peak of the schedule's initial non-decreasing stretch (0 without a warm-up), so ``eta[w]`` is the peak.

- area ``S(s) = sum_{u<s} eta[u]``: the forward area ``S1 + S_W`` (warm-up included, as the papers' ``S_W``);
- drop ``d_k = eta[k-1] - eta[k]`` for ``w < k < s`` (negative where the LR rises: restarts);
- ``S_k(s) = sum_{k<=u<s} eta[u]``, the area since update ``k``.

Start-up (an lrlab extension, in every law): a run that starts at its peak without a warm-up ("cold") pays an
early-instability cost that none of the published laws models, and that lasts: on `lm` it shrinks about as the
power-law term does. Every law therefore multiplies its power-law amplitude ``A`` by a fitted factor ``K`` on cold
curves (``A * K * S(s)^(-alpha)``; ``K = 1`` on warmed-up ones). ``K`` is identified only when the fit holds both
kinds: `lrlab.predict.fit` then fits it alone on the cold curves, after the law on the warmed-up ones (so a short,
steep probe cannot bend the law of the warmed-up schedules), and fixes it at 1 otherwise. The design's *start-up
probe* (a short run without a warm-up, `lrlab.predict.design_runs`) supplies the cold curve cheaply.

Laws:

- ``s1`` (baseline): ``L(s) = L0 + A * S(s)^(-alpha)``.
- ``multipower`` (Luo et al. 2025, arXiv 2503.12811):
  ``L(s) = L0 + A * S(s)^(-alpha) - B * sum_k d_k * G(eta[k]^(-gamma) * S_k(s))``, ``G(x) = 1 - (C*x + 1)^(-beta)``.
- ``momentum`` (Tissue et al. 2024, arXiv 2408.11029): ``L(s) = L0 + A * S(s)^(-alpha) - C * S2(s)`` with
  ``S2 = sum_{i<s} m_i``, ``m_i = lam * m_{i-1} + d_i``, summed in closed form:
  ``S2(s) = sum_k d_k * (1 - lam^(s-k)) / (1 - lam)``. ``lam`` is fitted (as ``tau = 1 / (1 - lam)`` updates)
  unless `lrlab.predict.fit` is given it fixed (the paper's 0.999).

Parameters are in the fit's LR unit (`FittedLaw.lr_unit`): rescaling every LR by ``c`` only rescales ``A``, ``B``,
``C``, so the laws do not care which unit, but their fitted values do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from lrlab.errors import LrlabError

LAW_NAMES = ("multipower", "momentum", "s1")


def warmup_end(lr: np.ndarray) -> int:
    """``w``: the first update at the maximum of the LR's initial non-decreasing stretch (0: no warm-up)."""
    if lr.size < 2:
        return 0
    falls = np.flatnonzero(np.diff(lr) < 0)
    stop = int(falls[0]) + 1 if falls.size else lr.size
    return int(np.argmax(lr[:stop]))


@dataclass(frozen=True, eq=False)
class Features:
    """What every law needs of one LR sequence at its evaluation steps (computed once per curve).

    Attributes:
        steps: updates done at each evaluation (> 0).
        area: ``S(s)`` at each evaluation.
        drop: ``d_k`` for the updates ``k`` after the warm-up where the LR changes.
        eta: ``eta[k]`` at those updates.
        since: ``S_k(s)``, one row per evaluation, one column per ``k`` (0 where ``k >= s``).
        lag: ``s - k`` (0 where ``k >= s``).
        cold: the sequence has no warm-up (it starts at its peak): the law's ``A`` is scaled by ``K`` for it.
    """

    steps: np.ndarray
    area: np.ndarray
    drop: np.ndarray
    eta: np.ndarray
    since: np.ndarray
    lag: np.ndarray
    cold: bool = False


def is_cold(lr: np.ndarray) -> bool:
    """The LR sequence starts at its peak (no warm-up): the start-up factor ``K`` applies to it."""
    return bool(lr.size > 1 and warmup_end(lr) == 0)


def features(lr: np.ndarray, steps: np.ndarray) -> Features:
    """`Features` of the LR sequence ``lr`` (one value per update, in the law's LR unit) at ``steps`` (> 0,
    <= len(lr))."""
    lr = np.asarray(lr, dtype=np.float64)
    steps = np.asarray(steps, dtype=np.int64)
    cum = np.concatenate([[0.0], np.cumsum(lr)])
    w = warmup_end(lr)
    gap = np.zeros_like(lr)
    gap[1:] = lr[:-1] - lr[1:]
    gap[: w + 1] = 0.0
    ks = np.flatnonzero(gap)
    ks = ks[ks < (steps.max() if steps.size else 0)]
    active = ks[None, :] < steps[:, None]
    since = np.where(active, cum[steps][:, None] - cum[ks][None, :], 0.0)
    lag = np.where(active, steps[:, None] - ks[None, :], 0)
    return Features(steps=steps, area=cum[steps], drop=gap[ks], eta=lr[ks], since=since,
                    lag=lag.astype(np.float64), cold=is_cold(lr))


@dataclass(frozen=True)
class Param:
    """One fitted parameter: its bounds and whether the fit works on its logarithm."""

    name: str
    lo: float
    hi: float
    log: bool = False


@dataclass(frozen=True)
class Law:
    """A loss-curve law: its name, parameters and formula (`loss`)."""

    name: str
    params: tuple[Param, ...]
    #: the law has an annealing term, which only curves whose LR falls after the warm-up can identify
    anneals: bool
    description: str

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def loss(self, p: Mapping[str, float], f: Features) -> np.ndarray:
        """The law's loss at ``f.steps`` with parameters ``p`` (name -> value)."""
        return self.loss_and_grad(p, f, grad=False)[0]

    def loss_and_grad(self, p: Mapping[str, float], f: Features, *,
                      grad: bool = True) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The loss at ``f.steps`` and, with ``grad``, its partial derivative by each parameter (name -> array)."""
        area = np.maximum(f.area, 1e-12)
        power = np.power(area, -p["alpha"])
        k = p.get("K", 1.0) if f.cold else 1.0
        amp = p["A"] * k
        value = p["L0"] + amp * power
        d: dict[str, np.ndarray] = {}
        if grad:
            d = {"L0": np.ones_like(area), "A": k * power, "alpha": -amp * power * np.log(area),
                 "K": p["A"] * power if f.cold else np.zeros_like(area)}
        if self.name == "s1":
            return value, d
        empty = f.drop.size == 0
        if self.name == "multipower":
            if empty:
                return value, {**d, **{n: np.zeros_like(area) for n in ("B", "C", "beta", "gamma")}} if grad else d
            eta = np.maximum(f.eta, 1e-12)[None, :]
            x = np.power(eta, -p["gamma"]) * f.since
            base = p["C"] * x + 1.0
            q = np.power(base, -p["beta"])
            value = value - p["B"] * ((1.0 - q) @ f.drop)
            if grad:
                dq = p["beta"] * q / base  # -d(q)/d(C x)
                d["B"] = -((1.0 - q) @ f.drop)
                d["C"] = -p["B"] * ((dq * x) @ f.drop)
                d["beta"] = -p["B"] * ((q * np.log(base)) @ f.drop)
                d["gamma"] = p["B"] * ((dq * p["C"] * x * np.log(eta)) @ f.drop)
            return value, d
        if self.name == "momentum":
            if empty:
                return value, {**d, "C": np.zeros_like(area), "tau": np.zeros_like(area)} if grad else d
            tau = p["tau"]
            log_lam = np.log1p(-1.0 / tau) if tau > 1.0 else -np.inf
            lam_lag = np.exp(f.lag * log_lam) if np.isfinite(log_lam) else (f.lag == 0).astype(np.float64)
            weight = tau * (1.0 - lam_lag)  # (1 - lam^lag) / (1 - lam): lam^lag = 1 where lag = 0
            s2 = weight @ f.drop
            value = value - p["C"] * s2
            if grad:
                lam = 1.0 - 1.0 / tau
                dw = 1.0 - lam_lag - (f.lag * lam_lag / (lam * tau) if lam > 0 else 0.0)
                d["C"] = -s2
                d["tau"] = -p["C"] * (dw @ f.drop)
            return value, d
        raise LrlabError(f"law must be one of {', '.join(LAW_NAMES)}; got {self.name!r}")  # pragma: no cover


#: the start-up factor's bounds: a cold start may cost (K > 1) or, rarely, gain (K < 1; `vision` early on)
_K = Param("K", 0.05, 20.0, log=True)
_BASE = (Param("L0", 0.0, np.inf), Param("A", 1e-8, 1e8, log=True), Param("alpha", 1e-3, 3.0))

LAWS: dict[str, Law] = {
    "multipower": Law("multipower", (*_BASE, Param("B", 1e-8, 1e6, log=True), Param("C", 1e-8, 1e6, log=True),
                                     Param("beta", 1e-3, 5.0), Param("gamma", 0.0, 2.0), _K), anneals=True,
                      description="multi-power law (Luo et al. 2025)"),
    "momentum": Law("momentum", (*_BASE, Param("C", 1e-12, 1e3, log=True), Param("tau", 1.0, 1e7, log=True), _K),
                    anneals=True, description="momentum law (Tissue et al. 2024), lam = 1 - 1/tau"),
    "s1": Law("s1", (*_BASE, _K), anneals=False, description="S1-only power law (baseline)"),
}


def get_law(name: str) -> Law:
    """The law called ``name`` (``multipower`` | ``momentum`` | ``s1``); `LrlabError` for another name."""
    if name not in LAWS:
        raise LrlabError(f"law must be one of {', '.join(LAW_NAMES)}; got {name!r}")
    return LAWS[name]
