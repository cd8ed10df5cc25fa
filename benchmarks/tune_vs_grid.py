"""`lrlab tune` against the grid (issue #11), side by side on each task, at a horizon of 1,000 AdamW updates:

- **tune**: `lrlab tune` with its default budget (a quarter of the default `lrlab compare`'s updates), its pick
  re-run on 3 paired seeds (0, 1, 2);
- **compare**: the 3-seed winner of `lrlab compare` (adaptive grid, ``--seeds 1 --confirm 2``): run here for the
  tiny tasks (``--compare``), taken from BENCHMARKS.md for ``lm``/``vision`` small (`SMALL_REFERENCE`);
- **cheap**: the LR range test + `lrlab suggest`'s rules (one run's worth), re-run on the same 3 seeds;
- **grid5x4**: 5 schedules x 4 peak LRs on seed 0, its winner re-run on the 3 seeds.

Targets: tune's 3-seed mean within 1 sigma (the compare reference's paired seed noise per seed) of the compare
winner's, and tune's updates <= a quarter of the default compare's (10,410 at 1,000 updates). Prints a table and
PASS/FAIL per task. Every step writes its own folder under ``--out`` and is resumed (or skipped) when run again.

    nice -n 5 .venv/bin/python benchmarks/tune_vs_grid.py --out runs/tune-bench > runs/tune-bench/bench.log 2>&1

The two extra corpora are built at run time from text already on the machine (`build_corpus`), no downloads.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from pathlib import Path
from typing import Any

HORIZON = 1000
OPTIMIZER = "adamw"
SEEDS = (0, 1, 2)
#: the two extra text corpora
CORPORA = ("prose", "readmes")
#: the 5 x 4 grid's schedules (the common ones: no decay, cosine with and without warm-up, linear, WSD)
GRID_SCHEDULES = ("constant()", "cosine()", "warmup(0.05) >> linear()", "warmup(0.05) >> cosine()",
                  "wsd(warmup=0.05, decay=0.2)")
#: BENCHMARKS.md, "Which schedule wins: small preset, 3 seeds" (AdamW): winner, its peak, 3-seed mean and the
#: paired noise sigma per seed
SMALL_REFERENCE: dict[str, dict[str, Any]] = {
    "lm-small": {"schedule": "wsd(warmup=0.05, decay=0.2)", "lr": 0.005, "mean": 1.465, "std": 0.012,
                 "sigma": 0.014, "source": "BENCHMARKS.md, lm small AdamW (79 runs)"},
    "vision-small": {"schedule": "warmup(0.05) >> cosine()", "lr": 0.000734, "mean": 0.073, "std": 0.019,
                     "sigma": 0.024, "source": "BENCHMARKS.md, vision small AdamW (108 runs)"},
}


def build_corpus(name: str, folder: Path) -> Path:
    """Write corpus ``name`` to ``folder/<name>.txt`` (deterministic for a given interpreter and installed packages)
    and return its path.

    - ``prose``: the English prose of the Python reference manual shipped as ``pydoc_data/topics.py`` (the text of
      ``help('TOPIC')``), topics in sorted order (466 kB).
    - ``readmes``: the long descriptions (README text, mostly Markdown prose) of the installed distributions'
      ``METADATA`` files, distributions in sorted order, cut at 1,000,000 characters; lrlab's own is left out (an
      editable install's changes with the README).

    A corpus file that exists is kept as it is: a package installed meanwhile must not change the data under runs
    that resume (they refuse other data); its SHA-256 is in every results file.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.txt"
    if path.is_file():
        return path
    if name == "prose":
        from pydoc_data.topics import topics

        text = "\n\n".join(topics[k] for k in sorted(topics))
    elif name == "readmes":
        import importlib.metadata as md

        parts = []
        for dist in sorted(md.distributions(), key=lambda d: (d.metadata["Name"] or "").lower()):
            if (dist.metadata["Name"] or "").lower() == "lrlab":
                continue
            body = dist.metadata.get_payload() if hasattr(dist.metadata, "get_payload") else ""
            if isinstance(body, str) and len(body) > 2000:
                parts.append(body.strip())
        text = "\n\n".join(parts)[:1_000_000]
    else:
        raise ValueError(f"corpus must be one of {CORPORA}, got {name!r}")
    path.write_bytes(text.encode("utf-8"))
    return path


def tasks(out: Path) -> dict[str, tuple[str, str]]:
    """name -> (task, preset)."""
    data = out / "data"
    return {"lm-tiny": ("lm", "tiny"),
            "prose-tiny": (f"text:{build_corpus('prose', data)}", "tiny"),
            "readmes-tiny": (f"text:{build_corpus('readmes', data)}", "tiny"),
            "lm-small": ("lm", "small"),
            "vision-small": ("vision", "small")}


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _compare(folder: Path, **fields: Any) -> dict[str, Any]:
    """`lrlab compare` in ``folder`` (resumed when it holds one; returned as is when complete)."""
    from lrlab.bench.compare import CONFIG_FILE, run_compare
    from lrlab.bench.design import CompareConfig

    results = folder / "results.json"
    if results.is_file():
        doc = json.loads(results.read_text())
        if doc.get("status") == "complete":
            return doc
    resume = (folder / CONFIG_FILE).is_file()
    return run_compare(None if resume else CompareConfig(**fields), folder, resume=resume)


