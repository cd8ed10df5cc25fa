"""`lrlab.optax` / `lrlab.jax_schedules`: lrlab schedules as jax.numpy functions of the step.

Every family and composite is compared with lrlab's own float64 values (``jax_enable_x64``, scoped to each test):
on the array path, under ``vmap`` and at single jitted steps. Cases marked exact agree to the last bit; the
others use ``exp``/``log``/``pow``/``tanh``, which XLA computes with its own approximations, and agree at
``rel=1e-12`` (the largest difference is printed by `test_largest_difference_is_a_few_ulps`). Then: ``jax.jit``,
``jax.export`` round trips, ``jax.grad`` with respect to the schedule's parameters, and optax optimizers.
"""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Iterator
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lrlab
import lrlab.optax
from lrlab import LrlabError
from lrlab.compat import optax as compat_optax
from lrlab.jax_schedules import evaluate, parameters
from lrlab.schedule import Schedule


@pytest.fixture(autouse=True)
def _jax_x64() -> Iterator[None]:
    """float64 for each test only: the flag does not leak into other modules."""
    with jax.enable_x64(True):
        yield


REL = 1e-12

# (id, spec, total, exact to the last bit)
CASES: list[tuple[str, str, int, bool]] = [
    ("constant", "constant(0.5)", 20, True),
    ("step", "step(7, factor=0.5, peak=0.1)", 60, True),
    ("step-pow", "step(7, factor=0.3)", 60, False),
    ("step-fractional-every", "step(2.5, factor=0.5)", 30, True),
    ("multi-step", "multi_step([10, 30], factor=0.25)", 50, True),
    ("exponential-gamma", "exponential(0.97)", 100, False),
    ("exponential-rate-staircase", "exponential(rate=0.3, every=7, staircase=true)", 100, False),
    ("linear", "linear(100, peak=0.9, floor=0.05)", 120, True),
    ("linear-rising", "linear(30, peak=0.1, floor=1)", 40, True),
    ("polynomial", "polynomial(80, power=2, floor=0.01)", 100, False),
    ("polynomial-k", "polynomial(80, power=1.5, k=2, floor=0.01)", 100, False),
    ("polynomial-k-half", "polynomial(80, k=0.5)", 100, False),
    ("cosine", "cosine(floor=0.1)", 100, True),
    ("cosine-periodic-cycles", "cosine(total=50, cycles=1.5, periodic=true)", 120, True),
    ("cosine-exponent", "cosine(exponent=2)", 100, False),
    ("cosine-restarts", "cosine_restarts(10, floor=0.01)", 100, True),
    ("cosine-restarts-mult-decay-limit", "cosine_restarts(10, mult=2, decay=0.5, limit=3)", 120, False),
    ("cosine-restarts-mult-1.5", "cosine_restarts(7, mult=1.5, floor=0.02)", 200, False),
    ("cosine-restarts-k", "cosine_restarts(30, k=2, limit=1)", 50, False),
    ("tanh", "tanh(50, lb=-4, ub=4, floor=0.01)", 80, False),
    ("tanh-restarts", "tanh(20, mult=2, decay=0.7, limit=4)", 250, False),
    ("inverse-sqrt", "inverse_sqrt(100)", 500, True),
    ("inverse-sqrt-power", "inverse_sqrt(100, power=0.3)", 500, False),
    ("noam", "noam(512, 40)", 200, False),
    ("warmup-linear", "warmup(20, floor=0.1, peak=0.9)", 30, True),
    ("warmup-cosine", "warmup(20, shape=cosine)", 30, True),
    ("warmup-sqrt", "warmup(20, shape=sqrt)", 30, True),
    ("warmup-exponential", "warmup(20, shape=exponential)", 30, False),
    ("warmup-zero", "warmup(0) >> cosine(50)", 60, True),
    ("warmup-beta2", "warmup(beta2=0.9) >> cosine(50)", 80, True),
    ("cooldown-linear", "cooldown(40, shape=linear, floor=0.1)", 50, True),
    ("cooldown-cosine", "cooldown(40, shape=cosine, cycles=1)", 50, True),
    ("cooldown-sqrt", "cooldown(40)", 50, True),
    ("cooldown-power", "cooldown(40, shape=power, power=2)", 50, False),
    ("cooldown-exp", "cooldown(40, shape=exp, ratio=0.05)", 50, False),
    ("one-cycle", "one_cycle(100)", 110, True),
    ("one-cycle-three-phase-linear", "one_cycle(100, three_phase=true, shape=linear, initial=0.2, floor=0.01)",
     110, True),
    ("cyclic", "cyclic(floor=0.1, peak=1, up=10, down=5)", 100, True),
    ("cyclic-triangular2", "cyclic(floor=0.1, peak=1, up=10, mode=triangular2)", 100, True),
    ("cyclic-exp-range", "cyclic(floor=0.1, peak=1, up=10, mode=exp_range, gamma=0.99)", 100, False),
    ("piecewise-constant", "piecewise([10, 50], levels=[1, 0.5, 0.1])", 60, True),
    ("piecewise-linear", "piecewise([0, 10, 50], levels=[0.1, 1, 0], shape=linear)", 60, True),
    ("piecewise-cosine", "piecewise([5, 20, 50], levels=[0.1, 1, 0.2], shape=cosine)", 60, True),
    ("join-warmup-cosine", "warmup(0.1) >> cosine(floor=0.1)", 100, True),
    ("join-three", "warmup(10) >> constant(total=0.5) >> cooldown(shape=sqrt)", 100, True),
    ("wsd", "wsd(warmup=0.05, decay=0.2)", 200, True),
    ("overlay", "overlay(warmup(10), cosine_restarts(25, mult=2, limit=2))", 100, True),
    ("product", "0.5 * cosine() * linear(peak=1, floor=0.5)", 100, True),
    ("sum", "sum(constant(0.1), cosine(peak=0.9))", 100, True),
    ("shift", "shift(cosine(100), by=10)", 100, True),
    ("clamp", "clamp(exponential(1.05), max=3)", 60, False),
    ("clamp-min", "clamp(cosine(), min=0.2)", 100, True),
    ("repeat", "repeat(linear(10), 3)", 40, True),
    ("repeat-forever", "repeat(warmup(5) >> cosine(15), 0)", 100, True),
]

