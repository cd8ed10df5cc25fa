"""Evaluating a warm-up + cosine schedule at 1,000,000 clocks: lrlab vs torch vs optax.

- lrlab: ``schedule.values(np.arange(1e6))``, one vectorised NumPy call.
- torch: ``SequentialLR(LinearLR, CosineAnnealingLR)`` over a dummy optimizer, reading ``group["lr"]`` and
  calling ``scheduler.step()`` once per clock. Stepping a million times takes minutes, so ``--torch-steps``
  clocks are timed and the time is extrapolated linearly (the per-step cost does not depend on the clock).
- optax: ``jax.jit(warmup_cosine_decay_schedule(...))`` over a ``jnp`` array of 1e6 clocks, after a warm-up call
  that compiles it, with ``block_until_ready``; float64 (``jax_enable_x64``, as lrlab computes) and float32.

Also the cost of one scalar evaluation: ``s(t)``, `lrlab.schedule.BlockCache`, and one call of the jitted optax
schedule with a Python int.

Run: ``python benchmarks/eval_speed.py`` (``--help`` for sizes). Prints times and ratios; the issue's targets are
lrlab >= 100x faster than torch stepping and within 2x of optax's jitted evaluation.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

WARMUP_FRACTION = 0.05


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """The fastest of ``repeat`` timed calls, in seconds."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def per_call(fn: Callable[[], object], calls: int, repeat: int = 5) -> float:
    """Seconds per call of ``fn``, the best of ``repeat`` batches of ``calls``."""

    def batch() -> None:
        for _ in range(calls):
            fn()

    return best_of(batch, repeat) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clocks", type=int, default=1_000_000, help="clocks to evaluate (default 1e6)")
    parser.add_argument("--torch-steps", type=int, default=20_000, help="torch steps timed, then extrapolated")
    parser.add_argument("--repeat", type=int, default=7, help="timed repetitions; the best is reported")
    args = parser.parse_args()

    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import optax
    import torch

    from lrlab.compat import torch as tc
    from lrlab.schedule import BlockCache

    torch.set_num_threads(1)
    n = args.clocks
    lr = 1e-3
    warm = int(WARMUP_FRACTION * n)
    ts = np.arange(n, dtype=np.float64)

    # the same schedule three ways: linear warm-up from 1% to lr, then cosine to 0 over the rest
    ours = tc.SequentialLR([tc.LinearLR(lr, start_factor=0.01, total_iters=warm),
                            tc.CosineAnnealingLR(lr, T_max=n - warm)], milestones=[warm])
    assert not isinstance(ours, list)
    peer_optax = optax.warmup_cosine_decay_schedule(lr * 0.01, lr, warmup_steps=warm, decay_steps=n)

    # --- lrlab, vectorised
    lrlab_s = best_of(lambda: ours.values(ts), args.repeat)

    # --- torch, stepped
    k = min(args.torch_steps, n)
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=lr)
    sched = torch.optim.lr_scheduler.SequentialLR(
        opt, [torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.01, total_iters=warm),
              torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=n - warm)], milestones=[warm])
    group = opt.param_groups[0]
    record = np.empty(k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "scheduler.step() before optimizer.step()": no training here
        t0 = time.perf_counter()
        for t in range(k):
            record[t] = group["lr"]
            sched.step()
        torch_k = time.perf_counter() - t0
    torch_s = torch_k * n / k
    agree = float(np.max(np.abs(record - ours.values(ts[:k])) / record))

    # --- optax, jitted over an array
    def optax_timing(dtype: Any) -> float:
        fn = jax.jit(peer_optax)
        xs = jnp.arange(n, dtype=dtype)
        fn(xs).block_until_ready()  # compile
        return best_of(lambda: fn(xs).block_until_ready(), args.repeat)

    optax64_s = optax_timing(jnp.float64)
    optax32_s = optax_timing(jnp.float32)
    optax_values = np.asarray(jax.jit(peer_optax)(jnp.arange(n, dtype=jnp.float64)))
    optax_agree = float(np.max(np.abs(optax_values - ours.values(ts)) / np.maximum(optax_values, 1e-300)))

    # --- one scalar evaluation
    t_mid = n // 2
    scalar_s = per_call(lambda: ours(t_mid), 20_000)
    cache = BlockCache(ours)
    cache(t_mid)
    cached_s = per_call(lambda: cache(t_mid), 200_000)
    scalar_fn = jax.jit(peer_optax)
    scalar_fn(t_mid).block_until_ready()
    optax_scalar_s = per_call(lambda: scalar_fn(t_mid).block_until_ready(), 5_000)

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; numpy {np.__version__}, "
          f"torch {torch.__version__}, jax {jax.__version__}, optax {optax.__version__}")
    print(f"schedule: {ours}")
    print(f"\n{n:,} clocks (best of {args.repeat})")
    print(f"  lrlab values()                 {lrlab_s * 1e3:10.2f} ms")
    print(f"  torch SequentialLR stepping    {torch_s * 1e3:10.1f} ms  (timed {k:,} steps: {torch_k * 1e3:.1f} ms, "
          f"extrapolated x{n / k:g}; lrlab agrees to {agree:.1e} relative)")
    print(f"  optax jit, float64             {optax64_s * 1e3:10.2f} ms  (lrlab agrees to {optax_agree:.1e} relative)")
    print(f"  optax jit, float32             {optax32_s * 1e3:10.2f} ms")
    print(f"  lrlab vs torch stepping        {torch_s / lrlab_s:10.0f}x faster   (target >= 100x)")
    print(f"  lrlab vs optax jit float64     {lrlab_s / optax64_s:10.2f}x the time (target <= 2x)")
    print(f"  lrlab vs optax jit float32     {lrlab_s / optax32_s:10.2f}x the time")
    print("\none scalar evaluation")
    print(f"  lrlab s(t)                     {scalar_s * 1e6:10.2f} us")
    print(f"  lrlab BlockCache(s)(t)         {cached_s * 1e6:10.3f} us")
    print(f"  torch scheduler.step()         {torch_k / k * 1e6:10.2f} us")
    print(f"  optax jitted schedule(t)       {optax_scalar_s * 1e6:10.2f} us")
    print(f"  lrlab s(t) vs optax scalar     {scalar_s / optax_scalar_s:10.2f}x the time")


if __name__ == "__main__":
    main()
