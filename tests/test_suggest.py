"""`lrlab suggest`: the rules by task, steps and optimizer (every spec parses and binds), the range-test peak,
errors, and the CLI commands `suggest` and `find`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import lrlab
from lrlab.errors import LrlabError
from lrlab.suggest import DEFAULT_PEAK, OPTIMIZERS, TASKS, format_suggestion, suggest


@pytest.mark.parametrize(("task", "steps", "optimizer", "spec", "bound", "warmup", "peak", "min_lr"), [
    ("lm", 400, "adamw", "warmup(0.05) >> cosine(floor=0.1)", "warmup(20) >> cosine(floor=0.1, total=380)", 20,
     6e-4, 6e-5),
    ("lm", 100_000, "adamw", "warmup(2000) >> cosine(floor=0.1)", "warmup(2000) >> cosine(floor=0.1, total=98000)",
     2000, 6e-4, 6e-5),
    ("lm", 100_000, "sgd", "warmup(0.05) >> cosine(floor=0.1)", "warmup(5000) >> cosine(floor=0.1, total=95000)",
     5000, 0.1, 0.01),
    ("lm", 1000, "schedulefree", "warmup(0.05) >> constant()", "warmup(50) >> constant(total=950)", 50, 2e-3, 2e-3),
    ("vision", 1000, "adamw", "warmup(0.05) >> cosine()", "warmup(50) >> cosine(950)", 50, 1e-3, 0.0),
    ("vision", 50_000, "sgd", "warmup(0.05) >> cosine()", "warmup(2500) >> cosine(47500)", 2500, 0.1, 0.0),
    ("finetune", 1000, "adamw", "warmup(0.06) >> linear(end=0)", "warmup(60) >> linear(940)", 60, 2e-5, 0.0),
    ("finetune", 30_000, "adamw", "warmup(0.06) >> linear(end=0)", "warmup(1800) >> linear(28200)", 1800, 2e-5,
     0.0),
], ids=["lm-short", "lm-long-capped", "lm-sgd", "lm-schedulefree", "vision", "vision-sgd", "finetune",
        "finetune-long"])
def test_rules(task: str, steps: int, optimizer: str, spec: str, bound: str, warmup: int, peak: float,
               min_lr: float) -> None:
    s = suggest(task, steps, optimizer=optimizer)
    assert (s.spec, s.bound, s.warmup_steps, s.peak_lr, s.min_lr) == (spec, bound, warmup, peak, min_lr)
    assert s.peak_source == "default" and s.range_test is None
    sched = lrlab.parse(s.spec, total=steps)
    assert str(sched) == s.bound
    assert sched(0) == 0.0 and sched(warmup) == 1.0
    assert sched(steps) * s.peak_lr == pytest.approx(s.min_lr, rel=1e-12, abs=0.0)
    assert len(s.reasons) == 4


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("steps", [10, 999, 123_457])
def test_every_spec_parses_and_binds(task: str, optimizer: str, steps: int) -> None:
    s = suggest(task, steps, optimizer=optimizer)
    sched = lrlab.parse(s.spec, total=steps)
    assert str(sched) == s.bound
    assert 1 <= s.warmup_steps < steps
    assert s.peak_lr == DEFAULT_PEAK[(task, optimizer)][0]
    values = sched.values(list(range(steps + 1)))
    assert values.max() == 1.0 and values.min() == 0.0


def test_beta2_sets_the_adam_warmup_cap() -> None:
    assert suggest("lm", 100_000, beta2=0.95).warmup_steps == 40
    assert suggest("lm", 100_000, beta2=0.95).spec == "warmup(40) >> cosine(floor=0.1)"


def test_long_lm_runs_mention_wsd() -> None:
    assert "cooldown(0.2, shape=sqrt)" in suggest("lm", 50_000).reasons[1]
    assert "cooldown" not in suggest("lm", 5_000).reasons[1]


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"task": "audio", "steps": 100}, "task must be one of lm, vision, finetune; got 'audio'"),
    ({"task": "lm", "steps": 5}, "steps must be a whole number >= 10"),
    ({"task": "lm", "steps": 100, "optimizer": "lion"}, "optimizer must be one of adamw, adam, sgd"),
    ({"task": "lm", "steps": 100, "beta2": 1.0}, "beta2 must be in (0, 1)"),
    ({"task": "finetune", "steps": 100, "find": True}, "--find runs the range test on a built-in task"),
], ids=["task", "steps", "optimizer", "beta2", "finetune-find"])
def test_errors(kwargs: dict[str, object], needle: str) -> None:
    with pytest.raises(LrlabError) as e:
        suggest(**kwargs)  # type: ignore[arg-type]
    assert needle in str(e.value)


def test_format_suggestion() -> None:
    text = format_suggestion(suggest("finetune", 1000))
    assert text.splitlines()[:3] == ["schedule: warmup(0.06) >> linear(end=0)",
                                     "  bound to 1000 updates: warmup(60) >> linear(940)",
                                     "peak LR: 2e-05 (default); minimum LR: 0"]


@pytest.mark.slow
def test_find_measures_the_peak() -> None:
    s = suggest("lm", 1000, find=True, find_iters=60)
    assert s.peak_source == "range test"
    assert s.range_test is not None
    lrs = sorted(x["lr"] for x in s.range_test["suggestions"])
    assert s.peak_lr == pytest.approx(lrs[1], rel=1e-12)  # the median of three
    assert 1e-3 < s.peak_lr < 1.0  # the tiny GPT trains at ~1e-2 with AdamW
    assert "median of the range-test suggestions" in s.reasons[2]


# ------------------------------------------------------------------------------------------------ CLI


def test_cli_suggest_json(capsys: pytest.CaptureFixture[str]) -> None:
    from lrlab.cli import main

    assert main(["suggest", "--task", "vision", "--steps", "2000", "--optimizer", "sgd", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["spec"] == "warmup(0.05) >> cosine()" and doc["peak_lr"] == 0.1 and doc["warmup_steps"] == 100
    assert doc["bound"] == "warmup(100) >> cosine(1900)" and len(doc["reasons"]) == 4


def test_cli_suggest_text_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    from lrlab.cli import main

    assert main(["suggest", "--task", "lm", "--steps", "1000"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("schedule: warmup(0.05) >> cosine(floor=0.1)\n") and "Chinchilla" in out
    assert main(["suggest", "--task", "speech", "--steps", "1000"]) == 2
    assert "error: task must be one of" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_suggest_find_json_and_text(capsys: pytest.CaptureFixture[str]) -> None:
    from lrlab.cli import main

    assert main(["suggest", "--task", "lm", "--steps", "1000", "--find", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["peak_source"] == "range test" and doc["spec"] == "warmup(0.05) >> cosine(floor=0.1)"
    rt = doc["range_test"]
    assert [s["rule"] for s in rt["suggestions"]] == ["steepest", "valley", "minimum/10"]
    assert rt["preset"] == "tiny" and rt["n_updates"] <= 100
    assert doc["peak_lr"] == pytest.approx(sorted(s["lr"] for s in rt["suggestions"])[1], rel=1e-12)
    assert 1e-3 < doc["peak_lr"] < 1.0 and doc["min_lr"] == pytest.approx(0.1 * doc["peak_lr"], rel=1e-9)
    assert main(["suggest", "--task", "lm", "--steps", "1000", "--find"]) == 0  # same seed: same numbers
    out = capsys.readouterr().out
    assert out.startswith("schedule: warmup(0.05) >> cosine(floor=0.1)\n")
    assert f"peak LR: {doc['peak_lr']:.3g} (range test)" in out
    assert "median of the range-test suggestions on the built-in lm task" in out
    assert main(["suggest", "--task", "finetune", "--steps", "1000", "--find"]) == 2
    assert "error: --find runs the range test on a built-in task" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_find(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lrlab.cli import main

    png = tmp_path / "find.png"
    assert main(["find", "--task", "lm", "--num-iter", "60", "--start-lr", "1e-5", "--out", str(png), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [s["rule"] for s in doc["suggestions"]] == ["steepest", "valley", "minimum/10"]
    steepest = doc["suggestions"][0]["lr"]
    assert 1e-3 < steepest < 1.0
    assert doc["result"]["lrs"][0] == pytest.approx(1e-5, rel=1e-12)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["find", "--task", "lm", "--num-iter", "60", "--start-lr", "1e-5"]) == 0
    out = capsys.readouterr().out
    assert "steepest" in out and "median of the three" in out
    assert main(["find", "--task", "nope"]) == 2
    assert "error: task 'nope' is not supported" in capsys.readouterr().err
