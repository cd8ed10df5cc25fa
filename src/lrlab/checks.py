"""The package's one set of input validators: each returns the cleaned value or raises a user-facing error.

One wording per rule ("must be a finite number >= 0", "must be a whole number >= 1"), whatever the module. A
`Checks` value carries the error class to raise: `lrlab.schedule` uses ``Checks(ScheduleError)``, everything
else the default `check` (`LrlabError`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lrlab.errors import LrlabError

_REAL = (int, float, np.integer, np.floating)


def describe(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to `limit` characters: error messages never echo a huge input whole."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class Checks:
    """Validators raising `error` (an `LrlabError` subclass) with a message naming the field, value and rule."""

    error: type[LrlabError] = LrlabError

    def number(self, name: str, value: object) -> float:
        """A finite real number (bools and text are refused, not converted)."""
        if isinstance(value, bool) or not isinstance(value, _REAL):
            raise self.error(f"{name} must be a number, got {describe(value)}")
        v = float(value)
        if not math.isfinite(v):
            raise self.error(f"{name} must be a finite number, got {v}")
        return v

    def nonneg(self, name: str, value: object) -> float:
        """A finite number >= 0."""
        v = self.number(name, value)
        if v < 0:
            raise self.error(f"{name} must be >= 0, got {v}")
        return v

    def positive(self, name: str, value: object) -> float:
        """A finite number > 0."""
        v = self.number(name, value)
        if v <= 0:
            raise self.error(f"{name} must be > 0, got {v}")
        return v

    def range(self, name: str, value: object, lo: float, hi: float, *, lo_open: bool = False,
              hi_open: bool = False) -> float:
        """A finite number in [lo, hi] (either end open on request)."""
        v = self.number(name, value)
        bad_lo = v <= lo if lo_open else v < lo
        bad_hi = v >= hi if hi_open else v > hi
        if bad_lo or bad_hi:
            interval = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
            raise self.error(f"{name} must be in {interval}, got {v}")
        return v

    def choice(self, name: str, value: object, choices: Sequence[str]) -> str:
        """One of `choices` (exact text)."""
        if value not in choices:
            raise self.error(f"{name} must be one of {', '.join(choices)}; got {describe(value)}")
        return str(value)

    def whole(self, name: str, value: object, *, minimum: int = 0) -> int:
        """A whole number >= minimum: an int, or a float with no fractional part (``1e3`` from a config file)."""
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            if isinstance(value, (float, np.floating)) and float(value).is_integer():
                value = int(value)
            else:
                raise self.error(f"{name} must be a whole number >= {minimum}, got {describe(value)}")
        if value < minimum:
            raise self.error(f"{name} must be a whole number >= {minimum}, got {value}")
        return int(value)

    def fields(self, name: str, data: Mapping[str, Any], cls: type) -> dict[str, Any]:
        """A copy of `data` (a saved dataclass, e.g. read from JSON), refusing keys that are not fields of `cls`."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise self.error(f"{name} has unknown fields {unknown}; known: {sorted(known)}")
        return dict(data)


#: validators raising `LrlabError`, for everything outside the schedule core
check = Checks()
