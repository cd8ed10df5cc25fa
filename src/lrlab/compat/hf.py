"""Hugging Face ``transformers.optimization`` schedules in lrlab: every ``get_*_schedule*`` function and
``get_scheduler``, with the optimizer replaced by ``lr`` (a float, or a list of per-group base LRs).

    >>> from lrlab.compat import hf
    >>> s = hf.get_linear_schedule_with_warmup(1e-3, num_warmup_steps=10, num_training_steps=110)
    >>> s
    0.001 * (warmup(10, peak=1) >> linear(100))
    >>> s(5), s(60)
    (0.0005, 0.0005)

HF's schedules are ``LambdaLR``: the LR for update ``t`` is ``base_lr * lr_lambda(t)``. Each function here
returns exactly that shape, ``base * factor(t)``, with the factor written in lrlab families that repeat HF's
arithmetic operation by operation, so the values agree to the last bit (``get_polynomial_decay_*`` and the
``warmup_lr_rate`` variant within a few ulps). Matches: transformers 5.x.

Where HF repairs or misreads its input, lrlab raises `ScheduleError` instead:

- ``num_training_steps <= num_warmup_steps``: HF's ``max(1, ...)`` guard makes the cosine oscillate between 1
  and 0 after the warm-up (the polynomial divides by zero); refused here, except for the linear schedule, whose
  values stay well defined and are reproduced: the warm-up ``t / num_warmup_steps`` takes the whole run, then
  0.
- ``min_lr`` and ``lr_end`` are read by HF relative to ``optimizer.defaults["lr"]``, not the group's LR. Pass
  that value as ``default_lr`` when it differs from ``lr`` (default: ``lr``, or ``lr[0]`` for a list).
- ``get_reduce_on_plateau_schedule``, ``get_greedy_schedule`` (feedback from a metric) and
  ``get_adafactor_schedule`` (Adafactor's internal step size) are not functions of the clock: they raise.
- ``num_cycles`` of the hard-restart cosine must not exceed the decay steps (a cycle shorter than one update);
  HF's ``(num_cycles * progress) % 1.0`` can land just below a restart when ``num_cycles * progress`` rounds
  below a whole number, lrlab restarts exactly there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from lrlab.compat import LR, Scheduled, base_lrs, check_lr, check_whole, join, per_group, unsupported
from lrlab.compose import Overlay, Product, Shift
from lrlab.errors import ScheduleError
from lrlab.families import Constant, Cooldown, Cosine, CosineRestarts, InverseSqrt, Linear, Polynomial, Warmup
from lrlab.schedule import Schedule, check_choice, check_positive

__all__ = [
    "get_adafactor_schedule",
    "get_constant_schedule",
    "get_constant_schedule_with_warmup",
    "get_cosine_schedule_with_warmup",
    "get_cosine_with_hard_restarts_schedule_with_warmup",
    "get_cosine_with_min_lr_schedule_with_warmup",
    "get_cosine_with_min_lr_schedule_with_warmup_lr_rate",
    "get_greedy_schedule",
    "get_inverse_sqrt_schedule",
    "get_linear_schedule_with_warmup",
    "get_polynomial_decay_schedule_with_warmup",
    "get_reduce_on_plateau_schedule",
    "get_scheduler",
    "get_wsd_schedule",
]


def _last_epoch(where: str, last_epoch: object) -> None:
    if last_epoch != -1:
        raise unsupported(where, f"last_epoch={last_epoch!r}",
                          "an lrlab schedule has no counter to restore; evaluate it at the clock instead (-1 only)")


def _scaled(where: str, lr: object, factor: Schedule) -> Scheduled:
    """``base * factor`` per group, multiplied in LambdaLR's order (base first)."""
    return per_group(where, lr, lambda b: factor if b == 1.0 else Product(factors=(Constant(value=b), factor)))


def _steps(where: str, num_warmup_steps: object, num_training_steps: object) -> tuple[int, int]:
    w = check_whole(f"{where}.num_warmup_steps", num_warmup_steps)
    T = check_whole(f"{where}.num_training_steps", num_training_steps, 1)
    if w >= T:
        raise ScheduleError(
            f"{where}: num_training_steps ({T}) must be > num_warmup_steps ({w}): there would be no decay phase "
            "(HF's max(1, ...) guard then makes the LR jump between values after the warm-up)"
        )
    return w, T


