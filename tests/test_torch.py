"""lrlab.torch.LRScheduler: exact LRs, the update clock (accumulation, AMP skips, tokens, epochs), resume, misuse."""

from __future__ import annotations

import copy
import doctest
import io
import json
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import lrlab
import lrlab.torch as lt
from lrlab import LrlabError
from lrlab.guard import DivergenceGuard
from lrlab.plateau import Plateau
from lrlab.torch import LRScheduler, layerwise_groups

torch.set_num_threads(1)
# torch.compile imports modules that use torch.jit.script_method (a torch 2.13 deprecation notice, not ours)
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")

SPECS = [
    "warmup(0.06) >> cosine(floor=0.1)",
    "wsd(warmup=0.05, decay=0.2)",
    "onecycle()",
    "cosine_restarts(0.1, mult=2)",
    "step(every=0.25, factor=0.5)",
    "inverse_sqrt(timescale=10)",
]


def _model(groups: int = 1, lrs: tuple[float, ...] = (0.1, 0.03, 0.5)) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(*[torch.nn.Linear(3, 3) for _ in range(groups)])
    opt = torch.optim.SGD([{"params": m.parameters(), "lr": lrs[i]} for i, m in enumerate(model)], lr=1.0)
    return model, opt


def _train(model: torch.nn.Module, opt: torch.optim.Optimizer, sched: LRScheduler, n: int, **step_kw: float) -> list[
        list[float]]:
    """LRs in effect for each of n updates (read from the optimizer before each update)."""
    out = []
    for _ in range(n):
        out.append([float(g["lr"]) for g in opt.param_groups])
        model(torch.randn(2, 3)).sum().backward()
        opt.step()
        opt.zero_grad()
        sched.step(**step_kw)
        assert sched.get_last_lr() == [float(g["lr"]) for g in opt.param_groups]  # right after every step
    return out


# ------------------------------------------------------------------------------------------------ the LR values


@pytest.mark.parametrize("spec", SPECS, ids=SPECS)
def test_lr_is_base_times_schedule_exactly(spec: str) -> None:
    total = 50
    model, opt = _model(3)
    sched = LRScheduler(opt, spec, total=total)
    lrs = np.array(_train(model, opt, sched, total + 5))
    s = lrlab.parse(spec, total=total)
    expected = s.values(np.arange(total + 5))
    for g, base in enumerate((0.1, 0.03, 0.5)):
        assert lrs[:, g].tolist() == (base * expected).tolist()
    assert sched.t == total + 5 and sched.updates == total + 5 and sched.last_epoch == total + 5


def test_absolute_and_per_group_schedules() -> None:
    model, opt = _model(3)
    specs = ["warmup(5) >> constant(0.2)", "cosine(20, peak=0.05)", "warmup(5) >> constant(0.2)"]
    sched = LRScheduler(opt, specs, absolute=True)
    assert len(sched._evals) == 2  # the two equal schedules are evaluated once per step
    lrs = np.array(_train(model, opt, sched, 25))
    for g, spec in enumerate(specs):
        assert lrs[:, g].tolist() == lrlab.parse(spec).values(np.arange(25)).tolist()
    assert sched.state_dict()["spec"] == [str(lrlab.parse(s)) for s in specs]


def test_schedule_objects_and_bind() -> None:
    model, opt = _model(1)
    s = lrlab.parse("warmup(0.1) >> cosine()")
    sched = LRScheduler(opt, s, total=100)
    assert sched.schedule == s.bind(100)
    assert _train(model, opt, sched, 12)[11] == [0.1 * s.bind(100)(11)]


def test_tensor_lr_is_filled_in_place() -> None:
    model = torch.nn.Linear(3, 1)
    lr = torch.tensor(0.5, dtype=torch.float64)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    sched = LRScheduler(opt, "cosine(10)")
    for t in range(1, 6):
        model(torch.randn(2, 3)).sum().backward()
        opt.step()
        sched.step()
        assert opt.param_groups[0]["lr"] is lr
        assert lr.item() == 0.5 * lrlab.parse("cosine(10)")(t) == sched.get_last_lr()[0]


def test_tensor_lr_does_not_recompile_a_compiled_step() -> None:
    """Dynamo (eager backend: fast) compiles the step once; a float LR from torch's scheduler recompiles."""

    def compiles(lr: float | torch.Tensor, make: type[LRScheduler] | type[torch.optim.lr_scheduler.LRScheduler]) -> int:
        torch._dynamo.reset()
        model = torch.nn.Linear(4, 4)
        opt = torch.optim.AdamW(model.parameters(), lr=lr)
        sched = LRScheduler(opt, "cosine(20)") if make is LRScheduler else make(opt, 20)  # type: ignore[call-arg]
        count = [0]

        def backend(gm: torch.fx.GraphModule, inputs: list[torch.Tensor]) -> object:
            count[0] += 1
            return gm.forward

        @torch.compile(backend=backend)
        def step() -> None:
            opt.step()

        for _ in range(8):
            model(torch.randn(2, 4)).sum().backward()
            step()
            opt.zero_grad()
            sched.step()
        assert sched.get_last_lr()[0] == pytest.approx(0.01 * lrlab.parse("cosine(20, periodic=true)")(8), rel=1e-6)
        return count[0]

    assert compiles(torch.tensor(0.01), LRScheduler) == 1
    assert compiles(0.01, torch.optim.lr_scheduler.CosineAnnealingLR) > 1


# ------------------------------------------------------------------------------------------------ the clock


