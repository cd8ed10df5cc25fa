"""lrlab.tune without the harness: the plan and its budget, the choice rules as numbers, the ask/tell loop on a
synthetic loss and on a plain torch loop (with branches resumed from checkpoints), save/load, and Optuna."""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pytest

import lrlab
from lrlab.errors import LrlabError
from lrlab.tune import Estimate, Option, TuneConfig, Tuner
from lrlab.tune import study as study_module
from lrlab.tune.choose import edge_to_extend, final_pick, interpolate_peak, is_close, survivors, to_confirm
from lrlab.tune.laws import PeakFit
from lrlab.tune.plan import LADDER, Plan, Rungs, choose_plan, default_budget
from lrlab.tune.trial import lr_factors

# ------------------------------------------------------------------------------------------------ plan


def test_default_budget_is_a_quarter_of_the_default_compare() -> None:
    assert default_budget(1000) == 10410  # 41,640 / 4 (BENCHMARKS.md)
    assert default_budget(200) == 2082


@pytest.mark.parametrize(("horizon", "expected"), [
    (1000, (50, 400, 100, 800, 25)),
    (200, (10, 80, 20, 160, 5)),
    (37, (2, 15, 3, 30, 1)),
], ids=["1000", "200", "37"])
def test_rungs_sit_on_evaluations(horizon: int, expected: tuple[int, ...]) -> None:
    r = Rungs.for_horizon(horizon)
    assert (r.warmup, r.first, r.first_cooldown, r.second, r.eval_every) == expected
    assert r.first % r.eval_every == 0 and r.second % r.eval_every == 0


def test_the_final_cooldown_is_wsd_and_the_branches_share_the_trunk_bit_for_bit() -> None:
    r = Rungs.for_horizon(1000)
    trunk = lr_factors(r.trunk, 1000)
    cool = lr_factors(r.cooldown(r.first, r.first_cooldown), 1000)
    final = lr_factors(r.final, 1000)
    assert np.array_equal(final, lr_factors("wsd(warmup=0.05, decay=0.2)", 1000))
    assert np.array_equal(cool[:r.first + 1], trunk[:r.first + 1]) and cool[r.first + 1] < 1.0
    assert cool[r.first + r.first_cooldown - 1] > 0 and not cool[r.first + r.first_cooldown:].any()
    assert np.array_equal(final[:r.second + 1], trunk[:r.second + 1])


@pytest.mark.parametrize(("budget", "plan"), [
    (11100, LADDER[0]), (11099, LADDER[1]), (10410, LADDER[1]), (8100, LADDER[2]), (7100, LADDER[3]),
    (6600, LADDER[4]), (4900, LADDER[5]), (3900, LADDER[6]),
], ids=["exact", "one-short", "default", "5-3-3-1", "5-3-2-1", "4-3-2-1", "3-2-2-1", "smallest"])
def test_the_plan_is_the_most_thorough_that_fits(budget: int, plan: Plan) -> None:
    r = Rungs.for_horizon(1000)
    assert choose_plan(budget, r) == plan and plan.cost(r) <= budget


def test_a_budget_too_small_names_the_smallest() -> None:
    with pytest.raises(LrlabError, match=r"budget 3899 updates is too small .* allowed: budget >= 3900"):
        choose_plan(3899, Rungs.for_horizon(1000))


@pytest.mark.parametrize(("fields", "match"), [
    ({"horizon": 0}, "horizon must be a whole number >= 1, got 0"),
    ({"horizon": 10}, "horizon must be a whole number >= 20"),
    ({"horizon": 100, "optimizer": "schedulefree"}, "no schedule to tune"),
    ({"horizon": 100, "optimizer": "lion"}, "optimizer must be one of sgd, adagrad"),
    ({"horizon": 100, "lr": -1.0}, "lr must be > 0"),
    ({"horizon": 100, "factor": 1.0}, "factor must be a number > 1"),
    ({"horizon": 100, "schedules": ("cosin()",)}, "schedule 'cosin()'"),
    ({"horizon": 100, "task": "imagenet"}, "task 'imagenet' is not supported"),
    ({"horizon": 100, "law": "chinchilla"}, "law must be one of multipower, momentum, s1"),
    ({"horizon": 100, "budget": 50}, "budget 50 updates is too small"),
], ids=["horizon-0", "horizon-10", "schedulefree", "optimizer", "lr", "factor", "spec", "task", "law", "budget"])
def test_bad_config_is_refused_naming_the_field(fields: dict[str, Any], match: str) -> None:
    with pytest.raises(LrlabError, match=match):
        Tuner(TuneConfig(**fields))


# --------------------------------------------------------------------------------------- choice rules


def est(loss: float, width: float = 0.01) -> Estimate:
    return Estimate(loss=loss, lo=loss - width, hi=loss + width)


