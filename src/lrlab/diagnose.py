"""Diagnoses of a training run from its recorded curves, each with a concrete advice and the numbers behind it.

`diagnose(curves)` is a pure function: it reads a `Curves` value (what `lrlab.Monitor` records, or what
`lrlab.monitor_files.load_curves` reads back) and returns `Finding`s sorted by step: divergence, warm-up and
later loss spikes, too slow, unstable validation, plateau, over-fitting, decay too early. NaN/inf in a loss is
data (a divergence); anywhere else but a gradient norm it raises `LrlabError` naming the field. Display is
separate (`format_findings`, the CLI). The rules, with their thresholds (`Thresholds`): docs/diagnose.md.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from lrlab.checks import check
from lrlab.errors import LrlabError

FloatArray = npt.NDArray[np.float64]

KINDS = ("divergence", "warmup_spike", "loss_spike", "too_slow", "unstable_val", "plateau", "overfitting",
         "decay_too_early")
SEVERITIES = ("error", "warning", "info")
#: which way each kind's advice moves the LR: "lower", "raise", or "" (it changes something else)
LR_DIRECTION = {"divergence": "lower", "warmup_spike": "lower", "loss_spike": "lower", "too_slow": "raise",
                "unstable_val": "", "plateau": "lower", "overfitting": "", "decay_too_early": ""}


# ------------------------------------------------------------------------------------------------ data


@dataclass(frozen=True, kw_only=True)
class Curves:
    """The recorded curves of one run.

    Args:
        step: update index (0-based) of each training record, strictly increasing.
        loss: training loss of each record; None where it was not measured (e.g. Hugging Face logs it every
            ``logging_steps``); NaN/inf where the run diverged.
        lr: the LR of every parameter group at each record (finite, >= 0), one tuple per record.
        grad_norm: gradient norm of each record, or None (not measured). May be NaN/inf. Empty: not recorded.
        eval_step: updates done at each evaluation, strictly increasing.
        val_loss: validation loss at each evaluation (NaN/inf where the run diverged).
        eval_metrics: further evaluation metrics, name -> one finite value per evaluation.
        total_steps: planned number of updates of the run, or None (then the last recorded step + 1).
    """

    step: tuple[int, ...] = ()
    loss: tuple[float | None, ...] = ()
    lr: tuple[tuple[float, ...], ...] = ()
    grad_norm: tuple[float | None, ...] = ()
    eval_step: tuple[int, ...] = ()
    val_loss: tuple[float, ...] = ()
    eval_metrics: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    total_steps: int | None = None

    def __post_init__(self) -> None:
        if self.total_steps is not None:  # 1e3 from a config file is 1000
            object.__setattr__(self, "total_steps", check.whole("curves.total_steps", self.total_steps, minimum=1))
        check_curves(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain lists and numbers (non-finite floats as the strings "nan", "inf", "-inf"), JSON-ready."""
        return {
            "step": list(self.step),
            "loss": [json_float(x) for x in self.loss],
            "lr": [list(g) for g in self.lr],
            "grad_norm": [json_float(x) for x in self.grad_norm],
            "eval_step": list(self.eval_step),
            "val_loss": [json_float(x) for x in self.val_loss],
            "eval_metrics": {k: list(v) for k, v in self.eval_metrics.items()},
            "total_steps": self.total_steps,
        }


def json_float(x: float | None) -> float | str | None:
    """`x` for JSON: None stays None, NaN/inf become "nan"/"inf"/"-inf" (JSON has no literal for them)."""
    if x is None:
        return None
    x = float(x)
    if math.isfinite(x):
        return x
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def parse_float(x: object, name: str) -> float | None:
    """Inverse of `json_float`: a number, "nan"/"inf"/"-inf", or None. Anything else raises naming `name`."""
    if x is None:
        return None
    if isinstance(x, str):
        text = x.strip().lower()
        if text in ("nan", "inf", "+inf", "-inf", "infinity", "-infinity"):
            return float(text)
        try:
            return float(text)
        except ValueError:
            raise LrlabError(f"{name} must be a number, 'nan', 'inf' or null, got {x!r}") from None
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise LrlabError(f"{name} must be a number or null, got {x!r}")
    return float(x)


