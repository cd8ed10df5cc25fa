"""What a display learns of a comparison or a run in progress: `Event` values passed to an `EventSink` (the CLI's
progress bars). Emitting events changes nothing in the results.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Event:
    """Progress report for a display. kind: ``phase`` (a new batch of jobs: ``total`` updates in ``jobs``
    jobs), ``start``/``step`` (job ``job`` at update ``step`` of ``total``), ``finish`` (``loss``: final val
    loss of a trial; None for a prefix), ``skip`` (already finished), ``stopping`` (Ctrl-C), ``note`` (``label``: a
    line to show as it is, e.g. what data a resumed comparison reads)."""

    kind: str
    job: str = ""
    label: str = ""
    step: int = 0
    start: int = 0
    total: int = 0
    jobs: int = 0
    loss: float | None = None


EventSink = Callable[[Event], None]