def test_gradient_accumulation_advances_per_update() -> None:
    model, opt = _model(1)
    sched = LRScheduler(opt, "warmup(4) >> cosine(16)")
    seen = []
    for micro in range(40):  # 4 micro-batches per update; the scheduler is stepped after every micro-batch
        model(torch.randn(2, 3)).sum().backward()
        if micro % 4 == 3:
            opt.step()
            opt.zero_grad()
        sched.step()
        seen.append(sched.t)
    assert seen == [float((m + 1) // 4) for m in range(40)]
    assert sched.get_last_lr()[0] == 0.1 * lrlab.parse("warmup(4) >> cosine(16)")(10)


def _amp_run(skip: set[int], n: int) -> tuple[list[float], list[float], list[warnings.WarningMessage]]:
    model, opt = _model(1)
    sched = LRScheduler(opt, "warmup(4) >> cosine(16)")
    scaler = torch.amp.GradScaler("cpu")
    clocks, lrs = [], []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(n):
            loss = model(torch.randn(2, 3)).pow(2).mean()
            if i in skip:
                loss = loss * float("inf")  # inf gradients: the scaler skips this update
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            opt.zero_grad()
            sched.step()
            clocks.append(sched.t)
            lrs.append(sched.get_last_lr()[0])
    return clocks, lrs, list(caught)


def test_grad_scaler_skip_holds_the_clock_without_a_warning() -> None:
    clocks, lrs, caught = _amp_run({0, 3, 4}, 8)
    assert clocks == [0.0, 1.0, 2.0, 2.0, 2.0, 3.0, 4.0, 5.0]
    s = lrlab.parse("warmup(4) >> cosine(16)")
    assert lrs == [0.1 * s(t) for t in clocks]
    assert [str(w.message) for w in caught] == []


def test_torch_scheduler_warns_falsely_on_the_same_skip() -> None:
    """The long-standing complaint this design removes, shown with torch's own scheduler."""
    model, opt = _model(1)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 10)
    scaler = torch.amp.GradScaler("cpu")
    with pytest.warns(UserWarning, match=r"lr_scheduler.step\(\)` before `optimizer.step\(\)"):
        scaler.scale(model(torch.randn(2, 3)).sum() * float("inf")).backward()
        scaler.step(opt)
        scaler.update()
        sched.step()


def test_step_order_does_not_shift_the_schedule() -> None:
    spec = "warmup(3) >> cosine(10)"
    model, opt = _model(1)
    sched = LRScheduler(opt, spec)
    used = []
    for _ in range(12):
        sched.step()  # before the optimizer (torch would skip the first LR value)
        used.append(opt.param_groups[0]["lr"])
        model(torch.randn(2, 3)).sum().backward()
        opt.step()
        opt.zero_grad()
    assert used == [0.1 * lrlab.parse(spec)(t) for t in range(12)]


@pytest.mark.parametrize("spe", [7, 2.5, 0.3])
def test_epoch_clock_is_fractional(spe: float) -> None:
    model, opt = _model(1)
    sched = LRScheduler(opt, "warmup(1) >> cosine(3)", clock="epochs", steps_per_epoch=spe)
    lrs = [x[0] for x in _train(model, opt, sched, 300)]  # more than one block of clocks computed ahead
    s = lrlab.parse("warmup(1) >> cosine(3)")
    assert lrs == [0.1 * s(u / spe) for u in range(300)]  # the scalar path, at the same clocks
    assert sched.t == 300 / spe


def test_token_clock_keeps_lr_per_token_when_batch_changes() -> None:
    spec = "warmup(1000) >> cosine(9000)"
    model, opt = _model(1)
    sched = LRScheduler(opt, spec, clock="tokens")
    s = lrlab.parse(spec)
    tokens, pairs = 0, []
    for i in range(60):
        batch = 128 if i < 20 else 256 if i < 40 else 96  # the batch size changes mid-run
        pairs.append((tokens, opt.param_groups[0]["lr"]))
        model(torch.randn(2, 3)).sum().backward()
        opt.step()
        opt.zero_grad()
        sched.step(tokens=batch)
        tokens += batch
    assert [lr for _, lr in pairs] == [0.1 * s(t) for t, _ in pairs]  # the scalar path, at the same clocks
    assert sched.t == tokens == 128 * 20 + 256 * 20 + 96 * 20


@pytest.mark.parametrize("clock", ["tokens", "samples"])
def test_micro_batch_counts_are_taken_in_at_the_next_update(clock: str) -> None:
    """step(tokens=micro) after every micro-batch: the clock moves only at updates, and by every micro-batch's count."""
    spec = "warmup(500) >> cosine(4500)"
    model, opt = _model(1)
    sched = LRScheduler(opt, spec, clock=clock)
    s = lrlab.parse(spec)
    micro = [30, 50, 20, 100] * 6  # 4 micro-batches per update, uneven sizes
    clocks, lrs, consumed = [], [], 0
    for i, n in enumerate(micro):
        model(torch.randn(2, 3)).sum().backward()
        if i % 4 == 3:
            opt.step()
            opt.zero_grad()
        sched.step(**{clock: n})
        consumed += n
        clocks.append(sched.t)
        lrs.append(sched.get_last_lr()[0])
    assert clocks == [200.0 * ((i + 1) // 4) for i in range(len(micro))]  # every token counted, at updates only
    assert sched.t == consumed == 1200 and sched.updates == 6
    assert lrs == [0.1 * s(t) for t in clocks]
    assert sched.state_dict()["pending"] == 0.0


def test_pending_tokens_resume_mid_accumulation() -> None:
    model, opt = _model(1)
    sched = LRScheduler(opt, "cosine(10000)", clock="tokens")
    model(torch.randn(2, 3)).sum().backward()
    opt.step()
    sched.step(tokens=64)
    sched.step(tokens=16)  # a micro-batch of the next update, then the checkpoint
    state = sched.state_dict()
    assert (state["t"], state["pending"]) == (64.0, 16.0)
    model2, opt2 = _model(1)
    sched2 = LRScheduler(opt2, "cosine(10000)", clock="tokens")
    sched2.load_state_dict(pickle.loads(pickle.dumps(state)))
    model2(torch.randn(2, 3)).sum().backward()
    opt2.step()
    sched2.step(tokens=48)
    assert sched2.t == 64.0 + 16.0 + 48.0
    assert sched2.get_last_lr() == [0.1 * lrlab.parse("cosine(10000)")(128.0)]


def test_tokens_of_a_grad_scaler_skipped_update_are_carried_to_the_next_update() -> None:
    """The documented choice: a skipped update holds the clock; its tokens are counted at the next update made."""
    model, opt = _model(1)
    sched = LRScheduler(opt, "cosine(10000)", clock="tokens")
    scaler = torch.amp.GradScaler("cpu")
    clocks = []
    for i in range(4):
        loss = model(torch.randn(2, 3)).pow(2).mean() * (float("inf") if i == 1 else 1.0)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad()
        sched.step(tokens=100)
        clocks.append(sched.t)
    assert clocks == [100.0, 100.0, 300.0, 400.0]
    assert sched.updates == 3


def test_reduce_without_a_process_group_is_the_count_itself() -> None:
    assert lt.global_count(4096) == 4096.0
    with pytest.raises(LrlabError, match="n must be >= 0, got -1"):
        lt.global_count(-1)
    model, opt = _model(1)
    sched = LRScheduler(opt, "cosine(10000)", clock="tokens")
    model(torch.randn(2, 3)).sum().backward()
    opt.step()
    sched.step(tokens=512, reduce=True)
    assert sched.t == 512.0
    with pytest.raises(LrlabError, match=r"step\(reduce=True\) need LRScheduler\(\.\.\., clock='tokens'/'samples'\)"):
        LRScheduler(opt, "cosine(10)").step(reduce=True)


# ------------------------------------------------------------------------------------------------ state


def _resume_case(clock: str) -> tuple[dict[str, object], list[list[float]], list[list[float]]]:
    """Run 30 updates straight, and 12 + resume + 18 on fresh objects; return the state and both LR series."""
    kw: dict[str, object] = {"clock": clock}
    step_kw: dict[str, float] = {}
    if clock == "epochs":
        kw["steps_per_epoch"] = 7
    if clock == "tokens":
        step_kw = {"tokens": 1000}
    total = {"steps": 30, "epochs": 30 / 7, "tokens": 30_000}[clock]
    spec = "warmup(0.1) >> cosine(floor=0.1)"
    model, opt = _model(2)
    straight = _train(model, opt, LRScheduler(opt, spec, total=total, **kw), 30, **step_kw)  # type: ignore[arg-type]
    model, opt = _model(2)
    sched = LRScheduler(opt, spec, total=total, **kw)  # type: ignore[arg-type]
    first = _train(model, opt, sched, 12, **step_kw)
    buf = io.BytesIO()
    torch.save({"sched": sched.state_dict(), "opt": opt.state_dict()}, buf)
    buf.seek(0)
    ckpt = torch.load(buf, weights_only=True)  # plain types only
    model2, opt2 = _model(2)
    sched2 = LRScheduler(opt2, spec, total=total, **kw)  # type: ignore[arg-type]
    opt2.load_state_dict(ckpt["opt"])
    sched2.load_state_dict(pickle.loads(pickle.dumps(ckpt["sched"])))
    rest = _train(model2, opt2, sched2, 18, **step_kw)
    return sched.state_dict(), straight, first + rest


@pytest.mark.parametrize("clock", ["steps", "epochs", "tokens"])
def test_resume_continues_the_exact_sequence(clock: str) -> None:
    state, straight, resumed = _resume_case(clock)
    assert resumed == straight
    assert set(state) >= {"spec", "clock", "t", "updates"} and state["clock"] == clock


def _group_values(opt: torch.optim.Optimizer, keys: tuple[str, ...]) -> list[list[float]]:
    """Per group: the LR and each driven ``also`` value (beta1/beta2 read from ``betas``)."""
    out = []
    for g in opt.param_groups:
        row = [float(g["lr"])]
        for key in keys:
            name, index = lt.TUPLE_KEYS.get(key, (key, -1))
            row.append(float(g[name][index] if index >= 0 else g[name]))
        out.append(row)
    return out


def _per_group() -> tuple[torch.nn.Module, torch.optim.Optimizer, LRScheduler]:
    model, opt = _model(3)
    return model, opt, LRScheduler(opt, ["warmup(5) >> cosine(25)", "cosine(30, floor=0.2)", "linear(30)"])


def _also() -> tuple[torch.nn.Module, torch.optim.Optimizer, LRScheduler]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 3))
    opt = torch.optim.AdamW([{"params": model[0].parameters(), "weight_decay": 0.1},
                             {"params": model[1].parameters(), "weight_decay": 0.01}], lr=0.01, betas=(0.9, 0.99))
    sched = LRScheduler(opt, "onecycle(30)", also={"beta1": "onecycle(30, peak=0.9, start=1.0, end=1.0)",
                                                    "beta2": "linear(30, start=1.0, end=0.99)",
                                                    "weight_decay": "cosine(30)"})
    return model, opt, sched


def _momentum() -> tuple[torch.nn.Module, torch.optim.Optimizer, LRScheduler]:
    model, opt = _model(2)
    for g in opt.param_groups:
        g["momentum"] = 0.9
    sched = LRScheduler(opt, "onecycle(30, peak=0.1)", absolute=True,
                        also={"momentum": "onecycle(30, peak=0.85, start=0.95, end=0.95)"})
    return model, opt, sched


def _tensor_lr() -> tuple[torch.nn.Module, torch.optim.Optimizer, LRScheduler]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 3))
    opt = torch.optim.AdamW(model.parameters(), lr=torch.tensor(0.01, dtype=torch.float64))
    return model, opt, LRScheduler(opt, "warmup(0.2) >> cosine()", total=30)


