"""lrlab schedules as optax learning rates: ``optax.adamw(learning_rate=lrlab.optax.schedule("warmup(0.05) >> cosine()",
total=10_000, scale=3e-4))``.

``count`` is optax's update count (0 at the first update), the same clock as `lrlab.torch.LRScheduler`'s default,
so the two give the same LR at the same update.

The schedule is computed on the device in ``jax.numpy`` (`lrlab.jax_schedules`: each family's formula written
again in jnp, the same operations in the same order), so a jitted update step holding it is one XLA program: no
host round trip, exportable with ``jax.export``, and differentiable with respect to the schedule's parameters
(`OptaxSchedule.params` and `OptaxSchedule.apply`). With ``jax_enable_x64`` the values are lrlab's float64 ones
(to the last bit, or within a few ulps where a formula uses ``exp``/``log``/``pow``/``tanh``); without it the
formulas run in float32, as optax's own schedules do.

Importing this module does not import jax or optax; building a schedule imports jax.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from lrlab.errors import LrlabError
from lrlab.schedule import Schedule
from lrlab.spec import as_schedule

__all__ = ["OptaxSchedule", "schedule"]


@dataclass(frozen=True, kw_only=True)
class OptaxSchedule:
    """``count -> scale * s(count)`` in jax (an optax learning rate). Build it with `schedule`.

    ``f(count)`` is ``f.apply(f.params(), count)``; to differentiate with respect to the schedule's values, pass
    your own tree: ``jax.grad(lambda p: f.apply(p, 100))(f.params())`` gives ``d lr(100) / d p`` for ``scale`` and
    every value parameter of the schedule (``p["schedule"]``, shaped like the schedule, see
    `lrlab.jax_schedules.parameters`). Picklable and hashable; ``str()`` is the spec.
    """

    schedule: Schedule
    scale: float = 1.0

    def params(self) -> dict[str, Any]:
        """``{"scale": scale, "schedule": <value parameters of the schedule>}``, a pytree of floats."""
        from lrlab import jax_schedules

        return {"scale": self.scale, "schedule": jax_schedules.parameters(self.schedule)}

    def apply(self, params: Any, count: Any) -> Any:
        """``params["scale"] * s(count)`` with the schedule's values taken from ``params`` (same structure as
        `params`): a jax array of ``count``'s shape, in jax's default float type."""
        from lrlab import jax_schedules

        return params["scale"] * jax_schedules.evaluate(self.schedule, params["schedule"], count)

    def __call__(self, count: Any) -> Any:
        return self.apply(self.params(), count)

    def __str__(self) -> str:
        return str(self.schedule) if self.scale == 1.0 else f"{self.scale!r} * ({self.schedule})"


def schedule(spec_or_schedule: str | Schedule, *, total: float | None = None, scale: float = 1.0) -> OptaxSchedule:
    """A jittable ``count -> scale * s(count)`` for an optax optimizer's ``learning_rate``.

    Args:
      spec_or_schedule: lrlab spec text (``"warmup(100) >> cosine(900)"``) or a `Schedule`.
      total: the run's length in updates (> 0); binds fractions and open lengths (``warmup(0.05)``, ``cosine()``).
      scale: the peak LR the schedule's values multiply (finite).
    Returns:
      An `OptaxSchedule`. Raises `LrlabError` for a schedule that is not bound, or that holds a schedule class
      with no jax formula (a user-defined subclass).

    >>> import jax
    >>> f = schedule("warmup(10) >> cosine(90)", scale=1e-3)
    >>> float(jax.jit(f)(10))
    0.0010000000474974513
    """
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale):
        raise LrlabError(f"scale must be a finite number (the peak LR the schedule multiplies), got {scale!r}")
    s = as_schedule(spec_or_schedule, total)
    from lrlab import jax_schedules

    jax_schedules.check_supported(s)
    return OptaxSchedule(schedule=s, scale=float(scale))
