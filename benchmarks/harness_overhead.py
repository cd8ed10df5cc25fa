"""Harness overhead: the per-update cost of `lrlab.bench.train.train` beyond a plain hand-written PyTorch loop.

Target (issue: compare): tokens/s of the training loop within 2 % of a plain loop of the same model. Timing the two
loops end to end cannot show 2 % on a shared 2-core VM (run-to-run noise is +-10 %), so this script pairs the real
loop with plain updates inside one run, and times the harness's other costs apart:

1. Per-update bookkeeping, in the real loop. `train` itself runs, as ``lrlab compare``'s
   `lrlab.bench.jobs.run_job` calls it: its ``on_step`` and ``should_stop`` are `lrlab.bench.jobs.worker_hooks`
   over a real spawn-context ``multiprocessing`` Queue and Event (as `lrlab.bench.jobs.LocalBackend` creates), with
   the real ``BlockCache(lrlab.parse(spec, total=--total))``, per ``--schedules`` spec. A timing wrapper around
   ``on_step`` measures each update from the end of the previous one, so every line `train` runs per update is in
   it, whatever `train` becomes. After every ``--block`` updates the wrapper runs ``--block`` plain updates (batch,
   forward, ``loss.item()``, backward, foreach gradient clipping, fused AdamW step, ``zero_grad``) on a model of the
   same shape, outside that timing and under the same deterministic mode, so the two are paired round by round;
   the bookkeeping is the median over rounds of (train update - plain update). It is a difference of two timings,
   so its noise is printed (quartiles over rounds); the first block (warm-up, the schedule's first block fill) is
   left out.
2. Deterministic mode: `train` turns on ``torch.use_deterministic_algorithms``, which changes the torch work itself,
   with ``torch.utils.deterministic.fill_uninitialized_memory`` off (torch's default fills every ``torch.empty`` with
   NaN: ~2 %), so this is timed on the plain update: ``--paired`` updates per mode, the modes alternating update by
   update (order rotating) so drift hits them alike; the cost is the median over rounds of an update's time over
   the mode-off update's of the same round (+-1 % on a loaded 2-core VM at 600 rounds). The mode with torch's
   default fill is timed too, to show what turning it off saves.
3. Checkpoints: `lrlab.bench.train._save_checkpoint` (atomic, fsynced; what ``save()`` runs) on the real model and
   optimizer with end-of-run curves, ``--saves`` times into a temporary folder (``--ckpt-dir``, default the
   system's; use the disk ``lrlab compare`` writes to), median, times the checkpoints a ``--total``-update trial
   writes — one every ``--checkpoint-every`` updates (default `lrlab.bench.design.CompareConfig`'s), none at its
   end (``save_final=False``: a finished trial's checkpoint is deleted) — over its updates.
4. Per-run fixed cost (config validation, schedule parse and first block fill, env and data facts, the result and
   its dict), amortised over ``--total`` updates; and the harness's part of each evaluation (everything in
   `train`'s ``evaluate`` but ``task.evaluate``), amortised over ``--eval-every``.

Verdict: (1) median paired difference + (2) + (3) + (4), as a share of the step (the median plain update), against
2 %. Evaluation itself (both loops run it on the same batches) is a config choice, not harness
overhead: its cost per ``--eval-every`` is printed apart. A secondary, noisy cross-check times `train` end to end
against `plain_loop` (``--e2e-rounds``, 0: skip), and checks that both give the same final validation loss to the
last bit, so the plain loop is the same computation.

    .venv/bin/python benchmarks/harness_overhead.py [--blocks 12] [--block 50] [--threads 1] [--e2e-rounds 3]
    .venv/bin/python benchmarks/harness_overhead.py --blocks 2 --block 10 --paired 20 --saves 2 --e2e-rounds 0  # smoke
"""

from __future__ import annotations

import argparse
import contextlib
import math
import multiprocessing as mp
import queue as queue_mod
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

import lrlab
from lrlab.bench.design import CompareConfig
from lrlab.bench.jobs import worker_hooks
from lrlab.bench.model import param_groups
from lrlab.bench.tasks import data_fingerprint, get_task
from lrlab.bench.train import (
    CHECKPOINT,
    TrainConfig,
    _Curves,
    _env,
    _eval_point,
    _process_group,
    _result,
    _save_checkpoint,
    build_optimizer,
    train,
)
from lrlab.schedule import BlockCache

TARGET = 0.02  # the budget: the harness costs <= 2 % of a plain loop's tokens/s


