"""`Monitor`: records what a training run did, per update, and diagnoses it live.

Per update it records the LR of every parameter group (Hugging Face's Trainer logs group 0 only; for
schedule-free optimizers the LR actually applied, see `Monitor.lrs_from_optimizer`), the training loss, the
gradient norm (optional) and the throughput (updates/s, and tokens/s when given the tokens trained so far); at
each evaluation the validation loss and any further metrics. It writes them as they come (appended and flushed
line by line) to JSONL and/or CSV files, and to TensorBoard scalars when tensorboard is installed, and keeps them
in memory for the live diagnoses of `lrlab.diagnose`.

Use it with plain calls in any loop::

    monitor = Monitor("runs/a", total_steps=1000)
    for step in range(1000):
        ...; optimizer.step()
        monitor.on_step(step, lrs=Monitor.lrs_from_optimizer(optimizer), loss=loss.item())
        if step % 100 == 0:
            monitor.on_eval(step + 1, val_loss=evaluate())
    monitor.close()          # writes findings.json
    print(monitor.findings)

or attach `monitor.hf_callback()` to a Hugging Face ``Trainer`` / `monitor.lightning_callback()` to a Lightning
``Trainer``. `load_curves(path)` reads the files back (the input of ``lrlab diagnose LOG``).

Steps. ``step`` in `on_step` is the 0-based index of the update (the schedule clock at which its LR was set);
``step`` in `on_eval` is the number of updates done. Steps normally increase; a step at or below one already
recorded means the run was resumed from a checkpoint (or restarted): the records from that step on are dropped
and replaced, in memory and when the files are read back (files are only ever appended to).

Files in ``out_dir`` (all optional): ``monitor.jsonl`` (one JSON object per line: ``{"type": "meta"|"step"|
"eval"|"finding", ...}``; NaN/inf are written as the strings "nan"/"inf"/"-inf" so that strict JSON readers
accept them), ``steps.csv`` and ``evals.csv``, ``tb/`` (TensorBoard), ``findings.json`` (written atomically by
`close`).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lrlab.diagnose import Curves, Finding, Thresholds, diagnose, json_float, parse_float
from lrlab.errors import LrlabError
from lrlab.files import atomic_write_text

FORMAT = "lrlab.monitor/1"
JSONL_FILE = "monitor.jsonl"
STEPS_CSV = "steps.csv"
EVALS_CSV = "evals.csv"
FINDINGS_FILE = "findings.json"
TB_DIR = "tb"

_log = logging.getLogger("lrlab.monitor")


# ------------------------------------------------------------------------------------------------ records


@dataclass(kw_only=True)
class _Log:
    """The records of one run, with the resume semantics: a step at or below the last one rewinds."""

    step: list[int] = field(default_factory=list)
    lr: list[tuple[float, ...]] = field(default_factory=list)
    loss: list[float | None] = field(default_factory=list)
    grad_norm: list[float | None] = field(default_factory=list)
    tokens: list[float | None] = field(default_factory=list)
    time: list[float] = field(default_factory=list)
    eval_step: list[int] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    metrics: list[dict[str, float]] = field(default_factory=list)
    total_steps: int | None = None

    def add_step(self, step: int, lr: tuple[float, ...], loss: float | None, grad_norm: float | None,
                 tokens: float | None, t: float) -> bool:
        """Append a training record; returns True when it rewound earlier records."""
        rewound = bool(self.step) and step <= self.step[-1]
        if rewound:
            self._cut_steps(step)
            self._cut_evals(step + 1)
        self.step.append(step)
        self.lr.append(lr)
        self.loss.append(loss)
        self.grad_norm.append(grad_norm)
        self.tokens.append(tokens)
        self.time.append(t)
        return rewound

    def add_eval(self, step: int, val_loss: float, metrics: dict[str, float]) -> None:
        if self.eval_step and step <= self.eval_step[-1]:
            self._cut_evals(step)
        self.eval_step.append(step)
        self.val_loss.append(val_loss)
        self.metrics.append(metrics)

    def _cut_steps(self, step: int) -> None:
        k = next((i for i in range(len(self.step) - 1, -1, -1) if self.step[i] < step), -1) + 1
        for name in ("step", "lr", "loss", "grad_norm", "tokens", "time"):
            del getattr(self, name)[k:]

    def _cut_evals(self, step: int) -> None:
        k = next((i for i in range(len(self.eval_step) - 1, -1, -1) if self.eval_step[i] < step), -1) + 1
        del self.eval_step[k:], self.val_loss[k:], self.metrics[k:]

    def curves(self) -> Curves:
        names = sorted({k for m in self.metrics for k in m})
        metrics = {k: tuple(m.get(k, math.nan) for m in self.metrics) for k in names}
        metrics = {k: v for k, v in metrics.items() if all(math.isfinite(x) for x in v)}
        return Curves(step=tuple(self.step), loss=tuple(self.loss), lr=tuple(self.lr),
                      grad_norm=tuple(self.grad_norm) if any(g is not None for g in self.grad_norm) else (),
                      eval_step=tuple(self.eval_step), val_loss=tuple(self.val_loss), eval_metrics=metrics,
                      total_steps=self.total_steps)


def _number(name: str, value: object, *, finite: bool, step: int, what: str = "step") -> float:
    """`value` as a float (Python/NumPy numbers and 1-element tensors); non-finite only when `finite` is False.
    Errors name the field and ``{what} {step}``."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        raise LrlabError(f"{name} must be a number, got {value!r} ({what} {step})")
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise LrlabError(f"{name} must be a number, got {value!r} ({what} {step})") from None
    if finite and not math.isfinite(v):
        raise LrlabError(f"{name} is {v} ({what} {step}): it must be finite (only losses and gradient norms may "
                         f"be NaN/inf, which is how divergence shows)")
    return v


