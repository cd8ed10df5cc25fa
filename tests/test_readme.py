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


def _cli_examples() -> dict[str, str]:
    """The README's command-line table: verb -> its example command."""
    rows = re.findall(r"^\| `lrlab (\w+)[^`]*` \| `(lrlab [^`]+)` \|$", README, flags=re.M)
    return dict(rows)


def _run(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    import shlex

    argv = shlex.split(command)
    assert argv[0] == "lrlab"
    return subprocess.run([sys.executable, "-m", "lrlab.cli", *argv[1:]], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def test_every_cli_verb_has_an_example() -> None:
    assert set(_cli_examples()) == {"compare", "report", "train", "plot", "show", "list", "find", "diagnose",
                                    "suggest", "tune", "predict"}


@pytest.mark.parametrize("verb", ["plot", "show", "list", "find", "suggest"])
def test_cli_example_runs_verbatim(verb: str, tmp_path: Path) -> None:
    proc = _run(_cli_examples()[verb], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()


def test_train_then_diagnose_then_report_examples(tmp_path: Path) -> None:
    """`lrlab train` as in the README but 40 updates (the README's 1,000 take minutes), then the diagnose example
    verbatim on what it wrote, and `lrlab report` on that folder."""
    ex = _cli_examples()
    train = ex["train"].replace("--steps 1000", "--steps 40")
    assert train != ex["train"]
    proc = _run(train, tmp_path)
    assert proc.returncode == 0, proc.stderr
    proc = _run(ex["diagnose"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "40 updates" in proc.stdout
    out = ex["train"].split("--out ")[1].split()[0]
    proc = _run(f"lrlab report {out}", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / out / "report.html").stat().st_size > 0
