"""The comparison runner: config validation, the trial grid, shared-prefix branching plans, and real runs —
results identical with and without branching, after `kill -9` + resume, and on a local Ray instance."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import lrlab
from lrlab.bench.compare import (
    DEFAULT_LR,
    CompareConfig,
    Event,
    default_schedules,
    expand_trials,
    lr_centers,
    lr_grid,
    open_run,
    parse_lr_option,
    plan_jobs,
    run_compare,
)
from lrlab.errors import LrlabError

# ------------------------------------------------------------------------------------------ config + grid


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"steps": 5}, "steps must be an integer >= 10, got 5"),
        ({"seeds": 0}, "seeds must be an integer >= 1, got 0"),
        ({"lr_grid": 0}, "lr_grid must be an integer >= 1, got 0"),
        ({"lr_grid_factor": 1.0}, "lr_grid_factor must be a number > 1, got 1.0"),
        ({"optimizers": ("adamw", "lion")}, "optimizer 'lion' is not supported; choose from sgd, adagrad"),
        ({"optimizers": ()}, "optimizers must name at least one"),
        ({"lr": (("adamw", -1.0),)}, "lr for adamw must be a positive number, got -1.0"),
        ({"schedules": ("cosine()", "cosine()")}, "schedules lists one twice"),
        ({"branch_min": 2.0}, "branch_min must be in [0, 1]"),
        ({"eval_every": 0}, "eval_every must be an integer >= 1, got 0"),
    ],
    ids=["steps", "seeds", "grid", "factor", "optimizer", "no-optimizer", "lr", "duplicate", "branch-min", "eval"],
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


def test_default_schedules_are_the_nine_families_and_scale_with_steps() -> None:
    specs = default_schedules(1000)
    assert len(specs) == 9 and specs[0] == "constant()"
    names = [str(lrlab.parse(s)).split("(")[0] for s in specs]
    assert names == ["constant", "step", "exponential", "cosine", "cosine_restarts", "warmup", "warmup", "warmup",
                     "warmup"]
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
        ("3e-3", tuple((o, 3e-3) for o in ("sgd", "adagrad", "rmsprop", "adam", "adamw", "schedulefree")), False),
    ],
    ids=["find", "pairs", "all"],
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
                  "eval_batches": 8, "checkpoint_every": 100}


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


# --------------------------------------------------------------------------------------------- real runs

#: a comparison small enough for a test: 2 schedules that share their first half, 2 peak LRs, 1 seed
TINY = {"steps": 60, "schedules": ("constant()", "step(0.5, factor=0.1)"), "lr_grid": 2, "eval_every": 20,
        "eval_batches": 2, "checkpoint_every": 10, "confirm_seeds": 0}
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
    assert doc["status"] == "complete" and doc["n_planned"] == 4
    assert [t["id"] for t in doc["trials"]] == ["00-constant-adamw-lr0-s0", "00-constant-adamw-lr1-s0",
                                                "01-step_0_5_factor_0_1-adamw-lr0-s0",
                                                "01-step_0_5_factor_0_1-adamw-lr1-s0"]
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
    assert len(branched) == 4 and {t["branched_from"]["step"] for t in branched} == {30}
    assert all(t["result"]["resumed_from"] == 30 for t in branched)
    assert numbers(doc) == numbers(reference)  # bit for bit
    assert not (tmp_path / "ckpt").exists()  # checkpoints are removed once the comparison is complete


@pytest.mark.slow
def test_kill_9_then_resume_gives_identical_results(reference: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    args = [sys.executable, "-m", "lrlab.cli", "compare", "--steps", "60", "--schedules", "; ".join(TINY["schedules"]),
            "--lr-grid", "2", "--eval-every", "20", "--eval-batches", "2", "--checkpoint-every", "10", "--confirm",
            "0", "--no-branch", "--workers", "2", "--out", str(out)]  # = TINY without branching, as `reference`
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:  # wait for one finished trial and another's mid-run checkpoint
            done = {p.stem for p in (out / "runs").glob("*.json")}  # (a missing folder globs to nothing)
            ckpts = {p.parent.name for p in (out / "ckpt").glob("*/checkpoint.pt")}
            if done and ckpts - done:
                break
            assert proc.poll() is None, "compare ended before it could be killed"
            time.sleep(0.02)
        else:
            pytest.fail("no trial finished within 120 s")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its workers: no chance to clean up
        proc.wait()
    n_done = len(list((out / "runs").glob("*.json")))
    assert 1 <= n_done < 4 and not (out / "results.json").exists()
    resumed = run_compare(None, out, resume=True)
    assert resumed["status"] == "complete"
    assert [s["resumed"] for s in resumed["sessions"]] == [False, True]
    assert numbers(resumed) == numbers(reference)  # bit for bit
    assert any(t["result"]["resumed_from"] for t in resumed["trials"])  # some trial really resumed mid-run


@pytest.mark.slow
def test_ray_backend_gives_the_local_results(reference: dict[str, Any], tmp_path: Path) -> None:
    import ray  # a dev dependency (lrlab[ray]): the test fails, not skips, without it
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        events: list[Event] = []
        doc = run_compare(CompareConfig(**TINY, branch=False), tmp_path, workers=2, backend="ray",
                          on_event=events.append)
    finally:
        ray.shutdown()
    assert doc["status"] == "complete" and doc["execution"]["backend"] == "ray"
    assert numbers(doc) == numbers(reference)
    assert sorted(e.job for e in events if e.kind == "finish") == sorted(t["id"] for t in doc["trials"])


@pytest.mark.slow
def test_lr_find_centres_the_grid_on_the_range_test(tmp_path: Path) -> None:
    cfg = CompareConfig(steps=10, schedules=("constant()",), lr_find=True, lr_grid=3, eval_every=10,
                        eval_batches=1, confirm_seeds=0)
    doc = run_compare(cfg, tmp_path, workers=2)
    find = doc["lr_find"]["adamw"]
    assert [s["rule"] for s in find["suggestions"]] == ["steepest", "valley", "minimum/10"]
    lrs = [s["lr"] for s in find["suggestions"]]
    assert find["suggestion"] == pytest.approx(sorted(lrs)[1], rel=1e-12)  # geometric median of three = middle
    assert doc["lr_centers"] == {"adamw": find["suggestion"]}
    assert [t["lr"] for t in doc["trials"]] == pytest.approx([find["suggestion"] * f for f in (1 / 2, 1, 2)])
    assert len(find["result"]["lrs"]) >= 10 and find["result"]["lrs"][0] == pytest.approx(1e-6)