def _samples() -> tuple[torch.nn.Module, torch.optim.Optimizer, LRScheduler]:
    model, opt = _model(2)
    return model, opt, LRScheduler(opt, "warmup(0.1) >> cosine(floor=0.1)", total=30 * 48, clock="samples")


RESUME_CASES = {
    "per-group": (_per_group, (), {}),
    "also-betas-weight-decay": (_also, ("beta1", "beta2", "weight_decay"), {}),
    "also-momentum": (_momentum, ("momentum",), {}),
    "tensor-lr": (_tensor_lr, (), {}),
    "samples-clock": (_samples, (), {"samples": 48}),
}


@pytest.mark.parametrize("case", RESUME_CASES, ids=list(RESUME_CASES))
def test_resume_continues_every_driven_value(case: str) -> None:
    """30 updates straight vs 12 + checkpoint + 18 on fresh objects: the same LRs and also= values, exactly."""
    make, keys, step_kw = RESUME_CASES[case]

    def run(n: int, model: torch.nn.Module, opt: torch.optim.Optimizer, sched: LRScheduler) -> list[list[list[float]]]:
        out = []
        for _ in range(n):
            out.append(_group_values(opt, keys))
            model(torch.randn(2, 3)).sum().backward()
            opt.step()
            opt.zero_grad()
            sched.step(**step_kw)
        return out

    straight = run(30, *make())
    model, opt, sched = make()
    first = run(12, model, opt, sched)
    buf = io.BytesIO()
    torch.save({"sched": sched.state_dict(), "opt": opt.state_dict()}, buf)
    buf.seek(0)
    ckpt = torch.load(buf, weights_only=True)
    model2, opt2, sched2 = make()
    opt2.load_state_dict(ckpt["opt"])
    sched2.load_state_dict(ckpt["sched"])
    assert _group_values(opt2, keys) == _group_values(opt, keys)
    rest = run(18, model2, opt2, sched2)
    assert first + rest == straight
    if case == "tensor-lr":
        assert isinstance(opt2.param_groups[0]["lr"], torch.Tensor)


