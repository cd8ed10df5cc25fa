"""`lrlab suggest`: the shape comes from lrlab's measured tables and names them; the peak LR comes from the range
test, a measured preset or nowhere (and then it says so); every spec parses and binds; errors; the CLI commands
`suggest` and `find`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import lrlab
from lrlab import evidence
from lrlab.errors import LrlabError
from lrlab.evidence import Measured, Table
from lrlab.suggest import OPTIMIZERS, TASKS, format_suggestion, recommended_schedule, suggest

WSD = "wsd(warmup=0.05, decay=0.2)"


@pytest.mark.parametrize(("task", "optimizer", "spec"), [
    ("lm", "adamw", WSD),  # won lm/tiny and lm/small
    ("lm", "sgd", WSD),
    ("lm", "adam", WSD),  # AdamW's tables stand in
    ("lm", "rmsprop", WSD),
    ("lm", "schedulefree", "warmup(0.05) >> constant()"),
    ("vision", "adamw", WSD),  # within the noise of warm-up + cosine; more wins elsewhere
    ("vision", "sgd", WSD),
    ("finetune", "adamw", "warmup(0.06) >> linear()"),  # not measured: linear to 0
], ids=lambda x: str(x))
def test_recommended_schedule(task: str, optimizer: str, spec: str) -> None:
    assert recommended_schedule(task, optimizer) == spec


def test_the_rule_reads_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    def table(preset: str, rows: list[tuple[str, float, float]], sigma: float, task: str = "lm") -> Table:
        return Table(task=task, preset=preset, optimizer="adamw", steps=1000, seeds=3, sigma=sigma, grid=(1e-3, 1e-2),
                     source=f"test {preset}", rows=tuple(Measured(schedule=s, peak=p, final=f, std=0.01)
                                                         for s, p, f in rows))

    cos, lin = "warmup(0.05) >> cosine()", "warmup(0.05) >> linear()"
    # cosine wins both tables clearly: cosine
    monkeypatch.setattr(evidence, "TABLES", (table("tiny", [(cos, 1e-3, 1.0), (WSD, 1e-3, 1.2)], 0.01),
                                             table("small", [(cos, 1e-3, 1.0), (WSD, 1e-3, 1.1)], 0.01)))
    assert recommended_schedule("lm", "adamw") == cos
    # linear and WSD tie within the noise in both and win one each: the one that wins more on another task
    tied = (table("tiny", [(lin, 1e-3, 1.0), (WSD, 1e-3, 1.005)], 0.01),
            table("small", [(WSD, 1e-3, 1.0), (lin, 1e-3, 1.005)], 0.01))
    monkeypatch.setattr(evidence, "TABLES", (*tied, table("small", [(WSD, 1e-3, 1.0), (lin, 1e-3, 2.0)], 0.01,
                                                          task="vision")))
    assert recommended_schedule("lm", "adamw") == WSD
    monkeypatch.setattr(evidence, "TABLES", (*tied, table("small", [(lin, 1e-3, 1.0), (WSD, 1e-3, 2.0)], 0.01,
                                                          task="vision")))
    assert recommended_schedule("lm", "adamw") == lin
    # disagreement beyond the noise: the winner of the largest model measured
    monkeypatch.setattr(evidence, "TABLES", (table("tiny", [(lin, 1e-3, 1.0), (WSD, 1e-3, 1.5)], 0.01),
                                             table("small", [(WSD, 1e-3, 1.0), (lin, 1e-3, 1.5)], 0.01)))
    assert recommended_schedule("lm", "adamw") == WSD


def test_lm_output_names_its_evidence() -> None:
    s = suggest("lm", 1000)
    assert s.spec == WSD and s.bound == "warmup(50) >> constant(total=750) >> cooldown(200)"
    assert s.evidence == (
        "BENCHMARKS.md lm/tiny AdamW (default lrlab compare): WSD 1.845 at 0.006 vs warm-up+linear 1.917 at 0.006 "
        "(noise 0.043, 2 seeds, 1000 updates)",
        "BENCHMARKS.md lm/small AdamW: WSD 1.465 at 0.005 vs warm-up+linear 1.497 at 0.01 (noise 0.014, 3 seeds, "
        "1000 updates)")
    assert s.reasons[0].startswith("shape: WSD: it won every lrlab comparison of lm with adamw (2); Hägele")
    assert [a.spec for a in s.alternatives] == ["warmup(0.05) >> linear()", "warmup(0.05) >> cosine(floor=0.1)"]
    assert "Straight to Zero" in s.alternatives[0].why and "classic" in s.alternatives[1].why
    text = format_suggestion(s)
    assert "evidence:\n  - BENCHMARKS.md lm/tiny AdamW" in text
    assert "alternatives:\n  - warmup(0.05) >> linear()" in text


def test_vision_says_the_winner_was_within_the_noise() -> None:
    s = suggest("vision", 1000, preset="small")
    assert s.spec == WSD and (s.peak_lr, s.peak_source) == (0.00293, "measured")
    assert s.evidence == ("BENCHMARKS.md vision/small AdamW: WSD 0.081 at 0.00293 vs warm-up+cosine 0.073 at 0.000734 "
                          "(noise 0.024, 3 seeds, 1000 updates)",)
    assert "+0.008 behind warm-up+cosine, within the noise 0.024" in s.reasons[0]
    assert s.alternatives[0].spec == "warmup(0.05) >> cosine()"


def test_no_measured_peak_says_so() -> None:
    s = suggest("lm", 1000)
    assert (s.peak_lr, s.peak_source, s.min_lr) == (None, "none", None)
    assert s.reasons[2].startswith("no measured peak LR for this setup (your own model): run `lrlab find`")
    assert "lrlab tune" in s.reasons[2]
    assert format_suggestion(s).splitlines()[2] == ("peak LR: not measured for this setup: run `lrlab find` or "
                                                    "`lrlab tune` (see why)")
    base = suggest("lm", 1000, preset="base")
    assert base.peak_lr is None and "no measured peak LR for lm base with adamw" in base.reasons[2]
    adam = suggest("lm", 1000, preset="small", optimizer="adam")  # the table is AdamW's: its peak is not Adam's
    assert adam.peak_lr is None and "the adamw tables stand in" in adam.reasons[0]


@pytest.mark.parametrize(("task", "preset", "optimizer", "peak"), [
    ("lm", "tiny", "adamw", 6e-3), ("lm", "small", "adamw", 5e-3), ("lm", "small", "sgd", 0.4),
    ("lm", "small", "schedulefree", 1e-2), ("vision", "small", "adamw", 2.93e-3), ("vision", "small", "sgd", 0.08),
], ids=lambda x: str(x))
def test_measured_peak_per_preset(task: str, preset: str, optimizer: str, peak: float) -> None:
    s = suggest(task, 1000, preset=preset, optimizer=optimizer)
    assert (s.peak_lr, s.peak_source) == (peak, "measured")
    assert f"peak LR {peak:g}: " in s.reasons[2] and "BENCHMARKS.md" in s.reasons[2]
    assert "measured at 1000 updates" not in s.reasons[2]
    longer = suggest(task, 4000, preset=preset, optimizer=optimizer)
    assert "measured at 1000 updates, you plan 4000" in longer.reasons[2]


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("steps", [10, 999, 123_457])
def test_every_spec_parses_and_binds(task: str, optimizer: str, steps: int) -> None:
    s = suggest(task, steps, optimizer=optimizer)
    sched = lrlab.parse(s.spec, total=steps)
    assert str(sched) == s.bound
    assert 1 <= s.warmup_steps < steps
    assert sched(0) == 0.0 and sched(s.warmup_steps) == 1.0
    assert "cosine(floor=0.1)" not in s.spec  # the classic is an alternative, not the suggestion
    values = sched.values(list(range(steps + 1)))
    assert values.max() == 1.0 and values.min() == 0.0
    assert values[-1] == (1.0 if optimizer == "schedulefree" and task != "finetune" else 0.0)


def test_beta2_sets_the_adam_warmup_cap() -> None:
    s = suggest("lm", 100_000, beta2=0.95)
    assert (s.warmup_steps, s.spec) == (40, "wsd(warmup=40, decay=0.2)")
    assert suggest("lm", 100_000).spec == "wsd(warmup=2000, decay=0.2)"
    assert suggest("lm", 100_000, optimizer="sgd").spec == WSD  # no cap for SGD
    assert suggest("lm", 100_000).alternatives[1].spec == "warmup(2000) >> cosine(floor=0.1)"


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"task": "audio", "steps": 100}, "task must be one of lm, vision, finetune; got 'audio'"),
    ({"task": "lm", "steps": 5}, "steps must be a whole number >= 10"),
    ({"task": "lm", "steps": 100, "optimizer": "lion"}, "optimizer must be one of adamw, adam, sgd"),
    ({"task": "lm", "steps": 100, "preset": "huge"}, "preset must be one of tiny, small, base; got 'huge'"),
    ({"task": "lm", "steps": 100, "beta2": 1.0}, "beta2 must be in (0, 1)"),
    ({"task": "finetune", "steps": 100, "find": True}, "--find runs the range test on a built-in task"),
], ids=["task", "steps", "optimizer", "preset", "beta2", "finetune-find"])
def test_errors(kwargs: dict[str, object], needle: str) -> None:
    with pytest.raises(LrlabError) as e:
        suggest(**kwargs)  # type: ignore[arg-type]
    assert needle in str(e.value)


def test_format_suggestion() -> None:
    text = format_suggestion(suggest("lm", 1000, preset="small"))
    assert text.splitlines()[:3] == ["schedule: wsd(warmup=0.05, decay=0.2)",
                                     "  bound to 1000 updates: warmup(50) >> constant(total=750) >> cooldown(200)",
                                     "peak LR: 0.005 (measured); final LR: 0"]


def test_finetune_says_it_is_not_measured() -> None:
    s = suggest("finetune", 1000)
    assert (s.spec, s.bound, s.evidence) == ("warmup(0.06) >> linear()", "warmup(60) >> linear(940)", ())
    assert "lrlab has not measured fine-tuning" in s.reasons[0]


@pytest.mark.slow
def test_find_measures_the_peak() -> None:
    s = suggest("lm", 1000, find=True, find_iters=120)
    assert s.peak_source == "range test" and s.range_test is not None
    assert s.peak_lr == s.range_test["peak"]["lr"]
    assert [x["rule"] for x in s.range_test["suggestions"]] == ["steepest", "valley", "minimum/10"]
    assert 1e-4 < s.peak_lr < 0.1
    assert "the LR range test on the built-in lm task (tiny" in s.reasons[2]


# ------------------------------------------------------------------------------------------------ CLI


def test_cli_suggest_json(capsys: pytest.CaptureFixture[str]) -> None:
    from lrlab.cli import main

    assert main(["suggest", "--task", "vision", "--steps", "2000", "--optimizer", "sgd", "--preset", "small",
                 "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["spec"] == WSD and doc["peak_lr"] == 0.08 and doc["warmup_steps"] == 100
    assert doc["peak_source"] == "measured" and doc["evidence"][0].startswith("BENCHMARKS.md vision/small SGD: WSD")


def test_cli_suggest_text_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    from lrlab.cli import main

    assert main(["suggest", "--task", "lm", "--steps", "1000"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("schedule: wsd(warmup=0.05, decay=0.2)\n")
    assert "BENCHMARKS.md lm/small AdamW: WSD 1.465" in out and "no measured peak LR for this setup" in out
    assert main(["suggest", "--task", "speech", "--steps", "1000"]) == 2  # a usage error, when it is read
    assert "'speech' is not one of lm, vision, finetune" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_suggest_find_json_and_text(capsys: pytest.CaptureFixture[str]) -> None:
    from lrlab.cli import main

    assert main(["suggest", "--task", "lm", "--steps", "1000", "--find", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["peak_source"] == "range test" and doc["spec"] == WSD
    rt = doc["range_test"]
    assert rt["preset"] == "tiny" and rt["n_updates"] <= 300 and rt["peak"]["rule"] == "peak"
    assert doc["peak_lr"] == rt["peak"]["lr"] and doc["min_lr"] == 0.0
    assert main(["suggest", "--task", "lm", "--steps", "1000", "--find"]) == 0  # same seed: same numbers
    out = capsys.readouterr().out
    assert f"peak LR: {doc['peak_lr']:.3g} (range test)" in out
    assert main(["suggest", "--task", "finetune", "--steps", "1000", "--find"]) == 2
    assert "error: --find runs the range test on a built-in task" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_find(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lrlab.cli import main

    png = tmp_path / "find.png"
    assert main(["find", "--task", "lm", "--num-iter", "120", "--start-lr", "1e-5", "--out", str(png), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [s["rule"] for s in doc["suggestions"]] == ["steepest", "valley", "minimum/10"]
    assert doc["peak"]["rule"] == "peak" and 1e-4 < doc["peak"]["lr"] < 0.1
    assert doc["result"]["lrs"][0] == pytest.approx(1e-5, rel=1e-12)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["find", "--task", "lm", "--num-iter", "120", "--start-lr", "1e-5"]) == 0
    out = capsys.readouterr().out
    assert "steepest" in out and "peak LR for a full run with warm-up" in out
    assert main(["find", "--task", "nope"]) == 2  # a usage error, when it is read
    assert "'nope' is not a task" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ width


def test_format_suggestion_wraps_to_the_width() -> None:
    s = suggest("lm", 1000)
    text = format_suggestion(s)  # 80 columns by default
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "\n    warm-up+linear 1.917 at 0.006" in text  # a list item continues under its text
    assert "  - warmup(0.05) >> linear(): BENCHMARKS.md" in text  # the spec starts its line whole
    narrow = format_suggestion(s, width=50)
    assert max(len(line) for line in narrow.splitlines()) <= 50
    flat = format_suggestion(s, width=None)
    assert f"  - {s.reasons[2]}" in flat.splitlines() and len(s.reasons[2]) > 300


@pytest.mark.parametrize("columns", ["80", None], ids=["COLUMNS=80", "piped"])
def test_cli_suggest_wraps_when_piped(columns: str | None) -> None:
    """Piped (no terminal), `lrlab suggest` writes at most 80 columns, COLUMNS set or not; --json stays one
    value per line (unwrapped)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    if columns is not None:
        env["COLUMNS"] = columns
    cmd = [sys.executable, "-m", "lrlab.cli", "suggest", "--task", "lm", "--steps", "1000"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "lrlab measured\n    best peaks only" in out
    doc = json.loads(subprocess.run([*cmd, "--json"], capture_output=True, text=True, env=env, check=True).stdout)
    assert doc["reasons"][2].startswith("no measured peak LR for this setup") and "\n" not in doc["reasons"][2]
