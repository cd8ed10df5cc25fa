"""Reports for `lrlab compare` and `lrlab train`: analysis of ``results.json``, then rendering.

Analysis (`analyze`) is pure: it turns the results document written by `lrlab.bench.compare` into frozen
dataclasses — each contender (a schedule with an optimizer) at its own best peak LR, ranked, with a
significance mark. Rendering is separate: a rich table for the terminal, ``report.md``, PNG plots and a
self-contained ``report.html`` (images embedded as base64, inline CSS, no external assets).

How a contender is judged
    * Every (schedule, optimizer) pair is trained at K peak LRs (the LR grid) and S seeds. Its **best peak LR**
      is the one with the lowest mean final validation loss over seeds; the contender is ranked by that mean.
      Comparing schedules at one shared peak LR is misleading: a decaying schedule usually wants a larger peak.
    * **Seeds are paired**: within a seed every contender starts from the same initial weights and sees the
      same data order, so a seed's luck is shared. Ranking and gaps use the mean over the seeds every contender
      ran at its best peak LR.
    * **Significance**: the noise ``sigma`` is the residual std of ``final = schedule effect + seed effect +
      noise`` over all contenders and paired seeds (`paired_noise`) — the scatter of schedule-to-schedule
      differences from seed to seed, which is smaller than one schedule's raw seed-to-seed spread. A gap to the
      winner below ``sigma * sqrt(2 / S)`` (one std of the difference of two S-seed means) is marked
      *not significant* (``≈``). This 1-sigma rule flags gaps within noise; passing it is not proof. With one
      seed there is no noise estimate and the mark is ``?`` (`lrlab compare` therefore re-runs every contender
      at its best peak LR with one more seed by default).
    * **Steps to target**: the first evaluation step at which a run's validation loss is at or below the
      target: the final validation loss of the baseline — the first schedule in the comparison
      (``constant()`` by default) at its best peak LR — *on the same seed*, unless the config names
      ``target_loss``. It answers "how much sooner does this schedule get to where the baseline ends up?"
      (resolution: ``eval_every``); the baseline itself reaches it at its last evaluation.

matplotlib is imported inside the plotting functions (Agg backend); rich inside the terminal renderer.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lrlab.errors import LrlabError
from lrlab.files import atomic_write_bytes, atomic_write_text

RESULTS_FILE = "results.json"
#: the PNG files `write_plots` produces, in the order reports show them: file name -> caption
PLOTS: dict[str, str] = {
    "lr_curves.png": "Learning rate of every schedule at its best peak LR",
    "val_loss.png": "Validation loss of every schedule at its best peak LR (mean over seeds)",
    "loss_curves.png": "Training (smoothed) and validation loss per schedule at its best peak LR",
    "sensitivity.png": "Final validation loss vs peak LR per schedule (the sensitivity curves)",
    "final_loss.png": "Final validation loss at each schedule's best peak LR (error bars: seed std)",
}


# ------------------------------------------------------------------------------------------------- analysis


@dataclass(frozen=True, kw_only=True)
class LrPoint:
    """One peak LR of a contender's grid: final/best validation loss over its seeds."""

    lr: float
    n: int
    final_mean: float
    final_std: float | None  # None with one seed
    best_mean: float
    diverged: int  # runs at this LR that diverged (their loss counts as +inf)


@dataclass(frozen=True, kw_only=True)
class Contender:
    """A schedule with an optimizer, summarised at its own best peak LR, with its place in the ranking."""

    schedule: str
    optimizer: str
    label: str
    rank: int  # 1 = winner
    best_lr: float
    lr_index: int  # position of best_lr in the sorted grid
    grid: tuple[LrPoint, ...]  # sorted by lr: the sensitivity curve
    at_grid_edge: bool  # best LR is the smallest or largest tried (with >= 2 LRs): the optimum may lie outside
    n_seeds: int
    final_mean: float
    final_std: float | None
    best_mean: float
    best_std: float | None
    steps_to_target: float | None  # mean over the seeds that reached the target; None if none did
    reached: int  # seeds that reached the target
    wall_time_s: float  # mean per run at best_lr
    diverged: int  # diverged runs at best_lr
    gap: float  # mean final loss over the paired seeds minus the winner's (0 for the winner)
    gap_sd: float | None  # one std of that difference; None when no noise estimate exists (and for the winner)
    significant: bool | None  # gap > gap_sd; None: unknown (no spread estimate) or the winner itself
    branched: bool  # some run at best_lr branched from another run's checkpoint
    trial_ids: tuple[str, ...]  # runs at best_lr