def _with_warmup(w: int, decay: Schedule) -> Schedule:
    # HF's warm-up factor is t / w, ending at 1 whatever the decay starts at
    return join([Warmup(total=float(w), peak=1.0), decay]) if w else decay


def _default_lr(where: str, lr: object, default_lr: float | None) -> float:
    if default_lr is not None:
        return check_positive(f"{where}.default_lr", default_lr)
    values, _ = base_lrs(f"{where}.lr", lr)
    return values[0]


def get_constant_schedule(lr: LR, last_epoch: int = -1) -> Scheduled:
    """The base LR at every update.

    Args:
      lr: base LR (or one per parameter group).
    Returns:
      `Constant` (per group). Matches: ``get_constant_schedule``.
    """
    _last_epoch("get_constant_schedule", last_epoch)
    return per_group("get_constant_schedule.lr", lr, lambda b: Constant(value=b))


def get_constant_schedule_with_warmup(lr: LR, num_warmup_steps: int, last_epoch: int = -1) -> Scheduled:
    """``lr * t / num_warmup_steps`` during the warm-up, then ``lr``.

    Args:
      lr: base LR (or one per parameter group).
      num_warmup_steps: whole number >= 0.
    Returns:
      ``lr * (warmup >> constant)`` (per group). Matches: ``get_constant_schedule_with_warmup``.
    """
    _last_epoch("get_constant_schedule_with_warmup", last_epoch)
    w = check_whole("get_constant_schedule_with_warmup.num_warmup_steps", num_warmup_steps)
    return _scaled("get_constant_schedule_with_warmup.lr", lr, _with_warmup(w, Constant(value=1.0)))


def get_linear_schedule_with_warmup(lr: LR, num_warmup_steps: int, num_training_steps: int,
                                    last_epoch: int = -1) -> Scheduled:
    """Linear warm-up from 0, then linear decay to 0 at ``num_training_steps``, 0 after.

    Args:
      lr: base LR (or one per parameter group).
      num_warmup_steps: whole number >= 0. num_training_steps: whole number >= 1; when it is not above
        ``num_warmup_steps`` the warm-up covers the whole run and the LR is 0 from ``num_warmup_steps`` on (HF's
        ``max(0, (T - t) / max(1, T - w))``).
    Returns:
      ``lr * (warmup >> linear)`` (per group), or ``lr * (warmup >> constant(0))`` when the warm-up is not
      shorter than training. Matches: ``get_linear_schedule_with_warmup``.
    """
    where = "get_linear_schedule_with_warmup"
    _last_epoch(where, last_epoch)
    w = check_whole(f"{where}.num_warmup_steps", num_warmup_steps)
    T = check_whole(f"{where}.num_training_steps", num_training_steps, 1)
    if w >= T:
        return _scaled(f"{where}.lr", lr, join([Warmup(total=float(w), peak=1.0), Constant(value=0.0)]))
    return _scaled(f"{where}.lr", lr, _with_warmup(w, Linear(peak=1.0, floor=0.0, total=float(T - w))))


def get_cosine_schedule_with_warmup(lr: LR, num_warmup_steps: int, num_training_steps: int,
                                    num_cycles: float = 0.5, last_epoch: int = -1) -> Scheduled:
    """Linear warm-up, then ``0.5 * (1 + cos(pi * num_cycles * 2 * progress))``; the cosine continues past
    the end (it rises again after ``num_training_steps``, as in HF).

    Args:
      lr: base LR (or one per parameter group).
      num_warmup_steps: whole number >= 0. num_training_steps: whole number > num_warmup_steps.
      num_cycles: > 0 (0.5: one half cosine down to 0).
    Returns:
      ``lr * (warmup >> cosine(periodic=true))`` (per group). Matches: ``get_cosine_schedule_with_warmup``.
    """
    _last_epoch("get_cosine_schedule_with_warmup", last_epoch)
    w, T = _steps("get_cosine_schedule_with_warmup", num_warmup_steps, num_training_steps)
    nc = check_positive("get_cosine_schedule_with_warmup.num_cycles", num_cycles)
    return _scaled("get_cosine_schedule_with_warmup.lr", lr,
                   _with_warmup(w, Cosine(total=float(T - w), cycles=nc, periodic=True)))


