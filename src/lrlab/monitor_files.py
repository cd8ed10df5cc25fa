"""The files of a Monitor folder: written as a run goes (`MonitorFiles`), read back (`load_curves`, `RunLog`).

Files (all optional): ``monitor.jsonl`` (one JSON object per line, ``{"type": "meta"|"step"|"eval"|"finding",
...}``, NaN/inf as the strings "nan"/"inf"/"-inf"), ``steps.csv`` and ``evals.csv``, ``tb/`` (TensorBoard
scalars), ``findings.json`` (written atomically at close). Files are only appended to; a step at or below one
already recorded (a resumed run) replaces the records from that step on, in memory (`RunLog`) and when read
back. Record layouts: docs/monitor.md. This module imports neither torch nor tensorboard at import time.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lrlab.checks import check
from lrlab.diagnose import Curves, Finding, json_float, parse_float
from lrlab.errors import LrlabError
from lrlab.files import decode_utf8, file_error, open_append, open_update, read_text, write_json

FORMAT = "lrlab.monitor/1"
JSONL_FILE = "monitor.jsonl"
STEPS_CSV = "steps.csv"
EVALS_CSV = "evals.csv"
FINDINGS_FILE = "findings.json"
TB_DIR = "tb"


# ------------------------------------------------------------------------------------------------ records


@dataclass(kw_only=True)
class RunLog:
    """The records of one run, with the resume rule: a step at or below the last one rewinds."""

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


# ------------------------------------------------------------------------------------------------ writing


def _jnum(x: float | None) -> str:
    """A number as JSON text; NaN/inf as the strings "nan"/"inf"/"-inf" (see `lrlab.diagnose.json_float`)."""
    if x is None:
        return "null"
    if math.isfinite(x):
        return repr(x)
    return '"nan"' if math.isnan(x) else ('"inf"' if x > 0 else '"-inf"')


def _csv(x: float | None) -> str:
    if x is None:
        return ""
    return repr(float(x)) if math.isfinite(x) else str(json_float(x))


class MonitorFiles:
    """The files of one Monitor folder, open for appending; the caller decides when to flush the step records.

    Args:
        folder: the Monitor's ``out_dir`` (created).
        jsonl: write ``monitor.jsonl``.
        csv: write ``steps.csv`` and ``evals.csv`` (columns fixed by the first record of each).
        tensorboard: write ``tb/``: None when the ``tensorboard`` package is installed, True always (`LrlabError`
            when it is missing), False never. `tb` is None when it is off.
    """

    def __init__(self, folder: Path, *, jsonl: bool, csv: bool, tensorboard: bool | None) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.jsonl: io.TextIOWrapper | None = None
        self.steps_csv: io.TextIOWrapper | None = None
        self.evals_csv: io.TextIOWrapper | None = None
        self._steps_cols: list[str] | None = None
        self._evals_cols: list[str] | None = None
        if jsonl:
            path = folder / JSONL_FILE
            if path.exists():
                drop_partial_line(path)
            self.jsonl = open_append(path)  # closed in close(); a symbolic link there is refused
        if csv:
            self.steps_csv, self._steps_cols = _open_csv(folder / STEPS_CSV)
            self.evals_csv, self._evals_cols = _open_csv(folder / EVALS_CSV)
        self.tb: _TBWriter | None = None
        if tensorboard is not False:
            self.tb = _TBWriter.open(folder / TB_DIR, required=tensorboard is True)

    def record(self, record: Mapping[str, Any]) -> None:
        """One JSONL record (meta, finding), flushed at once with everything before it."""
        if self.jsonl is not None:
            self.jsonl.write(json.dumps(record, separators=(",", ":")) + "\n")
        self.flush()

    def meta(self, total_steps: int | None, *, started: bool = False) -> None:
        """A meta record: the format, the planned updates and (at the start of a session) the time."""
        rec: dict[str, Any] = {"type": "meta", "format": FORMAT, "total_steps": total_steps}
        if started:
            rec["started"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.record(rec)

    def step(self, step: int, lr: tuple[float, ...], loss: float | None, grad_norm: float | None,
             tokens: float | None, t: float, updates_per_s: float | None, tokens_per_s: float | None) -> None:
        """One update's record in the JSONL and CSV files (not flushed: see `flush`)."""
        if self.jsonl is not None:  # formatted by hand: json.dumps costs more than the rest of Monitor.on_step
            self.jsonl.write(
                f'{{"type":"step","step":{step},"lr":[{",".join(map(repr, lr))}],"loss":{_jnum(loss)},'
                f'"grad_norm":{_jnum(grad_norm)},"tokens":{_jnum(tokens)},"time":{t:.6f},'
                f'"updates_per_s":{_jnum(updates_per_s)},"tokens_per_s":{_jnum(tokens_per_s)}}}\n')
        if self.steps_csv is not None:
            row = {"step": str(step), "loss": _csv(loss), "grad_norm": _csv(grad_norm), "tokens": _csv(tokens),
                   "time": f"{t:.6f}", "updates_per_s": _csv(updates_per_s), "tokens_per_s": _csv(tokens_per_s)}
            row.update({f"lr_{i}": repr(v) for i, v in enumerate(lr)})
            self._csv_row(STEPS_CSV, row)

    def tensorboard_step(self, step: int, lr: tuple[float, ...], loss: float | None, grad_norm: float | None,
                         updates_per_s: float | None, tokens_per_s: float | None) -> None:
        """One update's TensorBoard scalars: ``lr/group{i}``, ``loss/train``, ``grad_norm``, ``throughput/*``."""
        if self.tb is None:
            return
        scalars = [(f"lr/group{i}", v) for i, v in enumerate(lr)]
        for tag, x in (("loss/train", loss), ("grad_norm", grad_norm), ("throughput/tokens_per_s", tokens_per_s),
                       ("throughput/updates_per_s", updates_per_s)):
            if x is not None:
                scalars.append((tag, x))
        self.tb.write(step, scalars)

    def evaluation(self, step: int, val_loss: float, metrics: Mapping[str, float], t: float) -> None:
        """One evaluation's records in every file, flushed at once."""
        if self.jsonl is not None:
            self.jsonl.write(json.dumps({"type": "eval", "step": step, "val_loss": json_float(val_loss),
                                         "metrics": dict(metrics), "time": round(t, 6)}, separators=(",", ":"))
                             + "\n")
        if self.evals_csv is not None:
            row = {"step": str(step), "val_loss": _csv(val_loss), "time": f"{t:.6f}"}
            row.update({k: repr(x) for k, x in sorted(metrics.items())})
            self._csv_row(EVALS_CSV, row)
        if self.tb is not None:
            self.tb.write(step, [("loss/val", val_loss), *((f"eval/{k}", x) for k, x in metrics.items())])
        self.flush()

    def _csv_row(self, name: str, row: dict[str, str]) -> None:
        steps = name == STEPS_CSV
        fh = self.steps_csv if steps else self.evals_csv
        assert fh is not None
        cols = self._steps_cols if steps else self._evals_cols
        if cols is None:
            cols = list(row)
            fh.write(",".join(cols) + "\n")
            if steps:
                self._steps_cols = cols
            else:
                self._evals_cols = cols
        elif set(row) != set(cols):
            raise LrlabError(f"this record has columns {sorted(row)} but {name} has {sorted(cols)}: CSV needs the "
                             f"same LR groups and metrics in every record (JSONL does not)")
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerow([row[c] for c in cols])
        fh.write(out.getvalue())

    def flush(self) -> None:
        """Push buffered records to the files (one write system call each)."""
        for fh in (self.jsonl, self.steps_csv, self.evals_csv):
            if fh is not None:
                try:
                    fh.flush()
                except OSError as e:  # disk full, ...
                    raise file_error("write", fh.name, e) from None

    def write_findings(self, findings: Sequence[Finding], *, n_steps: int, n_evals: int) -> None:
        """``findings.json``: standard JSON, atomically (`lrlab.files.write_json`, flushed to the disk)."""
        doc = {"format": FORMAT, "findings": [f.to_dict() for f in findings], "n_steps": n_steps, "n_evals": n_evals}
        write_json(self.folder / FINDINGS_FILE, doc, fsync=True)

    def close(self) -> None:
        for fh in (self.jsonl, self.steps_csv, self.evals_csv):
            if fh is not None:
                fh.close()
        if self.tb is not None:
            self.tb.close()


