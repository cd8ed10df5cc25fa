"""Harness overhead: tokens/s of `lrlab.bench.train.train` vs a plain hand-written PyTorch loop, in one process.

Both train the same model (same seed, same initial weights) on the same batches with the same optimizer, gradient
clipping and constant LR for the same number of updates, and both validate on the same fixed batches at update 0
and at the end; each is timed end to end (model and optimizer construction included), by the wall clock and by the
process's CPU time (``time.process_time``: steadier on a shared machine, where other jobs steal wall time). The two
alternate, and the best of ``--repeats`` runs of each is kept. Overhead = 1 - harness rate / plain rate; the target
is at most 2 %, and the script prints PASS or FAIL against it. The harness is timed twice: bare (no checkpoints) and
as a real ``lrlab compare`` runs it, with ``out_dir`` set and the default ``checkpoint_every``
(`lrlab.bench.compare.CompareConfig`), so the atomic checkpoint writes count. Also prints ms per update, which sizes
the default ``lrlab compare``.

    .venv/bin/python benchmarks/harness_overhead.py --preset tiny --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from lrlab.bench.compare import CompareConfig
from lrlab.bench.model import param_groups
from lrlab.bench.tasks import get_task
from lrlab.bench.train import TrainConfig, build_optimizer, train


def plain_loop(config: TrainConfig) -> float:
    """The loop a user would write by hand. Returns the final validation loss."""
    task = get_task(config.task, config.preset, config.seed)
    torch.manual_seed(config.seed)
    model = task.build_model()
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


def timed(fn: Callable[[], float]) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, fn's result)."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="lm")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--checkpoint-every", type=int, default=CompareConfig().checkpoint_every,
                        help="checkpoint period of the checkpointing harness run (default: lrlab compare's)")
    args = parser.parse_args()
    target = 2.0  # per cent
    torch.set_num_threads(args.threads)
    config = TrainConfig(task=args.task, preset=args.preset, steps=args.steps, eval_every=args.steps, eval_batches=1,
                         schedule="constant()", optimizer="adamw", lr=1e-2)
    task = get_task(args.task, args.preset)
    items = args.steps * task.items_per_batch
    train(TrainConfig(**{**config.to_dict(), "steps": 2}))  # warm-up: first-call imports and allocations
    saving = TrainConfig(**{**config.to_dict(), "checkpoint_every": args.checkpoint_every})
    plain: list[tuple[float, float]] = []
    harness: list[tuple[float, float]] = []
    harness_ckpt: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            folder = Path(tmp) / f"run{i}"  # a fresh folder: train() refuses to overwrite a checkpoint
            variants: list[tuple[list[tuple[float, float]], Callable[[], float]]] = [
                (plain, lambda: plain_loop(config)),
                (harness, lambda: train(config).final_val_loss),
                (harness_ckpt, lambda f=folder: train(saving, out_dir=f).final_val_loss),  # type: ignore[misc]
            ]
            # the order alternates (ABC, CBA, ...): whichever runs first in a round is not always the same loop
            finals = {}
            for sink, fn in (variants if i % 2 == 0 else variants[::-1]):
                wall, cpu, final = timed(fn)
                sink.append((wall, cpu))
                finals[id(sink)] = final
            plain_final, harness_final, ckpt_final = (finals[id(plain)], finals[id(harness)],
                                                      finals[id(harness_ckpt)])
            if not harness_final == ckpt_final == plain_final:
                raise SystemExit(f"the loops disagree: final validation loss {harness_final} (harness), {ckpt_final} "
                                 f"(harness with checkpoints), {plain_final} (plain)")
    unit = "tokens" if task.kind == "lm" else "images"
    n_params = sum(p.numel() for p in task.build_model().parameters())
    print(f"{args.task}/{args.preset}: {n_params:,} parameters, {task.items_per_batch} {unit}/update, "
          f"{args.steps} updates, {args.threads} thread(s), best of {args.repeats}")
    for label, runs in (("lrlab train", harness), (f"lrlab train, checkpoint every {args.checkpoint_every}",
                                                      harness_ckpt)):
        print(f" {label}:")
        for clock, i in (("wall", 0), ("cpu", 1)):
            p, h = min(t[i] for t in plain), min(t[i] for t in runs)
            overhead = 100 * (1 - p / h)
            print(f"  {clock:4s} plain {items / p:9,.0f} {unit}/s {1e3 * p / args.steps:6.2f} ms/update | "
                  f"harness {items / h:9,.0f} {unit}/s {1e3 * h / args.steps:6.2f} ms/update | "
                  f"ratio {p / h:.4f} (overhead {overhead:+.2f} %: {'PASS' if overhead <= target else 'FAIL'} "
                  f"against <= {target:g} %)")
        med = statistics.median(h[0] / p[0] for p, h in zip(plain, runs))  # paired by round
        print(f"  median over rounds of (harness / plain) wall time: {med:.4f} (overhead {100 * (1 - 1 / med):+.2f} %)")
    print(f"  same final validation loss in all loops: {plain_final:.6f}")


if __name__ == "__main__":
    main()