@dataclass(frozen=True, kw_only=True)
class Analysis:
    """The ranked comparison, ready to render."""

    title: str
    task: str
    steps: int
    status: str  # complete | interrupted | running
    contenders: tuple[Contender, ...]  # ranked, winner first
    sigma: float | None  # noise of schedule-to-schedule differences per seed (`paired_noise`); None: unknown
    sigma_dof: int  # its degrees of freedom
    paired_seeds: tuple[int, ...]  # seeds every contender ran at its best LR: ranking and gaps use these
    seed_std: float | None  # raw seed-to-seed std of one contender's final loss (RMS over contenders), for scale
    target_loss: float | None  # mean of the per-seed targets (what plots draw)
    target_source: str
    branches: tuple[str, ...]  # which runs branched from which shared prefixes (empty: none did)
    python: str | None  # the interpreter the runs used (the lm corpus is its standard library)
    corpus_sha256: str | None  # SHA-256 of the task's data
    n_runs: int
    n_planned: int
    total_wall_time_s: float | None
    notes: tuple[str, ...]

    @property
    def has_grid(self) -> bool:
        """Some contender was trained at more than one peak LR (else there is no sensitivity to show)."""
        return any(len(c.grid) > 1 for c in self.contenders)

    @property
    def single(self) -> bool:
        """One run (`lrlab train`): the report describes it instead of ranking."""
        return len(self.contenders) == 1 and self.n_runs == 1


_INTRO = "Ranked at each schedule's own best peak LR (mean ± std over seeds)."


