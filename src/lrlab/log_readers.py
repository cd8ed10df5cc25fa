"""Training logs written by other tools, read into `lrlab.diagnose.Curves`: the Hugging Face Trainer's
``trainer_state.json``, TensorBoard event folders (HF's, Lightning's, lrlab's own ``tb/``, any ``SummaryWriter``),
Lightning's ``metrics.csv`` and CSV files in general; lrlab's own Monitor files go to
`lrlab.monitor_files.load_curves`.

`load_log(path)` finds the format (`detect`), maps the source's names to lrlab's fields (`COLUMNS`, or the
caller's ``columns``), converts its step numbering (`CONVENTIONS`), and merges the series: one training record
per step that has a loss, an LR or a gradient norm, the LR carried forward to the steps logged without one.
Used by ``lrlab diagnose LOG`` and by `lrlab.predict`. This module imports NumPy only; TensorBoard's
``EventAccumulator`` is imported when an event folder is read.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lrlab.checks import check
from lrlab.diagnose import Curves, parse_float
from lrlab.errors import LrlabError
from lrlab.files import read_text
from lrlab.monitor_files import JSONL_FILE, STEPS_CSV, RunLog, load_curves

#: the log formats `load_log` reads
KINDS = ("lrlab", "hf", "tensorboard", "csv")
#: lrlab's fields and the names other tools give them, tried in order (``*`` matches anything)
COLUMNS: Mapping[str, tuple[str, ...]] = {
    "step": ("step", "global_step", "trainer/global_step", "iteration", "iter", "Step"),
    "loss": ("loss", "train_loss", "train/loss", "loss/train", "train_loss_step", "training_loss", "train/loss_step"),
    "lr": ("lr", "learning_rate", "train/learning_rate", "lr/group*", "lr-*", "lr_*", "learning_rate/*"),
    "grad_norm": ("grad_norm", "train/grad_norm", "gradient_norm"),
    "val_loss": ("val_loss", "eval_loss", "eval/loss", "loss/val", "val/loss", "validation_loss", "val_loss_epoch",
                 "valid_loss"),
}
FIELDS = tuple(COLUMNS)


@dataclass(frozen=True, kw_only=True)
class Convention:
    """How a tool numbers its steps, against lrlab's (training records at the 0-based update index, evaluations
    at the number of updates done).

    Args:
      name: the tool.
      train_first: the step the tool gives the first update's training record (0 or 1).
      eval_shift: what to add to the tool's step of an evaluation for the updates done before it.
    """

    name: str
    train_first: int
    eval_shift: int


#: the step numbering of each tool (Lightning logs an evaluation after n updates at step n - 1)
CONVENTIONS: Mapping[str, Convention] = {
    "lrlab": Convention(name="lrlab", train_first=0, eval_shift=0),
    "hf": Convention(name="hf", train_first=1, eval_shift=0),
    "lightning": Convention(name="lightning", train_first=0, eval_shift=1),
    "plain": Convention(name="plain", train_first=0, eval_shift=0),
}

Series = dict[str, dict[int, float]]  # source name -> step -> value (the last one written for a step wins)


# ------------------------------------------------------------------------------------------------ entry point


def load_log(path: str | os.PathLike[str], *, kind: str | None = None, columns: Mapping[str, str] | None = None,
             convention: str | None = None, lr: float | None = None, total_steps: int | None = None) -> Curves:
    """Read a training log of any supported tool into `Curves`.

    Args:
      path: a file or folder: lrlab's Monitor files (``monitor.jsonl``, ``steps.csv``, their folder); HF's
        ``trainer_state.json`` or an ``output_dir`` (its own, else its last ``checkpoint-N``'s); a TensorBoard
        event file or a folder holding one run's event files (searched below it); a CSV file (Lightning's
        ``metrics.csv``, or a folder holding one below it).
      kind: one of `KINDS`; None: `detect`.
      columns: lrlab field (`FIELDS`) -> the source's column or tag name (``*`` matches anything; for ``lr``
        every match is one param group, in name order); the fields not given are looked up in `COLUMNS`.
      convention: the step numbering (`CONVENTIONS`); None: the tool's (HF for ``trainer_state.json`` and for
        event files holding ``train/*`` tags, Lightning for a CSV with ``epoch`` and ``step`` columns or event
        files with an ``epoch`` tag, else plain).
      lr: the LR to record where the log has none (a constant-LR run; the diagnoses need one).
      total_steps: the planned updates of the run, overriding the one recorded (HF records ``max_steps``).
    Returns:
      The curves; training records at 0-based update indices, evaluations at the number of updates done.
    """
    p = Path(path)
    if not p.exists():
        raise LrlabError(f"log {str(path)!r} does not exist")
    if kind is None:
        kind = detect(p)
    check.choice("kind", kind, KINDS)
    if convention is not None:
        check.choice("convention", convention, tuple(CONVENTIONS))
    if total_steps is not None:
        total_steps = check.whole("total_steps", total_steps, minimum=1)
    if lr is not None:
        lr = check.nonneg("lr", lr)
    if kind == "lrlab":
        if columns or lr is not None or convention is not None:
            raise LrlabError("columns, lr and convention are for other tools' logs; lrlab's Monitor files name "
                             "their fields themselves")
        return load_curves(p, total_steps=total_steps)
    names = _columns(columns)
    if kind == "hf":
        series, planned, default = _read_hf(_hf_state_file(p))
    elif kind == "tensorboard":
        series, planned = _read_tensorboard(_event_dir(p)), None
        tags = set(series)
        default = "hf" if any(t.startswith("train/") for t in tags) else (
            "lrlab" if any(t.startswith("lr/group") for t in tags) else "lightning" if "epoch" in tags else "plain")
    else:
        file = _csv_file(p)
        series, planned, cols = _read_csv(file, names["step"])
        default = "lightning" if {"epoch", "step"} <= set(cols) else "plain"
    conv = CONVENTIONS[convention or default]
    log = _merge(series, names, conv, lr=lr, where=str(path))
    log.total_steps = total_steps if total_steps is not None else planned
    if not log.step and not log.eval_step:
        raise LrlabError(f"log {str(path)!r} holds no training or evaluation records")
    return log.curves()


def detect(path: Path) -> str:
    """The format of `path` (one of `KINDS`), from file names: lrlab's Monitor files first, then
    ``trainer_state.json``, ``*.csv``, TensorBoard event files (``events.out.tfevents*``)."""
    if path.is_file():
        name = path.name.lower()
        if name == "trainer_state.json":
            return "hf"
        if "tfevents" in name:
            return "tensorboard"
        if path.suffix.lower() in (".jsonl", ".ndjson") or name == STEPS_CSV:
            return "lrlab"
        if path.suffix.lower() == ".csv":
            return "csv"
        raise LrlabError(f"log {str(path)!r}: not a format lrlab reads (a Monitor's monitor.jsonl / steps.csv, HF's "
                         "trainer_state.json, a TensorBoard event file, a CSV file); pass kind=... if it is one")
    if (path / JSONL_FILE).exists() or (path / STEPS_CSV).exists() or (path / "monitor").is_dir():
        return "lrlab"
    if (path / "trainer_state.json").exists() or any(path.glob("checkpoint-*/trainer_state.json")):
        return "hf"
    if any(path.rglob("metrics.csv")):
        return "csv"
    if any(path.rglob("events.out.tfevents*")):
        return "tensorboard"
    raise LrlabError(f"log folder {str(path)!r} holds no log lrlab reads: no {JSONL_FILE} / {STEPS_CSV}, "
                     "trainer_state.json (or checkpoint-*/trainer_state.json), metrics.csv or TensorBoard event files")


