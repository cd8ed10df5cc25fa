"""Results documents (the ``results.json`` format of `lrlab compare`) with known numbers, shared by
test_analysis.py and test_report.py."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

STEPS = 100
EVAL = list(range(10, STEPS + 1, 10))
LRS = (1e-2 / 3, 1e-2, 3e-2)


def run_result(final: float, *, start: float = 3.0, lr: float = 1e-2, diverged: bool = False) -> dict[str, Any]:
    """A RunResult dict whose validation loss falls linearly from ``start`` to ``final``."""
    val = np.linspace(start, final, len(EVAL)).tolist()
    if diverged:
        val[-1] = math.nan
    train = np.linspace(start + 0.1, final + 0.05, STEPS).tolist()
    return {"config": {"lr": lr, "steps": STEPS}, "eval_steps": EVAL, "val_loss": val, "val_metrics": {},
            "train_loss": train, "lr": [lr] * STEPS, "final_val_loss": math.nan if diverged else final,
            "best_val_loss": min(v for v in val if not math.isnan(v)), "diverged": diverged, "wall_time_s": 2.0,
            "tokens_per_s": 1000.0, "n_params": 1000, "env": {}, "resumed_from": None}


def trial(schedule: str, lr: float, seed: int, final: float, *, optimizer: str = "adamw", idx: int = 0,
          diverged: bool = False, branched: bool = False) -> dict[str, Any]:
    return {"id": f"{schedule}-{optimizer}-lr{idx}-s{seed}", "schedule": schedule, "optimizer": optimizer,
            "seed": seed, "lr": lr, "lr_index": idx, "phase": "grid",
            "branched_from": {"trial": "prefix-x", "step": 34} if branched else None,
            "result": run_result(final, lr=lr, diverged=diverged)}


def document(trials: list[dict[str, Any]], schedules: list[str], **extra: Any) -> dict[str, Any]:
    return {"format": "lrlab.compare/1", "title": "test compare", "status": "complete",
            "config": {"task": "lm", "steps": STEPS, "schedules": schedules, "target_loss": None, **extra},
            "trials": trials, "n_planned": len(trials), "wall_time_s": 12.0}


def one_seed_doc() -> dict[str, Any]:
    # the 400-update fact: at the shared peak 1e-2 constant wins (1.92 vs 1.99), but at its own best
    # peak (3e-2) warm-up + cosine wins
    finals = {"constant()": (2.05, 1.92, 2.24), "warmup(0.05) >> cosine()": (2.20, 1.99, 1.89)}
    trials = [trial(s, lr, 0, f, idx=i) for s, fs in finals.items() for i, (lr, f) in enumerate(zip(LRS, fs))]
    return document(trials, list(finals))


def three_seed_doc(gap: float) -> dict[str, Any]:
    # seed offsets shared by both schedules (-0.02, 0, +0.02) and noise in the difference (+0.01, -0.02, +0.01)
    trials = []
    for seed, (offset, noise) in enumerate(((-0.02, 0.01), (0.0, -0.02), (0.02, 0.01))):
        trials.append(trial("cosine()", 1e-2, seed, 1.52 + offset))
        trials.append(trial("constant()", 1e-2, seed, 1.52 + gap + offset + noise))
    return document(trials, ["constant()", "cosine()"])


#: the nine default schedules of a 1000-update `lrlab compare` (long labels: what a terminal table must fit)
DEFAULT_NINE = ("constant()", "step(0.34, factor=0.1)", "exponential(0.99540542)", "cosine()",
                "cosine_restarts(0.143, mult=2)", "warmup(0.05) >> linear()", "warmup(0.05) >> cosine()",
                "wsd(warmup=0.05, decay=0.2)", "warmup(0.05) >> inverse_sqrt(50)")


def nine_schedule_doc() -> dict[str, Any]:
    """Nine schedules x three LRs x two seeds, with branched runs, a best at a grid edge and a seed that did not
    reach the target: every kind of cell the ranked table has."""
    rng = np.random.default_rng(7)
    trials = []
    for k, schedule in enumerate(DEFAULT_NINE):
        for i, lr in enumerate(LRS):
            for seed in (0, 1):
                final = 1.85 + 0.04 * k + 0.05 * abs(i - (1 if k % 3 else 2)) + 0.02 * seed + rng.normal(0, 0.01)
                trials.append(trial(schedule, lr, seed, float(final), idx=i, branched=k in (1, 4)))
    return document(trials, list(DEFAULT_NINE))
