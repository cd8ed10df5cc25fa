"""``kill -9`` at a chosen point of a run: the crash-and-resume tests of `lrlab compare` and `lrlab tune`."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest


def kill_at(args: Sequence[str], out: Path, ready: Callable[[set[str], set[str]], bool], *, timeout: float,
            what: str, poll: float = 0.02) -> None:
    """Start ``args`` (an lrlab run writing into ``out``) in a process group of its own, wait until
    ``ready(done, checkpointed)`` — the names of the runs finished (``out/runs/NAME.json``) and of those holding a
    mid-run checkpoint (``out/ckpt/NAME/checkpoint.pt``); a missing folder gives none — and SIGKILL the whole group:
    the driver and its workers, with no chance to clean up. Fails when the run ends first (``what`` names it) or
    ``timeout`` seconds pass; ``ready`` may assert that the run has not gone past the point."""
    proc = subprocess.Popen(list(args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            done = {p.stem for p in (out / "runs").glob("*.json")}
            checkpointed = {p.parent.name for p in (out / "ckpt").glob("*/checkpoint.pt")}
            if ready(done, checkpointed):
                break
            assert proc.poll() is None, f"{what} ended before it could be killed"
            time.sleep(poll)
        else:
            pytest.fail(f"the kill point was not reached within {timeout:g} s")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