# ------------------------------------------------------------------------------------------------ sources


def _hf_state_file(path: Path) -> Path:
    if path.is_file():
        return path
    if (path / "trainer_state.json").exists():
        return path / "trainer_state.json"
    found = sorted(path.glob("checkpoint-*/trainer_state.json"),
                   key=lambda f: int(m.group(1)) if (m := re.search(r"checkpoint-(\d+)$", f.parent.name)) else -1)
    if not found:
        raise LrlabError(f"{path}: no trainer_state.json here or in a checkpoint-N folder")
    return found[-1]  # the last checkpoint's history holds the earlier ones'


def _read_hf(file: Path) -> tuple[Series, int | None, str]:
    """``log_history`` of a ``trainer_state.json``: one series per logged key, at the entry's ``step``."""
    try:
        state = json.loads(read_text(file, what="log"))
    except json.JSONDecodeError as e:
        raise LrlabError(f"{file}: not JSON ({e.msg} at line {e.lineno})") from None
    history = state.get("log_history") if isinstance(state, dict) else None
    if not isinstance(history, list):
        raise LrlabError(f"{file}: no 'log_history' list (is it a Trainer's trainer_state.json?)")
    series: Series = {}
    for i, entry in enumerate(history):
        if not isinstance(entry, dict) or "step" not in entry:
            raise LrlabError(f"{file}: log_history[{i}] has no 'step'")
        if "train_runtime" in entry:
            continue  # the summary at the end of train(): its train_loss is the mean over the whole run
        step = check.whole(f"{file}: log_history[{i}].step", entry["step"])
        for key, value in entry.items():
            if key == "step" or isinstance(value, (bool, str, list, dict)) or value is None:
                continue
            series.setdefault(key, {})[step] = float(value)
    max_steps = state.get("max_steps")
    planned = int(max_steps) if isinstance(max_steps, int) and max_steps > 0 else None
    return series, planned, "hf"