def get_cosine_with_hard_restarts_schedule_with_warmup(lr: LR, num_warmup_steps: int, num_training_steps: int,
                                                       num_cycles: int = 1, last_epoch: int = -1) -> Scheduled:
    """Linear warm-up, then ``num_cycles`` cosines from 1 to 0, each restarting at 1; 0 from
    ``num_training_steps`` on.

    Args:
      lr: base LR (or one per parameter group).
      num_warmup_steps: whole number >= 0. num_training_steps: whole number > num_warmup_steps.
      num_cycles: > 0 and at most ``num_training_steps - num_warmup_steps`` (need not divide it).
    Returns:
      ``lr * (warmup >> cosine_restarts >> constant(0))`` (per group).
      Matches: ``get_cosine_with_hard_restarts_schedule_with_warmup``.
    """
    _last_epoch("get_cosine_with_hard_restarts_schedule_with_warmup", last_epoch)
    where = "get_cosine_with_hard_restarts_schedule_with_warmup"
    w, T = _steps(where, num_warmup_steps, num_training_steps)
    nc = check_positive(f"{where}.num_cycles", num_cycles)
    M = float(T - w)
    if nc > M:
        raise ScheduleError(f"{where}: num_cycles ({nc}) must be <= num_training_steps - num_warmup_steps ({M:g}): "
                            "a cycle must last at least one update")
    cycles = join([CosineRestarts(period=M / nc, total=M), Constant(value=0.0)])
    return _scaled(f"{where}.lr", lr, _with_warmup(w, cycles))


def get_polynomial_decay_schedule_with_warmup(lr: LR, num_warmup_steps: int, num_training_steps: int,
                                              lr_end: float = 1e-7, power: float = 1.0, last_epoch: int = -1,
                                              *, default_lr: float | None = None) -> Scheduled:
    """Linear warm-up, then ``(lr_init - lr_end) * (1 - progress) ** power + lr_end`` (relative to the group's
    LR: ``base * that / lr_init``), ``lr_end`` after ``num_training_steps``.

    Args:
      lr: base LR (or one per parameter group).
      num_warmup_steps: whole number >= 0. num_training_steps: whole number > num_warmup_steps.
      lr_end: the final LR, < lr_init. power: > 0.
      default_lr: ``lr_init``, the optimizer's ``defaults["lr"]`` (default: ``lr``, or ``lr[0]``).
    Returns:
      ``warmup >> polynomial`` in absolute LRs (per group). Matches: ``get_polynomial_decay_schedule_with_warmup``
      within a few ulps (HF divides by ``lr_init`` and multiplies by the base again).
    """
    where = "get_polynomial_decay_schedule_with_warmup"
    _last_epoch(where, last_epoch)
    w, T = _steps(where, num_warmup_steps, num_training_steps)
    end = check_lr(f"{where}.lr_end", lr_end)
    p = check_positive(f"{where}.power", power)
    lr_init = _default_lr(where, lr, default_lr)
    if not lr_init > end:
        raise ScheduleError(f"{where}: lr_end ({end}) must be smaller than the initial lr ({lr_init})")
    ratio = end / lr_init

    def build(b: float) -> Schedule:
        decay = Polynomial(peak=b, floor=b * ratio, power=p, total=float(T - w))
        return join([Warmup(total=float(w), peak=b), decay]) if w else decay

    return per_group(f"{where}.lr", lr, build)


