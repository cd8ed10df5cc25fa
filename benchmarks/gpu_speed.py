"""Training speed on the GPU against the CPU, the same runs on each: updates per second of `lrlab.bench.train.train`
(per preset), whether two identical runs agree bit for bit on each device, and the wall time of a short
`lrlab compare`. On a machine without a GPU it measures the CPU baseline and says ``GPU: not present``.

    python benchmarks/gpu_speed.py [--presets tiny,small] [--steps 300] [--compare-steps 100] [--threads N]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from typing import Any


def train_speed(preset: str, steps: int, device: str) -> dict[str, Any]:
    """One run of ``steps`` updates (constant LR, evaluation at the start and the end only) on ``device``, twice:
    updates per second (best of the two, timed over the updates only), wall time, final loss, and whether the two
    runs gave the same training losses bit for bit."""
    from lrlab.bench.train import TrainConfig, train

    config = TrainConfig(preset=preset, steps=steps, eval_every=steps, schedule="warmup(0.05) >> cosine()")
    runs = []
    for _ in range(2):
        t0 = time.perf_counter()
        r = train(config, device=device)
        runs.append((r, time.perf_counter() - t0))
    from lrlab.bench.tasks import get_task

    per_batch = get_task("lm", preset, 0).items_per_batch
    best = max(r.tokens_per_s for r, _ in runs) / per_batch
    return {"updates_per_s": best, "wall_s": min(w for _, w in runs), "final": runs[0][0].final_val_loss,
            "deterministic": runs[0][0].train_loss == runs[1][0].train_loss, "env": runs[0][0].env}


def compare_time(steps: int, device: str, workers: int | None) -> tuple[float, str]:
    """Wall time of a short comparison (2 schedules x 2 peak LRs x 1 seed, no extension or confirmation) on
    ``device``, and its winner."""
    from lrlab.bench.compare import CompareConfig, run_compare
    from lrlab.bench.report import write_report

    config = CompareConfig(steps=steps, schedules=("constant()", "warmup(0.05) >> cosine()"), lr_grid=2,
                           lr_extend=0, confirm_seeds=0, eval_every=max(10, steps // 4), checkpoint_every=0)
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        doc = run_compare(config, out, workers=workers, device=device)
        wall = time.perf_counter() - t0
        a = write_report(doc, out, plots=False)
    return wall, a.contenders[0].label


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default="tiny,small", help="comma-separated presets to time")
    ap.add_argument("--steps", type=int, default=300, help="updates per timed run")
    ap.add_argument("--compare-steps", type=int, default=100, help="updates per run of the short comparison (0: skip)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads for the timed runs (1: what each `lrlab compare` worker gets on 2 cores)")
    args = ap.parse_args()

    import torch

    from lrlab.bench.compare import cores, default_workers
    from lrlab.bench.device import available, placement, worker_devices

    torch.set_num_threads(args.threads)
    have = available()
    gpu = f"cuda:0 ({placement('cuda:0').name})" if have.cuda else None
    print(f"lrlab gpu_speed: torch {torch.__version__}, Python {platform.python_version()}, {cores()} cores, "
          f"{torch.get_num_threads()} torch threads; GPU: "
          + (f"{have.cuda} CUDA device(s), timing {gpu}" if gpu else "not present (CPU baseline only)"))
    devices = ["cpu"] + (["cuda:0"] if have.cuda else [])
    for preset in args.presets.split(","):
        rows = {d: train_speed(preset, args.steps, d) for d in devices}
        for d, r in rows.items():
            autocast = r["env"].get("autocast") or "float32"
            print(f"  {preset:5s} {d:7s} ({autocast:8s}): {r['updates_per_s']:8.1f} updates/s, {args.steps} updates "
                  f"in {r['wall_s']:6.2f} s, final val loss {r['final']:.4f}, deterministic: "
                  f"{'yes' if r['deterministic'] else 'NO'}")
        if "cuda:0" in rows:
            g, c = rows["cuda:0"], rows["cpu"]
            print(f"  {preset:5s} GPU/CPU updates/s: {g['updates_per_s'] / c['updates_per_s']:.2f}x; final loss "
                  f"GPU - CPU: {g['final'] - c['final']:+.4f} (the devices round differently)")
    if args.compare_steps:
        for d in devices:
            kind = "cuda" if d != "cpu" else "cpu"
            workers = len(worker_devices(kind, None, cpu_workers=default_workers()))
            wall, winner = compare_time(args.compare_steps, kind, None)
            print(f"  compare (2 schedules x 2 LRs, {args.compare_steps} updates, {workers} worker(s) on {kind}): "
                  f"{wall:6.1f} s, winner {winner}")
    if not have.cuda:
        print("GPU: not present")


if __name__ == "__main__":
    main()