def three_seeds(folder: Path, task: str, preset: str, schedule: str, lr: float) -> list[float]:
    """Final validation loss of ``schedule`` at peak ``lr`` on seeds 0, 1, 2 (paired with every other method)."""
    doc = _compare(folder, task=task, preset=preset, steps=HORIZON, seeds=len(SEEDS), schedules=(schedule,),
                   optimizers=(OPTIMIZER,), lr=((OPTIMIZER, float(lr)),), lr_grid=1, lr_extend=0, confirm_seeds=0,
                   title=f"re-run {schedule} at {lr:g}")
    by_seed = {int(t["seed"]): float(t["result"]["final_val_loss"]) for t in doc["trials"] if t.get("result")}
    return [by_seed[s] for s in SEEDS]


def updates_trained(doc: dict[str, Any]) -> int:
    """Updates a compare document trained, shared prefixes once (each run's own part)."""
    total = 0
    for t in doc["trials"]:
        r = t.get("result")
        if not r:
            continue
        b = t.get("branched_from")
        total += len(r["train_loss"]) - (int(b["step"]) if b else 0)
    prefixes: dict[str, int] = {}
    for t in doc["trials"]:
        b = t.get("branched_from")
        for link in (b or {}).get("chain", []):
            prefixes[link["prefix"]] = int(link["stop"]) - int(link["start"])
    return total + sum(prefixes.values())


def run_tune_step(folder: Path, task: str, preset: str) -> dict[str, Any]:
    from lrlab.tune import TuneConfig
    from lrlab.tune.report import write_report
    from lrlab.tune.runner import run_tune

    results = folder / "results.json"
    if results.is_file():
        doc = json.loads(results.read_text())
        if doc.get("status") == "complete":
            return doc
    resume = (folder / "tune.json").is_file()
    cfg = None if resume else TuneConfig(task=task, preset=preset, horizon=HORIZON, optimizer=OPTIMIZER)
    doc, result = run_tune(cfg, folder, resume=resume)
    if result is not None:
        write_report(doc, result, folder)
    return doc


def cheap(folder: Path, task: str, preset: str) -> dict[str, Any]:
    """The cheap recipe, as `lrlab suggest --find` makes it: `lrlab suggest`'s schedule for the task's kind and
    the peak LR of the LR range test (`lrlab.range_test.peak_lr`, 300 updates) on the task itself. Returns the
    schedule, the LR and the range test's updates."""
    path = folder / "cheap.json"
    if path.is_file():
        return dict(json.loads(path.read_text()))
    import torch

    from lrlab.bench.find import find_on_task
    from lrlab.range_test import peak_lr
    from lrlab.suggest import suggest

    torch.set_num_threads(2)
    kind = "vision" if task == "vision" else "lm"
    s = suggest(kind, HORIZON, optimizer=OPTIMIZER)
    found = find_on_task(task, preset=preset, optimizer=OPTIMIZER, seed=0, num_iter=300)
    lr = float(peak_lr(found).lr)
    out = {"schedule": s.spec, "lr": lr, "range_test_updates": len(found.lrs)}
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    return out


def grid5x4(folder: Path, task: str, preset: str) -> dict[str, Any]:
    """5 schedules x 4 peak LRs around `lrlab compare`'s default centre, seed 0; the best (schedule, LR)."""
    from lrlab.bench.analysis import analyze

    doc = _compare(folder, task=task, preset=preset, steps=HORIZON, seeds=1, schedules=GRID_SCHEDULES,
                   optimizers=(OPTIMIZER,), lr_grid=4, lr_extend=0, confirm_seeds=0, title="5 x 4 grid")
    winner = analyze(doc).contenders[0]
    return {"schedule": winner.schedule, "lr": winner.best_lr, "updates": updates_trained(doc)}


def reference(name: str, out: Path, task: str) -> dict[str, Any] | None:
    """The compare reference: the 3-seed winner (mean over seeds 0-2) and the paired noise sigma per seed."""
    if name in SMALL_REFERENCE:
        return SMALL_REFERENCE[name]
    folder = out / "compare" / name
    results = folder / "results.json"
    if not results.is_file() or json.loads(results.read_text()).get("status") != "complete":
        return None
    from lrlab.bench.analysis import analyze

    doc = json.loads(results.read_text())
    a = analyze(doc)
    w = a.contenders[0]
    return {"schedule": w.schedule, "lr": w.best_lr, "mean": w.final_mean, "std": w.final_std, "sigma": a.sigma,
            "updates": updates_trained(doc), "source": f"lrlab compare --seeds 1 --confirm 2 ({a.n_runs} runs, "
            f"{folder})"}