def get_inverse_sqrt_schedule(lr: LR, num_warmup_steps: int, timescale: int | None = None,
                              last_epoch: int = -1) -> Scheduled:
    """Linear warm-up, then ``1 / sqrt((t - num_warmup_steps + timescale) / timescale)``.

    Args:
      lr: base LR (or one per parameter group).
      num_warmup_steps: whole number >= 0.
      timescale: > 0 (default: num_warmup_steps, or 10,000 without warm-up).
    Returns:
      ``lr * (warmup >> inverse_sqrt)`` (per group). Matches: ``get_inverse_sqrt_schedule``.
    """
    _last_epoch("get_inverse_sqrt_schedule", last_epoch)
    w = check_whole("get_inverse_sqrt_schedule.num_warmup_steps", num_warmup_steps)
    ts = (w or 10_000) if timescale is None else check_positive("get_inverse_sqrt_schedule.timescale", timescale)
    return _scaled("get_inverse_sqrt_schedule.lr", lr, _with_warmup(w, InverseSqrt(timescale=float(ts))))


def _min_rate(where: str, lr: object, min_lr: float | None, min_lr_rate: float | None,
              default_lr: float | None) -> float:
    if min_lr is not None and min_lr_rate is not None:
        raise ScheduleError(f"{where}: give only one of min_lr ({min_lr}) and min_lr_rate ({min_lr_rate})")
    if min_lr is not None:
        rate = check_lr(f"{where}.min_lr", min_lr) / _default_lr(where, lr, default_lr)
    elif min_lr_rate is None:
        raise ScheduleError(f"{where}: one of min_lr or min_lr_rate is required")
    else:
        rate = check_lr(f"{where}.min_lr_rate", min_lr_rate)
    return rate


def get_cosine_with_min_lr_schedule_with_warmup(lr: LR, num_warmup_steps: int, num_training_steps: int,
                                                num_cycles: float = 0.5, last_epoch: int = -1,
                                                min_lr: float | None = None, min_lr_rate: float | None = None,
                                                *, default_lr: float | None = None) -> Scheduled:
    """Like `get_cosine_schedule_with_warmup`, but the cosine falls to ``min_lr_rate`` (``factor * (1 - rate) +
    rate``) instead of 0.

    Args:
      lr: base LR (or one per parameter group).
      num_warmup_steps: whole number >= 0. num_training_steps: whole number > num_warmup_steps.
      num_cycles: > 0. min_lr: an LR >= 0, read relative to ``default_lr``; or min_lr_rate: >= 0 (one of them).
      default_lr: the optimizer's ``defaults["lr"]`` that HF divides ``min_lr`` by (default: ``lr``/``lr[0]``).
    Returns:
      ``lr * (warmup >> cosine(floor=rate, periodic=true))`` (per group).
      Matches: ``get_cosine_with_min_lr_schedule_with_warmup``.
    """
    where = "get_cosine_with_min_lr_schedule_with_warmup"
    _last_epoch(where, last_epoch)
    w, T = _steps(where, num_warmup_steps, num_training_steps)
    nc = check_positive(f"{where}.num_cycles", num_cycles)
    rate = _min_rate(where, lr, min_lr, min_lr_rate, default_lr)
    return _scaled(f"{where}.lr", lr,
                   _with_warmup(w, Cosine(total=float(T - w), cycles=nc, floor=rate, periodic=True)))


