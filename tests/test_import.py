"""`import lrlab` loads NumPy only: no torch, matplotlib, jax, ray or transformers."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_import_is_light() -> None:
    code = (
        "import sys, lrlab, lrlab.spec, lrlab.preview, lrlab.compat, lrlab.clock, lrlab.guard, lrlab.plateau\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'matplotlib', 'jax', 'ray', 'transformers',"
        " 'timm', 'optax', 'keras', 'plotext', 'typer'})\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == ""


def test_monitor_find_lr_and_finding_are_exported_without_heavy_imports() -> None:
    code = (
        "import sys, lrlab\n"
        "loaded_early = sorted(m for m in ('lrlab.monitor', 'lrlab.range_test') if m in sys.modules)\n"
        "from lrlab import Finding, Monitor, find_lr\n"
        "import lrlab.diagnose, lrlab.monitor, lrlab.monitor_files, lrlab.range_test\n"
        "same = (Monitor is lrlab.monitor.Monitor, find_lr is lrlab.range_test.find_lr,"
        " Finding is lrlab.diagnose.Finding, lrlab.Monitor is Monitor)\n"
        "exported = [n for n in ('Monitor', 'find_lr', 'Finding') if n in lrlab.__all__]\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'matplotlib', 'transformers',"
        " 'pytorch_lightning', 'lightning', 'tensorboard', 'typer'})\n"
        "print(loaded_early, same, exported, heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[] (True, True, True, True) ['Monitor', 'find_lr', 'Finding'] []"


def test_unknown_attribute_still_raises() -> None:
    import lrlab

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        lrlab.nope  # noqa: B018
