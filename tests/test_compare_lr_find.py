"""``lrlab compare --lr find``: the grid centre is the peak LR ``lrlab find`` suggests (`lrlab.bench.find.peak_on_task`:
`lrlab.range_test.peak_lr` on the calibrated 300-update sweep), compare.json records the rule and the sweep length,
and a folder started under the old rule (median of the classic suggestions, 100 updates) still resumes on the
centres it recorded."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lrlab.bench import find as bench_find
from lrlab.bench.compare import CONFIG_FILE, lr_find_note, lr_range_test, open_run, run_compare
from lrlab.bench.design import CompareConfig
from lrlab.bench.events import Event
from lrlab.bench.find import PEAK_RULE, peak_on_task
from lrlab.range_test import CALIBRATED_SWEEP, PEAK_FACTOR, RangeTestResult, peak_lr, sweep_lrs

OLD_RULE = "geometric median of steepest, valley, minimum/10"
BOUNDARY_INDEX = 200  # of the synthetic 300-update sweep: the lowest point of its loss


def synthetic(start_lr: float, end_lr: float, num_iter: int, index: int) -> RangeTestResult:
    """A completed exponential sweep whose loss is a parabola in log10(LR) with its minimum at point `index`:
    smoothed with a symmetric Gaussian it keeps its minimum there, so peak_lr's boundary is ``lrs[index]``."""
    lrs = sweep_lrs(start_lr, end_lr, num_iter)
    loss = 1.0 + (np.log10(lrs) - math.log10(lrs[index])) ** 2
    return RangeTestResult(lrs=tuple(float(x) for x in lrs), losses=tuple(float(x) for x in loss),
                           smoothed=tuple(float(x) for x in loss), start_lr=start_lr, end_lr=end_lr,
                           num_iter=num_iter, mode="exp", smooth=0.98, diverge_threshold=5.0,
                           stop_reason="completed")


@pytest.fixture
def fake_sweep(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """`find_on_task` replaced by the synthetic curve of the sweep it is asked for; the calls' arguments."""
    calls: list[dict[str, Any]] = []

    def fake(task: str = "lm", **kw: Any) -> RangeTestResult:
        calls.append({"task": task, **kw})
        return synthetic(kw["start_lr"], kw["end_lr"], kw["num_iter"], BOUNDARY_INDEX)

    monkeypatch.setattr(bench_find, "find_on_task", fake)
    return calls


def as_result(record: dict[str, Any]) -> RangeTestResult:
    """The `RangeTestResult` of a record's ``result`` (`RangeTestResult.to_dict`, non-finite numbers as text)."""
    d = dict(record)
    for k in ("lrs", "losses", "smoothed"):
        d[k] = tuple(float(x) for x in d[k])
    return RangeTestResult(**d)


def small_config(**kw: Any) -> CompareConfig:
    """The smallest comparison: one schedule, 10 updates, no extension or confirmation; 3 grid LRs unless told."""
    return CompareConfig(**{"steps": 10, "schedules": ("constant()",), "lr_grid": 3, "eval_every": 10,
                            "eval_batches": 1, "confirm_seeds": 0, "lr_extend": 0, **kw})


# ------------------------------------------------------------------------------------- the rule, exactly


def test_peak_on_task_is_peak_lr_of_the_calibrated_sweep(fake_sweep: list[dict[str, Any]]) -> None:
    result, peak = peak_on_task("lm", preset="tiny", optimizer="sgd", seed=3, batch_size=4)
    start, end, n = CALIBRATED_SWEEP
    assert [(c["start_lr"], c["end_lr"], c["num_iter"], c["mode"]) for c in fake_sweep] == [(start, end, n, "exp")]
    assert (fake_sweep[0]["optimizer"], fake_sweep[0]["seed"], fake_sweep[0]["batch_size"]) == ("sgd", 3, 4)
    assert peak == peak_lr(result)
    assert peak.index == BOUNDARY_INDEX
    assert peak.lr == pytest.approx(PEAK_FACTOR * float(sweep_lrs(start, end, n)[BOUNDARY_INDEX]), rel=1e-12)


def test_find_on_task_defaults_to_the_calibrated_sweep() -> None:
    import inspect

    params = inspect.signature(bench_find.find_on_task).parameters
    assert (params["start_lr"].default, params["end_lr"].default, params["num_iter"].default,
            params["mode"].default) == (*CALIBRATED_SWEEP, "exp")


def test_lr_range_test_record_names_its_rule_and_sweep(fake_sweep: list[dict[str, Any]]) -> None:
    rec = lr_range_test(small_config(lr_find=True), "adamw", threads=1)
    start, end, n = CALIBRATED_SWEEP
    expected = PEAK_FACTOR * float(sweep_lrs(start, end, n)[BOUNDARY_INDEX])
    assert rec["suggestion"] == pytest.approx(expected, rel=1e-12)
    assert rec["rule"] == PEAK_RULE == f"peak_lr: {PEAK_FACTOR:g} x the divergence boundary"
    assert rec["num_iter"] == n == rec["result"]["num_iter"]
    assert rec["peak"]["rule"] == "peak" and rec["peak"]["lr"] == rec["suggestion"]
    assert [s["rule"] for s in rec["suggestions"]] == ["steepest", "valley", "minimum/10"]
    assert json.loads(json.dumps(rec)) == rec  # plain JSON, as compare.json holds it


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"suggestion": 0.00812, "rule": PEAK_RULE, "num_iter": 300, "result": {"num_iter": 300}},
         f"adamw 0.0081 ({PEAK_RULE}, 300-update range test)"),
        ({"suggestion": 0.0123, "rule": OLD_RULE, "result": {"num_iter": 100}},
         f"adamw 0.0081 ({OLD_RULE}, 100-update range test)"),
        ({"suggestion": 0.0123}, "adamw 0.0081 (?, ?-update range test)"),
        ("damaged", "adamw 0.0081 (?, ?-update range test)"),
    ],
    ids=["new", "old", "partial", "not-an-object"],
)
def test_lr_find_note(record: Any, expected: str) -> None:
    # the centre shown is compare.json's lr_centers entry: the grid is built on it
    assert lr_find_note({"adamw": record}, {"adamw": 0.0081}) == (
        "peak-LR grid centres from the LR range test: " + expected)


