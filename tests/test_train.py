"""The training loop: determinism, learning on real data, bitwise resume (after a stop, an exception and kill -9),
branching from a shared LR prefix, schedule-free's train/eval switching, divergence, hooks and bad configs."""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import lrlab
from lrlab.bench.tasks import get_task
from lrlab.bench.train import CHECKPOINT, RunResult, TrainConfig, train
from lrlab.errors import LrlabError


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    # bitwise comparisons need a fixed thread count; one thread is also the fastest for these tiny models
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def numbers(r: RunResult) -> dict[str, Any]:
    """Everything in a result that training decides (not timings, not the resume marker)."""
    d = r.to_dict()
    for key in ("wall_time_s", "tokens_per_s", "resumed_from", "env"):
        d.pop(key)
    return d


def weights(out_dir: Path) -> dict[str, torch.Tensor]:
    state = torch.load(out_dir / CHECKPOINT, weights_only=True)
    return {**{f"model.{k}": v for k, v in state["model"].items()},
            **{f"opt.{k}.{n}": v for k, s in state["optimizer"]["state"].items() for n, v in s.items()
               if isinstance(v, torch.Tensor)}}


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys() and len(wa) > 10
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


def stop_after(n: int) -> tuple[Any, Any]:
    """(on_step, should_stop) that stop the run once ``n`` updates are done."""
    done = {"n": 0}

    def on_step(step: int, **_: Any) -> None:
        done["n"] = step + 1

    def should_stop() -> bool:
        return done["n"] >= n

    return on_step, should_stop


# ------------------------------------------------------------------------------------ learning + determinism


def test_same_seed_same_numbers_different_seed_different() -> None:
    config = TrainConfig(steps=20, eval_every=10, eval_batches=2)
    a, b = train(config), train(config)
    assert numbers(a) == numbers(b)
    c = train(TrainConfig(steps=20, eval_every=10, eval_batches=2, seed=1))
    assert c.val_loss[0] != a.val_loss[0]  # other initial weights
    assert c.train_loss[5] != a.train_loss[5]


def test_lm_learns_bytes_well_below_uniform() -> None:
    r = train(TrainConfig(task="lm", steps=150, eval_every=50, lr=1e-2))
    uniform = math.log(256)
    assert r.eval_steps == [0, 50, 100, 150]
    assert r.val_loss[0] == pytest.approx(uniform, abs=0.15)  # near-uniform predictions at initialisation
    assert r.final_val_loss < uniform - 2.3  # < 3.25 nats/byte
    assert r.val_loss == sorted(r.val_loss, reverse=True)
    assert r.val_metrics["bits_per_byte"] == pytest.approx([v / math.log(2) for v in r.val_loss], rel=1e-12)
    assert r.n_params == 34_688 and len(r.train_loss) == len(r.lr) == 150
    assert r.tokens_per_s > 0 and r.wall_time_s > 0 and not r.diverged and r.resumed_from is None
    assert r.env["python"] in r.env["task"] and r.env["threads"] == 1
    assert r.env["data"]["corpus_bytes"] == get_task("lm").info["corpus_bytes"]


def test_vision_accuracy_rises_well_above_chance() -> None:
    r = train(TrainConfig(task="vision", steps=100, eval_every=50, lr=3e-3))
    assert r.val_metrics["accuracy"][0] < 0.2  # chance is 0.1
    assert r.val_metrics["accuracy"][-1] > 0.35
    assert r.final_val_loss < r.val_loss[0] - 0.5


def test_lr_follows_the_schedule_exactly() -> None:
    spec = "warmup(0.1) >> cosine(floor=0.1)"
    r = train(TrainConfig(schedule=spec, lr=3e-3, steps=30, eval_every=30, eval_batches=1))
    factors = lrlab.parse(spec, total=30).values(np.arange(30.0))
    assert r.lr == [3e-3 * f for f in factors.tolist()]
    assert r.lr[0] == 0.0 and r.lr[3] == 3e-3


def test_text_file_task_trains(tmp_path: Path) -> None:
    path = tmp_path / "words.txt"
    path.write_text("".join(f"the cat sat on mat number {i % 7}\n" for i in range(400)))
    r = train(TrainConfig(task=f"text:{path}", steps=60, eval_every=30, lr=1e-2))
    assert r.final_val_loss < r.val_loss[0] - 2.0
    assert "words.txt" in r.env["task"]


# ------------------------------------------------------------------------------------------ resume