#: the public TensorBoard writers, preferred first: the module of ``SummaryWriter`` and of the ``Summary`` protocol
#: buffer its ``file_writer.add_summary`` takes
_WRITERS = (("torch.utils.tensorboard", "tensorboard.compat.proto.summary_pb2"),
            ("tensorboardX", "tensorboardX.proto.summary_pb2"))


def public_writer() -> tuple[Any, Any]:
    """(``SummaryWriter``, ``Summary``): torch's ``torch.utils.tensorboard`` (needs torch and tensorboard), else
    tensorboardX's (the same API, without torch). ImportError when neither can load."""
    import importlib

    errors = []
    for writer, proto in _WRITERS:
        try:
            return importlib.import_module(writer).SummaryWriter, importlib.import_module(proto).Summary
        except ImportError as e:
            errors.append(f"{writer}: {e}")
    raise ImportError("; ".join(errors))


class _TBWriter:
    """TensorBoard event files through the public ``SummaryWriter`` (`public_writer`). A record's scalars go in one
    event, through the writer's ``file_writer.add_summary``: five ``add_scalar`` calls (an event each) cost 3.7x as
    much, which would take the Monitor past its 1 % budget (BENCHMARKS.md)."""

    def __init__(self, folder: Path) -> None:
        # imported here: tensorboard is optional, and slow to import
        writer, self._summary = public_writer()
        self._writer = writer(log_dir=str(folder), max_queue=100, flush_secs=10)

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
        summary = self._summary(value=[self._summary.Value(tag=tag, simple_value=x) for tag, x in scalars])
        self._writer.file_writer.add_summary(summary, step, time.time())

    def close(self) -> None:
        self._writer.close()