def test_survivors_and_the_edge_to_extend() -> None:
    scores = {0: 2.0, 1: 1.5, 2: 1.4, 3: math.inf, 4: 1.6}
    assert survivors(scores, 3) == [2, 1, 4]  # a diverged peak is skipped: 4 is 2's neighbour
    # a window around the best, not the best three: 1 scored worse than 3 by noise, and stays
    noisy = {0: 2.94, 1: 2.88, 2: 2.97, 3: 2.94, 4: 3.38}
    assert survivors(noisy, 3) == [1, 0, 2] and survivors(noisy, 2) == [1, 0]
    assert survivors({0: 1.0, 1: 2.0, 2: 3.0}, 2) == [0, 1] and survivors({0: 3.0, 1: 2.0, 2: 1.0}, 3) == [2, 1, 0]
    assert survivors({0: math.inf}, 3) == []
    assert edge_to_extend({0: 1.0, 1: 2.0}) == -1 and edge_to_extend({0: 2.0, 1: 1.0}) == 2
    assert edge_to_extend({0: 2.0, 1: 1.0, 2: 1.5}) is None
    assert edge_to_extend({-1: math.inf, 0: math.inf}) == -2  # all diverged: lower


def test_the_peak_is_the_vertex_through_the_best_and_its_neighbours() -> None:
    # y = (log lr - log 0.004)^2 + 1 through 0.002, 0.004, 0.008 and a far point that must not pull it
    def y(lr: float) -> float:
        return (math.log(lr) - math.log(0.0045)) ** 2 + 1.0

    pts = [(lr, est(y(lr))) for lr in (0.002, 0.004, 0.008, 0.064)]
    lr, e, how = interpolate_peak(pts)
    assert (lr, how) == (0.0045, "interpolated") and e.loss == pytest.approx(1.0, abs=1e-12)
    assert e.half_width == pytest.approx(0.01)
    # best at an edge, or fewer than three points: the best point
    assert interpolate_peak(pts[1:3]) == (0.004, pts[1][1], "best peak")
    assert interpolate_peak([(0.001, est(1.0)), (0.002, est(1.1)), (0.004, est(1.2))])[2] == "best peak"
    # a vertex within 5 % of the best point keeps the point (no new LR to run for nothing)
    flat = [(lr, est((math.log(lr) - math.log(0.00402)) ** 2)) for lr in (0.002, 0.004, 0.008)]
    assert interpolate_peak(flat)[:1] == (0.004,) and interpolate_peak(flat)[2] == "best peak"


def test_what_gets_confirmed_and_what_wins() -> None:
    wsd = Option(schedule="wsd()", lr=0.006, estimate=est(1.90, 0.0), how="measured")
    lin = Option(schedule="linear()", lr=0.005, estimate=est(1.85, 0.03), how="interpolated")
    cos = Option(schedule="cosine()", lr=0.005, estimate=est(1.87, 0.03), how="interpolated")
    far = Option(schedule="cosine()", lr=0.005, estimate=est(1.95, 0.03), how="interpolated")
    assert is_close(lin, cos) and not is_close(lin, far)
    assert to_confirm([lin, cos, wsd], wsd, 3) == [wsd, lin, cos]
    assert to_confirm([lin, far, wsd], wsd, 3) == [wsd, lin]  # runner-up not close: not re-run
    assert to_confirm([lin, cos, wsd], wsd, 1) == [wsd]
    runs = [Option(schedule=o.schedule, lr=o.lr, estimate=o.estimate, how=o.how, measured=m)
            for o, m in ((wsd, {0: 1.90, 1: 1.94}), (lin, {0: 1.91, 1: 1.92}))]
    assert final_pick(runs) is runs[1]  # mean 1.915 < 1.92
    assert final_pick([Option(schedule="x", lr=1.0, estimate=est(1.0), how="", measured={0: math.inf})]) is None


# ------------------------------------------------------------------------------------- ask / tell


def synthetic(lrs: np.ndarray, steps: list[int], seed: int) -> dict[int, float]:
    """A loss that falls with the LR area, drops when the LR anneals and rises with the peak (instability)."""
    area = np.concatenate([[0.0], np.cumsum(lrs)])
    out = {}
    for s in steps:
        peak = float(lrs[: max(s, 1)].max())
        anneal = (peak - float(lrs[s - 1])) / peak if s else 0.0
        out[s] = 1.0 + 2.0 / math.sqrt(1.0 + 100.0 * area[s]) - 0.3 * anneal + 40.0 * peak ** 2 * 100 + 0.003 * seed
    return out