@pytest.mark.parametrize("optimizer", ["adamw", "schedulefree", "sgd"])
def test_resume_after_stop_is_bitwise_identical(tmp_path: Path, optimizer: str) -> None:
    lr = {"adamw": 1e-2, "schedulefree": 2e-2, "sgd": 0.3}[optimizer]
    config = TrainConfig(optimizer=optimizer, lr=lr, schedule="warmup(0.1) >> cosine()", steps=40, eval_every=10,
                         eval_batches=2, checkpoint_every=15)
    full = train(config, out_dir=tmp_path / "full")
    on_step, should_stop = stop_after(23)
    part = train(config, out_dir=tmp_path / "part", on_step=on_step, should_stop=should_stop)
    assert part.stopped and len(part.train_loss) == 23 and math.isnan(part.final_val_loss)
    assert part.eval_steps == [0, 10, 20]
    assert torch.load(tmp_path / "part" / CHECKPOINT, weights_only=True)["step"] == 23  # saved on stop
    resumed = train(config, out_dir=tmp_path / "part", resume=True)
    assert resumed.resumed_from == 23 and not resumed.stopped
    assert numbers(resumed) == numbers(full)
    assert_same_weights(tmp_path / "part", tmp_path / "full")


def test_resume_after_a_crash_is_bitwise_identical(tmp_path: Path) -> None:
    config = TrainConfig(steps=30, eval_every=10, eval_batches=2, checkpoint_every=10)
    full = train(config, out_dir=tmp_path / "full")

    def crash(step: int, **_: Any) -> None:
        if step == 26:
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated crash"):
        train(config, out_dir=tmp_path / "crash", on_step=crash)
    assert sorted(p.name for p in (tmp_path / "crash").iterdir()) == [CHECKPOINT]
    resumed = train(config, out_dir=tmp_path / "crash", resume=True)
    assert resumed.resumed_from == 20
    assert numbers(resumed) == numbers(full)
    assert_same_weights(tmp_path / "crash", tmp_path / "full")


KILL_SCRIPT = """
import sys, torch
torch.set_num_threads(1)
from lrlab.bench.train import TrainConfig, train
train(TrainConfig(steps=int(sys.argv[2]), eval_every=20, eval_batches=2, checkpoint_every=5), out_dir=sys.argv[1])
"""


@pytest.mark.slow
def test_resume_after_kill_9_is_bitwise_identical(tmp_path: Path) -> None:
    steps = 100
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(out), str(steps)])
    try:
        deadline = time.monotonic() + 120
        while not (out / CHECKPOINT).exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed_at = torch.load(out / CHECKPOINT, weights_only=True)["step"]
    assert 5 <= killed_at < steps
    resumed = train(TrainConfig(steps=steps, eval_every=20, eval_batches=2, checkpoint_every=5), out_dir=out,
                    resume=True)
    assert resumed.resumed_from == killed_at
    full = train(TrainConfig(steps=steps, eval_every=20, eval_batches=2, checkpoint_every=5), out_dir=tmp_path / "full")
    assert numbers(resumed) == numbers(full)
    assert_same_weights(out, tmp_path / "full")


def test_branch_from_a_shared_lr_prefix_equals_a_full_run(tmp_path: Path) -> None:
    # constant() and step(30) give the same LRs for updates 0..29: a step(30) run may resume from constant's
    # checkpoint at update 25, as `lrlab compare` does for shared prefixes
    base = {"steps": 40, "eval_every": 10, "eval_batches": 2}
    on_step, should_stop = stop_after(25)
    train(TrainConfig(schedule="constant()", **base), out_dir=tmp_path / "prefix", on_step=on_step,
          should_stop=should_stop)
    shutil.copytree(tmp_path / "prefix", tmp_path / "branch")
    branched = train(TrainConfig(schedule="step(30)", **base), out_dir=tmp_path / "branch", resume=True)
    full = train(TrainConfig(schedule="step(30)", **base), out_dir=tmp_path / "full")
    assert branched.resumed_from == 25 and branched.config.schedule == "step(30)"
    assert numbers(branched) == numbers(full)
    assert_same_weights(tmp_path / "branch", tmp_path / "full")
    # a schedule whose LRs differ on the updates already done cannot resume from it
    with pytest.raises(LrlabError, match=r"give different LRs at update 0 \(0.01 vs 0.0\)"):
        train(TrainConfig(schedule="warmup(0.1) >> constant()", **base), out_dir=tmp_path / "prefix", resume=True)


