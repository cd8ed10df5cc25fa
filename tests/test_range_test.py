"""LR range test: the sweep, exact restore (also on errors and Ctrl-C), accumulation, per-group LRs, early stop,
the suggestion rules on curves with known answers, the plot, DDP on 2 gloo processes, and a cross-check against
torch-lr-finder on the same model, data and seed."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from lrlab.bench.find import cross_entropy_flat, find_on_task
from lrlab.bench.model import param_groups
from lrlab.bench.train import build_optimizer
from lrlab.errors import LrlabError
from lrlab.range_test import (
    PEAK_FACTOR,
    RangeTestResult,
    centred_loss,
    find_lr,
    median_suggestion,
    minimum_over_10,
    peak_lr,
    plot_range_test,
    range_test_figure,
    steepest,
    suggest_all,
    sweep_lrs,
    valley,
)


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def mlp_problem(seed: int = 0, n: int = 512, batch: int = 32, dtype: Any = None) -> tuple[Any, list[Any]]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 10, generator=g, dtype=dtype)
    w = torch.randn(10, 4, generator=g, dtype=dtype)
    y = (x @ w + 0.3 * torch.randn(n, 4, generator=g, dtype=dtype)).argmax(1)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))
    if dtype is not None:
        model = model.to(dtype)
    return model, [(x[i:i + batch], y[i:i + batch]) for i in range(0, n, batch)]


def snapshot(model: Any, optimizer: Any) -> dict[str, Any]:
    import copy

    return {"model": copy.deepcopy(model.state_dict()), "opt": copy.deepcopy(optimizer.state_dict()),
            "grads": [None if p.grad is None else p.grad.clone() for p in model.parameters()],
            "modes": [m.training for m in model.modules()], "rng": torch.get_rng_state(),
            "ids": [id(p) for p in model.parameters()]}


def same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return bool(a == b)


# ------------------------------------------------------------------------------------------------ sweep


@pytest.mark.parametrize(("mode", "expected"), [
    ("exp", [1e-4, 1e-3, 1e-2, 1e-1, 1.0]),
    ("linear", [1e-4, 0.250075, 0.50005, 0.750025, 1.0]),
], ids=["exp", "linear"])
def test_sweep_lrs(mode: str, expected: list[float]) -> None:
    got = sweep_lrs(1e-4, 1.0, 5, mode)
    assert got.tolist() == pytest.approx(expected, rel=1e-12)


def test_find_lr_uses_the_swept_lrs_and_keeps_group_ratios() -> None:
    model, batches = mlp_problem()
    opt = torch.optim.SGD([{"params": model[0].parameters(), "lr": 0.1},
                           {"params": model[2].parameters(), "lr": 0.01}], lr=0.1)
    seen: list[tuple[float, float]] = []

    def loss_fn(out: Any, y: Any) -> Any:
        seen.append((opt.param_groups[0]["lr"], opt.param_groups[1]["lr"]))
        return torch.nn.functional.cross_entropy(out, y)

    r = find_lr(model, loss_fn, batches, opt, start_lr=1e-5, end_lr=1e-1, num_iter=20, diverge_threshold=1e9)
    assert r.stop_reason == "completed" and len(r.lrs) == 20
    assert list(r.lrs) == pytest.approx(sweep_lrs(1e-5, 1e-1, 20).tolist(), rel=1e-12)
    assert [a for a, _ in seen] == pytest.approx(list(r.lrs), rel=1e-12)
    assert [b / a for a, b in seen] == pytest.approx([0.1] * 20, rel=1e-12)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.01]  # restored


def test_linear_sweep() -> None:
    model, batches = mlp_problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    r = find_lr(model, torch.nn.functional.cross_entropy, batches, opt, start_lr=1e-3, end_lr=3.0, num_iter=60,
                mode="linear")
    n = len(r.lrs)
    assert r.mode == "linear" and list(r.lrs) == pytest.approx(sweep_lrs(1e-3, 3.0, 60, "linear")[:n].tolist(),
                                                                rel=1e-12)
    s = steepest(r)
    assert r.lrs[s.index] == s.lr and s.lr > 1e-3


def test_smoothing_is_a_bias_corrected_ema() -> None:
    model, batches = mlp_problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    r = find_lr(model, torch.nn.functional.cross_entropy, batches, opt, start_lr=1e-4, end_lr=1e-2, num_iter=15,
                smooth=0.9)
    avg = 0.0
    for i, (raw, sm) in enumerate(zip(r.losses, r.smoothed)):
        avg = 0.9 * avg + 0.1 * raw
        assert sm == pytest.approx(avg / (1 - 0.9 ** (i + 1)), rel=1e-12)
    assert r.smoothed[0] == r.losses[0]


# ------------------------------------------------------------------------------------------------ restore


def test_model_and_optimizer_are_restored_exactly() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(),
                                torch.nn.Dropout(0.2), torch.nn.Linear(8, 3))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    x, y = torch.randn(64, 6), torch.randint(0, 3, (64,))
    for _ in range(3):  # the optimizer has state (exp_avg, step) and the model running stats
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()
    model[3].train()  # mixed modes must come back as they were
    before = snapshot(model, opt)
    batches = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]
    r = find_lr(model, torch.nn.functional.cross_entropy, batches, opt, start_lr=1e-5, end_lr=10, num_iter=30)
    assert len(r.lrs) >= 10
    after = snapshot(model, opt)
    for key in ("model", "opt", "grads", "modes", "rng", "ids"):
        assert same(before[key], after[key]), key
    # the optimizer still drives the very same parameter objects
    assert [id(p) for p in opt.param_groups[0]["params"]] == before["ids"]


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()], ids=["exception", "ctrl-c"])
def test_restored_on_exception_and_ctrl_c(error: BaseException) -> None:
    model, batches = mlp_problem()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = snapshot(model, opt)
    calls = {"n": 0}

    def loss_fn(out: Any, y: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 7:
            raise error
        return torch.nn.functional.cross_entropy(out, y)

    with pytest.raises(type(error)):
        find_lr(model, loss_fn, batches, opt, start_lr=1e-4, end_lr=1.0, num_iter=20)
    after = snapshot(model, opt)
    for key in ("model", "opt", "grads", "modes", "rng"):
        assert same(before[key], after[key]), key
    assert calls["n"] == 7


def test_schedulefree_optimizer_is_restored() -> None:
    model, batches = mlp_problem()
    opt = build_optimizer("schedulefree", [{"params": list(model.parameters()), "weight_decay": 0.0}], 1e-3)
    opt.train()
    before = snapshot(model, opt)
    find_lr(model, torch.nn.functional.cross_entropy, batches, opt, start_lr=1e-5, end_lr=1.0, num_iter=15)
    after = snapshot(model, opt)
    assert same(before["model"], after["model"]) and same(before["opt"], after["opt"])


# ------------------------------------------------------------------------------------------------ accumulation


def test_gradient_accumulation_matches_the_full_batch() -> None:
    model, full = mlp_problem(dtype=torch.float64, batch=32)
    halves = [(x[i:i + 16], y[i:i + 16]) for x, y in full for i in (0, 16)]
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    a = find_lr(model, torch.nn.functional.cross_entropy, full, opt, start_lr=1e-4, end_lr=3.0, num_iter=15)
    b = find_lr(model, torch.nn.functional.cross_entropy, halves, opt, start_lr=1e-4, end_lr=3.0, num_iter=15,
                accumulation_steps=2)
    assert a.lrs == b.lrs
    assert list(b.losses) == pytest.approx(list(a.losses), rel=1e-10)


# ------------------------------------------------------------------------------------------------ early stop


def test_stops_when_the_loss_diverges() -> None:
    model, batches = mlp_problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    r = find_lr(model, torch.nn.functional.cross_entropy, batches, opt, start_lr=1e-3, end_lr=1e4, num_iter=100)
    assert r.stop_reason in ("diverged", "nonfinite")
    assert len(r.lrs) < 100
    if r.stop_reason == "diverged":
        assert r.smoothed[-1] > 5.0 * min(r.smoothed)
        assert all(s <= 5.0 * min(r.smoothed[: i + 1]) for i, s in enumerate(r.smoothed[:-1]))


def test_stops_on_a_nan_loss() -> None:
    model, batches = mlp_problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    calls = {"n": 0}

    def loss_fn(out: Any, y: Any) -> Any:
        calls["n"] += 1
        loss = torch.nn.functional.cross_entropy(out, y)
        return loss * float("nan") if calls["n"] == 12 else loss

    r = find_lr(model, loss_fn, batches, opt, start_lr=1e-5, end_lr=1e-2, num_iter=30)
    assert r.stop_reason == "nonfinite" and len(r.lrs) == 12
    assert math.isnan(r.losses[-1]) and math.isnan(r.smoothed[-1])
    assert r.to_dict()["losses"][-1] == "nan"


# ------------------------------------------------------------------------------------------------ suggestions


def logistic_result(center: float = -2.0, width: float = 0.5, n: int = 81, drop: float = 2.0,
                    tail: bool = True) -> RangeTestResult:
    """A clean curve: the loss falls by `drop` around log10(LR) = center (steepest exactly there), then blows up."""
    lrs = sweep_lrs(1e-6, 1e2, n)
    x = np.log10(lrs)
    loss = 3.0 - drop / (1.0 + np.exp(-(x - center) / width))
    if tail:
        loss = loss + np.where(x > 0.5, (x - 0.5) ** 2 * 20, 0.0)
    return RangeTestResult(lrs=tuple(lrs), losses=tuple(loss), smoothed=tuple(loss), start_lr=1e-6, end_lr=1e2,
                           num_iter=n, mode="exp", smooth=0.98, diverge_threshold=5.0, stop_reason="completed")


@pytest.mark.parametrize("center", [-4.0, -3.0, -2.0, -1.0], ids=lambda c: f"1e{c:g}")
def test_steepest_is_the_steepest_point_in_log_lr(center: float) -> None:
    r = logistic_result(center=center)
    s = steepest(r)
    assert s.rule == "steepest"
    assert s.lr == pytest.approx(10**center, rel=1e-9)  # the grid has a point every 0.1 decade
    assert r.lrs[s.index] == s.lr and s.loss == r.smoothed[s.index]


def test_slope_against_linear_lr_picks_lrs_too_low() -> None:
    """The Lightning pitfall (#21141): d loss / d lr on an exponential sweep favours small LRs."""
    r = logistic_result(center=-2.0, width=0.5)
    lrs, loss = np.asarray(r.lrs), np.asarray(r.smoothed)
    lo, hi = 10, len(lrs) - 5
    stop = lo + int(np.argmin(loss[lo:hi])) + 1
    linear = lrs[lo + int(np.argmin(np.gradient(loss[lo:stop], lrs[lo:stop])))]
    assert steepest(r).lr / linear > 3


def test_minimum_over_10() -> None:
    r = logistic_result()
    m = minimum_over_10(r)
    j = int(np.argmin(r.smoothed[8:76])) + 8
    assert m.index == j and m.lr == pytest.approx(r.lrs[j] / 10, rel=1e-12)


def fastai_valley(lrs: list[float], losses: list[float]) -> int:
    """fastai's ``valley`` (fastai/callback/schedule.py), verbatim but for returning the index."""
    n = len(losses)
    max_start, max_end = 0, 0
    lds = [1] * n
    for i in range(1, n):
        for j in range(0, i):
            if (losses[i] < losses[j]) and (lds[i] < lds[j] + 1):
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    return max_start + int(sections) + int(sections / 2)


def result_of(loss: list[float]) -> RangeTestResult:
    lrs = sweep_lrs(1e-5, 1.0, len(loss))
    return RangeTestResult(lrs=tuple(lrs), losses=tuple(loss), smoothed=tuple(loss), start_lr=1e-5, end_lr=1.0,
                           num_iter=len(loss), mode="exp", smooth=0.98, diverge_threshold=5.0, stop_reason="completed")


def test_valley_on_a_known_curve() -> None:
    # 19 points: the rules drop 19 // 10 = 1 at the start and 5 at the end, leaving
    # [6, 5, 5.1, 4, 4.5, 3, 2.5, 2.6, 2, 1.5, 1, 3, 9]; its longest falling run 6 > 5 > 4 > 3 > 2.5 > 2 > 1.5 > 1
    # has length 8 and ends at 10; fastai: start = 10 - 8 = 2, idx = 2 + int(8/3) + int(8/6) = 5 -> overall 6
    pad = [6.0, 6.0, 5.0, 5.1, 4.0, 4.5, 3.0, 2.5, 2.6, 2.0, 1.5, 1.0, 3.0, 9.0] + [20.0] * 5
    v = valley(result_of(pad))
    assert (v.index, v.loss) == (6, 3.0)


@pytest.mark.parametrize("seed", range(5))
def test_valley_matches_fastai(seed: int) -> None:
    rng = np.random.default_rng(seed)
    loss = list(3.0 - np.cumsum(rng.uniform(-0.05, 0.1, 60)))
    r = result_of(loss)
    trimmed = loss[6:55]  # 60 // 10 at the start, 5 at the end
    assert valley(r).index == 6 + fastai_valley(list(r.lrs[6:55]), trimmed)


def test_suggestions_need_a_descent() -> None:
    flat = logistic_result(drop=0.0, tail=False)
    for rule in (steepest, valley, minimum_over_10):
        with pytest.raises(LrlabError, match=r"fell only 0\.00%"):
            rule(flat)


def test_suggestions_need_enough_points() -> None:
    r = logistic_result()
    short = RangeTestResult(**{**r.__dict__, "lrs": r.lrs[:12], "losses": r.losses[:12],
                               "smoothed": r.smoothed[:12]})
    with pytest.raises(LrlabError, match="usable points"):
        steepest(short)


def test_median_suggestion() -> None:
    r = logistic_result()
    found = suggest_all(r)
    assert [s.rule for s in found] == ["steepest", "valley", "minimum/10"]
    assert median_suggestion(found) == pytest.approx(sorted(s.lr for s in found)[1], rel=1e-12)


def noisy_result(boundary: float = -1.0, n: int = 300, noise: float = 0.05, seed: int = 0,
                 start: float = 1e-6, end: float = 10.0) -> RangeTestResult:
    """A range test as lrlab's tasks give it: the loss falls from 5.5 to 2.5 by 1e-2 of the boundary, bottoms out
    at 10**boundary, then blows up; multiplicative batch noise; the EMA as `find_lr` computes it."""
    rng = np.random.default_rng(seed)
    lrs = sweep_lrs(start, end, n)
    x = np.log10(lrs)
    clean = 2.5 + 3.0 / (1.0 + np.exp((x - boundary + 2.0) / 0.3)) + np.where(x > boundary, 4 * (x - boundary) ** 2,
                                                                              0.0)
    raw = clean * (1 + noise * rng.standard_normal(n))
    avg, sm = 0.0, []
    for i, v in enumerate(raw):
        avg = 0.98 * avg + 0.02 * v
        sm.append(avg / (1 - 0.98 ** (i + 1)))
    return RangeTestResult(lrs=tuple(lrs), losses=tuple(raw), smoothed=tuple(sm), start_lr=start, end_lr=end,
                           num_iter=n, mode="exp", smooth=0.98, diverge_threshold=5.0, stop_reason="completed")


def test_centred_loss_has_no_lag() -> None:
    # a parabola in log LR with its minimum at 1e-2: the Gaussian adds a constant, so the minimum stays (to the grid:
    # 43 points a decade); the EMA's trails by about smooth / (1 - smooth) = 49 updates, about a decade
    lrs = sweep_lrs(1e-6, 10.0, 300)
    x = np.log10(lrs)
    loss = 3.0 + (x + 2.0) ** 2
    avg, ema = 0.0, []
    for i, v in enumerate(loss):
        avg = 0.98 * avg + 0.02 * v
        ema.append(avg / (1 - 0.98 ** (i + 1)))
    r = RangeTestResult(lrs=tuple(lrs), losses=tuple(loss), smoothed=tuple(ema), start_lr=1e-6, end_lr=10.0,
                        num_iter=300, mode="exp", smooth=0.98, diverge_threshold=5.0, stop_reason="completed")
    got, c = centred_loss(r)
    assert got.tolist() == lrs.tolist()
    j = int(np.argmin(c))
    assert abs(x[j] + 2.0) < 0.03
    assert c[j] == pytest.approx(3.0 + 0.2**2, abs=1e-3)  # + the Gaussian's variance
    assert x[int(np.argmin(ema))] + 2.0 > 0.9


def test_centred_loss_values() -> None:
    # a straight line in log LR is kept where the Gaussian window is whole (symmetric weights); a constant anywhere
    lrs = sweep_lrs(1e-6, 10.0, 71)  # 0.1 decade apart
    line = 5.0 - 0.3 * np.log10(lrs)
    r = RangeTestResult(lrs=tuple(lrs), losses=tuple(line), smoothed=tuple(line), start_lr=1e-6, end_lr=10.0,
                        num_iter=71, mode="exp", smooth=0.98, diverge_threshold=5.0, stop_reason="completed")
    _, c = centred_loss(r, width=0.2)
    assert c[10:-10] == pytest.approx(line[10:-10], rel=1e-5)  # the window is cut at 4 standard deviations
    flat = dataclasses.replace(r, losses=(2.0,) * 71)
    assert centred_loss(flat)[1] == pytest.approx(np.full(71, 2.0), rel=1e-12)
    nan_tail = dataclasses.replace(r, losses=(*r.losses[:50], float("nan")), lrs=r.lrs[:51])
    assert len(centred_loss(nan_tail)[0]) == 50  # up to the first non-finite loss


@pytest.mark.parametrize("boundary", [-2.0, -1.0, 0.0])
@pytest.mark.parametrize("seed", range(3))
def test_peak_lr_is_a_fraction_of_the_boundary(boundary: float, seed: int) -> None:
    clean = peak_lr(noisy_result(boundary=boundary, noise=0.0))
    # the smoothed minimum sits a little before the blow-up (the curve is steeper after it than before)
    assert -0.4 < math.log10(clean.lr / PEAK_FACTOR) - boundary < 0.0
    assert clean.lr == pytest.approx(PEAK_FACTOR * clean_boundary(boundary), rel=1e-12)
    s = peak_lr(noisy_result(boundary=boundary, seed=seed))
    assert s.rule == "peak"
    assert abs(math.log10(s.lr / clean.lr)) < 0.2  # 5% batch noise moves it less than a fifth of a decade
    assert s.note.startswith(f"{PEAK_FACTOR:g} x the divergence boundary ")
    assert "measured on" not in s.note  # the calibrated sweep: no warning
    assert peak_lr(noisy_result(boundary=boundary, seed=seed), factor=0.5).lr == pytest.approx(
        0.5 / PEAK_FACTOR * s.lr, rel=1e-12)


def clean_boundary(boundary: float) -> float:
    lrs, c = centred_loss(noisy_result(boundary=boundary, noise=0.0))
    return float(lrs[30 + int(np.argmin(c[30:]))])


def test_peak_lr_does_not_move_with_the_sweep_length() -> None:
    """The same curve swept in 100, 300 or 1,000 updates: the lag-free boundary stays put; the EMA's minimum moves
    with its lag (49 updates are 3.4 decades of a 100-update sweep over 7, 0.35 of a 1,000-update one)."""
    peaks = [math.log10(peak_lr(noisy_result(n=n, noise=0.0)).lr) for n in (100, 300, 1000)]
    emas = [math.log10(minimum_over_10(noisy_result(n=n, noise=0.0)).lr) for n in (100, 300, 1000)]
    assert max(peaks) - min(peaks) < 0.05
    assert emas[0] - emas[2] > 0.4


def test_peak_lr_notes_an_uncalibrated_sweep_and_a_boundary_at_the_end() -> None:
    short_sweep = peak_lr(noisy_result(n=100))
    assert "the factor was measured on 300-update exponential sweeps from 1e-06 to 10 (43 updates per decade), " \
           "this one has 14 (exp)" in short_sweep.note
    still_falling = peak_lr(noisy_result(boundary=2.0, noise=0.0))
    assert "the loss still fell at the end of the sweep" in still_falling.note


def test_peak_lr_errors() -> None:
    flat = dataclasses.replace(noisy_result(), losses=(3.0,) * 300)
    with pytest.raises(LrlabError, match=r"fell only 0\.00%"):
        peak_lr(flat)
    r = noisy_result()
    with pytest.raises(LrlabError, match="usable points"):
        peak_lr(dataclasses.replace(r, lrs=r.lrs[:33], losses=r.losses[:33], smoothed=r.smoothed[:33]))
    with pytest.raises(LrlabError, match="factor must be > 0"):
        peak_lr(r, factor=0.0)


# ------------------------------------------------------------------------------------------------ input errors


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"start_lr": 0.0}, "start_lr must be > 0"),
    ({"end_lr": 1e-8}, "end_lr must be > start_lr"),
    ({"num_iter": 5}, "num_iter must be a whole number >= 10"),
    ({"mode": "cos"}, "mode must be one of exp, linear, got 'cos'"),
    ({"smooth": 1.0}, "smooth must be in [0, 1)"),
    ({"diverge_threshold": 1.0}, "diverge_threshold must be > 1"),
    ({"accumulation_steps": 0}, "accumulation_steps must be a whole number >= 1"),
], ids=["start", "end", "num_iter", "mode", "smooth", "threshold", "accumulation"])
def test_invalid_arguments(kwargs: dict[str, Any], needle: str) -> None:
    model, batches = mlp_problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(LrlabError) as e:
        find_lr(model, torch.nn.functional.cross_entropy, batches, opt, **kwargs)
    assert needle in str(e.value)