def test_state_dict_is_the_spec_and_the_clock() -> None:
    model, opt = _model(1)
    sched = LRScheduler(opt, "warmup(0.1) >> cosine()", total=100)
    _train(model, opt, sched, 3)
    assert sched.state_dict() == {"spec": "warmup(10) >> cosine(90)", "clock": "steps", "t": 3.0, "updates": 3,
                                  "absolute": False, "base_lrs": [0.1]}
    assert LRScheduler(opt, "constant(0.1)", absolute=True).state_dict() == {
        "spec": "constant(0.1)", "clock": "steps", "t": 0.0, "updates": 0, "absolute": True}


def test_loading_another_spec_is_refused_showing_both() -> None:
    _, opt = _model(1)
    saved = LRScheduler(opt, "cosine(100)").state_dict()
    _, opt2 = _model(1)
    other = LRScheduler(opt2, "linear(100)")
    with pytest.raises(LrlabError, match=r"different schedule:\n  saved: cosine\(100\)\n  this:  linear\(100\)"):
        other.load_state_dict(saved)
    with pytest.raises(LrlabError, match="different clock"):
        LRScheduler(opt2, "cosine(100)", clock="tokens").load_state_dict(saved)
    torch_state = torch.optim.lr_scheduler.CosineAnnealingLR(_model(1)[1], 100).state_dict()
    with pytest.raises(LrlabError, match="not an lrlab LRScheduler state"):
        other.load_state_dict(torch_state)


def test_loading_another_absolute_or_base_lr_is_refused_showing_both() -> None:
    """absolute=False saved, absolute=True loaded: the LR would jump from 0.1 * s(t) to s(t) without this."""
    model, opt = _model(2)
    sched = LRScheduler(opt, "cosine(100)")
    _train(model, opt, sched, 3)
    saved = sched.state_dict()
    with pytest.raises(LrlabError, match=r"different absolute:\n  saved: False\n  this:  True"):
        LRScheduler(_model(2)[1], "cosine(100)", absolute=True).load_state_dict(saved)
    with pytest.raises(LrlabError, match=r"different base LRs .*:\n  saved: \[0.1, 0.03\]\n  this:  \[1.0, 0.3\]"):
        LRScheduler(_model(2, lrs=(1.0, 0.3))[1], "cosine(100)").load_state_dict(saved)
    absolute = LRScheduler(_model(2)[1], "cosine(100, peak=0.1)", absolute=True).state_dict()
    # absolute=False with a schedule peaking at group 0's own LR (0.1) is refused when it is built
    with pytest.raises(LrlabError, match=r"peaks at 0.1, param group 0's own LR.*would peak at 0.01"):
        LRScheduler(_model(2)[1], "cosine(100, peak=0.1)", absolute=False)
    half = LRScheduler(_model(2)[1], "cosine(100, peak=0.5)", absolute=True).state_dict()
    with pytest.raises(LrlabError, match=r"different absolute:\n  saved: True\n  this:  False"):
        LRScheduler(_model(2)[1], "cosine(100, peak=0.5)").load_state_dict(half)
    # with absolute=True the groups' own LRs do not enter the LR: another optimizer LR loads
    again = LRScheduler(_model(2, lrs=(5.0, 5.0))[1], "cosine(100, peak=0.1)", absolute=True)
    again.load_state_dict(absolute)
    fresh = LRScheduler(_model(2)[1], "cosine(100)")
    fresh.load_state_dict(saved)
    assert fresh.get_last_lr() == sched.get_last_lr()


def test_loading_another_also_is_refused_showing_both() -> None:
    _, opt = _model(1)
    opt.param_groups[0]["momentum"] = 0.9
    saved = LRScheduler(opt, "constant()", also={"momentum": "constant(0.5)"}).state_dict()
    _, opt2 = _model(1)
    opt2.param_groups[0]["momentum"] = 0.9
    with pytest.raises(LrlabError, match=r"different also:\n  saved: \{'momentum': 'constant\(0.5\)'\}\n  "
                                         r"this:  \{'momentum': 'linear\(10\)'\}"):
        LRScheduler(opt2, "constant()", also={"momentum": "linear(10)"}).load_state_dict(saved)
    with pytest.raises(LrlabError, match=r"different also:\n  saved: \{'momentum'.*\}\n  this:  \{\}"):
        LRScheduler(opt2, "constant()").load_state_dict(saved)


def test_epoch_clock_resumes_at_a_new_rate() -> None:
    model, opt = _model(1)
    sched = LRScheduler(opt, "cosine(4)", clock="epochs", steps_per_epoch=10)
    _train(model, opt, sched, 15)
    state = sched.state_dict()
    model2, opt2 = _model(1)
    sched2 = LRScheduler(opt2, "cosine(4)", clock="epochs", steps_per_epoch=5)  # batch size doubled
    sched2.load_state_dict(state)
    assert sched2.t == 1.5
    lrs = _train(model2, opt2, sched2, 5)
    assert sched2.t == 2.5
    assert [x[0] for x in lrs] == [0.1 * lrlab.parse("cosine(4)")(1.5 + k / 5) for k in range(5)]


def test_a_pickled_or_copied_scheduler_keeps_counting() -> None:
    model, opt = _model(1)
    sched = LRScheduler(opt, "cosine(10)")
    _train(model, opt, sched, 2)
    for copied in (pickle.loads(pickle.dumps(sched)), copy.deepcopy(sched)):
        opt2 = copied.optimizer
        assert opt2 is not opt and copied.t == 2.0
        opt2.step()  # the copy's optimizer carries the copy's hook
        copied.step()
        assert copied.t == 3.0 and opt2.param_groups[0]["lr"] == 0.1 * lrlab.parse("cosine(10)")(3)
    assert sched.t == 2.0


