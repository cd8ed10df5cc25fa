"""Wall time of the default `lrlab compare` (no arguments) end to end, against the issue's 4-minute target on 2 cores.

Runs ``python -m lrlab.cli compare --out FRESH_DIR`` in a subprocess — interpreter start, LR grid, confirmation
seeds, report and plots included — and reads its ``results.json``: the number of runs, the updates the runs hold and
the updates actually trained (a shared LR prefix is trained once, and the runs that branch from it do not retrain it),
and updates per second over the whole wall time.

    .venv/bin/python benchmarks/compare_walltime.py
    .venv/bin/python benchmarks/compare_walltime.py --extra "--steps 20 --lr-grid 1 --eval-every 10"   # smoke run
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_S = 240.0


def updates(doc: dict[str, Any]) -> tuple[int, int]:
    """(updates the runs hold, updates trained): a branched run trained only from its branch point, and each
    shared prefix it continues was trained once."""
    held = trained = 0
    prefixes: set[tuple[str, int, int]] = set()
    for t in doc["trials"]:
        r = t.get("result")
        if r is None:
            continue
        n = len(r["train_loss"])
        held += n
        b = t.get("branched_from")
        if b:
            trained += n - int(b["step"])
            for c in b.get("chain") or [{"prefix": b["trial"], "start": 0, "stop": b["step"]}]:
                prefixes.add((str(c["prefix"]), int(c["start"]), int(c["stop"])))
        else:
            trained += n
    return held, trained + sum(stop - start for _, start, stop in prefixes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--extra", default="", help="extra `lrlab compare` arguments (for a smoke run; the "
                                                    "benchmark is the default, without any)")
    parser.add_argument("--keep", type=Path, help="write the comparison here (a new folder) instead of a temp dir")
    args = parser.parse_args()
    tmp = None
    if args.keep is not None:
        out = args.keep
    else:
        tmp = tempfile.mkdtemp(prefix="lrlab-compare-")
        out = Path(tmp) / "cmp"
    cmd = [sys.executable, "-m", "lrlab.cli", "compare", "--out", str(out), *shlex.split(args.extra)]
    try:
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"`{shlex.join(cmd)}` failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
        doc = json.loads((out / "results.json").read_text())
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    held, trained = updates(doc)
    runs = sum(1 for t in doc["trials"] if t.get("result") is not None)
    ex = doc["execution"]
    print(f"lrlab compare {args.extra or '(defaults)'}: {ex['workers']} workers x {ex['threads']} threads on "
          f"{ex['cores']} cores")
    print(f"  wall time {wall:7.1f} s (target <= {TARGET_S:.0f} s: {'PASS' if wall <= TARGET_S else 'FAIL'}; "
          f"{100 * wall / TARGET_S:.0f} % of it)")
    print(f"  {runs} runs, {held:,} updates in their curves, {trained:,} trained (shared prefixes once)")
    print(f"  {trained / wall:,.1f} updates/s trained over the whole wall time ({held / wall:,.1f} counting every "
          "run's updates)")


if __name__ == "__main__":
    main()
