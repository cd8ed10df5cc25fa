"""The comparison runner: config validation, the trial grid, shared-prefix branching plans, and real runs —
results identical with and without branching, after `kill -9` + resume, and on a local Ray instance."""

from __future__ import annotations

import json
import math
import platform
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import lrlab
from kill_point import kill_at
from lrlab.bench.compare import CONFIG_FILE, open_run, run_compare
from lrlab.bench.design import (
    DEFAULT_LR,
    CompareConfig,
    Trial,
    confirm_trials,
    default_schedules,
    expand_trials,
    extend_trials,
    grid_lr,
    lr_centers,
    lr_grid,
    parse_lr_option,
)
from lrlab.bench.events import Event
from lrlab.bench.jobs import pending_jobs, plan_jobs
from lrlab.errors import LrlabError

# ------------------------------------------------------------------------------------------ config + grid


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"steps": 5}, "steps must be a whole number >= 10, got 5"),
        ({"seeds": 0}, "seeds must be a whole number >= 1, got 0"),
        ({"lr_grid": 0}, "lr_grid must be a whole number >= 1, got 0"),
        ({"lr_grid_factor": 1.0}, "lr_grid_factor must be a number > 1, got 1.0"),
        ({"optimizers": ("adamw", "lion")}, "optimizer 'lion' is not supported; choose from sgd, adagrad"),
        ({"optimizers": ()}, "optimizers must name at least one"),
        ({"lr": (("adamw", -1.0),)}, "lr for adamw must be a positive number, got -1.0"),
        ({"schedules": ("cosine()", "cosine()")}, "schedules lists one twice"),
        ({"branch_min": 2.0}, "branch_min must be in [0, 1]"),
        ({"eval_every": 0}, "eval_every must be a whole number >= 1, got 0"),
        ({"confirm_close": 1.5}, "confirm_close must be a number in [0, 1] (a share of the contenders), got 1.5"),
        ({"lr_extend": -1}, "lr_extend must be a whole number >= 0, got -1"),
    ],
    ids=["steps", "seeds", "grid", "factor", "optimizer", "no-optimizer", "lr", "duplicate", "branch-min", "eval",
         "confirm-close", "lr-extend"],
)
def test_config_errors_name_field_value_and_allowed(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(LrlabError) as e:
        CompareConfig(**kwargs)
    assert message in str(e.value)


def test_bad_spec_is_reported_with_the_spec() -> None:
    with pytest.raises(LrlabError, match=r"schedule 'cosin\(\)': .*did you mean cosine\?"):
        CompareConfig(schedules=("constant()", "cosin()")).resolved()


def test_config_round_trips_through_dict() -> None:
    c = CompareConfig(steps=300, schedules=("constant()", "cosine()"), optimizers=("adamw", "sgd"),
                      lr=(("sgd", 0.1),), seeds=2).resolved()
    assert CompareConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    with pytest.raises(LrlabError, match="unknown fields"):
        CompareConfig.from_dict({"stepz": 3})


def _structure(s: Any) -> Any:
    """A parsed schedule as (family, {field: value}); a Join as the list of its pieces' structures."""
    from lrlab.compose import Join

    if isinstance(s, Join):
        return [_structure(p) for p in s.pieces]
    return (type(s).__name__, dict(vars(s)))


WARMUP_5 = ("Warmup", {"total": 0.05, "floor": 0.0, "peak": None, "shape": "linear", "beta2": None})


def test_default_schedules_are_the_nine_families_and_scale_with_steps() -> None:
    specs = default_schedules(1000)
    assert specs[0] == "constant()"  # the baseline
    assert [_structure(lrlab.parse(s)) for s in specs] == [
        ("Constant", {"value": 1.0, "total": None}),
        ("Step", {"every": 0.34, "factor": 0.1, "peak": 1.0, "total": None}),  # x0.1 at 1/3 and 2/3
        ("Exponential", {"gamma": pytest.approx(0.01 ** (1 / 1000), rel=1e-8), "rate": None, "every": 1.0,
                         "staircase": False, "peak": 1.0, "total": None}),
        ("Cosine", {"peak": 1.0, "floor": 0.0, "total": None, "cycles": 0.5, "exponent": 1.0, "periodic": False}),
        ("CosineRestarts", {"period": 0.143, "mult": 2, "decay": 1.0, "limit": 0, "peak": 1.0, "floor": 0.0,
                            "k": 1.0, "total": None}),
        [WARMUP_5, ("Linear", {"peak": 1.0, "floor": 0.0, "total": None})],  # BERT
        [WARMUP_5, ("Cosine", {"peak": 1.0, "floor": 0.0, "total": None, "cycles": 0.5, "exponent": 1.0,
                               "periodic": False})],
        [WARMUP_5, ("Constant", {"value": 1.0, "total": None}),  # WSD: warm-up, stable, 1-sqrt cool-down (20 %)
         ("Cooldown", {"total": 0.2, "shape": "sqrt", "peak": 1.0, "floor": 0.0, "cycles": 0.5, "power": 0.5,
                       "ratio": 0.1})],
        [WARMUP_5, ("InverseSqrt", {"timescale": 50, "peak": 1.0, "power": 0.5, "total": None})],  # timescale = warm-up
    ]
    for steps in (200, 1000, 5000):
        for spec in default_schedules(steps):
            s = lrlab.parse(spec, total=steps)
            v = s.values(np.arange(steps + 1, dtype=np.float64))
            assert np.all(np.isfinite(v)) and v.max() == pytest.approx(1.0, rel=1e-12), spec
        exp = lrlab.parse(default_schedules(steps)[2], total=steps)
        assert exp(steps) == pytest.approx(0.01, rel=1e-4)  # exponential decays to 1 % over the run
        sgdr = lrlab.parse(default_schedules(steps)[4], total=steps)
        assert sgdr(steps - 1) < 0.01  # SGDR's third cycle ends at the end of the run, not mid-restart
    assert CompareConfig().resolved().schedules == default_schedules(CompareConfig().steps)


def test_lr_grid_is_log_spaced_around_the_centre() -> None:
    assert lr_grid(1e-2, 3, 3.0) == pytest.approx([1e-2 / 3, 1e-2, 3e-2], rel=1e-12)
    assert lr_grid(1e-2, 1, 3.0) == [1e-2]
    g = lr_grid(1e-2, 2, 4.0)
    assert g == pytest.approx([5e-3, 2e-2], rel=1e-12) and math.sqrt(g[0] * g[1]) == pytest.approx(1e-2)


@pytest.mark.parametrize(
    ("text", "pairs", "find"),
    [
        ("find", (), True),
        ("adamw=1e-2, sgd=0.3", (("adamw", 1e-2), ("sgd", 0.3)), False),
        # one number: schedule-free gets 2x (its good LRs are 1-10x AdamW's) unless named
        ("3e-3", (("sgd", 3e-3), ("adagrad", 3e-3), ("rmsprop", 3e-3), ("adam", 3e-3), ("adamw", 3e-3),
                  ("schedulefree", 6e-3)), False),
        ("schedulefree=3e-3", (("schedulefree", 3e-3),), False),
    ],
    ids=["find", "pairs", "all", "schedulefree-named"],
)
def test_parse_lr_option(text: str, pairs: tuple[tuple[str, float], ...], find: bool) -> None:
    assert parse_lr_option(text) == (pairs, find)


def test_parse_lr_option_error() -> None:
    with pytest.raises(LrlabError, match="--lr must be a number, NAME=NUMBER pairs or 'find', got 'fast'"):
        parse_lr_option("fast")


def test_trials_cover_the_grid_with_shared_seeds_and_unique_ids() -> None:
    c = CompareConfig(steps=100, schedules=("constant()", "cosine()"), optimizers=("adamw", "schedulefree"),
                      seeds=2, lr=(("adamw", 1e-2),)).resolved()
    trials = expand_trials(c, lr_centers(c))
    # adamw: 2 schedules x 3 LRs x 2 seeds; schedulefree: its one schedule x 3 LRs x 2 seeds
    assert len(trials) == 12 + 6 and len({t.id for t in trials}) == 18
    sf = [t for t in trials if t.optimizer == "schedulefree"]
    assert {t.schedule for t in sf} == {"warmup(0.05) >> constant()"}
    assert sorted({t.lr for t in sf}) == pytest.approx([DEFAULT_LR["schedulefree"] * f for f in (1 / 2, 1, 2)])
    assert {t.seed for t in trials} == {0, 1}
    assert trials[0].id == "00-constant-adamw-lr0-s0"
    kw = trials[0].train_kwargs(c)
    assert kw == {"task": "lm", "preset": "tiny", "schedule": "constant()", "optimizer": "adamw",
                  "lr": pytest.approx(1e-2 / 2), "steps": 100, "seed": 0, "batch_size": None, "eval_every": 50,
                  "eval_batches": 8, "checkpoint_every": 500}


def test_branch_plan_is_a_tree_of_shared_lr_prefixes() -> None:
    c = CompareConfig(steps=1000, schedules=("constant()", "wsd(decay=0.2)", "wsd(decay=0.1)",
                                             "step(0.34, factor=0.1)", "cosine()"), lr_grid=1).resolved()
    jobs = plan_jobs(expand_trials(c, lr_centers(c)), c)
    spans = {(j.trial.schedule if j.trial else "prefix", j.start, j.stop) for j in jobs}
    # all of constant/wsd/step agree until the first step drop at 340; constant and the two WSDs until 800 (the
    # cool-down's first value, 1.0, equals constant's, so they differ from update 801); constant and wsd(0.1)
    # until 901
    assert spans == {("prefix", 0, 340), ("prefix", 340, 801), ("prefix", 801, 901),
                     ("constant()", 901, 1000), ("wsd(decay=0.1)", 901, 1000), ("wsd(decay=0.2)", 801, 1000),
                     ("step(0.34, factor=0.1)", 340, 1000), ("cosine()", 0, 1000)}
    by_id = {j.id: j for j in jobs}
    for j in jobs:
        if j.parent is not None:
            assert by_id[j.parent].stop == j.start  # a child starts where its parent's checkpoint stands
            assert jobs.index(by_id[j.parent]) < jobs.index(j)  # parents first
    # the LR sequences really are identical over each shared prefix
    const = lrlab.parse("constant()", total=1000).values(np.arange(1000.0))
    wsd = lrlab.parse("wsd(decay=0.2)", total=1000).values(np.arange(1000.0))
    assert np.array_equal(const[:801], wsd[:801]) and const[801] != wsd[801]
    # updates trained: prefixes 340 + 461 + 100, leaves 99 + 99 + 199 + 660 + 1000 (instead of 5 x 1000)
    assert sum(j.stop - j.start for j in jobs) == 340 + 461 + 100 + 99 + 99 + 199 + 660 + 1000
    # no branching: one job per trial from scratch
    flat = plan_jobs(expand_trials(c, lr_centers(c)), CompareConfig(**{**c.to_dict(), "branch": False,
                                                                        "schedules": c.schedules, "lr": (),
                                                                        "optimizers": ("adamw",)}))
    assert [(j.start, j.stop, j.parent) for j in flat] == [(0, 1000, None)] * 5


def test_short_shared_prefixes_are_not_branched() -> None:
    # warm-up + linear and warm-up + cosine share only the 5 % warm-up: below branch_min (10 %)
    c = CompareConfig(steps=200, schedules=("warmup(0.05) >> linear()", "warmup(0.05) >> cosine()"),
                      lr_grid=1).resolved()
    assert [(j.start, j.parent) for j in plan_jobs(expand_trials(c, lr_centers(c)), c)] == [(0, None)] * 2
    c0 = CompareConfig(**{**c.to_dict(), "schedules": c.schedules, "lr": (), "optimizers": ("adamw",),
                          "branch_min": 0.0})
    # both equal 1.0 at update 10 (end of warm-up, start of the decay), so they part at 11
    assert sorted((j.start, j.stop) for j in plan_jobs(expand_trials(c0, lr_centers(c0)), c0)) == [
        (0, 11), (11, 200), (11, 200)]


#: three schedules that agree bit for bit until update 30 of 60 (step drops there), one peak LR
SHARED = {"steps": 60, "schedules": ("constant()", "step(0.5, factor=0.1)", "step(0.5, factor=0.5)"), "lr_grid": 1,
          "eval_every": 20, "eval_batches": 2, "checkpoint_every": 10, "confirm_seeds": 0}


def test_a_resumed_plan_keeps_its_prefix_ids_and_continues_a_half_trained_prefix() -> None:
    c = CompareConfig(**SHARED).resolved()
    trials = expand_trials(c, lr_centers(c))
    plan = plan_jobs(trials, c)
    (prefix,) = [j for j in plan if j.trial is None]
    assert (prefix.start, prefix.stop) == (0, 30)
    const, step1, step5 = (t.id for t in trials)
    # the crash came after constant() finished, with the prefix checkpoint complete: the two others still branch
    # from it (planning only the unfinished trials would give a new prefix id and train it again from update 0)
    left = pending_jobs(plan, {const}, started=lambda i: False, prefix_done=lambda i: i == prefix.id)
    assert [(j.id, j.start, j.parent) for j in left] == [(step1, 30, prefix.id), (step5, 30, prefix.id)]
    assert next(j for j in plan_jobs([t for t in trials if t.id != const], c) if j.trial is None).id != prefix.id
    # the crash came mid-prefix: the same prefix job runs on (from its own checkpoint), then all three branch
    left = pending_jobs(plan, set(), started=lambda i: i == prefix.id, prefix_done=lambda i: False)
    assert [j.id for j in left] == [prefix.id, const, step1, step5]
    # a trial already past the branch point (its own checkpoint) does not need the prefix; one that is not does
    left = pending_jobs(plan, {const}, started=lambda i: i == step1, prefix_done=lambda i: False)
    assert [j.id for j in left] == [prefix.id, step1, step5]
    left = pending_jobs(plan, {const}, started=lambda i: i in (step1, step5), prefix_done=lambda i: False)
    assert [j.id for j in left] == [step1, step5]
    assert pending_jobs(plan, {const, step1, step5}, started=lambda i: False, prefix_done=lambda i: False) == []


def test_resume_refuses_another_python_or_corpus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lrlab.bench.tasks import get_task
    from lrlab.cli import main

    out = tmp_path / "cmp"
    open_run(out, CompareConfig(steps=20, schedules=("constant()",)), resume=False, workers=1)
    meta = json.loads((out / CONFIG_FILE).read_text())
    assert meta["python"] == platform.python_version()
    assert meta["corpus_sha256"] == get_task("lm").info["corpus_sha256"]
    for key, value in (("python", "3.10.0"), ("corpus_sha256", "0" * 64)):
        (out / CONFIG_FILE).write_text(json.dumps({**meta, key: value}))
        with pytest.raises(LrlabError, match=f"other data or another Python \\({key} {value} then, "):
            open_run(out, None, resume=True)
        assert main(["compare", "--resume", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: --resume") and f"{key} {value} then" in err and "Traceback" not in err
    (out / CONFIG_FILE).write_text(json.dumps(meta))
    assert open_run(out, None, resume=True).meta["python"] == platform.python_version()


def test_open_run_refuses_to_overwrite_and_resume_needs_a_comparison(tmp_path: Path) -> None:
    open_run(tmp_path / "a", CompareConfig(steps=20, schedules=("constant()",)), resume=False, workers=1)
    with pytest.raises(LrlabError, match="already holds a comparison; use --resume"):
        open_run(tmp_path / "a", None, resume=False)
    with pytest.raises(LrlabError, match=r"no compare\.json there"):
        open_run(tmp_path / "b", None, resume=True)
    with pytest.raises(LrlabError, match="holds a comparison with other settings"):
        open_run(tmp_path / "a", CompareConfig(steps=30, schedules=("constant()",)), resume=True)
    run = open_run(tmp_path / "a", CompareConfig(steps=20, schedules=("constant()",)), resume=True)
    assert run.config.steps == 20 and run.meta["execution"]["threads"] >= 1
    with pytest.raises(LrlabError, match="backend must be one of local, ray"):
        run_compare(None, tmp_path / "a", resume=True, backend="slurm")


# ------------------------------------------------------------------------- adaptive grid + confirmation


def finished(trials: list[Trial], finals: dict[tuple[str, int, int], float]) -> list[dict[str, Any]]:
    """Trial records as `run_compare` writes them, with results whose final val loss is ``finals[(schedule,
    lr_index, seed)]`` (nan: diverged)."""
    out = []
    for t in trials:
        f = finals[(t.schedule, t.lr_index, t.seed)]
        result = {"final_val_loss": f, "best_val_loss": f, "diverged": math.isnan(f), "eval_steps": [100],
                  "val_loss": [f], "wall_time_s": 1.0}
        out.append({"id": t.id, "schedule": t.schedule, "optimizer": t.optimizer, "seed": t.seed, "lr": t.lr,
                    "lr_index": t.lr_index, "phase": t.phase, "branched_from": None, "result": result})
    return out


def results_doc(c: CompareConfig, trials: list[dict[str, Any]]) -> dict[str, Any]:
    return {"config": c.to_dict(), "status": "complete", "trials": trials, "n_planned": len(trials)}


def test_the_grid_is_extended_beyond_an_edge_best_until_the_best_is_inside_or_lr_extend_is_spent() -> None:
    c = CompareConfig(steps=100, schedules=("constant()", "cosine()", "linear()"), lr=(("adamw", 1e-2),),
                      lr_extend=2).resolved()
    centers = lr_centers(c)
    grid = expand_trials(c, centers)
    # constant is best at the smallest LR, cosine inside the grid, linear at the largest
    loss = {("constant()", 0, 0): 2.0, ("constant()", 1, 0): 2.1, ("constant()", 2, 0): 2.4,
            ("cosine()", 0, 0): 2.2, ("cosine()", 1, 0): 2.0, ("cosine()", 2, 0): 2.3,
            ("linear()", 0, 0): 2.5, ("linear()", 1, 0): 2.3, ("linear()", 2, 0): 2.1}
    done = finished(grid, loss)
    first = extend_trials(c, results_doc(c, done), centers)
    assert [(t.id, t.lr_index, t.phase) for t in first] == [("00-constant-adamw-lr-1-s0", -1, "extend"),
                                                            ("02-linear-adamw-lr3-s0", 3, "extend")]
    # the grid continued: a factor 2 beyond each edge
    assert first[0].lr == pytest.approx(1e-2 / 4) and first[1].lr == pytest.approx(1e-2 * 4)
    assert first[0].lr == grid_lr(1e-2, 3, 2.0, -1)
    # constant improves again (still at the edge), linear's new LR is worse (its best is now inside)
    loss |= {("constant()", -1, 0): 1.9, ("linear()", 3, 0): 2.6}
    done += finished(first, loss)
    second = extend_trials(c, results_doc(c, done), centers)
    assert [(t.schedule, t.lr_index) for t in second] == [("constant()", -2)]
    loss[("constant()", -2, 0)] = 1.8  # better still, but lr_extend=2 LRs below the grid are spent
    done += finished(second, loss)
    assert extend_trials(c, results_doc(c, done), centers) == []
    # off, or a one-LR grid (no edge to judge by): no extension
    assert extend_trials(CompareConfig(**{**_kw(c), "lr_extend": 0}).resolved(), results_doc(c, done), centers) == []
    one = CompareConfig(**{**_kw(c), "lr_grid": 1}).resolved()
    assert extend_trials(one, results_doc(one, finished(expand_trials(one, centers), {
        (s, 0, 0): 2.0 for s in one.schedules or ()})), centers) == []


def test_extension_runs_every_seed_and_a_schedule_that_diverged_everywhere_goes_lower() -> None:
    c = CompareConfig(steps=100, schedules=("constant()",), lr_grid=2, seeds=2).resolved()
    centers = lr_centers(c)
    grid = expand_trials(c, centers)
    done = finished(grid, {("constant()", j, s): math.nan for j in (0, 1) for s in (0, 1)})
    ext = extend_trials(c, results_doc(c, done), centers)
    assert [(t.lr_index, t.seed) for t in ext] == [(-1, 0), (-1, 1)]
    assert ext[0].lr == pytest.approx(DEFAULT_LR["adamw"] * 2**-1.5)  # the grid is 2**-0.5, 2**0.5 x the centre


def _kw(c: CompareConfig) -> dict[str, Any]:
    return {**c.to_dict(), "schedules": c.schedules, "optimizers": c.optimizers, "lr": c.lr}


def test_confirmation_reruns_the_best_two_lrs_and_the_best_is_then_chosen_on_every_seed() -> None:
    from lrlab.bench.analysis import analyze

    c = CompareConfig(steps=100, schedules=("constant()", "cosine()"), confirm_seeds=2, confirm_close=1.0).resolved()
    centers = lr_centers(c)
    grid = expand_trials(c, centers)
    # on seed 0 constant is best at lr1 (1.90) with lr0 a close second (1.91); cosine diverged at lr2
    loss = {("constant()", 0, 0): 1.91, ("constant()", 1, 0): 1.90, ("constant()", 2, 0): 2.4,
            ("cosine()", 0, 0): 2.0, ("cosine()", 1, 0): 1.95, ("cosine()", 2, 0): math.nan}
    done = finished(grid, loss)
    conf = confirm_trials(c, results_doc(c, done))
    assert {t.phase for t in conf} == {"confirm"}
    assert [(t.seed, t.schedule, t.lr_index) for t in conf] == [  # in the grid's order: seed, schedule, LR
        (1, "constant()", 0), (1, "constant()", 1), (1, "cosine()", 0), (1, "cosine()", 1),
        (2, "constant()", 0), (2, "constant()", 1), (2, "cosine()", 0), (2, "cosine()", 1)]
    assert conf[0].id == "00-constant-adamw-lr0-s1"
    # by default only the closer half of the calls get their runner-up re-run: constant's (0.01 behind), not
    # cosine's (0.05 behind)
    half = CompareConfig(**{**_kw(c), "confirm_close": 0.5}).resolved()
    assert [(t.seed, t.schedule, t.lr_index) for t in confirm_trials(half, results_doc(half, done))] == [
        (1, "constant()", 0), (1, "constant()", 1), (1, "cosine()", 1),
        (2, "constant()", 0), (2, "constant()", 1), (2, "cosine()", 1)]
    assert CompareConfig().confirm_close == 0.5
    none = CompareConfig(**{**_kw(c), "confirm_close": 0.0}).resolved()
    assert [(t.schedule, t.lr_index) for t in confirm_trials(none, results_doc(none, done))][:2] == [
        ("constant()", 1), ("cosine()", 1)]
    # seed 0's pick for constant was lucky: lr1 is worse on seeds 1 and 2, so lr0 is chosen on the mean
    loss |= {("constant()", 0, 1): 1.92, ("constant()", 0, 2): 1.93, ("constant()", 1, 1): 2.10,
             ("constant()", 1, 2): 2.05, ("cosine()", 0, 1): 2.0, ("cosine()", 0, 2): 2.0,
             ("cosine()", 1, 1): 1.96, ("cosine()", 1, 2): 1.94}
    a = analyze(results_doc(c, done + finished(conf, loss)))
    by = {x.schedule: x for x in a.contenders}
    assert by["constant()"].best_lr == grid[0].lr and by["constant()"].n_seeds == 3
    assert by["constant()"].final_mean == pytest.approx((1.91 + 1.92 + 1.93) / 3)
    assert by["cosine()"].best_lr == grid[4].lr and a.paired_seeds == (0, 1, 2)
    # that moved constant's best to the grid's lower edge: the grid is extended there, screened on seed 0 first
    # (as the grid was); cosine's best is inside
    done += finished(conf, loss)
    ext = extend_trials(c, results_doc(c, done), centers)
    assert [(t.schedule, t.lr_index, t.seed, t.phase) for t in ext] == [("constant()", -1, 0, "extend")]
    # worse than the best on seed 0 (1.91): not run further, and the best (3 seeds) is now inside the LRs tried
    worse = finished(ext, {**loss, ("constant()", -1, 0): 1.95})
    assert extend_trials(c, results_doc(c, done + worse), centers) == []
    a = analyze(results_doc(c, done + worse))
    assert {x.schedule: (x.best_lr, x.at_grid_edge) for x in a.contenders}["constant()"] == (grid[0].lr, False)
    # better on seed 0: it is run on the confirmation seeds too, and then judged on all three
    better = finished(ext, {**loss, ("constant()", -1, 0): 1.85})
    more = extend_trials(c, results_doc(c, done + better), centers)
    assert [(t.schedule, t.lr_index, t.seed) for t in more] == [("constant()", -1, 1), ("constant()", -1, 2)]
    loss |= {("constant()", -1, 0): 1.85, ("constant()", -1, 1): 1.86, ("constant()", -1, 2): 1.87}
    a = analyze(results_doc(c, done + better + finished(more, loss)))
    assert {x.schedule: x.best_lr for x in a.contenders}["constant()"] == pytest.approx(grid[0].lr / 2)
    # ... at the new lower edge, so the next round screens the LR below it
    nxt = extend_trials(c, results_doc(c, done + better + finished(more, loss)), centers)
    assert [(t.lr_index, t.seed) for t in nxt] == [(-2, 0)]
    # confirm_top=1 keeps seed 0's choice; --seeds 2 or --confirm 0 have no confirmation phase
    one = CompareConfig(**{**_kw(c), "confirm_top": 1}).resolved()
    assert [(t.schedule, t.lr_index) for t in confirm_trials(one, results_doc(one, done[:len(grid)]))][:2] == [
        ("constant()", 1), ("cosine()", 1)]
    grid_doc = results_doc(c, done[:len(grid)])
    assert confirm_trials(CompareConfig(**{**_kw(c), "confirm_seeds": 0}).resolved(), grid_doc) == []
    assert confirm_trials(CompareConfig(**{**_kw(c), "seeds": 2}).resolved(), grid_doc) == []


# --------------------------------------------------------------------------------------------- real runs

#: a comparison small enough for a test: 2 schedules that share their first half, 2 peak LRs (extended past the
#: edge where the best is), 1 seed, then a confirmation seed at each schedule's best LR (and the closer call's
#: runner-up): every phase
TINY = {"steps": 60, "schedules": ("constant()", "step(0.5, factor=0.1)"), "lr_grid": 2, "eval_every": 20,
        "eval_batches": 2, "checkpoint_every": 10, "confirm_seeds": 1}
#: what must be identical between two runs of the same trial (wall time, throughput and resume point may differ)
SAME = ("config", "eval_steps", "val_loss", "val_metrics", "train_loss", "lr", "final_val_loss", "best_val_loss",
        "diverged", "n_params")


def numbers(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["id"]: {k: t["result"][k] for k in SAME} for t in doc["trials"]}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The tiny comparison, uninterrupted and without branching: every trial trained from scratch."""
    out = tmp_path_factory.mktemp("reference")
    return run_compare(CompareConfig(**TINY, branch=False), out, workers=2)


@pytest.mark.slow
def test_comparison_writes_every_trial_and_results(reference: dict[str, Any]) -> None:
    doc = reference
    assert doc["status"] == "complete" and doc["n_planned"] == len(doc["trials"]) > 4
    assert [t["id"] for t in doc["trials"][:4]] == ["00-constant-adamw-lr0-s0", "00-constant-adamw-lr1-s0",
                                                    "01-step_0_5_factor_0_1-adamw-lr0-s0",
                                                    "01-step_0_5_factor_0_1-adamw-lr1-s0"]
    # two LRs: each best is at an edge of the grid, so both are extended past it (up to lr_extend=2 LRs); then
    # seed 1 at each one's two best LRs (and more extension if that moved a best to an edge)
    ext = [t for t in doc["trials"] if t["phase"] == "extend"]
    assert {t["schedule"] for t in ext} == set(TINY["schedules"])
    assert all(t["lr_index"] in (-2, -1, 2, 3) for t in ext)
    # both bests, and the runner-up of the closer call of the two (--confirm-close 0.5)
    confirm = [t for t in doc["trials"] if t["phase"] == "confirm"]
    assert len(confirm) == 3 and {t["seed"] for t in confirm} == {1}
    assert len({t["schedule"] for t in confirm}) == 2
    phases = "".join(t["phase"][0] for t in doc["trials"])  # g(rid), e(xtend), c(onfirm), in the order run
    assert re.fullmatch(r"g{4}e+c{3}e*", phases), phases
    for t in doc["trials"]:
        r = t["result"]
        assert len(r["train_loss"]) == 60 and r["eval_steps"] == [0, 20, 40, 60]
        assert r["lr"][0] == pytest.approx(t["lr"], rel=1e-15) and math.isfinite(r["final_val_loss"])
        assert r["final_val_loss"] == r["val_loss"][-1] < r["val_loss"][0]
        assert t["branched_from"] is None
    step = doc["trials"][2]["result"]["lr"]
    assert step[29] == pytest.approx(doc["trials"][2]["lr"]) and step[30] == pytest.approx(doc["trials"][2]["lr"] / 10)
    # same seed: constant() and step() train identically until the step at update 30
    a, b = doc["trials"][0]["result"], doc["trials"][2]["result"]
    assert a["train_loss"][:30] == b["train_loss"][:30] and a["train_loss"][30:] != b["train_loss"][30:]


@pytest.mark.slow
def test_branching_from_a_shared_prefix_gives_identical_results(reference: dict[str, Any], tmp_path: Path) -> None:
    doc = run_compare(CompareConfig(**TINY), tmp_path, workers=2)
    branched = [t for t in doc["trials"] if t["branched_from"]]
    # the two schedules share [0, 30) at each LR and seed they both run (in every phase); a run with no partner
    # (the confirmation seed at an LR only one of them is confirmed at) trains from scratch
    partners: dict[tuple[int, float], int] = {}
    for t in doc["trials"]:
        partners[(t["seed"], t["lr"])] = partners.get((t["seed"], t["lr"]), 0) + 1
    assert [t["id"] for t in branched] == [t["id"] for t in doc["trials"] if partners[(t["seed"], t["lr"])] == 2]
    assert len(branched) >= 8 and {t["branched_from"]["step"] for t in branched} == {30}
    assert all(t["result"]["resumed_from"] == 30 for t in branched)
    assert numbers(doc) == numbers(reference)  # bit for bit
    assert not (tmp_path / "ckpt").exists()  # checkpoints are removed once the comparison is complete
    # what the numbers were measured on, at the top level
    assert doc["python"] == platform.python_version() and len(doc["corpus_sha256"]) == 64
    assert doc["corpus_sha256"] == doc["trials"][0]["result"]["env"]["data"]["corpus_sha256"]


@pytest.mark.slow
def test_kill_9_then_resume_gives_identical_results(reference: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    args = [sys.executable, "-m", "lrlab.cli", "compare", "--steps", "60", "--schedules", "; ".join(TINY["schedules"]),
            "--lr-grid", "2", "--eval-every", "20", "--eval-batches", "2", "--checkpoint-every", "10", "--confirm",
            "1", "--no-branch", "--workers", "2", "--out", str(out)]  # = TINY without branching, as `reference`
    # killed once one trial has finished and another holds a mid-run checkpoint
    kill_at(args, out, lambda done, ckpts: bool(done and ckpts - done), timeout=120, what="compare")
    n_done = len(list((out / "runs").glob("*.json")))
    assert 1 <= n_done < 4 and not (out / "results.json").exists()
    resumed = run_compare(None, out, resume=True)
    assert resumed["status"] == "complete"
    assert [s["resumed"] for s in resumed["sessions"]] == [False, True]
    assert numbers(resumed) == numbers(reference)  # bit for bit
    assert any(t["result"]["resumed_from"] for t in resumed["trials"])  # some trial really resumed mid-run


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_kill_9_while_branching_then_resume_gives_identical_results(tmp_path: Path) -> None:
    # one worker: the prefix [0, 150), then constant(), step(0.5, 0.1), step(0.5, 0.5) from its checkpoint, in
    # turn. 300 updates (not SHARED's 60) so that each branch trains for ~1 s: the kill must land inside one.
    config = {**SHARED, "steps": 300, "eval_every": 100, "checkpoint_every": 20}
    reference = run_compare(CompareConfig(**config), tmp_path / "ref", workers=1)
    ids = [t["id"] for t in reference["trials"]]
    prefix = {t["branched_from"]["trial"] for t in reference["trials"]}
    assert len(prefix) == 1 and all(t["branched_from"]["step"] == 150 for t in reference["trials"])
    out = tmp_path / "cmp"
    args = [sys.executable, "-m", "lrlab.cli", "compare", "--steps", "300", "--schedules",
            "; ".join(SHARED["schedules"]), "--lr-grid", "1", "--eval-every", "100", "--eval-batches", "2",
            "--checkpoint-every", "20", "--confirm", "0", "--workers", "1", "--no-plots", "--out", str(out)]
    def branching(done: set[str], ckpts: set[str]) -> bool:  # constant() finished, step(0.5, 0.1) branched, training
        assert len(done) < 2, "compare got past the kill point"
        return done == {ids[0]} and ids[1] in ckpts

    # a start-up, 450 updates and a branch: minutes on a loaded 2-core machine
    kill_at(args, out, branching, timeout=420, what="compare", poll=0.005)
    assert (out / "ckpt" / next(iter(prefix)) / "DONE.json").is_file()  # the prefix checkpoint is complete
    events: list[Event] = []
    resumed = run_compare(None, out, resume=True, on_event=events.append)
    assert resumed["status"] == "complete"
    assert numbers(resumed) == numbers(reference)  # bit for bit
    assert [t["branched_from"] for t in resumed["trials"]] == [t["branched_from"] for t in reference["trials"]]
    # nothing was retrained: the prefix was not run again; the killed branch continued from its last checkpoint
    # (the branch point or later), the last one from the branch point
    starts = {e.job: e.start for e in events if e.kind == "start"}
    assert set(starts) == set(ids[1:]) and 150 <= starts[ids[1]] < 300 and starts[ids[2]] == 150
    assert [e.total for e in events if e.kind == "phase"] == [sum(300 - v for v in starts.values())]


@pytest.mark.slow
def test_ray_backend_via_the_cli_gives_the_local_results_with_progress(
        reference: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ray  # a dev dependency (lrlab[ray]): the test fails, not skips, without it

    from lrlab.bench import cli_compare
    from lrlab.cli import main

    events: list[Event] = []
    show = cli_compare.ProgressView.__call__

    def record(view: cli_compare.ProgressView, event: Event) -> None:
        events.append(event)
        show(view, event)

    monkeypatch.setattr(cli_compare.ProgressView, "__call__", record)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        code = main(["compare", "--steps", "60", "--schedules", "; ".join(TINY["schedules"]), "--lr-grid", "2",
                     "--eval-every", "20", "--eval-batches", "2", "--checkpoint-every", "10", "--confirm", "1",
                     "--no-branch", "--workers", "2", "--backend", "ray", "--no-plots", "--out", str(tmp_path)])
    finally:
        ray.shutdown()
    assert code == 0
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["status"] == "complete" and doc["execution"]["backend"] == "ray"
    assert numbers(doc) == numbers(reference)
    ids = sorted(t["id"] for t in doc["trials"])
    # (a view without a terminal hands a finish event on to the bars' printer: it may be recorded twice)
    assert sorted({e.job for e in events if e.kind == "finish"}) == ids
    # every Ray task reported its progress (through the queue actor) up to its last update
    assert sorted({e.job for e in events if e.kind == "step" and e.step == 60}) == ids
