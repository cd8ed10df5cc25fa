"""Shared test helpers: loading the peer libraries that cannot be imported the ordinary way.

timm's ``timm/__init__.py`` imports its models, which need torchvision (not installable here), so ``import timm``
fails. Its schedulers need only torch. `load_timm_scheduler` imports ``timm/scheduler/<module>.py`` without
running either package ``__init__``: it registers two empty stand-in packages, ``timm`` and ``timm.scheduler``,
whose ``__path__`` points at the installed directories, so Python's import machinery finds the submodule and
its relative imports (``from .scheduler import Scheduler``) there. The stand-ins are removed again afterwards
(a later ``import timm`` sees no trace of them); the loaded classes are cached.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

import pytest

_TIMM_CACHE: dict[str, Any] = {}


def _timm_dir() -> Path:
    spec = importlib.util.find_spec("timm")  # locates the package without executing timm/__init__.py
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("timm is not installed (pip install 'lrlab[peers]')")
    return Path(next(iter(spec.submodule_search_locations)))


def load_timm_scheduler(module: str, cls: str) -> Any:
    """The class ``cls`` from ``timm/scheduler/<module>.py``, e.g. ``("cosine_lr", "CosineLRScheduler")``."""
    key = f"{module}.{cls}"
    if key in _TIMM_CACHE:
        return _TIMM_CACHE[key]
    root = _timm_dir()
    before = set(sys.modules)
    stand_ins = {"timm": root, "timm.scheduler": root / "scheduler"}
    for name, path in stand_ins.items():
        if name in sys.modules:
            continue
        pkg = types.ModuleType(name)
        pkg.__path__ = [str(path)]
        pkg.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
        pkg.__spec__.submodule_search_locations = [str(path)]
        sys.modules[name] = pkg
    try:
        mod = importlib.import_module(f"timm.scheduler.{module}")
        value = getattr(mod, cls)
    finally:
        for name in set(sys.modules) - before:
            if name.startswith("timm"):
                del sys.modules[name]
    _TIMM_CACHE[key] = value
    return value


@pytest.fixture(scope="session")
def timm_scheduler() -> Any:
    """``timm_scheduler("cosine_lr", "CosineLRScheduler")`` -> the class, loaded without ``import timm``."""
    return load_timm_scheduler
