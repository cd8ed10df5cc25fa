"""One jitted optax update step on a small MLP: lrlab's schedule (`lrlab.optax.schedule`) vs optax's own.

The same warm-up + cosine schedule three ways, inside the same ``jax.jit``-ed AdamW step (forward, backward,
update) of a 2-layer MLP (32 -> 256 -> 1, batch 64):

- optax: ``optax.warmup_cosine_decay_schedule`` (the baseline);
- lrlab: ``lrlab.optax.schedule(lrlab.compat.optax.warmup_cosine_decay_schedule(...))``, computed in jax.numpy;
- lrlab host callback: ``lrlab.integrations.optax_schedule`` (``jax.pure_callback``), the path this one replaces,
  for reference (skipped where that function is gone).

Each variant runs ``--blocks`` blocks of ``--steps`` updates after a compiling warm-up, the variants taking turns
(in a rotating order) so that a busy moment of a shared machine hits them alike. Times are the CPU time of this
process (``time.process_time``: XLA runs single-threaded here), which other processes on a shared machine do not
inflate the way they inflate wall time. Reported: the best block of each (µs per update) and the median over
blocks of the ratio to optax's block run next to it. Run: ``nice python benchmarks/optax_step.py``. The target is
lrlab <= 1.1x optax.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="updates per timed block")
    parser.add_argument("--blocks", type=int, default=9, help="interleaved blocks per variant; the best is kept")
    parser.add_argument("--x64", action="store_true", help="float64 (jax_enable_x64) instead of float32")
    args = parser.parse_args()

    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    import jax

    jax.config.update("jax_enable_x64", args.x64)
    import jax.numpy as jnp
    import numpy as np
    import optax

    import lrlab.optax
    from lrlab.compat import optax as compat_optax

    total, warmup, peak = 10_000, 500, 3e-3
    variants: dict[str, Any] = {
        "optax": optax.warmup_cosine_decay_schedule(0.0, peak, warmup, total, end_value=peak * 0.1),
        "lrlab": lrlab.optax.schedule(compat_optax.warmup_cosine_decay_schedule(0.0, peak, warmup, total,
                                                                                end_value=peak * 0.1)),
    }
    try:
        from lrlab.integrations import optax_schedule
    except ImportError:
        pass
    else:
        variants["lrlab host callback"] = optax_schedule(variants["lrlab"].schedule)

    key = jax.random.PRNGKey(0)
    k1, k2, k3 = jax.random.split(key, 3)
    params0 = {"w1": jax.random.normal(k1, (32, 256)) * 0.1, "b1": jnp.zeros(256),
               "w2": jax.random.normal(k2, (256, 1)) * 0.1, "b2": jnp.zeros(1)}
    x = jax.random.normal(k3, (64, 32))
    y = jnp.sin(x.sum(axis=1, keepdims=True))

    def loss(p: Any) -> Any:
        h = jnp.tanh(x @ p["w1"] + p["b1"])
        return jnp.mean((h @ p["w2"] + p["b2"] - y) ** 2)

    def make_step(schedule: Callable[[Any], Any]) -> tuple[Callable[..., Any], Any]:
        tx = optax.adamw(learning_rate=schedule, weight_decay=0.01)

        @jax.jit
        def step(p: Any, state: Any) -> Any:
            value, grads = jax.value_and_grad(loss)(p)
            updates, state = tx.update(grads, state, p)
            return optax.apply_updates(p, updates), state, value

        return step, tx.init(params0)

    runners = {}
    for name, sched in variants.items():
        step, state = make_step(sched)
        p, state, v = step(params0, state)  # compile
        v.block_until_ready()
        runners[name] = [step, p, state]

    names = list(runners)
    times: dict[str, list[float]] = {name: [] for name in names}
    for block in range(args.blocks):
        for name in names[block % len(names):] + names[:block % len(names)]:
            r = runners[name]
            step, p, state = r
            t0 = time.process_time()
            for _ in range(args.steps):
                p, state, v = step(p, state)
            v.block_until_ready()
            times[name].append((time.process_time() - t0) / args.steps)
            r[1], r[2] = p, state
    best = {name: min(ts) for name, ts in times.items()}
    paired = {name: float(np.median(np.array(ts) / np.array(times["optax"]))) for name, ts in times.items()}

    lrs = np.asarray(jax.vmap(variants["lrlab"])(jnp.arange(total)))
    ref = np.asarray(jax.vmap(variants["optax"])(jnp.arange(total)))
    agree = float(np.max(np.abs(lrs - ref) / np.maximum(np.abs(ref), 1e-30)))

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; jax {jax.__version__}, "
          f"optax {optax.__version__}; {'float64' if args.x64 else 'float32'}")
    print(f"schedule: {variants['lrlab']}  (agrees with optax's to {agree:.1e} relative)")
    print(f"AdamW step on a 32-256-1 MLP, batch 64: CPU time, {args.blocks} blocks of {args.steps} updates")
    base = best["optax"]
    for name, t in best.items():
        print(f"  {name:22s} best {t * 1e6:9.1f} us/step  ({t / base:5.2f}x optax's best; median paired ratio "
              f"{paired[name]:5.2f}x)")
    ratio = paired["lrlab"]
    print(f"lrlab / optax, median paired ratio: {ratio:.3f}x (target <= 1.1x: {'PASS' if ratio <= 1.1 else 'FAIL'})")


if __name__ == "__main__":
    main()