def test_optimizer_load_replacing_groups_is_followed() -> None:
    model, opt = _model(1)
    sched = LRScheduler(opt, "cosine(10)")
    opt.load_state_dict(opt.state_dict())  # torch builds new param-group dicts
    _train(model, opt, sched, 3)
    assert opt.param_groups[0]["lr"] == 0.1 * lrlab.parse("cosine(10)")(3)


# ------------------------------------------------------------------------------------------------ also=


def test_onecycle_momentum_matches_torch_onecycle() -> None:
    total = 40
    model, opt = _model(1)
    opt.param_groups[0]["momentum"] = 0.9
    ours = LRScheduler(opt, f"onecycle({total}, peak=0.1)", absolute=True,
                       also={"momentum": f"onecycle({total}, peak=0.85, start=0.95, end=0.95)"})
    m2, opt2 = _model(1)
    opt2.param_groups[0]["momentum"] = 0.9
    ref = torch.optim.lr_scheduler.OneCycleLR(opt2, max_lr=0.1, total_steps=total)
    for _ in range(total - 1):
        assert opt.param_groups[0]["lr"] == opt2.param_groups[0]["lr"]  # the same floats
        assert opt.param_groups[0]["momentum"] == opt2.param_groups[0]["momentum"]
        for m, o in ((model, opt), (m2, opt2)):
            m(torch.randn(2, 3)).sum().backward()
            o.step()
            o.zero_grad()
        ours.step()
        ref.step()


def test_also_drives_betas_and_weight_decay_per_group() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 1))
    opt = torch.optim.AdamW([{"params": model[0].parameters(), "weight_decay": 0.1},
                             {"params": model[1].parameters(), "weight_decay": 0.0}], lr=0.01, betas=(0.9, 0.95))
    sched = LRScheduler(opt, "constant()", also={"weight_decay": "linear(10)", "beta1": "constant(0.5)"})
    for _ in range(5):
        model(torch.randn(2, 3)).sum().backward()
        opt.step()
        opt.zero_grad()
        sched.step()
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1 * 0.5, 0.0]  # the no-decay group stays at 0
    assert [g["betas"] for g in opt.param_groups] == [(0.45, 0.95), (0.45, 0.95)]  # beta1 = 0.9 * 0.5
    assert sched.state_dict()["also"] == {"weight_decay": "linear(10)", "beta1": "constant(0.5)"}
    with pytest.raises(LrlabError, match=r"also\['momentum'\]: param group 0 has no 'momentum'"):
        LRScheduler(opt, "constant()", also={"momentum": "constant()"})


def test_tensor_betas_are_filled_in_place() -> None:
    model = torch.nn.Linear(3, 1)
    b1, b2 = torch.tensor(0.9, dtype=torch.float64), torch.tensor(0.99, dtype=torch.float64)
    opt = torch.optim.Adam(model.parameters(), lr=0.01, betas=(b1, b2))
    spec = "onecycle(10, peak=0.9, start=1.0, end=1.0)"
    sched = LRScheduler(opt, "constant()", also={"beta1": spec, "beta2": "linear(10, start=1.0, end=0.99)"})
    for t in range(1, 6):
        model(torch.randn(2, 3)).sum().backward()
        opt.step()
        opt.zero_grad()
        sched.step()
        betas = opt.param_groups[0]["betas"]
        assert betas[0] is b1 and betas[1] is b2  # the same tensors: a compiled step is not recompiled
        assert b1.item() == 0.9 * lrlab.parse(spec)(t)
        assert b2.item() == 0.99 * lrlab.parse("linear(10, start=1.0, end=0.99)")(t)


# ------------------------------------------------------------------------------------------------ misuse


def test_idle_scheduler_warns_once_with_a_clear_message() -> None:
    _, opt = _model(1)
    sched = LRScheduler(opt, "cosine(100)", warn_idle_after=5)
    with pytest.warns(UserWarning, match=r"called 5 times in a row without an optimizer update, so the clock stays"):
        for _ in range(12):
            sched.step()
    assert sched.t == 0.0


def test_bad_arguments_name_the_field() -> None:
    model, opt = _model(2)
    with pytest.raises(LrlabError, match="pass total=<the run's length in steps>"):
        LRScheduler(opt, "warmup(0.1) >> cosine()")
    with pytest.raises(LrlabError, match="schedule holds 3 schedules but the optimizer has 2 param groups"):
        LRScheduler(opt, ["cosine(10)"] * 3)
    with pytest.raises(LrlabError, match="clock must be one of steps, epochs, tokens, samples; got 'hours'"):
        LRScheduler(opt, "cosine(10)", clock="hours")
    with pytest.raises(LrlabError, match="steps_per_epoch goes with clock='epochs'"):
        LRScheduler(opt, "cosine(10)", clock="epochs")
    with pytest.raises(LrlabError, match=r"optimizer must be a torch\.optim\.Optimizer.*got list"):
        LRScheduler([], "cosine(10)")  # type: ignore[arg-type]
    with pytest.raises(lrlab.ScheduleError, match="unknown schedule 'cosin'"):
        LRScheduler(opt, "cosin(10)")
    sched = LRScheduler(opt, "cosine(10)")
    with pytest.raises(LrlabError, match="takes no epoch"):
        sched.step(3)
    with pytest.raises(LrlabError, match=r"need LRScheduler\(\.\.\., clock='tokens'/'samples'\)"):
        sched.step(tokens=100)
    tok = LRScheduler(opt, "cosine(1000)", clock="tokens")
    with pytest.raises(LrlabError, match=r"clock='tokens': call scheduler.step\(tokens=n\)"):
        tok.step()
    with pytest.raises(LrlabError, match="tokens must be >= 0, got -5"):
        tok.step(tokens=-5)
    with pytest.raises(LrlabError, match="report\\(\\) needs a plateau controller"):
        sched.report(1.0)
    opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.1})
    model(torch.randn(2, 3)).sum().backward()
    opt.step()
    with pytest.raises(LrlabError, match="build the scheduler after the last add_param_group"):
        sched.step()


def test_is_a_torch_lr_scheduler() -> None:
    _, opt = _model(1)
    sched = LRScheduler(opt, "cosine(10)")
    assert isinstance(sched, torch.optim.lr_scheduler.LRScheduler)
    assert sched.optimizer is opt and sched.base_lrs == [0.1] and opt.param_groups[0]["initial_lr"] == 0.1
    assert not hasattr(opt.step, "_wrapped_by_lr_sched")  # nothing patched
    model = torch.nn.Linear(3, 1)
    opt2 = torch.optim.SGD(model.parameters(), lr=0.1)
    sched2 = LRScheduler(opt2, "cosine(10)")
    sched2.remove_hooks()
    model(torch.randn(2, 3)).sum().backward()
    opt2.step()
    sched2.step()
    assert sched2.t == 0.0  # detached: updates are no longer counted


