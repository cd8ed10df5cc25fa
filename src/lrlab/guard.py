"""`DivergenceGuard`: skip an update whose loss is NaN/inf, whose gradient norm is not finite, or whose loss spikes.

A frozen config with ``init() -> GuardState`` and ``update(state, loss, t, grad_norm) -> (state, event)`` (optax's
stateful shape, like `lrlab.plateau.Plateau`): a spike is a loss above ``spike`` times the mean of the last
``window`` accepted losses; each skip multiplies the LR by ``factor``. `lrlab.torch.LRScheduler` consults it in
``check(loss)`` and keeps its state in ``state_dict()``. This module does not import torch.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lrlab.checks import check, describe
from lrlab.errors import LrlabError

__all__ = ["DivergenceError", "DivergenceGuard", "GuardEvent", "GuardState"]


class DivergenceError(LrlabError):
    """The divergence guard skipped ``max_skips`` updates in a row: the run is not recovering."""


@dataclass(frozen=True, kw_only=True)
class GuardEvent:
    """One skipped update.

    Attributes:
      kind: ``nan`` / ``inf`` (the loss), ``grad`` (non-finite gradient norm), or ``spike``.
      t: the scheduler's clock at the skipped update.
      loss: the loss of the skipped update.
      reference: mean of the recent accepted losses the spike test compared against (nan when none).
      scale: the LR multiplier after this event.
    """

    kind: str
    t: float
    loss: float
    reference: float
    scale: float

    def __str__(self) -> str:
        why = {"nan": "the loss is NaN", "inf": "the loss is infinite", "grad": "the gradient norm is not finite",
               "spike": f"the loss spiked to {self.loss:g}, over the recent mean {self.reference:g}"}.get(
                   self.kind, self.kind)
        return f"skipped the update at t={self.t:g}: {why}; LR multiplier now {self.scale:g}"


@dataclass(frozen=True, kw_only=True)
class GuardState:
    """Guard state: the LR multiplier, recent accepted losses, skip counters."""

    scale: float = 1.0
    recent: tuple[float, ...] = ()
    consecutive: int = 0
    skipped: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "recent": list(self.recent), "consecutive": self.consecutive,
                "skipped": self.skipped}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GuardState:
        try:
            return cls(scale=float(d["scale"]), recent=tuple(float(x) for x in d["recent"]),
                       consecutive=int(d["consecutive"]), skipped=int(d["skipped"]))
        except (KeyError, TypeError, ValueError) as e:
            raise LrlabError(f"guard state must hold scale, recent, consecutive, skipped; got {d!r} ({e})") from None


@dataclass(frozen=True, kw_only=True)
class DivergenceGuard:
    """Skip an update whose loss is NaN/inf, whose gradient norm is non-finite, or whose loss spikes; then
    multiply the LR by ``factor``.

    A spike is ``loss > spike * mean(last window accepted losses)``, tested once ``window`` losses have been
    accepted (it assumes a positive loss, such as cross-entropy). Skipped losses never enter the reference.

    Args:
      spike: ratio to the recent mean that counts as a spike (> 1; ``inf``: only NaN/inf are caught).
      window: accepted losses in the reference mean (whole number >= 1).
      factor: LR multiplier applied at each skip, in (0, 1] (1: skip without reducing).
      min_scale: floor of the accumulated multiplier (>= 0).
      max_skips: after this many consecutive skips, raise `DivergenceError` (0: never).
      check_grads: also skip when the gradient norm is non-finite (the scheduler computes it when not given).

    >>> g = DivergenceGuard(window=2, spike=2.0, factor=0.5)
    >>> s = g.init()
    >>> for loss in (1.0, 1.2):
    ...     s, event = g.update(s, loss, t=0)
    >>> s, event = g.update(s, 5.0, t=2)
    >>> event.kind, event.reference, s.scale
    ('spike', 1.1, 0.5)
    """

    spike: float = 3.0
    window: int = 20
    factor: float = 0.5
    min_scale: float = 0.0
    max_skips: int = 10
    check_grads: bool = True

    def __post_init__(self) -> None:
        # inf is allowed here (catch only NaN/inf losses), so not check.number, which refuses it
        if isinstance(self.spike, bool) or not isinstance(self.spike, (int, float)) or not self.spike > 1:
            raise LrlabError(f"guard.spike must be a number > 1 (or inf to catch only NaN/inf), got "
                             f"{describe(self.spike)}")
        object.__setattr__(self, "window", check.whole("guard.window", self.window, minimum=1))
        check.range("guard.factor", self.factor, 0.0, 1.0, lo_open=True)
        check.nonneg("guard.min_scale", self.min_scale)
        object.__setattr__(self, "max_skips", check.whole("guard.max_skips", self.max_skips))
        if not isinstance(self.check_grads, bool):
            raise LrlabError(f"guard.check_grads must be True or False, got {describe(self.check_grads)}")

    def init(self) -> GuardState:
        return GuardState()

    def update(self, state: GuardState, loss: float, t: float,
               grad_norm: float | None = None) -> tuple[GuardState, GuardEvent | None]:
        """Judge one update. Returns the new state and the event when the update must be skipped (else None).

        Raises `DivergenceError` when this skip makes ``max_skips`` in a row.
        """
        loss = float(loss)
        ref = math.fsum(state.recent) / len(state.recent) if state.recent else math.nan
        kind = None
        if math.isnan(loss):
            kind = "nan"
        elif math.isinf(loss):
            kind = "inf"
        elif grad_norm is not None and not math.isfinite(float(grad_norm)):
            kind = "grad"
        elif len(state.recent) >= self.window and loss > self.spike * ref:
            kind = "spike"
        if kind is None:
            recent = (*state.recent, loss)[-self.window:]
            return dataclasses.replace(state, recent=recent, consecutive=0), None
        scale = max(state.scale * self.factor, self.min_scale)
        new = GuardState(scale=scale, recent=state.recent, consecutive=state.consecutive + 1,
                         skipped=state.skipped + 1)
        if self.max_skips and new.consecutive >= self.max_skips:
            raise DivergenceError(
                f"the divergence guard skipped {new.consecutive} updates in a row (guard.max_skips="
                f"{self.max_skips}); last loss {loss!r} ({kind}) at t={t:g}, LR multiplier now {scale:g}: the run "
                "is not recovering — lower the peak LR, lengthen the warm-up, or raise guard.max_skips"
            )
        return new, GuardEvent(kind=kind, t=float(t), loss=loss, reference=ref, scale=scale)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