def test_resume_refuses_a_different_config_and_an_unasked_overwrite(tmp_path: Path) -> None:
    on_step, should_stop = stop_after(5)
    config = TrainConfig(steps=20, eval_every=10, eval_batches=1)
    train(config, out_dir=tmp_path, on_step=on_step, should_stop=should_stop)
    message = r"different config \(lr: checkpoint 0.01, now 0.02; seed: checkpoint 0, now 1\)"
    with pytest.raises(LrlabError, match=message):
        train(TrainConfig(steps=20, eval_every=10, eval_batches=1, lr=2e-2, seed=1), out_dir=tmp_path, resume=True)
    with pytest.raises(LrlabError, match="already holds a checkpoint; pass resume=True"):
        train(config, out_dir=tmp_path)
    # checkpoint_every changes no number: allowed
    r = train(TrainConfig(steps=20, eval_every=10, eval_batches=1, checkpoint_every=3), out_dir=tmp_path, resume=True)
    assert r.resumed_from == 5 and len(r.train_loss) == 20


@pytest.mark.parametrize(("key", "value"), [("python", "3.10.0"), ("corpus_sha256", "0" * 64)],
                         ids=["python", "corpus"])
def test_resume_refuses_a_checkpoint_from_another_python_or_corpus(tmp_path: Path, key: str, value: str) -> None:
    on_step, should_stop = stop_after(5)
    config = TrainConfig(steps=20, eval_every=10, eval_batches=1)
    train(config, out_dir=tmp_path, on_step=on_step, should_stop=should_stop)
    state = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    assert state["data"] == {"python": platform.python_version(),
                             "corpus_sha256": get_task("lm").info["corpus_sha256"]}
    state["data"][key] = value
    torch.save(state, tmp_path / CHECKPOINT)
    with pytest.raises(LrlabError, match=rf"other data or another Python \({key}: checkpoint '{value}', now "):
        train(config, out_dir=tmp_path, resume=True)


def test_resuming_a_finished_run_returns_it(tmp_path: Path) -> None:
    config = TrainConfig(steps=10, eval_every=5, eval_batches=1)
    first = train(config, out_dir=tmp_path)
    again = train(config, out_dir=tmp_path, resume=True)
    assert again.resumed_from == 10 and numbers(again) == numbers(first)


def test_resume_without_a_checkpoint_starts_fresh(tmp_path: Path) -> None:
    r = train(TrainConfig(steps=5, eval_every=5, eval_batches=1), out_dir=tmp_path / "new", resume=True)
    assert r.resumed_from is None and len(r.train_loss) == 5 and (tmp_path / "new" / CHECKPOINT).exists()


def test_without_save_final_a_finished_run_keeps_its_last_periodic_checkpoint_and_a_stopped_run_saves(
        tmp_path: Path) -> None:
    config = TrainConfig(steps=20, eval_every=10, eval_batches=1, checkpoint_every=10)
    full = train(config, out_dir=tmp_path / "a", save_final=False)
    # no write at update 20 (lrlab compare deletes a finished trial's checkpoint at once); update 10's is there
    assert torch.load(tmp_path / "a" / CHECKPOINT, weights_only=True)["step"] == 10
    # the wall time still covers the whole run (it was once last set by the last save): >= the updates' own time
    assert full.wall_time_s >= 20 * get_task("lm").items_per_batch / full.tokens_per_s
    # and resuming from it still gives the run, bit for bit
    assert numbers(train(config, out_dir=tmp_path / "a", resume=True, save_final=False)) == numbers(full)
    on_step, should_stop = stop_after(15)
    train(config, out_dir=tmp_path / "b", on_step=on_step, should_stop=should_stop, save_final=False)
    assert torch.load(tmp_path / "b" / CHECKPOINT, weights_only=True)["step"] == 15


def test_deterministic_mode_without_its_nan_fill_is_on_only_while_training() -> None:
    import torch.utils.deterministic

    seen = set()

    def on_step(step: int, **_: Any) -> None:
        seen.add((torch.are_deterministic_algorithms_enabled(),
                  torch.utils.deterministic.fill_uninitialized_memory))  # type: ignore[attr-defined]

    before = (torch.are_deterministic_algorithms_enabled(),
              torch.utils.deterministic.fill_uninitialized_memory)  # type: ignore[attr-defined]
    train(TrainConfig(steps=3, eval_every=3, eval_batches=1), on_step=on_step)
    # deterministic kernels, but not the debugging fill of every new tensor with NaN (~2 % of a step)
    assert seen == {(True, False)}
    assert (torch.are_deterministic_algorithms_enabled(),
            torch.utils.deterministic.fill_uninitialized_memory) == before  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------------ schedule-free


