"""`LRScheduler`: a ``torch.optim.lr_scheduler.LRScheduler`` that sets each param group's LR from an lrlab schedule.

Each group gets ``lr = base_lr * s(t)`` (``absolute=True``: ``lr = s(t)``), ``t`` being the clock of real
optimizer updates (`lrlab.clock.UpdateClock`: steps, epochs, tokens or samples; gradient accumulation and AMP
skips hold it). ``state_dict()`` is the spec and the clock, so a resumed run continues the exact LR sequence.
Also here: `global_count` (a token count summed over processes) and `layerwise_groups`. The user manual (the
clock, tensor LRs, plateau and guard, resuming): docs/torch.md. This module imports torch; ``import lrlab``
does not.
"""

from __future__ import annotations

import math
import warnings
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler as _TorchLRScheduler

from lrlab.checks import check
from lrlab.clock import CLOCKS, DATA_CLOCKS, UpdateClock
from lrlab.compat import holds_lrs
from lrlab.errors import LrlabError
from lrlab.guard import DivergenceGuard, GuardEvent, GuardState
from lrlab.plateau import Plateau, PlateauState
from lrlab.schedule import BlockCache, Schedule
from lrlab.spec import as_schedule, parse

if TYPE_CHECKING:
    from torch import nn

__all__ = ["CLOCKS", "LRScheduler", "global_count", "layerwise_groups"]

#: clocks computed ahead at a time for the epoch / token / sample clocks
AHEAD = 256
#: ``also=`` keys that name one element of a tuple in the param group
TUPLE_KEYS: dict[str, tuple[str, int]] = {"beta1": ("betas", 0), "beta2": ("betas", 1)}
#: divergence-guard events kept in ``LRScheduler.guard_events`` (the most recent; the count is in the guard state)
GUARD_EVENTS_KEPT = 1000

ScheduleLike = Schedule | str


def _current_spelling(saved: Any) -> Any:
    """Saved spec text as this version writes it: states saved before the one-vocabulary change hold
    ``onecycle(...)`` or ``linear(start=...)``, which parse to the same schedule as ``one_cycle``/``linear(peak=)``."""
    if isinstance(saved, list):
        return [_current_spelling(x) for x in saved]
    if not isinstance(saved, str):
        return saved
    try:
        return str(parse(saved))
    except LrlabError:
        return saved  # not a spec this version reads: the comparison then shows both texts


def hook_target(optimizer: Any) -> Optimizer | None:
    """The torch optimizer whose ``step()`` runs torch's step hooks: ``optimizer`` itself, or the one a wrapper
    holds as ``.optimizer`` (Accelerate's ``AcceleratedOptimizer`` subclasses ``Optimizer`` without calling its
    ``__init__``, so it has no hook registry; its ``step()`` steps the inner optimizer only for real updates: not
    for an accumulation micro-batch, nor for an update its GradScaler skips). None when there is none (a DeepSpeed
    ZeRO optimizer)."""
    seen: set[int] = set()
    cur = optimizer
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, Optimizer) and hasattr(cur, "_optimizer_step_post_hooks"):
            return cur
        cur = getattr(cur, "optimizer", None)
    return None


#: a relative schedule's largest value below this warns: the LR would stay under 1% of the optimizer's LR
SMALL_PEAK = 0.01


def schedule_peak(s: Schedule) -> float:
    """The largest value of ``s`` at the whole clocks of its first 4096 units and at 4096 points spread over its
    length (4096 units when it has none): what a check that ``s`` holds multipliers, not LRs, reads."""
    n = 4096
    length = s.length
    span = float(length) if length is not None and 0 < length < math.inf else float(n)
    ts = np.concatenate([np.arange(min(span, n), dtype=np.float64), np.linspace(0.0, span, n)])
    return float(np.max(s.values(ts)))


def _total_hint(clock: str) -> str:
    return f"pass total=<the run's length in {clock}> to LRScheduler, or bind it first (lrlab.parse(spec, total=N))"


