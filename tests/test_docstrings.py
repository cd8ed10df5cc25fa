"""Every docstring example runs, and every family's docstring has the parts the style asks for: the formula,
the arguments, which peer (and which version of it) it matches, and a runnable example."""

from __future__ import annotations

import doctest
import importlib
import re

import pytest

from lrlab import families
from lrlab.spec import REGISTRY

MODULES = ["lrlab", "lrlab.schedule", "lrlab.families", "lrlab.compose", "lrlab.spec", "lrlab.preview"]

FAMILIES = sorted(n for n, cls in REGISTRY.items() if cls.__module__ == families.__name__)
COMPOSITES = sorted(n for n in REGISTRY if n not in FAMILIES)
#: a peer named under ``Matches:`` must carry the version its parity was checked against
PEERS = {"torch": r"torch \d+\.\d+", "HF": r"(HF|transformers) (transformers )?\d+\.(\d+|x)",
         "timm": r"timm \d+\.\d+", "optax": r"optax \d+\.\d+"}


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_every_family_is_checked() -> None:
    assert len(FAMILIES) >= 16 and {"cosine", "noam", "warmup", "one_cycle"} <= set(FAMILIES)
    assert {"join", "overlay", "sum", "shift"} <= set(COMPOSITES)


def _matches(doc: str) -> str:
    """The text of the ``Matches:`` entry, up to the next blank line."""
    after = doc.split("Matches:", 1)[1]
    return " ".join(after.split("\n\n", 1)[0].split())


@pytest.mark.parametrize("name", FAMILIES)
def test_family_docstring_has_formula_args_matches_and_example(name: str) -> None:
    doc = REGISTRY[name].__doc__ or ""
    lines = [line.strip() for line in doc.splitlines()]
    assert any(line.startswith("Formula") or line.startswith(".. math::") for line in lines), "no formula line"
    assert "Args:" in doc, "no Args"
    assert "Matches:" in doc, "no Matches: entry (write 'Matches: none' for an lrlab-only family)"
    assert any(line.startswith(">>>") for line in lines), "no >>> example"
    matches = _matches(doc)
    if matches.startswith("none"):
        return
    named = [peer for peer in PEERS if re.search(rf"\b{peer}\b", matches)]
    assert named, f"Matches: names no peer: {matches!r}"
    for peer in named:
        assert re.search(PEERS[peer], matches), f"Matches: names {peer} without its version: {matches!r}"


@pytest.mark.parametrize("name", COMPOSITES)
def test_composite_docstring_has_an_example(name: str) -> None:
    doc = REGISTRY[name].__doc__ or ""
    assert doc.strip().splitlines()[0], "no summary line"
    assert any(line.strip().startswith(">>>") for line in doc.splitlines())


def test_docstring_check_rejects_a_bare_docstring() -> None:
    """A guard on the check itself: a docstring without the parts fails it."""

    class Bare(families.Constant):
        """A constant."""

    REGISTRY["bare_for_test"] = Bare
    try:
        with pytest.raises(AssertionError):
            test_family_docstring_has_formula_args_matches_and_example("bare_for_test")
    finally:
        del REGISTRY["bare_for_test"]
