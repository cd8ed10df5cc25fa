"""``torch.optim.lr_scheduler`` in lrlab: the same constructors and arguments, with the optimizer replaced by
``lr`` (a float, or a list of per-group base LRs). Nothing here imports torch.

    >>> from lrlab.compat import torch as T
    >>> s = T.SequentialLR([T.LinearLR(0.1, start_factor=0.01, total_iters=10), T.CosineAnnealingLR(0.1, T_max=90)],
    ...                    milestones=[10])
    >>> s(0), s(10), round(s(55), 12)
    (0.001, 0.1, 0.05)

The value at ``t`` is the LR in effect after ``t`` calls of ``scheduler.step()``, i.e. for update ``t``.
Matches: torch 2.13. Every schedule here is torch's closed form (``_get_closed_form_lr``, or ``get_lr`` where
that is already closed). torch's ``step()`` instead multiplies the previous LR by a ratio each update, so its
values drift from its own closed form by rounding. Measured against torch (largest relative difference over the
configurations of ``tests/test_compat_parity.py``, up to 1,500 updates, three parameter groups):

- ``StepLR`` 5.2e-16, ``MultiStepLR`` 1.3e-16, ``ConstantLR`` 0, ``LinearLR`` 7.2e-15, ``ExponentialLR``
  5.5e-15, ``PolynomialLR`` 6.0e-15, ``SequentialLR`` of these 2.2e-14: within the 1e-12 the tests assert.
- ``CosineAnnealingWarmRestarts``, ``CyclicLR``, ``OneCycleLR``: closed form in torch too; 0 (the same bits).
- ``CosineAnnealingLR``: torch's recursion ``(1 + cos(pi t / T)) / (1 + cos(pi (t-1) / T)) * (lr - eta_min) +
  eta_min`` stays within 1e-12 over the first ``T_max`` updates (7.8e-14 in the tests; 3.9e-13 at
  ``T_max=5000``). Past ``T_max`` the LR rises again and torch multiplies up the rounding left near the bottom,
  worst where ``eta_min`` is close to the base LR: 5.8e-12 in the tests; up to 6.2e-11 at ``T_max=1000``,
  1.4e-10 at 2000 and 2.0e-9 at 5000 within ``3 * T_max`` updates. The tests assert `COSINE_ANNEALING_BOUND`
  (1e-10) for ``T_max <= 1000`` over ``3 * T_max`` updates, and 1e-12 over the first ``T_max``.

Where torch disagrees with itself, lrlab follows what ``scheduler.step()`` does in training, or the closed form
where ``step()`` fails:

- ``ConstantLR(total_iters=0)``: torch's recursion applies ``factor`` at update 0 and never undoes it (its
  closed form would give the base LR); lrlab reproduces the recursion, ``lr * factor`` forever, and warns
  (`lrlab.compat.PeerWarning`). ``ConstantLR(factor=0)``: torch raises ``ZeroDivisionError`` at
  ``total_iters``; lrlab returns the base LR from there.
- ``LinearLR`` / ``PolynomialLR`` with ``total_iters=0`` divide by zero in the closed form (the recursion then
  sticks at the start factor): `ScheduleError` here.
- ``OneCycleLR`` raises past ``total_steps`` and, at exactly ``total_steps`` (a clock no update of the run
  uses), overshoots the last phase; lrlab holds the value of update ``total_steps - 1`` from then on.
- ``SequentialLR`` children are independent schedules here; in torch they share an optimizer, and a child that
  rewrites ``initial_lr`` (``OneCycleLR``) changes the base of children built after it.

Not covered: ``LambdaLR`` / ``MultiplicativeLR`` (callables), ``ChainedScheduler``, ``ReduceLROnPlateau``
(feedback, not a function of the clock). ``last_epoch`` must be -1: an lrlab schedule is resumed by evaluating
it at the clock.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Sequence

from lrlab.compat import (
    LR,
    Scheduled,
    at_milestones,
    base_lrs,
    check_lr,
    check_whole,
    in_lr_units,
    join,
    peer_quirk,
    per_group,
    unsupported,
    whole_length,
)
from lrlab.errors import ScheduleError
from lrlab.families import (
    Constant,
    Cosine,
    CosineRestarts,
    Cyclic,
    Exponential,
    Linear,
    MultiStep,
    OneCycle,
    Piecewise,
    Polynomial,
    Step,
)
from lrlab.schedule import Schedule, check_number, check_positive, check_range

__all__ = [
    "COSINE_ANNEALING_BOUND",
    "ConstantLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "CyclicLR",
    "ExponentialLR",
    "LinearLR",
    "MultiStepLR",
    "OneCycleLR",
    "PolynomialLR",
    "SequentialLR",
    "StepLR",
]

#: largest relative difference from torch's recursive ``CosineAnnealingLR`` that the parity tests accept past
#: ``T_max`` (for T_max <= 1000, up to 3 * T_max updates; 1e-12 holds over the first T_max); see the module docstring
COSINE_ANNEALING_BOUND = 1e-10


def _last_epoch(where: str, last_epoch: object) -> None:
    if last_epoch != -1:
        raise unsupported(where, f"last_epoch={last_epoch!r}",
                          "an lrlab schedule has no counter to restore; evaluate it at the clock instead (-1 only)")


def StepLR(lr: LR, step_size: int, gamma: float = 0.1, last_epoch: int = -1) -> Scheduled:
    """``lr * gamma ** (t // step_size)``.

    Args:
      lr: base LR (or one per parameter group).
      step_size: updates between decays, a whole number >= 1.
      gamma: factor per decay, > 0.
    Returns:
      `Step` (per group). Matches: ``torch.optim.lr_scheduler.StepLR``.
    """
    _last_epoch("StepLR", last_epoch)
    every = whole_length("StepLR.step_size", step_size)
    g = check_positive("StepLR.gamma", gamma)
    return per_group("StepLR.lr", lr, lambda b: Step(every=every, factor=g, peak=b))


def MultiStepLR(lr: LR, milestones: Sequence[int], gamma: float = 0.1, last_epoch: int = -1) -> Scheduled:
    """``lr * gamma ** (number of milestones <= t)``; a milestone listed twice decays twice.

    Args:
      lr: base LR (or one per parameter group).
      milestones: update numbers, whole numbers >= 0, in any order (torch counts them).
      gamma: factor per milestone, > 0.
    Returns:
      `MultiStep` (or a constant-shape `Piecewise` when a milestone is 0 or repeated), per group.
      Matches: ``torch.optim.lr_scheduler.MultiStepLR``.
    """
    _last_epoch("MultiStepLR", last_epoch)
    ms = [check_whole(f"MultiStepLR.milestones[{i}]", m) for i, m in enumerate(milestones)]
    g = check_positive("MultiStepLR.gamma", gamma)
    if not ms:
        return per_group("MultiStepLR.lr", lr, lambda b: Constant(value=b))
    counts = sorted(Counter(ms).items())
    times = tuple(float(m) for m, _ in counts)
    if all(c == 1 for _, c in counts) and times[0] >= 1:
        return per_group("MultiStepLR.lr", lr, lambda b: MultiStep(milestones=times, factor=g, peak=b))
    flat = sorted(ms)
    ks = [bisect.bisect_right(flat, m) for m, _ in counts]
    return per_group("MultiStepLR.lr", lr,
                     lambda b: Piecewise(times=times, levels=(b, *(b * g**k for k in ks))))


def ConstantLR(lr: LR, factor: float = 1.0 / 3, total_iters: int = 5, last_epoch: int = -1) -> Scheduled:
    """``lr * factor`` for updates ``t < total_iters``, then ``lr``.

    Args:
      lr: base LR (or one per parameter group).
      factor: in [0, 1].
      total_iters: whole number >= 0 (0: torch's ``step()`` keeps ``factor`` forever; reproduced, with a
        `lrlab.compat.PeerWarning`).
    Returns:
      A join of two `Constant` pieces (per group); ``Constant(lr * factor)`` for ``total_iters=0``. Matches:
      ``torch.optim.lr_scheduler.ConstantLR``.
    """
    _last_epoch("ConstantLR", last_epoch)
    f = check_range("ConstantLR.factor", factor, 0.0, 1.0)
    n = whole_length("ConstantLR.total_iters", total_iters, minimum=0)
    if n == 0:
        kept = per_group("ConstantLR.lr", lr, lambda b: Constant(value=b * f))
        if f != 1.0:
            peer_quirk("ConstantLR", f"with total_iters=0 torch applies factor={f:g} at the first update and never "
                                     "undoes it (its closed form would give the base LR)")
        return kept
    return per_group("ConstantLR.lr", lr,
                     lambda b: join([Constant(value=b * f, total=n), Constant(value=b)]))


def LinearLR(lr: LR, start_factor: float = 1.0 / 3, end_factor: float = 1.0, total_iters: int = 5,
             last_epoch: int = -1) -> Scheduled:
    """``lr * (start_factor + (end_factor - start_factor) * min(t, total_iters) / total_iters)``.

    Args:
      lr: base LR (or one per parameter group).
      start_factor: in (0, 1]. end_factor: in [0, 1].
      total_iters: updates of the ramp, whole number >= 1.
    Returns:
      `Linear` from ``lr * start_factor`` to ``lr * end_factor`` (per group), which holds its end.
      Matches: ``torch.optim.lr_scheduler.LinearLR`` (a few ulps from its recursion).
    """
    _last_epoch("LinearLR", last_epoch)
    s = check_range("LinearLR.start_factor", start_factor, 0.0, 1.0, lo_open=True)
    e = check_range("LinearLR.end_factor", end_factor, 0.0, 1.0)
    n = whole_length("LinearLR.total_iters", total_iters)
    return per_group("LinearLR.lr", lr, lambda b: Linear(peak=b * s, floor=b * e, total=n))


def ExponentialLR(lr: LR, gamma: float, last_epoch: int = -1) -> Scheduled:
    """``lr * gamma ** t``.

    Args:
      lr: base LR (or one per parameter group).
      gamma: factor per update, > 0.
    Returns:
      `Exponential` (per group). Matches: ``torch.optim.lr_scheduler.ExponentialLR`` (its recursion multiplies
      by ``gamma`` each step; a few ulps apart).
    """
    _last_epoch("ExponentialLR", last_epoch)
    g = check_positive("ExponentialLR.gamma", gamma)
    return per_group("ExponentialLR.lr", lr, lambda b: Exponential(gamma=g, peak=b))


def PolynomialLR(lr: LR, total_iters: int = 5, power: float = 1.0, last_epoch: int = -1) -> Scheduled:
    """``lr * (1 - min(t, total_iters) / total_iters) ** power``: 0 from ``total_iters`` on.

    Args:
      lr: base LR (or one per parameter group).
      total_iters: whole number >= 1.
      power: >= 0 (0: constant ``lr``, as torch computes it).
    Returns:
      `Polynomial` to 0 (per group). Matches: ``torch.optim.lr_scheduler.PolynomialLR``.
    """
    _last_epoch("PolynomialLR", last_epoch)
    n = whole_length("PolynomialLR.total_iters", total_iters)
    p = check_number("PolynomialLR.power", power)
    if p < 0:
        raise ScheduleError(f"PolynomialLR.power must be >= 0 (torch divides by zero at total_iters), got {p}")
    if p == 0:
        return per_group("PolynomialLR.lr", lr, lambda b: Constant(value=b))
    return per_group("PolynomialLR.lr", lr, lambda b: Polynomial(peak=b, floor=0.0, power=p, total=n))


def CosineAnnealingLR(lr: LR, T_max: int, eta_min: float = 0.0, last_epoch: int = -1) -> Scheduled:
    """``eta_min + (lr - eta_min) * (1 + cos(pi * t / T_max)) / 2``, continuing periodically past ``T_max``
    (the LR rises again, as in torch).

    Args:
      lr: base LR (or one per parameter group).
      T_max: half period in updates, whole number >= 1.
      eta_min: the floor (an LR).
    Returns:
      `Cosine` with ``periodic=True`` (per group). Matches: ``torch.optim.lr_scheduler.CosineAnnealingLR``
      within `COSINE_ANNEALING_BOUND` (its recursion drifts; see the module docstring).
    """
    _last_epoch("CosineAnnealingLR", last_epoch)
    T = whole_length("CosineAnnealingLR.T_max", T_max)
    floor = check_lr("CosineAnnealingLR.eta_min", eta_min)
    return per_group("CosineAnnealingLR.lr", lr, lambda b: Cosine(peak=b, floor=floor, total=T, periodic=True))


def CosineAnnealingWarmRestarts(lr: LR, T_0: int, T_mult: int = 1, eta_min: float = 0.0,
                                last_epoch: int = -1) -> Scheduled:
    """SGDR: cosine from ``lr`` to ``eta_min`` over ``T_0`` updates, restarting, each period ``T_mult`` times
    the last.

    Args:
      lr: base LR (or one per parameter group).
      T_0: first period, whole number >= 1. T_mult: whole number >= 1. eta_min: the floor.
    Returns:
      `CosineRestarts` (per group). Matches: ``torch.optim.lr_scheduler.CosineAnnealingWarmRestarts`` stepped
      once per update, to the last bit.
    """
    _last_epoch("CosineAnnealingWarmRestarts", last_epoch)
    period = whole_length("CosineAnnealingWarmRestarts.T_0", T_0)
    mult = float(check_whole("CosineAnnealingWarmRestarts.T_mult", T_mult, 1))
    floor = check_lr("CosineAnnealingWarmRestarts.eta_min", eta_min)
    return per_group("CosineAnnealingWarmRestarts.lr", lr,
                     lambda b: CosineRestarts(period=period, mult=mult, peak=b, floor=floor))


def _paired(where: str, a: object, b: object) -> tuple[list[float], list[float], bool]:
    """Two per-group LR arguments (``base_lr``, ``max_lr``), each a number or a list; a number is used for
    every group."""
    va, la = base_lrs(f"{where}.base_lr", a)
    vb, lb = base_lrs(f"{where}.max_lr", b)
    if la and lb and len(va) != len(vb):
        raise ScheduleError(f"{where}: per-group lists must have the same length, got {len(va)} and {len(vb)}")
    n = max(len(va), len(vb))
    return (va * n if len(va) == 1 and n > 1 and not la else va,
            vb * n if len(vb) == 1 and n > 1 and not lb else vb, la or lb)


def CyclicLR(base_lr: float | Sequence[float], max_lr: float | Sequence[float], step_size_up: int = 2000,
             step_size_down: int | None = None, mode: str = "triangular", gamma: float = 1.0,
             scale_fn: object = None, scale_mode: str = "cycle", cycle_momentum: bool = True,
             base_momentum: float = 0.8, max_momentum: float = 0.9, last_epoch: int = -1) -> Scheduled:
    """Triangular cycles between ``base_lr`` and ``max_lr`` (Smith 2017). torch sets the optimizer's LR to
    ``base_lr``, so there is no ``lr`` argument: a list in ``base_lr`` or ``max_lr`` gives one schedule per group.

    Args:
      base_lr, max_lr: the bounds (numbers, or per-group lists).
      step_size_up: updates rising (> 0); step_size_down: updates falling (default: step_size_up).
      mode: triangular, triangular2 or exp_range; gamma: exp_range's factor per update (> 0).
      scale_fn: must be None (a callable cannot be a schedule value); scale_mode applies only with scale_fn.
      cycle_momentum, base_momentum, max_momentum: momentum cycling, which does not change the LR (accepted,
      not scheduled here).
    Returns:
      `Cyclic` (per group). Matches: ``torch.optim.lr_scheduler.CyclicLR``, to the last bit.
    """
    _last_epoch("CyclicLR", last_epoch)
    if scale_fn is not None:
        raise unsupported("CyclicLR", "scale_fn", "a callable cannot be part of a schedule value; use mode=...")
    if mode not in ("triangular", "triangular2", "exp_range"):
        raise ScheduleError(f"CyclicLR.mode must be one of triangular, triangular2, exp_range; got {mode!r}")
    up = check_positive("CyclicLR.step_size_up", step_size_up)
    down = None if step_size_down is None else check_positive("CyclicLR.step_size_down", step_size_down)
    g = check_positive("CyclicLR.gamma", gamma)
    lows, highs, is_list = _paired("CyclicLR", base_lr, max_lr)
    out: list[Schedule] = [in_lr_units(Cyclic(floor=lo, peak=hi, up=float(up),
                                              down=None if down is None else float(down), mode=mode, gamma=g))
                           for lo, hi in zip(lows, highs)]
    return out if is_list else out[0]


def OneCycleLR(max_lr: float | Sequence[float], total_steps: int | None = None, epochs: int | None = None,
               steps_per_epoch: int | None = None, pct_start: float = 0.3, anneal_strategy: str = "cos",
               cycle_momentum: bool = True, base_momentum: float | Sequence[float] = 0.85,
               max_momentum: float | Sequence[float] = 0.95, div_factor: float = 25.0,
               final_div_factor: float = 1e4, three_phase: bool = False, last_epoch: int = -1) -> Scheduled:
    """The one-cycle policy: from ``max_lr / div_factor`` up to ``max_lr``, then down to
    ``max_lr / div_factor / final_div_factor``. torch derives every LR from ``max_lr``, so there is no ``lr``.

    Args:
      max_lr: peak LR (or one per group).
      total_steps: updates in the cycle (>= 1), or give epochs and steps_per_epoch (their product).
      pct_start: fraction of the cycle rising, in (0, 1) with ``pct_start * total_steps > 1``
        (three_phase: < 0.5).
      anneal_strategy: cos or linear. div_factor, final_div_factor: > 0. three_phase: rise, fall back to the
        start, then anneal. cycle_momentum, base_momentum, max_momentum: momentum only (accepted, not scheduled).
    Returns:
      `OneCycle` (per group); clocks from ``total_steps - 1`` on hold the last update's value (torch raises past
      ``total_steps``). Matches: ``torch.optim.lr_scheduler.OneCycleLR``, to the last bit.
    """
    _last_epoch("OneCycleLR", last_epoch)
    if total_steps is not None:
        total = check_whole("OneCycleLR.total_steps", total_steps, 1)
    elif epochs is not None and steps_per_epoch is not None:
        total = check_whole("OneCycleLR.epochs", epochs, 1) * check_whole("OneCycleLR.steps_per_epoch",
                                                                           steps_per_epoch, 1)
    else:
        raise ScheduleError("OneCycleLR needs total_steps, or both epochs and steps_per_epoch")
    pct = check_range("OneCycleLR.pct_start", pct_start, 0.0, 1.0)
    if anneal_strategy not in ("cos", "linear"):
        raise ScheduleError(f"OneCycleLR.anneal_strategy must be one of cos, linear; got {anneal_strategy!r}")
    div = check_positive("OneCycleLR.div_factor", div_factor)
    final = check_positive("OneCycleLR.final_div_factor", final_div_factor)
    if not pct * total > 1:
        raise ScheduleError(
            f"OneCycleLR: pct_start * total_steps must be > 1 so that the LR rises for at least one update "
            f"(torch divides by zero at 1 and starts inside the falling phase below it); got pct_start={pct}, "
            f"total_steps={total}"
        )
    if three_phase and pct >= 0.5:
        raise ScheduleError(f"OneCycleLR: three_phase needs pct_start < 0.5 (the fall mirrors the rise), got {pct}")
    shape = "cosine" if anneal_strategy == "cos" else "linear"

    def build(m: float) -> Schedule:
        start = m / div
        return OneCycle(total=float(total), peak=m, initial=start, floor=start / final, pct_start=pct,
                        three_phase=bool(three_phase), shape=shape)

    return per_group("OneCycleLR.max_lr", max_lr, build)


def SequentialLR(schedulers: Sequence[Schedule | Sequence[Schedule]], milestones: Sequence[int],
                 last_epoch: int = -1) -> Scheduled:
    """Scheduler ``i`` from update ``milestones[i - 1]`` on, on its own clock (it restarts at 0 there).

    The LR lives in the children (built with ``lr=...``), as in torch, where they hold the optimizer.

    Args:
      schedulers: lrlab schedules (typically from this module), or per-group lists of them (all the same
        length).
      milestones: one fewer than the schedulers; whole numbers >= 0, non-decreasing.
    Returns:
      A `Join` (per group); a child whose span differs from its own length is cut or extended with its own
      formula (`lrlab.compat.fit`). Matches: ``torch.optim.lr_scheduler.SequentialLR``.
    """
    _last_epoch("SequentialLR", last_epoch)
    if not schedulers:
        raise ScheduleError("SequentialLR expects at least one scheduler, got none")
    listed = [isinstance(s, (list, tuple)) for s in schedulers]
    if any(listed) and not all(listed):
        raise ScheduleError("SequentialLR: give every scheduler as one schedule, or every one as a per-group list")
    if not all(listed):
        return at_milestones("SequentialLR", list(schedulers), milestones)  # type: ignore[arg-type]
    groups = {len(s) for s in schedulers}  # type: ignore[arg-type]
    if len(groups) != 1:
        raise ScheduleError(f"SequentialLR: per-group lists must have the same length, got {sorted(groups)}")
    n = groups.pop()
    return [at_milestones("SequentialLR", [s[g] for s in schedulers], milestones)  # type: ignore[index]
            for g in range(n)]