def compare_reference_run(name: str, out: Path, task: str, preset: str) -> None:
    """`lrlab compare --task TASK --seeds 1 --confirm 2` (the defaults otherwise) into out/compare/NAME."""
    _compare(out / "compare" / name, task=task, preset=preset, steps=HORIZON, seeds=1, confirm_seeds=2)


def mean(xs: list[float]) -> float:
    return math.fsum(xs) / len(xs)


def bench_task(name: str, task: str, preset: str, out: Path, *, grid: bool) -> dict[str, Any]:
    from lrlab.tune.plan import COMPARE_UPDATES_PER_HORIZON

    base = out / "tasks" / name
    row: dict[str, Any] = {"task": name}
    t0 = time.monotonic()
    doc = run_tune_step(base / "tune", task, preset)
    res = doc["result"]
    row["tune"] = {"schedule": res["schedule"], "lr": res["lr"], "spent": res["spent"],
                   "predicted": res["estimate"]["loss"], "wall_s": doc["wall_time_s"]}
    _log(f"{name}: tune picked {res['schedule']} at {res['lr']:.3g} ({res['spent']} updates, "
         f"{time.monotonic() - t0:.0f} s)")
    row["tune"]["seeds"] = three_seeds(base / "tune-pick", task, preset, res["schedule"], res["lr"])
    c = cheap(base / "cheap", task, preset)
    row["cheap"] = {**c, "seeds": three_seeds(base / "cheap-pick", task, preset, c["schedule"], c["lr"])}
    _log(f"{name}: cheap {c['schedule']} at {c['lr']:.3g}")
    if grid:
        g = grid5x4(base / "grid5x4", task, preset)
        row["grid5x4"] = {**g, "seeds": three_seeds(base / "grid5x4-pick", task, preset, g["schedule"], g["lr"])}
        _log(f"{name}: grid5x4 {g['schedule']} at {g['lr']:.3g}")
    row["reference"] = reference(name, out, task)
    row["budget"] = math.floor(HORIZON * COMPARE_UPDATES_PER_HORIZON / 4)
    (base / "row.json").write_text(json.dumps(row, indent=1))
    return row


def verdict(row: dict[str, Any]) -> tuple[str, str]:
    ref = row.get("reference")
    spent_ok = row["tune"]["spent"] <= row["budget"]
    if not ref or ref.get("sigma") is None:
        return "n/a", "no compare reference"
    gap = mean(row["tune"]["seeds"]) - ref["mean"]
    ok = gap <= ref["sigma"] and spent_ok
    return ("PASS" if ok else "FAIL"), f"gap {gap:+.4f} vs sigma {ref['sigma']:.4f}; spent {row['tune']['spent']:,} " \
        f"<= {row['budget']:,}: {spent_ok}"


def table(rows: list[dict[str, Any]]) -> str:
    def cell(d: dict[str, Any] | None) -> str:
        if not d or ("seeds" not in d and "mean" not in d):
            return "–"
        m = mean(d["seeds"]) if "seeds" in d else d["mean"]
        s = (float(__import__("numpy").std(d["seeds"], ddof=1)) if "seeds" in d else d.get("std")) or 0.0
        return f"{d['schedule']} @ {d['lr']:.3g}: {m:.4f} ± {s:.4f}"

    lines = ["| task | tune (updates) | compare 3-seed winner (updates) | cheap: find + suggest | 5x4 grid "
             "(updates) | verdict |", "|---|---|---|---|---|---|"]
    for r in rows:
        v, why = verdict(r)
        ref = r.get("reference")
        lines.append(f"| {r['task']} | {cell(r['tune'])} ({r['tune']['spent']:,}) | {cell(ref)} "
                     f"({ref.get('updates', '–') if ref else '–'}) | {cell(r.get('cheap'))} | "
                     f"{cell(r.get('grid5x4'))} ({r.get('grid5x4', {}).get('updates', '–')}) | {v}: {why} |")
    return "\n".join(lines)


def corpus_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("runs/tune-bench"))
    ap.add_argument("--tasks", default="lm-tiny,prose-tiny,readmes-tiny,lm-small,vision-small")
    ap.add_argument("--compare", action="store_true", help="also run the compare references of the tiny tasks")
    ap.add_argument("--no-grid", dest="grid", action="store_false", help="skip the 5 x 4 grid")
    ap.add_argument("--table-only", action="store_true", help="print the table of the finished tasks")
    args = ap.parse_args()
    known = tasks(args.out)
    rows = []
    for name in [n.strip() for n in args.tasks.split(",") if n.strip()]:
        task, preset = known[name]
        if args.table_only:
            p = args.out / "tasks" / name / "row.json"
            if p.is_file():
                row = json.loads(p.read_text())
                row["reference"] = reference(name, args.out, task)
                rows.append(row)
            continue
        if args.compare and name not in SMALL_REFERENCE:
            _log(f"{name}: compare reference")
            compare_reference_run(name, args.out, task, preset)
        rows.append(bench_task(name, task, preset, args.out, grid=args.grid))
        print(table(rows), flush=True)
    print(table(rows))
    for r in rows:
        print(r["task"], *verdict(r))


if __name__ == "__main__":
    main()
