"""The harness and its files under hostile input (issue #12): every case through the real `lrlab` entry point
(`lrlab.cli.main` returns the exit code) where it is a CLI case. Each must end with exit code 2 and one line naming
the file or field and what was expected, no traceback, and nothing created or changed that should not be.

Tests run as root in CI, where permission bits do not bind: a refused permission or a full disk is simulated by
making the os-level call raise, and the real chmod form runs only for other users.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from lrlab.bench.compare import CONFIG_FILE, open_run
from lrlab.bench.design import CompareConfig
from lrlab.cli import main
from lrlab.errors import LrlabError
from lrlab.files import (
    LOCK_FILE,
    WORKERS_LOCK_FILE,
    FileError,
    FolderLock,
    atomic_copy,
    atomic_write_bytes,
    hold_shared,
    json_text,
    open_append,
    read_json,
    write_json,
)

ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False
#: the smallest `lrlab train` run (CompareConfig needs 10 updates)
TRAIN = ["train", "--steps", "10", "--eval-every", "5", "--checkpoint-every", "2", "--no-plots"]


def refused(capsys: pytest.CaptureFixture[str], argv: list[str], *needles: str, usage: bool = False) -> str:
    """Run ``lrlab argv``: exit code 2, one ``error:`` line on stderr holding every needle, no traceback.
    ``usage``: a usage error is accepted too (the option's value refused as the command line is read)."""
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert "Traceback" not in err + out
    if usage and "Invalid value" in err:
        flat = " ".join(err.replace("│", " ").split())
        for n in needles:
            assert n in flat, (n, flat)
        return flat
    lines = [line for line in err.splitlines() if line.strip()]
    # one line (a spec error adds the spec with a caret under the column, indented)
    assert lines[0].startswith("error: ") and all(line.startswith("  ") for line in lines[1:]), err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def tree(folder: Path) -> dict[str, bytes | str]:
    """Every file under ``folder`` (links as their target), to show that nothing changed."""
    out: dict[str, bytes | str] = {}
    for p in sorted(folder.rglob("*")):
        if p.is_symlink():
            out[str(p.relative_to(folder))] = "-> " + os.readlink(p)
        elif p.is_file():
            out[str(p.relative_to(folder))] = p.read_bytes()
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the results.json of a 10-update run in the format `lrlab train` writes (its numbers made
    up: training one costs seconds), to copy and damage."""
    cfg = CompareConfig(steps=10, schedules=("constant()",), lr_grid=1, confirm_seeds=0, title="lrlab train")
    result = {"config": {"task": "lm", "preset": "tiny", "schedule": "constant()", "optimizer": "adamw", "lr": 0.01,
                         "steps": 10},
              "eval_steps": [0, 5, 10], "val_loss": [5.5, 4.0, 3.5], "val_metrics": {"bits_per_byte": [7.9, 5.8, 5.0]},
              "train_loss": [5.5 - 0.2 * i for i in range(10)], "lr": [0.01] * 10, "final_val_loss": 3.5,
              "best_val_loss": 3.5, "diverged": False, "wall_time_s": 1.0, "tokens_per_s": 1000.0, "n_params": 1,
              "env": {}, "resumed_from": None}
    trial = {"id": "00-constant-adamw-lr0-s0", "schedule": "constant()", "optimizer": "adamw", "seed": 0,
             "lr": 0.01, "lr_index": 0, "phase": "grid", "branched_from": None, "result": result}
    out = tmp_path_factory.mktemp("trained") / "run"
    write_json(out / "results.json", {"format": "lrlab.compare/1", "title": "lrlab train", "status": "complete",
                                      "config": cfg.resolved().to_dict(), "trials": [trial], "n_planned": 1})
    assert main(["report", str(out), "--no-plots"]) == 0  # a valid document
    return out


@pytest.fixture(scope="module")
def opened(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A comparison folder as `lrlab compare` leaves it before its first run (compare.json), to copy and damage."""
    out = tmp_path_factory.mktemp("opened") / "cmp"
    open_run(out, CompareConfig(steps=10, schedules=("constant()",), lr_grid=1, confirm_seeds=0), resume=False,
             workers=1).close()
    return out


def copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / src.name
    shutil.copytree(src, dst)
    return dst


# ------------------------------------------------------------------- 1. files that are not what they claim


def test_diagnose_refuses_a_log_that_is_not_utf8_naming_it(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    utf16 = tmp_path / "utf16.jsonl"
    utf16.write_text('{"type": "step", "step": 0, "lr": [0.1], "loss": 1.0}\n', encoding="utf-16")
    refused(capsys, ["diagnose", str(utf16)], str(utf16), "UTF-16", "UTF-8")
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes('{"type": "meta", "note": "caf\u00e9"}\n'.encode("latin-1"))
    refused(capsys, ["diagnose", str(latin)], str(latin), "not UTF-8", "0xe9")
    folder = tmp_path / "mon"
    folder.mkdir()
    (folder / "steps.csv").write_bytes(b"step,lr_0\n0,\xff\n")
    refused(capsys, ["diagnose", str(folder)], str(folder / "steps.csv"), "not UTF-8")


@pytest.mark.parametrize(("content", "needles"), [
    (b'{"format": "lrlab.compare/1", "config": {"task"', ("not valid JSON", "truncated")),
    (bytes(range(256)) * 4, ("not UTF-8",)),
    (b"{}", ("has no 'config'",)),
    (b"[1, 2]", ("a JSON list", "expected a JSON object")),
    (b"", ("not valid JSON",)),
], ids=["truncated", "binary", "empty-object", "list", "empty-file"])
def test_resume_refuses_a_damaged_compare_json(opened: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               content: bytes, needles: tuple[str, ...]) -> None:
    out = copy(opened, tmp_path)
    (out / CONFIG_FILE).write_bytes(content)
    before = tree(out)
    refused(capsys, ["compare", "--resume", str(out)], str(out / CONFIG_FILE), *needles)
    assert tree(out) == before  # no results.json, no lock file left


@pytest.mark.parametrize(("edit", "needles"), [
    (lambda m: m["config"].update(steps="many"), ("config: steps must be a whole number",)),
    (lambda m: m["config"].update(schedules="cosine()"), ("schedules must be a list of strings",)),
    (lambda m: m["config"].update(preset="huge"), ("preset must be one of tiny, small, base", "'huge'")),
    (lambda m: m["config"].update(task="lmm"), ("task 'lmm' is not supported",)),
    (lambda m: m["config"].update(lr=[["adamw", "0.1"]]), ("lr for adamw must be a positive number",)),
    (lambda m: m.update(execution={"workers": 0, "threads": 1}), ("execution.workers must be a whole number >= 1",)),
    (lambda m: m.update(lr_centers={"adamw": "big"}), ("lr_centers.adamw must be a number > 0",)),
    (lambda m: m.update(lr_centers={}), ("lr_centers has no entry for optimizer 'adamw'",)),
    (lambda m: m.pop("sessions"), ("has no 'sessions'",)),
], ids=["steps", "schedules", "preset", "task", "lr", "workers", "centre-type", "centre-missing", "sessions"])
def test_resume_refuses_a_compare_json_with_a_wrong_value_naming_the_field(
        opened: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: Any, needles: tuple[str, ...]) -> None:
    out = copy(opened, tmp_path)
    meta = json.loads((out / CONFIG_FILE).read_text())
    edit(meta)
    (out / CONFIG_FILE).write_text(json.dumps(meta))
    refused(capsys, ["compare", "--resume", str(out)], str(out / CONFIG_FILE), *needles)
    assert not (out / "results.json").exists()


def test_resume_refuses_a_damaged_trial_record_naming_it(opened: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = copy(opened, tmp_path)
    (out / "runs").mkdir()
    bad = out / "runs" / "00-constant-adamw-lr0-s0.json"
    bad.write_text('{"id": "00-constant-adamw-lr0-s0", "schedule": "constant()", "result": {"fina')
    refused(capsys, ["compare", "--resume", str(out)], str(bad), "not valid JSON", "delete", "resume")
    bad.write_text(json.dumps({"id": "x", "schedule": "constant()", "optimizer": "adamw", "seed": 0, "lr": 0.01,
                               "lr_index": 0, "phase": "grid", "result": {"eval_steps": "0,5"}}))
    refused(capsys, ["compare", "--resume", str(out)], str(bad), "has no 'val_loss'")
    assert not (out / "results.json").exists()


@pytest.mark.parametrize(("edit", "needles"), [
    (lambda d: d.update(trials=5), ("trials must be a list of trial records, got 5",)),
    (lambda d: d.update(config=[]), ("config must be a JSON object",)),
    (lambda d: d["trials"][0].update(lr="0.01"), ("trials[0].lr must be a number > 0", "'0.01'")),
    (lambda d: d["trials"][0].update(seed=-1), ("trials[0].seed must be a whole number >= 0",)),
    (lambda d: d["trials"][0]["result"].update(val_loss=["x"]), ("trials[0].result.val_loss[0] must be a number",)),
    (lambda d: d["trials"][0]["result"].update(diverged="no"), ("trials[0].result.diverged must be true or false",)),
    (lambda d: d["trials"][0]["result"].pop("eval_steps"), ("trials[0].result has no 'eval_steps'",)),
    (lambda d: d["trials"][0].update(branched_from={"trial": 3}), ("branched_from.trial must be a string",)),
    (lambda d: d["config"].update(steps="10"), ("config.steps must be a whole number >= 1",)),
    (lambda d: d.pop("trials"), ("has no 'trials'",)),
], ids=["trials", "config", "lr", "seed", "val_loss", "diverged", "eval_steps", "branched_from", "steps", "no-trials"])
def test_report_refuses_a_results_json_with_a_value_of_the_wrong_type(
        trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: Any, needles: tuple[str, ...]) -> None:
    out = copy(trained, tmp_path)
    doc = json.loads((out / "results.json").read_text())
    edit(doc)
    (out / "results.json").write_text(json.dumps(doc))
    refused(capsys, ["report", str(out), "--no-plots"], str(out / "results.json"), *needles)


@pytest.mark.parametrize(("content", "needles"), [
    (b'{"format": "lrlab.compare/1", "trials": [', ("not valid JSON", "truncated")),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00", ("not UTF-8",)),
    (b"{}", ("has no 'config'",)),
    ('{"x": 1}'.encode("utf-16"), ("UTF-16",)),
], ids=["truncated", "binary", "empty-object", "utf16"])
def test_report_refuses_a_damaged_results_json(trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               content: bytes, needles: tuple[str, ...]) -> None:
    out = copy(trained, tmp_path)
    (out / "results.json").write_bytes(content)
    refused(capsys, ["report", str(out), "--no-plots"], str(out / "results.json"), *needles)


def _torch_file(path: Path, obj: Any) -> None:
    import torch

    torch.save(obj, path)


@pytest.mark.parametrize("form", ["garbage", "empty", "truncated", "empty-dict", "pickled-code", "a-folder",
                                  "wrong-step"])
def test_resume_refuses_a_damaged_checkpoint_without_unsafe_advice(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str],
                                                                   form: str) -> None:
    import pickle

    import torch

    out = tmp_path / "run"
    ckpt = out / "ckpt" / "checkpoint.pt"
    ckpt.parent.mkdir(parents=True)
    if form == "garbage":
        ckpt.write_bytes(b"not a checkpoint at all\n" * 20)
    elif form == "empty":
        ckpt.write_bytes(b"")
    elif form == "truncated":
        torch.save({"step": 2, "model": {"w": torch.zeros(1000)}}, ckpt)
        ckpt.write_bytes(ckpt.read_bytes()[:700])
    elif form == "empty-dict":
        torch.save({}, ckpt)
    elif form == "pickled-code":  # what weights_only=False would run
        ckpt.write_bytes(pickle.dumps({"step": os.system}))
    elif form == "a-folder":
        ckpt.mkdir()
    else:
        torch.save({"step": 7, "config": {}, "model": {}, "optimizer": {}, "rng": {"numpy": []},
                    "curves": {"train_loss": [1.0]}}, ckpt)
    line = refused(capsys, [*TRAIN, "--out", str(out), "--resume"], str(ckpt))
    assert "weights_only" not in line and "Re-running" not in line
    assert "not an lrlab checkpoint" in line or "damaged" in line or "inconsistent" in line or "folder" in line
    assert not (out / "results.json").exists()


@pytest.mark.slow
def test_compare_resume_refuses_a_damaged_job_checkpoint(opened: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = copy(opened, tmp_path)
    ckpt = out / "ckpt" / "00-constant-adamw-lr0-s0" / "checkpoint.pt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"\x80\x04garbage" * 10)
    line = refused(capsys, ["compare", "--resume", str(out), "--no-plots"], str(ckpt), "delete it")
    assert "weights_only" not in line
    assert not (out / LOCK_FILE).exists()


# ---------------------------------------------------------------------------- 2. the file system says no


def test_out_that_is_a_file_is_refused_before_anything_runs(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "taken"
    f.write_text("mine")
    refused(capsys, [*TRAIN, "--out", str(f)], str(f), "is a file, not a folder")
    refused(capsys, ["compare", "--steps", "10", "--schedules", "constant()", "--out", str(f)], str(f),
            "is a file, not a folder")
    refused(capsys, [*TRAIN, "--out", str(f / "sub")], str(f / "sub"), "a part of the path is a file")
    assert f.read_text() == "mine"


def _refuse_under(monkeypatch: pytest.MonkeyPatch, folder: Path, code: int = errno.EACCES) -> None:
    """Make the os-level calls that create or open for writing under ``folder`` fail with ``code`` (what a
    read-only folder does to a user who is not root)."""
    real_mkdir, real_open, real_mkstemp = Path.mkdir, os.open, tempfile.mkstemp

    def inside(p: Any) -> bool:
        return str(Path(p).absolute()).startswith(str(folder))

    def mkdir(self: Path, *a: Any, **k: Any) -> None:
        if inside(self) and not self.is_dir():
            raise PermissionError(code, os.strerror(code), str(self))
        real_mkdir(self, *a, **k)

    def open_(path: Any, flags: int, *a: Any, **k: Any) -> int:
        if inside(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(code, os.strerror(code), str(path))
        return real_open(path, flags, *a, **k)

    def mkstemp(*a: Any, dir: Any = None, **k: Any) -> tuple[int, str]:
        if dir is not None and inside(dir):
            raise OSError(code, os.strerror(code), str(dir))
        return real_mkstemp(*a, dir=dir, **k)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    monkeypatch.setattr(os, "open", open_)
    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)


def test_out_in_a_read_only_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    with monkeypatch.context() as m:
        _refuse_under(m, ro)
        refused(capsys, [*TRAIN, "--out", str(ro / "run")], str(ro / "run"), "permission denied")
        refused(capsys, ["compare", "--steps", "10", "--schedules", "constant()", "--out", str(ro / "cmp")],
                str(ro / "cmp"), "permission denied")
    assert list(ro.iterdir()) == []


@pytest.mark.skipif(ROOT, reason="root ignores permission bits (the monkeypatched form above runs instead)")
def test_out_in_a_read_only_folder_for_real(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        refused(capsys, [*TRAIN, "--out", str(ro / "run")], str(ro / "run"), "permission denied")
    finally:
        ro.chmod(0o755)


def test_resuming_or_reporting_a_read_only_folder(trained: Path, opened: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    cmp, run = copy(opened, tmp_path), copy(trained, tmp_path)
    before = tree(tmp_path)
    with monkeypatch.context() as m:
        _refuse_under(m, tmp_path, errno.EROFS)
        refused(capsys, ["compare", "--resume", str(cmp)], str(cmp), "read-only file system")
        refused(capsys, [*TRAIN, "--out", str(run), "--resume"], str(run), "read-only file system")
        refused(capsys, ["report", str(run), "--no-plots"], str(run / "report.md"), "read-only file system")
    assert tree(tmp_path) == before


def test_an_unreadable_corpus_is_refused_before_the_out_folder_exists(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("hello world\n" * 1000)
    real = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self == corpus:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self)

    with monkeypatch.context() as m:
        m.setattr(Path, "read_bytes", read_bytes)
        refused(capsys, [*TRAIN, "--task", f"text:{corpus}", "--out", str(tmp_path / "a")], str(corpus),
                "permission denied")
        refused(capsys, ["compare", "--steps", "10", "--schedules", "constant()", "--task", f"text:{corpus}",
                         "--out", str(tmp_path / "b")], str(corpus), "permission denied")
    if not ROOT:
        corpus.chmod(0)
        refused(capsys, [*TRAIN, "--task", f"text:{corpus}", "--out", str(tmp_path / "a")], str(corpus),
                "permission denied")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_disk_full_while_checkpointing_leaves_no_temporary_file(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    def save(obj: Any, f: Any, *a: Any, **k: Any) -> None:
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    out = tmp_path / "run"
    monkeypatch.setattr(torch, "save", save)
    refused(capsys, [*TRAIN, "--out", str(out)], str(out / "ckpt" / "checkpoint.pt"), "disk full")
    leftovers = [p.name for p in (out / "ckpt").iterdir()]
    assert leftovers == [], leftovers


def test_atomic_writes_clean_up_and_name_the_file_when_the_disk_is_full(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "results.json"
    target.write_text("old")

    def fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(FileError, match=r"cannot write .*results\.json.*disk full") as info:
        atomic_write_bytes(target, b"new", fsync=True)
    assert isinstance(info.value, OSError) and info.value.errno == errno.ENOSPC
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["results.json"]


# ---------------------------------------------------------------------- 3. validate before creating anything


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"preset": "huge"}, "preset must be one of tiny, small, base; got 'huge'"),
    ({"task": "lmm"}, "task 'lmm' is not supported"),
    ({"task": "text:"}, "task 'text:' is not supported"),
    ({"task": 3}, "task 3 is not supported"),
    ({"title": None}, "title must be a string"),
    ({"branch": "yes"}, "branch must be true or false"),
    ({"schedules": "cosine()"}, "schedules must be a sequence of strings"),
    ({"branch_min": "0.1"}, "branch_min must be a number"),
    ({"steps": 10**12}, "steps must be at most 10,000,000"),
    ({"eval_batches": 10**9}, "eval_batches must be at most 10,000"),
    ({"batch_size": 10**9}, "batch_size must be at most 1,048,576"),
    ({"seeds": 10**6}, "seeds must be at most 1000"),
    ({"lr_grid_factor": 1e200}, "the peak-LR grid of adamw around 0.006 with lr_grid_factor 1e+200 reaches 0.0"),
    ({"lr": (("adamw", 1e308),)}, "reaches inf"),
])
def test_compare_config_refuses_at_construction(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(LrlabError, match=re.escape(message)):
        CompareConfig(**kwargs).resolved()


@pytest.mark.parametrize(("args", "needles"), [
    (["--preset", "huge"], ("preset", "'huge'", "tiny, small, base")),
    (["--task", "lmm"], ("'lmm'", "text:PATH")),
    (["--task", "text:MISSING"], ("MISSING",)),
    (["--task", "text:EMPTY"], ("is empty",)),
    (["--task", "text:SMALL"], ("the training split holds", "needs at least 33")),
    (["--task", "text:LATIN"], ("is not UTF-8 text",)),
    (["--schedules", "cosine("], ("schedule 'cosine('",)),
], ids=["preset", "task", "missing", "empty", "small", "latin1", "spec"])
@pytest.mark.parametrize("verb", ["train", "compare"])
def test_bad_input_leaves_no_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str], verb: str,
                                    args: list[str], needles: tuple[str, ...]) -> None:
    (tmp_path / "EMPTY").write_bytes(b"")
    (tmp_path / "SMALL").write_text("tiny corpus\n")
    (tmp_path / "LATIN").write_bytes("caf\u00e9 ".encode("latin-1") * 500)
    args = [a.replace("text:", f"text:{tmp_path}/") for a in args]
    if verb == "train":
        args = [{"--schedules": "--schedule"}.get(a, a) for a in args]
    out = tmp_path / "out"
    base = TRAIN if verb == "train" else ["compare", "--steps", "10"]
    t0 = time.monotonic()
    refused(capsys, [*base, *args, "--out", str(out)], *needles, usage=True)
    assert not out.exists()
    assert time.monotonic() - t0 < 20  # refused up front, not after training started


# ----------------------------------------------------------------------------------- 4. standard JSON


def test_results_are_standard_json_after_a_divergence_and_old_files_still_read(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main([*TRAIN, "--lr", "1e6", "--out", str(out)]) == 0
    capsys.readouterr()
    text = (out / "results.json").read_text()

    def no_constants(name: str) -> None:
        raise AssertionError(f"non-standard JSON constant {name}")

    doc = json.loads(text, parse_constant=no_constants)  # what jq and browsers accept
    result = doc["trials"][0]["result"]
    assert result["diverged"] is True and result["final_val_loss"] is None
    assert None in result["train_loss"] or None in result["val_loss"]
    assert main(["report", str(out), "--no-plots"]) == 0
    # a results.json of an older lrlab, with JSON's non-standard Infinity / NaN, still renders
    old = text.replace('"final_val_loss": null', '"final_val_loss": Infinity')
    assert "Infinity" in old
    (out / "results.json").write_text(old)
    assert main(["report", str(out), "--no-plots"]) == 0
    assert "diverged" in capsys.readouterr().out.lower()


def test_json_text_writes_null_for_non_finite_numbers(tmp_path: Path) -> None:
    assert json.loads(json_text({"a": [1.0, math.inf, -math.inf, math.nan], "b": (2, 3)})) == {
        "a": [1.0, None, None, None], "b": [2, 3]}
    write_json(tmp_path / "x.json", {"v": math.inf})
    assert read_json(tmp_path / "x.json") == {"v": None}
    (tmp_path / "old.json").write_text('{"v": Infinity, "w": NaN}')
    old = read_json(tmp_path / "old.json")
    assert old["v"] == math.inf and math.isnan(old["w"])


# --------------------------------------------------------------------------------- 5. orphans and locks


def test_a_folder_in_use_is_refused_naming_its_holder(opened: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = copy(opened, tmp_path)
    with FolderLock(out, command="lrlab compare --out X"):
        info = json.loads((out / LOCK_FILE).read_text())
        assert info["pid"] == os.getpid() and info["host"]
        refused(capsys, ["compare", "--resume", str(out)], str(out), "in use by lrlab compare --out X",
                f"pid {os.getpid()} on host")
        refused(capsys, [*TRAIN, "--out", str(out), "--resume"], "in use by")
    assert not (out / LOCK_FILE).exists()  # released and removed


def test_a_stale_lock_from_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": int(dead.stdout), "host": "here", "command": "lrlab"}))
    with FolderLock(tmp_path, command="me") as lock:
        assert lock.held and json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()


def test_a_lock_waits_for_the_workers_of_an_earlier_holder(tmp_path: Path) -> None:
    code = ("import sys, time; from lrlab.files import hold_shared; hold_shared(sys.argv[1]); print('held', "
            "flush=True); time.sleep(float(sys.argv[2]))")
    orphan = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / WORKERS_LOCK_FILE), "30"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert orphan.stdout is not None and orphan.stdout.readline().strip() == "held"
        with pytest.raises(LrlabError, match="still written by worker processes of an earlier lrlab run"):
            FolderLock(tmp_path, command="me", wait_workers_s=0.3).acquire()
        assert not (tmp_path / LOCK_FILE).exists()
    finally:
        orphan.kill()
        orphan.wait()
    with FolderLock(tmp_path, command="me", wait_workers_s=5):  # the worker is gone: taken at once
        pass
    fd = hold_shared(tmp_path / WORKERS_LOCK_FILE)  # what a worker does; shared with the others
    assert fd is not None
    os.close(fd)


def _children(pid: int) -> list[int]:
    """Live processes whose parent is ``pid`` (Linux /proc)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                out.append(int(d.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its exit status waits to be collected


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the workers through Linux /proc")
def test_workers_stop_within_seconds_when_their_driver_is_killed(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    args = [sys.executable, "-m", "lrlab.cli", "compare", "--steps", "20000", "--schedules", "constant(); cosine()",
            "--lr-grid", "1", "--confirm", "0", "--lr-extend", "0", "--no-branch", "--workers", "2",
            "--checkpoint-every", "20", "--eval-every", "10000", "--eval-batches", "1", "--no-plots",
            "--out", str(out)]
    driver = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:  # both workers training: each has written a checkpoint
            if len(list((out / "ckpt").glob("*/checkpoint.pt"))) == 2:
                break
            assert driver.poll() is None, "compare ended early"
            time.sleep(0.05)
        else:
            pytest.fail("the workers did not start within 180 s")
        workers = [p for p in _children(driver.pid)
                   if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text(errors="replace")]
        assert len(workers) == 2
        with pytest.raises(LrlabError, match=f"in use by lrlab compare \\(pid {driver.pid} on host"):
            FolderLock(out, command="a second driver").acquire()
        os.kill(driver.pid, signal.SIGKILL)  # the driver alone: its workers are left running
        driver.wait()
        t0 = time.monotonic()
        while any(_alive(p) for p in workers) and time.monotonic() - t0 < 15:
            time.sleep(0.05)
        gone_after = time.monotonic() - t0
        assert not any(_alive(p) for p in workers), "orphaned workers still running after 15 s"
        assert gone_after < 5, gone_after
        # nothing writes the folder any more, and a resume may take it at once
        before = tree(out / "ckpt")
        time.sleep(0.5)
        assert tree(out / "ckpt") == before
        with FolderLock(out, command="test", wait_workers_s=0):
            pass
    finally:
        for p in [driver.pid, *workers]:
            with contextlib.suppress(OSError):
                os.kill(p, signal.SIGKILL)
        driver.wait()


# --------------------------------------------------------------------------------- 6. planted symbolic links


def test_a_planted_link_in_the_out_folder_is_never_written_through(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "run"
    (out / "ckpt").mkdir(parents=True)
    for name in ("checkpoint.pt.tmp", ".checkpoint.pt.tmp", "checkpoint.pt.branch"):  # the old fixed names
        (out / "ckpt" / name).symlink_to(victim)
    assert main([*TRAIN, "--out", str(out)]) == 0
    capsys.readouterr()
    assert victim.read_text() == "precious"
    # a link where the Monitor appends its log: refused, the file it points to untouched
    out2 = tmp_path / "run2"
    (out2 / "monitor").mkdir(parents=True)
    (out2 / "monitor" / "monitor.jsonl").symlink_to(victim)
    refused(capsys, [*TRAIN, "--out", str(out2)], str(out2 / "monitor" / "monitor.jsonl"), "symbolic link")
    assert victim.read_text() == "precious"


def test_safe_helpers_replace_a_link_instead_of_following_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    src = tmp_path / "src"
    src.write_bytes(b"checkpoint")
    dst = tmp_path / "dst"
    dst.symlink_to(victim)
    atomic_copy(src, dst)
    assert not dst.is_symlink() and dst.read_bytes() == b"checkpoint" and victim.read_bytes() == b"precious"
    link = tmp_path / "log.jsonl"
    link.symlink_to(victim)
    with pytest.raises(FileError, match="symbolic link"):
        open_append(link)
    from lrlab.monitor_files import drop_partial_line

    with pytest.raises(FileError, match="symbolic link"):
        drop_partial_line(link)
    assert victim.read_bytes() == b"precious"


# ------------------------------------------------------------------------- 7. a tampered compare.json


def test_resume_says_what_it_reads_and_refuses_data_it_was_not_started_on(
        opened: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "elsewhere.txt"
    other.write_text("secret " * 200)
    out = copy(opened, tmp_path)
    meta = json.loads((out / CONFIG_FILE).read_text())
    meta["config"]["task"] = f"text:{other}"
    (out / CONFIG_FILE).write_text(json.dumps(meta))
    code = main(["compare", "--resume", str(out)])
    stdout, err = capsys.readouterr()
    assert code == 2 and "Traceback" not in err
    assert f"task text:{other}" in stdout and f"reading the text file {other}" in stdout
    assert "other data" in err and "corpus_sha256" in err
    # removing the fingerprint does not get past the check
    meta["corpus_sha256"] = None
    (out / CONFIG_FILE).write_text(json.dumps(meta))
    refused(capsys, ["compare", "--resume", str(out)], str(out / CONFIG_FILE), "corpus_sha256")
    meta.pop("corpus_sha256")
    (out / CONFIG_FILE).write_text(json.dumps(meta))
    refused(capsys, ["compare", "--resume", str(out)], str(out / CONFIG_FILE), "corpus_sha256")
    assert not (out / "results.json").exists()


def test_a_tampered_hf_task_is_announced_before_it_is_loaded(opened: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import lrlab.bench.tasks as tasks

    out = copy(opened, tmp_path)
    meta = json.loads((out / CONFIG_FILE).read_text())
    meta["config"]["task"] = "hf:someone/some-dataset"
    (out / CONFIG_FILE).write_text(json.dumps(meta))
    seen: list[str] = []

    def load(spec: str) -> Any:  # stands in for the download
        seen.append(capsys.readouterr().out)
        raise LrlabError(f"task 'hf:{spec}': could not load dataset (offline)")

    monkeypatch.setattr(tasks, "_hf_dataset", load)
    refused(capsys, ["compare", "--resume", str(out)], "could not load dataset")
    assert seen and "Hugging Face dataset 'someone/some-dataset' (downloaded" in seen[0]
