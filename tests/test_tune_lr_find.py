"""``lrlab tune --lr find`` (`TuneConfig.lr_find`): the peak-LR grid is centred on the peak LR ``lrlab find``
suggests (`lrlab.bench.find.peak_on_task`), as ``lrlab compare --lr find`` centres its grid; the range test runs once,
before the folder is created, and ``tune.json`` records it (compare.json's shape); a resumed tune keeps the recorded
centre and never runs the range test again. The range test's curve is synthetic (`find_on_task` replaced) and the
worker processes are the fake backend of tests/test_tune_device.py, except in the real runs at the end."""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path
from typing import Any

import pytest

from lrlab.bench import find as bench_find
from lrlab.bench.compare import cores
from lrlab.bench.find import PEAK_RULE
from lrlab.cli import main
from lrlab.errors import LrlabError
from lrlab.range_test import CALIBRATED_SWEEP, PEAK_FACTOR, peak_lr, sweep_lrs
from lrlab.tune import TuneConfig, Tuner
from lrlab.tune.runner import run_tune
from test_compare_lr_find import BOUNDARY_INDEX, as_result, synthetic
from test_tune_device import SMALL, FakeBackend, fake_backends

__all__ = ["fake_backends"]  # a fixture, used by name

#: the peak LR the synthetic sweep gives: PEAK_FACTOR x its boundary (the point of lowest loss)
PEAK = PEAK_FACTOR * float(sweep_lrs(*CALIBRATED_SWEEP)[BOUNDARY_INDEX])