class ExactLaw:
    """Stands in for a fitted law: predicts the synthetic loss itself (interval +- 0.02)."""

    def predict(self, spec: str, *, total: int, peak_lr: float, steps: Any = None) -> Any:
        lrs = peak_lr * lr_factors(spec, total)
        v = synthetic(lrs, [total], 0)[total]

        class P:
            final = v
            final_interval = (v - 0.02, v + 0.02)
            loss = np.array([v])
            notes = ("no warm-up, and the fitted runs had one",) if spec == "cosine()" else ()

        return P()


def drive(tuner: Tuner, stop_after: int | None = None) -> int:
    """Run the tuner's trials on the synthetic loss; stop after ``stop_after`` tells. Returns the tells made."""
    n = 0
    while (trial := tuner.ask()) is not None:
        lrs = np.array([trial.lr_at(u) for u in range(trial.stop)])
        steps = [s for s in range(trial.start, trial.stop + 1) if s % trial.eval_every == 0 or s == trial.stop]
        for s, v in synthetic(lrs, steps, trial.seed).items():
            trial.report(v, s)
        tuner.tell(trial)
        n += 1
        if stop_after is not None and n >= stop_after:
            break
    return n


@pytest.fixture
def exact_law(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(study_module, "fit_peak", lambda lr, chains, law: PeakFit(
        lr=lr, law=law, chains=tuple(c.label for c in chains), fitted=ExactLaw()))


def test_ask_tell_runs_the_plan_within_the_budget(exact_law: None) -> None:
    tuner = Tuner(TuneConfig(horizon=200, lr=3e-3))
    drive(tuner)
    assert tuner.finished and tuner.ask() is None
    r = tuner.result()
    kinds = [t.kind for t in tuner.trials]
    assert kinds[:10] == ["trunk", "cooldown"] * 5 and kinds.count("final") == 6 and "confirm" in kinds
    assert r.spent == tuner.spent == sum(t.stop - t.start for t in tuner.trials) <= r.budget == 2082
    # branches start where the checkpoint they resume from was saved, with the same LRs until there
    by = {t.name: t for t in tuner.trials}
    for t in tuner.trials:
        if t.resume_from is not None:
            parent = by[t.resume_from]
            assert parent.checkpoint == parent.name and parent.stop == t.start
            assert np.array_equal(parent.factors()[: t.start], t.factors()[: t.start])
    # the synthetic loss is lowest for WSD near 3e-3 .. 6e-3: the pick, measured on two paired seeds
    assert r.schedule == "wsd(warmup=0.05, decay=0.2)" and 3e-3 <= r.lr <= 6e-3
    assert sorted(r.measured) == [0, 1] and r.measured[1] == pytest.approx(r.measured[0] + 0.003)
    assert len(r.peaks) == 5 and sum(p.kept for p in r.peaks) == 3
    assert any("Spent" in w for w in r.why)


def test_a_tuner_saved_between_tells_continues_exactly(exact_law: None, tmp_path: Any) -> None:
    straight = Tuner(TuneConfig(horizon=200, lr=3e-3))
    drive(straight)
    tuner = Tuner(TuneConfig(horizon=200, lr=3e-3))
    drive(tuner, stop_after=13)
    pending = tuner.ask()  # handed out, never told: the loaded tuner hands it out again
    assert pending is not None
    tuner.save(tmp_path / "state.json")
    again = Tuner.load(tmp_path / "state.json")
    assert [t.name for t in again.pending()] == [pending.name]
    trial = again.pending()[0]
    lrs = np.array([trial.lr_at(u) for u in range(trial.stop)])
    again.tell(trial, synthetic(lrs, [s for s in range(trial.start, trial.stop + 1)
                                      if s % trial.eval_every == 0 or s == trial.stop], trial.seed))
    drive(again)
    assert again.result().to_dict() == straight.result().to_dict()


def test_tell_checks_what_it_is_told(exact_law: None) -> None:
    tuner = Tuner(TuneConfig(horizon=200, lr=3e-3))
    trial = tuner.ask()
    assert trial is not None
    with pytest.raises(LrlabError, match=r"report the loss after its last update \(step 80\)"):
        tuner.tell(trial, {40: 2.0})
    with pytest.raises(LrlabError, match="outside its span"):
        tuner.tell(trial, {81: 2.0})
    with pytest.raises(LrlabError, match="was not handed out"):
        tuner.tell("trunk-p9-s0-0-80", {80: 2.0})
    tuner.tell(trial, {40: math.nan})  # diverged: accepted without the last loss; its branch is never asked
    names = []
    while (t := tuner.ask()) is not None:
        names.append(t.name)
    assert trial.name.replace("trunk", "cooldown") not in " ".join(names)
    with pytest.raises(LrlabError, match="not finished"):
        tuner.result()


def test_a_diverging_grid_extends_downwards(exact_law: None) -> None:
    tuner = Tuner(TuneConfig(horizon=200, lr=1.0, lr_extend=1))
    while (trial := tuner.ask()) is not None:
        tuner.tell(trial, {trial.start + 1: math.inf} if trial.lr > 0.2 else {trial.stop: 1.0 + trial.lr})
        if tuner.finished:
            break
    lrs = sorted({t.lr for t in tuner.trials if t.kind == "trunk"})
    assert lrs[0] == pytest.approx(0.125) and len(lrs) == 6  # one extension below the grid 0.25 .. 4


# ----------------------------------------------------------------------------------------- plain torch


@pytest.mark.slow
def test_ask_tell_with_a_plain_torch_loop_resuming_from_checkpoints(tmp_path: Any) -> None:
    torch = pytest.importorskip("torch")
    w_true = torch.linspace(-1, 1, 8).unsqueeze(1)

    def batch(t: int, seed: int) -> tuple[Any, Any]:  # a pure function of (seed, update): resumable data order
        g = torch.Generator().manual_seed(seed * 100_003 + t)
        x = torch.randn(64, 8, generator=g)
        return x, x @ w_true + 0.1 * torch.randn(64, 1, generator=g)

    val = batch(10**6, 0)
    tuner = Tuner(TuneConfig(horizon=120, lr=0.02, budget=700, law="s1"))  # s1: the fastest law to fit
    saved: dict[str, Any] = {}
    while (trial := tuner.ask()) is not None:
        torch.manual_seed(trial.seed)
        model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
        opt = torch.optim.AdamW(model.parameters(), lr=trial.lr)
        if trial.resume_from is not None:  # a branch: continue the run another trial saved
            state = torch.load(tmp_path / f"{trial.resume_from}.pt")
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["opt"])
        for t in range(trial.start, trial.stop):
            for group in opt.param_groups:
                group["lr"] = trial.lr_at(t)
            x, y = batch(t, trial.seed)
            loss = torch.nn.functional.mse_loss(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if (t + 1) % trial.eval_every == 0 or t + 1 == trial.stop:
                with torch.no_grad():
                    trial.report(torch.nn.functional.mse_loss(model(val[0]), val[1]).item(), t + 1)
        if trial.checkpoint is not None:
            torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, tmp_path / f"{trial.checkpoint}.pt")
        saved[trial.name] = copy.deepcopy(model.state_dict())
        tuner.tell(trial)
    r = tuner.result()
    assert r.spent <= 700 and r.schedule and r.lr > 0 and math.isfinite(r.estimate.loss)
    # resuming from a checkpoint is the same run: the trunk trained in two pieces equals one straight run
    trunk2 = next(t for t in tuner.trials if t.kind == "trunk" and t.start > 0)
    torch.manual_seed(trunk2.seed)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    opt = torch.optim.AdamW(model.parameters(), lr=trunk2.lr)
    for t in range(trunk2.stop):
        for group in opt.param_groups:
            group["lr"] = trunk2.lr_at(t)
        x, y = batch(t, trunk2.seed)
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    for k, v in model.state_dict().items():
        assert torch.equal(v, saved[trunk2.name][k])
    # the law was fitted on the kept peaks' trunks and cool-downs
    first, second = tuner.rungs.first, tuner.rungs.second
    assert r.fits and all(f["chains"] == ["trunk", f"cooldown@{first}", f"final@{second}", f"linear@{first}"]
                          for f in r.fits)