class LRScheduler(_TorchLRScheduler):
    """Set every param group's LR (and optionally other values) from a closed-form lrlab schedule.

    Args:
      optimizer: the ``torch.optim.Optimizer`` whose param groups are driven, or a wrapper of one that forwards
        ``param_groups`` (Accelerate's ``AcceleratedOptimizer``: the updates are counted on the optimizer inside,
        `hook_target`; with none inside, each ``step()`` call counts as one update).
      schedule: an lrlab `Schedule` or spec text, or a sequence of them with one per param group (layer-wise
        decay, a different warm-up for the embeddings); each distinct schedule is evaluated once per step.
      total: the run's length in clock units; binds fractions and open lengths (``warmup(0.06)``, ``cosine()``).
      absolute: False: ``lr = base_lr * s(t)`` with ``base_lr`` the group's LR at construction (its
        ``initial_lr``); True: ``lr = s(t)``. None (default): True when the schedules hold learning rates (every
        schedule `lrlab.compat` builds is marked so, `lrlab.compat.holds_lrs`), else False. Refused: False with
        such a schedule, and False with a schedule that peaks at the group's own LR (``base_lr * s`` would peak
        at ``base_lr ** 2``); a relative schedule that stays below 0.01 (the LR under 1% of the optimizer's) warns.
      clock: ``steps`` (optimizer updates), ``epochs`` (needs ``steps_per_epoch``), ``tokens`` or ``samples``
        (``step(tokens=n)`` / ``step(samples=n)``).
      steps_per_epoch: optimizer updates per epoch (> 0) for ``clock="epochs"``.
      also: other param-group values on the same clock, key -> schedule: ``momentum``, ``beta1``/``beta2`` (the
        ``betas`` tuple), ``weight_decay`` or any numeric key of every group; same rule as the LR (a multiple of
        the group's initial value, or the value itself with ``absolute=True``). One-cycle momentum:
        ``also={"momentum": "onecycle(peak=0.85, start=0.95, end=0.95)"}`` with ``absolute=True``.
      plateau: a `lrlab.plateau.Plateau` fed by `report`.
      guard: a `lrlab.guard.DivergenceGuard` consulted by `check`.
      warn_idle_after: warn when ``step()`` is called this many times in a row without an optimizer update
        (whole number >= 0; 0: never). The default 100 is far above GradScaler's usual run of skipped updates at
        the start of fp16 training (one per halving of the initial 2**16 scale) and above the micro-batches per
        update of typical gradient accumulation when ``step()`` is called after every micro-batch.

    >>> import torch, lrlab
    >>> opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1)
    >>> sched = LRScheduler(opt, "warmup(2) >> cosine(8)")
    >>> lrs = []
    >>> for _ in range(4):
    ...     lrs.append(sched.get_last_lr()[0]); opt.step(); sched.step()
    >>> [round(x, 6) for x in lrs]
    [0.0, 0.05, 0.1, 0.096194]
    >>> sched.state_dict()
    {'spec': 'warmup(2) >> cosine(8)', 'clock': 'steps', 't': 4.0, 'updates': 4, 'absolute': False, 'base_lrs': [0.1]}
    """

    def __init__(
        self,
        optimizer: Optimizer | Any,
        schedule: ScheduleLike | Sequence[ScheduleLike],
        *,
        total: float | None = None,
        absolute: bool | None = None,
        clock: str = "steps",
        steps_per_epoch: float | None = None,
        also: Mapping[str, ScheduleLike] | None = None,
        plateau: Plateau | None = None,
        guard: DivergenceGuard | None = None,
        warn_idle_after: int = 100,
    ) -> None:
        # torch's LRScheduler.__init__ is not called: it wraps optimizer.step to count calls and steps once;
        # this class counts real updates with the optimizer's public post-step hook instead.
        groups_of = getattr(optimizer, "param_groups", None)
        if not isinstance(optimizer, Optimizer) and not (isinstance(groups_of, list) and groups_of):
            raise LrlabError(f"optimizer must be a torch.optim.Optimizer (or a wrapper of one with param_groups), got "
                             f"{type(optimizer).__name__}")
        self._clock = UpdateClock(clock, steps_per_epoch=steps_per_epoch)
        if total is not None:
            check.positive("total", total)
        if absolute is not None and not isinstance(absolute, bool):
            raise LrlabError(f"absolute must be True, False or None (True for schedules that hold LRs), got "
                             f"{absolute!r}")
        if plateau is not None and not isinstance(plateau, Plateau):
            raise LrlabError(f"plateau must be an lrlab.plateau.Plateau, got {plateau!r}")
        if guard is not None and not isinstance(guard, DivergenceGuard):
            raise LrlabError(f"guard must be an lrlab.guard.DivergenceGuard, got {guard!r}")
        warn_idle_after = check.whole("warn_idle_after", warn_idle_after)

        self.optimizer = optimizer
        groups = optimizer.param_groups
        n = len(groups)
        if isinstance(schedule, (str, Schedule)):
            one = as_schedule(schedule, total, name="schedule", total_hint=_total_hint(clock))
            self.schedules: tuple[Schedule, ...] = (one,) * n
            self._spec: str | list[str] = str(one)
        elif isinstance(schedule, Sequence):
            if len(schedule) != n:
                raise LrlabError(
                    f"schedule holds {len(schedule)} schedules but the optimizer has {n} param groups: give one "
                    "schedule, or one per group"
                )
            self.schedules = tuple(as_schedule(s, total, name=f"schedule[{i}]", total_hint=_total_hint(clock))
                                   for i, s in enumerate(schedule))
            self._spec = [str(s) for s in self.schedules]
        else:
            raise LrlabError(f"schedule must be an lrlab schedule, spec text, or one per param group; got {schedule!r}")
        given = [schedule] if isinstance(schedule, (str, Schedule)) else list(schedule)
        absolute = self._resolve_absolute(absolute, [holds_lrs(s) for s in given])
        self.also: dict[str, Schedule] = {}
        for key, s in (also or {}).items():
            if key == "lr":
                raise LrlabError("also must not hold 'lr': the LR is driven by schedule")
            self.also[key] = as_schedule(s, total, name=f"also[{key!r}]", total_hint=_total_hint(clock))
        self.absolute = absolute
        self.clock = clock
        self.steps_per_epoch = self._clock.steps_per_epoch
        self.plateau = plateau
        self.guard = guard
        self.warn_idle_after = warn_idle_after

        # each distinct schedule is evaluated once per step, from exact blocks computed on the vector path:
        # BlockCache for the integer step clock, `_ahead` for the other clocks
        distinct: dict[Schedule, int] = {}
        for s in (*self.schedules, *self.also.values()):
            distinct.setdefault(s, len(distinct))
        self._distinct = list(distinct)
        self._evals: list[Callable[[float], float]] = [BlockCache(s) for s in distinct] if clock == "steps" else []
        self._which = [distinct[s] for s in self.schedules]
        self._ahead: dict[float, list[float]] = {}  # clock -> values, for the clocks the next updates will reach

        self.base_lrs: list[float] = []  # type: ignore[assignment]
        for group in groups:
            lr = group["lr"]
            group.setdefault("initial_lr", lr.clone() if isinstance(lr, torch.Tensor) else lr)
            self.base_lrs.append(float(group["initial_lr"]))
        if not absolute:
            self._check_multipliers()
        self._also_plan: list[tuple[str, int, list[float]]] = []
        for key, s in self.also.items():
            bases = [self._initial_value(i, g, key) for i, g in enumerate(groups)]
            self._also_plan.append((key, distinct[s], [1.0] * n if absolute else bases))

        self._plateau_state: PlateauState | None = None
        if plateau is not None:
            self._plateau_state = plateau.init([1.0] * n if absolute else self.base_lrs)
        self._guard_state: GuardState | None = guard.init() if guard is not None else None
        #: the most recent skipped updates (`GUARD_EVENTS_KEPT`); each is also warned
        self.guard_events: deque[GuardEvent] = deque(maxlen=GUARD_EVENTS_KEPT)

        self._veto = False  # the guard refused the coming update
        self.last_epoch = 0
        self._step_count = 0
        #: the optimizer whose step hooks count updates (`hook_target`); None: each step() call is one update
        self.hooked = hook_target(optimizer)
        # steps / epochs: t is known from the updates alone, so an update that starts while earlier ones were not
        # taken in by step() (Lightning's interval="epoch", a loop stepping per epoch) takes them in first
        self._catch_up_at_update = clock not in DATA_CLOCKS and self.hooked is not None
        # every update made so far has been taken in (a bool, not a comparison of the counts: a compiled optimizer
        # step reading it sees the same value at every update of a loop that steps the scheduler each time)
        self._taken = True
        # set once an update starts with earlier ones not taken in: from then on the hooks move the clock
        self._following = False
        self._made_at_step = 0  # (following) updates made at the last step() call, for the idle warning
        self._idle = 0
        self._warned_cadence = False
        self._register_hooks()
        self._scales: list[float] = []
        self._refresh_scales()
        self._apply()

    # ---------------------------------------------------------------------------------------------- setup
    @staticmethod
    def _resolve_absolute(absolute: bool | None, marked: list[bool]) -> bool:
        """``absolute`` itself, or (None) whether the schedules hold LRs; refuses a mix and ``False`` with LRs."""
        if any(marked) and not all(marked):
            raise LrlabError(
                "some of the schedules hold learning rates (built by lrlab.compat) and others multipliers of the "
                f"optimizer's LR ({marked}): give all of one kind"
            )
        if absolute is None:
            return all(marked)
        if not absolute and all(marked):
            raise LrlabError(
                "the schedule holds learning rates (lrlab.compat builds the peers' schedules as LRs, e.g. "
                "'0.0003 * (...)'), so with absolute=False the LR would be the optimizer's LR times an LR; leave "
                "absolute unset (or True) to set lr = s(t)"
            )
        return absolute

    def _check_multipliers(self) -> None:
        """With ``absolute=False``: refuse a schedule that peaks at its group's own LR, warn on one below 0.01."""
        peaks: dict[Schedule, float] = {}
        for i, (s, base) in enumerate(zip(self.schedules, self.base_lrs)):
            if base in (0.0, 1.0):  # base * s == s (or 0): the reading does not matter
                continue
            if s not in peaks:
                peaks[s] = schedule_peak(s)
            peak = peaks[s]
            if math.isclose(peak, base, rel_tol=1e-9):
                raise LrlabError(
                    f"schedule {s} peaks at {peak:g}, param group {i}'s own LR: it holds learning rates, not "
                    f"multipliers, and with absolute=False the LR would peak at {base * peak:g} ({base:g} x {peak:g})."
                    " Pass absolute=True (lr = s(t)), or write the schedule as multipliers of the LR (peak 1)"
                )
            if peak < SMALL_PEAK:
                warnings.warn(
                    f"lrlab LRScheduler: schedule {s} never exceeds {peak:g}, and with absolute=False it multiplies "
                    f"param group {i}'s LR {base:g}, so the LR peaks at {base * peak:g}. If the schedule holds "
                    "learning rates, pass absolute=True",
                    UserWarning,
                    stacklevel=3,
                )

    def _initial_value(self, i: int, group: dict[str, Any], key: str) -> float:
        name, index = TUPLE_KEYS.get(key, (key, -1))
        if name not in group:
            numeric = sorted(k for k, v in group.items() if isinstance(v, (int, float, tuple)) and k != "params")
            raise LrlabError(
                f"also[{key!r}]: param group {i} has no {name!r} (this optimizer's groups hold: {', '.join(numeric)};"
                " beta1/beta2 name the elements of 'betas')"
            )
        value = group[name][index] if index >= 0 else group[name]
        init_key = f"initial_{key}"
        group.setdefault(init_key, value.clone() if isinstance(value, torch.Tensor) else value)
        try:
            return float(group[init_key])
        except (TypeError, ValueError):
            raise LrlabError(f"also[{key!r}]: param group {i} holds {name}={value!r}, not a number") from None

    def _refresh_scales(self) -> None:
        if self._plateau_state is not None:
            self._scales = list(self._plateau_state.levels)
        else:
            self._scales = [1.0] * len(self.base_lrs) if self.absolute else list(self.base_lrs)

    # ---------------------------------------------------------------------------------------------- hooks
    def _register_hooks(self) -> None:
        self._hooks = []
        if self.hooked is None:
            return
        self._hooks.append(self.hooked.register_step_post_hook(self._on_update))
        if self.guard is not None or self._catch_up_at_update:
            self._hooks.append(self.hooked.register_step_pre_hook(self._before_update))

    def __getstate__(self) -> dict[str, Any]:
        # hook handles are not copied with an optimizer (torch drops hooks when pickling it): re-register instead
        state = self.__dict__.copy()
        state.pop("_hooks", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._register_hooks()

    def _on_update(self, optimizer: Optimizer, args: Any, kwargs: Any) -> None:
        if self._veto:  # the guard emptied this update's gradients: nothing was applied
            self._veto = False
            return
        self._clock.update_made()
        self._taken = False
        if self._following:
            self._catch_up()  # the LR of the next update, visible at once (LearningRateMonitor, a Monitor)

    def _before_update(self, optimizer: Optimizer, args: Any, kwargs: Any) -> None:
        if self._veto:
            # a guarded update the caller stepped anyway: optimizers skip parameters without a gradient, so
            # nothing (no NaN, no momentum, no weight decay) reaches the weights
            for group in optimizer.param_groups:
                for p in group["params"]:
                    p.grad = None
        elif not self._taken and self._catch_up_at_update:
            # step() is called less often than the optimizer steps (Lightning's interval="epoch"): follow the
            # optimizer from now on, so that every update gets its own LR
            self._following = True
            self._made_at_step = self._clock.updates
            self._catch_up()

    @torch.compiler.disable
    def _catch_up(self) -> None:
        """Take in the updates made since the last ``step()`` and write the LRs of the next one, so that it gets
        its own LR however rarely ``step()`` is called. Outside any compiled graph: ``t`` is a Python float, which
        a traced optimizer step would bake in as a constant and recompile for."""
        self._clock.advance()
        self._taken = True
        self.last_epoch = self._clock.updates
        self._apply()

    # ---------------------------------------------------------------------------------------------- stepping
    def step(self, epoch: int | None = None, *, tokens: float | None = None,
             samples: float | None = None, reduce: bool = False) -> None:
        """Move the clock to the optimizer updates made so far and set the LRs for the next update.

        Call it after ``optimizer.step()`` / ``scaler.step(optimizer)``. Without a new optimizer update since the
        last call (GradScaler skipped it, or a micro-batch of gradient accumulation) the clock and the LRs stay;
        tokens / samples given on such a call are kept pending and counted at the next update.

        Args:
          epoch: not supported (torch deprecated it); raises.
          tokens / samples: with ``clock="tokens"`` / ``"samples"``, how many were consumed since the last call
            (>= 0): one micro-batch's, or one update's, summed over processes unless ``reduce``.
          reduce: sum ``tokens`` / ``samples`` over the processes of the default ``torch.distributed`` process
            group first (`global_count`: an all-reduce, so every process must call ``step`` equally often); each
            process then passes only its own count. Without an initialised process group the count is used as is.
        """
        if epoch is not None:
            raise LrlabError(
                f"LRScheduler.step() takes no epoch (got {epoch!r}): the clock counts optimizer updates. To report "
                "a metric to the plateau controller call scheduler.report(metric); to restore a clock use "
                "load_state_dict()"
            )
        clock = self._clock
        amount = clock.amount(tokens=tokens, samples=samples, reduce=reduce)
        if reduce:
            amount = global_count(amount)
        self._step_count += 1
        self._veto = False
        if self._following:  # the hooks have moved the clock and written the LRs
            self._idle = 0 if clock.made != self._made_at_step else self._idle + 1
            self._made_at_step = clock.made
            if self._idle and self._idle == self.warn_idle_after:
                self._warn_idle(self._idle)
            return
        if self.hooked is None:  # nothing counts updates: each call is one (DeepSpeed's engine calls it per update)
            clock.update_made()
        covered = clock.made - clock.updates
        if not clock.advance(amount):  # a micro-batch or a skipped update: its tokens count at the next update
            if clock.idle == self.warn_idle_after:
                self._warn_idle(clock.idle)
            return
        if covered > 1 and not self._warned_cadence:
            self._warned_cadence = True
            warnings.warn(
                f"lrlab LRScheduler.step() took in {covered} optimizer updates at once, so they all ran at the LR "
                f"of t={clock.t - clock.stride:g}: with clock={self.clock!r} call step({self.clock}=n) after every "
                "optimizer update (Lightning: lr_scheduler interval='step', see "
                "lrlab.integrations.lightning_scheduler_config)",
                UserWarning,
                stacklevel=2,
            )
        self._taken = True
        self.last_epoch = clock.updates
        self._apply()

    def _warn_idle(self, calls: int) -> None:
        warnings.warn(
            f"lrlab LRScheduler.step() was called {calls} times in a row without an optimizer update, "
            f"so the clock stays at t={self._clock.t:g} (it counts updates the optimizer makes). Call "
            "optimizer.step() (or scaler.step(optimizer)) before scheduler.step(), on the optimizer the "
            "scheduler was built with; if a GradScaler is skipping every update, the gradients have been "
            "inf/NaN throughout. To set the clock without training use load_state_dict().",
            UserWarning,
            stacklevel=3,
        )

    def _apply(self) -> None:
        """Write the values for the current clock into the param groups."""
        groups = self.optimizer.param_groups
        if len(groups) != len(self._scales):
            raise LrlabError(
                f"the optimizer has {len(groups)} param groups but had {len(self._scales)} when the scheduler was "
                "built: build the scheduler after the last add_param_group()"
            )
        t = self._clock.t
        mult = 1.0 if self._guard_state is None else self._guard_state.scale
        vals = [f(t) for f in self._evals] if self._evals else self._values_ahead(t)
        if len(vals) == 1:
            v = vals[0]
            lrs = [scale * v for scale in self._scales]
        else:
            lrs = [scale * vals[k] for k, scale in zip(self._which, self._scales)]
        if mult != 1.0:
            lrs = [lr * mult for lr in lrs]
        for group, lr in zip(groups, lrs):
            cur = group["lr"]
            if type(cur) is float:  # the common case first: isinstance() is slower (BENCHMARKS.md, step cost)
                group["lr"] = lr
            elif isinstance(cur, torch.Tensor):
                cur.fill_(lr)
            else:
                group["lr"] = lr
        for key, k, bases in self._also_plan:
            name, index = TUPLE_KEYS.get(key, (key, -1))
            v = vals[k]
            for group, base in zip(groups, bases):
                value = base * v
                cur = group[name]
                if index >= 0:
                    elem = cur[index]
                    if type(elem) is not float and isinstance(elem, torch.Tensor):
                        elem.fill_(value)
                    else:
                        group[name] = (*cur[:index], value, *cur[index + 1:])
                elif type(cur) is not float and isinstance(cur, torch.Tensor):
                    cur.fill_(value)
                else:
                    group[name] = value
        self._lrs = lrs
        self._last_lr = cast(Any, lrs)  # torch's attribute, for code that reads it directly

    def _values_ahead(self, t: float) -> list[float]:
        """Values of every distinct schedule at clock ``t`` (epoch / token / sample clocks).

        A scalar ``s(t)`` costs far more than a lookup (BENCHMARKS.md, step cost), so values are computed a block
        at a time on the vector path for the clocks the next updates reach if the run goes on as now
        (`UpdateClock.ahead`). A lookup matches only the exact float clock, so every number is ``s.values([t])[0]``; a
        changed stride just computes a new block.
        """
        got = self._ahead.get(t)
        if got is not None:
            return got
        ts = self._clock.ahead(AHEAD)
        columns = [s.values(ts).tolist() for s in self._distinct]
        self._ahead = {x: [c[i] for c in columns] for i, x in enumerate(ts.tolist())}
        return self._ahead[t]

    # ---------------------------------------------------------------------------------------------- reading
    @property
    def t(self) -> float:
        """The clock: updates (``steps``), epochs, tokens or samples taken in so far."""
        return self._clock.t

    @property
    def updates(self) -> int:
        """Optimizer updates the clock has taken in."""
        return self._clock.updates

    @property
    def schedule(self) -> Schedule:
        """The schedule of param group 0 (the only one unless one was given per group)."""
        return self.schedules[0]

    def get_last_lr(self) -> list[float]:  # type: ignore[override]
        """The LR of each param group for the next update, as Python floats (also for tensor LRs)."""
        return self._lrs

    def get_lr(self) -> list[float]:  # type: ignore[override]
        """Same as `get_last_lr` (the closed form needs no recursion)."""
        return list(self._lrs)

    # ---------------------------------------------------------------------------------------------- feedback
    def report(self, metric: float | torch.Tensor) -> bool:
        """Feed a metric (e.g. a validation loss) to the plateau controller. Returns whether the LR was reduced;
        a reduction applies at once. Reports outside the plateau's ``start``/``stop`` window are ignored."""
        if self.plateau is None or self._plateau_state is None:
            raise LrlabError("report() needs a plateau controller: LRScheduler(..., plateau=lrlab.plateau.Plateau())")
        before = self._plateau_state.reductions
        value = float(metric.detach()) if isinstance(metric, torch.Tensor) else float(metric)
        self._plateau_state = self.plateau.update(self._plateau_state, value, self._clock.t)
        if self._plateau_state.reductions == before:
            return False
        self._refresh_scales()
        self._apply()
        return True

    def check(self, loss: float | torch.Tensor, *, grad_norm: float | torch.Tensor | None = None,
              scaler: torch.amp.GradScaler | None = None) -> bool:
        """Ask the divergence guard whether the coming update may be applied; call after ``backward()``.

        Returns True to go ahead. False (NaN/inf loss, non-finite gradient norm, or a spike): skip
        ``optimizer.step()``; the LR multiplier has been reduced, the event appended to ``guard_events`` (the
        last `GUARD_EVENTS_KEPT`) and warned (``UserWarning``). If ``optimizer.step()`` runs anyway (a framework
        that always steps), the scheduler clears the gradients first, so the optimizer changes nothing, and the
        clock does not move.

        AMP: pass the ``GradScaler`` (``if sched.check(loss, scaler=scaler): scaler.step(opt)``, then
        ``scaler.update()`` in either case). The scheduler calls ``scaler.unscale_(optimizer)`` (unless you
        already did, e.g. to clip), so the gradient norm is the true one, not one ``scale`` (2**16 at first) times
        too large; and a non-finite gradient norm is then not a divergence: it is an fp16 overflow, which the
        scaler handles by skipping the update and lowering its scale (the clock holds, see the module notes).
        The loss checks (NaN/inf, spike) still apply; pass the unscaled loss. Without ``scaler=`` under AMP the
        gradients read are the scaled ones and every overflow the scaler would absorb counts as a divergence.

        Args:
          loss: this update's loss (a tensor is read with ``float()``, a device sync).
          grad_norm: the total gradient norm if you have it (``clip_grad_norm_``'s result, after
            ``scaler.unscale_`` under AMP); otherwise, with ``check_grads``, the scheduler computes it.
          scaler: the ``torch.amp.GradScaler`` stepping this optimizer, if any.
        """
        if self.guard is None or self._guard_state is None:
            raise LrlabError(
                "check() needs a divergence guard: LRScheduler(..., guard=lrlab.guard.DivergenceGuard())")
        if scaler is not None and not isinstance(scaler, torch.amp.GradScaler):
            raise LrlabError(f"scaler must be a torch.amp.GradScaler, got {type(scaler).__name__}")
        scaling = scaler is not None and scaler.is_enabled()
        norm: float | None = None
        if grad_norm is not None:
            norm = float(grad_norm)
        elif self.guard.check_grads:
            if scaling:
                self._unscale(cast(torch.amp.GradScaler, scaler))
            grads = [p.grad for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]
            norm = float(torch.nn.utils.get_total_norm(grads)) if grads else None
        if scaling and norm is not None and not math.isfinite(norm):
            norm = None  # an fp16 overflow: the scaler skips this update itself and lowers its scale
        value = float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
        self._guard_state, event = self.guard.update(self._guard_state, value, self._clock.t, norm)
        self._veto = event is not None
        if event is None:
            return True
        self.guard_events.append(event)
        # the count makes each message distinct, so Python's default filter shows every skip
        warnings.warn(f"lrlab divergence guard: {event} ({self._guard_state.skipped} skipped so far)", UserWarning,
                      stacklevel=2)
        self._apply()
        return False

    def _unscale(self, scaler: torch.amp.GradScaler) -> None:
        try:
            scaler.unscale_(self.optimizer)
        except RuntimeError as e:
            if "already been called" in str(e):  # the caller unscaled (to clip): the gradients are true already
                return
            if "after step" in str(e):
                raise LrlabError(
                    "check(loss, scaler=...) goes before scaler.step(optimizer): the guard decides whether to step"
                ) from None
            raise

    # ---------------------------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """The schedule spec and the clock (plus plateau / guard state when used); plain types only."""
        d: dict[str, Any] = {"spec": self._spec, **self._clock.state_dict(), "absolute": self.absolute}
        if not self.absolute:
            d["base_lrs"] = list(self.base_lrs)
        if self.also:
            d["also"] = {k: str(s) for k, s in self.also.items()}
        if self.plateau is not None and self._plateau_state is not None:
            d["plateau"] = {"config": self.plateau.to_dict(), "state": self._plateau_state.to_dict()}
        if self.guard is not None and self._guard_state is not None:
            d["guard"] = {"config": self.guard.to_dict(), "state": self._guard_state.to_dict()}
        return d

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Continue from a `state_dict`: the clock moves there and the LRs are written at once.

        Refused (`LrlabError`, showing both) when the state was saved from a different schedule, clock,
        ``absolute``, base LRs (with ``absolute=False``: the groups' LRs when the scheduler was built), ``also``,
        plateau or guard configuration. ``steps_per_epoch`` may differ: the epoch clock then continues from the
        saved epoch at the new rate. (A state from before ``absolute`` and the base LRs were saved is not checked
        for them.)
        """
        if not isinstance(state_dict, Mapping) or not {"spec", "clock", "t", "updates"} <= set(state_dict):
            keys = sorted(state_dict) if isinstance(state_dict, Mapping) else type(state_dict).__name__
            raise LrlabError(
                f"not an lrlab LRScheduler state (needs spec, clock, t, updates; got {keys}); a torch scheduler's "
                "state cannot be loaded into lrlab's"
            )
        self._same("schedule", _current_spelling(state_dict["spec"]), self._spec)
        self._same("clock", state_dict["clock"], self.clock)
        if "absolute" in state_dict:
            self._same("absolute", state_dict["absolute"], self.absolute)
        if not self.absolute and "base_lrs" in state_dict:
            self._same("base LRs (each param group's LR when the scheduler was built)",
                       list(state_dict["base_lrs"]), list(self.base_lrs))
        self._same("also", {k: _current_spelling(v) for k, v in state_dict.get("also", {}).items()},
                   {k: str(s) for k, s in self.also.items()})
        for name, cfg in (("plateau", self.plateau), ("guard", self.guard)):
            saved = state_dict.get(name)
            self._same(name, None if saved is None else saved.get("config"), None if cfg is None else cfg.to_dict())
        plateau_state = guard_state = None
        if self.plateau is not None:
            plateau_state = PlateauState.from_dict(state_dict["plateau"]["state"])
            if len(plateau_state.levels) != len(self.base_lrs):
                raise LrlabError(
                    f"the saved plateau state has {len(plateau_state.levels)} param groups, the optimizer "
                    f"{len(self.base_lrs)}"
                )
        if self.guard is not None:
            guard_state = GuardState.from_dict(state_dict["guard"]["state"])
        self._clock.load_state_dict(state_dict)
        if plateau_state is not None:
            self._plateau_state = plateau_state
            self._refresh_scales()
        if guard_state is not None:
            self._guard_state = guard_state
        self._veto = False
        self._taken = True
        self._made_at_step = self._clock.made
        self._idle = 0
        self.last_epoch = self._clock.updates
        self._apply()

    @staticmethod
    def _same(what: str, saved: object, mine: object) -> None:
        if saved != mine:
            raise LrlabError(
                f"cannot load a scheduler state saved with a different {what}:\n  saved: {saved}\n  this:  {mine}\n"
                f"build the scheduler with the saved {what} to resume that run"
            )

    def remove_hooks(self) -> None:
        """Detach from the optimizer (the scheduler stops counting its updates)."""
        for h in self._hooks:
            h.remove()
        self._hooks = []


# -------------------------------------------------------------------------------------------- distributed


def global_count(n: float, *, group: Any = None) -> float:
    """``n`` summed over the processes of a ``torch.distributed`` process group (default: the default group).

    For a token / sample clock where each process knows only what it consumed (uneven batches, padding removed):
    ``sched.step(tokens=global_count(local))``, or ``sched.step(tokens=local, reduce=True)``. It is a collective
    (one ``all_reduce`` of a float64, on the GPU with NCCL), so every process of the group must call it the same
    number of times. Without an initialised process group it returns ``n``. Counts are exact up to 2**53.

    >>> global_count(4096)  # no process group: n itself
    4096.0
    """
    import torch.distributed as dist

    value = check.nonneg("n", n)
    if not (dist.is_available() and dist.is_initialized()):
        return value
    device = torch.device("cpu")
    if dist.get_backend(group) == "nccl":
        device = torch.device("cuda", torch.cuda.current_device())
    buf = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(buf, op=dist.ReduceOp.SUM, group=group)
    return float(buf.item())


# -------------------------------------------------------------------------------------------- layer-wise groups


def layerwise_groups(
    model: nn.Module,
    blocks: Sequence[nn.Module],
    *,
    lr: float,
    decay: float,
    weight_decay: float = 0.0,
) -> list[dict[str, Any]]:
    """Param groups for layer-wise LR decay over a Transformer's blocks (BEiT / ELECTRA style).

    Layer ``0`` holds the parameters registered before the first block (embeddings), layer ``i`` (1..n) block
    ``i - 1``, layer ``n + 1`` everything after the last block (final norm, head). Layer ``k``'s LR is
    ``lr * decay ** (n + 1 - k)``: the head trains at ``lr``, the embeddings at ``lr * decay ** (n + 1)``.
    With ``weight_decay > 0``, parameters with fewer than 2 dimensions (biases, norm gains) get their own
    group with weight decay 0 (nanoGPT's rule). Frozen parameters are left out.

    Args:
      model: the model; its ``named_parameters()`` order decides before/after the blocks.
      blocks: the Transformer blocks, in order (e.g. ``model.transformer.h``).
      lr: the LR of the top layer (> 0).
      decay: the multiplier per layer down, in (0, 1].
      weight_decay: weight decay of parameters with >= 2 dimensions (>= 0).
    Returns:
      Param group dicts for any torch optimizer, bottom layer first, each with ``params``, ``lr``,
      ``weight_decay``, ``layer`` and ``lr_scale``. Give the scheduler one schedule per group for a different
      warm-up per layer (``[warm_emb if g["layer"] == 0 else s for g in groups]``).
    """
    lr = check.positive("lr", lr)
    decay = check.range("decay", decay, 0.0, 1.0, lo_open=True)
    weight_decay = check.nonneg("weight_decay", weight_decay)
    blocks = list(blocks)
    if not blocks:
        raise LrlabError("blocks must hold at least one module (the Transformer's blocks), got none")
    owner: dict[int, int] = {}
    for i, block in enumerate(blocks):
        params = list(block.parameters())
        if not params:
            raise LrlabError(f"blocks[{i}] ({type(block).__name__}) has no parameters")
        for p in params:
            owner.setdefault(id(p), i + 1)
    n = len(blocks)
    layers: dict[tuple[int, bool], list[torch.nn.Parameter]] = {}
    seen_block = False
    found = set()
    for _, p in model.named_parameters():
        layer = owner.get(id(p))
        if layer is not None:
            seen_block = True
            found.add(layer)
        else:
            layer = n + 1 if seen_block else 0
        if p.requires_grad:
            decays = weight_decay > 0 and p.ndim >= 2
            layers.setdefault((layer, decays), []).append(p)
    missing = sorted(set(range(1, n + 1)) - found)
    if missing:
        raise LrlabError(f"blocks{[m - 1 for m in missing]} are not part of the model's parameters")
    out = []
    for (layer, decays), params in sorted(layers.items(), key=lambda kv: (kv[0][0], not kv[0][1])):
        scale = decay ** (n + 1 - layer)
        out.append({"params": params, "lr": lr * scale, "weight_decay": weight_decay if decays else 0.0,
                    "layer": layer, "lr_scale": scale})
    return out
