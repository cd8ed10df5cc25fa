"""The LR range test on a built-in task: `lrlab.range_test.find_lr` driven by the harness's own model, batches
and optimizer, so the LR it suggests is for the run that ``lrlab train`` / ``lrlab compare --lr find`` then
trains. `peak_on_task` is the peak LR ``lrlab find`` suggests and ``lrlab compare --lr find`` centres its grid on.
The library's `lrlab.range_test` knows nothing of the harness; this module joins the two.
"""

from __future__ import annotations

from typing import Any

from lrlab.bench import train as harness
from lrlab.bench.tasks import get_task
from lrlab.checks import check
from lrlab.range_test import (
    CALIBRATED_SWEEP,
    PEAK_FACTOR,
    LrSuggestion,
    RangeTestResult,
    find_lr,
    peak_lr,
    suggest_all,
)

#: how `peak_on_task` turns its range test into a peak LR (`lrlab.range_test.peak_lr`), in the words
#: ``compare.json`` records it with (``lr_find.<optimizer>.rule``)
PEAK_RULE = f"peak_lr: {PEAK_FACTOR:g} x the divergence boundary"


def cross_entropy_flat(logits: Any, targets: Any) -> Any:
    """Cross-entropy of ``(..., classes)`` logits against ``(...)`` class ids (LM and classifier alike)."""
    import torch.nn.functional as F  # optional dependency, imported on use

    return F.cross_entropy(logits.flatten(0, -2), targets.flatten())


def find_on_task(task: str = "lm", *, preset: str = "tiny", optimizer: str = "adamw", seed: int = 0,
                 start_lr: float = CALIBRATED_SWEEP[0], end_lr: float = CALIBRATED_SWEEP[1],
                 num_iter: int = CALIBRATED_SWEEP[2], mode: str = "exp",
                 accumulation_steps: int = 1, batch_size: int | None = None, weight_decay: float | None = None,
                 smooth: float = 0.98, diverge_threshold: float = 5.0, threads: int | None = None,
                 device: str = "cpu") -> RangeTestResult:
    """`find_lr` on a built-in task (`lrlab.bench.tasks.get_task`): its model freshly initialised with `seed`,
    its training batches ``0 .. num_iter * accumulation_steps - 1``, cross-entropy, and the named optimizer built
    by the harness's own `lrlab.bench.train.build_optimizer` with its decay / no-decay parameter groups (so the
    test measures the optimizer that ``lrlab train`` / ``--lr find`` then trains; schedule-free in train mode).
    `threads`: torch CPU threads during the test (None: 1 for the ``tiny`` preset, whose kernels are too small to
    share, else torch's current setting; restored after).
    `device`: ``cpu``, ``cuda:N`` or ``mps`` (`lrlab.bench.device.resolve_device`): the model, initialised on the CPU
    (the same weights everywhere), trains there in float32.
    The sweep's defaults are `lrlab.range_test.CALIBRATED_SWEEP`, the one `peak_lr` is calibrated on.
    Returns the `RangeTestResult`."""
    import torch  # optional dependency, imported on use

    from lrlab.bench.model import param_groups  # imports torch: keeps `import lrlab.bench.find` light

    t = get_task(task, preset, seed, batch_size=batch_size)
    k = check.whole("accumulation_steps", accumulation_steps, minimum=1)
    n = check.whole("num_iter", num_iter, minimum=10)
    torch.manual_seed(seed)
    model = t.build_model().to(device)  # find_lr moves each batch to it
    if weight_decay is None:  # the optimizer's usual value, as `lrlab.bench.train.train` uses
        weight_decay = harness.DEFAULT_WEIGHT_DECAY.get(optimizer, 0.0)  # an unknown name fails in build_optimizer
    opt = harness.build_optimizer(optimizer, param_groups(model, weight_decay), start_lr)
    if hasattr(opt, "train"):  # schedule-free: its steps need train mode (the harness sets it in its loop)
        opt.train()
    batches = [t.get_batch(i) for i in range(n * k)]
    before = torch.get_num_threads()
    want = check.whole("threads", threads if threads is not None else (1 if preset == "tiny" else before),
                       minimum=1)
    torch.set_num_threads(want)
    try:
        return find_lr(model, cross_entropy_flat, batches, opt, start_lr=start_lr, end_lr=end_lr, num_iter=n,
                       mode=mode, smooth=smooth, diverge_threshold=diverge_threshold, accumulation_steps=k)
    finally:
        torch.set_num_threads(before)


def peak_on_task(task: str = "lm", *, preset: str = "tiny", optimizer: str = "adamw", seed: int = 0,
                 batch_size: int | None = None, threads: int | None = None,
                 device: str = "cpu") -> tuple[RangeTestResult, LrSuggestion]:
    """The peak LR ``lrlab find`` suggests for a full run with warm-up on a built-in task: `PEAK_RULE`
    (`lrlab.range_test.peak_lr`) applied to the sweep its factor was calibrated on
    (`lrlab.range_test.CALIBRATED_SWEEP`: 300 updates, LR 1e-6 -> 10, exponential), run by `find_on_task` with
    the other arguments. Returns (the range test, its ``peak`` suggestion); raises `LrlabError` when no LR of the
    sweep trained the model."""
    start, end, n = CALIBRATED_SWEEP
    result = find_on_task(task, preset=preset, optimizer=optimizer, seed=seed, start_lr=start, end_lr=end,
                          num_iter=n, mode="exp", batch_size=batch_size, threads=threads, device=device)
    return result, peak_lr(result)


def peak_record(result: RangeTestResult, peak: LrSuggestion) -> dict[str, Any]:
    """The ``lr_find.<optimizer>`` record that ``compare.json`` and ``tune.json`` keep of a `peak_on_task`:
    ``suggestion`` (the grid centre), ``rule`` and ``num_iter`` (what produced it), ``peak`` (its `LrSuggestion`),
    the classic ``suggestions`` (steepest, valley, minimum/10: shown, not used) and the curve (``result``)."""
    return {"suggestion": peak.lr, "rule": PEAK_RULE, "num_iter": result.num_iter, "peak": peak.to_dict(),
            "suggestions": [s.to_dict() for s in suggest_all(result)], "result": result.to_dict()}
