"""`suggest`: a full schedule for a kind of training run, with the reason for each choice.

The rules, by task (``lm``: language-model pre-training from scratch; ``vision``: image classification from
scratch; ``finetune``: fine-tuning a pre-trained Transformer):

* Warm-up. ``lm`` and ``vision``: 5% of training (Goyal et al. 2017 warm up over 5 of 90 epochs), capped for
  Adam-type optimizers at ``2 / (1 - beta2)`` updates (2000 for beta2 = 0.999), the warm-up length Ma & Yarats
  (2021) found sufficient for Adam's second-moment estimate. ``finetune``: 6% (RoBERTa's GLUE recipe; BERT
  used 10%).
* Decay. ``lm``: cosine to 10% of the peak over the rest of the run (Chinchilla, Hoffmann et al. 2022: decay
  ~10x, the cosine cycle matching the run). ``vision``: cosine to 0 (SGDR, Loshchilov & Hutter 2017; timm's
  default). ``finetune``: linear to 0 (BERT; Hugging Face's default ``linear`` schedule). Schedule-free
  optimizers: none, a constant after the warm-up (Defazio et al. 2024: they need no decay schedule).
* Peak LR. Measured by the LR range test on the built-in task when ``find=True`` (the geometric median of the
  steepest, valley and minimum/10 suggestions); otherwise a common default for the task and optimizer (for
  ~100M-parameter models; smaller models tolerate larger LRs: measure it).

`suggest(...)` returns a `Suggestion` (data); the CLI prints it or its JSON.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from lrlab.checks import check
from lrlab.errors import LrlabError
from lrlab.spec import parse

TASKS = ("lm", "vision", "finetune")
OPTIMIZERS = ("adamw", "adam", "sgd", "schedulefree", "adagrad", "rmsprop")
ADAM_LIKE = ("adamw", "adam", "schedulefree")

#: default peak LR by (task, optimizer), with where it comes from
DEFAULT_PEAK: dict[tuple[str, str], tuple[float, str]] = {
    ("lm", "adamw"): (6e-4, "GPT-2 small (124M) in nanoGPT / GPT-3 small: 6e-4"),
    ("lm", "adam"): (6e-4, "GPT-2 small (124M) in nanoGPT / GPT-3 small: 6e-4"),
    ("lm", "schedulefree"): (2e-3, "schedule-free AdamW usually takes 1-10x the AdamW LR (Defazio et al. 2024)"),
    ("lm", "sgd"): (0.1, "SGD with momentum 0.9, a common starting point; Transformers train poorly with SGD"),
    ("lm", "adagrad"): (1e-2, "Adagrad's usual default 1e-2"),
    ("lm", "rmsprop"): (3e-4, "RMSprop, like Adam without momentum: 3e-4"),
    ("vision", "adamw"): (1e-3, "ViT/DeiT: 5e-4 x batch/512 (1e-3 for batch 1024)"),
    ("vision", "adam"): (1e-3, "ViT/DeiT: 5e-4 x batch/512 (1e-3 for batch 1024)"),
    ("vision", "schedulefree"): (3e-3, "schedule-free AdamW usually takes 1-10x the AdamW LR (Defazio et al. 2024)"),
    ("vision", "sgd"): (0.1, "ResNet recipe: 0.1 x batch/256 (Goyal et al. 2017)"),
    ("vision", "adagrad"): (1e-2, "Adagrad's usual default 1e-2"),
    ("vision", "rmsprop"): (1e-3, "RMSprop (e.g. EfficientNet used 0.016 at batch 2048): 1e-3"),
    ("finetune", "adamw"): (2e-5, "BERT/RoBERTa fine-tuning: 1e-5 .. 5e-5"),
    ("finetune", "adam"): (2e-5, "BERT/RoBERTa fine-tuning: 1e-5 .. 5e-5"),
    ("finetune", "schedulefree"): (5e-5, "schedule-free AdamW usually takes 1-10x the AdamW LR (Defazio et al. 2024)"),
    ("finetune", "sgd"): (1e-3, "SGD with momentum 0.9 for fine-tuning: 1e-3"),
    ("finetune", "adagrad"): (1e-3, "Adagrad for fine-tuning: 1e-3"),
    ("finetune", "rmsprop"): (2e-5, "as for Adam: 2e-5"),
}


@dataclass(frozen=True, kw_only=True)
class Suggestion:
    """A suggested schedule.

    Args:
        task, steps, optimizer: what it is for.
        spec: the schedule as lrlab spec text; its values are factors of `peak_lr` (parse with ``lrlab.parse``).
        bound: `spec` bound to `steps` (every length in updates).
        peak_lr: the suggested peak (base) LR.
        peak_source: ``"range test"`` or ``"default"``.
        warmup_steps: updates of warm-up.
        min_lr: the LR at the end of the run (``peak_lr`` x the final factor).
        reasons: one sentence per choice, with its source.
        range_test: when the range test ran: its suggestions (``rule``, ``lr``) and stop reason; else None.
    """

    task: str
    steps: int
    optimizer: str
    spec: str
    bound: str
    peak_lr: float
    peak_source: str
    warmup_steps: int
    min_lr: float
    reasons: tuple[str, ...]
    range_test: dict[str, Any] | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "steps": self.steps, "optimizer": self.optimizer, "spec": self.spec,
                "bound": self.bound, "peak_lr": self.peak_lr, "peak_source": self.peak_source,
                "warmup_steps": self.warmup_steps, "min_lr": self.min_lr, "reasons": list(self.reasons),
                "range_test": self.range_test}


def _warmup(task: str, steps: int, optimizer: str, beta2: float) -> tuple[str, int, str]:
    """(spec text of the warm-up, its length in updates, the reason)."""
    frac = 0.06 if task == "finetune" else 0.05
    n_frac = math.ceil(frac * steps)
    if task == "finetune":
        return (f"warmup({frac:g})", n_frac,
                f"warm-up {n_frac} updates ({frac:.0%} of {steps}): RoBERTa's fine-tuning recipe (BERT used 10%); "
                f"it keeps the first updates from wrecking the pre-trained weights")
    cap = math.ceil(2 / (1 - beta2)) if optimizer in ADAM_LIKE else None
    if cap is not None and cap < n_frac:
        return (f"warmup({cap})", cap,
                f"warm-up {cap} updates ({cap / steps:.1%} of {steps}): 2 / (1 - beta2) with beta2 = {beta2:g}, "
                f"enough for Adam's second-moment estimate to settle (Ma & Yarats 2021); 5% would be {n_frac}")
    why = ("Goyal et al. 2017 warm up over 5 of 90 epochs" if task == "vision"
           else "a short linear ramp avoids the early loss spikes of a large LR on random weights")
    if cap is not None:
        why += f"; shorter than 2 / (1 - beta2) = {cap} updates because the run is short"
    return f"warmup({frac:g})", n_frac, f"warm-up {n_frac} updates ({frac:.0%} of {steps}): {why}"


def _decay(task: str, optimizer: str, steps: int) -> tuple[str, float, str]:
    """(spec text of the decay, the final factor, the reason)."""
    if optimizer == "schedulefree":
        return ("constant()", 1.0,
                "no decay: schedule-free optimizers average their iterates instead and need only a warm-up "
                "(Defazio et al. 2024); evaluate with optimizer.eval()")
    if task == "lm":
        why = ("cosine decay to 10% of the peak over the rest of the run, the cycle matching the run length "
               "(Chinchilla, Hoffmann et al. 2022)")
        if steps >= 20_000:
            why += ("; for a run you may extend, warmup-stable-decay ('>> constant() >> cooldown(0.2, shape=sqrt)') "
                    "matches it and lets you branch a cooldown from any checkpoint (Hägele et al. 2024)")
        return "cosine(floor=0.1)", 0.1, why
    if task == "vision":
        return ("cosine()", 0.0, "cosine decay to 0 over the rest of the run (SGDR, Loshchilov & Hutter 2017; the "
                                 "default of timm's training scripts)")
    return ("linear(end=0)", 0.0, "linear decay to 0 over the rest of the run (BERT; Hugging Face's default "
                                  "'linear' schedule)")


def suggest(task: str, steps: int, *, optimizer: str = "adamw", find: bool = False, beta2: float = 0.999,
            preset: str = "tiny", seed: int = 0, find_iters: int = 100) -> Suggestion:
    """Suggest a schedule for a run.

    Args:
        task: ``"lm"``, ``"vision"`` or ``"finetune"``.
        steps: planned optimizer updates (>= 10).
        optimizer: one of `OPTIMIZERS`.
        find: measure the peak LR with the LR range test on the built-in task (``lm`` or ``vision``; trains the
            ``preset`` model for `find_iters` updates on CPU, then restores it).
        beta2: the Adam beta2 the warm-up cap is computed from (in (0, 1)).
        preset, seed, find_iters: the range test's built-in model size, seed and number of updates.
    Returns:
        A `Suggestion`; its `spec` parses with ``lrlab.parse`` and binds to `steps`.
    """
    check.choice("task", task, TASKS)
    steps = check.whole("steps", steps, minimum=10)
    check.choice("optimizer", optimizer, OPTIMIZERS)
    beta2 = check.range("beta2", beta2, 0.0, 1.0, lo_open=True, hi_open=True)
    warm_spec, warm_n, warm_why = _warmup(task, steps, optimizer, beta2)
    decay_spec, final, decay_why = _decay(task, optimizer, steps)
    spec = f"{warm_spec} >> {decay_spec}"
    bound = str(parse(spec, total=steps))
    reasons = [warm_why, decay_why]
    range_info: dict[str, Any] | None = None
    if find:
        if task == "finetune":
            raise LrlabError("--find runs the range test on a built-in task (lm or vision) and has no pre-trained "
                             "model to fine-tune: call lrlab.find_lr(model, loss_fn, batches, optimizer) on yours")
        # here, not at the top: the range test trains a model (torch), only with find=True
        from lrlab.bench.find import find_on_task
        from lrlab.range_test import median_suggestion, suggest_all

        result = find_on_task(task, optimizer=optimizer, preset=preset, seed=seed, num_iter=find_iters)
        found = suggest_all(result)
        peak = median_suggestion(found)
        source = "range test"
        listed = ", ".join(f"{s.rule} {s.lr:.3g}" for s in found)
        reasons.append(f"peak LR {peak:.3g}: the median of the range-test suggestions on the built-in {task} task "
                       f"({preset}, {optimizer}, {len(result.lrs)} updates, {result.stop_reason}): {listed}")
        range_info = {"suggestions": [s.to_dict() for s in found], "stop_reason": result.stop_reason,
                      "n_updates": len(result.lrs), "preset": preset}
    else:
        peak, where = DEFAULT_PEAK[(task, optimizer)]
        source = "default"
        reasons.append(f"peak LR {peak:g}: a common default ({where}); models much smaller than ~100M parameters "
                       f"usually take more: measure it with --find or `lrlab find`")
    min_lr = float(f"{peak * final:.12g}")  # 6e-05, not 5.9999999999999995e-05
    if final > 0:
        reasons.append(f"minimum LR {min_lr:.3g} ({final:g} x the peak) at the end of the run")
    else:
        reasons.append("minimum LR 0 at the last update")
    return Suggestion(task=task, steps=steps, optimizer=optimizer, spec=spec, bound=bound, peak_lr=peak,
                      peak_source=source, warmup_steps=warm_n, min_lr=min_lr, reasons=tuple(reasons),
                      range_test=range_info)


def format_suggestion(s: Suggestion) -> str:
    """Plain-text rendering: the spec, the peak LR, then one line per reason."""
    lines = [f"schedule: {s.spec}", f"  bound to {s.steps} updates: {s.bound}",
             f"peak LR: {s.peak_lr:.3g} ({s.peak_source}); minimum LR: {s.min_lr:.3g}", "why:"]
    lines += [f"  - {r}" for r in s.reasons]
    return "\n".join(lines)
