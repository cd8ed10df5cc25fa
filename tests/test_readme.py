"""The README is the front door: its Python examples run, and CI runs its test command."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


@pytest.mark.parametrize("index", range(len(_blocks("python"))))
def test_python_examples_run(index: int, tmp_path: Path) -> None:
    code = _blocks("python")[index]
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


def test_ci_runs_the_readme_test_command() -> None:
    commands = [line for line in _blocks("bash")[0].splitlines() if line and not line.startswith("#")]
    assert len(commands) == 2 and commands[0].endswith("lrlab compare")
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands[1] in ci


def test_error_example_is_what_the_cli_prints() -> None:
    proc = subprocess.run([sys.executable, "-m", "lrlab.cli", "show", "warmup(0.1) >> cosin(floor=0.1)", "--total",
                           "1000"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    first = proc.stderr.splitlines()[0]
    assert first.startswith("error: unknown schedule 'cosin'; did you mean cosine?")
    assert first.endswith("at column 16")
