"""User-facing errors. The CLI prints their message on one line and exits with code 2."""

from __future__ import annotations


class LrlabError(ValueError):
    """Bad input from a user: a malformed spec, an out-of-range argument, a NaN metric.

    Every message names the field, the value received and what is allowed.
    """


class ScheduleError(LrlabError):
    """A schedule was built, parsed, bound or evaluated with invalid input."""