@pytest.fixture
def fake_sweep(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """`find_on_task` replaced by the synthetic curve of the sweep it is asked for; the calls' arguments."""
    calls: list[dict[str, Any]] = []

    def fake(task: str = "lm", **kw: Any) -> Any:
        calls.append({"task": task, **kw})
        return synthetic(kw["start_lr"], kw["end_lr"], kw["num_iter"], BOUNDARY_INDEX)

    monkeypatch.setattr(bench_find, "find_on_task", fake)
    return calls


def meta(out: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((out / "tune.json").read_text())
    return loaded


def test_the_grid_is_centred_on_the_range_tests_peak_lr_and_tune_json_records_it(
        fake_sweep: list[dict[str, Any]], fake_backends: type[FakeBackend], tmp_path: Path) -> None:
    out = tmp_path / "tune"
    notes: list[str] = []
    doc, result = run_tune(TuneConfig(**SMALL, optimizer="sgd", seed=4, lr_find=True), out, workers=2,
                           on_event=lambda e: notes.append(e.label) if e.kind == "note" else None)
    assert result is None and doc["status"] == "interrupted"  # the fake backend's Ctrl-C
    # one range test: the calibrated sweep, on the trunks' seed, with the tune's optimizer, on the first worker's
    # device, in the driver with every core (before the workers start)
    start, end, n = CALIBRATED_SWEEP
    assert [{k: c[k] for k in ("task", "preset", "optimizer", "seed", "batch_size", "start_lr", "end_lr",
                               "num_iter", "mode", "device", "threads")} for c in fake_sweep] == \
        [{"task": "lm", "preset": "tiny", "optimizer": "sgd", "seed": 4, "batch_size": None, "start_lr": start,
          "end_lr": end, "num_iter": n, "mode": "exp", "device": "cpu", "threads": cores()}]
    m = meta(out)
    assert m["config"] == TuneConfig(**SMALL, optimizer="sgd", seed=4, lr_find=True).centred(PEAK).to_dict()
    assert m["config"]["lr"] == pytest.approx(PEAK, rel=1e-12) and m["config"]["lr_find"] is True
    rec = m["lr_find"]["sgd"]
    assert list(m["lr_find"]) == ["sgd"]
    assert {k: rec[k] for k in ("suggestion", "rule", "num_iter", "device")} == \
        {"suggestion": m["config"]["lr"], "rule": PEAK_RULE, "num_iter": n, "device": "cpu"}
    curve = as_result(rec["result"])
    assert rec["peak"] == peak_lr(curve).to_dict() and rec["peak"]["index"] == BOUNDARY_INDEX
    assert [s["rule"] for s in rec["suggestions"]] == ["steepest", "valley", "minimum/10"]
    assert doc["lr_find"] == m["lr_find"] and doc["config"] == m["config"]  # results.json says it too
    # the grid: the centre's peaks, factor 2 apart, the middle one the range test's peak LR
    lrs = sorted({p["train"]["lr"] for p in fake_backends.payloads})
    assert lrs == pytest.approx([PEAK * 2.0 ** (j - (len(lrs) - 1) / 2) for j in range(len(lrs))], rel=1e-12)
    assert len(lrs) == 3
    assert notes[:2] == [f"LR range test ({n} updates) for the grid centre of sgd",
                         f"peak-LR grid centres from the LR range test: sgd {PEAK:.3g} ({PEAK_RULE}, {n}-update "
                         "range test)"]


def test_a_resumed_tune_keeps_its_centre_and_never_runs_the_range_test_again(
        fake_sweep: list[dict[str, Any]], fake_backends: type[FakeBackend], tmp_path: Path) -> None:
    out = tmp_path / "tune"
    run_tune(TuneConfig(**SMALL, lr_find=True), out)
    assert len(fake_sweep) == 1
    before = meta(out)
    notes: list[str] = []
    run_tune(None, out, resume=True, on_event=lambda e: notes.append(e.label) if e.kind == "note" else None)
    # the same config given again (lr_find, no lr) is the saved one: accepted, centred on the recorded centre
    run_tune(TuneConfig(**SMALL, lr_find=True), out, resume=True)
    assert len(fake_sweep) == 1
    after = meta(out)
    assert after["config"] == before["config"] and after["lr_find"] == before["lr_find"]
    assert [s["resumed"] for s in after["sessions"]] == [False, True, True]
    assert notes == [f"peak-LR grid centres from the LR range test: adamw {PEAK:.3g} ({PEAK_RULE}, 300-update "
                     "range test)"]
    assert {p["train"]["lr"] for p in fake_backends.payloads} == {p["train"]["lr"] for p in fake_backends.payloads[:3]}
    # other settings are refused, as any change on resume is
    for other in (TuneConfig(**SMALL), TuneConfig(**{**SMALL, "seed": 1}, lr_find=True)):
        with pytest.raises(LrlabError, match="the folder holds a tune with other settings"):
            run_tune(other, out, resume=True)
    assert len(fake_sweep) == 1


def test_a_folder_without_an_lr_find_record_resumes_as_before(fake_backends: type[FakeBackend],
                                                              tmp_path: Path) -> None:
    out = tmp_path / "tune"
    run_tune(TuneConfig(**SMALL), out)
    m = meta(out)
    assert m["lr_find"] is None and m["config"]["lr_find"] is False
    del m["lr_find"], m["config"]["lr_find"]  # as written before lr_find
    (out / "tune.json").write_text(json.dumps(m))
    notes: list[str] = []
    doc, _ = run_tune(None, out, resume=True, on_event=lambda e: notes.append(e.label) if e.kind == "note" else None)
    assert doc["lr_find"] is None and notes == []


def test_lr_and_lr_find_together_are_refused_and_nothing_is_written(fake_sweep: list[dict[str, Any]],
                                                                    tmp_path: Path) -> None:
    out = tmp_path / "tune"
    with pytest.raises(LrlabError, match=r"lr_find takes the centre of the peak-LR grid from an LR range test; "
                                         r"give lr \(0.01\) or lr_find, not both"):
        run_tune(TuneConfig(**SMALL, lr=0.01, lr_find=True), out)
    assert fake_sweep == [] and not out.exists()


def test_the_range_test_runs_after_the_other_checks_and_its_failure_writes_nothing(
        fake_sweep: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    out = tmp_path / "tune"
    with pytest.raises(LrlabError, match="budget 100 updates is too small"):  # checked before the range test
        run_tune(TuneConfig(**{**SMALL, "budget": 100}, lr_find=True), out)
    assert fake_sweep == [] and not out.exists()

    def diverged(task: str = "lm", **kw: Any) -> Any:
        raise LrlabError("the range test diverged at its first update")

    monkeypatch.setattr(bench_find, "find_on_task", diverged)
    with pytest.raises(LrlabError, match="diverged at its first update"):
        run_tune(TuneConfig(**SMALL, lr_find=True), out)
    assert not out.exists()


def test_a_tuner_needs_a_centre(tmp_path: Path) -> None:
    with pytest.raises(LrlabError, match=r"lr_find: the centre of the peak-LR grid comes from an LR range test, "
                                         r"which lrlab\.tune\.tune runs on a built-in task; for a loop of your own "
                                         "give lr"):
        Tuner(TuneConfig(horizon=100, budget=500, lr_find=True))
    # a resolved config (the range test ran): lr is the centre it found
    tuner = Tuner(TuneConfig(horizon=100, budget=500, lr_find=True, lr=0.02))
    assert tuner.config.lr == 0.02 and tuner.config.lr_find is True
    assert Tuner.from_dict(tuner.to_dict()).config == tuner.config
    with pytest.raises(LrlabError, match="lr_find must be true or false, got 'yes'"):
        TuneConfig(horizon=100, lr_find="yes")  # type: ignore[arg-type]


def test_the_cli_says_where_the_centre_came_from(fake_sweep: list[dict[str, Any]], fake_backends: type[FakeBackend],
                                                 tmp_path: Path) -> None:
    out = tmp_path / "tune"
    shown = io.StringIO()
    with contextlib.redirect_stdout(shown):
        assert main(["tune", "--steps", "100", "--budget", "500", "--lr", "find", "--device", "cpu",
                     "--out", str(out)]) == 130
        assert main(["tune", "--resume", str(out)]) == 130
    text = shown.getvalue()
    assert text.count("LR range test (300 updates) for the grid centre of adamw") == 1
    assert text.count("peak-LR grid centres from the LR range test: adamw ") == 2  # the run and its resume
    assert len(fake_sweep) == 1 and meta(out)["config"]["lr"] == pytest.approx(PEAK, rel=1e-12)


@pytest.mark.parametrize(("value", "message"), [
    ("banana", "Invalid value for '--lr': 'banana' is neither a number nor find"),
    ("0", "lr must be > 0, got 0.0"),
], ids=["word", "zero"])
def test_a_bad_lr_exits_2_and_writes_nothing(value: str, message: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "never"
    assert main(["tune", "--lr", value, "--out", str(out)]) == 2
    assert message in " ".join(capsys.readouterr().err.replace("│", " ").split())
    assert not out.exists()


@pytest.mark.slow
def test_a_real_range_test_centres_the_grid(fake_backends: type[FakeBackend], tmp_path: Path) -> None:
    """The range test itself, not a synthetic curve: 300 updates of the tiny model."""
    out = tmp_path / "tune"
    run_tune(TuneConfig(**SMALL, lr_find=True), out, workers=1)
    rec = meta(out)["lr_find"]["adamw"]
    assert rec["num_iter"] == 300 and rec["rule"] == PEAK_RULE and rec["device"] == "cpu"
    assert rec["suggestion"] == meta(out)["config"]["lr"] == peak_lr(as_result(rec["result"])).lr
    assert 1e-4 < rec["suggestion"] < 1.0


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_a_real_tune_with_lr_find_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "tune"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["tune", "--steps", "100", "--budget", "500", "--checkpoint-every", "10", "--lr", "find",
                     "--no-plots", "--device", "cpu", "--out", str(out)]) == 0
    doc = json.loads((out / "results.json").read_text())
    centre = doc["lr_find"]["adamw"]["suggestion"]
    assert doc["status"] == "complete" and doc["config"]["lr"] == centre and doc["result"]["spent"] <= 500
    trunks = {t["lr"] for t in doc["trials"] if t["kind"] == "trunk"}
    assert any(math.isclose(lr, centre, rel_tol=1e-12) for lr in trunks)
    report = (out / "report.md").read_text()
    assert f"adamw {centre:.3g} (peak_lr: 0.27 x the divergence boundary, 300-update range test)" in report
