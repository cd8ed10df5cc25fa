"""Every family's docstring example runs (and its docstring has the parts the style asks for)."""

from __future__ import annotations

import doctest
import importlib

import pytest

from lrlab.spec import REGISTRY

MODULES = ["lrlab", "lrlab.schedule", "lrlab.families", "lrlab.compose", "lrlab.spec"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


@pytest.mark.parametrize("name", sorted(n for n in REGISTRY if n not in ("join", "overlay", "product", "clamp",
                                                                        "repeat")))
def test_family_docstring_has_formula_args_matches_and_example(name: str) -> None:
    doc = REGISTRY[name].__doc__ or ""
    assert "Formula" in doc or "formula" in doc.lower() or "``" in doc.splitlines()[0]
    assert "Args" in doc and ">>>" in doc