# ------------------------------------------------------------------------------------------------ plateau / guard


def test_plateau_inside_a_phase_sequence_resumes() -> None:
    spec = "warmup(10) >> constant(total=30) >> cooldown(20, shape=linear)"
    s = lrlab.parse(spec)
    from lrlab.plateau import phase_window

    start, stop = phase_window(s, 1)
    plateau = Plateau(patience=1, factor=0.5, start=start, stop=stop)
    model, opt = _model(1)
    sched = LRScheduler(opt, s, plateau=plateau)
    lrs = []
    for t in range(60):
        lrs.append(opt.param_groups[0]["lr"])
        model(torch.randn(2, 3)).sum().backward()
        opt.step()
        opt.zero_grad()
        sched.step()
        if t % 5 == 4:
            sched.report(1.0)  # never improves after the first report in the window
        if t == 32:
            state = pickle.loads(pickle.dumps(sched.state_dict()))
            _, opt2 = _model(1)
            sched2 = LRScheduler(opt2, s, plateau=plateau)
            sched2.load_state_dict(state)
            assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    # reports at t=5 (warm-up: ignored), then 10..35 in the window [10, 40): best at 10; bad at 15, 20 -> halve;
    # bad at 25, 30 -> halve; bad at 35; t=40 on (the cool-down) ignored, the reduced level persists
    levels = sched.state_dict()["plateau"]["state"]["levels"]
    assert levels == [0.1 * 0.5**2]
    assert lrs[9] == 0.1 * s(9) and lrs[12] == 0.1 and lrs[45] == levels[0] * s(45)


def test_divergence_guard_keeps_nan_out_of_the_weights() -> None:
    model, opt = _model(1)
    sched = LRScheduler(opt, "constant()", guard=DivergenceGuard(window=3, spike=4.0, factor=0.5))
    x = torch.randn(4, 3)
    for _ in range(4):
        loss = model(x).pow(2).mean()
        loss.backward()
        assert sched.check(loss)
        opt.step()
        opt.zero_grad()
        sched.step()
    before = [p.detach().clone() for p in model.parameters()]
    loss = model(x).pow(2).mean() * float("nan")
    loss.backward()
    with pytest.warns(UserWarning, match=r"divergence guard: skipped the update at t=4: the loss is NaN; LR "
                                         r"multiplier now 0\.5"):
        assert not sched.check(loss)
    opt.step()  # stepped anyway (a framework that always steps): nothing reaches the weights
    sched.step()
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert sched.t == 4.0 and sched.get_last_lr() == [0.05]
    event = sched.guard_events[-1]
    assert (event.kind, event.t, event.scale) == ("nan", 4.0, 0.5)
    loss = model(x).pow(2).mean() * 100  # a spike: 100x the recent mean
    loss.backward()
    with pytest.warns(UserWarning, match="the loss spiked to"):
        assert not sched.check(loss) and sched.guard_events[-1].kind == "spike"
    opt.zero_grad()
    sched.step()
    assert sched.get_last_lr() == [0.025] and sched.t == 4.0
    loss = model(x).pow(2).mean()
    loss.backward()
    assert sched.check(loss)
    opt.step()
    sched.step()
    assert sched.t == 5.0 and not all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    state = sched.state_dict()["guard"]["state"]
    assert state["scale"] == 0.25 and state["skipped"] == 2


def test_guard_events_are_bounded_and_each_skip_is_warned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lt, "GUARD_EVENTS_KEPT", 3)
    _, opt = _model(1)
    sched = LRScheduler(opt, "constant()", guard=DivergenceGuard(max_skips=0, factor=0.5))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # the default filter: repeated skips must still show
        for _ in range(5):
            assert not sched.check(float("nan"))
    assert [str(w.message).split(";")[1] for w in caught] == [
        f" LR multiplier now {0.5**k:g} ({k} skipped so far)" for k in range(1, 6)]
    assert [e.scale for e in sched.guard_events] == [0.5**3, 0.5**4, 0.5**5]  # the most recent 3
    assert sched.state_dict()["guard"]["state"]["skipped"] == 5


def _amp_guard_run(use_scaler: bool, inf_at: int = -1) -> tuple[LRScheduler, torch.amp.GradScaler, list[bool]]:
    """fp16-style overflow: a GradScaler whose initial scale overflows the scaled gradients for the first updates."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    sched = LRScheduler(opt, "constant()", guard=DivergenceGuard(window=3, spike=1e6, max_skips=3))
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**126)  # |grad| ~ 40: 40 * 2**126 > float32 max
    x = torch.full((4, 3), 4.0)
    decisions = []
    for i in range(10):
        loss = model(x).pow(2).mean()
        if i == inf_at:
            loss = loss * float("inf")
        scaler.scale(loss).backward()
        ok = sched.check(loss, scaler=scaler) if use_scaler else sched.check(loss)
        decisions.append(ok)
        if ok:
            scaler.step(opt)
        scaler.update()  # records the scaler's own skip; valid after check() unscaled
        opt.zero_grad()
        sched.step()
        assert all(torch.isfinite(p).all() for p in model.parameters())
    return sched, scaler, decisions


def test_guard_with_a_grad_scaler_leaves_fp16_overflow_to_the_scaler() -> None:
    sched, scaler, decisions = _amp_guard_run(use_scaler=True)
    assert decisions == [True] * 10 and list(sched.guard_events) == []
    assert scaler.get_scale() == 2.0**124  # the scaler skipped two overflowing updates and halved twice
    assert sched.t == 8.0 and sched.get_last_lr() == [0.01]  # no LR reduction; the clock held at the skips
    assert sched.state_dict()["guard"]["state"]["skipped"] == 0


def test_guard_with_a_grad_scaler_still_catches_an_inf_loss() -> None:
    with pytest.warns(UserWarning, match="the loss is infinite"):
        sched, _, decisions = _amp_guard_run(use_scaler=True, inf_at=5)
    assert decisions == [True] * 5 + [False] + [True] * 4
    assert [e.kind for e in sched.guard_events] == ["inf"] and sched.get_last_lr() == [0.005]
    assert sched.t == 7.0  # 2 scaler skips, 1 guard skip


def test_guard_without_the_scaler_misreads_scaled_gradients() -> None:
    """Why scaler= exists: the scaled gradient norm is inf, so the guard vetoes what GradScaler would absorb."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(AssertionError, match="No inf checks were recorded"):
            _amp_guard_run(use_scaler=False)  # vetoed: scaler.step never ran, so scaler.update() refuses