def _is_int(x: object) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def check_curves(c: Curves) -> None:
    """Raise `LrlabError` naming the field when `c` is inconsistent or holds a NaN where NaN is not data."""
    n = len(c.step)
    for name in ("loss", "lr"):
        if len(getattr(c, name)) != n:
            raise LrlabError(f"curves.{name} has {len(getattr(c, name))} entries but curves.step has {n}")
    if c.grad_norm and len(c.grad_norm) != n:
        raise LrlabError(f"curves.grad_norm has {len(c.grad_norm)} entries but curves.step has {n} (or give none)")
    _check_steps("curves.step", c.step)
    if not _fast_lr_ok(c.lr):
        _check_lr_slowly(c)
    m = len(c.eval_step)
    if len(c.val_loss) != m:
        raise LrlabError(f"curves.val_loss has {len(c.val_loss)} entries but curves.eval_step has {m}")
    _check_steps("curves.eval_step", c.eval_step)
    for name, values in c.eval_metrics.items():
        if len(values) != m:
            raise LrlabError(f"curves.eval_metrics[{name!r}] has {len(values)} entries but curves.eval_step has {m}")
        for i, v in enumerate(values):
            if not math.isfinite(v):  # metrics other than losses must be finite
                check.number(f"curves.eval_metrics[{name!r}][{i}] (step {c.eval_step[i]})", v)


def _fast_lr_ok(lr: Sequence[Sequence[float]]) -> bool:
    """True when every record holds the same number (>= 1) of finite float LRs >= 0 (checked with NumPy)."""
    if not lr:
        return True
    try:
        a = np.asarray(lr)
    except ValueError:  # ragged: groups changed during the run
        return False
    return bool(a.dtype.kind == "f" and a.ndim == 2 and a.shape[1] >= 1 and np.isfinite(a).all() and (a >= 0).all())


def _check_lr_slowly(c: Curves) -> None:
    for i, groups in enumerate(c.lr):
        if len(groups) == 0:
            raise LrlabError(f"curves.lr[{i}] (step {c.step[i]}) is empty: give the LR of at least one group")
        for g, v in enumerate(groups):
            check.nonneg(f"curves.lr[{i}][{g}] (step {c.step[i]})", v)


def _check_steps(name: str, steps: Sequence[int]) -> None:
    if steps:
        a = np.asarray(steps)
        if a.dtype.kind in "iu" and a.ndim == 1 and a[0] >= 0 and bool(np.all(np.diff(a) > 0)):
            return  # the fast path; the loop below finds and names the problem
    prev = -1
    for i, s in enumerate(steps):
        if not _is_int(s) or s < 0:  # stricter than check.whole: a step held as 3.0 is a bug upstream
            raise LrlabError(f"{name}[{i}] must be a whole number >= 0, got {s!r}")
        if s <= prev:
            raise LrlabError(f"{name} must be strictly increasing, got {prev} then {s} at index {i}")
        prev = int(s)