def _event_dir(path: Path) -> Path:
    if path.is_file():
        return path
    dirs = sorted({f.parent for f in path.rglob("events.out.tfevents*")})
    if not dirs:
        raise LrlabError(f"{path}: no TensorBoard event files (events.out.tfevents*) here or below")
    if len(dirs) > 1:
        listed = ", ".join(str(d.relative_to(path)) for d in dirs[:6]) + (", ..." if len(dirs) > 6 else "")
        raise LrlabError(f"{path} holds the event files of {len(dirs)} runs ({listed}); give the folder of one")
    return dirs[0]


def _read_tensorboard(path: Path) -> Series:
    """Every scalar tag of one run's event files (TensorBoard's public ``EventAccumulator``)."""
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError as e:
        raise LrlabError(f"reading TensorBoard event files needs the tensorboard package ({e})") from None
    acc = EventAccumulator(str(path), size_guidance={"scalars": 0})  # 0: keep every event, not a sample
    acc.Reload()
    series: Series = {}
    for tag in acc.Tags().get("scalars", []):
        # in the order written: a resumed run's records for a step replace the earlier ones
        events = sorted(acc.Scalars(tag), key=lambda e: e.wall_time)
        series[tag] = {int(e.step): float(e.value) for e in events}
    return series


def _csv_file(path: Path) -> Path:
    if path.is_file():
        return path
    found = sorted(path.rglob("metrics.csv"))
    if len(found) != 1:
        what = "no metrics.csv" if not found else f"{len(found)} metrics.csv files ({', '.join(map(str, found[:4]))})"
        raise LrlabError(f"{path}: {what} below it; give the CSV file")
    return found[0]


def _read_csv(file: Path, step_names: tuple[str, ...]) -> tuple[Series, None, list[str]]:
    """One series per numeric column, at the row's step; rows may be sparse (Lightning writes one row per logging
    call, with only that call's columns filled)."""
    with io.StringIO(read_text(file, what="log"), newline="") as fh:  # not UTF-8: refused naming the file
        reader = csv.DictReader(fh)
        cols = list(reader.fieldnames or [])
        step_col = _first_match(step_names, cols)
        if step_col is None:
            raise LrlabError(f"{file}: no step column (looked for {', '.join(step_names)}; columns: {', '.join(cols)});"
                             " name it with columns={'step': ...} (--column step=NAME)")
        series: Series = {}
        for n, row in enumerate(reader, 2):
            text = (row.get(step_col) or "").strip()
            if not text:
                continue
            step = check.whole(f"{file}:{n}: {step_col}", parse_float(text, f"{file}:{n}: {step_col}"))
            for col, cell in row.items():
                if col is None or col == step_col or cell is None or not cell.strip():
                    continue
                try:
                    value = parse_float(cell, f"{file}:{n}: {col}")
                except LrlabError:
                    continue  # a text column (a run name, a timestamp)
                if value is not None:
                    series.setdefault(col, {})[step] = value
    return series, None, cols