def test_guard_accepts_gradients_the_caller_already_unscaled() -> None:
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    sched = LRScheduler(opt, "constant()", guard=DivergenceGuard())
    scaler = torch.amp.GradScaler("cpu")
    loss = model(torch.randn(4, 3)).pow(2).mean()
    scaler.scale(loss).backward()
    scaler.unscale_(opt)
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    assert sched.check(loss, scaler=scaler) and sched.check(loss, grad_norm=norm, scaler=scaler)
    scaler.step(opt)
    with pytest.raises(LrlabError, match=r"check\(loss, scaler=\.\.\.\) goes before scaler.step"):
        sched.check(loss, scaler=scaler)
    with pytest.raises(LrlabError, match=r"scaler must be a torch\.amp\.GradScaler, got float"):
        sched.check(loss, scaler=1.0)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------ layer-wise decay


class _Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(10, 4)
        self.blocks = torch.nn.ModuleList([torch.nn.Sequential(torch.nn.LayerNorm(4), torch.nn.Linear(4, 4))
                                           for _ in range(3)])
        self.norm = torch.nn.LayerNorm(4)
        self.head = torch.nn.Linear(4, 10, bias=False)


def test_layerwise_groups() -> None:
    model = _Tiny()
    groups = layerwise_groups(model, model.blocks, lr=1e-3, decay=0.5, weight_decay=0.1)
    summary = [(g["layer"], g["weight_decay"], len(g["params"])) for g in groups]
    assert summary == [(0, 0.1, 1), (1, 0.1, 1), (1, 0.0, 3), (2, 0.1, 1), (2, 0.0, 3), (3, 0.1, 1), (3, 0.0, 3),
                       (4, 0.1, 1), (4, 0.0, 2)]
    assert [g["lr"] for g in groups[::2]] == [1e-3 * 0.5**4, 1e-3 * 0.5**3, 1e-3 * 0.5**2, 1e-3 * 0.5, 1e-3]
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    opt = torch.optim.AdamW(groups)
    emb_warmup = "warmup(20) >> cosine(80)"
    sched = LRScheduler(opt, [emb_warmup if g["layer"] == 0 else "warmup(5) >> cosine(95)" for g in groups])
    assert len(sched._evals) == 2
    for _ in range(10):
        model.head(model.norm(model.emb(torch.tensor([1, 2])))).sum().backward()
        opt.step()
        opt.zero_grad()
        sched.step()
    assert sched.get_last_lr()[0] == 1e-3 * 0.5**4 * lrlab.parse(emb_warmup)(10)
    with pytest.raises(LrlabError, match=r"decay must be in \(0, 1\], got 1.5"):
        layerwise_groups(model, model.blocks, lr=1e-3, decay=1.5)
    with pytest.raises(LrlabError, match="not part of the model"):
        layerwise_groups(model, [torch.nn.Linear(2, 2)], lr=1e-3, decay=0.5)


def test_doctests() -> None:
    assert doctest.testmod(lt, optionflags=doctest.ELLIPSIS).failed == 0


# ---------------------------------------------------------------------------------------------- saved states

#: state dicts written by lrlab 0.1.0 before the clock moved to `lrlab.clock` (steps; epochs resumed at a new
#: rate, so with an anchor; tokens with pending tokens and `also`; samples with plateau and guard state)
SAVED_STATES = Path(__file__).parent / "data" / "torch_states_v1.json"


@pytest.mark.parametrize("case", ["steps", "epochs", "tokens", "samples"])
def test_a_state_saved_by_an_earlier_version_loads_and_continues(case: str) -> None:
    saved = json.loads(SAVED_STATES.read_text())[case]
    build = dict(saved["build"])
    n_groups = build.pop("groups", 1)
    if "plateau" in build:
        build["plateau"] = Plateau(**build["plateau"])
    if "guard" in build:
        build["guard"] = DivergenceGuard(**build["guard"])
    params = [torch.nn.Parameter(torch.zeros(2)) for _ in range(n_groups)]
    opt = torch.optim.SGD([{"params": [p], "lr": 0.1 * (i + 1)} for i, p in enumerate(params)], lr=0.1, momentum=0.9)
    sched = LRScheduler(opt, build.pop("schedule"), **build)
    sched.load_state_dict(saved["state"])
    assert sched.get_last_lr() == saved["lrs"]
    assert sched.state_dict() == saved["state"]
    clock = saved["build"].get("clock", "steps")
    amount = {"tokens": {"tokens": 256}, "samples": {"samples": 32}}.get(clock, {})
    for expected in saved["after"]:
        opt.step()
        sched.step(**amount)
        assert sched.get_last_lr() == expected


@pytest.mark.parametrize("old", ["onecycle(total=100)", "warmup(10, end=1) >> linear(90, start=1, end=0.1)",
                                 "cyclic(low=0.2, high=1, up=10, total=100)"],
                         ids=["onecycle", "start-end", "low-high"])
def test_a_state_saved_with_old_spellings_loads(old: str) -> None:
    # states written before the one-vocabulary change hold the old names; they are the same schedule
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = LRScheduler(opt, lrlab.parse(old, total=100))
    state = sched.state_dict()
    assert state["spec"] != old  # written in the new spelling
    state["spec"] = old
    for _ in range(3):
        opt.step()
        sched.step()
    sched.load_state_dict(state)
    assert sched.updates == 0


# ------------------------------------------------------------------------------------------------ drop-in (#13)