@dataclass(frozen=True, kw_only=True)
class Thresholds:
    """Thresholds of the diagnoses; docs/diagnose.md says how each one is used. All are validated."""

    smooth: int = 9
    diverge_factor: float = 2.0
    min_rise: float = 0.1
    spike_factor: float = 1.5
    spike_mads: float = 8.0
    spike_window: int = 20
    early_frac: float = 0.05
    min_warmup_frac: float = 0.05
    slow_window: float = 0.2
    slow_drop: float = 0.1
    slow_steady: float = 0.5
    plateau_window: float = 0.2
    plateau_drop: float = 0.02
    plateau_lr: float = 0.5
    val_noise: float = 0.02
    val_flips: float = 0.5
    min_evals: int = 6
    overfit_rise: float = 0.02
    overfit_evals: int = 2
    overfit_train_drop: float = 0.01
    floor_frac: float = 0.2
    floor_drop: float = 0.03

    def __post_init__(self) -> None:
        ints = {"smooth": 1, "spike_window": 3, "min_evals": 3, "overfit_evals": 1}
        above_one = ("diverge_factor", "spike_factor")
        for f in fields(self):
            name, v = f"thresholds.{f.name}", getattr(self, f.name)
            if f.name in ints:
                object.__setattr__(self, f.name, check.whole(name, v, minimum=ints[f.name]))
            elif f.name in above_one:
                if check.number(name, v) <= 1:
                    raise LrlabError(f"{name} must be > 1, got {v!r}")
            elif f.name == "spike_mads":
                check.positive(name, v)
            else:
                check.range(name, v, 0.0, 1.0, lo_open=True, hi_open=True)


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One diagnosis.

    Args:
        kind: one of `KINDS`.
        step: the update where the problem starts (or is measured).
        severity: "error" (the run is broken), "warning" (the schedule should change) or "info".
        message: what was detected, with its numbers.
        advice: what to change, concretely.
        evidence: the numbers that triggered it (name -> value), for JSON.
    """

    kind: str
    step: int
    severity: str
    message: str
    advice: str
    evidence: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "step": self.step, "severity": self.severity, "message": self.message,
                "advice": self.advice, "evidence": {k: json_float(v) for k, v in self.evidence.items()}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Finding:
        ev = {str(k): parse_float(v, f"finding.evidence[{k!r}]") for k, v in dict(d.get("evidence", {})).items()}
        return cls(kind=str(d["kind"]), step=int(d["step"]), severity=str(d["severity"]),
                   message=str(d["message"]), advice=str(d["advice"]),
                   evidence={k: v for k, v in ev.items() if v is not None})


def format_findings(findings: Sequence[Finding]) -> str:
    """Plain-text rendering: one block per finding (severity, step, kind, message, advice)."""
    if not findings:
        return "no problems found"
    lines = []
    for f in findings:
        lines.append(f"[{f.severity}] step {f.step}: {f.kind}: {f.message}")
        lines.append(f"    advice: {f.advice}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ helpers


def _g(x: float) -> str:
    return f"{x:.3g}"


def _nice_factor(x: float) -> float:
    """`x` rounded to a multiplier that reads well in advice: 2, 3, 5, 10, 20, 30, 50, 100, ... (the smallest one
    at least x / 1.2)."""
    f = 1.0
    while True:
        for m in (2.0, 3.0, 5.0, 10.0):
            if m * f >= x / 1.2:
                return m * f
        f *= 10.0


def trailing_median(x: FloatArray, w: int) -> FloatArray:
    """Median of the last `w` values at each index (the first values use the first value as padding)."""
    if len(x) == 0 or w <= 1:
        return x.astype(np.float64, copy=True)
    padded = np.concatenate([np.full(w - 1, x[0]), x])
    windows = np.lib.stride_tricks.sliding_window_view(padded, w)
    return np.asarray(np.median(windows, axis=1), dtype=np.float64)


@dataclass(frozen=True, kw_only=True)
class _Run:
    """Arrays derived once from `Curves` and shared by the detectors."""

    step: npt.NDArray[np.int64]  # all training records
    lr: FloatArray  # group 0, per record
    loss_step: npt.NDArray[np.int64]  # records with a finite loss, before any divergence
    loss: FloatArray
    smooth: FloatArray
    eval_step: npt.NDArray[np.int64]  # evaluations with a finite loss, before any divergence
    val: FloatArray
    total: int
    peak_lr: float
    warmup_end: int  # step where the warm-up ends (== first step when there is none)
    warmup_len: int
    end: int  # last step analysed


def _lr_at(run: _Run, step: int) -> float:
    if len(run.step) == 0:
        return float("nan")
    i = int(np.searchsorted(run.step, step, side="right")) - 1
    return float(run.lr[max(i, 0)])


def _smooth_at(run: _Run, step: int) -> float:
    i = int(np.searchsorted(run.loss_step, step, side="right")) - 1
    return float(run.smooth[max(i, 0)])


def _median_between(run: _Run, lo: int, hi: int) -> float:
    """Median of the training losses recorded at steps in [lo, hi]."""
    sel = run.loss[(run.loss_step >= lo) & (run.loss_step <= hi)]
    return float(np.median(sel)) if len(sel) else float("nan")


# ------------------------------------------------------------------------------------------------ detectors


def _divergence(c: Curves, t: Thresholds, lr: FloatArray) -> tuple[Finding | None, int | None]:
    step = np.asarray(c.step, dtype=np.int64)
    peak = float(lr.max()) if len(lr) else 0.0
    has = np.array([x is not None for x in c.loss], dtype=bool)
    loss = np.array([np.nan if x is None else x for x in c.loss], dtype=np.float64)
    candidates: list[tuple[int, str, dict[str, float]]] = []
    bad = has & ~np.isfinite(loss)
    first_bad = int(np.argmax(bad)) if bad.any() else None
    good = has & np.isfinite(loss)
    if first_bad is not None:
        good[first_bad:] = False
    ls, lv = step[good], loss[good]
    best_before = float(lv.min()) if len(lv) else float("nan")
    if first_bad is not None:
        s = int(step[first_bad])
        candidates.append((s, f"the training loss became {loss[first_bad]} at step {s}",
                           {"loss": float(loss[first_bad]), "best_loss": best_before, "lr": float(lr[first_bad])}))
    if len(lv):
        sm = trailing_median(lv, t.smooth)
        run_min = np.minimum.accumulate(sm)
        # near a loss of 0 (a classifier late in training) batch noise doubles the loss: a divergence also gives
        # back a part of the progress made (a rise >= min_rise x the fall from the first loss)
        over = ((run_min > 0) & (sm > t.diverge_factor * run_min)
                & (sm - run_min >= t.min_rise * np.maximum(sm[0] - run_min, 0.0)))
        if over.any():
            i = int(np.argmax(over))
            # the median crosses a few records after the raw losses do: report (and cut at) the onset
            lo = max(0, i - t.smooth + 1)
            onset = lo + int(np.argmax(lv[lo:i + 1] > t.diverge_factor * run_min[i]))
            s = int(ls[onset])
            j = int(np.searchsorted(step, s))
            candidates.append((s, f"the training loss shot up from step {s}: smoothed, it reached {_g(sm[i])} at "
                                  f"step {int(ls[i])}, {sm[i] / run_min[i]:.2g}x its running minimum "
                                  f"{_g(run_min[i])}",
                               {"loss": float(sm[i]), "best_loss": float(run_min[i]),
                                "ratio": float(sm[i] / run_min[i]), "threshold": t.diverge_factor,
                                "lr": float(lr[j])}))
    vbad = [i for i, v in enumerate(c.val_loss) if not math.isfinite(v)]
    if vbad:
        i = vbad[0]
        s = int(c.eval_step[i])
        candidates.append((s, f"the validation loss became {c.val_loss[i]} at step {s}",
                           {"val_loss": float(c.val_loss[i]), "lr": _lr_at_arrays(step, lr, s)}))
    if not candidates:
        return None, None
    s, what, ev = min(candidates, key=lambda x: x[0])
    lr_div = ev.get("lr", float("nan"))
    ev = {**ev, "peak_lr": peak}
    if math.isfinite(lr_div) and lr_div > 0 and peak > 0:
        warm_idx = int(np.argmax(lr >= 0.99 * peak))
        in_warmup = len(step) > 0 and s < int(step[warm_idx])
        # in the warm-up, the LR that broke the run (lr_div) bounds the usable peak; later, the peak itself did
        factor = _nice_factor(max(3.0, 2.0 * peak / lr_div)) if in_warmup else 3.0
        where = (f"during the warm-up at LR {_g(lr_div)} ({lr_div / peak:.0%} of the peak {_g(peak)})" if in_warmup
                 else f"after the peak LR {_g(peak)} (LR {_g(lr_div)} at that step)")
        advice = (f"lower the peak LR ~{factor:g}x (to <= {_g(peak / factor)}); the loss diverged {where}. "
                  f"Also lengthen the warm-up and clip gradients (max norm 1.0) if you do not already.")
        ev["suggested_peak_lr"] = peak / factor
    else:
        advice = "lower the peak LR ~3x, lengthen the warm-up and clip gradients (max norm 1.0)."
    return Finding(kind="divergence", step=s, severity="error", message=what, advice=advice,
                   evidence=ev), s


def _lr_at_arrays(step: npt.NDArray[np.int64], lr: FloatArray, s: int) -> float:
    if len(step) == 0:
        return float("nan")
    i = int(np.searchsorted(step, s, side="right")) - 1
    return float(lr[max(i, 0)])


def _spikes(run: _Run, t: Thresholds) -> list[Finding]:
    x, st = run.loss, run.loss_step
    w = t.spike_window
    first = 5  # the first index with enough history (5 losses) for a median and a MAD
    if len(x) <= first:
        return []
    # reference of x[i]: the previous w losses (fewer at the start, down to 5)
    ref = np.empty(len(x) - first)
    mad = np.empty(len(x) - first)
    for i in range(first, min(w, len(x))):  # few, tiny lists: the stdlib median is faster than NumPy's here
        prev = x[:i].tolist()
        r = statistics.median(prev)
        ref[i - first] = r
        mad[i - first] = statistics.median([abs(v - r) for v in prev])
    if len(x) > w:
        windows = np.lib.stride_tricks.sliding_window_view(x[:-1], w)  # windows[j] = x[j : j + w], before x[j + w]
        r = np.median(windows, axis=1)
        ref[w - first:] = r
        mad[w - first:] = np.median(np.abs(windows - r[:, None]), axis=1)
    cur = x[first:]
    scale = np.maximum(mad, 1e-12 * np.maximum(np.abs(ref), 1.0))
    # an instability spike lasts: the next loss is still half as far up (a single bad batch is not reported)
    after = np.append(x[first + 1:], -np.inf)
    is_spike = ((ref > 0) & (cur > t.spike_factor * ref) & (cur - ref > t.spike_mads * scale)
                & (after > (1 + (t.spike_factor - 1) / 2) * ref)
                & (cur - ref >= t.min_rise * np.maximum(x[0] - ref, 0.0)))  # as for a divergence
    idx = np.nonzero(is_spike)[0]
    if len(idx) == 0:
        return []
    steps = st[first:][idx]
    ratios = cur[idx] / ref[idx]
    early_end = run.warmup_end + max(run.warmup_len, math.ceil(t.early_frac * run.total))
    findings = []
    early = steps <= early_end
    total = run.total
    warm_frac = run.warmup_len / total
    if early.any():
        k = np.nonzero(early)[0]
        first = int(steps[k[0]])
        worst = float(ratios[k].max())
        lr_s = _lr_at(run, first)
        target = math.ceil(t.min_warmup_frac * total)
        ev = {"count": float(len(k)), "first_step": float(first), "max_ratio": worst, "threshold": t.spike_factor,
              "lr": lr_s, "peak_lr": run.peak_lr, "warmup_steps": float(run.warmup_len), "warmup_frac": warm_frac}
        phase = "during the warm-up" if first < run.warmup_end else (
            "right after the warm-up" if run.warmup_len > 0 else "early in training (there is no warm-up)")
        msg = (f"{len(k)} loss spike(s) {phase}, the first at step {first}; the worst is {worst:.2g}x the "
               f"median of the previous {w} losses (threshold {t.spike_factor}x)")
        if warm_frac < t.min_warmup_frac:
            advice = (f"lengthen the warm-up to ~{t.min_warmup_frac:.0%} of training (~{target} updates; now "
                      f"{run.warmup_len}), e.g. 'warmup({t.min_warmup_frac:g}) >> ...'; if spikes remain, lower the "
                      f"peak LR ~2x (to {_g(run.peak_lr / 2)})")
            ev["suggested_warmup_steps"] = float(target)
        else:
            f = 3.0 if worst >= 2 else 2.0
            advice = (f"the warm-up is already {warm_frac:.0%} of training: lower the peak LR ~{f:.0f}x "
                      f"(to {_g(run.peak_lr / f)})")
            ev["suggested_peak_lr"] = run.peak_lr / f
        findings.append(Finding(kind="warmup_spike", step=first, severity="warning", message=msg, advice=advice,
                                evidence=ev))
    late = ~early
    if late.any():
        k = np.nonzero(late)[0]
        first = int(steps[k[0]])
        worst = float(ratios[k].max())
        lr_s = _lr_at(run, first)
        msg = (f"{len(k)} loss spike(s) after the warm-up, the first at step {first} (LR {_g(lr_s)}); the worst is "
               f"{worst:.2g}x the median of the previous {w} losses")
        advice = (f"lower the peak LR ~2x (to {_g(run.peak_lr / 2)}) or clip gradients (max norm 1.0); "
                  f"if spikes recur at the same batches, check those batches")
        findings.append(Finding(kind="loss_spike", step=first, severity="warning", message=msg, advice=advice,
                                evidence={"count": float(len(k)), "first_step": float(first), "max_ratio": worst,
                                          "threshold": t.spike_factor, "lr": lr_s, "peak_lr": run.peak_lr,
                                          "suggested_peak_lr": run.peak_lr / 2}))
    return findings


def _too_slow(run: _Run, t: Thresholds) -> Finding | None:
    a = run.warmup_end
    span = max(math.ceil(t.slow_window * run.total), 2 * t.smooth)
    b = a + span
    if run.end < b or len(run.loss) < 2 * t.smooth:
        return None
    sel = (run.loss_step >= a) & (run.loss_step <= b)
    if sel.sum() < 2 * t.smooth:
        return None
    # least-squares line through the window's losses: far less noisy than comparing its two ends
    slope, intercept = np.polyfit(run.loss_step[sel].astype(np.float64), run.loss[sel], 1)
    la, lb = float(intercept + slope * a), float(intercept + slope * b)
    if la <= 0:
        return None
    rate = (la - lb) / la / span
    threshold = t.slow_drop / span
    if rate >= threshold:
        return None
    # A loss that rose above where it started is instability, not a too-small LR; spikes/divergence say so.
    early_max = float(np.max(run.smooth[run.loss_step <= b]))
    if early_max > t.spike_factor * float(run.smooth[0]):
        return None
    # A larger LR helps only a descent that the LR limits: one that keeps its pace. A loss that fell and then stalls
    # at the peak LR is held up by the noise of a large LR (or the model's capacity): raising it is the wrong way.
    q = max(span // 4, 1)
    l0, lmid, l1 = (_median_between(run, lo, lo + q) for lo in (a, a + (span - q) // 2, b - q))
    d1, d2 = l0 - lmid, lmid - l1
    x = run.loss_step[sel].astype(np.float64)
    sigma = 1.4826 * float(np.median(np.abs(run.loss[sel] - (intercept + slope * x))))
    # d1 - d2 = l0 - 2 lmid + l1, each a median of ~q losses (standard error ~1.25 sigma / sqrt(q))
    se = 1.25 * sigma * math.sqrt(6 / max(int(sel.sum()) // 4, 1))
    if d1 > 0 and d2 < t.slow_steady * d1 and d1 - d2 > 2 * se:
        return None  # decelerating within the window
    # ... or since before it: the loss fell faster during the warm-up, at a smaller LR, than it does at the peak
    i0 = min(t.smooth, len(run.smooth)) - 1  # the first smoothed loss with a full window
    s0 = int(run.loss_step[i0])
    if a - s0 >= t.smooth:
        pre_drop = float(run.smooth[i0]) - l0
        at_window_rate = (l0 - l1) / (span - q) * (a - s0)
        se_pre = 1.25 * sigma * math.sqrt(1 / t.smooth + 4 / max(int(sel.sum()), 1))
        if at_window_rate < t.slow_steady * pre_drop and pre_drop - at_window_rate > 2 * se_pre:
            return None
    lr_a = _lr_at(run, a)
    warm_frac = run.warmup_len / run.total
    advice = f"raise the peak LR ~3x (to {_g(run.peak_lr * 3)}) or run `lrlab find` to measure it"
    if warm_frac > 0.2:
        advice += f"; the warm-up takes {warm_frac:.0%} of training: shorten it to ~5%"
    msg = (f"the training loss fell {(la - lb) / la:.1%} over the {span} updates after the warm-up "
           f"({_g(la)} -> {_g(lb)}): {rate:.2e} per update relative to the start, below {threshold:.2e} "
           f"(= {t.slow_drop:.0%} per {t.slow_window:.0%} of training)")
    return Finding(kind="too_slow", step=a, severity="warning", message=msg, advice=advice,
                   evidence={"progress_per_update": rate, "threshold": threshold, "loss_start": la, "loss_end": lb,
                             "window_steps": float(span), "drop_first_half": d1, "drop_second_half": d2,
                             "lr": lr_a, "peak_lr": run.peak_lr, "suggested_peak_lr": run.peak_lr * 3})


def _unstable_val(run: _Run, t: Thresholds) -> Finding | None:
    sel = run.eval_step >= run.warmup_end
    s, v = run.eval_step[sel].astype(np.float64), run.val[sel]
    if len(v) < t.min_evals:
        return None
    # each inner point against the straight line through its two neighbours
    frac = (s[1:-1] - s[:-2]) / (s[2:] - s[:-2])
    line = v[:-2] + frac * (v[2:] - v[:-2])
    r = v[1:-1] - line
    gain = np.sqrt(1.0 + frac**2 + (1.0 - frac) ** 2)  # std of r for unit white noise
    noise = float(1.4826 * np.median(np.abs(r) / gain))
    level = float(np.median(np.abs(v)))
    if level <= 0:
        return None
    d = np.diff(v)
    d = d[d != 0]
    flips = float(np.mean(np.sign(d[1:]) != np.sign(d[:-1]))) if len(d) >= 2 else 0.0
    rel = noise / level
    if rel <= t.val_noise or flips < t.val_flips:
        return None
    msg = (f"the validation loss oscillates: noise {rel:.1%} of its level {_g(level)} about its local trend "
           f"(threshold {t.val_noise:.0%}), {flips:.0%} of consecutive changes flip direction, "
           f"over {len(v)} evaluations")
    # Not a direction for the peak LR: on lrlab's vision task (360 validation images) the validation loss was as
    # noisy 3x below the best peak as 3x above it (BENCHMARKS.md); a small validation set is the usual cause.
    advice = (f"evaluate on more validation batches (noise {_g(noise)} on a level of {_g(level)}: a small "
              f"validation set is the usual cause); if it stays noisy on more data while the training loss spikes "
              f"too, lower the peak LR ~2x (to {_g(run.peak_lr / 2)})")
    return Finding(kind="unstable_val", step=int(s[0]), severity="warning", message=msg, advice=advice,
                   evidence={"noise_rel": rel, "threshold": t.val_noise, "flip_frac": flips,
                             "flip_threshold": t.val_flips, "n_evals": float(len(v)), "level": level,
                             "peak_lr": run.peak_lr, "suggested_peak_lr": run.peak_lr / 2})


def _plateau(run: _Run, t: Thresholds) -> Finding | None:
    post = run.loss_step >= run.warmup_end
    if post.sum() < 3 * t.smooth:
        return None
    lo = int(run.loss_step[post][0])
    span = max(math.ceil(t.plateau_window * run.total), 3 * t.smooth)
    a = run.end - span
    if a < lo:
        return None
    lr_end = _lr_at(run, run.end)
    if run.peak_lr <= 0 or lr_end < t.plateau_lr * run.peak_lr:
        return None
    sel = (run.loss_step >= a) & (run.loss_step <= run.end)
    n = int(sel.sum())
    if n < 3 * t.smooth:
        return None
    x, y = run.loss_step[sel].astype(np.float64), run.loss[sel]
    slope, intercept = np.polyfit(x, y, 1)
    level = float(np.mean(y))
    if level <= 0:
        return None
    resid = y - (intercept + slope * x)
    se_slope = math.sqrt(float(np.sum(resid**2)) / (n - 2) / float(np.sum((x - x.mean()) ** 2)))
    change = float(-slope * span / level)  # relative improvement over the window (negative: rising)
    se = se_slope * span / level
    # flat with confidence: even 2 standard errors away, the change stays within the threshold
    if abs(change) + 2 * se >= t.plateau_drop:
        return None
    start_loss = float(run.smooth[0])
    total_drop = (start_loss - level) / start_loss if start_loss > 0 else 0.0
    if total_drop < t.slow_drop:
        return None  # never made progress: that is too_slow (or a broken run), not a plateau
    msg = (f"the training loss has plateaued: {change:+.2%} (+/- {2 * se:.2%}) over the last {span} updates "
           f"(threshold {t.plateau_drop:.0%}) while the LR is still {lr_end / run.peak_lr:.0%} of its peak "
           f"({_g(lr_end)})")
    cooldown = math.ceil(0.2 * run.total)
    advice = (f"the loss stalled at {_g(level)} over the last {span} updates with the LR still {_g(lr_end)} "
              f"({lr_end / run.peak_lr:.0%} of the peak {_g(run.peak_lr)}): add decay (e.g. '>> cosine(floor=0.1)' "
              f"or a cooldown '>> cooldown(0.2, shape=sqrt)' over the last ~20% of training, "
              f"~{cooldown} updates) or a plateau controller that lowers the LR ~3-10x "
              f"(to {_g(lr_end / 3)} .. {_g(lr_end / 10)}) when the loss stalls")
    return Finding(kind="plateau", step=a, severity="warning", message=msg, advice=advice,
                   evidence={"improvement": change, "uncertainty": 2 * se, "threshold": t.plateau_drop,
                             "window_steps": float(span), "level": level, "lr": lr_end, "peak_lr": run.peak_lr,
                             "lr_frac": lr_end / run.peak_lr, "suggested_cooldown_steps": float(cooldown),
                             "suggested_lr_low": lr_end / 10, "suggested_lr_high": lr_end / 3})


def _overfitting(run: _Run, t: Thresholds) -> Finding | None:
    v, s = run.val, run.eval_step
    if len(v) < t.overfit_evals + 1:
        return None
    b = int(np.argmin(v))
    after = len(v) - 1 - b
    if after < t.overfit_evals:
        return None
    best, last = float(v[b]), float(v[-1])
    if best <= 0 or last < best * (1 + t.overfit_rise) or np.any(v[b + 1:] <= best):
        return None
    if len(run.loss) == 0:
        return None
    tr_b, tr_e = _smooth_at(run, int(s[b])), _smooth_at(run, int(s[-1]))
    if tr_b <= 0:
        return None
    train_drop = (tr_b - tr_e) / tr_b
    if train_drop <= t.overfit_train_drop:
        return None
    rise = (last - best) / best
    msg = (f"over-fitting: the validation loss rose {rise:.1%} from its best {_g(best)} at step {int(s[b])} to "
           f"{_g(last)} at step {int(s[-1])} while the training loss fell {train_drop:.1%}")
    advice = (f"stop at step {int(s[b])} (best validation loss; keep that checkpoint / use early stopping) or add "
              f"regularization (weight decay, dropout, more data)")
    return Finding(kind="overfitting", step=int(s[b]), severity="warning", message=msg, advice=advice,
                   evidence={"best_step": float(s[b]), "best_val_loss": best, "last_val_loss": last, "rise": rise,
                             "threshold": t.overfit_rise, "train_drop": train_drop})


def _decay_too_early(run: _Run, t: Thresholds) -> Finding | None:
    lr = run.lr
    if len(lr) < 3 or run.peak_lr <= 0:
        return None
    final = float(lr[-1])
    if final <= 0 or final >= 0.9 * run.peak_lr:
        return None
    tol = final + 0.01 * (run.peak_lr - final)
    above = np.nonzero(lr > tol)[0]
    if len(above) == 0:
        return None
    f_idx = int(above[-1]) + 1
    if f_idx >= len(lr):
        return None
    f = int(run.step[f_idx])
    span = run.end - f
    if span < t.floor_frac * run.total or span < 2 * t.smooth:
        return None
    k = t.smooth
    head = run.loss[run.loss_step >= f][:k]
    tail = run.loss[run.loss_step <= run.end][-k:]
    if len(head) == 0 or len(tail) == 0:
        return None
    l0, l1 = float(np.median(head)), float(np.median(tail))
    mid = f + span // 2
    lm = _median_between(run, mid - k // 2, mid + k // 2)
    if l0 <= 0 or not math.isfinite(lm) or lm <= 0:
        return None
    drop, drop2 = (l0 - l1) / l0, (lm - l1) / lm
    if drop < t.floor_drop or drop2 < t.floor_drop / 3:
        return None
    frac = span / run.total
    msg = (f"the LR reached its final value {_g(final)} at step {f} and stayed there for {frac:.0%} of training "
           f"while the loss kept falling ({drop:.1%} since, {drop2:.1%} in the last half of that phase)")
    advice = ("the decay ends too early: make it end at the last update (e.g. '>> cosine(floor=0.1)' over the "
              f"whole run, or a cooldown over the last ~20%), or raise the floor ~2x (to {_g(final * 2)})")
    return Finding(kind="decay_too_early", step=f, severity="warning", message=msg, advice=advice,
                   evidence={"floor_step": float(f), "floor_lr": final, "floor_frac": frac,
                             "threshold_frac": t.floor_frac, "loss_drop": drop, "loss_drop_second_half": drop2,
                             "threshold_drop": t.floor_drop, "peak_lr": run.peak_lr})


# ------------------------------------------------------------------------------------------------ entry point


def diagnose(curves: Curves, *, thresholds: Thresholds | None = None) -> list[Finding]:
    """Detect the problems listed in docs/diagnose.md in `curves`; return the findings sorted by step.

    Args:
        curves: the recorded run (validated on construction: a NaN LR or metric raises `LrlabError`).
        thresholds: the detection thresholds; `Thresholds()` (the documented defaults) when None.
    Returns:
        A list of `Finding`s, empty for a healthy run.
    """
    t = thresholds if thresholds is not None else Thresholds()
    if not isinstance(curves, Curves):
        raise LrlabError(f"curves must be an lrlab.diagnose.Curves, got {type(curves).__name__}")
    if not isinstance(t, Thresholds):
        raise LrlabError(f"thresholds must be an lrlab.diagnose.Thresholds, got {type(t).__name__}")
    step = np.asarray(curves.step, dtype=np.int64)
    lr = np.asarray([g[0] for g in curves.lr], dtype=np.float64)
    findings: list[Finding] = []
    div, div_step = _divergence(curves, t, lr)
    if div is not None:
        findings.append(div)
    cut = div_step if div_step is not None else None

    has = [i for i, x in enumerate(curves.loss) if x is not None and math.isfinite(x)
           and (cut is None or curves.step[i] < cut)]
    loss_step = step[has] if has else np.zeros(0, dtype=np.int64)
    loss = np.asarray([curves.loss[i] for i in has], dtype=np.float64)
    ev = [i for i, v in enumerate(curves.val_loss) if math.isfinite(v) and (cut is None or curves.eval_step[i] < cut)]
    eval_step = np.asarray([curves.eval_step[i] for i in ev], dtype=np.int64)
    val = np.asarray([curves.val_loss[i] for i in ev], dtype=np.float64)
    if len(step) == 0:
        return findings
    last = int(step[-1])
    total = curves.total_steps if curves.total_steps is not None else last + 1
    total = max(total, last + 1)
    peak = float(lr.max())
    w_idx = int(np.argmax(lr >= 0.99 * peak)) if peak > 0 else 0
    warmup_end = int(step[w_idx])
    end = min(last, cut - 1) if cut is not None else last
    run = _Run(step=step, lr=lr, loss_step=loss_step, loss=loss, smooth=trailing_median(loss, t.smooth),
               eval_step=eval_step, val=val, total=total, peak_lr=peak, warmup_end=warmup_end,
               warmup_len=warmup_end - int(step[0]), end=end)
    if len(loss):
        findings.extend(_spikes(run, t))
        for detector in (_too_slow, _plateau, _decay_too_early):
            found = detector(run, t)
            if found is not None:
                findings.append(found)
    for detector in (_unstable_val, _overfitting):
        found = detector(run, t)
        if found is not None:
            findings.append(found)
    return sorted(findings, key=lambda f: (f.step, KINDS.index(f.kind)))
