"""Native code for a schedule: the peer library's own constructors (torch, Hugging Face transformers, Lightning,
optax, timm), so that production code can run an lrlab schedule without importing lrlab. The inverse of
`lrlab.compat`, which reads the peers' constructors into lrlab schedules.

    >>> code = native("warmup(0.06) >> cosine()", "hf", total=1000)
    >>> print(code.body)
    scheduler = get_cosine_schedule_with_warmup(optimizer, num_warmup_steps=60, num_training_steps=1000)

Each writer recognises the shapes its peer has a constructor for (a warm-up followed by a constant, linear,
cosine, polynomial, inverse square-root, WSD, step, multi-step, exponential, one-cycle or restarting cosine
decay, as far as the peer has them) and writes that constructor's call. Before it returns, the call is checked:
it is read back through `lrlab.compat` (which reproduces each peer's arithmetic and is tested against the real
peers), or, for torch's ``LambdaLR``, the written function is run; its LR for every update ``0 .. total - 1``
must equal the schedule's to ``rel=1e-12``. A spec the peer cannot express exactly is refused with the reason
(`LrlabError`), never written approximately.

The values are the LR for update ``t`` (0-based) in each peer's convention: torch, Hugging Face and Lightning
after ``t`` calls of ``scheduler.step()``; timm as ``step_update(num_updates=t)`` sets it; optax
``schedule(t)``. torch, Hugging Face, timm and Lightning multiply the optimizer's LR by the schedule's values
(factors); optax's schedules hold absolute LRs, written as multiples of a variable ``lr``.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lrlab.compat import PeerWarning
from lrlab.compose import Join, Overlay
from lrlab.errors import LrlabError, ScheduleError
from lrlab.families import (
    Constant,
    Cooldown,
    Cosine,
    CosineRestarts,
    Exponential,
    InverseSqrt,
    Linear,
    MultiStep,
    Noam,
    OneCycle,
    Polynomial,
    Step,
    Warmup,
)
from lrlab.schedule import Schedule

__all__ = ["PEERS", "Native", "native"]

#: the peers `native` writes for, with the library each one's code imports
PEERS: dict[str, str] = {
    "torch": "torch.optim.lr_scheduler",
    "hf": "transformers",
    "lightning": "Lightning (LightningModule.configure_optimizers)",
    "optax": "optax",
    "timm": "timm.scheduler",
}

#: relative tolerance of the check of the written code against the schedule
TOLERANCE = 1e-12
#: the written function of a LambdaLR is checked at every update up to this many, else at as many spread ones
#: (and every piece's first and last update)
MAX_CHECKED = 200_000


@dataclass(frozen=True, kw_only=True)
class Native:
    """Code for one peer.

    Attributes:
      peer: one of `PEERS`.
      spec: the schedule as bound to the run, in spec text.
      total: updates in the run.
      imports: import lines the body needs.
      body: the code; it defines ``scheduler`` from an existing ``optimizer`` (torch, hf, timm),
        ``schedule`` (optax) or ``configure_optimizers`` (lightning).
      usage: comment lines: how to drive it.
    """

    peer: str
    spec: str
    total: int
    imports: tuple[str, ...]
    body: str
    usage: tuple[str, ...]

    @property
    def code(self) -> str:
        """The whole snippet: a header comment, the imports and the body."""
        head = [f"# {self.spec} over {self.total} updates (lrlab show --as {self.peer})", *self.usage]
        gap = "\n\n\n" if self.body.startswith("def ") else "\n\n"
        return "\n".join(head) + "\n" + "\n".join(self.imports) + gap + self.body + "\n"


def native(schedule: Schedule | str, peer: str, *, total: float, lr: float | None = None) -> Native:
    """The peer's code for ``schedule`` over a run of ``total`` updates.

    Args:
      schedule: an lrlab schedule or spec text (bound to ``total`` here when it holds fractions of the run).
      peer: ``torch``, ``hf``, ``lightning``, ``optax`` or ``timm``.
      total: updates in the run: a whole number >= 1 (peers count whole updates).
      lr: the peak (base) LR written into the code where the peer needs a number (optax's values, the
        Lightning optimizer); None: the optimizer's LR (torch, hf, timm), or a placeholder 1.0 (optax) and
        1e-3 (Lightning) marked for the reader to replace.
    Returns:
      `Native`. Raises `LrlabError` when the peer cannot express the schedule exactly, naming why.
    """
    if peer not in PEERS:
        raise LrlabError(f"peer must be one of {', '.join(PEERS)}, got {peer!r}")
    if isinstance(total, bool) or not isinstance(total, (int, float)) or not (
            math.isfinite(total) and total >= 1 and float(total).is_integer()):
        raise LrlabError(f"total must be a whole number of updates >= 1 (peers count whole updates), got {total}")
    if lr is not None and not (math.isfinite(lr) and lr > 0):
        raise LrlabError(f"lr must be a finite number > 0, got {lr}")
    n = int(total)
    if isinstance(schedule, str):
        from lrlab.spec import parse

        schedule = parse(schedule)
    bound = schedule.bind(n) if schedule.needs_total else schedule
    want = bound.values(np.arange(n, dtype=np.float64))
    if peer in ("torch", "lightning"):
        made = _torch(bound, n, want)
    else:
        try:
            made = {"hf": _hf, "timm": _timm, "optax": _optax}[peer](bound, n)
            _check_call(made, bound, n, want, peer)
        except LrlabError as e:
            try:
                _torch(bound, n, want)
            except LrlabError:
                raise e from None
            raise LrlabError(f"{e}; --as torch writes it") from None
    return _snippet(peer, bound, n, made, lr)


# ------------------------------------------------------------------------------------------ the call model
@dataclass(frozen=True)
class _Lr:
    """A value in units of the peak LR: written ``factor * lr``, read back by compat as ``factor``."""

    factor: float


@dataclass(frozen=True)
class _Code:
    """Code written verbatim (``optimizer``, a list comprehension); compat reads ``value`` instead."""

    text: str
    value: Any


@dataclass(frozen=True)
class _Repeat:
    """``[item] * times`` (optax's sgdr cycles)."""

    item: Any
    times: int


@dataclass(frozen=True)
class _Call:
    """A peer constructor call: ``name(*args, **kwargs)``, read back by ``compat`` (a compat function)."""

    name: str
    compat: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class _Made:
    """What a writer made: imports, a helper function's source (LambdaLR's), the line that defines
    ``scheduler`` / ``schedule``, and the call it holds (None: the helper, already checked)."""

    imports: tuple[str, ...]
    line: str
    call: _Call | None = None
    helper: str = ""


class _Refused(Exception):
    """The peer cannot express the schedule (the message says why)."""


#: compat reads no argument for this one (torch's OneCycleLR takes its LRs from max_lr, not the optimizer)
_SKIP = object()
OPTIMIZER = _Code("optimizer", 1.0)


def _call(name: str, compat: Callable[..., Any], *args: Any, **kwargs: Any) -> _Call:
    return _Call(name, compat, args, tuple(kwargs.items()))


def _num(x: float) -> str:
    """A length or clock as Python source: whole numbers without a decimal point (they count updates)."""
    x = float(x)
    if x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(x)


def _val(x: float) -> str:
    """A value (an LR factor, a rate) as Python source: the float's shortest exact text."""
    return repr(float(x))


def _render(v: Any) -> str:
    if isinstance(v, _Call):
        parts = [_render(a) for a in v.args] + [f"{k}={_render(x)}" for k, x in v.kwargs]
        one = f"{v.name}({', '.join(parts)})"
        if len(one) <= 88 and "\n" not in one:
            return one
        inner = ",\n".join("    " + p.replace("\n", "\n    ") for p in parts)
        return f"{v.name}(\n{inner},\n)"
    if isinstance(v, _Lr):
        return "lr" if v.factor == 1 else "0.0" if v.factor == 0 else f"{_val(v.factor)} * lr"
    if isinstance(v, _Code):
        return v.text
    if isinstance(v, _Repeat):
        return f"[{_render(v.item)}] * {v.times}"
    if isinstance(v, bool):
        return repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _val(v)
    if isinstance(v, str):
        return '"' + v + '"'
    if isinstance(v, dict):
        return "dict(" + ", ".join(f"{k}={_render(x)}" for k, x in v.items()) + ")"
    if isinstance(v, (list, tuple)):
        one = "[" + ", ".join(_render(x) for x in v) + "]"
        if len(one) <= 88 and "\n" not in one:
            return one
        return "[\n" + "".join("    " + _render(x).replace("\n", "\n    ") + ",\n" for x in v) + "]"
    raise TypeError(f"cannot write {v!r}")  # pragma: no cover - the writers build only the kinds above


def _read(v: Any) -> Any:
    """The value compat receives for a written value: ``lr`` is 1 (factors), calls are built."""
    if isinstance(v, _Call):
        args = [_read(a) for a in v.args if not (isinstance(a, _Code) and a.value is _SKIP)]
        return v.compat(*args, **{k: _read(x) for k, x in v.kwargs})
    if isinstance(v, _Lr):
        return v.factor
    if isinstance(v, _Code):
        return v.value
    if isinstance(v, _Repeat):
        return [_read(v.item)] * v.times
    if isinstance(v, dict):
        return {k: _read(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_read(x) for x in v]
    return v


def _uses_lr(v: Any) -> bool:
    if isinstance(v, _Call):
        return any(_uses_lr(a) for a in v.args) or any(_uses_lr(x) for _, x in v.kwargs)
    if isinstance(v, _Lr):
        return v.factor != 0
    if isinstance(v, _Repeat):
        return _uses_lr(v.item)
    if isinstance(v, dict):
        return any(_uses_lr(x) for x in v.values())
    if isinstance(v, list):
        return any(_uses_lr(x) for x in v)
    return False


def _check_call(made: _Made, bound: Schedule, n: int, want: np.ndarray, peer: str) -> None:
    """Refuse unless the peer's call, read back by compat, gives the schedule's values over the run."""
    assert made.call is not None
    name = made.call.name
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PeerWarning)  # the peer does something surprising here
            got = _read(made.call).values(np.arange(n, dtype=np.float64))
    except (ScheduleError, PeerWarning) as e:
        raise _refusal(bound, peer, f"{name}: {e}") from None
    _compare(bound, peer, name, got, want)


def _compare(bound: Schedule, peer: str, name: str, got: np.ndarray, want: np.ndarray,
             at: np.ndarray | None = None) -> None:
    scale = max(1.0, float(np.max(np.abs(want)))) if want.size else 1.0
    bad = ~np.isclose(got, want, rtol=TOLERANCE, atol=TOLERANCE * 1e-3 * scale)
    if bad.any():
        i = int(np.argmax(bad))
        t = int(at[i]) if at is not None else i
        raise _refusal(bound, peer, f"{name} gives {got[i]:.6g} at update {t} where the schedule has "
                                    f"{want[i]:.6g}")


def _refusal(bound: Schedule, peer: str, why: str) -> LrlabError:
    return LrlabError(f"{PEERS[peer]} cannot express {bound} exactly: {why}")


def _need(ok: bool, why: str) -> None:
    if not ok:
        raise _Refused(why)


# ------------------------------------------------------------------------------------------ shapes
def _pieces(bound: Schedule) -> tuple[Warmup | None, bool, list[Schedule]]:
    """(warm-up or None, whether the warm-up is a prefix (join) rather than laid over (overlay), the rest)."""
    if isinstance(bound, Overlay) and isinstance(bound.head, Warmup):
        return bound.head, False, [bound.base]
    pieces = list(bound.pieces) if isinstance(bound, Join) else [bound]
    if isinstance(pieces[0], Warmup) and len(pieces) > 1:
        return pieces[0], True, pieces[1:]
    return None, True, pieces


def _length(p: Schedule, n: int, before: float = 0.0) -> float:
    """The span of piece ``p`` that starts at ``before``: its own length, else the rest of the run."""
    L = p.length
    return float(L) if L is not None else float(n - before)


def _whole(what: str, x: float) -> int:
    _need(float(x).is_integer(), f"{what} is {x:g} updates; peers count whole updates (choose a total that "
                                 "makes the fractions of the run whole, or give lengths in updates)")
    return int(x)


def _peak_is_one(p: Schedule, peer: str) -> None:
    peak = getattr(p, "peak", getattr(p, "value", 1.0))
    _need(peak == 1.0, f"{p} starts at {peak:g}, but {peer} multiplies the optimizer's LR from factor 1 (set "
                       f"the optimizer's LR to {peak:g} x yours and use peak=1)")


def _wsd(rest: list[Schedule]) -> tuple[int, Cooldown] | None:
    """(stable updates, cooldown) when ``rest`` is a WSD body: [constant(1) >>] cooldown [>> constant(floor)]."""
    body = list(rest)
    if len(body) >= 2 and isinstance(body[-1], Constant) and isinstance(body[-2], Cooldown) \
            and body[-1].value == body[-2].floor:
        body = body[:-1]
    if len(body) == 2 and isinstance(body[0], Constant) and isinstance(body[1], Cooldown):
        return _whole("the stable phase", _length(body[0], 0)), body[1]
    if len(body) == 1 and isinstance(body[0], Cooldown):
        return 0, body[0]
    return None


# ------------------------------------------------------------------------------------------ Hugging Face
_HF_WARMUP = {"linear": "linear", "cosine": "cosine", "sqrt": "1-sqrt"}
_HF_DECAY = {"linear": "linear", "cosine": "cosine", "sqrt": "1-sqrt"}


def _hf(bound: Schedule, n: int) -> _Made:
    from lrlab.compat import hf

    try:
        call = _hf_call(bound, n, hf)
    except _Refused as e:
        raise _refusal(bound, "hf", str(e)) from None
    return _Made(imports=(f"from transformers import {call.name}",), line=f"scheduler = {_render(call)}", call=call)


def _hf_call(bound: Schedule, n: int, hf: Any) -> _Call:
    warm, prefix, rest = _pieces(bound)
    _need(prefix, "transformers' warm-ups come before the decay (a join), not laid over it (overlay)")
    w = _whole("the warm-up", _length(warm, n)) if warm is not None else 0
    wsd = _wsd(rest)
    if wsd is not None:
        stable, cd = wsd
        _need(cd.shape in _HF_DECAY, f"get_wsd_schedule decays linear, cosine or 1-sqrt, not {cd.shape}")
        _peak_is_one(cd, "transformers")
        kw: dict[str, Any] = {"num_warmup_steps": w, "num_decay_steps": _whole("the decay", _length(cd, n)),
                              "num_stable_steps": stable}
        if warm is not None:
            _need(warm.shape in _HF_WARMUP, f"get_wsd_schedule warms up linear, cosine or 1-sqrt, not {warm.shape}")
            if warm.shape != "linear":
                kw["warmup_type"] = _HF_WARMUP[warm.shape]
        if cd.shape != "cosine":
            kw["decay_type"] = _HF_DECAY[cd.shape]
        if cd.floor:
            kw["min_lr_ratio"] = cd.floor
        if cd.shape == "cosine" and cd.cycles != 0.5:
            kw["num_cycles"] = cd.cycles
        return _call("get_wsd_schedule", hf.get_wsd_schedule, OPTIMIZER, **kw)
    if warm is not None:
        _need(warm.shape == "linear" and warm.floor == 0,
              f"transformers' warm-ups rise linearly from 0 (this one: {warm}); only get_wsd_schedule has "
              "other shapes")
    _need(len(rest) == 1, "transformers' schedules are one decay after an optional warm-up")
    main = rest[0]
    D = _length(main, n, w)
    T = _whole("the run", w + D)
    if isinstance(main, Constant):
        _peak_is_one(main, "transformers")
        if w:
            return _call("get_constant_schedule_with_warmup", hf.get_constant_schedule_with_warmup, OPTIMIZER,
                         num_warmup_steps=w)
        return _call("get_constant_schedule", hf.get_constant_schedule, OPTIMIZER)
    if isinstance(main, Linear):
        _peak_is_one(main, "transformers")
        _need(main.floor == 0, f"get_linear_schedule_with_warmup decays to 0, not {main.floor:g}")
        return _call("get_linear_schedule_with_warmup", hf.get_linear_schedule_with_warmup, OPTIMIZER,
                     num_warmup_steps=w, num_training_steps=T)
    if isinstance(main, Cosine):
        _peak_is_one(main, "transformers")
        _need(main.exponent == 1, "transformers' cosine has no exponent")
        kw = {"num_warmup_steps": w, "num_training_steps": T}
        if main.cycles != 0.5:
            kw["num_cycles"] = main.cycles
        if main.floor:
            return _call("get_cosine_with_min_lr_schedule_with_warmup",
                         hf.get_cosine_with_min_lr_schedule_with_warmup, OPTIMIZER, **kw, min_lr_rate=main.floor)
        return _call("get_cosine_schedule_with_warmup", hf.get_cosine_schedule_with_warmup, OPTIMIZER, **kw)
    if isinstance(main, Polynomial):
        _peak_is_one(main, "transformers")
        _need(getattr(main, "k", 1.0) == 1, "transformers' polynomial decay has no k (timm's k_decay)")
        # HF reads lr_end against optimizer.defaults["lr"]
        end = _Code(f'{_val(main.floor)} * optimizer.defaults["lr"]' if main.floor else "0.0", main.floor)
        kw = {"num_warmup_steps": w, "num_training_steps": T, "lr_end": end}
        if main.power != 1:
            kw["power"] = main.power
        return _call("get_polynomial_decay_schedule_with_warmup", hf.get_polynomial_decay_schedule_with_warmup,
                     OPTIMIZER, **kw)
    if isinstance(main, InverseSqrt):
        _peak_is_one(main, "transformers")
        _need(main.power == 0.5, f"get_inverse_sqrt_schedule has power 0.5, not {main.power:g}")
        ts = main.timescale
        return _call("get_inverse_sqrt_schedule", hf.get_inverse_sqrt_schedule, OPTIMIZER, num_warmup_steps=w,
                     timescale=int(ts) if float(ts).is_integer() else ts)
    if isinstance(main, CosineRestarts):
        _peak_is_one(main, "transformers")
        _need(main.mult == 1 and main.decay == 1 and main.k == 1 and main.floor == 0,
              "get_cosine_with_hard_restarts_schedule_with_warmup restarts equal cycles from 1 to 0 (mult=1, "
              "decay=1, floor=0)")
        cycles = D / main.period
        return _call("get_cosine_with_hard_restarts_schedule_with_warmup",
                     hf.get_cosine_with_hard_restarts_schedule_with_warmup, OPTIMIZER, num_warmup_steps=w,
                     num_training_steps=T, num_cycles=int(cycles) if cycles.is_integer() else cycles)
    raise _Refused(f"transformers has no {main.name} schedule (it has constant, linear, cosine, polynomial, "
                   "inverse_sqrt, cosine with hard restarts and WSD, each after a linear warm-up)")


# ------------------------------------------------------------------------------------------ timm
_TIMM_DECAY = {"linear": "linear", "sqrt": "1-sqrt", "cosine": "cosine", "power": "power", "exp": "exp"}


def _timm(bound: Schedule, n: int) -> _Made:
    from lrlab.compat import timm

    try:
        call = _timm_call(bound, n, timm)
    except _Refused as e:
        raise _refusal(bound, "timm", str(e)) from None
    return _Made(imports=(f"from timm.scheduler import {call.name}",), line=f"scheduler = {_render(call)}",
                 call=call)


def _timm_call(bound: Schedule, n: int, timm: Any) -> _Call:
    warm, prefix, rest = _pieces(bound)
    kw: dict[str, Any] = {}
    w = 0
    if warm is not None:
        _need(warm.shape == "linear", f"timm's warm-up is linear, not {warm.shape}")
        w = _whole("the warm-up", _length(warm, n))
        kw = {"warmup_t": w}
        if warm.floor:
            kw["warmup_lr_init"] = _Lr(warm.floor)
    wsd = _wsd(rest)
    if wsd is not None:
        _need(prefix, "timm's WSDLRScheduler warms up before the stable phase (a join), not over it")
        stable, cd = wsd
        _peak_is_one(cd, "timm")
        d = _whole("the decay", _length(cd, n))
        args: dict[str, Any] = {"t_initial": stable + d, "decay_t": d}
        if cd.floor:
            args["lr_min"] = _Lr(cd.floor)
        args["decay_fn"] = _TIMM_DECAY[cd.shape]
        _need(cd.shape != "cosine" or cd.cycles == 0.5, "timm's WSD cosine decay is one half cosine")
        if cd.shape == "power":
            args["decay_power"] = cd.power
        if cd.shape == "exp":
            args["decay_ratio"] = cd.ratio
        return _call("WSDLRScheduler", timm.WSDLRScheduler, OPTIMIZER, **args, **kw, t_in_epochs=False)
    _need(len(rest) == 1, "timm's schedulers are one family after an optional warm-up")
    main = rest[0]
    if warm is not None and not isinstance(main, (Step, MultiStep)):
        kw["warmup_prefix"] = prefix
    elif warm is not None:
        _need(prefix, "timm's step schedulers warm up before the decay (warmup_prefix=True)")
    D = _length(main, n, w if prefix else 0)
    if not isinstance(main, (Step, MultiStep, Exponential)):
        _peak_is_one(main, "timm")
    if isinstance(main, Cosine):
        _need(main.exponent == 1 and main.cycles == 0.5, "timm's cosine is one half cosine without an exponent")
        args = {"t_initial": _whole("the cosine", D)}
        if main.floor:
            args["lr_min"] = _Lr(main.floor)
        return _call("CosineLRScheduler", timm.CosineLRScheduler, OPTIMIZER, **args, **kw, t_in_epochs=False)
    if isinstance(main, CosineRestarts):
        period = _whole("the first cycle", float(main.period))
        args = {"t_initial": period}
        if main.floor:
            args["lr_min"] = _Lr(main.floor)
        if main.mult != 1:
            _need(not _timm_cycle_early(period, main.mult, n - (w if prefix else 0)),
                  "timm's logarithmic cycle index lands one cycle early on a restart inside this run")
            args["cycle_mul"] = main.mult
        if main.decay != 1:
            args["cycle_decay"] = main.decay
        args["cycle_limit"] = main.limit or _cycles_in(period, main.mult, D)
        if main.k != 1:
            args["k_decay"] = main.k
        return _call("CosineLRScheduler", timm.CosineLRScheduler, OPTIMIZER, **args, **kw, t_in_epochs=False)
    if isinstance(main, (Linear, Polynomial)):
        args = {"t_initial": _whole(f"the {main.name} decay", D),
                "power": main.power if isinstance(main, Polynomial) else 1.0}
        if getattr(main, "k", 1.0) != 1:
            args["k_decay"] = main.k  # type: ignore[union-attr]
        if main.floor:
            args["lr_min"] = _Lr(main.floor)
        return _call("PolyLRScheduler", timm.PolyLRScheduler, OPTIMIZER, **args, **kw, t_in_epochs=False)
    if isinstance(main, Step):
        _peak_is_one(main, "timm")
        return _call("StepLRScheduler", timm.StepLRScheduler, OPTIMIZER,
                     decay_t=_whole("the step period", float(main.every)), decay_rate=main.factor, **kw,
                     t_in_epochs=False)
    if isinstance(main, MultiStep):
        _peak_is_one(main, "timm")
        # timm applies milestone m from clock m - 1
        ms = [_whole("a milestone", float(m)) + 1 for m in main.milestones]
        return _call("MultiStepLRScheduler", timm.MultiStepLRScheduler, OPTIMIZER, decay_t=ms,
                     decay_rate=main.factor, **kw, t_in_epochs=False)
    raise _Refused(f"timm has no {main.name} scheduler (it has cosine with restarts, polynomial/linear, step, "
                   "multi-step and WSD, each with a linear warm-up)")


def _cycles_in(period: int, mult: float, span: float) -> int:
    """Cycles that start within ``span`` updates (timm's ``cycle_limit`` to cover the run)."""
    count, start, length = 0, 0.0, float(period)
    while start < span:
        count, start, length = count + 1, start + length, length * mult
    return max(count, 1)


def _timm_cycle_early(period: int, mult: float, span: int) -> bool:
    """Whether timm's ``floor(log(1 - t / t_initial * (1 - cycle_mul), cycle_mul))`` puts a restart clock
    inside ``span`` in the previous cycle (`lrlab.compat.timm` restarts there, as the formula intends)."""
    start, length, i = float(period), period * mult, 1
    while start < span:
        t = start
        if math.floor(math.log(1 - t / period * (1 - mult), mult)) != i:
            return True
        start, length, i = start + length, length * mult, i + 1
    return False


# ------------------------------------------------------------------------------------------ optax
def _optax(bound: Schedule, n: int) -> _Made:
    from lrlab.compat import optax

    try:
        call = _optax_call(bound, n, optax)
    except _Refused as e:
        raise _refusal(bound, "optax", str(e)) from None
    return _Made(imports=("import optax",), line=f"schedule = {_render(call)}", call=call)


def _optax_call(bound: Schedule, n: int, ox: Any) -> _Call:
    warm, prefix, rest = _pieces(bound)
    _need(prefix, "optax joins schedules one after another (join_schedules); it cannot lay a warm-up over a "
                  "decay (overlay)")
    if warm is not None and len(rest) == 1 and warm.shape == "linear":
        w = _whole("the warm-up", _length(warm, n))
        main = rest[0]
        target = _start(main)
        if warm.peak is None or warm.peak == target:
            if isinstance(main, Cosine) and main.cycles == 0.5 and main.peak:
                D = _whole("the cosine", _length(main, n, w))
                kw: dict[str, Any] = {"init_value": _Lr(warm.floor), "peak_value": _Lr(main.peak),
                                      "warmup_steps": w, "decay_steps": w + D}
                if main.floor:
                    kw["end_value"] = _Lr(main.floor)
                if main.exponent != 1:
                    kw["exponent"] = main.exponent
                return _call("optax.warmup_cosine_decay_schedule", ox.warmup_cosine_decay_schedule, **kw)
            if isinstance(main, Constant):
                return _call("optax.warmup_constant_schedule", ox.warmup_constant_schedule,
                             init_value=_Lr(warm.floor), peak_value=_Lr(main.value), warmup_steps=w)
    pieces = list(bound.pieces) if isinstance(bound, Join) else [bound]
    calls: list[_Call] = []
    boundaries: list[int] = []
    start = 0.0
    for i, p in enumerate(pieces):
        nxt = pieces[i + 1] if i + 1 < len(pieces) else None
        L = _length(p, n, start)
        calls.append(_optax_piece(p, nxt, L, ox))
        if nxt is not None:
            start += L
            boundaries.append(_whole(f"where {nxt} starts", start))
    if len(calls) == 1:
        return calls[0]
    return _call("optax.join_schedules", ox.join_schedules, schedules=calls, boundaries=boundaries)


def _start(p: Schedule) -> float:
    return float(p.values(np.zeros(1))[0])


def _optax_piece(p: Schedule, nxt: Schedule | None, L: float, ox: Any) -> _Call:
    if isinstance(p, Warmup):
        _need(p.shape == "linear", f"optax's warm-ups are linear, not {p.shape}")
        target = p.peak if p.peak is not None else (_start(nxt) if nxt is not None else 1.0)
        return _call("optax.linear_schedule", ox.linear_schedule, init_value=_Lr(p.floor), end_value=_Lr(target),
                     transition_steps=_whole("the warm-up", L))
    if isinstance(p, Constant):
        return _call("optax.constant_schedule", ox.constant_schedule, _Lr(p.value))
    if isinstance(p, Cooldown) and p.shape not in ("linear", "cosine"):
        raise _Refused(f"optax has no {p.shape} decay (cooldown shapes linear and cosine it has)")
    if isinstance(p, Linear) or (isinstance(p, Cooldown) and p.shape == "linear"):
        return _call("optax.linear_schedule", ox.linear_schedule, init_value=_Lr(p.peak), end_value=_Lr(p.floor),
                     transition_steps=_whole(f"the {p.name}", L))
    if isinstance(p, Polynomial):
        _need(getattr(p, "k", 1.0) == 1, "optax's polynomial_schedule has no k (timm's k_decay)")
        return _call("optax.polynomial_schedule", ox.polynomial_schedule, init_value=_Lr(p.peak),
                     end_value=_Lr(p.floor), power=p.power, transition_steps=_whole("the polynomial decay", L))
    if isinstance(p, Cosine) or (isinstance(p, Cooldown) and p.shape == "cosine"):
        _need(p.cycles == 0.5, "optax's cosine is one half cosine")
        _need(p.peak != 0, "optax's cosine decays from a peak above 0 (alpha is relative to it)")
        kw: dict[str, Any] = {"init_value": _Lr(p.peak), "decay_steps": _whole(f"the {p.name}", L)}
        if p.floor:
            kw["alpha"] = p.floor / p.peak
        if getattr(p, "exponent", 1.0) != 1:
            kw["exponent"] = p.exponent  # type: ignore[union-attr]
        return _call("optax.cosine_decay_schedule", ox.cosine_decay_schedule, **kw)
    if isinstance(p, Step):
        return _call("optax.exponential_decay", ox.exponential_decay, init_value=_Lr(p.peak),
                     transition_steps=_whole("the step period", float(p.every)), decay_rate=p.factor, staircase=True)
    if isinstance(p, Exponential):
        _need(p.gamma is not None, "optax's exponential_decay takes a factor per step (gamma), not a rate")
        kw = {"init_value": _Lr(p.peak), "transition_steps": _whole("exponential.every", p.every),
              "decay_rate": p.gamma}
        if p.staircase:
            kw["staircase"] = True
        return _call("optax.exponential_decay", ox.exponential_decay, **kw)
    if isinstance(p, MultiStep):
        scales = {_whole("a milestone", float(m)): p.factor for m in p.milestones}
        return _call("optax.piecewise_constant_schedule", ox.piecewise_constant_schedule, init_value=_Lr(p.peak),
                     boundaries_and_scales=_Code(repr(scales), scales))
    if isinstance(p, CosineRestarts):
        _need(p.mult == 1 and p.decay == 1 and p.k == 1,
              "optax's sgdr_schedule restarts equal cycles (mult=1, decay=1, k=1)")
        period = _whole("the cycle", float(p.period))
        cycles = p.limit or _cycles_in(period, 1.0, L)
        cycle = {"init_value": _Lr(p.peak), "peak_value": _Lr(p.peak), "warmup_steps": 0, "decay_steps": period}
        if p.floor:
            cycle["end_value"] = _Lr(p.floor)
        call = _call("optax.sgdr_schedule", ox.sgdr_schedule, _Repeat(cycle, cycles))
        if p.limit and p.floor:
            return _call("optax.join_schedules", ox.join_schedules,
                         schedules=[call, _call("optax.constant_schedule", ox.constant_schedule, _Lr(p.floor))],
                         boundaries=[period * p.limit])
        return call
    raise _Refused(f"optax has no {p.name} schedule (it has constant, linear, polynomial, cosine, exponential, "
                   "piecewise constant and SGDR pieces, joined with join_schedules)")


# ------------------------------------------------------------------------------------------ torch
def _torch(bound: Schedule, n: int, want: np.ndarray) -> _Made:
    """A built-in scheduler where one matches the schedule exactly, else LambdaLR with a written function."""
    from lrlab.compat import torch as ct

    call = _torch_builtin(bound, ct)
    if call is not None:
        try:
            _check_call(_Made(imports=(), line="", call=call), bound, n, want, "torch")
            return _Made(imports=(f"from torch.optim.lr_scheduler import {call.name}",),
                         line=f"scheduler = {_render(call)}", call=call)
        except LrlabError:
            pass  # the function below says it exactly
    try:
        source = _lambda_source(bound)
    except _Refused as e:
        raise _refusal(bound, "torch", str(e)) from None
    _check_lambda(source, bound, n, want)
    imports = ("import math",) if "math." in source else ()
    return _Made(imports=(*imports, "from torch.optim.lr_scheduler import LambdaLR"),
                 line="scheduler = LambdaLR(optimizer, lr_lambda)", helper=source)


def _torch_builtin(s: Schedule, ct: Any) -> _Call | None:
    if getattr(s, "peak", None) != 1.0 or isinstance(s, (Join, Overlay)):
        return None
    if isinstance(s, Step) and float(s.every).is_integer():
        return _call("StepLR", ct.StepLR, OPTIMIZER, step_size=int(s.every), gamma=s.factor)
    if isinstance(s, MultiStep) and all(float(m).is_integer() for m in s.milestones):
        return _call("MultiStepLR", ct.MultiStepLR, OPTIMIZER, milestones=[int(m) for m in s.milestones],
                     gamma=s.factor)
    if isinstance(s, Exponential) and s.gamma is not None:
        if s.every == 1:
            return _call("ExponentialLR", ct.ExponentialLR, OPTIMIZER, gamma=s.gamma)
        if s.staircase and float(s.every).is_integer():
            return _call("StepLR", ct.StepLR, OPTIMIZER, step_size=int(s.every), gamma=s.gamma)
    if isinstance(s, Cosine) and s.floor == 0 and s.cycles == 0.5 and s.exponent == 1 and s.total is not None \
            and float(s.total).is_integer():
        return _call("CosineAnnealingLR", ct.CosineAnnealingLR, OPTIMIZER, T_max=int(s.total))
    if isinstance(s, CosineRestarts) and s.floor == 0 and s.decay == 1 and s.limit == 0 and s.k == 1 \
            and float(s.period).is_integer() and float(s.mult).is_integer():
        kw: dict[str, Any] = {"T_0": int(s.period)}
        if s.mult != 1:
            kw["T_mult"] = int(s.mult)
        return _call("CosineAnnealingWarmRestarts", ct.CosineAnnealingWarmRestarts, OPTIMIZER, **kw)
    if isinstance(s, OneCycle) and s.total is not None and float(s.total).is_integer() and s.floor != 0:
        kw = {"max_lr": _Code('[group["lr"] for group in optimizer.param_groups]', 1.0),
              "total_steps": int(s.total)}
        if s.pct_start != 0.3:
            kw["pct_start"] = s.pct_start
        if s.shape != "cosine":
            kw["anneal_strategy"] = "linear"
        if s.initial is not None:
            kw["div_factor"] = s.peak / s.initial
        if s.floor is not None:
            kw["final_div_factor"] = (s.initial if s.initial is not None else s.peak / 25.0) / s.floor
        if s.three_phase:
            kw["three_phase"] = True
        kw["cycle_momentum"] = False  # lrlab schedules the LR only; True needs an optimizer with momentum
        return _call("OneCycleLR", ct.OneCycleLR, _Code("optimizer", _SKIP), **kw)
    return None


def _check_lambda(source: str, bound: Schedule, n: int, want: np.ndarray) -> None:
    space: dict[str, Any] = {"math": math}
    exec(compile(source, "<lr_lambda>", "exec"), space)  # our own generated text: a def of plain arithmetic
    fn = space["lr_lambda"]
    if n <= MAX_CHECKED:
        ts = np.arange(n)
    else:
        marks = {0, n - 1}
        if isinstance(bound, Join):
            for b in bound.boundaries():
                marks |= {int(b) - 1, int(b)}
        ts = np.unique(np.concatenate([np.linspace(0, n - 1, MAX_CHECKED).round().astype(np.int64),
                                       np.array(sorted(m for m in marks if 0 <= m < n), dtype=np.int64)]))
    got = np.array([fn(int(t)) for t in ts], dtype=np.float64)
    _compare(bound, "torch", "the written lr_lambda", got, want[ts], at=ts)


# LambdaLR source: each piece is statements on its own clock `t`, ending in `return <value>`
def _lambda_source(bound: Schedule) -> str:
    lines = ["def lr_lambda(step: int) -> float:",
             f'    """The factor of the base LR for update `step` (0-based) of {bound}."""',
             "    t = float(step)"]
    if len(lines[1]) > 100:
        lines[1:2] = ['    """The factor of the base LR for update `step` (0-based) of', f"    {bound}", '    """']
    lines += ["    " + x for x in _block(bound, None)]
    return "\n".join(lines)


def _block(s: Schedule, nxt: Schedule | None) -> list[str]:
    if isinstance(s, Join):
        out: list[str] = []
        for i, p in enumerate(s.pieces):
            after = s.pieces[i + 1] if i + 1 < len(s.pieces) else None
            if after is None:
                out += _block(p, None)
                break
            L = float(p.length)  # type: ignore[arg-type]
            out += [f"if t < {_num(L)}:", *("    " + x for x in _block(p, after)), f"t -= {_num(L)}"]
        return out
    if isinstance(s, Overlay):
        L = float(s.head.length)  # type: ignore[arg-type]
        return [f"if t < {_num(L)}:", *("    " + x for x in _block(s.head, s.base)), *_block(s.base, None)]
    return _family(s, nxt)


def _is_atom(e: str) -> bool:
    if re.fullmatch(r"[\w.]+", e):
        return True
    m = re.match(r"[\w.]+\(", e)
    if not m or not e.endswith(")"):
        return False
    depth = 0
    for i, ch in enumerate(e[m.end() - 1:], m.end() - 1):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0:
            return i == len(e) - 1
    return False  # pragma: no cover - unbalanced text is never generated


def _p(e: str) -> str:
    return e if _is_atom(e) else f"({e})"


def _affine(x: str, scale: float, offset: float) -> str:
    """``scale * x + offset`` in that order of operations, the factors that change nothing left out."""
    e = x if scale == 1 else f"{_val(scale)} * {_p(x)}"
    return e if offset == 0 else f"{e} + {_val(offset)}"


def _family(s: Schedule, nxt: Schedule | None) -> list[str]:
    if isinstance(s, Constant):
        return [f"return {_val(s.value)}"]
    if isinstance(s, Warmup):
        L = float(s.length)  # type: ignore[arg-type]
        target = s.peak if s.peak is not None else (_start(nxt) if nxt is not None else 1.0)
        ramp = {"linear": "p", "cosine": "0.5 * (1.0 - math.cos(math.pi * p))", "sqrt": "1.0 - math.sqrt(1.0 - p)",
                "exponential": f"-math.expm1(-2.0 * p) / {_val(-math.expm1(-2.0))}"}[s.shape]
        if L == 0:
            return [f"return {_val(target)}"]
        head = [] if nxt is not None else [f"if t >= {_num(L)}:", f"    return {_val(target)}"]
        if s.shape == "linear" and target - s.floor == 1 and s.floor == 0:
            return [*head, f"return t / {_num(L)}"]
        return [*head, f"p = t / {_num(L)}", f"return {_affine(ramp, target - s.floor, s.floor)}"]
    if isinstance(s, Linear):
        T = _num(float(s.total))  # type: ignore[arg-type]
        if s.floor == 0:
            value = f"{_val(s.peak)} * ({T} - t) / {T}" if s.peak != 1 else f"({T} - t) / {T}"
        else:
            value = f"({_val(s.peak)} * ({T} - t) + {_val(s.floor)} * t) / {T}"
        return [f"if t >= {T}:", f"    return {_val(s.floor)}", f"return {value}"]
    if isinstance(s, Polynomial):
        T = _num(float(s.total))  # type: ignore[arg-type]
        k = getattr(s, "k", 1.0)
        frac = f"(1.0 - min(t, {T}) / {T})" if k == 1 else f"(1.0 - min(t, {T}) ** {_val(k)} / {T} ** {_val(k)})"
        term = frac if s.power == 1 else f"{frac} ** {_val(s.power)}"
        return [f"return {_affine(term, s.peak - s.floor, s.floor)}"]
    if isinstance(s, Cosine):
        T = _num(float(s.total))  # type: ignore[arg-type]
        p = f"t / {T}" if s.periodic else f"min(t / {T}, 1.0)"
        k = np.pi * s.cycles * 2.0
        c = f"0.5 * (1.0 + math.cos({p} * {'math.pi' if k == math.pi else _val(k)}))"
        if s.exponent != 1:
            c = f"{_p(c)} ** {_val(s.exponent)}"
        return [f"return {_affine(c, s.peak - s.floor, s.floor)}"]
    if isinstance(s, Cooldown):
        T = _num(float(s.total))  # type: ignore[arg-type]
        f = {"linear": "1.0 - p",
             "cosine": f"0.5 * (1.0 + math.cos({_val(np.pi * s.cycles * 2.0)} * p))",
             "sqrt": "1.0 - math.sqrt(p)",
             "power": f"1.0 - p ** {_val(s.power)}",
             "exp": f"({_val(s.ratio)} ** p - {_val(s.ratio)}) / {_val(1.0 - s.ratio)}"}[s.shape]
        return [f"p = min(t / {T}, 1.0)", f"return {_affine(f, s.peak - s.floor, s.floor)}"]
    if isinstance(s, Step):
        return [f"return {_affine(f'{_val(s.factor)} ** (t // {_num(float(s.every))})', s.peak, 0.0)}"]
    if isinstance(s, MultiStep):
        ms = ", ".join(_num(float(m)) for m in s.milestones)
        passed = f"sum(t >= m for m in ({ms}{',' if len(s.milestones) == 1 else ''}))"
        return [f"return {_affine(f'{_val(s.factor)} ** {passed}', s.peak, 0.0)}"]
    if isinstance(s, Exponential):
        p = f"t / {_num(s.every)}" if s.every != 1 else "t"
        if s.staircase:
            p = f"math.floor({p})"
        g = f"{_val(s.gamma)} ** {_p(p)}" if s.gamma is not None else f"math.exp(-{_val(s.rate or 0.0)} * {_p(p)})"
        return [f"return {_affine(g, s.peak, 0.0)}"]
    if isinstance(s, InverseSqrt):
        ts = _num(s.timescale)
        x = f"(t + {ts}) / {ts}"
        v = f"1.0 / math.sqrt({x})" if s.power == 0.5 else f"({x}) ** -{_val(s.power)}"
        return [f"return {_affine(v, s.peak, 0.0)}"]
    if isinstance(s, Noam):
        c = s.scale * s.d_model ** -0.5
        return ["n = t + 1.0", f"return {_val(c)} * min(n ** -0.5, n * {_val(s.warmup ** -1.5)})"]
    if isinstance(s, CosineRestarts):
        P = _num(float(s.period))
        lines = []
        if s.mult == 1:
            lines += [f"i = t // {P}", f"u = t - {P} * i", f"L = {P}"]
        else:
            m = _val(s.mult)
            lines += [f"i = max(math.floor(math.log(1.0 - t / {P} * (1.0 - {m})) / math.log({m})), 0)",
                      f"if (1.0 - {m} ** i) / (1.0 - {m}) * {P} > t:", "    i -= 1",
                      f"if (1.0 - {m} ** (i + 1)) / (1.0 - {m}) * {P} <= t:", "    i += 1",
                      f"u = t - (1.0 - {m} ** i) / (1.0 - {m}) * {P}", f"L = {m} ** i * {P}"]
        if s.limit:
            lines += [f"if i >= {s.limit}:", f"    return {_val(s.floor)}"]
        top = _val(s.peak) if s.decay == 1 else f"{_val(s.peak)} * {_val(s.decay)} ** i"
        arg = "math.pi * u / L" if s.k == 1 else f"math.pi * u ** {_val(s.k)} / L ** {_val(s.k)}"
        if s.floor == 0 and s.decay == 1:
            v = _affine(f"1.0 + math.cos({arg})", 0.5 * s.peak, 0.0)
        else:
            v = f"{_val(s.floor)} + 0.5 * ({top} - {_val(s.floor)}) * (1.0 + math.cos({arg}))"
        return [*lines, f"return {v}"]
    raise _Refused(f"the function writer has no {s.name} (it writes joins and overlays of constant, warmup, "
                   "linear, polynomial, cosine, cooldown, step, multi_step, exponential, inverse_sqrt, noam and "
                   "cosine_restarts)")


# ------------------------------------------------------------------------------------------ the snippet
def _snippet(peer: str, bound: Schedule, n: int, made: _Made, lr: float | None) -> Native:
    parts = [made.helper] if made.helper else []
    imports = made.imports
    if peer == "optax":
        parts.append("\n".join([f"lr = {_val(lr)}  # the peak learning rate" if lr is not None
                                else "lr = 1.0  # the peak learning rate: put yours here",
                                made.line, "optimizer = optax.adamw(learning_rate=schedule)"]))
        usage = ("# optax evaluates schedule(count) at each update",)
    elif peer == "lightning":
        opt = f"torch.optim.AdamW(self.parameters(), lr={_val(lr) if lr is not None else '1e-3'})"
        parts.append("\n".join([
            "# in your LightningModule:",
            "def configure_optimizers(self):",
            f"    optimizer = {opt}" + ("" if lr is not None else "  # your peak LR"),
            "    " + made.line.replace("\n", "\n    "),
            '    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}']))
        usage = ('# interval "step": Lightning calls scheduler.step() after every optimizer step',)
        imports = ("import torch", *imports)
    else:
        lines = [made.line]
        if made.call is not None and _uses_lr(made.call):
            lines.insert(0, f"lr = {_val(lr)}  # the optimizer's LR" if lr is not None
                         else 'lr = optimizer.param_groups[0]["lr"]  # the base LR (for the absolute values)')
        parts.append("\n".join(lines))
        usage = {"torch": ("# call scheduler.step() after each optimizer.step()",),
                 "hf": ("# call scheduler.step() after each optimizer.step()",),
                 "timm": ("# after each optimizer.step(): num_updates += 1; "
                          "scheduler.step_update(num_updates=num_updates)",)}[peer]
    return Native(peer=peer, spec=str(bound), total=n, imports=_sorted_imports(imports), body="\n\n\n".join(parts),
                  usage=usage)


def _sorted_imports(imports: Sequence[str]) -> tuple[str, ...]:
    plain = sorted(x for x in imports if x.startswith("import "))
    froms = sorted(x for x in imports if x.startswith("from "))
    return tuple(dict.fromkeys([*plain, *froms]))