def _open_csv(path: Path) -> tuple[io.TextIOWrapper, list[str] | None]:
    cols = None
    if path.exists() and path.stat().st_size > 0:
        drop_partial_line(path)
        with open(path, "rb") as fb:
            head = decode_utf8(fb.readline(), path, what="Monitor log")  # UTF-16 refused naming the file
        cols = next(csv.reader(io.StringIO(head, newline="")), None)
    return open_append(path, newline=""), cols


def drop_partial_line(path: Path) -> None:
    """Cut a last line that a crash left without its newline, so that appending starts on a fresh line."""
    with open_update(path) as fh:  # a symbolic link there is refused
        data = fh.read()
        if data and not data.endswith(b"\n"):
            fh.truncate(data.rfind(b"\n") + 1)


# ------------------------------------------------------------------------------------------------ reading


def _finite(name: str, x: object) -> float:
    """A finite number from JSON/CSV (where NaN/inf would be the strings "nan"/"inf")."""
    return check.number(name, parse_float(x, name))


def read_jsonl(path: Path, *, into: RunLog | None = None) -> RunLog:
    """The records of a ``monitor.jsonl`` file (appended to `into` when given)."""
    log = into if into is not None else RunLog()
    text = read_text(path, what="Monitor log")  # a file that is not UTF-8 (UTF-16, binary) is refused naming it
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
                log.total_steps = check.whole(f"{where}: total_steps", rec["total_steps"])
        elif kind == "step":
            step = check.whole(f"{where}: step", rec.get("step"))
            lrs = rec.get("lr")
            if not isinstance(lrs, list) or not lrs:
                raise LrlabError(f"{where}: 'lr' must be a non-empty list of numbers, got {lrs!r}")
            lr = tuple(_finite(f"{where}: lr[{i}]", v) for i, v in enumerate(lrs))
            tok = parse_float(rec.get("tokens"), f"{where}: tokens")
            log.add_step(step, lr, parse_float(rec.get("loss"), f"{where}: loss"),
                         parse_float(rec.get("grad_norm"), f"{where}: grad_norm"), tok,
                         float(rec.get("time") or 0.0))
        elif kind == "eval":
            step = check.whole(f"{where}: step", rec.get("step"))
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