# ------------------------------------------------------------------------------------- real comparisons


@pytest.mark.slow
def test_compare_lr_find_centres_the_grid_on_peak_lr(fake_sweep: list[dict[str, Any]], tmp_path: Path) -> None:
    events: list[Event] = []
    doc = run_compare(small_config(lr_find=True), tmp_path, workers=1, on_event=events.append)
    start, end, n = CALIBRATED_SWEEP
    centre = PEAK_FACTOR * float(sweep_lrs(start, end, n)[BOUNDARY_INDEX])
    find = doc["lr_find"]["adamw"]
    assert (find["rule"], find["num_iter"]) == (PEAK_RULE, n)
    assert doc["lr_centers"] == {"adamw": find["suggestion"]}
    assert find["suggestion"] == pytest.approx(centre, rel=1e-12)
    assert [t["lr"] for t in doc["trials"]] == pytest.approx([centre * f for f in (1 / 2, 1, 2)], rel=1e-12)
    meta = json.loads((tmp_path / CONFIG_FILE).read_text())
    assert meta["lr_find"] == doc["lr_find"] and meta["lr_centers"] == doc["lr_centers"]
    notes = [e.label for e in events if e.kind == "note"]
    assert f"adamw {centre:.3g} ({PEAK_RULE}, 300-update range test)" in notes[-1]


@pytest.mark.slow
def test_compare_lr_find_on_a_real_sweep_is_what_lrlab_find_suggests(tmp_path: Path) -> None:
    doc = run_compare(small_config(lr_find=True, lr_grid=1), tmp_path, workers=1)
    find = doc["lr_find"]["adamw"]
    result = as_result(find["result"])
    assert (result.start_lr, result.end_lr, result.num_iter, result.mode) == (*CALIBRATED_SWEEP, "exp")
    assert find["suggestion"] == pytest.approx(peak_lr(result).lr, rel=1e-12)
    # the same test run again as `lrlab find` runs it (seed 0, 1 thread on tiny: deterministic)
    again, peak = peak_on_task("lm", preset="tiny", optimizer="adamw", seed=0)
    assert again.losses == result.losses
    assert doc["lr_centers"] == {"adamw": peak.lr} and find["suggestion"] == peak.lr


@pytest.mark.slow
def test_a_folder_started_under_the_old_rule_resumes_on_its_recorded_centre(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # compare.json as the code before #11 left it when it stopped after the range test: the old record shape
    old = synthetic(1e-6, 10.0, 100, 60)
    old_centre = 0.00417
    record = {"result": old.to_dict(), "suggestions": [
        {"rule": r, "lr": lr, "index": 50, "loss": 1.0, "note": "..."}
        for r, lr in (("steepest", 0.001), ("valley", old_centre), ("minimum/10", 0.02))],
        "suggestion": old_centre, "rule": OLD_RULE}
    run = open_run(tmp_path, small_config(lr_find=True, lr_grid=1), resume=False, workers=1)
    run.meta["lr_find"] = {"adamw": record}
    run.meta["lr_centers"] = {"adamw": old_centre}
    run.save_meta()
    run.close()

    def no_sweep(*args: Any, **kw: Any) -> None:
        raise AssertionError("a resumed comparison must keep its recorded centres, not run a new range test")

    monkeypatch.setattr(bench_find, "find_on_task", no_sweep)
    events: list[Event] = []
    doc = run_compare(None, tmp_path, resume=True, workers=1, on_event=events.append)
    assert doc["status"] == "complete"
    assert doc["lr_centers"] == {"adamw": old_centre} and doc["lr_find"] == {"adamw": record}
    assert [t["lr"] for t in doc["trials"]] == [old_centre]
    notes = [e.label for e in events if e.kind == "note"]
    assert notes[-1] == ("peak-LR grid centres from the LR range test: "
                         f"adamw 0.00417 ({OLD_RULE}, 100-update range test)")
