"""Recorded loss curves, the input of a fit: one LR per update plus the evaluated losses, from wherever users have them.

- Python: `Curve` from arrays, `curve_from_schedule` from an lrlab schedule (spec or `Schedule`) times a peak LR.
- `load_runs`: an `lrlab compare` or `lrlab train` folder (its ``results.json``, read directly), or a Monitor's
  JSONL/CSV log (`lrlab.monitor.load_curves`; the LR of every update is in the log).

`lr_sequence` turns what `FittedLaw.predict` is given (spec, `Schedule` or a raw LR array) into LRs per update.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lrlab.checks import check, describe
from lrlab.errors import LrlabError
from lrlab.files import read_json

#: the folder of a design's start-up probe inside the design's folder (`lrlab.predict.design.PROBE_DIR`)
PROBE_DIR = "probe"


@dataclass(frozen=True, kw_only=True, eq=False)
class Curve:
    """One recorded run: the LR of every update and the loss evaluated at some steps.

    Args:
        lr: LR of update ``u`` (absolute, >= 0, finite), one per update run; at least up to the last evaluation.
        steps: updates done at each evaluation (whole numbers, strictly increasing, in 0 .. len(lr)).
        loss: the evaluated loss at each of ``steps`` (finite, > 0), e.g. validation nats per token.
        label: what the curve is (its schedule spec, a name); curves with one label are one schedule.
        seed: the run's seed, or None; curves of several seeds are bootstrapped by seed.
        source: where it was read from (a path), for messages.
        data_passes: passes over the training data the run made (None: unknown); above 1 the run repeated data.
    """

    lr: np.ndarray
    steps: np.ndarray
    loss: np.ndarray
    label: str = ""
    seed: int | None = None
    source: str = ""
    data_passes: float | None = None

    def __post_init__(self) -> None:
        name = f"curve {self.label or self.source or '(unnamed)'}"
        lr = _array(f"{name}: lr", self.lr)
        loss = _array(f"{name}: loss", self.loss, finite=False)
        raw_steps = np.asarray(self.steps)
        if raw_steps.ndim != 1 or (raw_steps.size and not np.all(np.equal(np.mod(raw_steps, 1), 0))):
            raise LrlabError(f"{name}: steps must be a 1-D sequence of whole numbers, got {describe(self.steps)}")
        steps = raw_steps.astype(np.int64)
        if loss.size == 0:
            raise LrlabError(f"{name}: no evaluations (loss is empty); a curve needs evaluated losses at steps")
        if steps.size != loss.size:
            raise LrlabError(f"{name}: {steps.size} steps but {loss.size} losses; give one loss per step")
        bad = np.flatnonzero(~np.isfinite(loss) | (loss <= 0))
        if bad.size:
            i = int(bad[0])
            raise LrlabError(f"{name}: loss at step {int(steps[i])} is {float(loss[i])!r}; losses must be finite "
                             "and > 0 (a diverged run cannot be fitted: drop it or cut it before the divergence)")
        if np.any(np.diff(steps) <= 0):
            raise LrlabError(f"{name}: steps must be strictly increasing, got {describe(steps.tolist())}")
        if steps[0] < 0 or steps[-1] > lr.size:
            raise LrlabError(f"{name}: evaluation at step {int(steps[-1] if steps[-1] > lr.size else steps[0])} but "
                             f"the LR is known for {lr.size} updates (steps must be in 0 .. {lr.size}): the schedule "
                             "and the log disagree in length")
        if np.any(lr < 0):
            raise LrlabError(f"{name}: lr must be >= 0, got {float(lr[np.argmax(lr < 0)])} at update "
                             f"{int(np.argmax(lr < 0))}")
        if self.data_passes is not None:
            check.nonneg("data_passes", self.data_passes)
        object.__setattr__(self, "lr", lr)
        object.__setattr__(self, "steps", steps)
        object.__setattr__(self, "loss", loss)

    @property
    def total(self) -> int:
        """Updates run (the length of ``lr``)."""
        return int(self.lr.size)

    @property
    def peak_lr(self) -> float:
        return float(self.lr.max()) if self.lr.size else 0.0


def _array(name: str, value: object, *, finite: bool = True) -> np.ndarray:
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise LrlabError(f"{name} must be a 1-D sequence of numbers, got {describe(value)}") from None
    if a.ndim != 1:
        raise LrlabError(f"{name} must be 1-D, got shape {a.shape}")
    if finite and not np.all(np.isfinite(a)):
        i = int(np.flatnonzero(~np.isfinite(a))[0])
        raise LrlabError(f"{name} must be finite, got {float(a[i])} at index {i}")
    return a


def lr_sequence(schedule: object, *, total: int | None = None, peak_lr: float | None = None,
                name: str = "schedule") -> np.ndarray:
    """The LR of each update of a run: ``peak_lr * schedule(u)`` for ``u = 0 .. total-1``.

    Args:
        schedule: lrlab spec text or `lrlab.Schedule` (its values are factors of ``peak_lr``), or a raw per-update
            LR sequence (absolute LRs; ``total`` and ``peak_lr`` must then be None or agree with it).
        total: updates of the run (>= 1); required for a spec or Schedule.
        peak_lr: the LR the schedule multiplies (> 0); required for a spec or Schedule.
    """
    from lrlab.schedule import Schedule

    if isinstance(schedule, (str, Schedule)):
        if total is None or peak_lr is None:
            raise LrlabError(f"{name} {schedule}: give total (updates) and peak_lr to turn a schedule into LRs")
        total = check.whole("total", total, minimum=1)
        peak_lr = check.positive("peak_lr", peak_lr)
        from lrlab.spec import as_schedule

        s = as_schedule(schedule, total, name=name)
        factors = np.asarray(s.values(np.arange(total, dtype=np.float64)), dtype=np.float64)
        lr = peak_lr * factors
    else:
        lr = _array(f"{name} (per-update LRs)", schedule)
        if total is not None and check.whole("total", total, minimum=1) != lr.size:
            raise LrlabError(f"{name}: {lr.size} per-update LRs but total={total}; they must agree")
        if peak_lr is not None:
            raise LrlabError(f"{name}: peak_lr applies to a schedule spec, not to raw per-update LRs (these are "
                             "absolute already); leave it None")
    if lr.size == 0:
        raise LrlabError(f"{name}: no updates")
    bad = np.flatnonzero(~np.isfinite(lr) | (lr < 0))
    if bad.size:
        raise LrlabError(f"{name} gives LR {float(lr[bad[0]])!r} at update {int(bad[0])}; LRs must be finite, >= 0")
    return lr


def curve_from_schedule(schedule: object, *, peak_lr: float, total: int, steps: Sequence[int] | np.ndarray,
                        loss: Sequence[float] | np.ndarray, label: str | None = None,
                        seed: int | None = None) -> Curve:
    """A `Curve` whose LRs are ``peak_lr * schedule`` over ``total`` updates (spec text or `Schedule`)."""
    lr = lr_sequence(schedule, total=total, peak_lr=peak_lr)
    return Curve(lr=lr, steps=np.asarray(steps), loss=np.asarray(loss, dtype=np.float64),
                 label=label if label is not None else str(schedule), seed=seed)


# ------------------------------------------------------------------------------------------------ reading files


def load_runs(path: str | Path, *, metric: str = "val_loss") -> list[Curve]:
    """The curves recorded in ``path``.

    Args:
        path: an `lrlab compare` or `lrlab train` folder (or its ``results.json``): one curve per finished run,
            its validation loss at its evaluations and the LR the optimizer applied at every update; or a
            Monitor log (``monitor.jsonl``, ``steps.csv``, or a Monitor folder): its validation losses and the LR
            of parameter group 0 at every update. A design folder's start-up probe (``path/probe``, written by
            `lrlab.predict.run_design`) is read with it.
        metric: ``val_loss`` (the only loss recorded per evaluation in both formats).
    Returns:
        The curves (diverged runs are left out: a law cannot fit them); `LrlabError` when there are none.
    """
    check.choice("metric", metric, ("val_loss",))
    p = Path(path)
    if not p.exists():
        raise LrlabError(f"run folder or log {str(p)!r} does not exist")
    results = p / "results.json" if p.is_dir() else p
    if results.name == "results.json" and results.is_file():
        curves = _from_results(results)
        probe = results.parent / PROBE_DIR / "results.json"
        return curves + _from_results(probe) if probe.is_file() else curves
    return [_from_monitor(p)]


def _from_results(path: Path) -> list[Curve]:
    doc = read_json(path, what="results.json")  # names the file: missing, not UTF-8, not JSON, not an object
    if not isinstance(doc, Mapping) or not isinstance(doc.get("trials"), list):
        raise LrlabError(f"{path}: not an lrlab compare/train results.json (no 'trials' list)")
    curves = []
    for t in doc["trials"]:
        r = t.get("result") if isinstance(t, Mapping) else None
        if not r or r.get("diverged"):
            continue
        cfg = r.get("config", {})
        n_eval = len(r["eval_steps"])
        if len(r["train_loss"]) < int(cfg.get("steps", 0)):
            continue  # stopped before its end
        curves.append(Curve(lr=np.asarray(r["lr"], dtype=np.float64), steps=np.asarray(r["eval_steps"]),
                            loss=np.asarray(r["val_loss"][:n_eval], dtype=np.float64),
                            label=str(t.get("schedule", cfg.get("schedule", ""))), seed=t.get("seed"),
                            source=f"{path.parent}:{t.get('id', '')}", data_passes=_data_passes(r)))
    if not curves:
        raise LrlabError(f"{path}: no finished, non-diverged runs to fit")
    return curves


def _data_passes(result: Mapping[str, Any]) -> float | None:
    """Passes over the training data a harness run made (updates x items per update / training items), if known."""
    cfg, data = result.get("config", {}), (result.get("env") or {}).get("data") or {}
    train_items = data.get("train_bytes") or data.get("train_tokens") or data.get("train_images")
    if not train_items:
        return None
    presets: Any = None
    for module in ("lrlab.bench.presets", "lrlab.bench.tasks"):
        try:
            presets = __import__(module, fromlist=["PRESETS"]).PRESETS
            break
        except (ImportError, AttributeError):
            continue
    kind = "vision" if cfg.get("task") == "vision" else "lm"
    try:
        p = presets[kind][cfg.get("preset", "tiny")]
    except (TypeError, KeyError):
        return None
    batch = cfg.get("batch_size") or p.batch_size
    per_update = batch * (p.model.context if kind == "lm" else 1)
    return float(len(result.get("train_loss", ())) * per_update / float(train_items))


def _from_monitor(path: Path) -> Curve:
    from lrlab.monitor import load_curves

    c = load_curves(path)
    if not c.eval_step:
        raise LrlabError(f"{path}: the log has no validation evaluations (Monitor.on_eval); a fit needs evaluated "
                         "losses")
    steps = np.asarray(c.step, dtype=np.int64)
    need = int(max(c.eval_step))
    if steps.size == 0 or steps[0] != 0 or np.any(np.diff(steps) != 1) or steps[-1] + 1 < need:
        raise LrlabError(f"{path}: the log must hold the LR of every update 0 .. {need - 1} (the laws sum the LR "
                         f"of each update); it has {steps.size} step records")
    lr = np.asarray([g[0] for g in c.lr], dtype=np.float64)
    return Curve(lr=lr, steps=np.asarray(c.eval_step), loss=np.asarray(c.val_loss, dtype=np.float64),
                 label=path.stem if path.is_file() else path.name, source=str(path))