def _mean_std(xs: Sequence[float]) -> tuple[float, float | None]:
    a = np.asarray(xs, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        return math.inf, None
    mean = float(a.mean())
    return mean, (float(a.std(ddof=1)) if a.size >= 2 else None)


def final_loss(result: Mapping[str, Any]) -> float:
    """A run's final validation loss; inf when it diverged or has none."""
    v = result.get("final_val_loss")
    if result.get("diverged") or v is None or not math.isfinite(float(v)):
        return math.inf
    return float(v)


def _best(result: Mapping[str, Any]) -> float:
    v = result.get("best_val_loss")
    if v is None or not math.isfinite(float(v)):
        return math.inf
    return float(v)


def steps_to_target(eval_steps: Sequence[int], val_loss: Sequence[float], target: float) -> int | None:
    """First evaluation step whose validation loss is <= ``target`` (None if never)."""
    for step, loss in zip(eval_steps, val_loss):
        if loss is not None and math.isfinite(loss) and loss <= target:
            return int(step)
    return None


def contender_label(schedule: str, optimizer: str, *, with_optimizer: bool) -> str:
    """How tables name a contender: the spec text, and the optimizer when several are compared."""
    return f"{schedule} · {optimizer}" if with_optimizer else schedule


def load_results(out_dir: str | Path) -> dict[str, Any]:
    """Read ``DIR/results.json``; raises `LrlabError` if it is missing or not a results document."""
    path = Path(out_dir) / RESULTS_FILE
    if not path.is_file():
        raise LrlabError(f"no {RESULTS_FILE} in {str(out_dir)!r}: give the --out directory of `lrlab compare` "
                         "or `lrlab train`")
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise LrlabError(f"{path} is not valid JSON ({e})") from None
    if not isinstance(doc, dict) or "trials" not in doc or "config" not in doc:
        raise LrlabError(f"{path} is not an lrlab results document (needs 'config' and 'trials')")
    return doc


def _finals_by_seed(runs: Sequence[Mapping[str, Any]]) -> dict[int, float]:
    return {int(r["seed"]): final_loss(r["result"]) for r in runs}


def paired_noise(table: Mapping[str, Mapping[int, float]], seeds: Sequence[int]) -> tuple[float | None, int]:
    """Residual std of the two-way additive model ``final[c, s] = schedule_c + seed_s + noise`` over the
    contenders ``table`` (label -> seed -> final loss) and the shared ``seeds``; returns (sigma, degrees of
    freedom). Each seed's common offset (its initial weights and data order help or hurt every schedule alike)
    is removed, so sigma is the noise in *differences* between schedules. None when there is no replication."""
    rows = [[table[c][s] for s in seeds] for c in table]
    if len(rows) < 2 or len(seeds) < 2:
        return None, 0
    x = np.asarray(rows, dtype=np.float64)
    resid = x - x.mean(axis=1, keepdims=True) - x.mean(axis=0, keepdims=True) + x.mean()
    dof = (x.shape[0] - 1) * (x.shape[1] - 1)
    return float(math.sqrt(float((resid**2).sum()) / dof)), dof


def analyze(doc: Mapping[str, Any]) -> Analysis:
    """Rank every (schedule, optimizer) at its own best peak LR. ``doc`` is a results document (results.json).

    * Best peak LR: among the LRs of that contender's grid run with the most seeds (all of them, unless the
      confirmation seeds re-ran only the best few), the one with the lowest mean final validation loss over the
      seeds they share — so a confirmed LR is judged on every seed, and LRs are compared on the same seeds.
    * Ranking and gaps: mean final loss at the best LR over the *paired seeds* — those every contender has
      there — so all contenders are compared on the same initial weights and data orders.
    * Significance: see `paired_noise`; a gap is not significant when it is below ``sigma * sqrt(2 / S)``, one
      standard deviation of the difference of two means over S paired seeds.
    """
    config = doc["config"]
    trials = [t for t in doc["trials"] if t.get("result") is not None]
    optimizers = sorted({t["optimizer"] for t in trials})
    with_opt = len(optimizers) > 1
    order = {s: i for i, s in enumerate(config.get("schedules") or [])}

    # (schedule, optimizer) -> lr -> trials
    groups: dict[tuple[str, str], dict[float, list[Mapping[str, Any]]]] = {}
    for t in trials:
        groups.setdefault((t["schedule"], t["optimizer"]), {}).setdefault(float(t["lr"]), []).append(t)

    pre: list[dict[str, Any]] = []
    for (schedule, optimizer), by_lr in groups.items():
        grid = []
        for lr in sorted(by_lr):
            runs = by_lr[lr]
            fm, fs = _mean_std([final_loss(r["result"]) for r in runs])
            bm, _ = _mean_std([_best(r["result"]) for r in runs])
            grid.append(LrPoint(lr=lr, n=len(runs), final_mean=fm, final_std=fs, best_mean=bm,
                                diverged=sum(1 for r in runs if math.isinf(final_loss(r["result"])))))
        seed_sets = [set(_finals_by_seed(by_lr[p.lr])) for p in grid]
        most = max(len(x) for x in seed_sets)
        candidates = [i for i, x in enumerate(seed_sets) if len(x) == most]
        shared = set.intersection(*(seed_sets[i] for i in candidates))

        def choose(i: int, by_lr: dict[float, list[Mapping[str, Any]]] = by_lr, grid: list[LrPoint] = grid,
                   shared: set[int] = shared) -> tuple[float, float]:
            finals = _finals_by_seed(by_lr[grid[i].lr])
            vals = [finals[s] for s in sorted(shared)] or list(finals.values())
            return _mean_std(vals)[0], grid[i].lr

        i_best = min(candidates, key=choose)
        pre.append({"schedule": schedule, "optimizer": optimizer, "grid": tuple(grid), "i": i_best,
                    "runs": by_lr[grid[i_best].lr]})

    # paired seeds: run by every contender that has a finite result at its best LR
    finite = [c for c in pre if math.isfinite(c["grid"][c["i"]].final_mean)]
    seeds = sorted(set.intersection(*(set(_finals_by_seed(c["runs"])) for c in finite))) if finite else []
    table = {f"{c['schedule']}|{c['optimizer']}": _finals_by_seed(c["runs"]) for c in finite}
    sigma, dof = paired_noise(table, seeds)
    spreads = [c["grid"][c["i"]].final_std for c in finite if c["grid"][c["i"]].final_std is not None]
    seed_std = float(math.sqrt(np.mean(np.square(spreads)))) if spreads else None

    def key(c: Mapping[str, Any]) -> float:
        finals = _finals_by_seed(c["runs"])
        vals = [finals[s] for s in seeds if s in finals]
        return _mean_std(vals)[0] if vals and seeds else c["grid"][c["i"]].final_mean

    targets, target, target_source = _target(config, pre)
    pre.sort(key=lambda c: (key(c), order.get(c["schedule"], len(order)), c["optimizer"]))
    contenders: list[Contender] = []
    winner_key = key(pre[0]) if pre else math.nan
    gap_sd = sigma * math.sqrt(2 / len(seeds)) if sigma is not None else None
    for rank, c in enumerate(pre, start=1):
        point: LrPoint = c["grid"][c["i"]]
        runs = c["runs"]
        bm, bs = _mean_std([_best(r["result"]) for r in runs])
        reached_steps = []
        if target is not None:
            for r in runs:
                goal = targets.get(int(r["seed"]), target)  # paired: the baseline's loss on the same seed
                s = steps_to_target(r["result"]["eval_steps"], r["result"]["val_loss"], goal)
                if s is not None:
                    reached_steps.append(s)
        gap = key(c) - winner_key if rank > 1 else 0.0
        significant: bool | None
        if rank == 1:
            significant = None
        elif not math.isfinite(gap):
            significant = True
        else:
            significant = None if gap_sd is None else gap > gap_sd
        contenders.append(Contender(
            schedule=c["schedule"], optimizer=c["optimizer"],
            label=contender_label(c["schedule"], c["optimizer"], with_optimizer=with_opt),
            rank=rank, best_lr=point.lr, lr_index=c["i"], grid=c["grid"],
            at_grid_edge=len(c["grid"]) >= 2 and c["i"] in (0, len(c["grid"]) - 1),
            n_seeds=point.n, final_mean=point.final_mean, final_std=point.final_std, best_mean=bm, best_std=bs,
            steps_to_target=float(np.mean(reached_steps)) if reached_steps else None, reached=len(reached_steps),
            wall_time_s=float(np.mean([float(r["result"].get("wall_time_s", 0.0)) for r in runs])),
            diverged=point.diverged, gap=gap, gap_sd=gap_sd if rank > 1 else None, significant=significant,
            branched=any(r.get("branched_from") for r in runs),
            trial_ids=tuple(str(r["id"]) for r in runs),
        ))

    branches = _branch_summary(trials)
    return Analysis(
        title=str(doc.get("title", "lrlab compare")), task=str(config.get("task", "?")),
        steps=int(config.get("steps", 0)), status=str(doc.get("status", "complete")),
        contenders=tuple(contenders), sigma=sigma, sigma_dof=dof, paired_seeds=tuple(seeds), seed_std=seed_std,
        target_loss=target, target_source=target_source, branches=branches,
        python=doc.get("python") or _first_env(trials, "python"),
        corpus_sha256=doc.get("corpus_sha256") or _first_env(trials, "corpus_sha256"), n_runs=len(trials),
        n_planned=int(doc.get("n_planned", len(doc["trials"]))),
        total_wall_time_s=(float(doc["wall_time_s"]) if doc.get("wall_time_s") is not None else None),
        notes=_notes(doc, contenders, sigma),
    )


def _first_env(trials: Sequence[Mapping[str, Any]], key: str) -> str | None:
    """``python`` / ``corpus_sha256`` from the first run's environment, for results written before they were
    recorded at the top level."""
    for t in trials:
        env = t["result"].get("env") or {}
        data = env.get("data") or {}
        value = env.get(key) if key == "python" else data.get("corpus_sha256", data.get("data_sha256"))
        if value:
            return str(value)
    return None


def _chain(b: Mapping[str, Any]) -> list[tuple[str, int | None, int]]:
    """A run's ``branched_from`` as its prefixes, outermost first: (prefix id, first update, end update). Results
    written before chains were recorded hold only the immediate parent, whose first update is unknown (None)."""
    if b.get("chain"):
        return [(str(c["prefix"]), int(c["start"]), int(c["stop"])) for c in b["chain"]]
    return [(str(b["trial"]), None, int(b["step"]))]


def _names(names: Sequence[str]) -> str:
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]