def get_cosine_with_min_lr_schedule_with_warmup_lr_rate(
        lr: LR, num_warmup_steps: int, num_training_steps: int, num_cycles: float = 0.5, last_epoch: int = -1,
        min_lr: float | None = None, min_lr_rate: float | None = None, warmup_lr_rate: float | None = None,
        *, default_lr: float | None = None) -> Scheduled:
    """The variant that counts one step ahead: warm-up ``(t + 1) / num_warmup_steps`` (or ``warmup_lr_rate +
    (1 - warmup_lr_rate) * t / (num_warmup_steps - 1)``), then the cosine to ``min_lr_rate`` at progress
    ``(t - num_warmup_steps + 1) / (num_training_steps - num_warmup_steps)``.

    Args: as `get_cosine_with_min_lr_schedule_with_warmup`, plus warmup_lr_rate (the warm-up's first factor).
    Returns:
      ``lr * (...)`` (per group); without warm-up the cosine is `Shift`-ed one step ahead.
      Matches: ``get_cosine_with_min_lr_schedule_with_warmup_lr_rate`` (a few ulps on the warm-up).
    """
    where = "get_cosine_with_min_lr_schedule_with_warmup_lr_rate"
    _last_epoch(where, last_epoch)
    w, T = _steps(where, num_warmup_steps, num_training_steps)
    nc = check_positive(f"{where}.num_cycles", num_cycles)
    rate = _min_rate(where, lr, min_lr, min_lr_rate, default_lr)
    # the cosine's clock is t - (w - 1): it starts at update w - 1, where the warm-up also reaches 1
    cos = Cosine(total=float(T - w), cycles=nc, floor=rate, periodic=True)
    factor: Schedule
    if w == 0:
        factor = Shift(inner=cos, by=1.0)
    elif warmup_lr_rate is None:
        # (t + 1) / w is a t / w warm-up one step ahead
        factor = join([Shift(inner=Warmup(total=float(w), peak=1.0), by=1.0), cos] if w >= 2 else [cos])
    else:
        r0 = check_lr(f"{where}.warmup_lr_rate", warmup_lr_rate)
        if w == 1:
            factor = Overlay(head=Constant(value=r0, total=1.0), base=cos)
        else:
            factor = join([Warmup(total=float(w - 1), floor=r0, peak=1.0), cos])
    return _scaled(f"{where}.lr", lr, factor)


_WARMUP_SHAPES = {"linear": "linear", "cosine": "cosine", "1-sqrt": "sqrt"}
_DECAY_SHAPES = {"linear": "linear", "cosine": "cosine", "1-sqrt": "sqrt"}


def get_wsd_schedule(lr: LR, num_warmup_steps: int, num_decay_steps: int, num_training_steps: int | None = None,
                     num_stable_steps: int | None = None, warmup_type: str = "linear", decay_type: str = "cosine",
                     min_lr_ratio: float = 0, num_cycles: float = 0.5, last_epoch: int = -1) -> Scheduled:
    """Warmup-stable-decay: warm-up from ``min_lr_ratio`` to 1, constant 1, decay to ``min_lr_ratio``, then
    ``min_lr_ratio``.

    Args:
      lr: base LR (or one per parameter group).
      num_warmup_steps, num_decay_steps: whole numbers >= 0.
      num_training_steps: used for the stable length ``num_training_steps - warmup - decay`` when
        ``num_stable_steps`` is not given (one of them is required; ``num_stable_steps`` wins).
      warmup_type: linear, cosine or 1-sqrt. decay_type: linear, cosine or 1-sqrt.
      min_lr_ratio: >= 0. num_cycles: > 0 (cosine decay).
    Returns:
      ``lr * (warmup >> constant >> cooldown >> constant)`` (per group). Matches: ``get_wsd_schedule``.
    """
    where = "get_wsd_schedule"
    _last_epoch(where, last_epoch)
    w = check_whole(f"{where}.num_warmup_steps", num_warmup_steps)
    d = check_whole(f"{where}.num_decay_steps", num_decay_steps)
    if num_stable_steps is not None:
        s = check_whole(f"{where}.num_stable_steps", num_stable_steps)
    elif num_training_steps is not None:
        T = check_whole(f"{where}.num_training_steps", num_training_steps)
        s = T - w - d
        if s < 0:
            raise ScheduleError(f"{where}: num_training_steps ({T}) must be >= num_warmup_steps ({w}) + "
                                f"num_decay_steps ({d})")
    else:
        raise ScheduleError(f"{where}: either num_training_steps or num_stable_steps is required")
    check_choice(f"{where}.warmup_type", warmup_type, list(_WARMUP_SHAPES))
    check_choice(f"{where}.decay_type", decay_type, list(_DECAY_SHAPES))
    r = check_lr(f"{where}.min_lr_ratio", min_lr_ratio)
    nc = check_positive(f"{where}.num_cycles", num_cycles)
    pieces: list[Schedule] = []
    if w:
        pieces.append(Warmup(total=float(w), floor=r, peak=1.0, shape=_WARMUP_SHAPES[warmup_type]))
    if s:
        pieces.append(Constant(value=1.0, total=float(s)))
    if d:
        pieces.append(Cooldown(total=float(d), shape=_DECAY_SHAPES[decay_type], peak=1.0, floor=r, cycles=nc))
    pieces.append(Constant(value=r))
    return _scaled(f"{where}.lr", lr, join(pieces))


