"""`lrlab.timm.TimmScheduler` beside timm's own schedulers, driven by timm's ``train.py`` loop.

The loop is ``train.py``'s: LR read at each update, ``step_update(num_updates=n)`` after the n-th update,
``step(epoch + 1, metric)`` after each epoch. A real timm scheduler and the lrlab one (built from the same
configuration through `lrlab.compat.timm`) run side by side on two optimizers with the same param groups; the
LRs agree at ``rel=1e-12``.
"""

from __future__ import annotations

import inspect
import io
from typing import Any

import numpy as np
import pytest
import torch

import lrlab
from lrlab import LrlabError
from lrlab.compat import timm as ct
from lrlab.timm import TimmScheduler, create_scheduler

LRS = [0.1, 0.03]
EPOCHS, UPDATES = 12, 5


def optimizer(lr_scale: float | None = None) -> torch.optim.Optimizer:
    groups: list[dict[str, Any]] = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in LRS]
    if lr_scale is not None:
        groups[1]["lr_scale"] = lr_scale
    return torch.optim.SGD(groups, lr=LRS[0])


def train_loop(sched: Any, opt: torch.optim.Optimizer, epochs: int = EPOCHS, updates: int = UPDATES,
               start_epoch: int = 0) -> list[list[float]]:
    """timm train.py's calls: the LRs of every group in effect for each update."""
    seen = []
    num_updates = start_epoch * updates
    for epoch in range(start_epoch, epochs):
        for _ in range(updates):
            seen.append([g["lr"] for g in opt.param_groups])
            opt.step()
            num_updates += 1
            sched.step_update(num_updates=num_updates, metric=0.5)
        sched.step(epoch + 1, 0.25)
    return seen


COSINE = {"t_initial": 10, "lr_min": 1e-3, "warmup_t": 3, "warmup_lr_init": 1e-4}
CASES = [
    ("cosine", "cosine_lr", "CosineLRScheduler", COSINE),
    ("cosine-restarts", "cosine_lr", "CosineLRScheduler", {**COSINE, "cycle_limit": 3, "cycle_decay": 0.5}),
    ("step", "step_lr", "StepLRScheduler", {"decay_t": 4, "decay_rate": 0.5, "warmup_t": 2}),
    ("poly", "poly_lr", "PolyLRScheduler", {"t_initial": 30, "power": 2.0, "lr_min": 1e-4}),
]


