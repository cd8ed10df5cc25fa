"""preview.py: phases, value tables, where the peak and the minimum are, and the two drawings."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import lrlab
from lrlab.errors import LrlabError
from lrlab.preview import (
    EXACT_LIMIT,
    Phase,
    formula,
    phases,
    plain,
    plot_png,
    plot_terminal,
    preview,
    summary,
    value_table,
)


def test_phases_of_a_join_start_at_each_boundary() -> None:
    s = lrlab.parse("warmup(0.1) >> constant(total=0.5) >> cosine(floor=0.1)", total=1000)
    ph = phases(s, 1000)
    assert [(p.start, p.end) for p in ph] == [(0.0, 100.0), (100.0, 600.0), (600.0, 1000.0)]
    assert [p.spec for p in ph] == ["warmup(100)", "constant(total=500)", "cosine(floor=0.1, total=400)"]
    assert ph[0].formula == "floor + (peak - floor) * p, p = t / total (peak: where the next piece starts)"
    assert ph[1].formula == "value"
    assert ph[2].formula == "floor + (peak - floor) * (1 + cos(pi * p)) / 2, p = min(t / total, 1)"


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


FORMULAS = [
    # the formula of the shape, mode or form in use, and only that one
    ("warmup(10, peak=1)", "floor + (peak - floor) * p, p = t / total"),
    ("warmup(10, shape=cosine)", "floor + (peak - floor) * (1 - cos(pi * p)) / 2, p = t / total "
                                 "(peak: where the next piece starts)"),
    ("warmup(10, shape=sqrt, peak=1)", "floor + (peak - floor) * (1 - sqrt(1 - p)), p = t / total"),
    ("warmup(10, shape=exponential, peak=1)", "floor + (peak - floor) * (1 - exp(-2 p)) / (1 - exp(-2)), "
                                              "p = t / total"),
    ("cooldown(10, shape=linear)", "floor + (peak - floor) * (1 - p), p = min(t / total, 1)"),
    ("cooldown(10, shape=cosine)", "floor + (peak - floor) * (1 + cos(pi * p)) / 2, p = min(t / total, 1)"),
    ("cooldown(10, shape=cosine, cycles=1)", "floor + (peak - floor) * (1 + cos(2 pi * cycles * p)) / 2, "
                                             "p = min(t / total, 1)"),
    ("cooldown(10)", "floor + (peak - floor) * (1 - sqrt(p)), p = min(t / total, 1)"),
    ("cooldown(10, shape=power, power=2)", "floor + (peak - floor) * (1 - p ** power), p = min(t / total, 1)"),
    ("cooldown(10, shape=exp)", "floor + (peak - floor) * (ratio ** p - ratio) / (1 - ratio), "
                                "p = min(t / total, 1)"),
    ("cosine(10, exponent=2, periodic=true)", "floor + (peak - floor) * ((1 + cos(pi * p)) / 2) ** exponent, "
                                              "p = t / total"),
    ("linear(10)", "peak + (floor - peak) * t / total, then floor"),
    ("polynomial(10, power=2)", "floor + (peak - floor) * (1 - min(t, total) / total) ** power"),
    ("exponential(0.99)", "peak * gamma ** t"),
    ("exponential(0.5, every=10, staircase=true)", "peak * gamma ** floor(t / every)"),
    ("exponential(rate=0.1, every=10)", "peak * exp(-rate * t / every)"),
    ("inverse_sqrt(100)", "peak / sqrt((t + timescale) / timescale)"),
    ("inverse_sqrt(100, power=1)", "peak * ((t + timescale) / timescale) ** -power"),
    ("cosine_restarts(10)", "floor + (peak - floor) * (1 + cos(pi * u / L)) / 2, u = t mod period, L = period"),
    ("cosine_restarts(10, mult=2, decay=0.5, limit=3)",
     "floor + (peak * decay ** i - floor) * (1 + cos(pi * u / L)) / 2, u the clock within cycle i, which lasts "
     "L = period * mult ** i; floor after limit cycles"),
    ("one_cycle(100)", "initial -> peak until pct_start * total, then -> floor at total - 1 (cosine annealing)"),
    ("one_cycle(100, shape=linear, three_phase=true)",
     "initial -> peak until pct_start * total, back to initial until 2 * pct_start * total, then -> floor at "
     "total - 1 (linear annealing)"),
    ("cyclic(up=10, mode=triangular2)", "triangles between floor and peak: up for up, down for down clock units, "
                                        "the height halved every cycle"),
    ("piecewise(times=[0, 10], levels=[0, 1], shape=linear)", "levels interpolated linearly between times"),
    ("step(10)", "peak * factor ** floor(t / every)"),
    ("polynomial(10, power=2)", "floor + (peak - floor) * (1 - min(t, total) / total) ** power"),
    ("polynomial(10, k=2)", "floor + (peak - floor) * (1 - min(t, total) ** k / total ** k) ** power"),
    ("constant(0.5) * cosine(10)", "Pointwise product of schedules on the same clock: 0.5 * cosine(), or an "
                                   "untuned exponential warm-up multiplying a decay."),
]


@pytest.mark.parametrize(("spec", "text"), FORMULAS, ids=[f[0] for f in FORMULAS])
def test_formula_of_the_shape_in_use(spec: str, text: str) -> None:
    assert formula(lrlab.parse(spec)) == text
    assert "`" not in text


def test_plain_text() -> None:
    assert plain("multiply by ``factor`` every `every` clock units") == "multiply by factor every every clock units"
    assert summary(lrlab.Step) == "Step decay: multiply by factor every every clock units."
    assert summary(lrlab.Noam) == "The original Transformer's schedule (Vaswani et al. 2017, eq. 3), warm-up included."
    assert all("`" not in summary(c) for c in lrlab.REGISTRY.values())


def test_several_schedules_in_the_terminal() -> None:
    ps = [preview(lrlab.parse(s), 100) for s in ("cosine()", "linear()", "warmup(0.1) >> constant()")]
    text = plot_terminal(ps, width=80)
    assert text.splitlines()[-3:] == ["  1: cosine()", "  2: linear()", "  3: warmup(0.1) >> constant()"]
    assert "▲" not in text  # the markers are for one schedule
    assert max(len(line) for line in text.splitlines()) <= 80


def test_log_axis_leaves_out_zeros() -> None:
    p = preview(lrlab.parse("warmup(0.1) >> exponential(0.9)"), 100)
    text = plot_terminal(p, width=80, log_y=True)
    assert "▲" in text and "▼" not in text.split("\n")[-1]  # the minimum (0 at t=0) has no place on a log axis


def test_png_of_several_with_a_log_axis(tmp_path: Path) -> None:
    ps = [preview(lrlab.parse(s), 100) for s in ("cosine()", "exponential(0.95)")]
    out = plot_png(ps, tmp_path / "lr.png", log_y=True, base_lr=3e-4)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_nothing_to_plot() -> None:
    with pytest.raises(LrlabError, match="nothing to plot"):
        plot_terminal([])