def get_reduce_on_plateau_schedule(lr: LR, **kwargs: Any) -> Scheduled:
    """Not a function of the clock: the LR drops when a metric stops improving. Always raises `ScheduleError`."""
    raise unsupported("get_reduce_on_plateau_schedule", "a plateau schedule",
                      "its LR depends on the validation metric, not on the clock")


def get_greedy_schedule(lr: LR, **kwargs: Any) -> Scheduled:
    """Not a function of the clock: GreedyLR moves the LR by the training loss. Always raises `ScheduleError`."""
    raise unsupported("get_greedy_schedule", "GreedyLR", "its LR depends on the training loss, not on the clock")


def get_adafactor_schedule(lr: LR, initial_lr: float = 0.0) -> Scheduled:
    """Not a schedule: a proxy for Adafactor's own step size, which depends on the parameters' scale.
    Always raises `ScheduleError`."""
    raise unsupported("get_adafactor_schedule", "AdafactorSchedule",
                      "it reports Adafactor's internal step size, which depends on the parameters, not on the clock")


_BY_NAME: dict[str, Callable[..., Scheduled]] = {
    "linear": get_linear_schedule_with_warmup,
    "cosine": get_cosine_schedule_with_warmup,
    "cosine_with_restarts": get_cosine_with_hard_restarts_schedule_with_warmup,
    "polynomial": get_polynomial_decay_schedule_with_warmup,
    "constant": get_constant_schedule,
    "constant_with_warmup": get_constant_schedule_with_warmup,
    "inverse_sqrt": get_inverse_sqrt_schedule,
    "reduce_lr_on_plateau": get_reduce_on_plateau_schedule,
    "cosine_with_min_lr": get_cosine_with_min_lr_schedule_with_warmup,
    "cosine_warmup_with_min_lr": get_cosine_with_min_lr_schedule_with_warmup_lr_rate,
    "warmup_stable_decay": get_wsd_schedule,
    "greedy": get_greedy_schedule,
}


def get_scheduler(name: str, lr: LR, num_warmup_steps: int | None = None, num_training_steps: int | None = None,
                  scheduler_specific_kwargs: Mapping[str, Any] | None = None) -> Scheduled:
    """A schedule by its ``lr_scheduler_type`` name, with HF's rules for which arguments each one takes.

    Args:
      name: linear, cosine, cosine_with_restarts, polynomial, constant, constant_with_warmup, inverse_sqrt,
        cosine_with_min_lr, cosine_warmup_with_min_lr, warmup_stable_decay (reduce_lr_on_plateau and greedy
        raise: they are not functions of the clock).
      lr: base LR (or one per parameter group).
      num_warmup_steps, num_training_steps: as each schedule requires.
      scheduler_specific_kwargs: the schedule's other arguments (e.g. ``num_cycles``, ``min_lr``).
    Returns:
      The schedule (per group). Matches: ``transformers.get_scheduler``.
    """
    key = str(getattr(name, "value", name))
    check_choice("get_scheduler.name", key, list(_BY_NAME))
    fn = _BY_NAME[key]
    kwargs = dict(scheduler_specific_kwargs or {})
    if key == "constant":
        return fn(lr)
    if key in ("reduce_lr_on_plateau", "greedy"):
        return fn(lr, **kwargs)
    if num_warmup_steps is None:
        raise ScheduleError(f"get_scheduler: {key} requires num_warmup_steps")
    if key == "constant_with_warmup":
        return fn(lr, num_warmup_steps=num_warmup_steps)
    if key == "inverse_sqrt":
        return fn(lr, num_warmup_steps=num_warmup_steps, **kwargs)
    if key == "warmup_stable_decay":
        return fn(lr, num_warmup_steps=num_warmup_steps, num_training_steps=num_training_steps, **kwargs)
    if num_training_steps is None:
        raise ScheduleError(f"get_scheduler: {key} requires num_training_steps")
    return fn(lr, num_warmup_steps=num_warmup_steps, num_training_steps=num_training_steps, **kwargs)
