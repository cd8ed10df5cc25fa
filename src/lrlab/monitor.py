"""`Monitor`: records what a training run did, per update, and diagnoses it live.

Per update: the LR of every param group (as applied, see `Monitor.lrs_from_optimizer`), the training loss, the
gradient norm and the throughput; per evaluation: the validation loss and further metrics. It writes them as
they come to the files of `lrlab.monitor_files` and keeps them in memory for the live diagnoses of
`lrlab.diagnose`. Plain calls in any loop (``monitor.on_step(...)``, ``monitor.on_eval(...)``,
``monitor.close()``), or `Monitor.hf_callback` / `Monitor.lightning_callback` (`lrlab.integrations`). The
manual (steps and resume, the files, the callbacks): docs/monitor.md.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lrlab.checks import check, describe
from lrlab.diagnose import Curves, Finding, Thresholds, diagnose
from lrlab.errors import LrlabError
from lrlab.monitor_files import (
    EVALS_CSV,
    FINDINGS_FILE,
    FORMAT,
    JSONL_FILE,
    STEPS_CSV,
    TB_DIR,
    MonitorFiles,
    RunLog,
    load_curves,
    resume_log,
)

# the file names and `load_curves` are re-exported: they were imported from here before `lrlab.monitor_files`
__all__ = ["AT_CHANCE", "EVALS_CSV", "FINDINGS_FILE", "FORMAT", "JSONL_FILE", "SPARSE_LOG", "STEPS_CSV", "TB_DIR",
           "Monitor", "at_chance", "coverage_every", "load_curves", "log_coverage"]

_log = logging.getLogger("lrlab.monitor")

#: the kind of `log_coverage`'s finding: about the log, not the run (so not one of `lrlab.diagnose.KINDS`)
SPARSE_LOG = "sparse_log"
#: the kind of `at_chance`'s finding
AT_CHANCE = "at_chance"
#: `at_chance`: the last losses within this fraction of the uniform guess's loss count as "at chance"
CHANCE_MARGIN = 0.03


def at_chance(curves: Curves, chance_loss: float) -> Finding | None:
    """An error `Finding` when the training loss ended at (or above) the loss of a uniform guess, ``chance_loss``
    (``ln(classes)`` for a cross-entropy over that many classes or tokens): the model learned nothing, however
    few losses were recorded.

    The median of the last 3 recorded losses is compared with ``(1 - CHANCE_MARGIN) * chance_loss``. A run whose
    loss went above ``1.5 * chance_loss`` on the way blew up: the advice is to lower the LR; otherwise the LR may be
    either far too high or far too low, and the advice is to measure it.
    """
    chance = check.positive("chance_loss", chance_loss)
    losses = [x for x in curves.loss if x is not None]
    if not losses:
        return None
    tail = sorted(losses[-3:])
    last = tail[len(tail) // 2]
    if math.isfinite(last) and last < (1 - CHANCE_MARGIN) * chance:
        return None
    peak_lr = max((g[0] for g in curves.lr), default=math.nan)
    worst = max(losses, key=lambda x: x if math.isfinite(x) else math.inf)
    blew_up = not math.isfinite(worst) or worst > 1.5 * chance
    msg = (f"the training loss ended at {last:.4g}, {'above' if last > chance else 'at'} the loss of a uniform "
           f"guess ({chance:.4g}): the model learned nothing")
    if blew_up:
        msg += f" (on the way it reached {worst:.4g})"
        advice = (f"lower the peak LR ~10x (to {peak_lr / 10:.3g}) or run `lrlab find` to measure the range; the "
                  "loss blew up")
    else:
        advice = (f"measure the LR with `lrlab find`: a loss that stays at chance means an LR far too high (the model "
                  f"collapses to the uniform guess) or far too low (it never moves); the peak was {peak_lr:.3g}")
    return Finding(kind=AT_CHANCE, step=int(curves.step[-1]) if curves.step else 0, severity="error", message=msg,
                   advice=advice, evidence={"loss": last, "chance_loss": chance, "worst_loss": worst,
                                            "peak_lr": peak_lr})


def coverage_every(total_steps: int, thresholds: Thresholds | None = None) -> int:
    """The most updates between two recorded training losses that still lets every diagnosis run: the plateau
    check needs ``3 * smooth`` losses within ``plateau_window`` of the run (27 in 20% with the defaults; the
    too-slow check needs fewer). 0 when the run is too short for that even with a loss at every update."""
    t = thresholds if thresholds is not None else Thresholds()
    return math.floor(t.plateau_window * total_steps / (3 * t.smooth))


def log_coverage(curves: Curves, thresholds: Thresholds | None = None) -> Finding | None:
    """A finding when the training losses were recorded too rarely for the diagnoses (`coverage_every`): then
    "no problems found" would only mean that nothing could be checked. The Hugging Face Trainer logs the loss
    every ``logging_steps`` (500 by default). The message also says whether the loss fell at all over what was
    recorded, the one thing a few records still show (a run at an LR far too high ends at the loss of a uniform
    guess, flat).

    Returns:
        A ``sparse_log`` warning `Finding`, or None when the losses are dense enough (or the run is too short to
        tell).
    """
    t = thresholds if thresholds is not None else Thresholds()
    steps = [s for s, x in zip(curves.step, curves.loss) if x is not None and math.isfinite(x)]
    losses = [x for x in curves.loss if x is not None and math.isfinite(x)]
    last = curves.step[-1] if curves.step else (curves.eval_step[-1] if curves.eval_step else 0)
    total = max(curves.total_steps or 0, last + 1)
    limit = coverage_every(total, t)
    if limit < 1:
        return None
    if len(steps) >= 2:
        gaps = sorted(b - a for a, b in itertools.pairwise(steps))
        every = gaps[len(gaps) // 2]
    else:
        every = total
    if every <= limit:
        return None
    how = ("Record the loss of every update: Hugging Face logging_steps=1 (its default is 500) with "
           "logging_nan_inf_filter=False, or lrlab's Monitor callbacks (Monitor.hf_callback, "
           "Monitor.lightning_callback), which record each update themselves")
    evidence = {"loss_records": float(len(steps)), "every": float(every), "max_every": float(limit),
                "total_steps": float(total)}
    if not steps:
        msg = f"no training loss was recorded over {total} updates: the diagnoses had nothing to check"
    else:
        msg = (f"the training loss was recorded every {every} updates ({len(steps)} records over {total} updates): "
               f"the diagnoses need one at least every {limit} ({3 * t.smooth} in {t.plateau_window:.0%} of the "
               f"run), so spikes, a too small LR and plateaus could not be checked")
    if len(losses) >= 2 and losses[0] > 0:
        drop = (losses[0] - losses[-1]) / losses[0]
        evidence.update(first_loss=losses[0], last_loss=losses[-1], drop=drop)
        msg += f"; over the records the loss went from {losses[0]:.4g} to {losses[-1]:.4g} ({-drop:+.1%})"
        if drop < t.slow_drop:
            msg += (f", less than {t.slow_drop:.0%}: the run may not have trained at all (an LR far too high ends "
                    "at the loss of a uniform guess; one far too low barely moves)")
    return Finding(kind=SPARSE_LOG, step=int(steps[0]) if steps else 0, severity="warning", message=msg, advice=how,
                   evidence=evidence)


def _as_float(name: str, value: object) -> float:
    """`value` as a float: Python/NumPy numbers and 1-element tensors are converted (the caller then applies the
    rule); text, bools and None are refused."""
    if isinstance(value, (bool, str)) or value is None:
        raise LrlabError(f"{name} must be a number, got {describe(value)}")
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise LrlabError(f"{name} must be a number, got {describe(value)}") from None


def _nonneg(name: str, value: object) -> float:
    """A finite number >= 0, converted first (see `_as_float`)."""
    return check.nonneg(name, _as_float(name, value))


class Monitor:
    """Records LR/loss/gradient norm/throughput per update and validation loss per evaluation; diagnoses live.

    Args:
        out_dir: folder for the files (created); None keeps everything in memory only.
        jsonl: write ``monitor.jsonl``.
        csv: write ``steps.csv`` and ``evals.csv`` (the number of LR groups and the metric names are fixed by
            the first record; a later record that does not fit raises `LrlabError`).
        tensorboard: write TensorBoard scalars to ``out_dir/tb``: None (default) when the ``tensorboard`` package
            is installed (and `out_dir` is given), True always (`LrlabError` when it is missing), False never.
            Tags: ``lr/group{i}``, ``loss/train``, ``grad_norm``, ``throughput/updates_per_s``,
            ``throughput/tokens_per_s`` every `tensorboard_every` updates (and at once for a NaN/inf loss);
            ``loss/val`` and ``eval/{metric}`` per evaluation. `use_tb` says whether it is on.
        tensorboard_every: updates between TensorBoard step records (>= 1; default 10): TensorBoard's event
            writer is slow enough that every update would break the 1 % overhead budget (see BENCHMARKS.md).
            The JSONL/CSV files and the diagnoses always see every update.
        flush_every: seconds between flushes of the step records to the files (>= 0; 0: after every update).
            Evaluations, findings and a NaN/inf loss are flushed at once, and everything on `close`; a crash
            (``kill -9``) loses at most this much of the step records, and a resumed Monitor drops a torn last
            line. Why not every update: one write system call per update costs more than the rest of `on_step`
            (see BENCHMARKS.md).
        diagnose_live: run `lrlab.diagnose.diagnose` during training: at once on a NaN/inf loss, and otherwise
            at evaluations and every `diagnose_every` updates, but no sooner after the previous diagnosis than
            its own duration / `diagnose_budget` (so diagnoses take at most that fraction of the wall time,
            however long the run). The first diagnosis is exempt from the wait: it pays one-off costs (NumPy's
            first linear-algebra calls) that would otherwise delay the second one for thousands of updates.
            New findings are logged (logger ``lrlab.monitor``), appended to the JSONL and passed to `on_finding`.
        total_steps: planned number of updates (makes "5% of training" in the advice exact); None: unknown.
        thresholds: diagnosis thresholds (`lrlab.diagnose.Thresholds()` when None).
        diagnose_every: see `diagnose_live` (>= 1 records).
        diagnose_budget: see `diagnose_live`: a fraction of the wall time in (0, 1].
        on_finding: called with each new live `Finding`.
        clock: the time source in seconds (``time.perf_counter``; tests pass a fake one).
        chance_loss: the loss of a uniform guess (``ln(vocabulary size)`` for a language model), when known: a
            run that ends there gets an `at_chance` error at `close`. `hf_callback` sets it from the model's
            ``config.vocab_size`` when it is not given.

    Files in an existing ``out_dir`` are appended to, and their records are loaded first, so a resumed run
    continues its curves (a resumed step replaces the later records: docs/monitor.md).
    """

    def __init__(self, out_dir: str | os.PathLike[str] | None = None, *, jsonl: bool = True, csv: bool = False,
                 tensorboard: bool | None = None, tensorboard_every: int = 10, flush_every: float = 1.0,
                 diagnose_live: bool = True, total_steps: int | None = None,
                 thresholds: Thresholds | None = None, diagnose_every: int = 50, diagnose_budget: float = 0.001,
                 on_finding: Callable[[Finding], None] | None = None,
                 clock: Callable[[], float] = time.perf_counter, chance_loss: float | None = None) -> None:
        if total_steps is not None:
            total_steps = check.whole("total_steps", total_steps, minimum=1)
        tensorboard_every = check.whole("tensorboard_every", tensorboard_every, minimum=1)
        diagnose_every = check.whole("diagnose_every", diagnose_every, minimum=1)
        diagnose_budget = check.range("diagnose_budget", diagnose_budget, 0.0, 1.0, lo_open=True)
        if thresholds is not None and not isinstance(thresholds, Thresholds):
            raise LrlabError(f"thresholds must be an lrlab.diagnose.Thresholds, got {type(thresholds).__name__}")
        self.out_dir = Path(out_dir) if out_dir is not None else None
        if tensorboard not in (None, True, False):
            raise LrlabError(f"tensorboard must be None (when installed), True or False, got {tensorboard!r}")
        if self.out_dir is None and tensorboard:
            raise LrlabError("tensorboard=True needs out_dir (the event files go to out_dir/tb)")
        self.use_jsonl = jsonl and self.out_dir is not None
        self.use_csv = csv and self.out_dir is not None
        self.use_tb = self.out_dir is not None and tensorboard is not False  # settled when the files open
        self.tensorboard_every = tensorboard_every
        self.flush_every = check.nonneg("flush_every", flush_every)
        self._last_flush = -math.inf
        self._since_tb = tensorboard_every  # the first update is written
        self.diagnose_live = diagnose_live
        self.thresholds = thresholds if thresholds is not None else Thresholds()
        self.diagnose_every = diagnose_every
        self.diagnose_budget = diagnose_budget
        self._next_diag = -math.inf
        self._n_diag = 0
        self.on_finding = on_finding
        self.chance_loss = None if chance_loss is None else check.positive("chance_loss", chance_loss)
        self._log = RunLog(total_steps=total_steps)
        self._clock = clock
        self._t0 = clock()
        self._last_t: float | None = None
        self._findings: list[Finding] = []
        self._seen: set[str] = set()
        self._since_diag = 0
        self._closed = False
        self._files: MonitorFiles | None = None
        if self.out_dir is not None:
            self._open(self.out_dir, tensorboard)

    # -------------------------------------------------------------------------------------------- files

    def _open(self, folder: Path, tensorboard: bool | None) -> None:
        given_total = self._log.total_steps
        self._log = resume_log(folder, jsonl=self.use_jsonl, csv=self.use_csv, into=self._log)
        if given_total is not None:  # this session's plan wins over the one recorded earlier
            self._log.total_steps = given_total
        self._files = MonitorFiles(folder, jsonl=self.use_jsonl, csv=self.use_csv,
                                   tensorboard=None if tensorboard is None else bool(tensorboard))
        self.use_tb = self._files.tb is not None
        self._files.meta(self._log.total_steps, started=True)

    def flush(self) -> None:
        """Write every buffered record to the files now (they are also flushed every `flush_every` seconds, at
        evaluations, findings and `close`)."""
        if self._files is not None:
            self._files.flush()
        if self._last_t is not None:
            self._last_flush = self._last_t

    # -------------------------------------------------------------------------------------------- hooks

    def on_step(self, step: int, *, lrs: Sequence[float] | float, loss: float | None,
                grad_norm: float | None = None, tokens: float | None = None) -> None:
        """Record one update.

        Args:
            step: 0-based index of the update.
            lrs: the LR of each parameter group used by this update (or one number); finite, >= 0.
            loss: the training loss of the update's batch; None if not measured; NaN/inf is recorded (divergence).
            grad_norm: gradient norm before clipping, or None; NaN/inf is recorded.
            tokens: tokens (or samples) trained so far, this update included (cumulative, like Hugging Face's
                ``num_input_tokens_seen``), for the throughput; finite, >= 0, or None.
        """
        if self._closed:
            raise LrlabError("this Monitor is closed; create a new one to record more")
        if type(step) is not int or step < 0:
            step = check.whole("step", step)
        try:
            items = list(lrs)  # type: ignore[arg-type]
        except TypeError:  # one number (a float, a NumPy scalar, a 0-d tensor)
            items = [lrs]  # type: ignore[list-item]
        if not items:
            raise LrlabError(f"lrs must hold the LR of at least one parameter group, got {lrs!r} (step {step})")
        # a plain float passes without building its field name (that costs more than the rest of the check);
        # names carry the step: "lrs[1] (step 3) must be a finite number, got nan"
        lr = tuple(x if type(x) is float and 0.0 <= x < math.inf else _nonneg(f"lrs[{i}] (step {step})", x)
                   for i, x in enumerate(items))
        # losses and gradient norms may be NaN/inf: that is how a divergence shows
        loss_v = loss if loss is None or type(loss) is float else _as_float(f"loss (step {step})", loss)
        gn = grad_norm if grad_norm is None or type(grad_norm) is float else _as_float(
            f"grad_norm (step {step})", grad_norm)
        if tokens is None:
            tok = None
        elif type(tokens) in (int, float) and 0 <= tokens < math.inf:
            tok = float(tokens)
        else:
            tok = _nonneg(f"tokens (step {step})", tokens)

        now = self._clock()
        dt = None if self._last_t is None else now - self._last_t
        prev = self._log.step[-1] if self._log.step else None
        prev_tok = self._log.tokens[-1] if self._log.tokens else None
        self._last_t = now
        t = now - self._t0
        rewound = self._log.add_step(step, lr, loss_v, gn, tok, t)
        ups = tps = None
        if dt and dt > 0 and prev is not None and not rewound:
            ups = (step - prev) / dt
            if tok is not None and prev_tok is not None and tok >= prev_tok:
                tps = (tok - prev_tok) / dt
        bad_loss = loss_v is not None and not math.isfinite(loss_v)
        files = self._files
        if files is not None:
            files.step(step, lr, loss_v, gn, tok, t, ups, tps)
            if now - self._last_flush >= self.flush_every or bad_loss:
                files.flush()
                self._last_flush = now
            if files.tb is not None:
                self._since_tb += 1
                if self._since_tb >= self.tensorboard_every or bad_loss:
                    self._since_tb = 0
                    files.tensorboard_step(step, lr, loss_v, gn, ups, tps)
        if self.diagnose_live:
            self._since_diag += 1
            first_nan = loss_v is not None and not math.isfinite(loss_v) and "divergence" not in self._seen
            if first_nan or (self._since_diag >= self.diagnose_every and now >= self._next_diag):
                self._diagnose_live()

    def on_eval(self, step: int, *, val_loss: float, **metrics: float) -> None:
        """Record one evaluation after `step` updates: the validation loss (NaN/inf recorded as divergence) and
        further finite metrics by name (e.g. ``accuracy=0.91``)."""
        if self._closed:
            raise LrlabError("this Monitor is closed; create a new one to record more")
        step = check.whole("step", step)
        at = f"(evaluation at step {step})"
        v = _as_float(f"val_loss {at}", val_loss)  # may be NaN/inf: a divergence
        m = {k: check.number(f"metrics[{k!r}] {at}", _as_float(f"metrics[{k!r}] {at}", x))
             for k, x in metrics.items()}
        self._log.add_eval(step, v, m)
        self._last_t = None  # the next update's throughput excludes the evaluation
        t = self._clock() - self._t0
        if self._files is not None:
            self._files.evaluation(step, v, m, t)
        if self.diagnose_live and (not math.isfinite(v) or self._clock() >= self._next_diag):
            self._diagnose_live()

    def _diagnose_live(self) -> None:
        self._since_diag = 0
        t0 = self._clock()
        found = diagnose(self._log.curves(), thresholds=self.thresholds)
        t1 = self._clock()
        self._n_diag += 1
        # the first diagnosis is cold (see diagnose_live): the budget spaces out the ones after the second
        self._next_diag = t1 if self._n_diag == 1 else t1 + (t1 - t0) / self.diagnose_budget
        self._report(found)

    def _report(self, found: list[Finding]) -> None:
        """Log, record and hand on the findings of a kind not reported before."""
        for f in found:
            if f.kind in self._seen:
                continue
            self._seen.add(f.kind)
            self._findings.append(f)
            if self._files is not None:
                self._files.record({"type": "finding", **f.to_dict()})
            level = logging.ERROR if f.severity == "error" else logging.WARNING
            _log.log(level, "step %d: %s: %s; advice: %s", f.step, f.kind, f.message, f.advice)
            if self.on_finding is not None:
                self.on_finding(f)

    # -------------------------------------------------------------------------------------------- results

    @property
    def findings(self) -> list[Finding]:
        """The live findings so far (and, after `close`, the final diagnosis's), one per kind, in the order they
        were first detected."""
        return list(self._findings)

    @property
    def total_steps(self) -> int | None:
        """The planned number of updates (None: unknown)."""
        return self._log.total_steps

    def set_total_steps(self, total_steps: int, *, replace: bool = False) -> None:
        """Set the planned number of updates once it is known (the callbacks take it from the trainer), so that
        the live advice ("5% of training") is right during the run; recorded in the JSONL. A plan given before
        (to the constructor or by a resumed log) is kept unless `replace`."""
        n = check.whole("total_steps", total_steps, minimum=1)
        if self._log.total_steps is not None and not replace:
            return
        self._log.total_steps = n
        if self._files is not None:
            self._files.meta(n)

    @property
    def diverged(self) -> bool:
        """True once a live diagnosis found a divergence (a loop may stop on it)."""
        return "divergence" in self._seen

    def curves(self) -> Curves:
        """The recorded data as a `lrlab.diagnose.Curves` value."""
        return self._log.curves()

    def diagnose(self) -> list[Finding]:
        """A full diagnosis of everything recorded so far, with `log_coverage`'s warning first when the training
        losses were recorded too rarely to diagnose, and `at_chance`'s error when `chance_loss` is known."""
        curves = self._log.curves()
        extra = [log_coverage(curves, self.thresholds)]
        if self.chance_loss is not None:
            extra.append(at_chance(curves, self.chance_loss))
        return [f for f in extra if f is not None] + diagnose(curves, thresholds=self.thresholds)

    def close(self) -> list[Finding]:
        """Run a full diagnosis (with live diagnoses on, its new kinds are reported like live ones: logged, in
        the JSONL, to `on_finding` and in `findings`); write it to ``findings.json`` (atomically); close the
        files; return it. Calling it again returns the same diagnosis."""
        if self._closed:
            return self.diagnose()
        self._closed = True
        try:
            findings = self.diagnose()
            if self.diagnose_live:
                self._report(findings)
            if self._files is not None:
                self._files.write_findings(findings, n_steps=len(self._log.step), n_evals=len(self._log.eval_step))
        finally:
            if self._files is not None:
                self._files.close()
        return findings

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------------------------------------- helpers

    @staticmethod
    def lrs_from_optimizer(optimizer: Any) -> list[float]:
        """The LR of every parameter group of a torch optimizer, as applied by its last step.

        For the ``schedulefree`` optimizers (AdamW/SGD/RAdam ScheduleFree) this is ``group["scheduled_lr"]``:
        ``group["lr"]`` times their internal warm-up factor (AdamW, SGD) or RAdam rectification, which they
        store there at each step; before their first step (``group["k"] == 0``) it is ``group["lr"]``.
        Tensor LRs are read with ``float()``.
        """
        groups = getattr(optimizer, "param_groups", None)
        if groups is None:
            raise LrlabError(f"optimizer must have param_groups (a torch optimizer), got {type(optimizer).__name__}")
        out = []
        for g in groups:
            if "scheduled_lr" in g and g.get("k", 0) > 0:
                out.append(float(g["scheduled_lr"]))
            else:
                out.append(float(g["lr"]))
        return out

    def hf_callback(self) -> Any:
        """A Hugging Face ``transformers.TrainerCallback`` feeding this Monitor (imports transformers).

        It records the LR of every group as applied by each optimizer step (schedule-free included), the
        training loss and gradient norm where the Trainer logs them (set ``logging_steps=1`` for every update,
        and ``logging_nan_inf_filter=False``, else the Trainer replaces NaN losses by an average and hides a
        divergence), tokens from ``state.num_input_tokens_seen`` when the Trainer counts them, and
        ``eval_loss`` (plus the other ``eval_*`` metrics) at each evaluation. It sets the Monitor's `total_steps`
        (when not given) from ``state.max_steps`` when training begins, and closes the Monitor when training ends.
        """
        from lrlab.integrations import lazy_class  # it builds the class on first use (imports transformers)

        return lazy_class("HFMonitorCallback")(self)

    def lightning_callback(self, *, grad_norm: bool = False, val_key: str | None = None,
                           package: str | None = None) -> Any:
        """A Lightning ``Callback`` feeding this Monitor, subclassing the ``Callback`` of `package`:
        ``"lightning.pytorch"`` (or ``"lightning"``) or ``"pytorch_lightning"`` (a Trainer accepts only its own
        package's callbacks). None: the one already imported (the one your Trainer comes from; ``lightning.pytorch``
        when both are), else the installed one.

        Per optimizer update (gradient accumulation included) it records the LR of every group of the first
        optimizer as applied, the mean training loss of the update's micro-batches (the ``loss`` that
        ``training_step`` returns) and, with ``grad_norm=True``, the total gradient norm (one extra pass over the
        gradients). After each validation (sanity checks skipped) it records ``val_key`` from
        ``trainer.callback_metrics`` (default: the first of "val_loss", "val/loss", "validation_loss" present).
        It sets the Monitor's `total_steps` (when not given) from ``trainer.estimated_stepping_batches`` and
        closes the Monitor when training ends.
        """
        from lrlab.integrations import lightning_class  # it builds the class on first use (imports lightning)

        return lightning_class("LightningMonitorCallback", package)(self, grad_norm=grad_norm, val_key=val_key)


def __getattr__(name: str) -> Any:
    """`lrlab.monitor.HFMonitorCallback` / `LightningMonitorCallback`: moved to `lrlab.integrations`; still
    found here."""
    if name in ("HFMonitorCallback", "LightningMonitorCallback"):
        import lrlab.integrations  # imported on demand: it builds the class, importing the framework

        return getattr(lrlab.integrations, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
