"""What the files of a comparison folder must hold when they are read back: ``compare.json`` (`check_meta`),
``runs/<trial>.json`` (`check_trial`) and ``results.json`` (`check_results`). Each checker raises `LrlabError`
naming the file, the field and what was expected, so a damaged or hand-edited file gives one clear line instead of
a ``KeyError`` deep in the analysis. Standard library only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from lrlab.errors import LrlabError


def _fail(where: str, field: str, expected: str, value: Any) -> LrlabError:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return LrlabError(f"{where}: {field} must be {expected}, got {shown}")


def _obj(where: str, field: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(where, field, "a JSON object", value)
    return value


def _str(where: str, field: str, value: Any, *, optional: bool = False) -> None:
    if not (isinstance(value, str) or (optional and value is None)):
        raise _fail(where, field, "a string" + (" or null" if optional else ""), value)


def _bool(where: str, field: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise _fail(where, field, "true or false", value)


def _int(where: str, field: str, value: Any, *, minimum: int | None = None, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
        raise _fail(where, field, "a whole number" + (f" >= {minimum}" if minimum is not None else "")
                    + (" or null" if optional else ""), value)


def _num(where: str, field: str, value: Any, *, optional: bool = False, positive: bool = False) -> None:
    """A number (JSON's Infinity/NaN of older files allowed unless ``positive``), or null when ``optional``."""
    if optional and value is None:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and positive:
        ok = math.isfinite(value) and value > 0
    if not ok:
        raise _fail(where, field, ("a number > 0" if positive else "a number") + (" or null" if optional else ""),
                    value)


def _list(where: str, field: str, value: Any, item: str) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(where, field, f"a list of {item}", value)
    return value


def _numbers(where: str, field: str, value: Any) -> None:
    """A list of numbers or nulls (a non-finite value is written as null)."""
    for i, v in enumerate(_list(where, field, value, "numbers")):
        _num(where, f"{field}[{i}]", v, optional=True)


def _optional_keys(where: str, doc: Mapping[str, Any], checks: Mapping[str, Any]) -> None:
    for key, check in checks.items():
        if key in doc:
            check(where, key, doc[key])


def check_result(where: str, field: str, r: Any) -> None:
    """A run's ``result`` (`lrlab.bench.train.RunResult.to_dict`), as far as reports read it."""
    r = _obj(where, field, r)
    for key in ("eval_steps", "val_loss", "train_loss", "lr", "diverged"):
        if key not in r:
            raise LrlabError(f"{where}: {field} has no {key!r}; expected a run result written by lrlab")
    for i, s in enumerate(_list(where, f"{field}.eval_steps", r["eval_steps"], "whole numbers")):
        _int(where, f"{field}.eval_steps[{i}]", s, minimum=0)
    for key in ("val_loss", "train_loss", "lr"):
        _numbers(where, f"{field}.{key}", r[key])
    _bool(where, f"{field}.diverged", r["diverged"])
    for key in ("final_val_loss", "best_val_loss", "wall_time_s", "tokens_per_s"):
        if key in r:
            _num(where, f"{field}.{key}", r[key], optional=True)
    if "val_metrics" in r:
        for name, values in _obj(where, f"{field}.val_metrics", r["val_metrics"]).items():
            _numbers(where, f"{field}.val_metrics.{name}", values)
    for key in ("env", "config"):
        if r.get(key) is not None:
            _obj(where, f"{field}.{key}", r[key])


def check_trial(where: str, field: str, t: Any) -> Mapping[str, Any]:
    """A trial record (`lrlab.bench.design.trial_record`, with its ``result`` or null)."""
    t = _obj(where, field, t)
    for key in ("id", "schedule", "optimizer", "seed", "lr", "lr_index", "phase"):
        if key not in t:
            raise LrlabError(f"{where}: {field} has no {key!r}; expected a trial record written by lrlab")
    for key in ("id", "schedule", "optimizer", "phase"):
        _str(where, f"{field}.{key}", t[key])
    _int(where, f"{field}.seed", t["seed"], minimum=0)
    _int(where, f"{field}.lr_index", t["lr_index"])
    _num(where, f"{field}.lr", t["lr"], positive=True)
    b = t.get("branched_from")
    if b is not None:
        b = _obj(where, f"{field}.branched_from", b)
        _str(where, f"{field}.branched_from.trial", b.get("trial"))
        _int(where, f"{field}.branched_from.step", b.get("step"), minimum=0)
        for i, link in enumerate(_list(where, f"{field}.branched_from.chain", b.get("chain") or [], "objects")):
            link = _obj(where, f"{field}.branched_from.chain[{i}]", link)
            _str(where, f"{field}.branched_from.chain[{i}].prefix", link.get("prefix"))
            _int(where, f"{field}.branched_from.chain[{i}].start", link.get("start"), minimum=0)
            _int(where, f"{field}.branched_from.chain[{i}].stop", link.get("stop"), minimum=0)
    if t.get("result") is not None:
        check_result(where, f"{field}.result", t["result"])
    return t


def _config(where: str, c: Any) -> None:
    c = _obj(where, "config", c)
    _optional_keys(where, c, {"task": _str, "preset": _str})
    if "steps" in c:
        _int(where, "config.steps", c["steps"], minimum=1)
    if c.get("schedules") is not None:
        for i, s in enumerate(_list(where, "config.schedules", c["schedules"], "strings")):
            _str(where, f"config.schedules[{i}]", s)
    if "target_loss" in c:
        _num(where, "config.target_loss", c["target_loss"], optional=True)


def check_results(where: str, doc: Mapping[str, Any]) -> Mapping[str, Any]:
    """A ``results.json`` document (`lrlab.bench.compare.CompareRun.document`), as far as analysis and reports
    read it; ``where`` names the file."""
    for key in ("config", "trials"):
        if key not in doc:
            raise LrlabError(f"{where} is not an lrlab results document: it has no {key!r} (expected 'config' and "
                             "'trials', as `lrlab compare` and `lrlab train` write)")
    _config(where, doc["config"])
    for i, t in enumerate(_list(where, "trials", doc["trials"], "trial records")):
        check_trial(where, f"trials[{i}]", t)
    _optional_keys(where, doc, {"title": _str, "status": _str, "format": _str})
    for key in ("python", "corpus_sha256", "created"):
        if key in doc:
            _str(where, key, doc[key], optional=True)
    if "n_planned" in doc:
        _int(where, "n_planned", doc["n_planned"], minimum=0)
    if "wall_time_s" in doc:
        _num(where, "wall_time_s", doc["wall_time_s"], optional=True)
    if "notes" in doc:
        _list(where, "notes", doc["notes"], "strings")
    return doc


def check_meta(where: str, meta: Mapping[str, Any], optimizers: Any = None) -> Mapping[str, Any]:
    """A ``compare.json`` document (`lrlab.bench.compare.open_run`), beyond its ``config`` (which
    `lrlab.bench.design.CompareConfig.from_dict` checks)."""
    for key in ("config", "execution", "sessions", "created"):
        if key not in meta:
            raise LrlabError(f"{where} is not an lrlab compare.json: it has no {key!r} (expected the file "
                             "`lrlab compare` writes in its --out folder)")
    _obj(where, "config", meta["config"])
    _str(where, "created", meta["created"])
    ex = _obj(where, "execution", meta["execution"])
    for key in ("workers", "threads"):
        if key not in ex:
            raise LrlabError(f"{where}: execution has no {key!r}")
        _int(where, f"execution.{key}", ex[key], minimum=1)
    for i, s in enumerate(_list(where, "sessions", meta["sessions"], "objects")):
        s = _obj(where, f"sessions[{i}]", s)
        if "wall_time_s" in s:
            _num(where, f"sessions[{i}].wall_time_s", s["wall_time_s"], optional=True)
    centers = meta.get("lr_centers")
    if centers is not None:
        centers = _obj(where, "lr_centers", centers)
        for name in optimizers or ():
            if name not in centers:
                raise LrlabError(f"{where}: lr_centers has no entry for optimizer {name!r}")
        for name, value in centers.items():
            _num(where, f"lr_centers.{name}", value, positive=True)
    if meta.get("lr_find") is not None:
        _obj(where, "lr_find", meta["lr_find"])
    for key in ("python", "corpus_sha256"):
        if key in meta:
            _str(where, key, meta[key], optional=True)
    return meta
