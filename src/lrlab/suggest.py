"""`suggest`: a full schedule for a kind of training run, from lrlab's own measurements, naming them.

The rules (the numbers are in `lrlab.evidence.TABLES`, copied from BENCHMARKS.md):

* Shape. Of the comparisons lrlab measured for the task with the optimizer, the schedules within the noise of the
  winner in every one of them; among those, the one that won the most comparisons with that optimizer on any task
  (`recommended_schedule`). Adam, Adagrad and RMSprop have no table of their own: AdamW's stands in, and the
  suggestion says so. Fine-tuning has no measurement: linear decay to 0 after a 6% warm-up (BERT / RoBERTa), and
  the suggestion says that it is not measured.
* Warm-up: the measured 5% of training, capped for Adam-type optimizers at ``2 / (1 - beta2)`` updates (Ma &
  Yarats 2021; lrlab measured only runs where the cap does not bind).
* Peak LR, in this order: the LR range test on the built-in task (``find=True``; `lrlab.range_test.peak_lr`, its
  correction measured in BENCHMARKS.md); the measured best peak of the chosen schedule when `preset` names a
  measured built-in model; otherwise none, and the suggestion says to measure it (``lrlab find`` / ``lrlab tune``).

`suggest(...)` returns a `Suggestion` (data); the CLI prints it (`format_suggestion`) or its JSON.
"""

from __future__ import annotations

import math
import textwrap
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from lrlab import evidence
from lrlab.checks import check
from lrlab.errors import LrlabError
from lrlab.evidence import Table, lookup, short, tables_for
from lrlab.spec import parse

TASKS = ("lm", "vision", "finetune")
OPTIMIZERS = ("adamw", "adam", "sgd", "schedulefree", "adagrad", "rmsprop")
ADAM_LIKE = ("adamw", "adam", "schedulefree")
PRESETS = ("tiny", "small", "base")
#: whose measurements stand in for an optimizer lrlab has not compared schedules with
EVIDENCE_OPTIMIZER = {"adamw": "adamw", "adam": "adamw", "adagrad": "adamw", "rmsprop": "adamw", "sgd": "sgd",
                      "schedulefree": "schedulefree"}
#: the measured specs with their warm-up as a placeholder (for the Adam warm-up cap)
_WARMUP_TEMPLATE = {
    "wsd(warmup=0.05, decay=0.2)": "wsd(warmup={w}, decay=0.2)",
    "warmup(0.05) >> linear()": "warmup({w}) >> linear()",
    "warmup(0.05) >> cosine()": "warmup({w}) >> cosine()",
    "warmup(0.05) >> constant()": "warmup({w}) >> constant()",
    "warmup(0.05) >> inverse_sqrt(50)": "warmup({w}) >> inverse_sqrt(50)",
}
#: fine-tuning: not measured by lrlab
FINETUNE_SPEC = "warmup(0.06) >> linear()"
#: the classic language-model schedule, offered as an alternative (not measured by lrlab as such)
CLASSIC_LM = "warmup(0.05) >> cosine(floor=0.1)"
#: what the literature says about the measured shapes (quoted where they agree with the tables)
LITERATURE = {
    "wsd(warmup=0.05, decay=0.2)": "Hägele et al. 2024: WSD with a (1-sqrt) cooldown matches or beats cosine",
    "warmup(0.05) >> linear()": "Bergsma et al. 2025 ('Straight to Zero'): linear decay to zero beats cosine to 10%",
    "warmup(0.05) >> constant()": "Defazio et al. 2024: schedule-free optimizers average their iterates and need "
                                  "only a warm-up; evaluate with optimizer.eval()",
}


@dataclass(frozen=True, kw_only=True)
class Alternative:
    """Another schedule worth running, and why."""

    spec: str
    why: str

    def to_dict(self) -> dict[str, Any]:
        return {"spec": self.spec, "why": self.why}


