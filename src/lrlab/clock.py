"""`UpdateClock`: where a training run stands on the schedule clock ``t``, counted from real optimizer updates.

A scheduler feeds it two events: `update_made` when the optimizer applies an update (torch's post-step hook),
and `advance` when the training loop calls ``scheduler.step()``. `advance` takes in the updates made since the
last call and converts them to ``t`` for the clock kind:

- ``steps``: ``t`` = updates taken in;
- ``epochs``: ``t = anchor_t + (updates - anchor_updates) / steps_per_epoch`` (the anchor moves when a run
  resumes at another ``steps_per_epoch``);
- ``tokens`` / ``samples``: ``t`` = the amounts passed to `advance`, summed.

A call with no new update (a micro-batch of gradient accumulation, or an update that a GradScaler skipped)
leaves ``t`` where it is, keeps the amount *pending* for the next real update, and counts as idle. Why, and how
this compares to torch and Megatron-LM: docs/torch.md. This module imports NumPy only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from lrlab.checks import check, describe
from lrlab.errors import LrlabError

#: what ``t`` counts
CLOCKS = ("steps", "epochs", "tokens", "samples")
#: the clocks whose amount the training loop passes to every ``step()``
DATA_CLOCKS = ("tokens", "samples")


class UpdateClock:
    """The schedule clock of one run: update count, pending tokens/samples, epoch anchor, idle calls.

    Args:
      kind: one of `CLOCKS`.
      steps_per_epoch: optimizer updates per epoch (> 0), with ``kind="epochs"`` and only with it.

    Attributes (read them; only the methods change them):
      t: the schedule clock for the next update.
      updates: optimizer updates taken in by `advance`.
      made: optimizer updates made (`update_made`); ahead of `updates` until the next `advance`.
      pending: tokens / samples passed since the last update that was taken in.
      stride: the last update's tokens / samples.
      anchor: ``(t, updates)`` the epoch clock counts from.
      idle: `advance` calls in a row that found no new update.

    >>> c = UpdateClock("tokens")
    >>> c.advance(100.0)  # a micro-batch: no update yet, its tokens wait
    False
    >>> c.update_made(); c.advance(100.0)
    True
    >>> c.t, c.updates, c.pending
    (200.0, 1, 0.0)
    """

    __slots__ = ("anchor", "idle", "kind", "made", "pending", "steps_per_epoch", "stride", "t", "updates")

    def __init__(self, kind: str = "steps", *, steps_per_epoch: float | None = None) -> None:
        check.choice("clock", kind, CLOCKS)
        if (kind == "epochs") != (steps_per_epoch is not None):
            raise LrlabError(
                "steps_per_epoch goes with clock='epochs' (optimizer updates per epoch) and only with it; got "
                f"clock={kind!r}, steps_per_epoch={describe(steps_per_epoch)}"
            )
        self.kind = kind
        self.steps_per_epoch = None if steps_per_epoch is None else check.positive("steps_per_epoch", steps_per_epoch)
        self.t = 0.0
        self.updates = 0
        self.made = 0
        self.pending = 0.0
        self.stride = 0.0
        self.anchor = (0.0, 0)
        self.idle = 0

    # -------------------------------------------------------------------------------------------- events
    def amount(self, *, tokens: object = None, samples: object = None, reduce: bool = False) -> float:
        """The amount one ``step()`` passes: ``tokens`` for a token clock, ``samples`` for a sample clock (>= 0),
        nothing for the others (0.0). ``reduce`` (summing the amount over processes) needs one of the first two."""
        if self.kind in DATA_CLOCKS:
            given, other = (tokens, samples) if self.kind == "tokens" else (samples, tokens)
            if given is None or other is not None:
                raise LrlabError(
                    f"clock={self.kind!r}: call scheduler.step({self.kind}=n) with the {self.kind} of the update "
                    f"just made; got tokens={describe(tokens)}, samples={describe(samples)}"
                )
            return check.nonneg(self.kind, given)
        if tokens is not None or samples is not None or reduce:
            raise LrlabError(
                "step(tokens=..)/step(samples=..)/step(reduce=True) need LRScheduler(..., clock='tokens'/'samples'); "
                f"this scheduler's clock is {self.kind!r}"
            )
        return 0.0

    def update_made(self) -> None:
        """The optimizer applied one update."""
        self.made += 1

    def advance(self, amount: float = 0.0) -> bool:
        """Take in the updates made since the last call; returns whether ``t`` moved.

        Args:
          amount: the tokens / samples consumed since the last call (token and sample clocks; see `amount`).
        Returns:
          False when no update was made since the last call: ``t`` stays, `amount` is kept pending for the next
          update, and `idle` grows.
        """
        if self.made == self.updates:
            self.pending += amount
            self.idle += 1
            return False
        self.idle = 0
        self.updates = self.made
        if self.kind == "steps":
            self.t = float(self.updates)
        elif self.kind == "epochs":
            t0, u0 = self.anchor
            self.t = t0 + (self.updates - u0) / self.steps_per_epoch  # type: ignore[operator]
        else:
            amount += self.pending
            self.pending = 0.0
            self.t += amount
            self.stride = amount
        return True

    def ahead(self, n: int) -> npt.NDArray[np.float64]:
        """``t`` now and at the next ``n - 1`` updates if the run goes on as now (epochs: the same rate; tokens /
        samples: the same stride; steps: one per update). A guess for computing values a block at a time: a
        lookup must match the exact float ``t``."""
        k = np.arange(1, n, dtype=np.float64)
        if self.kind == "steps":
            later = self.t + k
        elif self.kind == "epochs":
            t0, u0 = self.anchor
            later = t0 + (self.updates + k - u0) / self.steps_per_epoch  # type: ignore[operator]
        elif self.stride > 0:
            later = self.t + self.stride * k
        else:
            later = np.zeros(0)
        return np.concatenate([np.array([self.t]), later])

    # -------------------------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """``clock``, ``t``, ``updates``; plus ``pending`` (tokens / samples) or ``steps_per_epoch`` and
        ``epoch_anchor`` (epochs). Plain types only."""
        d: dict[str, Any] = {"clock": self.kind, "t": self.t, "updates": self.updates}
        if self.kind in DATA_CLOCKS:
            d["pending"] = self.pending
        if self.kind == "epochs":
            d["steps_per_epoch"] = self.steps_per_epoch
            d["epoch_anchor"] = [self.anchor[0], self.anchor[1]]
        return d

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from a `state_dict` of the same kind (checked by the caller, which names the mismatch).

        A saved ``steps_per_epoch`` other than this clock's starts a new epoch anchor at the saved ``t``: the
        epochs continue from there at the new rate. ``pending`` may be absent (0).
        """
        t = check.nonneg("state_dict['t']", state["t"])
        updates = check.whole("state_dict['updates']", state["updates"])
        pending = check.nonneg("state_dict['pending']", state.get("pending", 0.0))
        anchor = (t, updates)
        saved_anchor = state.get("epoch_anchor")
        if state.get("steps_per_epoch") == self.steps_per_epoch and saved_anchor is not None:
            anchor = (check.nonneg("state_dict['epoch_anchor'][0]", saved_anchor[0]),
                      check.whole("state_dict['epoch_anchor'][1]", saved_anchor[1]))
        self.t, self.updates, self.made, self.pending = t, updates, updates, pending
        self.anchor = anchor if self.kind == "epochs" else (0.0, 0)
        self.idle = 0

    def __getstate__(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v)

    def __repr__(self) -> str:
        return f"UpdateClock({self.kind!r}, t={self.t:g}, updates={self.updates}, pending={self.pending:g})"
