"""lrlab.clock.UpdateClock without torch: updates vs micro-batches, pending tokens, epoch anchors, state."""

from __future__ import annotations

import doctest
import pickle
import subprocess
import sys

import pytest

import lrlab.clock as lc
from lrlab import LrlabError
from lrlab.clock import UpdateClock


def _updates(c: UpdateClock, n: int, amount: float = 0.0) -> None:
    for _ in range(n):
        c.update_made()
        assert c.advance(amount) is True


def test_the_module_does_not_import_torch() -> None:
    code = "import sys, lrlab.clock; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_steps_count_updates_not_calls() -> None:
    c = UpdateClock()
    _updates(c, 3)
    assert (c.t, c.updates, c.idle) == (3.0, 3, 0)
    assert c.advance() is False and c.advance() is False  # micro-batches / skipped updates
    assert (c.t, c.updates, c.idle) == (3.0, 3, 2)
    c.update_made()
    c.update_made()  # two updates between calls: both are taken in
    assert c.advance() is True
    assert (c.t, c.updates, c.idle) == (5.0, 5, 0)


@pytest.mark.parametrize("kind", ["tokens", "samples"])
def test_amounts_of_calls_without_an_update_are_counted_at_the_next_update(kind: str) -> None:
    c = UpdateClock(kind)
    for _ in range(3):  # accumulation over 4 micro-batches of 100
        assert c.advance(c.amount(**{kind: 100})) is False
    assert c.pending == 300.0 and c.t == 0.0
    c.update_made()
    assert c.advance(c.amount(**{kind: 100})) is True
    assert (c.t, c.pending, c.stride, c.updates) == (400.0, 0.0, 400.0, 1)


def test_epochs_are_fractional_and_resume_at_a_new_rate() -> None:
    c = UpdateClock("epochs", steps_per_epoch=4)
    _updates(c, 5)
    assert c.t == 1.25
    saved = c.state_dict()
    assert saved == {"clock": "epochs", "t": 1.25, "updates": 5, "steps_per_epoch": 4.0, "epoch_anchor": [0.0, 0]}
    faster = UpdateClock("epochs", steps_per_epoch=2)
    faster.load_state_dict(saved)
    assert faster.anchor == (1.25, 5)
    _updates(faster, 3)
    assert faster.t == 2.75
    same = UpdateClock("epochs", steps_per_epoch=2)
    same.load_state_dict(faster.state_dict())  # same rate: the saved anchor is kept
    assert same.anchor == (1.25, 5) and same.t == 2.75


@pytest.mark.parametrize(
    ("kind", "amount", "expected"),
    [
        ("steps", 0.0, [3.0, 4.0, 5.0, 6.0]),
        ("tokens", 256.0, [768.0, 1024.0, 1280.0, 1536.0]),
    ],
    ids=["steps", "tokens"],
)
def test_ahead_extrapolates_the_next_updates(kind: str, amount: float, expected: list[float]) -> None:
    c = UpdateClock(kind)
    _updates(c, 3, amount)
    assert c.ahead(4).tolist() == expected


def test_ahead_of_the_epoch_clock_is_exactly_what_advance_reaches() -> None:
    c = UpdateClock("epochs", steps_per_epoch=3)
    _updates(c, 2)
    predicted = c.ahead(6).tolist()
    reached = [c.t]
    for _ in range(5):
        _updates(c, 1)
        reached.append(c.t)
    assert predicted == reached


def test_state_round_trip_and_pending_tokens() -> None:
    c = UpdateClock("tokens")
    _updates(c, 2, 10.0)
    c.advance(7.0)
    saved = c.state_dict()
    assert saved == {"clock": "tokens", "t": 20.0, "updates": 2, "pending": 7.0}
    back = UpdateClock("tokens")
    back.load_state_dict(saved)
    assert (back.t, back.updates, back.made, back.pending, back.idle) == (20.0, 2, 2, 7.0, 0)
    back.load_state_dict({"clock": "tokens", "t": 3.0, "updates": 1})  # no "pending": 0
    assert back.pending == 0.0


def test_pickles() -> None:
    c = UpdateClock("samples")
    _updates(c, 2, 8.0)
    back = pickle.loads(pickle.dumps(c))
    assert (back.kind, back.t, back.updates, back.stride) == ("samples", 16.0, 2, 8.0)
    assert repr(back) == "UpdateClock('samples', t=16, updates=2, pending=0)"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: UpdateClock("hours"), "clock must be one of steps, epochs, tokens, samples; got 'hours'"),
        (lambda: UpdateClock("epochs"), "steps_per_epoch goes with clock='epochs'"),
        (lambda: UpdateClock("steps", steps_per_epoch=3), "steps_per_epoch goes with clock='epochs'"),
        (lambda: UpdateClock("epochs", steps_per_epoch=0), "steps_per_epoch must be > 0, got 0"),
        (lambda: UpdateClock("tokens").amount(tokens=-5), "tokens must be >= 0, got -5"),
        (lambda: UpdateClock("tokens").amount(samples=5), r"clock='tokens': call scheduler.step\(tokens=n\)"),
        (lambda: UpdateClock("steps").amount(tokens=5), r"need LRScheduler\(\.\.\., clock='tokens'/'samples'\)"),
        (lambda: UpdateClock("steps").amount(reduce=True), r"step\(reduce=True\) need"),
        (lambda: UpdateClock().load_state_dict({"t": -1.0, "updates": 0}), r"state_dict\['t'\] must be >= 0"),
        (lambda: UpdateClock().load_state_dict({"t": 1.0, "updates": 1.5}),
         r"state_dict\['updates'\] must be a whole number >= 0, got 1.5"),
    ],
    ids=["kind", "epochs-without-rate", "rate-without-epochs", "rate-zero", "negative-tokens", "wrong-amount",
         "amount-on-steps", "reduce-on-steps", "negative-t", "fractional-updates"],
)
def test_errors_name_the_field(build: object, message: str) -> None:
    with pytest.raises(LrlabError, match=message):
        build()  # type: ignore[operator]


def test_doctests() -> None:
    assert doctest.testmod(lc, optionflags=doctest.ELLIPSIS).failed == 0