def test_trials_record_into_an_optuna_study(exact_law: None) -> None:
    optuna = pytest.importorskip("optuna")
    from lrlab.tune.optuna import to_study

    tuner = Tuner(TuneConfig(horizon=200, lr=3e-3))
    drive(tuner, stop_after=4)
    study = to_study(tuner)
    assert len(study.trials) == 4 and study.trials[0].params == {"lr": tuner.trials[0].lr,
                                                                 "schedule": "warmup(10) >> constant()"}
    assert study.trials[0].user_attrs["kind"] == "trunk" and 80 in study.trials[0].intermediate_values
    drive(tuner)
    to_study(tuner, study)  # adds the rest, once each
    assert len(study.trials) == len(tuner.trials)
    assert study.user_attrs["lrlab_schedule"] == tuner.result().schedule
    assert study.best_trial.value == min(t.value for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE)


def test_import_lrlab_tune_loads_numpy_only() -> None:
    import subprocess
    import sys

    code = ("import sys, lrlab.tune; bad = [m for m in ('torch', 'matplotlib', 'optuna', 'scipy') if m in "
            "sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert lrlab.parse("constant()") is not None


def test_the_docstring_examples_run() -> None:
    import doctest

    from lrlab.tune import study

    result = doctest.testmod(study, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 3 and result.failed == 0