def test_accelerate_optimizer_wrapped_before_the_scheduler_is_built() -> None:
    """Accelerate's AcceleratedOptimizer has no hook registry of its own (transformers builds its scheduler after
    accelerator.prepare): the scheduler hooks the optimizer inside; accumulation micro-batches do not count."""
    from accelerate import Accelerator

    model, opt = _model(1)
    acc = Accelerator(cpu=True, gradient_accumulation_steps=2)
    model, opt = acc.prepare(model, opt)
    assert not hasattr(opt, "_optimizer_step_post_hooks")
    sched = LRScheduler(opt, "warmup(2) >> cosine(8)")
    assert sched.hooked is opt.optimizer
    lrs = []
    for _ in range(10):  # 10 micro-batches: 5 updates
        with acc.accumulate(model):
            lrs.append(opt.param_groups[0]["lr"])
            acc.backward(model(torch.randn(2, 3)).sum())
            opt.step()
            sched.step()
            opt.zero_grad()
    expected = 0.1 * lrlab.parse("warmup(2) >> cosine(8)").values(np.arange(5))
    assert lrs == [float(x) for x in np.repeat(expected, 2)]
    assert sched.updates == 5


def test_an_optimizer_without_step_hooks_counts_each_step_call() -> None:
    """A wrapper with no torch optimizer inside (DeepSpeed's ZeRO optimizers): its engine calls step() once per
    update it makes, so each call is one update."""

    class Wrapper:
        def __init__(self) -> None:
            self.param_groups = [{"params": [], "lr": 0.5}]

    w = Wrapper()
    sched = LRScheduler(w, "linear(4)")
    assert sched.hooked is None
    seen = []
    for _ in range(5):
        seen.append(w.param_groups[0]["lr"])
        sched.step()
    assert seen == [0.5, 0.375, 0.25, 0.125, 0.0]


def test_compat_schedules_hold_lrs_and_set_them_as_they_are() -> None:
    """hf.get_cosine_schedule_with_warmup(3e-4, ...) holds LRs: multiplied by the optimizer's 3e-4 it would peak at
    9e-8; the scheduler reads the compat mark and sets lr = s(t)."""
    from lrlab.compat import hf, holds_lrs
    from lrlab.compat import torch as ct

    s = hf.get_cosine_schedule_with_warmup(3e-4, 10, 100)
    assert holds_lrs(s) and not holds_lrs(lrlab.parse(str(s)))
    _, opt = _model(1, lrs=(3e-4,))
    sched = LRScheduler(opt, s)
    assert sched.absolute is True
    lrs = [lr for (lr,) in _train(*_model_like(opt), sched, 12)]
    assert max(lrs) == pytest.approx(3e-4, rel=1e-12)
    assert lrs == [s(t) for t in range(12)]
    # explicit absolute=False with a compat schedule, or a mix of LRs and multipliers: refused, saying why
    with pytest.raises(LrlabError, match=r"holds learning rates .* absolute=False"):
        LRScheduler(_model(1, lrs=(3e-4,))[1], s, absolute=False)
    with pytest.raises(LrlabError, match="give all of one kind"):
        LRScheduler(_model(2)[1], [ct.StepLR(0.1, 5), "constant()"])
    # per-group compat lists (torch's CyclicLR takes its LRs as arguments)
    both = LRScheduler(_model(2)[1], ct.CyclicLR([0.01, 0.02], [0.1, 0.2], step_size_up=4))
    assert both.get_last_lr() == [0.01, 0.02]


def _model_like(opt: torch.optim.Optimizer) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """A model whose parameters are `opt`'s (the 1-group `_model` layout)."""
    model = torch.nn.Sequential(torch.nn.Linear(3, 3))
    with torch.no_grad():
        model[0].weight = opt.param_groups[0]["params"][0]
        model[0].bias = opt.param_groups[0]["params"][1]
    return model, opt


def test_a_schedule_of_lrs_read_as_multipliers_is_refused_or_warned() -> None:
    # peaks at the group's own LR: LR^2, refused
    with pytest.raises(LrlabError, match=r"peaks at 0.0003, param group 0's own LR.*would peak at 9e-08"):
        LRScheduler(_model(1, lrs=(3e-4,))[1], "warmup(10) >> cosine(90, peak=0.0003)")
    # never above 0.01: the LR stays under 1% of the optimizer's; a warning
    with pytest.warns(UserWarning, match=r"never exceeds 0.001.*LR peaks at 3e-07"):
        LRScheduler(_model(1, lrs=(3e-4,))[1], "cosine(100, peak=0.001)")
    # base LR 1.0 (Prodigy, D-Adaptation): base * s == s, nothing to say
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LRScheduler(_model(1, lrs=(1.0,))[1], "cosine(100, peak=0.001)")


def test_stepping_once_per_epoch_still_gives_every_update_its_lr() -> None:
    """Lightning's default interval='epoch' (a dict without lrlab's helper) calls step() once per epoch: the LRs
    are written by the optimizer's post-step hook, so every update gets its own LR, not a staircase."""
    model, opt = _model(1)
    sched = LRScheduler(opt, "warmup(24) >> cosine(48)")
    used: list[float] = []  # read inside optimizer.step(), after the scheduler's own pre-step hook
    opt.register_step_pre_hook(lambda o, args, kwargs: used.append(o.param_groups[0]["lr"]))
    seen = []
    for _epoch in range(3):
        for _ in range(24):
            seen.append(opt.param_groups[0]["lr"])
            model(torch.randn(2, 3)).sum().backward()
            opt.step()
            opt.zero_grad()
        sched.step()
    expected = [0.1 * v for v in lrlab.parse("warmup(24) >> cosine(48)").values(np.arange(72))]
    assert used == expected
    # the scheduler notices at update 1 (no step() after update 0); from then on the LRs are visible between
    # updates too (what Lightning's LearningRateMonitor reads)
    assert seen[2:] == expected[2:] and seen[1] == expected[0]
    assert sched.state_dict()["t"] == 72.0 and sched.updates == 72
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one step() per epoch is not idle
        for _ in range(150):
            model(torch.randn(2, 3)).sum().backward()
            opt.step()
            sched.step()
    with pytest.warns(UserWarning, match="100 times in a row without an optimizer update"):
        for _ in range(100):
            sched.step()
    # a token clock needs the tokens of each update: one step() covering many updates warns once
    model, opt = _model(1)
    tok = LRScheduler(opt, "cosine(1000)", clock="tokens")
    for _ in range(3):
        model(torch.randn(2, 3)).sum().backward()
        opt.step()
    with pytest.warns(UserWarning, match=r"took in 3 optimizer updates at once.*interval='step'"):
        tok.step(tokens=96)
    assert tok.t == 96.0