def read_csv(steps: Path, evals: Path | None, *, into: RunLog | None = None) -> RunLog:
    """The records of a ``steps.csv`` file and its ``evals.csv`` (appended to `into` when given)."""
    log = into if into is not None else RunLog()
    with io.StringIO(read_text(steps, what="Monitor log"), newline="") as fh:
        reader = csv.DictReader(fh)
        cols = reader.fieldnames or []
        lr_cols = sorted((c for c in cols if c.startswith("lr_")), key=lambda c: int(c[3:]))
        if "step" not in cols or not lr_cols:
            raise LrlabError(f"{steps}: a steps CSV needs columns 'step' and 'lr_0' (..), got {cols}")
        for n, row in enumerate(reader, 2):
            where = f"{steps}:{n}"
            step = check.whole(f"{where}: step", parse_float(row["step"], f"{where}: step"))
            lr = tuple(_finite(f"{where}: {c}", row[c]) for c in lr_cols)
            log.add_step(step, lr, parse_float(row.get("loss") or None, f"{where}: loss"),
                         parse_float(row.get("grad_norm") or None, f"{where}: grad_norm"),
                         parse_float(row.get("tokens") or None, f"{where}: tokens"), float(row.get("time") or 0.0))
    if evals is not None:
        with io.StringIO(read_text(evals, what="Monitor log"), newline="") as fh:
            reader = csv.DictReader(fh)
            cols = reader.fieldnames or []
            if "step" not in cols or "val_loss" not in cols:
                raise LrlabError(f"{evals}: an evals CSV needs columns 'step' and 'val_loss', got {cols}")
            extra = [c for c in cols if c not in ("step", "val_loss", "time")]
            for n, row in enumerate(reader, 2):
                where = f"{evals}:{n}"
                step = check.whole(f"{where}: step", parse_float(row["step"], f"{where}: step"))
                v = parse_float(row["val_loss"] or None, f"{where}: val_loss")
                if v is None:
                    raise LrlabError(f"{where}: val_loss is empty")
                log.add_eval(step, v, {c: _finite(f"{where}: {c}", row[c]) for c in extra if row.get(c)})
    return log


def resume_log(folder: Path, *, jsonl: bool, csv: bool, into: RunLog) -> RunLog:
    """The records a Monitor folder already holds (its JSONL when `jsonl`, else its CSV files when `csv`), so a
    resumed run continues its curves; `into` when there are none. Drops a torn last JSONL line first."""
    jpath, spath, epath = folder / JSONL_FILE, folder / STEPS_CSV, folder / EVALS_CSV
    if jsonl and jpath.exists() and jpath.stat().st_size > 0:
        drop_partial_line(jpath)
        return read_jsonl(jpath, into=into)
    if csv and spath.exists() and spath.stat().st_size > 0:
        return read_csv(spath, epath if epath.exists() else None, into=into)
    return into


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
        log = read_csv(p, ev if ev.exists() else None)
    elif p.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        log = read_jsonl(p)
    else:
        raise LrlabError(f"log {str(path)!r}: expected a .jsonl or .csv file (or a Monitor folder)")
    if total_steps is not None:
        log.total_steps = check.whole("total_steps", total_steps, minimum=1)
    if not log.step and not log.eval_step:
        raise LrlabError(f"log {str(path)!r} holds no step or eval records")
    return log.curves()