def _branch_summary(trials: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """Which runs branched from a shared prefix, and from which: a headline, then one line per schedule and chain
    of prefixes (the same chain at every peak LR and seed counts once, with its number of runs). A chain has more
    than one link where schedules part at different updates: e.g. constant, WSD and step share updates [0, 340),
    constant and WSD go on together to 801, and WSD branched there from a prefix that itself continued the first."""
    users: dict[str, set[str]] = {}  # prefix id -> schedules whose runs continue it
    branched = [t for t in trials if t.get("branched_from")]
    for t in branched:
        for pid, _, _ in _chain(t["branched_from"]):
            users.setdefault(pid, set()).add(t["schedule"])
    groups: dict[tuple[str, tuple[tuple[int | None, int, tuple[str, ...]], ...]], int] = {}
    for t in branched:
        links = tuple((start, stop, tuple(sorted(users[pid] - {t["schedule"]})))
                      for pid, start, stop in _chain(t["branched_from"]))
        key = (t["schedule"], links)
        groups[key] = groups.get(key, 0) + 1
    if not groups:
        return ()
    n_prefix = len(users)
    out = [f"{len(branched)} of {len(trials)} runs did not train from scratch: they branched from the checkpoint of "
           f"an LR prefix they share bit for bit with other schedules ({n_prefix} shared prefixes, each trained "
           "once), which gives the same numbers as retraining it."]
    order = {t["schedule"]: i for i, t in enumerate(trials)}
    def by_schedule_then_chain(kv: tuple[tuple[str, Any], int]) -> tuple[int, list[tuple[int, int, Any]]]:
        (schedule, links), _ = kv  # a chain of an older results file has no first update (None): it sorts first
        return order[schedule], [(-1 if start is None else start, stop, others) for start, stop, others in links]

    for (schedule, links), n in sorted(groups.items(), key=by_schedule_then_chain):
        parts = []
        for start, stop, others in links:
            span = f"updates [{start}, {stop})" if start is not None else f"its first {stop} updates"
            parts.append(f"{span} shared with {_names(list(others))}" if others else span)
        head = f"{schedule}: {n} run{'s' if n != 1 else ''} branched at update {links[-1][1]} from "
        if len(parts) == 1:
            out.append(head + f"the prefix of {parts[0]}.")
        else:
            out.append(head + "nested prefixes: " + "; then ".join(parts) + " (each continues the one before).")
    return tuple(out)


def _target(config: Mapping[str, Any], pre: Sequence[Mapping[str, Any]]) -> tuple[dict[int, float], float | None, str]:
    """Per-seed target losses, their mean (for display) and where they come from."""
    if config.get("target_loss") is not None:
        t = float(config["target_loss"])
        return {}, t, "given (target_loss)"
    schedules = config.get("schedules") or []
    if not schedules or not pre:
        return {}, None, "none"
    baseline = [c for c in pre if c["schedule"] == schedules[0]]
    finite = [c for c in baseline if math.isfinite(c["grid"][c["i"]].final_mean)]
    if not finite:
        return {}, None, f"none ({schedules[0]} has no finished, finite run)"
    best = min(finite, key=lambda c: c["grid"][c["i"]].final_mean)
    per_seed = {s: v for s, v in _finals_by_seed(best["runs"]).items() if math.isfinite(v)}
    opt = f" · {best['optimizer']}" if len({c['optimizer'] for c in pre}) > 1 else ""
    seeds = ", ".join(f"{v:.3f} on seed {s}" for s, v in sorted(per_seed.items()))
    source = (f"the final loss of the baseline {schedules[0]}{opt} at its best peak LR on the same seed ({seeds}); "
              "a seed the baseline lacks uses their mean")
    return per_seed, float(np.mean(list(per_seed.values()))), source


def _notes(doc: Mapping[str, Any], contenders: Sequence[Contender], sigma: float | None) -> tuple[str, ...]:
    notes: list[str] = []
    status = doc.get("status", "complete")
    if status != "complete":
        done = sum(1 for t in doc["trials"] if t.get("result") is not None)
        notes.append(f"Run {status}: {done} of {doc.get('n_planned', len(doc['trials']))} planned runs finished; "
                     "the ranking covers only those (`lrlab compare --resume DIR` finishes the rest).")
    extended = sorted({(t["schedule"], t["optimizer"]) for t in doc["trials"] if t.get("phase") == "extend"})
    if extended:
        with_opt = len({c.optimizer for c in contenders}) > 1
        notes.append("Grid extended beyond its edge, where the best peak LR was the smallest or largest tried: "
                     + ", ".join(contender_label(s, o, with_optimizer=with_opt) for s, o in extended) + ".")
    edge = [c.label for c in contenders if c.at_grid_edge and math.isfinite(c.final_mean)]
    if edge:
        notes.append("Best peak LR at the edge of the grid (the optimum may lie outside; raise --lr-extend, widen "
                     "--lr-grid or move --lr): " + ", ".join(edge) + ".")
    if sigma is None and len(contenders) > 1:
        notes.append("One seed per schedule: no noise estimate, so significance is unknown (?); run with "
                     "--seeds 2 (or more) to test it.")
    diverged = [c.label for c in contenders if c.diverged]
    if diverged:
        notes.append("Diverged at every seed of its best LR (ranked last): " + ", ".join(diverged) + ".")
    for note in doc.get("notes", []):
        notes.append(str(note))
    return tuple(notes)


# ------------------------------------------------------------------------------------------------ formatting


def _fmt_loss(mean: float, std: float | None) -> str:
    if not math.isfinite(mean):
        return "diverged"
    return f"{mean:.3f} ± {std:.3f}" if std is not None else f"{mean:.3f}"


def _fmt_steps(c: Contender, target: float | None) -> str:
    if target is None:
        return "–"
    if c.steps_to_target is None:
        return "never"
    s = f"{c.steps_to_target:.0f}"
    return s if c.reached == c.n_seeds else f"{s} ({c.reached}/{c.n_seeds})"


def _fmt_sig(c: Contender) -> str:
    if c.rank == 1:
        return "winner"
    gap = f"+{c.gap:.3f}" if math.isfinite(c.gap) else "+inf"
    if c.significant is None:
        return f"{gap} ?"
    return gap if c.significant else f"{gap} ≈"


#: how the table marks a best peak LR at the edge of its grid (the optimum may lie outside it)
EDGE_MARK = "(best at grid edge)"
#: what the marks in the table mean (printed under it)
LEGEND = ("≈: gap to the winner within seed-to-seed noise (not significant); ?: no spread estimate; "
          f"{EDGE_MARK}: the best peak LR is the smallest or largest tried, so the optimum may lie outside the grid "
          "(raise --lr-extend); "
          "†: branched from a shared-prefix checkpoint")


def table_rows(a: Analysis) -> tuple[list[str], list[list[str]]]:
    """The ranked table as plain strings: (header, rows). Every renderer shows these same cells.

    Columns: rank; contender; its best peak LR (`EDGE_MARK` when it is the smallest or largest of the grid); final
    and best validation loss there (mean ± std over seeds); the first evaluation step at which it reached the
    target loss (``k/n``: only k of n seeds did); mean wall time per run; the gap to the winner's final loss with
    its significance mark."""
    header = ["#", "schedule", "peak LR", "final val", "best val", "to target", "time", "vs #1"]
    rows = []
    for c in a.contenders:
        lr = f"{c.best_lr:.3g}" + (f" {EDGE_MARK}" if c.at_grid_edge else "")
        best = _fmt_loss(c.best_mean, c.best_std) if math.isfinite(c.best_mean) else "–"
        rows.append([str(c.rank), c.label + (" †" if c.branched else ""), lr, _fmt_loss(c.final_mean, c.final_std),
                     best, _fmt_steps(c, a.target_loss), f"{c.wall_time_s:.0f} s", _fmt_sig(c)])
    if a.single:  # one run (`lrlab train`): nothing to rank against
        keep = [1, 2, 3, 4, 6]
        return [header[i] for i in keep], [[r[i] for i in keep] for r in rows]
    return header, rows


def provenance(a: Analysis) -> str:
    """``Task lm · Python 3.11.7 · corpus sha256 1a2b3c4d5e6f``: what the numbers were measured on (the ``lm``
    corpus is the interpreter's own standard library, so it changes with the Python version)."""
    parts = [f"Task {a.task}"]
    if a.python:
        parts.append(f"Python {a.python}")
    if a.corpus_sha256:
        parts.append(f"{'data' if a.task == 'vision' else 'corpus'} sha256 {a.corpus_sha256[:12]}")
    return " · ".join(parts)


def summary_lines(a: Analysis) -> list[str]:
    """Plain-text lines under the table: what was compared, the target, the spread, branching, notes."""
    lines = []
    if a.single:
        c = a.contenders[0]
        lines.append(provenance(a))
        lines.append(f"{c.label} at peak LR {c.best_lr:.3g} on task {a.task}, {a.steps} updates: final val loss "
                     f"{_fmt_loss(c.final_mean, c.final_std)}, best {c.best_mean:.3f}.")
        if a.total_wall_time_s is not None:
            lines.append(f"Total wall time: {a.total_wall_time_s:.0f} s.")
        return lines + list(a.notes)
    if a.contenders:
        w = a.contenders[0]
        ties = [c.label for c in a.contenders[1:] if c.significant is False]
        head = f"Winner: {w.label} at peak LR {w.best_lr:.3g} (final val loss {_fmt_loss(w.final_mean, w.final_std)})"
        if ties:
            head += "; not significantly different: " + ", ".join(ties)
        lines.append(head + ".")
    seeds = ", ".join(map(str, a.paired_seeds)) or "none shared"
    lines.append(f"{provenance(a)}; {a.steps} updates per run; {a.n_runs} runs; ranked on seeds {seeds} at each "
                 "schedule's best peak LR.")
    if a.target_loss is not None:
        lines.append(f"Steps to target: first evaluation at or below {a.target_source}.")
    if a.sigma is not None:
        n = len(a.paired_seeds)
        raw = f" (one schedule's raw seed-to-seed std is {a.seed_std:.3f})" if a.seed_std is not None else ""
        lines.append(f"Noise: seeds are paired (same initial weights and data order for every schedule), so gaps are "
                     f"judged against the seed-to-seed scatter of the differences, sigma = {a.sigma:.3f} per seed "
                     f"({a.sigma_dof} dof){raw}; '≈' marks a gap below sigma·√(2/{n}) = "
                     f"{a.sigma * math.sqrt(2 / n):.3f}.")
    lines.extend(f"† {b}" for b in a.branches)
    if a.total_wall_time_s is not None:
        lines.append(f"Total wall time: {a.total_wall_time_s:.0f} s.")
    lines.extend(a.notes)
    return lines


def print_report(a: Analysis, console: Any = None) -> None:
    """Print the ranked table and the summary lines to the terminal (rich)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    header, rows = table_rows(a)
    title = a.title if a.single else f"{a.title}: ranked at each schedule's best peak LR"
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for h in header:
        if h == "schedule":
            table.add_column(h, justify="left", min_width=14, overflow="fold")
        else:
            table.add_column(h, justify="left" if h == "vs #1" else "right", no_wrap=h != "vs #1")
    for c, row in zip(a.contenders, rows):
        style = "bold green" if c.rank == 1 else ("yellow" if c.significant is False else "")
        table.add_row(*row, style=style)
    console.print(table)
    if not a.single:
        console.print(LEGEND, highlight=False, markup=False, style="dim")
    for line in summary_lines(a):
        console.print(line, highlight=False, markup=False)


def markdown(a: Analysis, *, plots: Sequence[str] = ()) -> str:
    """``report.md``: the table, the summary, the sensitivity grid and links to the PNGs."""
    header, rows = table_rows(a)
    out = [f"# {a.title}", "", _INTRO if not a.single else "One training run.", ""]
    out.append("| " + " | ".join(header) + " |")
    out.append("|" + "|".join("---" if h in ("schedule", "vs #1") else "---:" for h in header) + "|")
    out += ["| " + " | ".join(_md_cell(x) for x in r) + " |" for r in rows]
    out += [""] + ([f"_{_md_cell(LEGEND)}_", ""] if not a.single else [])
    out += [f"- {_md_cell(line)}" for line in summary_lines(a)] + [""]
    if a.has_grid:
        sens_header, sens_rows = sensitivity_rows(a)
        out += ["## Final validation loss at each peak LR", ""]
        out.append("| " + " | ".join(sens_header) + " |")
        out.append("|---|" + "---:|" * (len(sens_header) - 1))
        out += ["| " + " | ".join(_md_cell(x) for x in r) + " |" for r in sens_rows]
        out.append("")
    for name in plots:
        out += [f"![{PLOTS.get(name, name)}]({name})", ""]
    return "\n".join(out)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def sensitivity_rows(a: Analysis) -> tuple[list[str], list[list[str]]]:
    """Final validation loss per (contender, peak LR): header has every LR tried, '←' marks each best."""
    lrs = sorted({p.lr for c in a.contenders for p in c.grid})
    header = ["schedule"] + [f"{lr:.3g}" for lr in lrs]
    rows = []
    for c in a.contenders:
        by = {p.lr: p for p in c.grid}
        cells = [c.label]
        for lr in lrs:
            p = by.get(lr)
            cells.append("" if p is None else _fmt_loss(p.final_mean, p.final_std) + (" ←" if lr == c.best_lr else ""))
        rows.append(cells)
    return header, rows


# ------------------------------------------------------------------------------------------------- plotting


def _save(fig: Any, path: Path) -> None:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    atomic_write_bytes(path, buf.getvalue())


def _finish(fig: Any, out: Path, name: str, written: list[str]) -> None:
    """Lay out, write atomically as ``out/name``, close, and record the figure's file name."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    _save(fig, out / name)
    plt.close(fig)
    written.append(name)


def _runs_at_best(doc: Mapping[str, Any], c: Contender) -> list[Mapping[str, Any]]:
    ids = set(c.trial_ids)
    return [t for t in doc["trials"] if t["id"] in ids and t.get("result") is not None]


def _mean_curve(curves: Sequence[Sequence[float]]) -> np.ndarray:
    n = min(len(c) for c in curves)
    return np.mean(np.asarray([np.asarray(c[:n], dtype=np.float64) for c in curves]), axis=0)


def _smooth(y: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average (the first points average what exists so far)."""
    if y.size == 0 or window <= 1:
        return y
    c = np.cumsum(np.insert(y, 0, 0.0))
    idx = np.arange(1, y.size + 1)
    lo = np.maximum(0, idx - window)
    return (c[idx] - c[lo]) / (idx - lo)


def write_plots(doc: Mapping[str, Any], a: Analysis, out_dir: str | Path) -> list[str]:
    """Write the PNGs of `PLOTS` into ``out_dir``; returns the file names written (in `PLOTS` order)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    written: list[str] = []
    shown = [c for c in a.contenders if _runs_at_best(doc, c)]
    if not shown:
        return written
    colors = plt.get_cmap("tab10" if len(shown) <= 10 else "tab20")
    color = {c.label: colors(i % colors.N) for i, c in enumerate(shown)}

    # LR curves of every schedule (at its best peak LR) on one figure
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for c in shown:
        lr = np.asarray(_runs_at_best(doc, c)[0]["result"]["lr"], dtype=np.float64)
        ax.plot(np.arange(lr.size), lr, label=f"{c.label} (peak {c.best_lr:.3g})", color=color[c.label], lw=1.6)
    ax.set_xlabel("update")
    ax.set_ylabel("learning rate")
    ax.set_title("Learning-rate schedules at their best peak LR")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")
    _finish(fig, out, "lr_curves.png", written)

    # validation loss of all schedules on one figure
    fig, ax = plt.subplots(figsize=(9, 4.5))
    finite_vals: list[float] = []
    for c in shown:
        runs = _runs_at_best(doc, c)
        steps = runs[0]["result"]["eval_steps"]
        val = _mean_curve([r["result"]["val_loss"] for r in runs])
        ax.plot(steps[: val.size], val, marker="o", ms=2.5, label=c.label, color=color[c.label], lw=1.4)
        finite_vals += [float(v) for v in val if math.isfinite(v)]
    if a.target_loss is not None:
        ax.axhline(a.target_loss, color="#666", ls="--", lw=1, label=f"target {a.target_loss:.3f}")
    if finite_vals:  # zoom on the informative part: the early, high losses squash everything else
        lo, hi = min(finite_vals), float(np.percentile(finite_vals, 90))
        ax.set_ylim(lo - 0.05 * (hi - lo + 1e-9), hi)
    ax.set_xlabel("update")
    ax.set_ylabel("validation loss")
    ax.set_title("Validation loss at each schedule's best peak LR")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")
    _finish(fig, out, "val_loss.png", written)

    # training and validation loss, one panel per schedule
    n = len(shown)
    cols = min(3, n)
    rows_n = math.ceil(n / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(4.2 * cols, 3.0 * rows_n), squeeze=False, sharey=True)
    for i, c in enumerate(shown):
        ax = axes[i // cols][i % cols]
        runs = _runs_at_best(doc, c)
        train = _mean_curve([r["result"]["train_loss"] for r in runs])
        window = max(1, train.size // 50)
        ax.plot(np.arange(train.size), train, color=color[c.label], alpha=0.25, lw=0.6)
        ax.plot(np.arange(train.size), _smooth(train, window), color=color[c.label], lw=1.2, label="train")
        val = _mean_curve([r["result"]["val_loss"] for r in runs])
        ax.plot(runs[0]["result"]["eval_steps"][: val.size], val, color="black", marker="o", ms=2, lw=1, label="val")
        ax.set_title(f"{c.label} @ {c.best_lr:.3g}", fontsize=8)
        ax.grid(alpha=0.3)
        if finite_vals:
            lo, hi = min(finite_vals), float(np.percentile(finite_vals, 90))
            ax.set_ylim(lo - 0.15 * (hi - lo + 1e-9), hi + 0.1 * (hi - lo + 1e-9))
        if i == 0:
            ax.legend(fontsize=7)
    for j in range(n, rows_n * cols):
        axes[j // cols][j % cols].axis("off")
    fig.supxlabel("update", fontsize=9)
    fig.supylabel("loss", fontsize=9)
    _finish(fig, out, "loss_curves.png", written)

    if a.single:  # one run: no sensitivity curve, no bar chart to compare
        return written

    # sensitivity: final loss vs peak LR
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for c in shown:
        pts = [p for p in c.grid if math.isfinite(p.final_mean)]
        if not pts:
            continue
        ax.errorbar([p.lr for p in pts], [p.final_mean for p in pts],
                    yerr=[p.final_std or 0.0 for p in pts], marker="o", ms=4, capsize=3,
                    label=c.label, color=color[c.label], lw=1.2)
        ax.scatter([c.best_lr], [c.final_mean], s=90, facecolors="none", edgecolors=color[c.label], lw=1.5)
        for p in c.grid:
            if not math.isfinite(p.final_mean):
                ax.scatter([p.lr], [max(finite_vals or [0.0])], marker="x", color=color[c.label])
    ax.set_xscale("log")
    ax.set_xlabel("peak learning rate")
    ax.set_ylabel("final validation loss")
    ax.set_title("Sensitivity: final loss vs peak LR (circle: best; x: diverged)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    _finish(fig, out, "sensitivity.png", written)

    # bar chart of final loss at best LR with error bars
    fig, ax = plt.subplots(figsize=(9, 0.45 * n + 1.6))
    finite = [c for c in shown if math.isfinite(c.final_mean)]
    ys = np.arange(len(finite))[::-1]
    ax.barh(ys, [c.final_mean for c in finite], xerr=[c.final_std or 0.0 for c in finite], capsize=3,
            color=[color[c.label] for c in finite], alpha=0.85)
    ax.set_yticks(ys, [c.label for c in finite], fontsize=7)
    if finite:
        lo = min(c.final_mean - (c.final_std or 0.0) for c in finite)
        hi = max(c.final_mean + (c.final_std or 0.0) for c in finite)
        ax.set_xlim(lo - 0.2 * (hi - lo + 1e-3), hi + 0.1 * (hi - lo + 1e-3))
    ax.set_xlabel("final validation loss at best peak LR (lower is better)")
    ax.grid(alpha=0.3, axis="x")
    _finish(fig, out, "final_loss.png", written)
    return written


# ----------------------------------------------------------------------------------------------------- HTML

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1100px;
       color: #1f2328; background: #ffffff; padding: 0 1em; }
h1 { font-size: 1.6em; border-bottom: 1px solid #d0d7de; padding-bottom: .3em; }
h2 { font-size: 1.25em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #d0d7de; padding: 4px 10px; text-align: right; }
th { background: #f6f8fa; }
#ranking th:nth-child(2), #sensitivity th:first-child, td.name { text-align: left; }
td.name { font-family: ui-monospace, Menlo, Consolas, monospace; }
tr.winner td { background: #dafbe1; font-weight: 600; }
tr.tie td { background: #fff8c5; }
ul.notes li { margin: .3em 0; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; border: 1px solid #d0d7de; }
figcaption, p.legend { color: #59636e; font-size: 0.9em; }
"""


def html_report(a: Analysis, plots: Mapping[str, bytes]) -> str:
    """``report.html``: the same table, summary and sensitivity grid as report.md, with the PNGs inlined as
    base64 data URIs and the CSS inline; it needs nothing outside the file."""
    esc = html.escape
    header, rows = table_rows(a)
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{esc(a.title)}</title>", f"<style>{_CSS}</style></head><body>",
             f"<h1>{esc(a.title)}</h1>",
             f"<p>{esc(_INTRO if not a.single else 'One training run.')}</p>",
             '<table id="ranking"><thead><tr>' + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr></thead><tbody>"]
    for c, row in zip(a.contenders, rows):
        cls = "winner" if c.rank == 1 else ("tie" if c.significant is False else "")
        cells = "".join(f'<td class="name">{esc(x)}</td>' if i == 1 else f"<td>{esc(x)}</td>"
                        for i, x in enumerate(row))
        parts.append(f'<tr class="{cls}">{cells}</tr>')
    parts.append("</tbody></table>")
    if not a.single:
        parts.append(f'<p class="legend">{esc(LEGEND)}</p>')
    parts.append('<ul class="notes">' + "".join(f"<li>{esc(line)}</li>" for line in summary_lines(a)) + "</ul>")
    if a.has_grid:
        sens_header, sens_rows = sensitivity_rows(a)
        parts.append("<h2>Final validation loss at each peak LR</h2>")
        parts.append('<table id="sensitivity"><thead><tr>' + "".join(f"<th>{esc(h)}</th>" for h in sens_header)
                     + "</tr></thead><tbody>")
        for r in sens_rows:
            parts.append("<tr>" + f'<td class="name">{esc(r[0])}</td>' + "".join(f"<td>{esc(x)}</td>" for x in r[1:])
                         + "</tr>")
        parts.append("</tbody></table>")
    for name, data in plots.items():
        b64 = base64.b64encode(data).decode("ascii")
        caption = esc(PLOTS.get(name, name))
        parts.append(f'<figure><img alt="{caption}" src="data:image/png;base64,{b64}">'
                     f"<figcaption>{caption}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(doc: Mapping[str, Any], out_dir: str | Path, *, plots: bool = True) -> Analysis:
    """Analyse ``doc`` and write ``report.md``, the PNGs (``plots=True``) and ``report.html`` into ``out_dir``.
    Returns the analysis (for the terminal table)."""
    out = Path(out_dir)
    a = analyze(doc)
    names = write_plots(doc, a, out) if plots else []
    atomic_write_text(out / "report.md", markdown(a, plots=names))
    atomic_write_text(out / "report.html", html_report(a, {n: (out / n).read_bytes() for n in names}))
    return a
