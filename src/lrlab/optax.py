"""lrlab schedules as optax learning rates: ``optax.adamw(learning_rate=lrlab.optax.schedule("warmup(0.05) >> cosine()",
total=10_000, scale=3e-4))``.

``count`` is optax's update count (0 at the first update), the same clock as `lrlab.torch.LRScheduler`'s default,
so the two give the same LR at the same update.

How it computes, and what that rules out: lrlab's formulas are NumPy float64 code, so the function calls them on
the host through ``jax.pure_callback``. It traces under ``jit`` and ``vmap`` and gives lrlab's exact float64 value
(rounded to float32 unless ``jax_enable_x64`` is on), but each call is a device-to-host round trip (a sync point on
a GPU/TPU, once per update), a jitted step holding it cannot be serialized with ``jax.export`` (AOT) or run without
a Python host, and it is not differentiable in ``count``. Where that matters, use a lookup table:
``lrs = jnp.asarray(scale * s.values(np.arange(total)))`` and ``lrs[jnp.minimum(count, total - 1)]``.

Importing this module does not import jax or optax; calling the returned function does.
"""

from __future__ import annotations

from lrlab.integrations import OptaxSchedule, optax_schedule
from lrlab.schedule import Schedule

__all__ = ["OptaxSchedule", "schedule"]


def schedule(spec_or_schedule: str | Schedule, *, total: float | None = None, scale: float = 1.0) -> OptaxSchedule:
    """A jit-traceable ``count -> scale * s(count)`` for an optax optimizer's ``learning_rate``.

    Args:
      spec_or_schedule: lrlab spec text (``"warmup(100) >> cosine(900)"``) or a `Schedule`.
      total: the run's length in updates (> 0); binds fractions and open lengths (``warmup(0.05)``, ``cosine()``).
      scale: the peak LR the schedule's values multiply (finite).
    Returns:
      An `OptaxSchedule` (`lrlab.integrations.optax_schedule`): picklable, ``str()`` is its spec; float64 values
      with ``jax.config.update("jax_enable_x64", True)``, else float32.

    >>> import jax
    >>> f = schedule("warmup(10) >> cosine(90)", scale=1e-3)
    >>> float(jax.jit(f)(10))
    0.0010000000474974513
    """
    return optax_schedule(spec_or_schedule, total=total, scale=scale)