@pytest.mark.parametrize("lr_scale", [None, 0.5], ids=["plain", "lr_scale"])
@pytest.mark.parametrize("t_in_epochs", [True, False], ids=["epochs", "updates"])
@pytest.mark.parametrize(("module", "cls", "kwargs"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_matches_timm_side_by_side(timm_scheduler: Any, module: str, cls: str, kwargs: dict[str, Any],
                                   t_in_epochs: bool, lr_scale: float | None) -> None:
    if not t_in_epochs:  # the same shape over updates: lengths in updates
        kwargs = {k: v * UPDATES if k in ("t_initial", "warmup_t", "decay_t") else v for k, v in kwargs.items()}
    timm_opt, ours_opt = optimizer(lr_scale), optimizer(lr_scale)
    peer = timm_scheduler(module, cls)(timm_opt, t_in_epochs=t_in_epochs, **kwargs)
    # timm's warmup_lr_init is absolute for every group: one absolute schedule per group (lrlab.compat.timm's list)
    ours = TimmScheduler(ours_opt, getattr(ct, cls)(LRS, t_in_epochs=t_in_epochs, **kwargs), t_in_epochs=t_in_epochs,
                         absolute=True)
    first = [g["lr"] for g in ours_opt.param_groups]
    np.testing.assert_allclose(first, [g["lr"] for g in timm_opt.param_groups], rtol=1e-12, atol=0)
    np.testing.assert_allclose(train_loop(ours, ours_opt), train_loop(peer, timm_opt), rtol=1e-12, atol=0)
    assert ours.metric == 0.25 and peer.metric == 0.25


@pytest.mark.parametrize("t_in_epochs", [True, False], ids=["epochs", "updates"])
def test_per_group_base_values_and_lr_scale_like_timm(timm_scheduler: Any, t_in_epochs: bool) -> None:
    """A factor schedule multiplies each group's initial LR, then its lr_scale, in timm's order."""
    n = EPOCHS if t_in_epochs else EPOCHS * UPDATES
    timm_opt, ours_opt = optimizer(0.5), optimizer(0.5)
    peer = timm_scheduler("cosine_lr", "CosineLRScheduler")(timm_opt, t_initial=n, t_in_epochs=t_in_epochs)
    ours = TimmScheduler(ours_opt, "cosine()", total=n, t_in_epochs=t_in_epochs)
    np.testing.assert_allclose(train_loop(ours, ours_opt), train_loop(peer, timm_opt), rtol=1e-12, atol=1e-18)
    assert ours.base_values == peer.base_values == LRS


def test_same_protocol_as_timm_scheduler(timm_scheduler: Any) -> None:
    base = inspect.getmro(timm_scheduler("cosine_lr", "CosineLRScheduler"))[1]
    assert base.__name__ == "Scheduler"
    for name in ("step", "step_update", "state_dict", "load_state_dict", "update_groups"):
        theirs = list(inspect.signature(getattr(base, name)).parameters)
        mine = list(inspect.signature(getattr(TimmScheduler, name)).parameters)
        assert mine == theirs, name
    opt = optimizer()
    s = TimmScheduler(opt, "cosine(10)", t_in_epochs=True)
    for attr in ("optimizer", "param_group_field", "base_values", "metric", "t_in_epochs"):
        assert hasattr(s, attr), attr


def test_t_in_epochs_decides_which_call_moves_the_lr() -> None:
    opt = optimizer()
    s = TimmScheduler(opt, "linear(10)", t_in_epochs=True)
    s.step_update(num_updates=5)
    assert opt.param_groups[0]["lr"] == 0.1 and s.t == 0.0
    s.step(5)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05) and s.t == 5.0
    u = TimmScheduler(optimizer(), "linear(10)", t_in_epochs=False)
    u.step(3)
    assert u.t == 0.0
    u.step_update(num_updates=3)
    assert u.t == 3.0


@pytest.mark.parametrize("t_in_epochs", [True, False], ids=["epochs", "updates"])
def test_resume_from_state_dict_continues_exactly(t_in_epochs: bool) -> None:
    spec = "warmup(0.1) >> cosine(floor=0.05)"
    n = EPOCHS if t_in_epochs else EPOCHS * UPDATES
    opt = optimizer()
    straight = train_loop(TimmScheduler(opt, spec, total=n, t_in_epochs=t_in_epochs), opt)
    first_opt = optimizer()
    first = TimmScheduler(first_opt, spec, total=n, t_in_epochs=t_in_epochs)
    head = train_loop(first, first_opt, epochs=5)
    buf = io.BytesIO()
    torch.save(first.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    rest_opt = optimizer()
    rest = TimmScheduler(rest_opt, spec, total=n, t_in_epochs=t_in_epochs)
    rest.load_state_dict(state)
    assert head + train_loop(rest, rest_opt, start_epoch=5) == straight


@pytest.mark.parametrize(("change", "message"), [
    ({"spec": "cosine(10)"}, "different spec"),
    ({"t_in_epochs": False}, "different t_in_epochs"),
    ({"base_values": [1.0, 1.0]}, "different base_values"),
], ids=["spec", "unit", "base"])
def test_load_refuses_another_run(change: dict[str, Any], message: str) -> None:
    s = TimmScheduler(optimizer(), "linear(10)", t_in_epochs=True)
    with pytest.raises(LrlabError, match=message):
        s.load_state_dict({**s.state_dict(), **change})


def test_load_refuses_a_timm_state(timm_scheduler: Any) -> None:
    peer = timm_scheduler("cosine_lr", "CosineLRScheduler")(optimizer(), t_initial=10)
    with pytest.raises(LrlabError, match="timm scheduler's state"):
        TimmScheduler(optimizer(), "linear(10)", t_in_epochs=True).load_state_dict(peer.state_dict())


@pytest.mark.parametrize(("make", "message"), [
    (lambda: TimmScheduler(optimizer(), "cosine()", t_in_epochs=True), "pass total=N (epochs in the run)"),
    (lambda: TimmScheduler(optimizer(), "cosine()", t_in_epochs=False), "optimizer updates in the run"),
    (lambda: TimmScheduler(optimizer(), "cosine(10)", t_in_epochs=1), "t_in_epochs must be True or False"),
    (lambda: TimmScheduler(optimizer(), "cosine(10)", t_in_epochs=True, param_group_field="beta"), "'beta'"),
    (lambda: TimmScheduler("sgd", "cosine(10)", t_in_epochs=True), "torch.optim.Optimizer"),
    (lambda: TimmScheduler(optimizer(), "cosine(10)", t_in_epochs=True).step(-1), "epoch must be >= 0"),
    (lambda: TimmScheduler(optimizer(), "cosine(10)", t_in_epochs=False).step_update(float("nan")),
     "num_updates must be a finite number"),
    (lambda: create_scheduler(optimizer(), "cosine()", num_epochs=10, sched_on_updates=True), "updates_per_epoch"),
], ids=["open-epochs", "open-updates", "flag", "field", "optimizer", "negative-epoch", "nan-update",
        "updates-per-epoch"])
def test_invalid_input_raises(make: Any, message: str) -> None:
    with pytest.raises(LrlabError) as info:
        make()
    assert message in str(info.value)


def test_create_scheduler_binds_the_run_like_create_scheduler_v2() -> None:
    opt = optimizer()
    s, epochs = create_scheduler(opt, "warmup(0.1) >> cosine()", num_epochs=10, updates_per_epoch=20,
                                 sched_on_updates=True)
    assert epochs == 10 and not s.t_in_epochs
    assert s.schedules == (lrlab.parse("warmup(0.1) >> cosine()", total=200),) * len(LRS)
    e, _ = create_scheduler(optimizer(), "warmup(0.1) >> cosine()", num_epochs=10)
    assert e.t_in_epochs and e.schedules[0] == lrlab.parse("warmup(0.1) >> cosine()", total=10)


def test_doctests() -> None:
    import doctest

    import lrlab.timm

    result = doctest.testmod(lrlab.timm, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
