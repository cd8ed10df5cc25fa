"""The LR range test: train briefly while the LR grows from tiny to huge, and read a good LR off the loss curve.

`find_lr(model, loss_fn, batches, optimizer)` sweeps the LR exponentially (or linearly) between two bounds, one
optimizer update per LR, smooths the loss with a bias-corrected exponential moving average, and stops early when
the smoothed loss exceeds ``diverge_threshold`` x its best. The model and the optimizer are restored exactly
afterwards (weights, buffers, gradients, optimizer state and param groups, train/eval modes, torch's RNG
state), also when the sweep raises or is interrupted with Ctrl-C.

The suggestions are plain functions of the result, each returning an `LrSuggestion`:

* `steepest`: the LR where the smoothed loss falls fastest per unit of **log** LR. Lightning's
  ``suggestion()`` differentiates against the linear LR, which on an exponential sweep weights each point by
  ``1 / lr`` and picks LRs several times too low (Lightning issue #21141); torch-lr-finder differentiates
  against the iteration index, which is the log LR for its exponential sweep, and so agrees with this one.
* `valley`: fastai's rule: the longest stretch over which the loss keeps falling; the LR two thirds of the way
  down it (slightly before its bottom, like fastai: the index ``start + int(len/3) + int(len/6)``).
* `minimum_over_10`: the LR of the smoothed loss's minimum, divided by 10 (fastai / Lightning ``min/10``).

All three read the smoothed loss with the first ``num_iter // 10`` points (at least one) and the last 5 left out
(the start is dominated by the EMA's warm-up, the end by divergence), like fastai, and raise `LrlabError` when
it never falls by ``MIN_DESCENT`` (0.5%): then no LR of the sweep trained the model.
`plot_range_test(result, path)` draws the curve with the three suggestions marked (matplotlib, imported there).

Gradient accumulation: ``accumulation_steps=k`` runs k micro-batches per update, each loss divided by k (so the
update equals one on the k batches at once for a mean-reduced loss). Under ``torch.distributed`` (DDP), the loss
of every update is averaged over the ranks before it is recorded, so every rank sees the same curve, stops at
the same update, and gets the same suggestions.
"""

from __future__ import annotations

import copy
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lrlab.checks import check
from lrlab.errors import LrlabError

MODES = ("exp", "linear")
#: the suggestions need the smoothed loss to fall by at least this fraction somewhere in the sweep
MIN_DESCENT = 0.005
#: `peak_lr`: the peak of a full run with warm-up is this fraction of the sweep's divergence boundary; one factor
#: fitted across lrlab's tasks (benchmarks/advice_calibration.py, BENCHMARKS.md)
PEAK_FACTOR = 0.27
#: `peak_lr`: standard deviation, in decades of LR, of the centred Gaussian that smooths the raw losses
CENTRED_WIDTH = 0.2
#: `peak_lr`: the sweep `PEAK_FACTOR` was measured on (start_lr, end_lr, num_iter), exponential
CALIBRATED_SWEEP = (1e-6, 10.0, 300)


