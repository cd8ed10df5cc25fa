"""`lrlab compare`, `lrlab report` and `lrlab train` end to end through the CLI: artefacts, the ranked table,
errors as one line with exit 2, and Ctrl-C: exit 130 with what finished kept and reported."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lrlab.cli import main

TINY = ["--steps", "40", "--schedules", "constant(); cosine()", "--lr-grid", "2", "--eval-every", "20",
        "--eval-batches", "2", "--checkpoint-every", "10", "--workers", "2"]


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
def test_compare_then_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cmp"
    code, text, err = run(["compare", *TINY, "--out", str(out)], capsys)
    assert code == 0, err
    doc = json.loads((out / "results.json").read_text())
    # 2 schedules x 2 LRs; with two LRs each best is at an edge, so the grid is extended past it; then both are
    # re-run with seed 1 at their best LR, the closer call of the two at its runner-up too (and extended again if
    # that moved a best to an edge)
    phases = "".join(t["phase"][0] for t in doc["trials"])  # g(rid), e(xtend), c(onfirm), in the order run
    assert doc["status"] == "complete" and re.fullmatch(r"g{4}e{2,4}c{3}e*", phases), phases
    # --device auto on this CPU machine: two CPU workers, and every run records where it trained
    assert doc["execution"]["device"] == "cpu" and doc["execution"]["devices"] == ["cpu", "cpu"]
    assert {t["result"]["env"]["device"] for t in doc["trials"]} == {"cpu"}
    for name in ("report.md", "report.html", "lr_curves.png", "val_loss.png", "loss_curves.png", "sensitivity.png",
                 "gap_to_winner.png"):
        assert (out / name).stat().st_size > 1000, name
    assert "ranked at each schedule's best peak LR" in text and "Winner: " in text
    assert "Noise: seeds are paired" in text  # measured by the confirmation seed
    md = (out / "report.md").read_text()
    assert md.count("\n| 1 | ") == 1 and md.count("\n| 2 | ") == 1
    # re-render from results.json alone
    for name in ("report.md", "report.html", "sensitivity.png"):
        (out / name).unlink()
    code, text2, _ = run(["report", str(out)], capsys)
    assert code == 0 and (out / "report.md").read_text() == md and (out / "sensitivity.png").exists()
    assert "Winner: " in text2
    # the folder holds a comparison: a second compare into it is refused, resume has nothing left to do
    code, _, err = run(["compare", *TINY, "--out", str(out)], capsys)
    assert code == 2 and "already holds a comparison; use --resume" in err
    code, text3, _ = run(["compare", "--resume", str(out)], capsys)
    assert code == 0 and text3.count("(finished earlier)") == len(doc["trials"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["compare", "--schedules", "constant(); cosin()"], "schedule 'cosin()': "),
        (["compare", "--lr", "fast"], "--lr must be a number, NAME=NUMBER pairs or 'find'"),
        (["compare", "--lr", "sgd=0.1"], "lr names optimizer 'sgd', which is not compared; optimizers: adamw"),
        (["compare", "--steps", "3"], "steps must be a whole number >= 10, got 3"),
        (["compare", "--resume", "nowhere"], "no compare.json there"),
        (["compare", "--resume", "x", "--steps", "50"], "--resume takes its settings from DIR/compare.json; drop "
                                                        "--steps"),
        (["report", "nowhere"], "no results.json in 'nowhere'"),
        (["train", "--schedule", "warmup(20) >> cosine()", "--steps", "10"], "leaving nothing for cosine()"),
        (["train", "--lr", "-1"], "lr must be > 0, got -1.0"),
    ],
    ids=["spec", "lr", "lr-optimizer", "steps", "resume-missing", "resume-flags", "report-missing", "train-spec",
         "train-lr"],  # a bad --optimizers or --backend is a usage error: tests/test_cli.py
)
def test_bad_input_is_one_line_exit_2(args: list[str], message: str, capsys: pytest.CaptureFixture[str],
                                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run(args, capsys)
    assert code == 2, out + err
    assert err.startswith("error: ") and message in err and "Traceback" not in out + err
    assert "lrlab compare →" not in out  # no folder is named before the input is accepted


@pytest.mark.slow
def test_train_writes_the_same_artefacts_with_the_monitor(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "one"
    code, text, err = run(["train", "--schedule", "warmup(0.1) >> cosine()", "--steps", "40", "--eval-every", "10",
                           "--out", str(out)], capsys)
    assert code == 0, err
    doc = json.loads((out / "results.json").read_text())
    (t,) = doc["trials"]
    assert t["schedule"] == "warmup(0.1) >> cosine()" and len(t["result"]["train_loss"]) == 40
    assert t["result"]["lr"][0] == 0.0 and t["result"]["lr"][4] == pytest.approx(1e-2)
    assert t["result"]["eval_steps"] == [0, 10, 20, 30, 40]
    for name in ("report.md", "report.html", "lr_curves.png", "val_loss.png", "loss_curves.png"):
        assert (out / name).is_file(), name
    assert not (out / "sensitivity.png").exists()  # one LR, one run: nothing to compare
    final = t["result"]["final_val_loss"]
    flat = " ".join(text.split())  # rich wraps long lines
    assert f"warmup(0.1) >> cosine() at peak LR 0.01 on task lm, 40 updates: final val loss {final:.3f}" in flat
    # captured output is no terminal: plain progress lines instead of bars (the first update prints at once)
    assert "progress: 1/40 updates (2 %) · elapsed 0 s" in text
    # the Monitor's log: one record per update and per evaluation
    records = [json.loads(line) for line in (out / "monitor" / "monitor.jsonl").read_text().splitlines()]
    assert len([r for r in records if r.get("type") == "step"]) == 40
    assert not (out / "ckpt").exists()


@pytest.mark.slow
def test_ctrl_c_keeps_finished_runs_reports_them_and_exits_130(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    args = [sys.executable, "-m", "lrlab.cli", "compare", "--steps", "100", "--schedules",
            "constant(); cosine(); warmup(0.1) >> cosine()", "--lr-grid", "2", "--eval-every", "50",
            "--eval-batches", "2", "--checkpoint-every", "20", "--workers", "2", "--confirm", "0", "--no-plots",
            "--out", str(out)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (list((out / "runs").glob("*.json")) if (out / "runs").is_dir() else []):
            assert proc.poll() is None and time.monotonic() < deadline, "no run finished"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground group
        stdout, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, stdout
    doc = json.loads((out / "results.json").read_text())
    finished = [t for t in doc["trials"] if t["result"] is not None]
    assert doc["status"] == "interrupted" and 1 <= len(finished) < 6
    assert "interrupted: " in stdout and f"--resume {out}" in stdout
    md = (out / "report.md").read_text()
    assert f"interrupted: {len(finished)} of 6 planned runs finished" in md
    # the stopped runs left checkpoints; resume finishes the rest
    assert main(["compare", "--resume", str(out), "--no-plots"]) == 0
    doc = json.loads((out / "results.json").read_text())
    assert doc["status"] == "complete" and all(t["result"] is not None for t in doc["trials"])
    assert [t["id"] for t in finished] == [t["id"] for t in doc["trials"] if t["id"] in {f["id"] for f in finished}]


def test_help_shows_the_compare_config_defaults() -> None:
    import re
    import typing

    from lrlab.bench import cli_compare
    from lrlab.bench.design import CompareConfig

    defaults = CompareConfig()
    checked = set()
    for name, hint in typing.get_type_hints(cli_compare.compare, include_extras=True).items():
        field = cli_compare._FIELD_OF.get(name, name)
        if not hasattr(defaults, field) or not hasattr(hint, "__metadata__"):
            continue
        # help text is rich markup: the bracket is escaped so that rich shows it
        shown = re.search(r"\\\[default: ([^\]]*)\]$", hint.__metadata__[0].help or "")
        value = getattr(defaults, field)
        if shown is None or value is None or name in ("schedules", "lr"):
            continue
        expected = ("branch" if value else "no-branch") if isinstance(value, bool) else (
            ",".join(value) if isinstance(value, tuple) else str(value))
        assert shown.group(1) == expected, name
        checked.add(name)
    assert {"steps", "lr_grid_factor", "lr_grid", "seeds", "confirm", "checkpoint_every", "eval_every",
            "branch", "task", "preset", "optimizers"} <= checked


def test_help_text_renders_the_defaults(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    code, out, _ = run(["compare", "--help"], capsys)
    lines = {line.split()[1]: line for line in out.splitlines() if line.startswith("│ --")}
    assert code == 0 and "[default: 1000]" in lines["--steps"] and "[default: 2.0]" in lines["--lr-grid-factor"]
    assert "schedulefree gets 2x it" in lines["--lr"]


@pytest.mark.slow
def test_train_under_torchrun_uses_ddp_and_matches_one_process(tmp_path: Path) -> None:
    import socket

    import numpy as np

    from lrlab.bench.train import TrainConfig, train

    out = tmp_path / "ddp"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--nnodes=1",
           "--master_addr=127.0.0.1", f"--master_port={port}", "-m", "lrlab.cli", "train", "--task", "lm",
           "--steps", "20", "--eval-every", "10", "--checkpoint-every", "5", "--no-plots", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert proc.stdout.count("lrlab train →") == 1  # rank 0 alone reports and writes
    doc = json.loads((out / "results.json").read_text())
    (t,) = doc["trials"]
    r = t["result"]
    assert doc["execution"]["processes"] == 2 and r["env"]["processes"] == 2
    records = [json.loads(line) for line in (out / "monitor" / "monitor.jsonl").read_text().splitlines()]
    assert len([x for x in records if x.get("type") == "step"]) == 20  # one Monitor, not one per rank
    assert sorted(p.name for p in out.iterdir()) == ["monitor", "report.html", "report.md", "results.json"]
    # the same run in one process: same LRs, the same losses up to the order of the gradient reductions
    import torch

    torch.set_num_threads(1)
    one = train(TrainConfig(task="lm", steps=20, eval_every=10, lr=1e-2))
    assert r["lr"] == one.lr and r["eval_steps"] == one.eval_steps == [0, 10, 20]
    assert r["train_loss"][0] == pytest.approx(one.train_loss[0], rel=1e-6)  # same weights, same batch
    # the two reduction orders agree to 1e-3 over the first half; after that, training amplifies the rounding
    # differences at a rate that depends on the CPU's kernels (AMD and Intel hosts differ): closeness only
    np.testing.assert_allclose(r["train_loss"][:10], one.train_loss[:10], rtol=1e-3)
    np.testing.assert_allclose(r["train_loss"], one.train_loss, rtol=5e-2)
    np.testing.assert_allclose(r["val_loss"], one.val_loss, rtol=5e-2)
    # but not bit for bit: each rank took half of every batch (had each used the whole batch, DDP's average of two
    # equal gradients would reproduce the one-process run exactly)
    assert r["train_loss"] != one.train_loss


def test_piped_progress_prints_plain_lines_on_a_timer() -> None:
    import io

    from rich.console import Console

    from lrlab.bench.cli_compare import ProgressView
    from lrlab.bench.events import Event

    now = [100.0]
    buf = io.StringIO()
    view = ProgressView(Console(file=buf, width=80), every_s=10.0, clock=lambda: now[0])
    assert not view.live  # a file is no terminal: no bars (they would print nothing until the end)
    with view:
        view(Event(kind="phase", total=2000, jobs=2))
        view(Event(kind="start", job="a", label="constant() · lr 0.01 · seed 0", total=1000))
        view(Event(kind="start", job="b", label="cosine() · lr 0.01 · seed 0", total=1000))
        view(Event(kind="step", job="a", step=10, total=1000))  # the first update prints at once
        for t in range(1, 40):  # then one line per 10 s of the clock
            now[0] = 100.0 + t
            view(Event(kind="step", job="a", step=10 + 20 * t, total=1000))
            view(Event(kind="step", job="b", step=20 * t, total=1000))
        view(Event(kind="finish", job="a", label="constant() · lr 0.01 · seed 0", step=1000, total=1000, loss=1.5))
        view(Event(kind="skip", job="c", label="cosine() · lr 0.02 · seed 0", loss=1.25))
    lines = buf.getvalue().splitlines()
    progress = [line for line in lines if line.startswith("progress: ")]
    assert progress[0] == "progress: 10/2,000 updates (0 %) · 2 runs in flight · elapsed 0 s · ETA –"
    # at t = 10 s: a at 210, b at 180 (its step of that second comes after the line)
    assert progress[1] == "progress: 390/2,000 updates (20 %) · 2 runs in flight · elapsed 10 s · ETA 41 s"
    assert len(progress) == 4  # t = 0, 10, 20, 30
    assert lines[-2:] == ["  done  constant() · lr 0.01 · seed 0: final val loss 1.5000",
                          "  kept  cosine() · lr 0.02 · seed 0: final val loss 1.2500 (finished earlier)"]
