"""Worker for tests/test_distributed.py (run under ``python -m torch.distributed.run``): a tiny model trained with
DDP (gloo, CPU) and `lrlab.torch.LRScheduler` on a token clock.

Each update consumes one global batch of ``batch * world_size`` rows of a fixed data matrix, so one process with a
doubled batch sees the same global batches as two processes. The ranks' shares are uneven and change every update
(`shares`: with 2 processes, ``batch - 1`` and ``batch + 1`` rows, swapped at every other update), and each rank passes
only its own tokens, ``sched.step(tokens=local, reduce=True)``: the scheduler sums them over the ranks, so identical
LRs on every rank show that the reduction works. Every rank writes the LR it used for each update, and the tokens it
consumed, to ``OUT/<phase>-rank<r>.json``; with ``--stop N`` rank 0 writes a checkpoint after N updates. With
``--resume CKPT`` and several ``--batch`` values the process resumes once per batch size (fresh objects each time,
logs ``OUT/<phase>-b<batch>-rank<r>.json``): one interpreter start instead of several.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from lrlab.torch import LRScheduler

SPEC = "warmup(0.1) >> cosine(floor=0.1)"
SEQ = 16  # tokens per row


def shares(batch: int, world: int, update: int) -> list[int]:
    """Rows per rank at one update: uneven (offsets -(world-1), ..., world-1 in steps of 2, summing to 0), their sign
    flipped at every other update; ``batch * world`` rows in all."""
    sign = 1 if update % 2 == 0 else -1
    rows = [batch + sign * (2 * r - (world - 1)) for r in range(world)]
    if min(rows) < 1:
        raise ValueError(f"--batch {batch} is too small for {world} processes with uneven shares")
    return rows


def run(args: argparse.Namespace, batch: int, name: str) -> None:
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(SEQ, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    ddp = DistributedDataParallel(model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    sched = LRScheduler(opt, SPEC, total=args.total_tokens, clock="tokens")
    if args.resume:
        ckpt = torch.load(args.resume, weights_only=True)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["opt"])
        sched.load_state_dict(ckpt["sched"])

    data = torch.randn(4096, SEQ, generator=torch.Generator().manual_seed(1))
    global_rows = batch * world
    log, local_tokens = [], []
    while sched.t < args.total_tokens and not (args.stop and sched.updates >= args.stop):
        u = sched.updates
        rows = shares(batch, world, u)
        start = u * global_rows + sum(rows[:rank])  # 4096 rows: more than any test run uses
        x = data[start:start + rows[rank]]
        loss = (ddp(x).squeeze(1) - x.mean(1)).pow(2).mean()
        log.append({"update": u, "t": sched.t, "lr": opt.param_groups[0]["lr"], "world": world})
        loss.backward()
        opt.step()
        opt.zero_grad()
        local_tokens.append(rows[rank] * SEQ)
        sched.step(tokens=rows[rank] * SEQ, reduce=True)  # this rank's tokens; the scheduler sums over the ranks

    out = Path(args.out)
    if args.stop and rank == 0:
        tmp = out / "ckpt.pt.tmp"
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict()}, tmp)
        os.replace(tmp, out / "ckpt.pt")
    (out / f"{name}-rank{rank}.json").write_text(json.dumps({"log": log, "local_tokens": local_tokens,
                                                             "final_t": sched.t}))
    dist.barrier()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--phase", required=True)
    p.add_argument("--batch", type=int, nargs="+", required=True, help="rows per process per update")
    p.add_argument("--total-tokens", type=int, required=True)
    p.add_argument("--stop", type=int, default=0, help="stop after this many updates and save (0: run to the end)")
    p.add_argument("--resume", default="")
    args = p.parse_args()

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    if len(args.batch) == 1:
        run(args, args.batch[0], args.phase)
    else:
        for batch in args.batch:
            run(args, batch, f"{args.phase}-b{batch}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
