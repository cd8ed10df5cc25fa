"""preview.py: phases, value tables, where the peak and the minimum are, and the two drawings."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import lrlab
from lrlab.errors import LrlabError
from lrlab.preview import EXACT_LIMIT, Phase, phases, plot_png, plot_terminal, preview, value_table


def test_phases_of_a_join_start_at_each_boundary() -> None:
    s = lrlab.parse("warmup(0.1) >> constant(total=0.5) >> cosine(floor=0.1)", total=1000)
    ph = phases(s, 1000)
    assert [(p.start, p.end) for p in ph] == [(0.0, 100.0), (100.0, 600.0), (600.0, 1000.0)]
    assert [p.spec for p in ph] == ["warmup(100)", "constant(total=500)", "cosine(floor=0.1, total=400)"]
    assert ph[0].formula.startswith("(peak - floor) * f(t / total) + floor with f by shape: linear p")
    assert ph[2].formula.startswith("c = 0.5 * (1 + cos(pi * cycles * 2 * p))")


def test_phases_of_an_overlay_and_of_a_family() -> None:
    s = lrlab.parse("overlay(warmup(5), cosine())", total=50)
    assert [(p.start, p.end, p.spec) for p in phases(s, 50)] == [(0.0, 5.0, "warmup(5)"), (5.0, 50.0, "cosine(50)")]
    assert phases(lrlab.parse("step(10, factor=0.5)"), 40) == [
        Phase(0.0, 40.0, "step(10, factor=0.5)", "peak * factor ** floor(t / every)")]


VALUE_TABLE = [
    ("linear(100)", None, [(0.0, 1.0), (10.0, 0.9), (20.0, 0.8), (30.0, 0.7), (40.0, 0.6), (50.0, 0.5), (60.0, 0.4),
                           (70.0, 0.3), (80.0, 0.2), (90.0, 0.1), (99.0, 0.01), (100.0, 0.0)]),
    ("warmup(0.05) >> linear()", [0, 1, 5, 24, 100], [(0.0, 0.0), (1.0, 0.2), (5.0, 1.0), (24.0, 0.8), (100.0, 0.0)]),
    ("step(25, factor=0.5)", [0, 24, 25, 99], [(0.0, 1.0), (24.0, 1.0), (25.0, 0.5), (99.0, 0.125)]),
]


@pytest.mark.parametrize(("spec", "at", "rows"), VALUE_TABLE, ids=[v[0] for v in VALUE_TABLE])
def test_value_table(spec: str, at: list[float] | None, rows: list[tuple[float, float]]) -> None:
    got = value_table(lrlab.parse(spec), 100, at)
    assert [t for t, _ in got] == [t for t, _ in rows]
    assert [v for _, v in got] == pytest.approx([v for _, v in rows], rel=1e-12, abs=1e-15)


def test_value_table_includes_phase_starts_by_default() -> None:
    clocks = [t for t, _ in value_table(lrlab.parse("warmup(7) >> cosine()"), 100)]
    assert 7.0 in clocks and clocks[0] == 0.0 and clocks[-2:] == [99.0, 100.0]


EXTREMA = [
    # (spec, total, peak_t, peak, min_t, min)
    ("warmup(0.06) >> cosine(floor=0.1)", 1000, 60.0, 1.0, 1000.0, 0.1),
    # a rising schedule: nothing after the peak is lower, so the minimum is the start, not the peak
    ("warmup(100, floor=0.2)", 100, 100.0, 1.0, 0.0, 0.2),
    ("linear(100, peak=0.1, floor=1)", 100, 100.0, 1.0, 0.0, 0.1),
    ("cosine(100)", 100, 0.0, 1.0, 100.0, 0.0),
    ("constant(0.5)", 10, 0.0, 0.5, 0.0, 0.5),
]


@pytest.mark.parametrize(("spec", "total", "peak_t", "peak", "min_t", "minimum"), EXTREMA, ids=[e[0] for e in EXTREMA])
def test_peak_and_minimum(spec: str, total: float, peak_t: float, peak: float, min_t: float, minimum: float) -> None:
    p = preview(lrlab.parse(spec), total)
    assert (p.peak_t, p.min_t) == (peak_t, min_t)
    assert p.peak == pytest.approx(peak, rel=1e-12) and p.min == pytest.approx(minimum, rel=1e-12, abs=1e-15)


def test_a_restart_spike_between_samples_is_found() -> None:
    """A one-update spike at t=1001 falls between 2,000 evenly spread samples of 0..1,000,000; every integer
    clock is evaluated, and the drawn points keep it."""
    s = lrlab.parse("constant(0.1, total=1001) >> constant(0.9, total=1) >> constant(0.1)")
    p = preview(s, 1_000_000)
    assert (p.peak_t, p.peak) == (1001.0, 0.9)
    assert p.t.shape[0] <= 2100 and 1001.0 in p.t.tolist()
    assert p.values[p.t.tolist().index(1001.0)] == 0.9


def test_restart_peaks_of_sgdr_are_drawn() -> None:
    s = lrlab.parse("cosine_restarts(997) >> constant(0)", total=300_000)
    p = preview(s, 300_000)
    drawn = set(p.t.tolist())
    # every cycle's restart (value 1 right after a near-0 end) survives the decimation
    assert all(float(997 * k) in drawn for k in range(1, 300_000 // 997))


def test_long_runs_are_sampled_with_their_boundaries() -> None:
    total = 4 * EXACT_LIMIT
    p = preview(lrlab.parse("warmup(12345) >> cosine()"), total)
    assert {12344.0, 12345.0} <= set(p.t.tolist())
    assert p.peak_t == 12345.0 and p.t.shape[0] <= 2100
    assert np.all(np.diff(p.t) > 0)


def test_preview_values_are_the_schedule_values() -> None:
    s = lrlab.parse("warmup(0.1) >> cosine(floor=0.1)", total=5000)
    p = preview(s, 5000, points=300)
    assert p.values.tolist() == s.values(p.t).tolist()
    assert p.t.shape[0] <= 310


@pytest.mark.parametrize("total", [0, -5, float("nan"), float("inf")])
def test_bad_total(total: float) -> None:
    with pytest.raises(LrlabError, match="total must be a positive number"):
        preview(lrlab.parse("cosine()"), total)


def test_terminal_plot_marks_peak_and_minimum() -> None:
    text = plot_terminal(preview(lrlab.parse("warmup(0.1) >> cosine(floor=0.1)"), 1000))
    assert "▲" in text and "▼" in text
    assert "peak 1 @ 100" in text and "min 0.1 @ 1000" in text


def test_png(tmp_path: Path) -> None:
    out = plot_png(preview(lrlab.parse("cosine()"), 100), tmp_path / "sub" / "lr.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [f.name for f in out.parent.iterdir()] == ["lr.png"]  # no temporary file left behind


def test_png_unwritable_path_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(LrlabError, match="cannot write the plot to"):
        plot_png(preview(lrlab.parse("cosine()"), 100), blocker / "lr.png")


@pytest.mark.parametrize(("module", "draw"), [("plotext", "terminal"), ("matplotlib", "png")])
def test_missing_plot_library_says_what_to_install(module: str, draw: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    p = preview(lrlab.parse("cosine()"), 100)
    with pytest.raises(LrlabError, match=r"pip install 'lrlab\[plot\]'"):
        if draw == "terminal":
            plot_terminal(p)
        else:
            plot_png(p, tmp_path / "lr.png")