def test_schedulefree_evaluates_at_x_without_disturbing_training(tmp_path: Path) -> None:
    spec = "warmup(0.2) >> constant()"
    a = train(TrainConfig(optimizer="schedulefree", lr=2e-2, schedule=spec, steps=30, eval_every=3, eval_batches=2),
              out_dir=tmp_path)
    b = train(TrainConfig(optimizer="schedulefree", lr=2e-2, schedule=spec, steps=30, eval_every=30, eval_batches=2))
    assert a.train_loss == b.train_loss  # evaluating every 3 updates left the trajectory bit for bit the same
    assert a.final_val_loss == b.final_val_loss
    assert a.lr == [2e-2 * f for f in lrlab.parse(spec, total=30).values(np.arange(30.0)).tolist()]
    state = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    assert all(g["train_mode"] for g in state["optimizer"]["param_groups"])  # saved ready to resume
    task = get_task("lm")
    model = task.build_model()
    val = task.val_batches(2)
    model.load_state_dict(state["eval_model"])  # x: what evaluation uses
    assert task.evaluate(model, val)["loss"] == a.final_val_loss
    model.load_state_dict(state["model"])  # y: the training point, a different (worse) model
    assert task.evaluate(model, val)["loss"] != a.final_val_loss


# ----------------------------------------------------------------------------------------- divergence


def test_an_absurd_lr_diverges_without_crashing(tmp_path: Path) -> None:
    r = train(TrainConfig(optimizer="sgd", lr=1e6, grad_clip=None, steps=50, eval_every=10, eval_batches=1),
              out_dir=tmp_path)
    assert r.diverged and r.final_val_loss == math.inf and not r.stopped
    assert len(r.train_loss) < 50 and r.train_loss[-1] == math.inf
    assert all(math.isfinite(v) for v in r.train_loss[:-1])
    assert json.loads(json.dumps(r.to_dict()))["final_val_loss"] == math.inf
    again = train(r.config, out_dir=tmp_path, resume=True)  # the finished (diverged) run comes back as it was
    assert again.diverged and numbers(again) == numbers(r)


# ------------------------------------------------------------------------------------- hooks + results


class RecordingMonitor:
    def __init__(self) -> None:
        self.steps: list[tuple[int, dict[str, Any]]] = []
        self.evals: list[tuple[int, dict[str, Any]]] = []
        self.closed = 0

    def on_step(self, step: int, **kw: Any) -> None:
        self.steps.append((step, kw))

    def on_eval(self, step: int, **kw: Any) -> None:
        self.evals.append((step, kw))

    def close(self) -> None:
        self.closed += 1


def test_monitor_and_progress_hooks() -> None:
    monitor = RecordingMonitor()
    progress: list[tuple[int, int]] = []
    r = train(TrainConfig(steps=12, eval_every=5, eval_batches=1, schedule="cosine()"), monitor=monitor,
              on_step=lambda step, total: progress.append((step, total)))
    assert progress == [(t, 12) for t in range(12)]
    assert [s for s, _ in monitor.steps] == list(range(12))
    assert [kw["loss"] for _, kw in monitor.steps] == r.train_loss
    assert [kw["lrs"] for _, kw in monitor.steps] == [[lr, lr] for lr in r.lr]  # decay and no-decay groups
    assert [kw["tokens"] for _, kw in monitor.steps] == [512 * (t + 1) for t in range(12)]
    assert all(kw["grad_norm"] > 0 for _, kw in monitor.steps)
    assert [s for s, _ in monitor.evals] == r.eval_steps == [0, 5, 10, 12]
    assert [kw["val_loss"] for _, kw in monitor.evals] == r.val_loss
    assert [kw["bits_per_byte"] for _, kw in monitor.evals] == r.val_metrics["bits_per_byte"]
    assert monitor.closed == 1