def _jnum(x: float | None) -> str:
    """A number as JSON text; NaN/inf as the strings "nan"/"inf"/"-inf" (see `lrlab.diagnose.json_float`)."""
    if x is None:
        return "null"
    if math.isfinite(x):
        return repr(x)
    return '"nan"' if math.isnan(x) else ('"inf"' if x > 0 else '"-inf"')


def _check_step(name: str, step: object) -> int:
    if isinstance(step, bool) or not isinstance(step, int):
        try:
            import numpy as np

            if isinstance(step, np.integer):
                step = int(step)
        except ImportError:  # pragma: no cover - numpy is a dependency
            pass
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise LrlabError(f"{name} must be an integer >= 0, got {step!r}")
    return step


# ------------------------------------------------------------------------------------------------ Monitor


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
        tensorboard_every: updates between TensorBoard step records (>= 1; default 10). TensorBoard's event
            writer checksums each record in pure Python, which alone costs ~1.5 % of a tiny-model update; every
            10th update keeps the default under the 1 % overhead budget (see BENCHMARKS.md). The JSONL/CSV files
            and the diagnoses always see every update.
        flush_every: seconds between flushes of the step records to the files (>= 0; 0: after every update).
            Evaluations, findings and a NaN/inf loss are flushed at once, and everything on `close`; a crash
            (``kill -9``) loses at most this much of the step records, and a resumed Monitor drops a torn last
            line. One write system call per update would cost ~60 us, about 1 % of a tiny-model update.
        diagnose_live: run `lrlab.diagnose.diagnose` during training: at once on a NaN/inf loss, and otherwise
            at evaluations and every `diagnose_every` updates, but no sooner after the previous diagnosis than
            its own duration / `diagnose_budget` (so diagnoses take at most that fraction of the wall time,
            however long the run). The first diagnosis is exempt from the wait: it pays one-off costs (NumPy's
            first linear-algebra calls, ~10x a later diagnosis) that would otherwise delay the second one for
            thousands of updates. New findings are logged (logger ``lrlab.monitor``), appended to the JSONL
            and passed to `on_finding`.
        total_steps: planned number of updates (makes "5% of training" in the advice exact); None: unknown.
        thresholds: diagnosis thresholds (`lrlab.diagnose.Thresholds()` when None).
        diagnose_every: see `diagnose_live` (>= 1 records).
        diagnose_budget: see `diagnose_live`: a fraction of the wall time in (0, 1].
        on_finding: called with each new live `Finding`.
        clock: the time source in seconds (``time.perf_counter``; tests pass a fake one).

    Files in an existing ``out_dir`` are appended to, and their records are loaded first, so a resumed run
    continues its curves (see the module docstring for how a resumed step replaces later records).
    """

    def __init__(self, out_dir: str | os.PathLike[str] | None = None, *, jsonl: bool = True, csv: bool = False,
                 tensorboard: bool | None = None, tensorboard_every: int = 10, flush_every: float = 1.0,
                 diagnose_live: bool = True, total_steps: int | None = None,
                 thresholds: Thresholds | None = None, diagnose_every: int = 50, diagnose_budget: float = 0.001,
                 on_finding: Callable[[Finding], None] | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        if total_steps is not None:
            total_steps = _check_step("total_steps", total_steps)
            if total_steps < 1:
                raise LrlabError(f"total_steps must be >= 1 or None, got {total_steps}")
        if isinstance(tensorboard_every, bool) or not isinstance(tensorboard_every, int) or tensorboard_every < 1:
            raise LrlabError(f"tensorboard_every must be an integer >= 1, got {tensorboard_every!r}")
        if isinstance(diagnose_every, bool) or not isinstance(diagnose_every, int) or diagnose_every < 1:
            raise LrlabError(f"diagnose_every must be an integer >= 1, got {diagnose_every!r}")
        if isinstance(diagnose_budget, bool) or not isinstance(diagnose_budget, (int, float)) or \
                not 0 < diagnose_budget <= 1:
            raise LrlabError(f"diagnose_budget must be in (0, 1], got {diagnose_budget!r}")
        if thresholds is not None and not isinstance(thresholds, Thresholds):
            raise LrlabError(f"thresholds must be an lrlab.diagnose.Thresholds, got {type(thresholds).__name__}")
        self.out_dir = Path(out_dir) if out_dir is not None else None
        if tensorboard not in (None, True, False):
            raise LrlabError(f"tensorboard must be None (when installed), True or False, got {tensorboard!r}")
        if self.out_dir is None and tensorboard:
            raise LrlabError("tensorboard=True needs out_dir (the event files go to out_dir/tb)")
        self.use_jsonl = jsonl and self.out_dir is not None
        self.use_csv = csv and self.out_dir is not None
        self.use_tb = self.out_dir is not None and tensorboard is not False  # settled in _open
        self._tb_required = tensorboard is True
        self.tensorboard_every = tensorboard_every
        if isinstance(flush_every, bool) or not isinstance(flush_every, (int, float)) or not flush_every >= 0:
            raise LrlabError(f"flush_every must be a number of seconds >= 0, got {flush_every!r}")
        self.flush_every = float(flush_every)
        self._last_flush = -math.inf
        self._since_tb = tensorboard_every  # the first update is written
        self.diagnose_live = diagnose_live
        self.thresholds = thresholds if thresholds is not None else Thresholds()
        self.diagnose_every = diagnose_every
        self.diagnose_budget = float(diagnose_budget)
        self._next_diag = -math.inf
        self._n_diag = 0
        self.on_finding = on_finding
        self._log = _Log(total_steps=total_steps)
        self._clock = clock
        self._t0 = clock()
        self._last_t: float | None = None
        self._findings: list[Finding] = []
        self._seen: set[str] = set()
        self._since_diag = 0
        self._jsonl: io.TextIOWrapper | None = None
        self._steps_csv: io.TextIOWrapper | None = None
        self._evals_csv: io.TextIOWrapper | None = None
        self._steps_cols: list[str] | None = None
        self._evals_cols: list[str] | None = None
        self._tb: _TBWriter | None = None
        self._closed = False
        if self.out_dir is not None:
            self._open()

    # -------------------------------------------------------------------------------------------- files

    def _open(self) -> None:
        assert self.out_dir is not None
        self.out_dir.mkdir(parents=True, exist_ok=True)
        jpath, spath, epath = self.out_dir / JSONL_FILE, self.out_dir / STEPS_CSV, self.out_dir / EVALS_CSV
        given_total = self._log.total_steps
        if self.use_jsonl and jpath.exists() and jpath.stat().st_size > 0:
            _drop_partial_line(jpath)
            self._log = _read_jsonl(jpath, into=self._log)
        elif self.use_csv and spath.exists() and spath.stat().st_size > 0:
            self._log = _read_csv(spath, epath if epath.exists() else None, into=self._log)
        if given_total is not None:  # this session's plan wins over the one recorded earlier
            self._log.total_steps = given_total
        if self.use_jsonl:
            self._jsonl = open(jpath, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
            self._write_json({"type": "meta", "format": FORMAT, "total_steps": self._log.total_steps,
                              "started": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        if self.use_csv:
            self._steps_csv, self._steps_cols = _open_csv(spath)
            self._evals_csv, self._evals_cols = _open_csv(epath)
        if self.use_tb:
            self._tb = _TBWriter.open(self.out_dir / TB_DIR, required=self._tb_required)
            self.use_tb = self._tb is not None

    def _write_json(self, record: Mapping[str, Any]) -> None:
        if self._jsonl is not None:
            self._jsonl.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._flush()

    def flush(self) -> None:
        """Write every buffered record to the files now (they are also flushed every `flush_every` seconds, at
        evaluations, findings and `close`)."""
        self._flush(self._last_t)

    def _flush(self, now: float | None = None) -> None:
        """Push buffered records to the files (meta, evaluations and findings at once; steps at most every
        `flush_every` seconds: one write system call per update costs more than the rest of `on_step`)."""
        for fh in (self._jsonl, self._steps_csv, self._evals_csv):
            if fh is not None:
                fh.flush()
        if now is not None:
            self._last_flush = now

    def _write_csv_row(self, kind: str, row: dict[str, str]) -> None:
        fh = self._steps_csv if kind == "steps" else self._evals_csv
        if fh is None:
            return
        cols = self._steps_cols if kind == "steps" else self._evals_cols
        if cols is None:
            cols = list(row)
            fh.write(",".join(cols) + "\n")
            if kind == "steps":
                self._steps_cols = cols
            else:
                self._evals_cols = cols
        elif set(row) != set(cols):
            name = STEPS_CSV if kind == "steps" else EVALS_CSV
            raise LrlabError(f"this record has columns {sorted(row)} but {name} has {sorted(cols)}: CSV needs the "
                             f"same LR groups and metrics in every record (JSONL does not)")
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerow([row[c] for c in cols])
        fh.write(out.getvalue())
        if kind != "steps":
            self._flush()

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
        step = _check_step("step", step)
        try:
            items = list(lrs)  # type: ignore[arg-type]
        except TypeError:  # one number (a float, a NumPy scalar, a 0-d tensor)
            items = [lrs]  # type: ignore[list-item]
        if not items:
            raise LrlabError(f"lrs must hold the LR of at least one parameter group, got {lrs!r} (step {step})")
        lr = tuple(_number(f"lrs[{i}]", x, finite=True, step=step) for i, x in enumerate(items))
        for i, v in enumerate(lr):
            if v < 0:
                raise LrlabError(f"lrs[{i}] must be >= 0, got {v} (step {step})")
        loss_v = None if loss is None else _number("loss", loss, finite=False, step=step)
        gn = None if grad_norm is None else _number("grad_norm", grad_norm, finite=False, step=step)
        tok = None if tokens is None else _number("tokens", tokens, finite=True, step=step)
        if tok is not None and tok < 0:
            raise LrlabError(f"tokens must be >= 0, got {tok} (step {step})")

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
        if self._jsonl is not None:  # formatted by hand: json.dumps costs more than the rest of on_step together
            self._jsonl.write(
                f'{{"type":"step","step":{step},"lr":[{",".join(map(repr, lr))}],"loss":{_jnum(loss_v)},'
                f'"grad_norm":{_jnum(gn)},"tokens":{_jnum(tok)},"time":{t:.6f},"updates_per_s":{_jnum(ups)},'
                f'"tokens_per_s":{_jnum(tps)}}}\n')
        if self._steps_csv is not None:
            row = {"step": str(step), "loss": _csv(loss_v), "grad_norm": _csv(gn), "tokens": _csv(tok),
                   "time": f"{t:.6f}", "updates_per_s": _csv(ups), "tokens_per_s": _csv(tps)}
            row.update({f"lr_{i}": repr(v) for i, v in enumerate(lr)})
            self._write_csv_row("steps", row)
        if now - self._last_flush >= self.flush_every or (loss_v is not None and not math.isfinite(loss_v)):
            self._flush(now)
        if self._tb is not None:
            self._since_tb += 1
        if self._tb is not None and (self._since_tb >= self.tensorboard_every or
                                     (loss_v is not None and not math.isfinite(loss_v))):
            self._since_tb = 0
            scalars = [(f"lr/group{i}", v) for i, v in enumerate(lr)]
            for tag, x in (("loss/train", loss_v), ("grad_norm", gn), ("throughput/tokens_per_s", tps),
                           ("throughput/updates_per_s", ups)):
                if x is not None:
                    scalars.append((tag, x))
            self._tb.write(step, scalars)
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
        step = _check_step("step", step)
        v = _number("val_loss", val_loss, finite=False, step=step, what="evaluation at step")
        m = {k: _number(f"metrics[{k!r}]", x, finite=True, step=step, what="evaluation at step")
             for k, x in metrics.items()}
        self._log.add_eval(step, v, m)
        self._last_t = None  # the next update's throughput excludes the evaluation
        t = self._clock() - self._t0
        if self._jsonl is not None:
            self._write_json({"type": "eval", "step": step, "val_loss": json_float(v), "metrics": m,
                              "time": round(t, 6)})
        if self._evals_csv is not None:
            row = {"step": str(step), "val_loss": _csv(v), "time": f"{t:.6f}"}
            row.update({k: repr(x) for k, x in sorted(m.items())})
            self._write_csv_row("evals", row)
        if self._tb is not None:
            self._tb.write(step, [("loss/val", v), *((f"eval/{k}", x) for k, x in m.items())])
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
            self._write_json({"type": "finding", **f.to_dict()})
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
        n = _check_step("total_steps", total_steps)
        if n < 1:
            raise LrlabError(f"total_steps must be >= 1, got {n}")
        if self._log.total_steps is not None and not replace:
            return
        self._log.total_steps = n
        self._write_json({"type": "meta", "format": FORMAT, "total_steps": n})

    @property
    def diverged(self) -> bool:
        """True once a live diagnosis found a divergence (a loop may stop on it)."""
        return "divergence" in self._seen

    def curves(self) -> Curves:
        """The recorded data as a `lrlab.diagnose.Curves` value."""
        return self._log.curves()

    def diagnose(self) -> list[Finding]:
        """A full diagnosis of everything recorded so far."""
        return diagnose(self._log.curves(), thresholds=self.thresholds)

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
            if self.out_dir is not None:
                doc = {"format": FORMAT, "findings": [f.to_dict() for f in findings],
                       "n_steps": len(self._log.step), "n_evals": len(self._log.eval_step)}
                atomic_write_text(self.out_dir / FINDINGS_FILE, json.dumps(doc, indent=2) + "\n", fsync=True)
        finally:
            for fh in (self._jsonl, self._steps_csv, self._evals_csv):
                if fh is not None:
                    fh.close()
            if self._tb is not None:
                self._tb.close()
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
        return _hf_class()(self)

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
        return _lightning_class(package)(self, grad_norm=grad_norm, val_key=val_key)


class _TBWriter:
    """TensorBoard event files written with the ``tensorboard`` package alone (no torch): one event per record
    holding all its scalars, which costs a fifth of one ``SummaryWriter.add_scalar`` call per scalar."""

    def __init__(self, folder: Path) -> None:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self._event, self._summary, self._value = Event, Summary, Summary.Value
        self._writer = EventFileWriter(str(folder), max_queue_size=100, flush_secs=10)

    @classmethod
    def open(cls, folder: Path, *, required: bool) -> _TBWriter | None:
        """The writer; None when tensorboard is not installed and not `required` (else `LrlabError`)."""
        try:
            return cls(folder)
        except ImportError as e:
            if required:
                raise LrlabError(f"tensorboard=True needs the tensorboard package installed ({e})") from None
            return None

    def write(self, step: int, scalars: Sequence[tuple[str, float]]) -> None:
        summary = self._summary(value=[self._value(tag=tag, simple_value=x) for tag, x in scalars])
        self._writer.add_event(self._event(wall_time=time.time(), step=step, summary=summary))

    def close(self) -> None:
        self._writer.close()


def _csv(x: float | None) -> str:
    if x is None:
        return ""
    return repr(float(x)) if math.isfinite(x) else str(json_float(x))


def _open_csv(path: Path) -> tuple[io.TextIOWrapper, list[str] | None]:
    cols = None
    if path.exists() and path.stat().st_size > 0:
        _drop_partial_line(path)
        with open(path, encoding="utf-8", newline="") as fh:
            cols = next(csv.reader(fh), None)
    return open(path, "a", encoding="utf-8", newline=""), cols


def _drop_partial_line(path: Path) -> None:
    """Cut a last line that a crash left without its newline, so that appending starts on a fresh line."""
    with open(path, "rb+") as fh:
        data = fh.read()
        if data and not data.endswith(b"\n"):
            fh.truncate(data.rfind(b"\n") + 1)


# ------------------------------------------------------------------------------------------------ reading


def _read_jsonl(path: Path, *, into: _Log | None = None) -> _Log:
    log = into if into is not None else _Log()
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        where = f"{path}:{n}"
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            if n == len(lines):  # a last line without its newline: cut by a crash mid-write; ignore it
                break
            raise LrlabError(f"{where}: not a JSON line ({e.msg})") from None
        if not isinstance(rec, dict):
            raise LrlabError(f"{where}: expected a JSON object, got {type(rec).__name__}")
        kind = rec.get("type")
        if kind == "meta":
            if rec.get("total_steps") is not None:
                log.total_steps = _check_step(f"{where}: total_steps", rec["total_steps"])
        elif kind == "step":
            step = _check_step(f"{where}: step", rec.get("step"))
            lrs = rec.get("lr")
            if not isinstance(lrs, list) or not lrs:
                raise LrlabError(f"{where}: 'lr' must be a non-empty list of numbers, got {lrs!r}")
            lr = tuple(_finite(f"{where}: lr[{i}]", v) for i, v in enumerate(lrs))
            tok = parse_float(rec.get("tokens"), f"{where}: tokens")
            log.add_step(step, lr, parse_float(rec.get("loss"), f"{where}: loss"),
                         parse_float(rec.get("grad_norm"), f"{where}: grad_norm"), tok,
                         float(rec.get("time") or 0.0))
        elif kind == "eval":
            step = _check_step(f"{where}: step", rec.get("step"))
            v = parse_float(rec.get("val_loss"), f"{where}: val_loss")
            if v is None:
                raise LrlabError(f"{where}: an eval record needs 'val_loss'")
            metrics = rec.get("metrics") or {}
            if not isinstance(metrics, dict):
                raise LrlabError(f"{where}: 'metrics' must be an object, got {metrics!r}")
            log.add_eval(step, v, {str(k): _finite(f"{where}: metrics[{k!r}]", x) for k, x in metrics.items()})
        elif kind == "finding":
            continue
        else:
            raise LrlabError(f"{where}: unknown record type {kind!r} (expected meta, step, eval or finding)")
    return log


def _finite(name: str, x: object) -> float:
    v = parse_float(x, name)
    if v is None or not math.isfinite(v):
        raise LrlabError(f"{name} must be a finite number, got {x!r}")
    return v


def _read_csv(steps: Path, evals: Path | None, *, into: _Log | None = None) -> _Log:
    log = into if into is not None else _Log()
    with open(steps, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        cols = reader.fieldnames or []
        lr_cols = sorted((c for c in cols if c.startswith("lr_")), key=lambda c: int(c[3:]))
        if "step" not in cols or not lr_cols:
            raise LrlabError(f"{steps}: a steps CSV needs columns 'step' and 'lr_0' (..), got {cols}")
        for n, row in enumerate(reader, 2):
            where = f"{steps}:{n}"
            step = _check_step(f"{where}: step", _int(row["step"], f"{where}: step"))
            lr = tuple(_finite(f"{where}: {c}", row[c]) for c in lr_cols)
            log.add_step(step, lr, parse_float(row.get("loss") or None, f"{where}: loss"),
                         parse_float(row.get("grad_norm") or None, f"{where}: grad_norm"),
                         parse_float(row.get("tokens") or None, f"{where}: tokens"), float(row.get("time") or 0.0))
    if evals is not None:
        with open(evals, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            cols = reader.fieldnames or []
            if "step" not in cols or "val_loss" not in cols:
                raise LrlabError(f"{evals}: an evals CSV needs columns 'step' and 'val_loss', got {cols}")
            extra = [c for c in cols if c not in ("step", "val_loss", "time")]
            for n, row in enumerate(reader, 2):
                where = f"{evals}:{n}"
                step = _check_step(f"{where}: step", _int(row["step"], f"{where}: step"))
                v = parse_float(row["val_loss"] or None, f"{where}: val_loss")
                if v is None:
                    raise LrlabError(f"{where}: val_loss is empty")
                log.add_eval(step, v, {c: _finite(f"{where}: {c}", row[c]) for c in extra if row.get(c)})
    return log


def _int(text: str | None, name: str) -> int:
    try:
        return int(str(text))
    except ValueError:
        raise LrlabError(f"{name} must be an integer, got {text!r}") from None


def load_curves(path: str | os.PathLike[str], *, total_steps: int | None = None) -> Curves:
    """Read what a `Monitor` wrote back into `Curves`.

    Args:
        path: a ``monitor.jsonl`` file, a ``steps.csv`` file (``evals.csv`` beside it is read too), a Monitor
            folder (its JSONL, else its CSV files), or an ``lrlab train`` output folder (its ``monitor/``).
        total_steps: planned run length, overriding the one recorded (None: the recorded one, if any).
    Returns:
        The curves, with resumed steps resolved (a step at or below an earlier one replaces the records from it).
    """
    p = Path(path)
    if p.is_dir() and not (p / JSONL_FILE).exists() and not (p / STEPS_CSV).exists() and (p / "monitor").is_dir():
        p = p / "monitor"  # the --out folder of `lrlab train`
    if p.is_dir():
        if (p / JSONL_FILE).exists():
            p = p / JSONL_FILE
        elif (p / STEPS_CSV).exists():
            p = p / STEPS_CSV
        else:
            raise LrlabError(f"{path}: no {JSONL_FILE} or {STEPS_CSV} in this folder")
    if not p.exists():
        raise LrlabError(f"log {str(path)!r} does not exist")
    if p.suffix.lower() == ".csv":
        ev = p.with_name(EVALS_CSV) if p.name == STEPS_CSV else p.with_name(p.stem + ".evals.csv")
        log = _read_csv(p, ev if ev.exists() else None)
    elif p.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        log = _read_jsonl(p)
    else:
        raise LrlabError(f"log {str(path)!r}: expected a .jsonl or .csv file (or a Monitor folder)")
    if total_steps is not None:
        log.total_steps = _check_step("total_steps", total_steps)
    if not log.step and not log.eval_step:
        raise LrlabError(f"log {str(path)!r} holds no step or eval records")
    return log.curves()


# ------------------------------------------------------------------------------------------------ adapters
# The adapter classes subclass the frameworks' callback bases, so they are built on first use (importing the
# framework then) from the module-level methods below, and cached: `lrlab.monitor` itself imports neither.

_CLASSES: dict[str, type] = {}


def _hf_init(self: Any, monitor: Monitor) -> None:
    self.monitor = monitor
    self._pending = None


def _hf_flush(self: Any, loss: float | None = None, grad_norm: float | None = None) -> None:
    p = self._pending
    if p is not None:
        self._pending = None
        self.monitor.on_step(p["step"], lrs=p["lrs"], loss=loss, grad_norm=grad_norm, tokens=p["tokens"])


def _hf_on_train_begin(self: Any, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
    max_steps = int(getattr(state, "max_steps", 0) or 0)
    if max_steps > 0:  # the Trainer's plan (max_steps, or epochs x updates per epoch)
        self.monitor.set_total_steps(max_steps)


def _hf_on_optimizer_step(self: Any, args: Any, state: Any, control: Any, optimizer: Any = None,
                          **kwargs: Any) -> None:
    _hf_flush(self)
    seen = int(getattr(state, "num_input_tokens_seen", 0) or 0)
    tokens = seen if seen > 0 else None  # counted only with TrainingArguments(include_num_input_tokens_seen=...)
    # before the scheduler steps: these are the LRs this update used (the Trainer logs group 0 only)
    self._pending = {"step": int(state.global_step), "lrs": Monitor.lrs_from_optimizer(optimizer),
                     "tokens": tokens}


def _hf_on_log(self: Any, args: Any, state: Any, control: Any, logs: Mapping[str, Any] | None = None,
               **kwargs: Any) -> None:
    logs = logs or {}
    if "loss" in logs and self._pending is not None and self._pending["step"] == int(state.global_step) - 1:
        _hf_flush(self, float(logs["loss"]), float(logs["grad_norm"]) if logs.get("grad_norm") is not None else None)


def _hf_on_evaluate(self: Any, args: Any, state: Any, control: Any, metrics: Mapping[str, Any] | None = None,
                    **kwargs: Any) -> None:
    metrics = metrics or {}
    if "eval_loss" not in metrics:
        return
    _hf_flush(self)
    skip = {"eval_loss", "eval_runtime", "eval_samples_per_second", "eval_steps_per_second", "epoch"}
    extra = {k.removeprefix("eval_"): float(v) for k, v in metrics.items()
             if k not in skip and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
    self.monitor.on_eval(int(state.global_step), val_loss=float(metrics["eval_loss"]), **extra)


def _hf_on_train_end(self: Any, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
    _hf_flush(self)
    self.monitor.close()


def _hf_class() -> type:
    if "hf" not in _CLASSES:
        try:
            from transformers import TrainerCallback
        except ImportError:
            raise LrlabError("Monitor.hf_callback needs transformers installed") from None
        _CLASSES["hf"] = type("HFMonitorCallback", (TrainerCallback,), {
            "__module__": __name__,
            "__doc__": "Hugging Face TrainerCallback feeding an lrlab Monitor (see Monitor.hf_callback).",
            "__init__": _hf_init, "on_train_begin": _hf_on_train_begin, "on_optimizer_step": _hf_on_optimizer_step,
            "on_log": _hf_on_log,
            "on_evaluate": _hf_on_evaluate, "on_train_end": _hf_on_train_end,
        })
    return _CLASSES["hf"]


def _pl_init(self: Any, monitor: Monitor, *, grad_norm: bool = False, val_key: str | None = None) -> None:
    self.monitor = monitor
    self.grad_norm = grad_norm
    self.val_key = val_key
    self._lrs = None
    self._gn = None
    self._losses = []
    self._last_step = -1


def _pl_on_train_start(self: Any, trainer: Any, pl_module: Any) -> None:
    self._last_step = int(trainer.global_step)
    planned = trainer.estimated_stepping_batches  # inf when neither max_steps nor max_epochs bounds the run
    if isinstance(planned, (int, float)) and math.isfinite(planned) and planned >= 1:
        self.monitor.set_total_steps(int(planned))


def _pl_on_before_optimizer_step(self: Any, trainer: Any, pl_module: Any, optimizer: Any) -> None:
    self._lrs = Monitor.lrs_from_optimizer(optimizer)  # before the scheduler steps: the LRs of this update
    if self.grad_norm:
        import torch

        grads = [p.grad.detach().float().norm() for p in pl_module.parameters() if p.grad is not None]
        self._gn = float(torch.linalg.vector_norm(torch.stack(grads))) if grads else None


def _pl_on_train_batch_end(self: Any, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
    loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
    if loss is not None:
        # automatic optimization hands back the loss divided by accumulate_grad_batches: undo it
        k = int(getattr(trainer, "accumulate_grad_batches", 1) or 1) if pl_module.automatic_optimization else 1
        self._losses.append(float(loss) * k)
    step = int(trainer.global_step)
    if step > self._last_step and self._lrs is not None:
        lrs = self._lrs
        opt = trainer.optimizers[0] if trainer.optimizers else None
        if opt is not None:  # schedule-free optimizers store the LR they applied during the step
            applied = Monitor.lrs_from_optimizer(opt)
            lrs = [a if "scheduled_lr" in g else b for a, b, g in zip(applied, lrs, opt.param_groups)]
        mean = sum(self._losses) / len(self._losses) if self._losses else None
        self.monitor.on_step(step - 1, lrs=lrs, loss=mean, grad_norm=self._gn)
        self._losses = []
        self._gn = None
        self._last_step = step


def _pl_on_validation_end(self: Any, trainer: Any, pl_module: Any) -> None:
    if getattr(trainer, "sanity_checking", False):
        return
    metrics = trainer.callback_metrics
    keys = [self.val_key] if self.val_key else ["val_loss", "val/loss", "validation_loss"]
    key = next((k for k in keys if k in metrics), None)
    if key is None:
        if self.val_key:
            raise LrlabError(f"val_key {self.val_key!r} is not among the logged metrics {sorted(metrics)}")
        return
    self.monitor.on_eval(int(trainer.global_step), val_loss=float(metrics[key]))


def _pl_on_train_end(self: Any, trainer: Any, pl_module: Any) -> None:
    self.monitor.close()


LIGHTNING_PACKAGES = ("lightning.pytorch", "pytorch_lightning")


def _lightning_package(package: str | None) -> str:
    """The Lightning package to subclass: `package` when given; else the one already imported (the one the
    user's Trainer comes from; ``lightning.pytorch`` if both are), else the installed one."""
    import importlib.util
    import sys

    if package is not None:
        if package == "lightning":
            package = "lightning.pytorch"
        if package not in LIGHTNING_PACKAGES:
            raise LrlabError(f"package must be one of lightning.pytorch (or lightning), pytorch_lightning, or None, "
                             f"got {package!r}")
        return package
    for name in LIGHTNING_PACKAGES:
        if name in sys.modules:
            return name
    for name in LIGHTNING_PACKAGES:
        try:
            if importlib.util.find_spec(name) is not None:
                return name
        except ModuleNotFoundError:  # find_spec("lightning.pytorch") without lightning
            continue
    raise LrlabError("Monitor.lightning_callback needs lightning or pytorch-lightning installed")


def _lightning_class(package: str | None = None) -> type:
    name = _lightning_package(package)
    key = f"lightning:{name}"
    if key not in _CLASSES:
        import importlib

        try:
            Callback = importlib.import_module(name).Callback
        except ImportError as e:
            raise LrlabError(f"Monitor.lightning_callback(package={name!r}) needs {name} installed ({e})") from None
        _CLASSES[key] = type("LightningMonitorCallback", (Callback,), {
            "__module__": __name__,
            "__doc__": "Lightning Callback feeding an lrlab Monitor (see Monitor.lightning_callback).",
            "__init__": _pl_init, "on_train_start": _pl_on_train_start,
            "on_before_optimizer_step": _pl_on_before_optimizer_step, "on_train_batch_end": _pl_on_train_batch_end,
            "on_validation_end": _pl_on_validation_end, "on_train_end": _pl_on_train_end,
        })
    return _CLASSES[key]


def __getattr__(name: str) -> Any:
    """`lrlab.monitor.HFMonitorCallback` / `LightningMonitorCallback`: the adapter classes, built on first use."""
    if name == "HFMonitorCallback":
        return _hf_class()
    if name == "LightningMonitorCallback":
        return _lightning_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
