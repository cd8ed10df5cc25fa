"""What a comparison's ``results.json`` says: each contender (a schedule with an optimizer) at its own best peak
LR, ranked, with the paired-seed noise that decides whether a gap is significant (a t-test on that noise, scipy).
Pure functions returning frozen dataclasses; `lrlab.bench.report` renders them. How a contender is judged, and why:
docs/harness.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lrlab.errors import LrlabError

RESULTS_FILE = "results.json"
#: significance level of the gap test: a gap is significant when its two-sided p-value is below it, i.e. when its
#: 95 % confidence interval excludes 0
ALPHA = 0.05


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
    gap_sd: float | None  # standard error of that difference; None when no noise estimate exists (and for the winner)
    gap_ci: tuple[float, float] | None  # its (1 - ALPHA) confidence interval (`gap_test`); None as for gap_sd
    p_value: float | None  # two-sided p-value of "no true gap" (`gap_test`); None as for gap_sd
    significant: bool | None  # p_value < ALPHA (the interval excludes 0); None: unknown (one seed) or the winner
    seed_gaps: tuple[float, ...]  # the gap on each paired seed (this contender's final loss minus the winner's)
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
    alpha: float  # significance level of the gap test (`ALPHA`)
    paired_seeds: tuple[int, ...]  # seeds every contender ran at its best LR: ranking and gaps use these
    seed_std: float | None  # raw seed-to-seed std of one contender's final loss (RMS over contenders), for scale
    target_loss: float | None  # mean of the per-seed targets (what plots draw)
    target_source: str
    branches: tuple[str, ...]  # which runs branched from which shared prefixes (empty: none did)
    python: str | None  # the interpreter the runs used (the lm corpus is its standard library)
    corpus_sha256: str | None  # SHA-256 of the task's data
    device: str | None  # where the runs trained, e.g. "cpu" or "cuda:0 (NVIDIA H200) bf16"; None: not recorded
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
    """Read ``DIR/results.json``; raises `LrlabError` naming the file, the field and what was expected if it is
    missing, unreadable, not JSON or not a results document (`lrlab.bench.documents.check_results`)."""
    from lrlab.bench.documents import check_results  # standard library only
    from lrlab.files import read_json

    path = Path(out_dir) / RESULTS_FILE
    if not path.is_file():
        raise LrlabError(f"no {RESULTS_FILE} in {str(out_dir)!r}: give the --out directory of `lrlab compare` "
                         "or `lrlab train`")
    doc: dict[str, Any] = read_json(path, what="results file")
    check_results(str(path), doc)
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


@dataclass(frozen=True, kw_only=True)
class GapTest:
    """A paired t-test of one gap against the pooled paired noise: standard error, t statistic, two-sided p-value
    and the (1 - alpha) confidence interval."""

    se: float
    t: float
    p_value: float
    ci: tuple[float, float]
    significant: bool  # p_value < alpha, equivalently: the interval excludes 0


def gap_test(gap: float, sigma: float, dof: int, n_seeds: int, *, alpha: float = ALPHA) -> GapTest:
    """Test a gap between two contenders' means over ``n_seeds`` paired seeds, with ``sigma`` the per-seed noise of
    schedule-to-schedule differences and ``dof`` its degrees of freedom (`paired_noise`).

    The standard error of a difference of two S-seed means is ``sigma * sqrt(2 / S)``; ``t = gap / se`` follows
    Student's t with ``dof`` degrees of freedom (scipy.stats.t). This is the paired t-test pooled over every
    contender (a contrast in the two-way, randomised-block analysis of variance); with two contenders it is exactly
    `scipy.stats.ttest_rel` of their per-seed final losses. The interval is ``gap ± t_{1-alpha/2, dof} * se``."""
    from scipy import stats  # optional dependency (the `bench` extra): keeps `import lrlab.bench.analysis` light

    se = sigma * math.sqrt(2 / n_seeds)
    if se == 0.0:  # no noise at all (e.g. identical differences on every seed): any gap is real
        return GapTest(se=0.0, t=math.inf if gap else 0.0, p_value=0.0 if gap else 1.0, ci=(gap, gap),
                       significant=gap != 0.0)
    t = gap / se
    p = float(2 * stats.t.sf(abs(t), dof))
    half = float(stats.t.ppf(1 - alpha / 2, dof)) * se
    return GapTest(se=se, t=t, p_value=p, ci=(gap - half, gap + half), significant=p < alpha)


def analyze(doc: Mapping[str, Any]) -> Analysis:
    """Rank every (schedule, optimizer) at its own best peak LR. ``doc`` is a results document (results.json).

    * Best peak LR: among the LRs of that contender's grid run with the most seeds (all of them, unless the
      confirmation seeds re-ran only the best few), the one with the lowest mean final validation loss over the
      seeds they share — so a confirmed LR is judged on every seed, and LRs are compared on the same seeds.
    * Ranking and gaps: mean final loss at the best LR over the *paired seeds* — those every contender has
      there — so all contenders are compared on the same initial weights and data orders.
    * Significance: `gap_test`, a paired t-test of each gap on the pooled noise of `paired_noise`: a gap is not
      significant when its 95 % confidence interval includes 0 (two-sided p >= `ALPHA`).
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
    winner_finals = _finals_by_seed(pre[0]["runs"]) if pre else {}
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
        finals = _finals_by_seed(runs)
        seed_gaps = tuple(finals[s] - winner_finals[s] for s in seeds if s in finals and s in winner_finals)
        test = None
        if rank > 1 and sigma is not None and math.isfinite(gap):
            test = gap_test(gap, sigma, dof, len(seeds))
        significant: bool | None
        if rank == 1:
            significant = None
        elif not math.isfinite(gap):
            significant = True
        else:
            significant = None if test is None else test.significant
        contenders.append(Contender(
            schedule=c["schedule"], optimizer=c["optimizer"],
            label=contender_label(c["schedule"], c["optimizer"], with_optimizer=with_opt),
            rank=rank, best_lr=point.lr, lr_index=c["i"], grid=c["grid"],
            at_grid_edge=len(c["grid"]) >= 2 and c["i"] in (0, len(c["grid"]) - 1),
            n_seeds=point.n, final_mean=point.final_mean, final_std=point.final_std, best_mean=bm, best_std=bs,
            steps_to_target=float(np.mean(reached_steps)) if reached_steps else None, reached=len(reached_steps),
            wall_time_s=float(np.mean([float(r["result"].get("wall_time_s", 0.0)) for r in runs])),
            diverged=point.diverged, gap=gap, gap_sd=test.se if test else None, gap_ci=test.ci if test else None,
            p_value=test.p_value if test else None, significant=significant, seed_gaps=seed_gaps,
            branched=any(r.get("branched_from") for r in runs),
            trial_ids=tuple(str(r["id"]) for r in runs),
        ))

    branches = _branch_summary(trials)
    return Analysis(
        title=str(doc.get("title", "lrlab compare")), task=str(config.get("task", "?")),
        steps=int(config.get("steps", 0)), status=str(doc.get("status", "complete")),
        contenders=tuple(contenders), sigma=sigma, sigma_dof=dof, alpha=ALPHA, paired_seeds=tuple(seeds),
        seed_std=seed_std,
        target_loss=target, target_source=target_source, branches=branches,
        python=doc.get("python") or _first_env(trials, "python"),
        corpus_sha256=doc.get("corpus_sha256") or _first_env(trials, "corpus_sha256"), device=_device(trials),
        n_runs=len(trials),
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


def _device(trials: Sequence[Mapping[str, Any]]) -> str | None:
    """Where the runs trained, from their environment records: ``cpu``, or e.g. ``cuda:0 (NVIDIA H200), bf16
    autocast``; several when they differ (one worker per GPU). None when no run recorded it."""
    seen: list[str] = []
    for t in trials:
        env = t["result"].get("env") or {}
        if not env.get("device"):
            continue
        text = str(env["device"])
        if env.get("device_name"):
            text += f" ({env['device_name']})"
        if env.get("autocast"):
            text += f", {env['autocast']} autocast"
        if text not in seen:
            seen.append(text)
    return "; ".join(seen) if seen else None


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


def mean_final(runs: Sequence[Mapping[str, Any]]) -> float:
    """Mean final validation loss of finished runs (inf if any diverged; inf for none)."""
    vals = [final_loss(t["result"]) for t in runs]
    return math.fsum(vals) / len(vals) if vals else math.inf


def runs_at_best(doc: Mapping[str, Any], c: Contender) -> list[Mapping[str, Any]]:
    """The finished runs of ``doc`` at contender ``c``'s best peak LR."""
    ids = set(c.trial_ids)
    return [t for t in doc["trials"] if t["id"] in ids and t.get("result") is not None]