def test_the_lrlab_monitor_records_the_run_and_its_divergence(tmp_path: Path) -> None:
    from lrlab.monitor import JSONL_FILE, Monitor

    r = train(TrainConfig(steps=8, eval_every=4, eval_batches=1), monitor=Monitor(out_dir=tmp_path / "ok"))
    rows = [json.loads(line) for line in (tmp_path / "ok" / JSONL_FILE).read_text().splitlines()]
    assert [row["step"] for row in rows if row["type"] == "step"] == list(range(8))
    assert [row["val_loss"] for row in rows if row["type"] == "eval"] == r.val_loss
    bad = train(TrainConfig(optimizer="sgd", lr=1e6, grad_clip=None, steps=50, eval_every=10, eval_batches=1),
                monitor=Monitor(out_dir=tmp_path / "bad"))
    rows = [json.loads(line) for line in (tmp_path / "bad" / JSONL_FILE).read_text().splitlines()]
    assert bad.diverged and len([row for row in rows if row["type"] == "step"]) == len(bad.train_loss)


def test_run_result_round_trips_through_json() -> None:
    r = train(TrainConfig(task="vision", steps=6, eval_every=3, eval_batches=1))
    back = RunResult.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back == r
    assert set(r.val_metrics) == {"accuracy"} and len(r.val_metrics["accuracy"]) == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"task": "mnist"}, "task 'mnist' is not supported; choose from lm, vision, text:PATH"),
        ({"preset": "huge"}, "preset 'huge' is not supported; choose from tiny, small, base"),
        ({"optimizer": "lion"}, "optimizer 'lion' is not supported; choose from sgd, adagrad, rmsprop, adam, adamw, "
                                "schedulefree"),
        ({"steps": 0}, "steps must be a whole number >= 1, got 0"),
        ({"lr": -0.1}, "lr must be > 0, got -0.1"),
        ({"lr": math.nan}, "lr must be a finite number, got nan"),
        ({"seed": -2}, "seed must be a whole number >= 0, got -2"),
        ({"batch_size": 0}, "batch_size must be a whole number >= 1, got 0"),
        ({"eval_every": 0}, "eval_every must be a whole number >= 1, got 0"),
        ({"eval_batches": 0}, "eval_batches must be a whole number >= 1, got 0"),
        ({"weight_decay": -1.0}, "weight_decay must be >= 0, got -1.0"),
        ({"grad_clip": 0.0}, "grad_clip must be > 0, got 0.0"),
        ({"checkpoint_every": -1}, "checkpoint_every must be a whole number >= 0, got -1"),
        ({"schedule": "cosin()"}, "schedule 'cosin()': unknown schedule 'cosin'"),
        ({"schedule": "linear(end=-1)", "steps": 10}, "schedule 'linear(end=-1)'"),
    ],
    ids=["task", "preset", "optimizer", "steps", "lr", "lr-nan", "seed", "batch", "eval-every", "eval-batches",
         "weight-decay", "grad-clip", "checkpoint", "schedule", "negative-factor"],
)
def test_bad_config_names_the_field(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(LrlabError) as e:
        TrainConfig(**kwargs)
    assert message in str(e.value)


@pytest.mark.parametrize(("optimizer", "decay"), [("adamw", 0.1), ("schedulefree", 0.1), ("sgd", 5e-4),
                                                  ("adam", 0.0), ("adagrad", 0.0), ("rmsprop", 0.0)])
def test_weight_decay_defaults_to_each_optimizers_usual_value(optimizer: str, decay: float) -> None:
    from lrlab.bench.train import TrainConfig, build_optimizer

    config = TrainConfig(optimizer=optimizer, steps=2)
    assert config.weight_decay == decay
    assert TrainConfig(optimizer=optimizer, steps=2, weight_decay=0.01).weight_decay == 0.01
    model = torch.nn.Linear(4, 4)
    opt = build_optimizer(optimizer, [{"params": list(model.parameters()), "weight_decay": config.weight_decay}], 0.1)
    assert opt.param_groups[0]["weight_decay"] == decay


def test_sgd_trains_the_vit_with_its_default_weight_decay() -> None:
    """An AdamW-style 0.1 as SGD's L2 keeps the ViT at chance (ln 10 = 2.303); SGD's own 5e-4 lets it learn."""
    from lrlab.bench.train import TrainConfig, train

    torch.set_num_threads(1)
    kw = {"task": "vision", "preset": "small", "optimizer": "sgd", "lr": 0.03, "schedule": "warmup(0.05) >> cosine()",
          "steps": 300, "eval_every": 300, "eval_batches": 2}
    assert train(TrainConfig(**kw)).final_val_loss < 2.0  # measured 1.77
    assert train(TrainConfig(**kw, weight_decay=0.1)).final_val_loss > 2.25  # measured 2.31