# ------------------------------------------------------------------------------------------------ merging


def _columns(given: Mapping[str, str] | None) -> dict[str, tuple[str, ...]]:
    names = dict(COLUMNS)
    for field, name in (given or {}).items():
        check.choice("columns key", field, FIELDS)
        if not isinstance(name, str) or not name:
            raise LrlabError(f"columns[{field!r}] must be a column or tag name, got {name!r}")
        names[field] = (name,)
    return names


def _matches(pattern: str, names: Iterable[str]) -> list[str]:
    return sorted((n for n in names if fnmatch.fnmatchcase(n, pattern)), key=_natural)


def _natural(name: str) -> tuple[Any, ...]:
    return tuple(int(x) if x.isdigit() else x for x in re.split(r"(\d+)", name))


def _first_match(patterns: tuple[str, ...], names: Iterable[str]) -> str | None:
    names = list(names)
    for pattern in patterns:
        found = _matches(pattern, names)
        if found:
            return found[0]
    return None


def _lr_names(patterns: tuple[str, ...], names: Iterable[str]) -> list[str]:
    """The LR series, one per param group: every match of the first pattern that matches (``lr/group*``)."""
    names = list(names)
    for pattern in patterns:
        found = _matches(pattern, names)
        if found:
            return found
    return []


def _merge(series: Series, names: Mapping[str, tuple[str, ...]], conv: Convention, *, lr: float | None,
           where: str) -> RunLog:
    loss_name = _first_match(names["loss"], series)
    gn_name = _first_match(names["grad_norm"], series)
    val_name = _first_match(names["val_loss"], series)
    lr_names = _lr_names(names["lr"], series)
    if loss_name is None and val_name is None:
        raise LrlabError(f"{where}: no training or validation loss found (looked for {', '.join(names['loss'])} and "
                         f"{', '.join(names['val_loss'])}; the log has {', '.join(sorted(series)) or 'nothing'}); "
                         "name them with columns={'loss': ..., 'val_loss': ...} (--column loss=NAME)")
    if not lr_names and lr is None:
        raise LrlabError(f"{where}: no learning rate found (looked for {', '.join(names['lr'])}; the log has "
                         f"{', '.join(sorted(series))}); name it with columns={{'lr': ...}} (--column lr=NAME), or "
                         "give the constant LR of the run with lr=... (--lr VALUE)")
    lr_series = [series[n] for n in lr_names]
    constant = (lr,) if lr is not None else ()
    steps = sorted(set().union(*(series[n] for n in (loss_name, gn_name, *lr_names) if n is not None)))
    log = RunLog()
    current: list[float] | None = None
    first_lr = [s[min(s)] for s in lr_series] if lr_series else None  # LR before the first record: the first one
    for step in steps:
        index = step - conv.train_first
        if index < 0:
            raise LrlabError(f"{where}: a training record at step {step}, before the first update of the "
                             f"{conv.name} step numbering (it starts at {conv.train_first}); pass convention='plain'")
        if lr_series:
            now = [s.get(step) for s in lr_series]
            if current is None:
                current = list(first_lr or [])
            current = [c if v is None else v for c, v in zip(current, now)]
            lrs = tuple(current)
        else:
            lrs = constant
        bad = [x for x in lrs if not (math.isfinite(x) and x >= 0)]
        if bad:
            raise LrlabError(f"{where}: the LR at step {step} is {bad[0]} (an LR must be a finite number >= 0)")
        loss = series[loss_name].get(step) if loss_name else None
        gn = series[gn_name].get(step) if gn_name else None
        log.add_step(index, lrs, loss, gn, None, 0.0)
    if val_name is not None:
        for step, value in sorted(series[val_name].items()):
            log.add_eval(step + conv.eval_shift, value, {})
    return log
