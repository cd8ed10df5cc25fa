"""`TimmScheduler`: timm's scheduler protocol (``step(epoch)``, ``step_update(num_updates)``) driven by an lrlab
schedule, so timm's ``train.py`` loop can take an lrlab spec in place of ``create_scheduler_v2``.

timm's protocol puts the clock in the caller's hands: ``train.py`` calls ``step_update(num_updates=n)`` after
the ``n``-th optimizer update and ``step(epoch + 1, metric)`` after each epoch, and the scheduler sets the LR for
what comes next. ``t_in_epochs`` says which of the two calls moves the LR; the other one only records the metric:

- ``t_in_epochs=True``: ``step(epoch)`` sets ``lr = base * s(epoch)``; the schedule counts epochs, and the LR is
  constant within an epoch.
- ``t_in_epochs=False``: ``step_update(num_updates)`` sets ``lr = base * s(num_updates)``; the schedule counts
  optimizer updates (lrlab's default clock, the same numbers as `lrlab.torch.LRScheduler`).

timm defaults to epochs; here the choice is a required keyword, since it decides the unit of every length in the
schedule. At construction the LR is set to ``base * s(0)``, as timm's schedulers set their first value.

The state is the spec and the clock (`TimmScheduler.state_dict`), not timm's ``__dict__``; loading a state saved
with another schedule, unit or base LRs is refused. timm's noise options have no counterpart (a schedule is a
deterministic function of the clock). This module imports torch, not timm.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from lrlab.checks import check
from lrlab.errors import LrlabError
from lrlab.schedule import Schedule
from lrlab.spec import as_schedule

__all__ = ["TimmScheduler", "create_scheduler"]


class TimmScheduler:
    """timm's ``Scheduler`` protocol with an lrlab schedule: ``group[field] = base * s(t)`` for every param group.

    Args:
      optimizer: the ``torch.optim.Optimizer`` whose param groups are driven.
      schedule: spec text or a `Schedule`, or one per param group (e.g. the list `lrlab.compat.timm` returns for
        a list of base LRs, with ``absolute=True``); bound to ``total`` when given.
      t_in_epochs: True: ``step(epoch)`` moves the LR (the clock counts epochs); False: ``step_update(num_updates)``
        does (the clock counts optimizer updates). See the module docstring.
      total: the run's length in the clock's unit (epochs or updates); binds fractions and open lengths.
      absolute: False (default): values multiply each group's base value (its ``initial_<field>``, set from the
        group when missing, as timm does); True: the values are the LRs themselves.
      param_group_field: the param-group entry driven (``"lr"``; timm also schedules e.g. ``"weight_decay"``).

    A group's ``lr_scale`` multiplies its value, as in timm (layer-wise LR decay in timm's ``train.py``).

    >>> import torch
    >>> opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1)
    >>> sched = TimmScheduler(opt, "warmup(2) >> cosine(8)", t_in_epochs=True)
    >>> lrs = []
    >>> for epoch in range(4):
    ...     lrs.append(opt.param_groups[0]["lr"]); sched.step(epoch + 1)
    >>> [round(x, 6) for x in lrs]
    [0.0, 0.05, 0.1, 0.096194]
    >>> sched.state_dict()
    {'spec': 'warmup(2) >> cosine(8)', 't': 4.0, 't_in_epochs': True, 'absolute': False, 'base_values': [0.1]}
    """

    def __init__(self, optimizer: torch.optim.Optimizer, schedule: str | Schedule | Sequence[str | Schedule], *,
                 t_in_epochs: bool,
                 total: float | None = None, absolute: bool = False, param_group_field: str = "lr") -> None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise LrlabError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        for name, flag in (("t_in_epochs", t_in_epochs), ("absolute", absolute)):
            if not isinstance(flag, bool):
                raise LrlabError(f"{name} must be True or False, got {flag!r}")
        hint = f"pass total=N ({'epochs' if t_in_epochs else 'optimizer updates'} in the run)"
        n = len(optimizer.param_groups)
        if isinstance(schedule, (str, Schedule)):
            self.schedules = (as_schedule(schedule, total, total_hint=hint),) * n
            self._spec: str | list[str] = str(self.schedules[0])
        elif isinstance(schedule, Sequence) and len(schedule) == n:
            self.schedules = tuple(as_schedule(s, total, name=f"schedule[{i}]", total_hint=hint)
                                   for i, s in enumerate(schedule))
            self._spec = [str(s) for s in self.schedules]
        else:
            raise LrlabError(f"schedule must be spec text, an lrlab schedule, or one per param group ({n}); got "
                             f"{schedule!r}")
        self.optimizer = optimizer
        self.t_in_epochs = t_in_epochs
        self.absolute = absolute
        self.param_group_field = param_group_field
        self.metric: float | None = None
        initial = f"initial_{param_group_field}"
        for i, group in enumerate(optimizer.param_groups):
            if param_group_field not in group:
                raise LrlabError(f"param_groups[{i}] has no {param_group_field!r} (param_group_field)")
            group.setdefault(initial, group[param_group_field])
        #: each group's base value (``initial_<field>``), which the schedule's values multiply
        self.base_values = [float(group[initial]) for group in optimizer.param_groups]
        self._t = 0.0
        self._apply()

    # ---------------------------------------------------------------------------------------------- protocol
    def step(self, epoch: float, metric: float | None = None) -> None:
        """End of an epoch: with ``t_in_epochs`` set the values for clock ``epoch``; else record ``metric``."""
        self.metric = metric
        if self.t_in_epochs:
            self._move("epoch", epoch)

    def step_update(self, num_updates: float, metric: float | None = None) -> None:
        """After an optimizer update: without ``t_in_epochs`` set the values for clock ``num_updates``; else
        record ``metric``."""
        self.metric = metric
        if not self.t_in_epochs:
            self._move("num_updates", num_updates)

    def update_groups(self, values: float | Sequence[float]) -> None:
        """Write ``values`` (one, or one per group) into the groups, times each group's ``lr_scale`` (timm's rule)."""
        each = list(values) if isinstance(values, (list, tuple)) else [values] * len(self.optimizer.param_groups)
        for group, value in zip(self.optimizer.param_groups, each):
            group[self.param_group_field] = value * group["lr_scale"] if "lr_scale" in group else value

    @property
    def t(self) -> float:
        """The clock: the last ``epoch`` (``t_in_epochs``) or ``num_updates`` passed in, 0 before any."""
        return self._t

    def _move(self, name: str, t: object) -> None:
        self._t = check.nonneg(name, t)
        self._apply()

    def _apply(self) -> None:
        values = [s(self._t) for s in self.schedules]
        self.update_groups(values if self.absolute else [b * v for b, v in zip(self.base_values, values)])

    # ---------------------------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """``{"spec", "t", "t_in_epochs", "absolute"}`` and, unless ``absolute``, ``base_values``: plain types."""
        d: dict[str, Any] = {"spec": self._spec, "t": self._t, "t_in_epochs": self.t_in_epochs,
                             "absolute": self.absolute}
        if not self.absolute:
            d["base_values"] = list(self.base_values)
        return d

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Continue from a `state_dict`: the clock moves there and the values are written at once.

        Refused (`LrlabError`, showing both) when the state was saved with another schedule, ``t_in_epochs``,
        ``absolute`` or base values: each would change the LR sequence. A timm scheduler's state (its
        ``__dict__``) is refused too.
        """
        need = {"spec", "t", "t_in_epochs", "absolute"}
        if not isinstance(state_dict, Mapping) or not need <= set(state_dict):
            keys = sorted(state_dict) if isinstance(state_dict, Mapping) else type(state_dict).__name__
            raise LrlabError(f"not an lrlab TimmScheduler state (needs {', '.join(sorted(need))}; got {keys}); a timm "
                             "scheduler's state cannot be loaded into lrlab's")
        mine = self.state_dict()
        for key in ("spec", "t_in_epochs", "absolute", "base_values"):
            if key in mine and state_dict.get(key) != mine[key]:
                raise LrlabError(f"cannot load a scheduler state saved with a different {key}:\n  saved: "
                                 f"{state_dict.get(key)}\n  this:  {mine[key]}\nbuild the scheduler with the saved "
                                 f"{key} to resume that run")
        self._move("state_dict['t']", state_dict["t"])