@dataclass(frozen=True, kw_only=True)
class Suggestion:
    """A suggested schedule.

    Args:
        task, steps, optimizer, preset: what it is for (`preset` None: the user's own model).
        spec: the schedule as lrlab spec text; its values are factors of `peak_lr` (parse with ``lrlab.parse``).
        bound: `spec` bound to `steps` (every length in updates).
        peak_lr: the suggested peak (base) LR; None when nothing measured it for this setup.
        peak_source: ``"range test"``, ``"measured"`` (a built-in preset's best peak in `evidence`) or ``"none"``.
        warmup_steps: updates of warm-up.
        min_lr: the LR at the end of the run (``peak_lr`` x the final factor); None without a peak.
        evidence: the measurements the shape (and a measured peak) stand on, one citation each.
        reasons: one sentence per choice.
        alternatives: other schedules worth a run, with why.
        range_test: when the range test ran: its suggestions (``rule``, ``lr``), stop reason, updates; else None.
    """

    task: str
    steps: int
    optimizer: str
    preset: str | None
    spec: str
    bound: str
    peak_lr: float | None
    peak_source: str
    warmup_steps: int
    min_lr: float | None
    evidence: tuple[str, ...]
    reasons: tuple[str, ...]
    alternatives: tuple[Alternative, ...] = ()
    range_test: dict[str, Any] | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "steps": self.steps, "optimizer": self.optimizer, "preset": self.preset,
                "spec": self.spec, "bound": self.bound, "peak_lr": self.peak_lr, "peak_source": self.peak_source,
                "warmup_steps": self.warmup_steps, "min_lr": self.min_lr, "evidence": list(self.evidence),
                "reasons": list(self.reasons), "alternatives": [a.to_dict() for a in self.alternatives],
                "range_test": self.range_test}


# ------------------------------------------------------------------------------------------------ shape


def _tied_with_winner(t: Table) -> set[str]:
    """Schedules of `t` whose mean final loss is within its noise (sigma per seed) of the winner's."""
    if t.sigma is None:
        return {t.winner.schedule}
    return {r.schedule for r in t.rows if r.final - t.winner.final <= t.sigma}


def _wins(optimizer: str) -> Counter[str]:
    """How many measured comparisons (of two or more schedules) each schedule won with `optimizer`, any task."""
    return Counter(t.winner.schedule for t in evidence.TABLES if t.optimizer == optimizer and len(t.rows) > 1)


def recommended_schedule(task: str, optimizer: str) -> str:
    """The schedule the evidence supports for `task` with `optimizer` (module docstring), as measured (lengths as
    fractions of the run)."""
    check.choice("task", task, TASKS)
    check.choice("optimizer", optimizer, OPTIMIZERS)
    tables = tables_for(task, EVIDENCE_OPTIMIZER[optimizer])
    if not tables:
        return FINETUNE_SPEC
    tied = set.intersection(*(_tied_with_winner(t) for t in tables))
    if not tied:  # the tables disagree beyond their noise: the winner of the largest model measured
        return tables[-1].winner.schedule
    wins = _wins(EVIDENCE_OPTIMIZER[optimizer])
    mean_rank = {s: sum([r.schedule for r in t.rows].index(s) for t in tables) / len(tables) for s in tied}
    return min(tied, key=lambda s: (-wins[s], mean_rank[s], s))


def _shape_evidence(task: str, optimizer: str, schedule: str) -> tuple[list[str], str]:
    """(citations, the reason for the shape)."""
    ev_opt = EVIDENCE_OPTIMIZER[optimizer]
    tables = tables_for(task, ev_opt)
    if not tables:
        return [], ("linear decay to 0 after the warm-up (BERT, RoBERTa; Hugging Face's default 'linear'): lrlab has "
                    "not measured fine-tuning; Bergsma et al. 2025 ('Straight to Zero') also found linear decay to "
                    "zero best")
    cites = []
    for t in tables:
        others = [r.schedule for r in t.rows if r.schedule != schedule][:1]
        cites.append(t.cite(schedule, *others) if schedule != t.winner.schedule else t.cite())
    won = [t for t in tables if t.winner.schedule == schedule]
    n_wins = _wins(ev_opt)[schedule]
    n_all = sum(1 for t in evidence.TABLES if t.optimizer == ev_opt and len(t.rows) > 1)
    name = short(schedule)
    if len(tables) == 1 and len(tables[0].rows) == 1:
        why = f"{name}: the one schedule lrlab measured with {ev_opt}"
    elif len(won) == len(tables):
        why = f"{name}: it won every lrlab comparison of {task} with {ev_opt} ({len(tables)})"
    else:
        lost = [t for t in tables if t.winner.schedule != schedule]
        gaps = ", ".join(f"{t.source}: +{t.row(schedule).final - t.winner.final:.3g} behind {short(t.winner.schedule)}"
                         f", within the noise {t.sigma:g}" for t in lost)
        why = (f"{name}: within the noise of the winner on {task} ({gaps}), and it won {n_wins} of the {n_all} lrlab "
               f"comparisons with {ev_opt}")
    if schedule in LITERATURE:
        why += f"; {LITERATURE[schedule]}"
    if ev_opt != optimizer:
        why += f" (lrlab has no comparison with {optimizer}: the {ev_opt} tables stand in)"
    return cites, why


