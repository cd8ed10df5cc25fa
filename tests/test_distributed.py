"""torchrun with 2 processes (gloo, CPU): identical LRs on every rank, each passing only its own (uneven) token count;
stop, resume with 1 process on a token clock."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import lrlab

WORKER = Path(__file__).with_name("dist_worker.py")
SPEC = "warmup(0.1) >> cosine(floor=0.1)"  # dist_worker.SPEC
SEQ = 16  # dist_worker.SEQ
BATCH = 4  # rows per process in the 2-process run
TOTAL = 24 * 2 * BATCH * SEQ  # tokens: 24 updates of the 2-process run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _launch(nproc: int, out: Path, *args: str) -> None:
    """torchrun for 2 processes; one process is started directly with the variables torchrun would set (one
    interpreter start less: importing torch is most of this test's time)."""
    port = _free_port()
    worker = [str(WORKER), "--out", str(out), "--total-tokens", str(TOTAL), *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    if nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--nnodes=1",
               "--master_addr=127.0.0.1", f"--master_port={port}", *worker]
    else:
        cmd = [sys.executable, *worker]
        env.update({"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "LOCAL_WORLD_SIZE": "1",
                    "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]


def _log(out: Path, name: str) -> list[dict[str, float]]:
    return list(json.loads((out / f"{name}.json").read_text())["log"])


def _local_tokens(out: Path, name: str) -> list[int]:
    return list(json.loads((out / f"{name}.json").read_text())["local_tokens"])


@pytest.mark.slow
def test_two_ranks_then_one_rank_resume_on_a_token_clock(tmp_path: Path) -> None:
    s = lrlab.parse(SPEC, total=TOTAL)
    _launch(2, tmp_path, "--phase", "a", "--batch", str(BATCH), "--stop", "10")
    a0, a1 = _log(tmp_path, "a-rank0"), _log(tmp_path, "a-rank1")
    # the ranks consumed different tokens at every update (each passed only its own to step(reduce=True)) ...
    l0, l1 = _local_tokens(tmp_path, "a-rank0"), _local_tokens(tmp_path, "a-rank1")
    assert l0 == [(BATCH - 1 if u % 2 == 0 else BATCH + 1) * SEQ for u in range(10)]
    assert [a + b for a, b in zip(l0, l1)] == [2 * BATCH * SEQ] * 10 and all(a != b for a, b in zip(l0, l1))
    # ... and every rank has the same clock, the global token count, and the same LR at every update
    assert a0 == a1
    assert [e["t"] for e in a0] == [u * 2 * BATCH * SEQ for u in range(10)]

    # resume twice with 1 process: a doubled per-process batch (the same tokens per update), and the original batch
    # (half the tokens per update: twice the updates, the same LR per token)
    _launch(1, tmp_path, "--phase", "b", "--batch", str(2 * BATCH), str(BATCH), "--resume", str(tmp_path / "ckpt.pt"))
    b = _log(tmp_path, f"b-b{2 * BATCH}-rank0")
    assert [e["update"] for e in b] == list(range(10, 24)) and b[0]["world"] == 1
    whole = a0 + b
    assert [e["t"] for e in whole] == [u * 2 * BATCH * SEQ for u in range(24)]
    assert [e["lr"] for e in whole] == [1e-2 * s(e["t"]) for e in whole]  # no jump at the resume

    c = _log(tmp_path, f"b-b{BATCH}-rank0")
    assert [e["update"] for e in c] == list(range(10, 38))
    assert [e["t"] for e in c] == [10 * 2 * BATCH * SEQ + k * BATCH * SEQ for k in range(28)]
    assert [e["lr"] for e in c] == [1e-2 * s(e["t"]) for e in c]
    assert [e["lr"] for e in c[::2]] == [e["lr"] for e in b]  # the same LR at the same token count
