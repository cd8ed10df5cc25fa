"""lrlab: exact, composable learning-rate schedules, and tools that tell you which one to use.

`import lrlab` loads NumPy only; torch, matplotlib, jax and ray are imported by the modules that need them.

>>> import lrlab
>>> s = lrlab.parse("warmup(0.1) >> cosine(floor=0.1)", total=100)
>>> s(0), s(10), round(s(100), 12)
(0.0, 1.0, 0.1)
"""

from lrlab.compose import Clamp, Join, Overlay, Product, Repeat, wsd
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

__all__ = [
    "REGISTRY",
    "Clamp",
    "Constant",
    "Cooldown",
    "Cosine",
    "CosineRestarts",
    "Cyclic",
    "Exponential",
    "InverseSqrt",
    "Join",
    "Linear",
    "LrlabError",
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
    "Step",
    "Tanh",
    "Warmup",
    "format_spec",
    "from_dict",
    "parse",
    "to_dict",
    "wsd",
]
__version__ = "0.1.0"
