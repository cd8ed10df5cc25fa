"""Peer dialects: constructors named and parameterised exactly like torch, Hugging Face, timm and optax, that
return lrlab schedules.

    >>> from lrlab.compat import hf
    >>> s = hf.get_cosine_schedule_with_warmup(3e-4, num_warmup_steps=10, num_training_steps=100)
    >>> s(5), s(10)
    (0.00015, 0.0003)

Submodules (imported on first use; none of them imports the peer library):

- `lrlab.compat.torch`: ``torch.optim.lr_scheduler`` (StepLR ... OneCycleLR, SequentialLR);
- `lrlab.compat.hf`: ``transformers.optimization.get_*_schedule*`` and ``get_scheduler``;
- `lrlab.compat.timm`: ``timm.scheduler`` (Cosine, Tanh, Step, MultiStep, Poly, WSD);
- `lrlab.compat.optax`: ``optax.schedules``.

Conventions shared by all four:

- Where the peer reads the base LR from an optimizer, the optimizer argument is replaced by ``lr``: a float
  gives one `Schedule` of absolute learning rates; a list of per-group base LRs gives a list of schedules, one
  per parameter group. optax constructors, and torch's ``CyclicLR`` / ``OneCycleLR`` (which take their LRs as
  arguments), take no ``lr``.
- The value at clock ``t`` is the LR the peer has in effect for optimizer update ``t`` (0-based): torch and HF
  after ``t`` calls of ``scheduler.step()``; timm what ``step_update(num_updates=t)`` (``step(epoch=t)`` with
  ``t_in_epochs``) sets; optax ``schedule(t)``.
- Arguments keep the peer's names. Invalid values raise `lrlab.ScheduleError`; so do options that lrlab cannot
  express (callables, timm's random ``noise_*``) and inputs where the peer's values are ill-defined (HF's
  cosine oscillating when the warm-up is not shorter than training).
- Where a peer accepts an input and does something surprising with it (optax holding ``init_value`` for a
  non-positive ``transition_steps``, or scheduling a negative LR; torch's ``ConstantLR(total_iters=0)`` keeping
  its factor forever), lrlab reproduces the peer's values and warns with a `PeerWarning` saying what the peer
  does. A schedule with negative values is refused by ``bind(total)`` (lrlab's own rule for a run), so use it
  as returned.
- Parity with the real peers is tested in ``tests/test_compat_parity.py`` at ``rel=1e-12``; each module's
  docstring lists where a peer deviates from its own formula and what lrlab returns instead.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
import warnings
from collections.abc import Callable, Sequence
from types import ModuleType

from lrlab.compose import Join, Overlay, Product
from lrlab.errors import ScheduleError
from lrlab.families import (
    Constant,
    CosineRestarts,
    Cyclic,
    Exponential,
    InverseSqrt,
    MultiStep,
    Noam,
    Piecewise,
    Step,
    Tanh,
)
from lrlab.schedule import Schedule, check_int, check_nonneg

__all__ = ["LR", "PeerWarning", "Scheduled", "base_lrs", "check_lr", "fit", "holds_lrs", "in_lr_units", "join",
           "peer_quirk", "per_group", "unsupported"]

#: a base LR, or one per parameter group
LR = float | Sequence[float]
#: one schedule (``lr`` was a float) or one per parameter group (``lr`` was a list)
Scheduled = Schedule | list[Schedule]

_SUBMODULES = ("torch", "hf", "timm", "optax")


def __getattr__(name: str) -> ModuleType:
    # `import lrlab.compat` stays light; `lrlab.compat.hf` loads the submodule on first use
    if name in _SUBMODULES:
        return importlib.import_module(f"lrlab.compat.{name}")
    raise AttributeError(f"module 'lrlab.compat' has no attribute {name!r}")


def check_lr(where: str, value: object) -> float:
    """A learning rate (or an LR-valued argument such as ``eta_min``): a finite number >= 0.

    The check sits here, at the peer boundary, and not in the families: a composite may need a negative
    constant inside (timm's WSD subtracts ``lr_min``), but no peer accepts a negative LR as input.
    """
    return check_nonneg(where, value)


def base_lrs(where: str, lr: object) -> tuple[list[float], bool]:
    """The per-group base LRs in ``lr`` and whether it was a list.

    Args:
      where: the argument's name for error messages, e.g. ``"StepLR.lr"``.
      lr: a finite number >= 0, or a non-empty sequence of them.
    Returns:
      ``(values, is_list)``.
    """
    if isinstance(lr, (list, tuple)):
        if not lr:
            raise ScheduleError(f"{where} must be a number or a non-empty list of per-group LRs, got {lr!r}")
        return [check_lr(f"{where}[{i}]", v) for i, v in enumerate(lr)], True
    return [check_lr(where, lr)], False


def per_group(where: str, lr: object, build: Callable[[float], Schedule]) -> Scheduled:
    """``build(base)`` for each base LR in ``lr``: one schedule for a number, a list for a list (each marked
    `in_lr_units`)."""
    values, is_list = base_lrs(where, lr)
    out = [in_lr_units(build(v)) for v in values]
    return out if is_list else out[0]


#: instance attribute marking a schedule whose values are learning rates (what the peers schedule), not multipliers
LR_UNITS = "_lrlab_lr_units"


def in_lr_units(s: Schedule) -> Schedule:
    """Mark ``s`` (in place; returned) as holding learning rates, so that `lrlab.torch.LRScheduler` sets
    ``lr = s(t)`` instead of multiplying the optimizer's LR by it. The mark is not part of the value: it does not
    change equality, hashing or the spec text, and a schedule derived from ``s`` (``bind``, composition) does not
    carry it."""
    object.__setattr__(s, LR_UNITS, True)  # frozen dataclass: the mark sits beside the fields, like cached values
    return s


def holds_lrs(s: object) -> bool:
    """Whether ``s`` was marked by `in_lr_units` (every schedule a compat constructor returns is)."""
    return bool(getattr(s, LR_UNITS, False))


class PeerWarning(UserWarning):
    """A compat constructor reproduced a peer's surprising behaviour for the input it was given (see the message)."""


def peer_quirk(where: str, what: str) -> None:
    """Warn (`PeerWarning`) that ``where`` reproduces the peer's behaviour ``what`` for the input it was given.

    The warning points at the caller's line: the first frame outside ``lrlab.compat``.
    """
    frame, level = sys._getframe(0), 1
    while frame.f_back is not None and str(frame.f_globals.get("__name__", "")).startswith("lrlab.compat"):
        frame, level = frame.f_back, level + 1
    warnings.warn(f"{where}: {what}; lrlab reproduces the peer's values", PeerWarning, stacklevel=level)


def unsupported(where: str, option: str, why: str) -> ScheduleError:
    """The error for a peer option that lrlab cannot express (raise it)."""
    return ScheduleError(f"{where}: {option} is not supported by lrlab: {why}")


def check_whole(where: str, value: object, minimum: int = 0) -> int:
    """A whole number >= minimum (an int, or a float with no fractional part)."""
    return check_int(where, value, minimum=minimum)


# families whose `total` is only the span they occupy in a join (their formula never reads it)
_OPEN_ENDED = (Constant, Step, MultiStep, Exponential, InverseSqrt, Noam, Cyclic, Piecewise, CosineRestarts, Tanh)


def fit(s: Schedule, length: float) -> Schedule:
    """``s`` on its own clock, occupying exactly ``length`` clock units inside a `Join`.

    A join places each piece after the lengths of the ones before it; torch's ``SequentialLR`` and optax's
    ``join_schedules`` place pieces at milestones instead, which need not equal a piece's own length (a cosine
    with ``T_max=100`` may be cut at 50, or run on past its end). The values on ``[0, length)`` are exactly
    ``s``'s: an open-ended family gets ``total=length``; a shorter one is multiplied by a constant 1 lasting
    ``length``; a longer one is laid over a constant lasting ``length`` (`Overlay`: its head shows).

    >>> from lrlab.families import Cosine
    >>> fit(Cosine(total=100), 50)
    overlay(cosine(100), base=constant(0, total=50))
    """
    if s.needs_total:
        raise ScheduleError(f"{s} has lengths given as fractions of the run or left open: bind it to a total first")
    own = s.length
    if own is not None and float(own) == float(length):
        return s
    if type(s) in _OPEN_ENDED:
        return dataclasses.replace(s, total=float(length))  # type: ignore[call-arg]
    if own is None or own < length:
        return Product(factors=(Constant(value=1.0, total=float(length)), s))
    return Overlay(head=s, base=Constant(value=0.0, total=float(length)))


def join(pieces: Sequence[Schedule]) -> Schedule:
    """`Join` of the pieces, flattened (a join inside a join is spliced in: the same values, and the form the
    spec text parses back to), or the piece itself when there is only one."""
    flat: list[Schedule] = []
    for p in pieces:
        flat.extend(p.pieces if isinstance(p, Join) else (p,))
    if not flat:
        raise ScheduleError("a join needs at least one piece")
    return flat[0] if len(flat) == 1 else Join(pieces=tuple(flat))


def at_milestones(where: str, pieces: Sequence[Schedule], milestones: Sequence[float]) -> Schedule:
    """Piece ``i`` from clock ``milestones[i - 1]`` (0 for the first) on its own clock, until the next milestone.

    Args:
      where: the caller's name for error messages.
      pieces: the schedules, one more than ``milestones``.
      milestones: non-decreasing clock positions >= 0 (whole numbers: peers count updates); a piece whose
        segment is empty is skipped, as the peers do.
    """
    if len(milestones) != len(pieces) - 1:
        raise ScheduleError(
            f"{where}: expected {len(pieces) - 1} milestone(s) for {len(pieces)} schedules (one fewer), "
            f"got {len(milestones)}"
        )
    ms = [float(check_whole(f"{where}.milestones[{i}]", m)) for i, m in enumerate(milestones)]
    for i in range(1, len(ms)):
        if ms[i] < ms[i - 1]:
            raise ScheduleError(f"{where}: milestones must be non-decreasing, got {list(milestones)}")
    out: list[Schedule] = []
    starts = [0.0, *ms]
    for i, piece in enumerate(pieces):
        if not isinstance(piece, Schedule):
            raise ScheduleError(f"{where}: schedule {i} must be an lrlab schedule, got {piece!r}")
        if i == len(pieces) - 1:
            out.append(piece)
            continue
        span = starts[i + 1] - starts[i]
        if span > 0:
            out.append(fit(piece, span))
    return in_lr_units(join(out))


def whole_length(where: str, value: object, minimum: int = 1) -> float:
    """A length in clock units for a family field: a whole number >= minimum, as a float.

    Peer lengths are whole numbers of updates or epochs; lrlab would read a length in (0, 1) as a fraction of
    the run, so keeping them whole keeps them absolute.
    """
    return float(check_whole(where, value, minimum))