def plain_loop(config: TrainConfig) -> float:
    """The loop a user would write by hand. Returns the final validation loss (end-to-end cross-check)."""
    task = get_task(config.task, config.preset, config.seed)
    torch.manual_seed(config.seed)
    model = task.build_model()
    assert config.weight_decay is not None  # TrainConfig fills in the optimizer's default
    optimizer = build_optimizer(config.optimizer, param_groups(model, config.weight_decay), config.lr)
    val = task.val_batches(config.eval_batches)
    task.evaluate(model, val)
    for step in range(config.steps):
        x, y = task.get_batch(step)
        loss = F.cross_entropy(model(x).flatten(0, -2), y.flatten())
        loss.item()  # the loss is logged, as any loop does
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, foreach=True)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return task.evaluate(model, val)["loss"]


def train_loss(config: TrainConfig, out_dir: Path | None = None) -> float:
    """`train`'s final validation loss (end-to-end cross-check)."""
    return train(config, out_dir=out_dir).final_val_loss


def median_time(fn: Callable[[], object], n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def end_to_end(args: argparse.Namespace, unit: str, items_per_batch: int) -> None:
    """The old method, kept as a cross-check: `train` vs `plain_loop`, end to end, best of rounds (noisy)."""
    steps = args.e2e_steps
    config = TrainConfig(task="lm", preset="tiny", steps=steps, eval_every=steps, eval_batches=1,
                         schedule="constant()", optimizer="adamw", lr=1e-2)
    saving = TrainConfig(**{**config.to_dict(), "checkpoint_every": args.checkpoint_every})
    train(TrainConfig(**{**config.to_dict(), "steps": 2}))  # warm-up: first-call imports and allocations
    kinds = ("plain", "train", f"train + checkpoints every {args.checkpoint_every}")
    times: dict[str, list[float]] = {k: [] for k in kinds}
    finals: set[float] = set()
    with tempfile.TemporaryDirectory(dir=args.ckpt_dir) as tmp:
        for i in range(args.e2e_rounds):
            folder = Path(tmp) / f"r{i}"  # a fresh folder: train() refuses to overwrite a checkpoint
            fns: list[Callable[[], float]] = [partial(plain_loop, config), partial(train_loss, config),
                                              partial(train_loss, saving, folder)]
            order = list(zip(kinds, fns))
            for kind, fn in order if i % 2 == 0 else order[::-1]:  # alternate which loop runs first
                t0 = time.perf_counter()
                finals.add(fn())
                times[kind].append(time.perf_counter() - t0)
    if len(finals) != 1:
        raise SystemExit(f"the loops disagree: final validation losses {sorted(finals)}")
    best_plain = min(times["plain"])
    print(f"cross-check, end to end (noisy: +-10 % run to run on a shared VM; not the verdict): {steps} updates, "
          f"best of {args.e2e_rounds} alternating rounds, same final validation loss in all ({finals.pop():.6f})")
    for kind in kinds:
        best = min(times[kind])
        print(f"  {kind:32s} {steps * items_per_batch / best:9,.0f} {unit}/s {1e3 * best / steps:6.2f} ms/update"
              + ("" if kind == "plain" else f"  {100 * (best / best_plain - 1):+.1f} % time vs plain"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--blocks", type=int, default=12, help="blocks of each kind (interleaved)")
    ap.add_argument("--block", type=int, default=50, help="updates per block")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (compare workers use 1 each)")
    ap.add_argument("--schedules", nargs="+", default=["warmup(0.05) >> cosine()", "wsd(warmup=0.05, decay=0.2)"],
                    help="lrlab specs for the harness's schedule")
    ap.add_argument("--total", type=int, default=CompareConfig().steps, help="run length the specs are bound to")
    ap.add_argument("--eval-every", type=int, default=CompareConfig().eval_every)
    ap.add_argument("--eval-batches", type=int, default=CompareConfig().eval_batches)
    ap.add_argument("--checkpoint-every", type=int, default=CompareConfig().checkpoint_every,
                    help="checkpoint period (default: lrlab compare's)")
    ap.add_argument("--paired", type=int, default=600, help="rounds of the deterministic-mode timing")
    ap.add_argument("--saves", type=int, default=9, help="timed checkpoint writes (median)")
    ap.add_argument("--ckpt-dir", default=None, help="folder for the temporary checkpoints (default: the system's)")
    ap.add_argument("--e2e-rounds", type=int, default=3, help="rounds of the end-to-end cross-check (0: skip)")
    ap.add_argument("--e2e-steps", type=int, default=300, help="updates per end-to-end run")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    det_before = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.manual_seed(0)
    task = get_task("lm", "tiny", 0)
    unit = "tokens" if task.kind == "lm" else "images"
    model = task.build_model()
    optimizer = build_optimizer("adamw", param_groups(model, 0.1), 1e-2)
    params = list(model.parameters())
    n_params = sum(p.numel() for p in params)
    world, rank = 1, 0
    monitor = None
    schedule_free = False
    net = model
    ctx = mp.get_context("spawn")  # what LocalBackend uses
    progress, stop_event = ctx.Queue(), ctx.Event()
    step_data = 0  # the batch clock of the plain updates (all kinds draw fresh batches)

    def plain_update() -> None:
        nonlocal step_data
        x, y = task.get_batch(step_data)
        loss = F.cross_entropy(net(x).flatten(0, -2), y.flatten())
        loss.item()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=True)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step_data += 1

    def in_loop(spec: str) -> tuple[list[float], list[float]]:
        """The real `train()` as ``lrlab compare``'s `run_job` calls it (its `worker_hooks` over a spawn-context
        Queue and Event, ``save_final=False``), timed through ``on_step``: an update's time runs from the return of
        the previous ``on_step`` to the end of this one, so it holds everything `train` does per update, the torch
        work included. After every ``--block`` updates, ``on_step`` runs a block of plain updates (outside that
        timing, under the same deterministic mode). Returns per round (train update, plain update) mean times; the
        first block warms up and is left out."""
        stop_at = (args.blocks + 1) * args.block
        real_on_step, real_should_stop = worker_hooks(progress, stop_event, "job", 0, stop_at)
        train_times: list[float] = []
        plain_times: list[float] = []
        clock = {"resume": time.perf_counter(), "sum": 0.0}

        def on_step(step: int, **kw: Any) -> None:
            real_on_step(step, **kw)
            clock["sum"] += time.perf_counter() - clock["resume"]
            if (step + 1) % args.block == 0:
                if step + 1 > args.block:
                    train_times.append(clock["sum"] / args.block)
                    t0 = time.perf_counter()
                    for _ in range(args.block):
                        plain_update()
                    plain_times.append((time.perf_counter() - t0) / args.block)
                drain()
                clock["sum"] = 0.0
            clock["resume"] = time.perf_counter()

        config = TrainConfig(task="lm", preset="tiny", schedule=spec, optimizer="adamw", lr=1e-2, steps=args.total,
                             eval_every=args.total, eval_batches=args.eval_batches, checkpoint_every=0)
        train(config, on_step=on_step, should_stop=real_should_stop, save_final=False)
        return train_times, plain_times

    if (args.blocks + 1) * args.block > args.total:
        raise SystemExit(f"--blocks + 1 blocks of --block updates ({(args.blocks + 1) * args.block}) must fit in "
                         f"--total ({args.total})")
    rounds: dict[str, tuple[list[float], list[float]]] = {}

    # deterministic mode: (name, use_deterministic_algorithms, fill_uninitialized_memory)
    det_modes = [("off (plain loop)", False, True), ("on (as train sets it: no NaN fill)", True, False),
                 ("on, with torch's default NaN fill", True, True)]
    det_times: dict[str, list[float]] = {name: [] for name, _, _ in det_modes}
    deterministic: Any = torch.utils.deterministic  # (its attribute is a property torch's stubs do not declare)
    fill_before = deterministic.fill_uninitialized_memory

    def drain() -> None:  # the driver's job in lrlab compare; here between blocks, outside the timing
        with contextlib.suppress(queue_mod.Empty):
            while True:
                progress.get_nowait()

    try:
        for _ in range(20):  # warm up kernels and allocator
            plain_update()
        for spec in args.schedules:
            rounds[spec] = in_loop(spec)
        # deterministic mode changes the torch work, not the Python around it: the update itself is timed, the
        # modes alternating update by update (the order rotating each round) so that drift hits them alike
        for i in range(args.paired):
            for j in range(len(det_modes)):
                name, det, fill = det_modes[(i + j) % len(det_modes)]
                torch.use_deterministic_algorithms(det)
                deterministic.fill_uninitialized_memory = fill
                t0 = time.perf_counter()
                plain_update()
                det_times[name].append(time.perf_counter() - t0)
    finally:
        torch.use_deterministic_algorithms(det_before[0], warn_only=det_before[1])
        deterministic.fill_uninitialized_memory = fill_before

    # checkpoints: what save() runs, on this model and optimizer, with the curves of a whole run
    config = TrainConfig(task="lm", preset="tiny", schedule=args.schedules[0], optimizer="adamw", lr=1e-2,
                         steps=args.total, eval_every=args.eval_every, eval_batches=args.eval_batches,
                         checkpoint_every=args.checkpoint_every)
    run = _Curves(train_loss=[2.0] * args.total, lr=[1e-3] * args.total)
    for s in range(0, args.total + 1, args.eval_every):
        run.record_eval(s, {"loss": 2.0, "bits_per_byte": 2.9})
    fingerprint = data_fingerprint(task.info)
    with tempfile.TemporaryDirectory(dir=args.ckpt_dir) as tmp:
        ckpt = Path(tmp) / "job" / CHECKPOINT
        t_start, wall_before, last_saved, step = time.perf_counter(), 0.0, -1, args.checkpoint_every

        def save() -> None:  # train()'s save(), as it runs every checkpoint_every updates
            nonlocal last_saved
            run.wall_time_s = wall_before + time.perf_counter() - t_start
            if ckpt is not None and last_saved != step and rank == 0:
                _save_checkpoint(ckpt, config, step, model, optimizer, schedule_free, run, fingerprint)
                last_saved = -1  # so that the next call writes again

        save()  # the first write creates the folder
        saves = []
        for _ in range(args.saves):
            t0 = time.perf_counter()
            save()
            saves.append(time.perf_counter() - t0)
        ckpt_bytes = ckpt.stat().st_size
    save_s = statistics.median(saves)

    # per run: what train() and run_job do once beyond building the task, model and optimizer
    def per_run(spec: str) -> None:
        cfg = TrainConfig(**config.to_dict() | {"schedule": spec})  # validates the schedule over every update
        (Path(tempfile.gettempdir()) / "absent" / CHECKPOINT).exists()
        torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
        BlockCache(lrlab.parse(spec, total=args.total))(0)
        _process_group()
        _env(task, 1)
        data_fingerprint(task.info)
        _result(cfg, run, n_params, {}, None, task.items_per_batch).to_dict()

    fixed_s = max(median_time(partial(per_run, spec), 15) for spec in args.schedules)

    # evaluation: the harness's part of train()'s evaluate() (all but task.evaluate), and task.evaluate itself
    val_batches = task.val_batches(args.eval_batches)
    eval_run = _Curves()
    metrics_out = {"loss": 2.0, "bits_per_byte": 2.9}

    def evaluate_extras() -> None:
        metrics: dict[str, float] = {}
        if rank == 0:
            with _eval_point(model, optimizer, schedule_free):
                metrics = dict(metrics_out)  # task.evaluate(model, val_batches): timed apart
        if world > 1:
            raise AssertionError
        eval_run.record_eval(0, metrics)
        eval_run.diverged = eval_run.diverged or not math.isfinite(metrics["loss"])
        if monitor is not None:
            raise AssertionError

    eval_extra_s = median_time(evaluate_extras, 2_000)
    eval_s = median_time(lambda: task.evaluate(model, val_batches), 7)

    # ---------------------------------------------------------------------------------------------- report
    plain_all = [p for _, plains in rounds.values() for p in plains]
    step = statistics.median(plain_all)  # the plain update: the step the shares are of
    print(f"lm/tiny: {n_params:,} parameters, {task.items_per_batch} {unit}/update, {args.threads} thread(s), "
          f"{args.blocks} rounds x {args.block} updates of the real train() per schedule, each followed by "
          f"{args.block} plain updates")
    print(f"plain update: median {step * 1e3:.3f} ms (rounds {min(plain_all) * 1e3:.3f} .. {max(plain_all) * 1e3:.3f})")
    worst = 0.0
    for spec, (trains, plains) in rounds.items():
        diffs = sorted(t - p for t, p in zip(trains, plains))
        med = statistics.median(diffs)
        q1, q3 = diffs[len(diffs) // 4], diffs[(3 * len(diffs)) // 4]
        worst = max(worst, med)
        print(f"train(), {spec}: median over rounds of (train update - plain update) {med * 1e6:+.1f} us = "
              f"{100 * med / step:+.2f} % of the step (quartiles {q1 * 1e6:+.1f} .. {q3 * 1e6:+.1f} us); train update "
              f"median {statistics.median(trains) * 1e3:.3f} ms")
    worst = max(0.0, worst)  # noise below 0 counts as 0
    print(f"  (paired in-loop difference: it holds all of train()'s per-update Python, the LR of the "
          f"{len(optimizer.param_groups)} param groups and the worker hooks included; its noise is the spread "
          "of the quartiles)")
    off_name, on_name = det_modes[0][0], det_modes[1][0]
    off_times = det_times[off_name]
    print(f"deterministic algorithms, {args.paired} rounds of one update per mode (order rotating); cost = median "
          "over rounds of the update's time / the mode-off update's of the same round:")
    det_cost = {}
    for name, times in det_times.items():
        det_cost[name] = statistics.median(t / o for t, o in zip(times, off_times)) - 1
        p10, p10_off = sorted(times)[len(times) // 10], sorted(off_times)[len(times) // 10]
        print(f"  {name:36s} paired {100 * det_cost[name]:+.2f} %; p10 {p10 * 1e3:.3f} ms "
              f"({100 * (p10 / p10_off - 1):+.2f} %), median {statistics.median(times) * 1e3:.3f} ms")
    det_share = max(0.0, det_cost[on_name])  # noise below 0 counts as 0
    # a compare trial writes one every checkpoint_every updates but none at its end (save_final=False: deleted)
    n_saves = (args.total - 1) // args.checkpoint_every if args.checkpoint_every else 0
    ckpt_share = save_s * n_saves / args.total / step
    print(f"checkpoint ({ckpt_bytes / 1e3:.0f} kB, atomic + fsync): median {save_s * 1e3:.1f} ms of {args.saves} "
          f"(min {min(saves) * 1e3:.1f}, max {max(saves) * 1e3:.1f}); every {args.checkpoint_every} updates, none "
          f"at the end: {n_saves} per {args.total}-update run = {save_s * n_saves / args.total * 1e6:.1f} us/update "
          f"= {100 * ckpt_share:.2f} % of the step")
    fixed_share = fixed_s / args.total / step
    print(f"per run (config check, schedule parse + first block fill, env, result dict): {fixed_s * 1e3:.2f} ms "
          f"over {args.total} updates = {fixed_s / args.total * 1e6:.2f} us/update = {100 * fixed_share:.3f} %")
    eval_extra_share = eval_extra_s / args.eval_every / step
    print(f"harness part of each evaluation: {eval_extra_s * 1e6:.2f} us every {args.eval_every} updates = "
          f"{100 * eval_extra_share:.4f} %")
    print(f"not harness overhead: evaluation itself ({args.eval_batches} batches, both loops run it) "
          f"{eval_s * 1e3:.1f} ms every {args.eval_every} updates = {100 * eval_s / args.eval_every / step:.1f}"
          f" % of the step (a config choice: --eval-every, --eval-batches)")
    bookkeeping_share = worst / step
    python_share = bookkeeping_share + fixed_share + eval_extra_share
    total = python_share + det_share + ckpt_share
    print(f"tokens/s: plain {task.items_per_batch / step:,.0f} {unit}/s, harness "
          f"{task.items_per_batch / (step * (1 + total)):,.0f} {unit}/s (the step + the harness's costs per update; "
          "evaluation excluded from both)")
    if args.checkpoint_every:
        room = TARGET - python_share - det_share
        fits = (f"from checkpoint_every >= {math.ceil(save_s / (room * step))}" if room > 0 else
                "at no checkpoint_every: the rest already exceeds the budget")
        bare = TARGET - python_share
        print(f"checkpoints fit the budget {fits} on this disk" + (
            f" (without deterministic mode's cost: from >= {math.ceil(save_s / (bare * step))})" if bare > 0 else ""))
    verdict = "PASS" if total <= TARGET else "FAIL"
    print(f"target: harness <= {TARGET:.0%} of a tiny step: bookkeeping {100 * bookkeeping_share:.3f} % + "
          f"deterministic mode {100 * det_share:.2f} % + checkpoints every {args.checkpoint_every} "
          f"{100 * ckpt_share:.2f} % + per run {100 * fixed_share:.3f} % + per evaluation "
          f"{100 * eval_extra_share:.4f} % = {100 * total:.2f} % -> {verdict}")
    progress.close()
    if args.e2e_rounds:
        end_to_end(args, unit, task.items_per_batch)


if __name__ == "__main__":
    main()