_SCHEDULES = {i: lrlab.parse(spec, total=total) for i, spec, total, _ in CASES}


def _clocks(total: int) -> np.ndarray:
    """Every update of the run and past its end, and fractional clocks (epoch or token clocks)."""
    return np.concatenate([np.arange(total + 20, dtype=np.float64), np.linspace(0.0, total + 3.0, 37)])


def _same(got: np.ndarray, want: np.ndarray, exact: bool, where: str) -> None:
    assert got.dtype == np.float64 and got.shape == want.shape
    if exact:
        bad = np.nonzero(got != want)[0]
        first = f"first at #{bad[0]}: {got[bad[0]]!r} vs {want[bad[0]]!r}" if bad.size else ""
        assert not bad.size, f"{where}: {bad.size} values differ, {first}"
    else:
        np.testing.assert_allclose(got, want, rtol=REL, atol=REL * float(np.abs(want).max()), err_msg=where)


def test_cases_cover_every_family_and_composite() -> None:
    from lrlab.jax_schedules import COMPOSITE_FIELDS, FAMILY_PARAMS

    seen: set[type] = set()
    stack: list[Schedule] = list(_SCHEDULES.values())
    while stack:
        s = stack.pop()
        seen.add(type(s))
        stack.extend(s.children())
    assert seen == set(FAMILY_PARAMS) | set(COMPOSITE_FIELDS)
    # a family added to the spec language needs a jnp formula too
    from lrlab.spec import REGISTRY

    assert set(REGISTRY.values()) == set(FAMILY_PARAMS) | set(COMPOSITE_FIELDS)