def _alternatives(task: str, optimizer: str, schedule: str, warm: str) -> tuple[Alternative, ...]:
    """The measured runner-up (when distinct) and, for language models, the classic cosine to 10%."""
    out: list[Alternative] = []
    tables = tables_for(task, EVIDENCE_OPTIMIZER[optimizer])
    if tables and optimizer != "schedulefree":
        t = tables[-1]
        for r in t.rows:
            if r.schedule != schedule and r.schedule in _WARMUP_TEMPLATE:
                why = f"{t.source}: {short(r.schedule)} {r.final:g} at {r.peak:g}"
                if r.schedule in LITERATURE:
                    why += f"; {LITERATURE[r.schedule]}"
                out.append(Alternative(spec=_WARMUP_TEMPLATE[r.schedule].format(w=warm), why=why))
                break
    if task == "lm" and optimizer != "schedulefree":
        cos = next((t.row("warmup(0.05) >> cosine()") for t in tables[-1:]), None) if tables else None
        measured = (f"; lrlab measured warm-up + cosine to 0 at {cos.final:g} ({tables[-1].source})"
                    if cos is not None else "")
        out.append(Alternative(spec=CLASSIC_LM.replace("0.05", warm),
                               why=f"the classic (Chinchilla, GPT-3, nanoGPT): cosine to 10% of the peak{measured}"))
    return tuple(out)


def _warmup(task: str, steps: int, optimizer: str, beta2: float) -> tuple[str, int, str]:
    """(the warm-up length as spec text, in updates, the reason)."""
    frac = 0.06 if task == "finetune" else 0.05
    n_frac = math.ceil(frac * steps)
    if task == "finetune":
        return (f"{frac:g}", n_frac, f"warm-up {n_frac} updates ({frac:.0%} of {steps}): RoBERTa's fine-tuning "
                                     f"recipe (BERT used 10%), not measured by lrlab")
    cap = math.ceil(2 / (1 - beta2)) if optimizer in ADAM_LIKE else None
    if cap is not None and cap < n_frac:
        return (f"{cap}", cap, f"warm-up {cap} updates ({cap / steps:.1%} of {steps}): 2 / (1 - beta2) with beta2 = "
                               f"{beta2:g}, enough for Adam's second-moment estimate (Ma & Yarats 2021; lrlab "
                               f"measured 5% warm-ups only, and 5% would be {n_frac})")
    return (f"{frac:g}", n_frac, f"warm-up {n_frac} updates ({frac:.0%} of {steps}): the warm-up of every measured "
                                 f"schedule")


def _spec(schedule: str, warm: str) -> str:
    template = _WARMUP_TEMPLATE.get(schedule)
    if template is not None:
        return template.format(w=warm)
    if schedule == FINETUNE_SPEC:
        return f"warmup({warm}) >> linear()"
    return schedule  # measured without a warm-up


# ------------------------------------------------------------------------------------------------ peak


def _measured_peak(task: str, preset: str | None, optimizer: str, schedule: str, steps: int) -> tuple[
        float | None, Table | None, str]:
    """(peak, its table, reason) from the evidence table of (`task`, `preset`, `optimizer`), or (None, None, why
    not)."""
    measured = ", ".join(f"{t.task} {t.preset} ({t.optimizer})" for t in evidence.TABLES)
    advice = (f"run `lrlab find` (the LR range test, seconds) or `lrlab tune` (a search) on it; lrlab measured best "
              f"peaks only for its built-in models: {measured} (--preset)")
    if preset is None:
        return None, None, f"no measured peak LR for this setup (your own model): {advice}"
    t = lookup(task, preset, optimizer)
    if t is None:
        return None, None, f"no measured peak LR for {task} {preset} with {optimizer}: {advice}"
    try:
        r = t.row(schedule)
    except LrlabError:
        return None, None, f"{t.source} has no {short(schedule)}: {advice}"
    why = (f"peak LR {r.peak:g}: {short(schedule)}'s best peak on the {task} {preset} model ({t.source}, grid "
           f"{t.grid[0]:g}..{t.grid[1]:g}, {t.steps} updates)")
    if steps != t.steps:
        why += f"; measured at {t.steps} updates, you plan {steps}: check it with `lrlab find` or `lrlab tune`"
    return r.peak, t, why


