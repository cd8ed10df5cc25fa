"""lrlab: exact, composable learning-rate schedules, and tools that tell you which one to use.

`import lrlab` loads NumPy only; torch, matplotlib, jax and ray are imported by the modules that need them.
`lrlab.Monitor`, `lrlab.Finding` and `lrlab.find_lr` are loaded on first use (from `lrlab.monitor`,
`lrlab.diagnose` and `lrlab.range_test`; none of them imports torch at import time).

>>> import lrlab
>>> s = lrlab.parse("warmup(0.1) >> cosine(floor=0.1)", total=100)
>>> s(0), s(10), round(s(100), 12)
(0.0, 1.0, 0.1)
"""

from typing import TYPE_CHECKING, Any

from lrlab.compose import Clamp, Join, Overlay, Product, Repeat, Shift, Sum, wsd
from lrlab.errors import LrlabError, ScheduleError
from lrlab.families import (
    Constant,
    Cooldown,
    Cosine,
    CosineRestarts,
    Cyclic,
    Exponential,
    InverseSqrt,
    Linear,
    MultiStep,
    Noam,
    OneCycle,
    Piecewise,
    Polynomial,
    Step,
    Tanh,
    Warmup,
)
from lrlab.schedule import Schedule
from lrlab.spec import REGISTRY, format_spec, from_dict, parse, to_dict

if TYPE_CHECKING:
    from lrlab.diagnose import Finding
    from lrlab.monitor import Monitor
    from lrlab.range_test import find_lr

# name -> module: loaded by `__getattr__` on first use, so that `import lrlab` stays light
_LAZY = {"Finding": "lrlab.diagnose", "Monitor": "lrlab.monitor", "find_lr": "lrlab.range_test"}

__all__ = [
    "REGISTRY",
    "Clamp",
    "Constant",
    "Cooldown",
    "Cosine",
    "CosineRestarts",
    "Cyclic",
    "Exponential",
    "Finding",
    "InverseSqrt",
    "Join",
    "Linear",
    "LrlabError",
    "Monitor",
    "MultiStep",
    "Noam",
    "OneCycle",
    "Overlay",
    "Piecewise",
    "Polynomial",
    "Product",
    "Repeat",
    "Schedule",
    "ScheduleError",
    "Shift",
    "Step",
    "Sum",
    "Tanh",
    "Warmup",
    "find_lr",
    "format_spec",
    "from_dict",
    "parse",
    "to_dict",
    "wsd",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """`lrlab.Monitor`, `lrlab.Finding`, `lrlab.find_lr`: imported from their modules on first use."""
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