@pytest.mark.parametrize(("key", "total", "exact"), [(c[0], c[2], c[3]) for c in CASES], ids=[c[0] for c in CASES])
def test_agrees_with_lrlab_float64(key: str, total: int, exact: bool) -> None:
    s = _SCHEDULES[key]
    ts = _clocks(total)
    want = s.values(ts)
    p = parameters(s)
    # the array path and vmap (a scalar formula batched), compiled together
    arrays, batched = jax.jit(lambda t: (evaluate(s, p, t), jax.vmap(lambda u: evaluate(s, p, u))(t)))(ts)
    _same(np.asarray(arrays), want, exact, f"array path of {s}")
    _same(np.asarray(batched), want, exact, f"vmap of {s}")
    # one jitted step at a time, as optax calls it (int32 count), on a few clocks
    g = jax.jit(lrlab.optax.schedule(s))
    picks = sorted({0, 1, total // 3, total // 2, total - 1, total, total + 5})
    _same(np.array([float(g(jnp.int32(t))) for t in picks]), s.values(np.array(picks)), exact, f"steps of {s}")


def test_largest_difference_is_a_few_ulps() -> None:
    worst = 0.0
    for i, _, total, exact in CASES:
        if exact:
            continue
        s = _SCHEDULES[i]
        ts = _clocks(total)
        want = s.values(ts)
        got = np.asarray(jax.jit(lambda t, s=s: evaluate(s, parameters(s), t))(ts))
        nz = want != 0
        worst = max(worst, float(np.max(np.abs(got[nz] - want[nz]) / np.abs(want[nz]), initial=0.0)))
    print(f"largest relative difference from lrlab's float64 values: {worst:.2e}")
    assert worst < 1e-13


def test_compat_optax_results_agree() -> None:
    """optax-dialect schedules (cut joins, clamps, delays) through the same path."""
    s = compat_optax.join_schedules([compat_optax.linear_schedule(0.0, 0.1, 10),
                                     compat_optax.cosine_decay_schedule(0.1, 100, alpha=0.1),
                                     compat_optax.exponential_decay(0.05, 10, 0.9, end_value=0.01)], [5, 60])
    ts = np.arange(130.0)
    got = np.asarray(jax.jit(lrlab.optax.schedule(s))(ts))
    np.testing.assert_allclose(got, s.values(ts), rtol=REL, atol=0)


def test_float32_without_x64() -> None:
    s = _SCHEDULES["join-warmup-cosine"]
    with jax.enable_x64(False):
        got = np.asarray(jax.jit(lrlab.optax.schedule(s, scale=3e-4))(jnp.arange(120)))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, 3e-4 * s.values(np.arange(120)), rtol=1e-6, atol=1e-12)


def test_export_round_trip() -> None:
    f = lrlab.optax.schedule("warmup(0.1) >> cosine(floor=0.1)", total=1000, scale=3e-4)
    exported = jax.export.export(jax.jit(f))(jax.ShapeDtypeStruct((), jnp.int32))
    again = jax.export.deserialize(exported.serialize())
    for t in (0, 50, 100, 999, 2000):
        assert float(again.call(jnp.int32(t))) == float(f(t)) == 3e-4 * f.schedule(t)
    batched = jax.export.export(jax.jit(f))(jax.ShapeDtypeStruct((7,), jnp.float64))
    ts = jnp.arange(7.0) * 150
    assert np.asarray(jax.export.deserialize(batched.serialize()).call(ts)).tolist() == np.asarray(f(ts)).tolist()


def test_grad_with_respect_to_peak_floor_and_scale() -> None:
    """lr(t) = scale * ((peak - floor) * c + floor) after the warm-up: d/dpeak = scale * c, d/dfloor = scale * (1-c)."""
    f = lrlab.optax.schedule("warmup(10) >> cosine(90, floor=0.1)", scale=3e-4)
    p = f.params()
    assert p == {"scale": 3e-4, "schedule": {"pieces": ({"floor": 0.0}, {"peak": 1.0, "floor": 0.1, "cycles": 0.5})}}
    t = 55
    g = jax.jit(jax.grad(lambda q: f.apply(q, t)))(p)
    c = 0.5 * (1 + np.cos(np.pi * (t - 10) / 90))
    cos = g["schedule"]["pieces"][1]
    assert float(cos["peak"]) == pytest.approx(3e-4 * c, rel=1e-12)
    assert float(cos["floor"]) == pytest.approx(3e-4 * (1 - c), rel=1e-12)
    assert float(g["scale"]) == pytest.approx(f.schedule(t), rel=1e-12)
    assert float(g["schedule"]["pieces"][0]["floor"]) == 0.0  # the warm-up is over
    # inside the warm-up, its ramp reaches the cosine's start: d/dpeak = t / 10
    gw = jax.grad(lambda q: f.apply(q, 4))(p)
    assert float(gw["schedule"]["pieces"][1]["peak"]) == pytest.approx(3e-4 * 0.4, rel=1e-12)


@pytest.mark.parametrize("key", ["wsd", "one-cycle", "cyclic", "piecewise-linear", "tanh", "clamp-min", "product",
                                 "cooldown-exp", "cosine-restarts-mult-decay-limit"])
def test_grad_matches_finite_differences(key: str) -> None:
    s = _SCHEDULES[key]
    p = parameters(s)
    leaves, tree = jax.tree_util.tree_flatten(p)
    ts = jnp.asarray(np.linspace(0.0, float(s.length or 100) * 0.97, 9))

    def total_lr(flat: list[Any]) -> Any:
        return jnp.sum(evaluate(s, jax.tree_util.tree_unflatten(tree, flat), ts))

    grads = jax.grad(total_lr)(leaves)
    h = 1e-6
    for i, x in enumerate(leaves):
        if isinstance(x, tuple):
            continue
        up = [*leaves[:i], x + h, *leaves[i + 1:]]
        down = [*leaves[:i], x - h, *leaves[i + 1:]]
        fd = (float(total_lr(up)) - float(total_lr(down))) / (2 * h)
        assert np.isfinite(float(grads[i]))
        assert float(grads[i]) == pytest.approx(fd, rel=1e-5, abs=1e-7), (key, i)


def test_drives_optax_optimizers_exactly() -> None:
    """optax.sgd with a constant gradient: the weights after each jitted update follow lrlab's LRs exactly."""
    s = lrlab.parse("warmup(0.25) >> cosine(floor=0.1)", total=12)
    f = lrlab.optax.schedule(s, scale=0.5)
    tx = optax.sgd(learning_rate=f)
    w = jnp.zeros(2)
    state = tx.init(w)
    grad = jnp.array([1.0, -2.0])

    @jax.jit
    def update(w: Any, state: Any) -> Any:
        updates, state = tx.update(grad, state, w)
        return optax.apply_updates(w, updates), state

    got, expected, host = [], [], np.zeros(2)
    for t in range(14):
        w, state = update(w, state)
        host = host - 0.5 * s(t) * np.array([1.0, -2.0])
        got.append(np.asarray(w).tolist())
        expected.append(host.tolist())
    assert got == expected
    adam = optax.adamw(learning_rate=lrlab.optax.schedule("warmup(5) >> linear(20)", scale=1e-3))
    st = adam.init(w)
    _, st = jax.jit(adam.update)(grad, st, w)
    assert int(st[0].count) == 1  # the schedule traced inside the jitted optax update


def test_unsupported_class_raises_naming_it() -> None:
    @dataclasses.dataclass(frozen=True, kw_only=True, repr=False)
    class Wobble(Schedule):
        name: ClassVar[str] = "wobble"

        def _values(self, t: np.ndarray) -> np.ndarray:
            return np.sin(t) ** 2

    with pytest.raises(LrlabError, match=r"Wobble .* has no jax.numpy formula"):
        lrlab.optax.schedule(lrlab.families.Cosine(total=10) * Wobble())


def test_value_object() -> None:
    f = lrlab.optax.schedule("warmup(0.1) >> cosine()", total=100, scale=1e-3)
    again = pickle.loads(pickle.dumps(f))
    assert again == f and hash(again) == hash(f)
    assert str(f) == f"0.001 * ({lrlab.parse('warmup(0.1) >> cosine()', total=100)})"
    with pytest.raises(LrlabError, match="pass total=N"):
        lrlab.optax.schedule("cosine()")
    with pytest.raises(LrlabError, match="scale must be a finite number"):
        lrlab.optax.schedule("cosine(10)", scale=float("nan"))


def test_doctests() -> None:
    import doctest

    import lrlab.jax_schedules

    with jax.enable_x64(False):  # the examples show float32 values
        for module in (lrlab.optax, lrlab.jax_schedules):
            result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
            assert result.attempted > 0 and result.failed == 0
