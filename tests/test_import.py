"""`import lrlab` loads NumPy only: no torch, matplotlib, jax, ray or transformers."""

from __future__ import annotations

import subprocess
import sys


def test_import_is_light() -> None:
    code = (
        "import sys, lrlab, lrlab.spec, lrlab.preview, lrlab.compat\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'matplotlib', 'jax', 'ray', 'transformers',"
        " 'timm', 'optax', 'keras', 'plotext', 'typer'})\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == ""
