"""Overhead of `lrlab.Monitor` on a training step of the built-in tiny Transformer (the ``lm`` task, ``tiny``).

One run, interleaved: blocks of ``--block`` updates rotate between no monitor, a Monitor writing JSONL (and,
with ``--csv``, CSV) and the same with TensorBoard scalars too (the default when tensorboard is installed), each
to a temporary folder with live diagnoses on; each block's mean step time is recorded and the best (minimum)
block of each kind is compared, which removes most of the noise of a shared machine. The time spent inside
``Monitor.on_step`` is also measured directly (best block, and mean), and the cost of one diagnosis of a long
run (``--long`` records), which the Monitor's time budget spaces out. The last lines check the target: the
Monitor costs at most 1% of a training step (time inside ``on_step``, best block, against the best plain block).

    python benchmarks/monitor_overhead.py [--blocks 12] [--block 50] [--threads 1] [--csv]
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import statistics
import tempfile
import time
from typing import Any

TARGET = 0.01  # the budget: the Monitor costs <= 1% of a step of the built-in tiny Transformer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=12, help="blocks of each kind (interleaved)")
    ap.add_argument("--block", type=int, default=50, help="updates per block")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--csv", action="store_true", help="also write CSV")
    ap.add_argument("--long", type=int, default=100_000, help="records for the long-run diagnosis cost")
    args = ap.parse_args()

    import torch

    from lrlab.bench.model import param_groups
    from lrlab.bench.tasks import get_task
    from lrlab.bench.train import build_optimizer
    from lrlab.monitor import Monitor

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    task = get_task("lm", "tiny", 0)
    model = task.build_model()
    optimizer = build_optimizer("adamw", param_groups(model, 0.1), 1e-3)
    params = list(model.parameters())
    step = 0
    inside: dict[str, list[float]] = {}

    def update(monitor: Any, kind: str = "") -> None:
        nonlocal step
        lr = 1e-3 * min(1.0, (step + 1) / 100)
        for g in optimizer.param_groups:
            g["lr"] = lr
        x, y = task.get_batch(step)
        loss = torch.nn.functional.cross_entropy(model(x).flatten(0, -2), y.flatten())
        loss_value = loss.item()
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=True)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if monitor is not None:
            t0 = time.perf_counter()
            monitor.on_step(step, lrs=[g["lr"] for g in optimizer.param_groups], loss=loss_value,
                            grad_norm=float(grad_norm), tokens=(step + 1) * task.items_per_batch)
            inside.setdefault(kind, []).append(time.perf_counter() - t0)
        step += 1

    files = "JSONL" + (" + CSV" if args.csv else "")
    has_tb = importlib.util.find_spec("tensorboard") is not None
    n_kinds = 3 if has_tb else 2
    total = n_kinds * args.blocks * args.block + 20
    with tempfile.TemporaryDirectory() as folder:
        monitors: dict[str, Any] = {"plain": None,
                                    files: Monitor(f"{folder}/a", csv=args.csv, tensorboard=False, total_steps=total)}
        if has_tb:
            monitors[f"{files} + TensorBoard"] = Monitor(f"{folder}/b", csv=args.csv, tensorboard=True,
                                                         total_steps=total)
        for _ in range(20):  # warm up kernels and allocator
            update(None)
        times: dict[str, list[float]] = {kind: [] for kind in monitors}
        for _ in range(args.blocks):
            for kind, monitor in monitors.items():
                t0 = time.perf_counter()
                for _ in range(args.block):
                    update(monitor, kind)
                times[kind].append((time.perf_counter() - t0) / args.block)
        for monitor in monitors.values():
            if monitor is not None:
                monitor.close()
    plain = times["plain"]
    best_plain = min(plain)
    print(f"tiny lm step ({args.threads} thread(s)): best block {best_plain * 1e3:.3f} ms without the Monitor "
          f"(median {statistics.median(plain) * 1e3:.3f} ms; noise: "
          f"{100 * (statistics.median(plain) - best_plain) / best_plain:.0f}% between best and median block)")
    verdicts = []
    for kind in list(monitors)[1:]:
        calls = inside[kind]
        # per block: the time spent inside on_step; the best block is the least disturbed by other processes
        blocks = [sum(calls[i:i + args.block]) / args.block for i in range(0, len(calls), args.block)]
        best_mon, best_call, mean_call = min(times[kind]), min(blocks), sum(calls) / len(calls)
        print(f"{kind}: best block {best_mon * 1e3:.3f} ms, end to end "
              f"{100 * (best_mon - best_plain) / best_plain:+.2f}%; inside on_step (live diagnoses on) best block "
              f"{best_call * 1e6:.1f} us per update = "
              f"{100 * best_call / best_plain:.2f}% of a step, mean {mean_call * 1e6:.1f} us = "
              f"{100 * mean_call / statistics.median(plain):.2f}% of the median step")
        verdicts.append((kind, best_call / best_plain))
    if not has_tb:
        print("TensorBoard: not installed, its variant was skipped")

    # a long run: a diagnosis costs more with more records, and the Monitor waits cost / diagnose_budget seconds
    # before the next one, so diagnoses stay within that fraction of the wall time whatever the run length
    m = Monitor(diagnose_live=False, total_steps=args.long)
    for k in range(args.long):
        m.on_step(k, lrs=[1e-3, 1e-3], loss=2.0 + 3.0 * math.exp(-k / (args.long / 10)) + 0.01 * math.sin(k))
    t0 = time.perf_counter()
    m.diagnose()
    cost = time.perf_counter() - t0
    budget = Monitor().diagnose_budget
    print(f"one diagnosis of {args.long} records: {cost * 1e3:.0f} ms; with the default budget ({budget:.1%} of the "
          f"wall time) the next waits {cost / budget:.0f} s (~{cost / budget / best_plain:.0f} tiny steps)")
    for kind, frac in verdicts:
        verdict = "PASS" if frac <= TARGET else "FAIL"
        print(f"target: Monitor ({kind}) <= {TARGET:.0%} of a tiny step: {frac:.2%} -> {verdict}")


if __name__ == "__main__":
    main()