def suggest(task: str, steps: int, *, optimizer: str = "adamw", preset: str | None = None, find: bool = False,
            beta2: float = 0.999, seed: int = 0, find_iters: int = 300) -> Suggestion:
    """Suggest a schedule for a run.

    Args:
        task: ``"lm"``, ``"vision"`` or ``"finetune"``.
        steps: planned optimizer updates (>= 10).
        optimizer: one of `OPTIMIZERS`.
        preset: the built-in model (``tiny``, ``small``, ``base``) whose measured best peak to use, and the model of
            the range test; None: your own model (no measured peak; the range test uses ``tiny``).
        find: measure the peak LR with the LR range test on the built-in task (``lm`` or ``vision``; trains the
            model for `find_iters` updates on CPU, then restores it).
        beta2: the Adam beta2 the warm-up cap is computed from (in (0, 1)).
        seed, find_iters: the range test's seed and number of updates.
    Returns:
        A `Suggestion`; its `spec` parses with ``lrlab.parse`` and binds to `steps`.
    """
    check.choice("task", task, TASKS)
    steps = check.whole("steps", steps, minimum=10)
    check.choice("optimizer", optimizer, OPTIMIZERS)
    if preset is not None:
        check.choice("preset", preset, PRESETS)
    beta2 = check.range("beta2", beta2, 0.0, 1.0, lo_open=True, hi_open=True)
    schedule = recommended_schedule(task, optimizer)
    warm, warm_n, warm_why = _warmup(task, steps, optimizer, beta2)
    spec = _spec(schedule, warm)
    sched = parse(spec, total=steps)
    bound = str(sched)
    cites, shape_why = _shape_evidence(task, optimizer, schedule)
    reasons = [f"shape: {shape_why}", warm_why]
    range_info: dict[str, Any] | None = None
    peak: float | None
    if find:
        if task == "finetune":
            raise LrlabError("--find runs the range test on a built-in task (lm or vision) and has no pre-trained "
                             "model to fine-tune: call lrlab.find_lr(model, loss_fn, batches, optimizer) on yours")
        # here, not at the top: the range test trains a model (torch), only with find=True
        from lrlab.bench.find import find_on_task
        from lrlab.range_test import peak_lr, suggest_all

        model = preset or "tiny"
        result = find_on_task(task, optimizer=optimizer, preset=model, seed=seed, num_iter=find_iters)
        found = suggest_all(result)
        chosen = peak_lr(result)
        peak, source = chosen.lr, "range test"
        reasons.append(f"peak LR {peak:.3g}: the LR range test on the built-in {task} task ({model}, {optimizer}, "
                       f"{len(result.lrs)} updates, {result.stop_reason}): {chosen.note}")
        range_info = {"suggestions": [s.to_dict() for s in found], "peak": chosen.to_dict(),
                      "stop_reason": result.stop_reason, "n_updates": len(result.lrs), "preset": model}
    else:
        peak, table, why = _measured_peak(task, preset, optimizer, schedule, steps)
        source = "measured" if peak is not None else "none"
        if table is not None and table not in tables_for(task, EVIDENCE_OPTIMIZER[optimizer]):
            cites.append(table.cite(schedule))
        reasons.append(why)
    final = float(sched(steps))
    min_lr = None if peak is None else float(f"{peak * final:.12g}")  # 6e-05, not 5.9999999999999995e-05
    if final > 0:
        reasons.append(f"final LR {final:g} x the peak" + (f" ({min_lr:.3g})" if min_lr is not None else ""))
    else:
        reasons.append("the LR reaches 0 at the end of the run")
    return Suggestion(task=task, steps=steps, optimizer=optimizer, preset=preset, spec=spec, bound=bound,
                      peak_lr=peak, peak_source=source, warmup_steps=warm_n, min_lr=min_lr, evidence=tuple(cites),
                      reasons=tuple(reasons), alternatives=_alternatives(task, optimizer, schedule, warm),
                      range_test=range_info)


def format_suggestion(s: Suggestion, *, width: int | None = 80) -> str:
    """Plain-text rendering: the spec, the peak LR, the evidence, the reasons, the alternatives; each line wrapped
    to ``width`` columns (None: not wrapped), a list item's continuation lines indented under its text. Words are
    never split, so a spec or a path longer than a line stays whole."""
    if s.peak_lr is None:
        peak = "peak LR: not measured for this setup: run `lrlab find` or `lrlab tune` (see why)"
    else:
        peak = f"peak LR: {s.peak_lr:.3g} ({s.peak_source}); final LR: {s.min_lr:.3g}"
    lines = [_fill(f"schedule: {s.spec}", "", "  ", width),
             _fill(f"bound to {s.steps} updates: {s.bound}", "  ", "    ", width), _fill(peak, "", "  ", width)]
    if s.evidence:
        lines += ["evidence:", *(_fill(e, "  - ", "    ", width) for e in s.evidence)]
    lines += ["why:", *(_fill(r, "  - ", "    ", width) for r in s.reasons)]
    if s.alternatives:
        lines += ["alternatives:", *(_fill(f"{a.spec}: {a.why}", "  - ", "    ", width) for a in s.alternatives)]
    return "\n".join(lines)


def _fill(text: str, first: str, rest: str, width: int | None) -> str:
    if width is None:
        return first + text
    return textwrap.fill(text, width=width, initial_indent=first, subsequent_indent=rest, break_long_words=False,
                         break_on_hyphens=False)
