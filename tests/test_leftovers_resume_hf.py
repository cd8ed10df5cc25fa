"""`lrlab compare --resume` on an ``hf:`` task refuses a data fingerprint that changed since the comparison
started, as it does for ``text:PATH``: the message names the task and both fingerprints, exit 2, and nothing is
run. Local datasets only (``Dataset.save_to_disk``): nothing is downloaded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lrlab.bench.compare import CONFIG_FILE, open_run
from lrlab.bench.design import CompareConfig
from lrlab.cli import main

datasets = pytest.importorskip("datasets")
ROWS = [f"row {i}: the quick brown fox jumps over the lazy dog {i} " * 3 for i in range(300)]


def save(folder: Path, rows: list[str]) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    datasets.Dataset.from_dict({"text": rows}).save_to_disk(str(folder))
    return folder


def start(out: Path, task: str) -> str:
    """A comparison opened on ``task`` (compare.json written, nothing run); its recorded fingerprint."""
    open_run(out, CompareConfig(task=task, steps=10, schedules=("constant()",), lr_grid=1, confirm_seeds=0),
             resume=False, workers=1).close()
    sha = json.loads((out / CONFIG_FILE).read_text())["corpus_sha256"]
    assert isinstance(sha, str) and len(sha) == 64
    return sha


def refused_resume(capsys: pytest.CaptureFixture[str], out: Path) -> tuple[str, str]:
    capsys.readouterr()  # the datasets library's progress bars while saving
    code = main(["compare", "--resume", str(out), "--no-plots"])
    stdout, err = capsys.readouterr()
    assert code == 2 and "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert not (out / "results.json").exists()
    assert not (out / "runs").exists() or not any((out / "runs").iterdir())  # nothing ran
    return stdout, lines[0]


def test_a_changed_hf_dataset_is_refused_naming_the_task_and_both_fingerprints(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ds = save(tmp_path / "ds", ROWS)
    task = f"hf:{ds}"
    then = start(tmp_path / "cmp", task)
    save(ds, [r.upper() for r in ROWS])  # the dataset changed since the comparison started
    stdout, err = refused_resume(capsys, tmp_path / "cmp")
    assert f"reading the Hugging Face dataset saved in {ds}" in stdout  # announced before it is read
    assert f"task {task} was started on other data" in err
    assert f"corpus_sha256 {then} then, " in err and err.count("corpus_sha256") == 1
    now = err.split(" then, ")[1].split(" now")[0]
    assert len(now) == 64 and now != then


def test_a_compare_json_tampered_to_another_hf_dataset_is_refused(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    ds = save(tmp_path / "ds", ROWS)
    other = save(tmp_path / "other", ROWS[::-1])
    out = tmp_path / "cmp"
    then = start(out, f"hf:{ds}")
    meta = json.loads((out / CONFIG_FILE).read_text())
    meta["config"]["task"] = f"hf:{other}"
    (out / CONFIG_FILE).write_text(json.dumps(meta))
    stdout, err = refused_resume(capsys, out)
    assert f"task hf:{other} (tiny), reading the Hugging Face dataset saved in {other}" in stdout
    assert f"task hf:{other} was started on other data" in err and f"corpus_sha256 {then} then" in err


def test_the_same_hf_dataset_resumes(tmp_path: Path) -> None:
    ds = save(tmp_path / "ds", ROWS)
    out = tmp_path / "cmp"
    then = start(out, f"hf:{ds}")
    save(ds, list(ROWS))  # written again, same rows: the same fingerprint
    run = open_run(out, None, resume=True, workers=1)
    run.close()
    assert json.loads((out / CONFIG_FILE).read_text())["corpus_sha256"] == then