def test_one_shot_iterator_that_runs_out() -> None:
    model, batches = mlp_problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = snapshot(model, opt)
    with pytest.raises(LrlabError, match="batches ran out after 16 batch"):
        find_lr(model, torch.nn.functional.cross_entropy, iter(batches), opt, num_iter=30)
    assert same(before["model"], snapshot(model, opt)["model"])


def test_a_list_is_cycled() -> None:
    model, batches = mlp_problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    r = find_lr(model, torch.nn.functional.cross_entropy, batches[:3], opt, start_lr=1e-5, end_lr=1e-3, num_iter=10)
    assert len(r.lrs) == 10


# ------------------------------------------------------------------------------------------------ plot


def test_plot_writes_a_png(tmp_path: Path) -> None:
    r = logistic_result()
    out = plot_range_test(r, tmp_path / "sub" / "lr.png")
    assert out == tmp_path / "sub" / "lr.png"
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    assert sorted(p.name for p in out.parent.iterdir()) == ["lr.png"]  # no temporary file left


def test_plot_marks_every_suggestion_at_its_lr() -> None:
    r = logistic_result()
    found = suggest_all(r)
    fig = range_test_figure(r, suggestions=found)
    ax = fig.axes[0]
    marked = {}
    for line in ax.get_lines():
        gid = line.get_gid() or ""
        if gid.startswith("suggestion:"):
            marked.setdefault(gid.removeprefix("suggestion:"), []).append(line)
    assert sorted(marked) == sorted(s.rule for s in found)
    for s in found:
        vline, dot = marked[s.rule]  # the dashed line, then the dot on the smoothed curve
        assert list(vline.get_xdata()) == [s.lr, s.lr] and vline.get_linestyle() == "--"
        assert list(dot.get_xdata()) == [s.lr] and dot.get_label() == f"{s.rule}: {s.lr:.3g}"
        # the dot sits on the smoothed curve (log-LR interpolation; exactly the rule's point when on the grid)
        expected = s.loss if s.rule != "minimum/10" else float(np.interp(np.log(s.lr), np.log(r.lrs), r.smoothed))
        assert dot.get_ydata()[0] == pytest.approx(expected, rel=1e-9)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert [t for t in legend if ":" in t] == [f"{s.rule}: {s.lr:.3g}" for s in found]
    # and none when there is nothing to mark
    bare = range_test_figure(r, suggestions=())
    assert not [ln for ln in bare.axes[0].get_lines() if (ln.get_gid() or "").startswith("suggestion:")]


