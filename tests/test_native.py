"""lrlab.native (`lrlab show --as PEER`): the written code, run against the real peer library, gives the
schedule's LR for every update of the run; what a peer cannot express is refused with the reason.

torch, transformers and Lightning at ``rel=1e-12`` (float64), over two parameter groups where the code takes
its base LRs from the optimizer; timm over one group (its ``lr_min`` and ``warmup_lr_init`` are absolute, one
value for all groups); optax at ``rel=1e-12`` with ``jax_enable_x64`` (float32 otherwise).
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest

import lrlab
from lrlab.errors import LrlabError
from lrlab.native import PEERS, native

N = 1000
BASES = [0.3, 0.05]  # two parameter groups

# spec -> the peers that write it (the others refuse); run over N updates
CASES: list[tuple[str, str]] = [
    ("constant()", "torch hf optax lightning"),
    ("warmup(0.1) >> constant()", "torch hf optax lightning"),
    ("cosine()", "torch hf timm optax lightning"),
    ("warmup(0.06) >> cosine()", "torch hf timm optax lightning"),
    ("warmup(0.06) >> cosine(floor=0.1)", "torch hf timm optax lightning"),
    ("warmup(0.06, floor=0.01) >> cosine(floor=0.1)", "torch timm optax lightning"),
    ("overlay(warmup(50), cosine(floor=0.05))", "torch timm lightning"),
    ("warmup(0.05) >> cosine(exponent=2)", "torch optax lightning"),
    ("linear()", "torch hf timm optax lightning"),
    ("warmup(0.05) >> linear()", "torch hf timm optax lightning"),
    ("warmup(0.05) >> linear(floor=0.1)", "torch timm optax lightning"),
    ("warmup(0.05) >> polynomial(power=2)", "torch hf timm optax lightning"),
    ("warmup(0.05) >> polynomial(power=0.5, floor=0.1)", "torch hf timm optax lightning"),
    ("warmup(0.05) >> polynomial(power=2, k=2)", "torch timm lightning"),
    ("wsd(warmup=0.05, decay=0.2)", "torch hf timm lightning"),
    ("wsd(warmup=0.05, decay=0.2, shape=linear)", "torch hf timm optax lightning"),
    ("wsd(warmup=0.05, decay=0.1, shape=cosine, floor=0.1)", "torch timm optax lightning"),
    ("wsd(decay=0.1, shape=cosine, floor=0.1)", "torch hf timm optax lightning"),
    ("warmup(0.05, shape=cosine) >> constant(total=0.75) >> cooldown(shape=linear)", "torch hf lightning"),
    ("step(0.25, factor=0.5)", "torch timm optax lightning"),
    ("warmup(0.05) >> step(0.25, factor=0.5)", "torch timm optax lightning"),
    ("multi_step([0.5, 0.75])", "torch timm optax lightning"),
    ("warmup(20) >> multi_step([300, 600], factor=0.3)", "torch timm optax lightning"),
    ("exponential(0.995)", "torch optax lightning"),
    ("exponential(0.5, every=100, staircase=true)", "torch optax lightning"),
    ("exponential(rate=0.003)", "torch lightning"),
    ("one_cycle()", "torch lightning"),
    ("one_cycle(pct_start=0.25, shape=linear, three_phase=true, initial=0.1, floor=0.001)", "torch lightning"),
    ("cosine_restarts(0.25)", "torch hf timm optax lightning"),
    ("cosine_restarts(100, mult=2)", "torch timm lightning"),
    ("cosine_restarts(0.2, floor=0.1, decay=0.5)", "torch timm lightning"),
    ("warmup(0.05) >> cosine_restarts(190)", "torch hf timm optax lightning"),
    ("inverse_sqrt(100)", "torch hf lightning"),
    ("warmup(100) >> inverse_sqrt(100)", "torch hf lightning"),
    ("warmup(0.1, shape=exponential) >> cosine()", "torch lightning"),
    ("warmup(0.1) >> constant(total=0.2) >> cosine(floor=0.1) >> constant(0.1)", "torch optax lightning"),
    ("noam(512, 100)", "torch lightning"),
]
IDS = [c[0] for c in CASES]
WRITES = [(spec, peer) for spec, peers in CASES for peer in peers.split()]
REFUSES = [(spec, peer) for spec, peers in CASES for peer in PEERS if peer not in peers.split()]


def want(spec: str, base: float = 1.0) -> np.ndarray:
    return base * lrlab.parse(spec, total=N).values(np.arange(N))


def close(got: np.ndarray, expected: np.ndarray, rel: float = 1e-12) -> None:
    np.testing.assert_allclose(got, expected, rtol=rel, atol=rel * 1e-3 * float(np.max(np.abs(expected))))


def optimizer(bases: list[float]) -> Any:
    import torch

    return torch.optim.SGD([{"params": [torch.zeros(1, requires_grad=True)], "lr": b} for b in bases], lr=bases[0])


def run_torch(sched: Any, opt: Any) -> np.ndarray:
    """LR of each group for updates 0 .. N-1: read, then optimizer.step(), scheduler.step()."""
    out = []
    for _ in range(N):
        out.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    return np.asarray(out)


def execute(code: str, **names: Any) -> dict[str, Any]:
    space = dict(names)
    exec(compile(code, "<lrlab show --as>", "exec"), space)
    return space


@pytest.mark.parametrize(("spec", "peer"), [w for w in WRITES if w[1] == "torch"],
                         ids=[w[0] for w in WRITES if w[1] == "torch"])
def test_torch(spec: str, peer: str) -> None:
    opt = optimizer(BASES)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. torch's "scheduler.step() before optimizer.step()"
        got = run_torch(execute(native(spec, peer, total=N).code, optimizer=opt)["scheduler"], opt)
    for i, b in enumerate(BASES):
        close(got[:, i], want(spec, b))


@pytest.mark.parametrize(("spec", "peer"), [w for w in WRITES if w[1] == "hf"],
                         ids=[w[0] for w in WRITES if w[1] == "hf"])
def test_hf(spec: str, peer: str) -> None:
    opt = optimizer(BASES)
    got = run_torch(execute(native(spec, peer, total=N).code, optimizer=opt)["scheduler"], opt)
    for i, b in enumerate(BASES):
        close(got[:, i], want(spec, b))


@pytest.mark.parametrize(("spec", "peer"), [w for w in WRITES if w[1] == "timm"],
                         ids=[w[0] for w in WRITES if w[1] == "timm"])
def test_timm(spec: str, peer: str, timm_scheduler: Any) -> None:
    code = native(spec, peer, total=N)
    # `import timm` needs torchvision, which cannot be installed here: the classes come from the scheduler files
    modules = {"CosineLRScheduler": "cosine_lr", "PolyLRScheduler": "poly_lr", "StepLRScheduler": "step_lr",
               "MultiStepLRScheduler": "multistep_lr", "WSDLRScheduler": "wsd_lr"}
    (imported,) = [line.split()[-1] for line in code.imports if line.startswith("from timm.scheduler import")]
    opt = optimizer([0.3])
    sched = execute(code.body, optimizer=opt, **{imported: timm_scheduler(modules[imported], imported)})["scheduler"]
    got = []
    for t in range(N):
        sched.step_update(num_updates=t)
        got.append(opt.param_groups[0]["lr"])
    close(np.asarray(got), want(spec, 0.3))


@contextmanager
def _x64() -> Iterator[None]:
    import jax

    with jax.enable_x64(True):
        yield


@pytest.mark.parametrize(("spec", "peer"), [w for w in WRITES if w[1] == "optax"],
                         ids=[w[0] for w in WRITES if w[1] == "optax"])
def test_optax(spec: str, peer: str) -> None:
    import jax
    import jax.numpy as jnp

    code = native(spec, peer, total=N, lr=0.3).code
    with _x64():
        schedule = execute(code)["schedule"]
        got = np.asarray(jax.vmap(schedule)(jnp.arange(N)))
        assert got.dtype == np.float64
    close(got, want(spec, 0.3))
    # without x64 optax computes in float32: a few float32 ulps of the peak
    got32 = np.asarray(jax.vmap(execute(code)["schedule"])(jnp.arange(N)))
    np.testing.assert_allclose(got32, want(spec, 0.3), rtol=1e-6, atol=1e-6 * 0.3)


class _Module:
    """What configure_optimizers uses of a LightningModule: parameters()."""

    def parameters(self) -> Any:
        import torch

        return [torch.zeros(1, requires_grad=True)]


@pytest.mark.parametrize(("spec", "peer"), [w for w in WRITES if w[1] == "lightning"],
                         ids=[w[0] for w in WRITES if w[1] == "lightning"])
def test_lightning_configure_optimizers(spec: str, peer: str) -> None:
    conf = execute(native(spec, peer, total=N, lr=0.3).code)["configure_optimizers"](_Module())
    assert conf["lr_scheduler"]["interval"] == "step"
    got = run_torch(conf["lr_scheduler"]["scheduler"], conf["optimizer"])
    close(got[:, 0], want(spec, 0.3))


def test_lightning_trainer_steps_the_written_scheduler(tmp_path: Any) -> None:
    """The written configure_optimizers in a real Trainer: the LR of each of 60 updates is the schedule's."""
    import pytorch_lightning as pl
    import torch

    spec, n = "warmup(0.1) >> cosine(floor=0.1)", 60
    space = execute(native(spec, "lightning", total=n, lr=0.01).code)
    seen: list[float] = []

    class Model(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)

        def training_step(self, batch: Any, _: int) -> Any:
            return self.layer(batch[0]).pow(2).mean()

        def on_train_batch_start(self, batch: Any, _: int) -> None:
            seen.append(self.trainer.optimizers[0].param_groups[0]["lr"])

        configure_optimizers = space["configure_optimizers"]

    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 2)), batch_size=1)
    trainer = pl.Trainer(max_steps=n, enable_progress_bar=False, logger=False, enable_checkpointing=False,
                         enable_model_summary=False, accelerator="cpu", devices=1, default_root_dir=str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Lightning's advice on workers and logging
        trainer.fit(Model(), data)
    assert len(seen) == n
    np.testing.assert_allclose(seen, 0.01 * lrlab.parse(spec, total=n).values(np.arange(n)), rtol=1e-12, atol=1e-17)


@pytest.mark.parametrize(("spec", "peer"), REFUSES, ids=[f"{p}-{s}" for s, p in REFUSES])
def test_refused_with_the_reason(spec: str, peer: str) -> None:
    with pytest.raises(LrlabError, match=rf"^{re.escape(PEERS[peer])} cannot express .* exactly: "):
        native(spec, peer, total=N)


REASONS = [
    ("hf", "one_cycle()", "transformers has no one_cycle schedule (it has constant, linear, cosine, polynomial, "
                          "inverse_sqrt, cosine with hard restarts and WSD, each after a linear warm-up); --as "
                          "torch writes it"),
    ("hf", "warmup(0.06, floor=0.01) >> cosine()", "transformers' warm-ups rise linearly from 0"),
    ("hf", "cosine(peak=0.5)", "cosine(peak=0.5, total=1000) starts at 0.5, but transformers multiplies the "
                               "optimizer's LR from factor 1"),
    ("optax", "wsd(warmup=0.05, decay=0.2)", "optax has no sqrt decay (cooldown shapes linear and cosine it has)"),
    ("optax", "overlay(warmup(50), cosine())", "it cannot lay a warm-up over a decay (overlay)"),
    ("timm", "cosine_restarts(1, mult=10)", "timm's logarithmic cycle index lands one cycle early on a restart"),
    ("timm", "warmup(10.5) >> cosine()", "the warm-up is 10.5 updates; peers count whole updates"),
    ("torch", "cyclic(up=100)", "the function writer has no cyclic"),
    ("torch", "0.5 * cosine()", "the function writer has no product"),
]


@pytest.mark.parametrize(("peer", "spec", "reason"), REASONS, ids=[f"{r[0]}-{r[1]}" for r in REASONS])
def test_reasons(peer: str, spec: str, reason: str) -> None:
    with pytest.raises(LrlabError) as e:
        native(spec, peer, total=N)
    assert reason in str(e.value)


def test_the_torch_function_is_plain_python() -> None:
    code = native("warmup(0.06) >> cosine(floor=0.1)", "torch", total=N)
    assert code.imports == ("import math", "from torch.optim.lr_scheduler import LambdaLR")
    assert code.body == '''def lr_lambda(step: int) -> float:
    """The factor of the base LR for update `step` (0-based) of
    warmup(60) >> cosine(floor=0.1, total=940)
    """
    t = float(step)
    if t < 60:
        return t / 60
    t -= 60
    return 0.9 * (0.5 * (1.0 + math.cos(min(t / 940, 1.0) * math.pi))) + 0.1


scheduler = LambdaLR(optimizer, lr_lambda)'''
    fn = execute(code.body.split("\n\n\n")[0], math=math)["lr_lambda"]
    assert [fn(t) for t in (0, 30, 60)] == [0.0, 0.5, 1.0]


def test_builtin_where_torch_has_one() -> None:
    assert native("cosine()", "torch", total=N).body == "scheduler = CosineAnnealingLR(optimizer, T_max=1000)"
    assert native("step(0.25, factor=0.5)", "torch", total=N).body == \
        "scheduler = StepLR(optimizer, step_size=250, gamma=0.5)"


def test_absolute_values_use_the_given_lr() -> None:
    code = native("warmup(0.06) >> cosine(floor=0.1)", "timm", total=N, lr=3e-4)
    assert code.body.startswith("lr = 0.0003  # the optimizer's LR\n")
    assert "lr_min=0.1 * lr," in code.body


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"peer": "keras"}, "peer must be one of torch, hf, lightning, optax, timm, got 'keras'"),
    ({"total": 10.5}, "total must be a whole number of updates >= 1"),
    ({"lr": -1.0}, "lr must be a finite number > 0, got -1.0"),
])
def test_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"peer": "torch", "total": 100, **kwargs}
    with pytest.raises(LrlabError, match=re.escape(message)):
        native("cosine()", args.pop("peer"), **args)


def test_docstring_example() -> None:
    import doctest

    import lrlab.native

    assert doctest.testmod(lrlab.native).failed == 0