@dataclass(frozen=True, kw_only=True)
class RangeTestResult:
    """What a range test measured.

    Args:
        lrs: the LR of parameter group 0 at each update done.
        losses: the raw loss of each update (mean over its micro-batches; mean over ranks under DDP).
        smoothed: the bias-corrected EMA of `losses` (``smooth`` is the weight of the past).
        start_lr, end_lr, num_iter, mode, smooth, diverge_threshold: the sweep's settings.
        stop_reason: ``"completed"``, ``"diverged"`` (smoothed loss > threshold x best) or ``"nonfinite"``
            (a NaN/inf loss; its point is kept in `losses`/`smoothed` as NaN/inf).
        val_every: 0 for a curve of training losses (one point per update); else the curve holds the validation
            loss measured after every `val_every`-th update (`lrs` the LR of each measured update).
    """

    lrs: tuple[float, ...]
    losses: tuple[float, ...]
    smoothed: tuple[float, ...]
    start_lr: float
    end_lr: float
    num_iter: int
    mode: str
    smooth: float
    diverge_threshold: float
    stop_reason: str
    val_every: int = 0

    @property
    def skip_start(self) -> int:
        """Points the suggestions leave out at the start: a tenth of the sweep's points (>= 1), the EMA's
        warm-up (one point per update; per `val_every` updates for a validation curve)."""
        return max(1, (self.num_iter // self.val_every if self.val_every else self.num_iter) // 10)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("lrs", "losses", "smoothed"):
            d[k] = [x if math.isfinite(x) else str(x) for x in d[k]]
        return d


@dataclass(frozen=True, kw_only=True)
class LrSuggestion:
    """One suggested LR.

    Args:
        rule: ``"steepest"``, ``"valley"`` or ``"minimum/10"``.
        lr: the suggested LR.
        index: the point of the curve the rule picked (for ``minimum/10``: the minimum; the LR is its tenth).
        loss: the smoothed loss at `index`.
        note: how it was chosen, in words with numbers.
    """

    rule: str
    lr: float
    index: int
    loss: float
    note: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sweep_lrs(start_lr: float, end_lr: float, num_iter: int, mode: str = "exp") -> np.ndarray:
    """The LR of each update: ``start * (end / start) ** (i / (n - 1))`` (exp) or ``start + (end - start) * i /
    (n - 1)`` (linear), for ``i = 0 .. n - 1``: the first update uses `start_lr`, the last `end_lr`."""
    i = np.arange(num_iter, dtype=np.float64) / (num_iter - 1)
    if mode == "exp":
        return np.asarray(start_lr * (end_lr / start_lr) ** i, dtype=np.float64)
    return np.asarray(start_lr + (end_lr - start_lr) * i, dtype=np.float64)


# ------------------------------------------------------------------------------------------------ the sweep


def _batches_forever(batches: Iterable[Any]) -> Iterator[Any]:
    """Yield from `batches`, starting over when it is exhausted (a list, a DataLoader); a one-shot iterator
    that runs out raises."""
    n = 0
    while True:
        it = iter(batches)
        one_shot = it is batches
        got = False
        for b in it:
            got = True
            n += 1
            yield b
        if one_shot or not got:
            raise LrlabError(f"batches ran out after {n} batch(es): give a re-iterable (a list, a DataLoader) or "
                             f"at least num_iter x accumulation_steps batches")


def _to_device(obj: Any, device: Any) -> Any:
    if hasattr(obj, "to") and hasattr(obj, "device"):
        return obj.to(device) if obj.device != device else obj
    if isinstance(obj, tuple):
        return tuple(_to_device(o, device) for o in obj)
    if isinstance(obj, list):
        return [_to_device(o, device) for o in obj]
    if isinstance(obj, dict):
        return {k: _to_device(v, device) for k, v in obj.items()}
    return obj


@dataclass(kw_only=True)
class _Saved:
    """Everything of the user's that the sweep changes, deep-copied in memory."""

    model: dict[str, Any]
    optimizer: dict[str, Any]
    grads: list[Any]
    modes: list[bool]
    rng: Any
    cuda_rng: list[Any] | None


def _save(model: Any, optimizer: Any) -> _Saved:
    import torch

    return _Saved(model=copy.deepcopy(model.state_dict()), optimizer=copy.deepcopy(optimizer.state_dict()),
                  grads=[None if p.grad is None else p.grad.detach().clone() for p in model.parameters()],
                  modes=[m.training for m in model.modules()], rng=torch.get_rng_state(),
                  cuda_rng=torch.cuda.get_rng_state_all() if torch.cuda.is_available() and
                  torch.cuda.is_initialized() else None)


def _restore(model: Any, optimizer: Any, saved: _Saved) -> None:
    import torch

    model.load_state_dict(saved.model)
    optimizer.load_state_dict(saved.optimizer)
    with torch.no_grad():
        for p, g in zip(model.parameters(), saved.grads):
            p.grad = None if g is None else g.clone()
    for m, mode in zip(model.modules(), saved.modes):
        m.training = mode
    torch.set_rng_state(saved.rng)
    if saved.cuda_rng is not None:
        torch.cuda.set_rng_state_all(saved.cuda_rng)


#: the autocast dtypes `find_lr` takes as ``amp``
AMP_DTYPES = ("bfloat16", "float16")


def _batch_loss(model: Any, loss_fn: Callable[[Any, Any], Any] | None, batch: Any, device: Any,
                batch_loss: Callable[[Any], Any] | None = None) -> Any:
    """The loss of one batch: ``batch_loss(batch)`` when given; ``loss_fn(model(inputs), targets)`` for a pair;
    ``model(**batch).loss`` for a mapping when ``loss_fn`` is None (Hugging Face models compute their loss from
    ``labels``)."""
    import torch

    if batch_loss is not None:
        loss = batch_loss(_to_device(batch, device))
    elif loss_fn is None:
        if not isinstance(batch, Mapping):
            raise LrlabError(f"loss_fn=None needs mapping batches (Hugging Face style: model(**batch).loss), got "
                             f"{type(batch).__name__}; pass loss_fn for (inputs, targets) batches")
        out = model(**_to_device(dict(batch), device))
        loss = out.get("loss") if isinstance(out, Mapping) else getattr(out, "loss", None)
        if loss is None:
            raise LrlabError("model(**batch) returned no loss: put the labels in the batch (a Hugging Face model "
                             "computes its loss only when given labels), or pass loss_fn")
    else:
        if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
            raise LrlabError(f"each batch must be an (inputs, targets) pair, got {type(batch).__name__} (a mapping "
                             "batch goes with loss_fn=None: model(**batch).loss)")
        loss = loss_fn(model(_to_device(batch[0], device)), _to_device(batch[1], device))
    if not (isinstance(loss, torch.Tensor) and loss.numel() == 1):
        raise LrlabError(f"the loss must be a scalar tensor, got {type(loss).__name__}")
    return loss


def find_lr(model: Any, loss_fn: Callable[[Any, Any], Any] | None, batches: Iterable[Any], optimizer: Any, *,
            start_lr: float = 1e-7, end_lr: float = 10.0, num_iter: int = 100, mode: str = "exp",
            smooth: float = 0.98, diverge_threshold: float = 5.0, accumulation_steps: int = 1,
            val_batches: Iterable[Any] | None = None, val_every: int = 1, amp: str | None = None,
            batch_loss: Callable[[Any], Any] | None = None) -> RangeTestResult:
    """Run an LR range test and restore `model` and `optimizer` exactly afterwards.

    Args:
        model: a ``torch.nn.Module`` (a ``DistributedDataParallel`` one under DDP).
        loss_fn: ``loss_fn(model(inputs), targets)`` -> a scalar loss tensor (mean-reduced); None for mapping
            batches: ``model(**batch).loss`` (a Hugging Face model with ``labels`` in the batch).
        batches: ``(inputs, targets)`` pairs (tensors, or tuples/lists/dicts of tensors), or mappings with
            ``loss_fn=None``; moved to the device of the model's first parameter; started over when exhausted, so a
            list or a DataLoader works.
        optimizer: a torch optimizer over the model's parameters. Each group's LR is set to the swept LR times
            the group's ratio to group 0 at the start (groups keep their relative LRs).
        start_lr, end_lr: LR bounds of the sweep (0 < start_lr < end_lr).
        num_iter: number of updates (>= 10).
        mode: ``"exp"`` (LRs evenly spaced in log) or ``"linear"``.
        smooth: EMA weight of the past in [0, 1): ``avg = smooth * avg + (1 - smooth) * loss``, reported as
            ``avg / (1 - smooth ** (i + 1))`` (bias-corrected).
        diverge_threshold: stop once the smoothed loss exceeds this x its best so far (> 1).
        accumulation_steps: micro-batches per update (>= 1), each loss divided by it.
        val_batches: validation batches (re-iterable: a list, a DataLoader): the curve is then the mean
            validation loss over all of them (``model.eval()``, no gradients), measured after every `val_every`-th
            update, one point per measurement: slower, but free of the training loss's batch noise (and of what a
            single batch rewards). None: the training loss of every update.
        val_every: updates between validation measurements (>= 1).
        amp: mixed precision for the forward passes: ``"bfloat16"`` or ``"float16"`` (``torch.autocast`` on the
            model's device; float16 adds a ``GradScaler``, whose skipped updates still move the sweep on); None:
            full precision.
        batch_loss: instead of ``loss_fn``, a function of the whole batch (on the model's device) returning its
            loss (a LightningModule's ``training_step``: `lrlab.integrations.lightning_find_lr`); ``loss_fn`` is
            then ignored.
    Returns:
        A `RangeTestResult`; feed it to `steepest`, `valley`, `minimum_over_10` or `suggest_all`.
    """
    import torch

    start = check.positive("start_lr", start_lr)
    end = check.number("end_lr", end_lr)
    if end <= start:
        raise LrlabError(f"end_lr must be > start_lr ({start:g}), got {end_lr!r}")
    n = check.whole("num_iter", num_iter, minimum=10)
    if mode not in MODES:
        raise LrlabError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    beta = check.range("smooth", smooth, 0.0, 1.0, hi_open=True)
    threshold = check.number("diverge_threshold", diverge_threshold)
    if threshold <= 1:
        raise LrlabError(f"diverge_threshold must be > 1, got {diverge_threshold!r}")
    k = check.whole("accumulation_steps", accumulation_steps, minimum=1)
    every = check.whole("val_every", val_every, minimum=1)
    if amp is not None:
        check.choice("amp", amp, AMP_DTYPES)
    if val_batches is not None and iter(val_batches) is val_batches:
        raise LrlabError("val_batches must be re-iterable (a list, a DataLoader): it is read at every measurement")
    if not isinstance(model, torch.nn.Module):
        raise LrlabError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    groups = getattr(optimizer, "param_groups", None)
    if not groups:
        raise LrlabError(f"optimizer must be a torch optimizer with param_groups, got {type(optimizer).__name__}")
    params = list(model.parameters())
    if not params:
        raise LrlabError("model has no parameters")
    device = params[0].device
    base0 = float(groups[0]["lr"])
    ratios = [float(g["lr"]) / base0 if base0 > 0 else 1.0 for g in groups]
    dist = torch.distributed if torch.distributed.is_available() and torch.distributed.is_initialized() else None
    world = dist.get_world_size() if dist is not None else 1
    dtype = getattr(torch, amp) if amp is not None else None
    scaler = torch.amp.GradScaler(device.type) if amp == "float16" else None

    def autocast() -> Any:
        return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)

    def mean_over_ranks(total: Any) -> float:
        if dist is not None:
            dist.all_reduce(total, op=dist.ReduceOp.SUM)
            total /= world
        return float(total)

    def validation_loss() -> float:
        model.eval()
        total = torch.zeros((), dtype=torch.float64, device=device)
        count = 0
        with torch.no_grad(), autocast():
            for batch in val_batches:  # type: ignore[union-attr]
                total += _batch_loss(model, loss_fn, batch, device, batch_loss).detach().to(torch.float64)
                count += 1
        model.train()
        if count == 0:
            raise LrlabError("val_batches is empty")
        return mean_over_ranks(total / count)

    lrs = sweep_lrs(start, end, n, mode)
    out_lr: list[float] = []
    raw: list[float] = []
    smoothed: list[float] = []
    stop = "completed"
    saved = _save(model, optimizer)
    try:
        model.train()
        feed = _batches_forever(batches)
        avg, best = 0.0, math.inf
        for i, lr in enumerate(lrs):
            for g, r in zip(optimizer.param_groups, ratios):
                g["lr"] = float(lr) * r
            optimizer.zero_grad(set_to_none=True)
            total = torch.zeros((), dtype=torch.float64, device=device)
            for _ in range(k):
                with autocast():
                    loss = _batch_loss(model, loss_fn, next(feed), device, batch_loss)
                (scaler.scale(loss / k) if scaler is not None else loss / k).backward()
                total += loss.detach().to(torch.float64) / k
            value = mean_over_ranks(total)
            measured = val_batches is None or (i + 1) % every == 0
            if measured:
                out_lr.append(float(lr))
                raw.append(value)
            if not math.isfinite(value):
                if not measured:
                    out_lr.append(float(lr))
                    raw.append(value)
                smoothed.append(value)
                stop = "nonfinite"
                break
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            if not measured:
                continue
            if val_batches is not None:
                value = raw[-1] = validation_loss()
                if not math.isfinite(value):
                    smoothed.append(value)
                    stop = "nonfinite"
                    break
            j = len(raw) - 1
            avg = beta * avg + (1 - beta) * value
            s = avg / (1 - beta ** (j + 1))
            smoothed.append(s)
            best = min(best, s)
            if j > 0 and s > threshold * best:
                stop = "diverged"
                break
    finally:
        _restore(model, optimizer, saved)
    return RangeTestResult(lrs=tuple(out_lr), losses=tuple(raw), smoothed=tuple(smoothed), start_lr=start,
                           end_lr=end, num_iter=n, mode=mode, smooth=beta, diverge_threshold=threshold,
                           stop_reason=stop, val_every=every if val_batches is not None else 0)


# ------------------------------------------------------------------------------------------------ suggestions


def _trimmed(result: RangeTestResult, skip_end: int = 5) -> tuple[int, np.ndarray, np.ndarray]:
    """(offset, lrs, smoothed losses) with the first num_iter // 10 (>= 1) and the last `skip_end` points left out,
    and any non-finite tail removed."""
    lrs = np.asarray(result.lrs, dtype=np.float64)
    loss = np.asarray(result.smoothed, dtype=np.float64)
    finite = np.isfinite(loss)
    n = int(np.argmin(finite)) if not finite.all() else len(loss)
    lo = result.skip_start
    hi = n - skip_end
    if hi - lo < 5:
        raise LrlabError(f"the range test has {n} usable points; the suggestions need at least {lo + skip_end + 5} "
                         f"(num_iter={result.num_iter}, stop: {result.stop_reason}): lower start_lr or raise num_iter")
    first, best = float(loss[lo]), float(np.min(loss[lo:hi]))
    if not first - best > MIN_DESCENT * abs(first):
        raise LrlabError(f"the smoothed loss fell only {(first - best) / abs(first):.2%} during the range test "
                         f"({first:.4g} -> {best:.4g}; at least {MIN_DESCENT:.1%} needed): no LR in "
                         f"[{result.start_lr:g}, {result.end_lr:g}] trained the model within {n} updates; raise "
                         f"num_iter or move the range")
    return lo, lrs[lo:hi], loss[lo:hi]


def steepest(result: RangeTestResult) -> LrSuggestion:
    """The LR where the smoothed loss falls fastest against log(LR), before the loss's minimum."""
    lo, lrs, loss = _trimmed(result)
    stop = int(np.argmin(loss)) + 1
    if stop < 3:
        raise LrlabError(f"the smoothed loss does not fall after the first {lo} updates of the range test (its "
                         f"minimum is at LR {lrs[0]:.3g}): lower start_lr")
    slope = np.gradient(loss[:stop], np.log(lrs[:stop]))
    j = int(np.argmin(slope))
    return LrSuggestion(rule="steepest", lr=float(lrs[j]), index=lo + j, loss=float(loss[j]),
                        note=f"steepest descent of the smoothed loss against log(LR): {slope[j]:.3g} per e-fold")


def valley(result: RangeTestResult) -> LrSuggestion:
    """fastai's valley rule: the longest falling stretch of the smoothed loss; the LR 2/3 of the way down it."""
    lo, lrs, loss = _trimmed(result)
    m = len(loss)
    lds = np.ones(m, dtype=np.int64)  # length of the longest falling sequence ending at each point
    for i in range(1, m):
        earlier = lds[:i][loss[:i] > loss[i]]
        if len(earlier):
            lds[i] = int(earlier.max()) + 1
    end = int(np.argmax(lds))
    begin = end - int(lds[end])
    sections = (end - begin) / 3
    j = begin + int(sections) + int(sections / 2)
    j = min(max(j, 0), m - 1)
    return LrSuggestion(rule="valley", lr=float(lrs[j]), index=lo + j, loss=float(loss[j]),
                        note=f"2/3 down the longest falling stretch (LR {lrs[max(begin, 0)]:.3g} to {lrs[end]:.3g})")


def minimum_over_10(result: RangeTestResult) -> LrSuggestion:
    """The LR at the smoothed loss's minimum, divided by 10."""
    lo, lrs, loss = _trimmed(result)
    j = int(np.argmin(loss))
    return LrSuggestion(rule="minimum/10", lr=float(lrs[j] / 10), index=lo + j, loss=float(loss[j]),
                        note=f"the smoothed loss is lowest ({loss[j]:.4g}) at LR {lrs[j]:.3g}; a tenth of it")


def suggest_all(result: RangeTestResult) -> tuple[LrSuggestion, ...]:
    """`steepest`, `valley` and `minimum_over_10`, in that order."""
    return steepest(result), valley(result), minimum_over_10(result)


def median_suggestion(suggestions: Sequence[LrSuggestion]) -> float:
    """The median of the suggested LRs (geometric middle of three): one robust number for a peak LR."""
    if not suggestions:
        raise LrlabError("no suggestions to take the median of")
    return float(np.exp(np.median(np.log([s.lr for s in suggestions]))))


def centred_loss(result: RangeTestResult, width: float = CENTRED_WIDTH) -> tuple[np.ndarray, np.ndarray]:
    """(lrs, smoothed losses) up to the first non-finite loss: each raw loss replaced by the mean of its neighbours
    weighted by a Gaussian in log10(LR) with standard deviation `width` decades. Centred, so without the EMA's
    lag: the EMA of `result.smoothed` trails the raw curve by ``smooth / (1 - smooth)`` updates (49 at 0.98), which
    on a 100-update sweep over 7 decades is 3.4 decades of LR."""
    width = check.positive("width", width)
    lrs = np.asarray(result.lrs, dtype=np.float64)
    raw = np.asarray(result.losses, dtype=np.float64)
    finite = np.isfinite(raw)
    n = int(np.argmin(finite)) if not finite.all() else len(raw)
    lrs, raw = lrs[:n], raw[:n]
    x = np.log10(lrs)
    out = np.empty(n, dtype=np.float64)
    lo = np.searchsorted(x, x - 4 * width, side="left")
    hi = np.searchsorted(x, x + 4 * width, side="right")
    for i in range(n):
        w = np.exp(-0.5 * ((x[lo[i]:hi[i]] - x[i]) / width) ** 2)
        out[i] = float(np.dot(w, raw[lo[i]:hi[i]]) / w.sum())
    return lrs, out


def peak_lr(result: RangeTestResult, *, factor: float = PEAK_FACTOR, width: float = CENTRED_WIDTH) -> LrSuggestion:
    """A peak LR for a full training run with warm-up: `factor` x the sweep's divergence boundary, the LR where the
    centred smoothed loss (`centred_loss`) is lowest (after the first ``num_iter // 10`` points).

    The boundary is where a few hundred updates at a steadily growing LR stop training; the best peak of a full run
    is a fraction of it. `factor` is one number measured across lrlab's tasks on sweeps of `CALIBRATED_SWEEP`
    (BENCHMARKS.md, benchmarks/advice_calibration.py); other sweeps (fewer updates per decade diverge later) may
    need another. Raises `LrlabError` when the loss never fell by `MIN_DESCENT`."""
    factor = check.positive("factor", factor)
    lrs, loss = centred_loss(result, width)
    lo = result.skip_start
    if len(loss) - lo < 5:
        raise LrlabError(f"the range test has {len(loss)} usable points; peak_lr needs at least {lo + 5} "
                         f"(num_iter={result.num_iter}, stop: {result.stop_reason}): lower start_lr or raise num_iter")
    j = lo + int(np.argmin(loss[lo:]))
    first = float(loss[lo])
    if not first - float(loss[j]) > MIN_DESCENT * abs(first):
        raise LrlabError(f"the smoothed loss fell only {(first - float(loss[j])) / abs(first):.2%} during the range "
                         f"test ({first:.4g} -> {float(loss[j]):.4g}; at least {MIN_DESCENT:.1%} needed): no LR in "
                         f"[{result.start_lr:g}, {result.end_lr:g}] trained the model; raise num_iter or move the "
                         f"range")
    boundary = float(lrs[j])
    note = (f"{factor:g} x the divergence boundary {boundary:.3g} (the lowest point of the loss smoothed without lag, "
            f"{width:g} decades)")
    if j >= len(loss) - 1:
        note += "; the loss still fell at the end of the sweep, so the boundary is higher: raise end_lr"
    start, end, n = CALIBRATED_SWEEP
    per_decade = result.num_iter / math.log10(result.end_lr / result.start_lr)
    calibrated = n / math.log10(end / start)
    if result.mode != "exp" or not 0.5 <= per_decade / calibrated <= 2:
        note += (f"; the factor was measured on {n}-update exponential sweeps from {start:g} to {end:g} "
                 f"({calibrated:.0f} updates per decade), this one has {per_decade:.0f} ({result.mode})")
    return LrSuggestion(rule="peak", lr=factor * boundary, index=j, loss=float(loss[j]), note=note)


# ------------------------------------------------------------------------------------------------ plot


def plot_range_test(result: RangeTestResult, path: str | os.PathLike[str], *,
                    suggestions: Sequence[LrSuggestion] | None = None, title: str | None = None) -> Path:
    """Write a PNG of the smoothed (and raw) loss against the LR, with the suggestions marked
    (`range_test_figure`).

    Args:
        result: a range test.
        path: the PNG to write (atomically: a temporary file, then renamed).
        suggestions: the ones to mark; `suggest_all(result)` when None (none if the curve is too short).
        title: the plot's title.
    Returns:
        The path written.
    """
    fig = range_test_figure(result, suggestions=suggestions, title=title)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=out.name + ".", suffix=".png", dir=out.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def range_test_figure(result: RangeTestResult, *, suggestions: Sequence[LrSuggestion] | None = None,
                      title: str | None = None) -> Any:
    """The matplotlib ``Figure`` of `plot_range_test` (no pyplot state): the raw and smoothed loss against the
    LR; each suggestion as a dashed vertical line at its LR and a dot on the smoothed curve, labelled
    ``"{rule}: {lr:.3g}"`` (its gid is ``"suggestion:{rule}"``)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if suggestions is None:
        try:
            suggestions = suggest_all(result)
        except LrlabError:
            suggestions = ()
    fig = Figure(figsize=(7, 4.5), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    lrs = np.asarray(result.lrs)
    raw = np.asarray(result.losses)
    sm = np.asarray(result.smoothed)
    ok = np.isfinite(sm)
    ax.plot(lrs[np.isfinite(raw)], raw[np.isfinite(raw)], color="0.75", lw=0.8, label="loss")
    ax.plot(lrs[ok], sm[ok], color="C0", lw=1.8, label=f"smoothed (EMA {result.smooth:g}, bias-corrected)")
    colors = {"steepest": "C3", "valley": "C2", "minimum/10": "C1"}
    for s in suggestions:
        c = colors.get(s.rule, "C4")
        ax.axvline(s.lr, color=c, ls="--", lw=1.0, gid=f"suggestion:{s.rule}")
        y = float(np.interp(np.log(s.lr), np.log(lrs[ok]), sm[ok])) if ok.any() else s.loss
        ax.plot([s.lr], [y], "o", color=c, ms=7, label=f"{s.rule}: {s.lr:.3g}", gid=f"suggestion:{s.rule}")
    if result.mode == "exp":
        ax.set_xscale("log")
    finite = sm[ok]
    if len(finite):
        raw_ok = raw[np.isfinite(raw)]
        lo = min(float(finite.min()), float(raw_ok.min()) if len(raw_ok) else math.inf)
        hi = float(finite[: max(1, len(finite) // 10)].max())
        top = max(hi, float(finite[0])) + 0.1 * (max(hi, float(finite[0])) - lo + 1e-12)
        ax.set_ylim(lo - 0.05 * (top - lo + 1e-12), top)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title(title or f"LR range test ({result.mode}, {len(lrs)} updates, {result.stop_reason})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