def create_scheduler(optimizer: torch.optim.Optimizer, schedule: str | Schedule, *, num_epochs: int,
                     updates_per_epoch: int = 0, sched_on_updates: bool = False,
                     absolute: bool = False) -> tuple[TimmScheduler, int]:
    """timm's ``create_scheduler_v2(...)`` call in ``train.py``, for an lrlab schedule: ``(scheduler, num_epochs)``.

    Args:
      optimizer: the optimizer.
      schedule: spec text or a `Schedule`; fractions and open lengths are bound to the run: ``num_epochs`` epochs,
        or ``num_epochs * updates_per_epoch`` updates with ``sched_on_updates``.
      num_epochs: epochs in the run (whole number >= 1), returned unchanged (lrlab adds no cool-down epochs).
      updates_per_epoch: optimizer updates per epoch (whole number >= 1 with ``sched_on_updates``).
      sched_on_updates: timm's ``--sched-on-updates``: the clock counts updates (``t_in_epochs=False``).
      absolute: as `TimmScheduler`.
    """
    epochs = check.whole("num_epochs", num_epochs, minimum=1)
    if not isinstance(sched_on_updates, bool):
        raise LrlabError(f"sched_on_updates must be True or False, got {sched_on_updates!r}")
    total: float = epochs
    if sched_on_updates:
        total = epochs * check.whole("updates_per_epoch", updates_per_epoch, minimum=1)
    scheduler = TimmScheduler(optimizer, schedule, t_in_epochs=not sched_on_updates, total=total, absolute=absolute)
    return scheduler, epochs