def test_plot_does_not_touch_pyplot_state(tmp_path: Path) -> None:
    code = ("import sys; from lrlab.range_test import plot_range_test, RangeTestResult, sweep_lrs\n"
            "l = tuple(float(x) for x in sweep_lrs(1e-5, 1, 40)); s = tuple(3 - i / 40 for i in range(40))\n"
            "r = RangeTestResult(lrs=l, losses=s, smoothed=s, start_lr=1e-5, end_lr=1.0, num_iter=40, mode='exp',"
            " smooth=0.98, diverge_threshold=5.0, stop_reason='completed')\n"
            f"plot_range_test(r, {str(tmp_path / 'a.png')!r}, suggestions=())\n"
            "print('matplotlib.pyplot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------------------------------------ real models


@pytest.mark.slow
def test_cross_check_against_torch_lr_finder() -> None:
    """Same model (the built-in tiny GPT), data (its batches 0..99) and seed: steepest suggestions within 2x."""
    import matplotlib

    matplotlib.use("Agg")
    from torch_lr_finder import LRFinder
    from torch_lr_finder.lr_finder import TrainDataLoaderIter

    from lrlab.bench.tasks import get_task

    class Batches(TrainDataLoaderIter):  # type: ignore[misc]
        def inputs_labels_from_batch(self, batch: Any) -> Any:
            return batch

    task = get_task("lm", "tiny", 0)
    torch.manual_seed(0)
    model = task.build_model()
    opt = build_optimizer("adamw", param_groups(model, 0.1), 1e-6)  # the harness's own optimizer
    batches = [task.get_batch(i) for i in range(100)]
    ours = steepest(find_lr(model, cross_entropy_flat, batches, opt, start_lr=1e-6, end_lr=10, num_iter=100))
    finder = LRFinder(model, opt, cross_entropy_flat, device="cpu")
    finder.range_test(Batches(batches), end_lr=10, num_iter=100)  # starts from the optimizer's LR, 1e-6
    _, theirs = finder.plot(suggest_lr=True, show_lr=None)
    matplotlib.pyplot.close("all")
    assert 0.5 <= ours.lr / theirs <= 2.0
    assert 1e-3 < ours.lr < 1.0


def test_find_on_task_uses_the_harness_optimizer(monkeypatch: pytest.MonkeyPatch) -> None:
    import lrlab.bench.train
    import lrlab.range_test

    assert not hasattr(lrlab.range_test, "build_optimizer")  # one build_optimizer: the harness's
    built: list[Any] = []
    real = lrlab.bench.train.build_optimizer

    def spy(name: str, groups: Any, lr: float) -> Any:
        built.append(real(name, groups, lr))
        return built[-1]

    monkeypatch.setattr(lrlab.bench.train, "build_optimizer", spy)
    r = find_on_task("lm", optimizer="schedulefree", num_iter=12, start_lr=1e-5, end_lr=1e-3)
    assert len(built) == 1 and type(built[0]).__name__ == "AdamWScheduleFree"
    assert built[0].param_groups[0]["train_mode"]  # put in train mode for the sweep
    assert [g["weight_decay"] for g in built[0].param_groups] == [0.1, 0.0]  # the harness's parameter groups
    assert len(r.lrs) == 12 and r.stop_reason == "completed"


@pytest.mark.slow
def test_find_on_task_lm() -> None:
    r = find_on_task("lm", num_iter=60, start_lr=1e-5)
    assert r.stop_reason == "diverged"  # up to 10: the tiny GPT blows up before the end
    s = steepest(r)
    assert 1e-3 < s.lr < 1.0


DDP_SCRIPT = textwrap.dedent("""
    import copy, json, sys
    import torch
    import torch.distributed as dist

    def worker(rank, folder):
        torch.set_num_threads(1)
        dist.init_process_group("gloo", init_method=f"file://{folder}/store", rank=rank, world_size=2)
        from lrlab.range_test import find_lr, suggest_all
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))
        model = torch.nn.parallel.DistributedDataParallel(net)
        opt = torch.optim.SGD([{"params": net[0].parameters()}, {"params": net[2].parameters(), "lr": 0.05}],
                              lr=0.1, momentum=0.9)
        g = torch.Generator().manual_seed(100 + rank)  # each rank its own data
        w = torch.randn(10, 4, generator=torch.Generator().manual_seed(7))
        x = torch.randn(640, 10, generator=g)
        y = (x @ w + 0.3 * torch.randn(640, 4, generator=g)).argmax(1)
        batches = [(x[i:i + 32], y[i:i + 32]) for i in range(0, 640, 32)]
        # one real update first, so that the optimizer has state (momentum buffers) to lose
        torch.nn.functional.cross_entropy(model(batches[-1][0]), batches[-1][1]).backward()
        opt.step()
        with torch.no_grad():
            local0 = float(torch.nn.functional.cross_entropy(model(batches[0][0]), batches[0][1]))
        before = {k: v.clone() for k, v in model.state_dict().items()}
        opt_before = copy.deepcopy(opt.state_dict())
        grads_before = [p.grad.clone() for p in model.parameters()]
        r = find_lr(model, torch.nn.functional.cross_entropy, batches, opt, start_lr=1e-4, end_lr=100, num_iter=60)
        restored = all(torch.equal(before[k], v) for k, v in model.state_dict().items())
        opt_after = opt.state_dict()
        opt_restored = (opt_after["param_groups"] == opt_before["param_groups"]
                        and opt_after["state"].keys() == opt_before["state"].keys() == set(range(4))
                        and all(torch.equal(opt_before["state"][i]["momentum_buffer"],
                                            opt_after["state"][i]["momentum_buffer"]) for i in range(4))
                        and all(torch.equal(a, p.grad) for a, p in zip(grads_before, model.parameters()))
                        and [g["lr"] for g in opt.param_groups] == [0.1, 0.05])
        out = {"lrs": list(r.lrs), "losses": list(r.losses), "stop": r.stop_reason, "local0": local0,
               "suggestions": [s.lr for s in suggest_all(r)], "restored": restored, "opt_restored": opt_restored}
        with open(f"{folder}/rank{rank}.json", "w") as fh:
            json.dump(out, fh)
        dist.destroy_process_group()

    if __name__ == "__main__":
        worker(int(sys.argv[1]), sys.argv[2])
""")


@pytest.mark.slow
def test_ddp_every_rank_gets_the_same_curve_and_suggestion(tmp_path: Path) -> None:
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    # two processes, one per rank, forming a gloo group through a file store (no network)
    procs = [subprocess.Popen([sys.executable, str(script), str(rank), str(tmp_path)], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT) for rank in (0, 1)]
    for p in procs:
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0, out.decode()
    r0 = json.loads((tmp_path / "rank0.json").read_text())
    r1 = json.loads((tmp_path / "rank1.json").read_text())
    assert r0["local0"] != r1["local0"]  # the ranks see different data ...
    assert r0["losses"] == r1["losses"]  # ... but record the same (all-reduced) curve
    assert r0["lrs"] == r1["lrs"] and r0["stop"] == r1["stop"]
    assert r0["suggestions"] == r1["suggestions"]
    assert r0["losses"][0] == pytest.approx((r0["local0"] + r1["local0"]) / 2, rel=1e-6)
    assert r0["restored"] and r1["restored"]
    assert r0["opt_restored"] and r1["opt_restored"]  # momentum buffers, gradients and param groups


# ------------------------------------------------------------------------------------------------ real models (#13)


def _gpt2_and_text(n: int = 16) -> tuple[Any, list[dict[str, torch.Tensor]]]:
    """A tiny random GPT-2 and batches of local text as Hugging Face dicts (labels included)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from test_hf_trainer import _LocalText, _model

    data = _LocalText(n)
    batches = [{"input_ids": data.ids[i:i + 4], "labels": data.ids[i:i + 4]} for i in range(0, n, 4)]
    return _model(), batches


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_hf_dict_batches_use_the_models_own_loss() -> None:
    pytest.importorskip("transformers")
    model, batches = _gpt2_and_text()
    before = _weights(model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    r = find_lr(model, None, batches, opt, start_lr=1e-5, end_lr=1.0, num_iter=20)
    assert len(r.lrs) >= 10 and r.val_every == 0 and all(math.isfinite(x) for x in r.losses[:10])
    assert r.losses[0] == pytest.approx(float(model(**batches[0]).loss), rel=1e-5)  # model(**batch).loss
    assert all(torch.equal(v, _weights(model)[k]) for k, v in before.items())  # restored
    with pytest.raises(LrlabError, match="returned no loss: put the labels in the batch"):
        find_lr(model, None, [{"input_ids": b["input_ids"]} for b in batches], opt, num_iter=10)
    with pytest.raises(LrlabError, match="loss_fn=None needs mapping batches"):
        find_lr(model, None, [(b["input_ids"], b["labels"]) for b in batches], opt, num_iter=10)


def test_validation_mode_measures_the_validation_loss_every_k_updates() -> None:
    pytest.importorskip("transformers")
    model, batches = _gpt2_and_text(24)
    train, val = batches[:4], batches[4:]
    with torch.no_grad():
        model.eval()
        start = sum(float(model(**b).loss) for b in val) / len(val)
        model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    # an LR far too small to move the weights: every measurement is the validation loss before training
    r = find_lr(model, None, train, opt, start_lr=1e-12, end_lr=1e-11, num_iter=30, val_batches=val, val_every=5,
                smooth=0.0)
    assert r.val_every == 5 and r.skip_start == 1 and len(r.lrs) == 6
    assert r.losses == pytest.approx([start] * 6, rel=1e-6)
    assert r.lrs[0] == pytest.approx(sweep_lrs(1e-12, 1e-11, 30)[4], rel=1e-12)  # the 5th update's LR
    with pytest.raises(LrlabError, match="val_batches must be re-iterable"):
        find_lr(model, None, train, opt, num_iter=10, val_batches=iter(val))


@pytest.mark.parametrize("amp", ["bfloat16", "float16"])
def test_mixed_precision(amp: str) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    x = torch.randn(64, 8)
    batches = [(x[i:i + 16], x[i:i + 16].sum(1, keepdim=True)) for i in range(0, 64, 16)]
    before = _weights(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    r = find_lr(model, torch.nn.functional.mse_loss, batches, opt, start_lr=1e-4, end_lr=10.0, num_iter=40, amp=amp)
    assert len(r.lrs) >= 20 and math.isfinite(r.losses[0])
    assert all(torch.equal(v, _weights(model)[k]) for k, v in before.items())
    with pytest.raises(LrlabError, match="amp must be one of bfloat16, float16"):
        find_lr(model, torch.nn.functional.mse_loss, batches, opt, amp="fp8")


@pytest.mark.parametrize("package", ["lightning.pytorch", "pytorch_lightning"], ids=["lightning", "pl"])
def test_lightning_find_lr(package: str) -> None:
    import importlib
    import warnings

    from lrlab.integrations import lightning_find_lr

    pl = importlib.import_module(package)

    class Tiny(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.net = torch.nn.Linear(8, 1)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            self.log("train_loss", loss)  # no Trainer: skipped quietly
            return {"loss": loss}

        def configure_optimizers(self) -> Any:
            opt = torch.optim.SGD(self.parameters(), lr=0.1)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.StepLR(opt, 5)}}

    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 8, generator=g)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True)), batch_size=16)
    module = Tiny()
    before = _weights(module)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = lightning_find_lr(module, loader, start_lr=1e-4, end_lr=10.0, num_iter=60)
    assert r.stop_reason in ("diverged", "nonfinite") and all(torch.equal(v, _weights(module)[k])
                                                                 for k, v in before.items())
    assert [s.rule for s in suggest_all(r)] == ["steepest", "valley", "minimum/10"]
