"""Rendering of an analysis (`lrlab.bench.report`): the ranked table (whole at 80 columns and in a pipe), markdown,
the PNGs, and a self-contained HTML (jinja2) that headless Chromium renders. The analysis itself:
test_analysis.py."""

from __future__ import annotations

import io
import itertools
import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from lrlab.bench.analysis import analyze, load_results
from lrlab.bench.report import (
    LEGEND,
    PLOTS,
    decisive_range,
    html_report,
    markdown,
    plot_styles,
    print_report,
    stacked_lines,
    summary_lines,
    table_rows,
    write_report,
)
from results_docs import nine_schedule_doc, one_seed_doc, three_seed_doc


def render(a: object, width: int) -> str:
    from rich.console import Console

    buf = io.StringIO()
    print_report(a, Console(file=buf, width=width))  # a file: what a pipe gets (no terminal, no colour)
    return buf.getvalue()


def test_best_loss_shows_its_seed_spread_and_the_grid_edge_is_marked() -> None:
    a = analyze(three_seed_doc(0.02))
    w = a.contenders[0]
    # best_val_loss of linspace(3.0, final, 10) is the final value: 1.50, 1.52, 1.54
    assert w.best_mean == pytest.approx(1.52) and w.best_std == pytest.approx(0.02)
    assert table_rows(a)[1][0][4] == "1.520 ± 0.020"
    one = analyze(one_seed_doc())
    row = table_rows(one)[1][0]
    assert row[2] == "0.03 (best at grid edge)" and table_rows(one)[1][1][2] == "0.01"
    assert "(best at grid edge)" in LEGEND


@pytest.mark.parametrize("width", [80, 60])
def test_every_cell_of_the_table_is_whole_in_a_narrow_terminal(width: int) -> None:
    a = analyze(nine_schedule_doc())
    header, rows = table_rows(a)
    text = render(a, width)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width
    assert "…" not in text
    for row in rows:
        for h, cell in zip(header, row):
            whole = cell if h in ("#", "schedule") else f"{h} {cell}"  # stacked: "column value", never broken
            assert whole in text or (h == "#" and f"{cell}. " in text), (h, cell)
    # the marks survive: a gap with its interval and a branched run's dagger
    assert any("± " in r[7] for r in rows[1:]) and any("†" in r[1] for r in rows)
    # one block per contender, in rank order, starting with its rank and label
    blocks = stacked_lines(a, width)
    assert [b[0] for b in blocks] == [f"{r[0]:>2}. {r[1]}" for r in rows]


def test_a_long_spec_is_wrapped_between_tokens() -> None:
    a = analyze(nine_schedule_doc())
    _header, rows = table_rows(a)
    for row, block in zip(rows, stacked_lines(a, 24)):
        head = block[: next(i for i, line in enumerate(block) if line.startswith("    peak LR"))]
        assert all(len(line) <= 24 or len(line[4:].split()) == 1 for line in head)  # or one unbreakable token
        # broken only at spaces: the lines, rejoined with one space, are the label
        assert " ".join(line.strip() for line in head) == f"{row[0]}. {row[1]}"
    inverse = next(b for b in stacked_lines(a, 24) if "inverse_sqrt" in "".join(b))
    assert [line.strip() for line in inverse[:2]] == ["9. warmup(0.05) >>", "inverse_sqrt(50)"]


def test_a_wide_terminal_gets_the_columns() -> None:
    a = analyze(nine_schedule_doc())
    text = render(a, 200)
    _header, rows = table_rows(a)
    head = next(line for line in text.splitlines() if "schedule" in line and "vs #1" in line)
    assert head.split() == ["#", "schedule", "peak", "LR", "final", "val", "best", "val", "to", "target", "time",
                            "vs", "#1"]
    for row in rows:
        line = next(x for x in text.splitlines() if row[1] in x)
        assert all(cell in line for cell in row)


def test_the_report_names_the_python_the_corpus_and_the_device() -> None:
    doc = one_seed_doc()
    doc.update(python="3.11.7", corpus_sha256="ab12cd34ef56" + "0" * 52)
    a = analyze(doc)
    line = "Task lm · Python 3.11.7 · corpus sha256 ab12cd34ef56"
    assert any(x.startswith(line + "; 100 updates per run") for x in summary_lines(a))
    assert line in markdown(a) and line in html_report(a, {})
    # older results: taken from the runs' environment
    doc = one_seed_doc()
    for t in doc["trials"]:
        t["result"]["env"] = {"python": "3.12.1", "data": {"corpus_sha256": "ff" * 32}, "device": "cuda:0",
                              "device_name": "NVIDIA H200", "autocast": "bfloat16"}
    lines = summary_lines(analyze(doc))
    assert any(x.startswith("Task lm · Python 3.12.1 · corpus sha256 ffffffffffff · device cuda:0 (NVIDIA H200), "
                            "bfloat16 autocast;") for x in lines)


def test_markdown_has_the_table_and_the_sensitivity_grid() -> None:
    a = analyze(one_seed_doc())
    md = markdown(a, plots=["lr_curves.png"])
    assert ("| 1 | warmup(0.05) >> cosine() | 0.03 (best at grid edge) | 1.890 | 1.890 | 100 | 2 s "
            "| winner |") in md
    assert "| 2 | constant() | 0.01 | 1.920 | 1.920 | 100 | 2 s | +0.030 ? |" in md
    assert "| constant() | 2.050 | 1.920 ← | 2.240 |" in md
    assert "![Learning rate of every schedule at its best peak LR](lr_curves.png)" in md


def test_decisive_range_spans_the_finals_and_leaves_outliers_off_the_top() -> None:
    # the real 9-schedule comparison of docs/plots.md: everything in range
    finals = [1.851, 1.928, 1.944, 1.959, 1.996, 2.024, 2.105, 2.225, 2.244]
    lo, hi, cap = decisive_range(finals)
    assert (lo, hi) == (pytest.approx(1.851 - 0.12 * 0.393), pytest.approx(2.244 + 0.12 * 0.393))
    assert cap == pytest.approx(1.851 + 4 * (1.996 - 1.851)) and cap > 2.244
    # one far worse: more than four times the best-to-median distance from the best lies off the top
    lo, hi, cap = decisive_range([1.85, 1.93, 1.94, 1.96, 2.05, 5.0])
    assert cap == pytest.approx(1.85 + 4 * 0.1) and hi == pytest.approx(2.05 + 0.12 * 0.2) and cap < 5.0
    assert decisive_range([2.0]) == (pytest.approx(2.0 - 0.012), pytest.approx(2.0 + 0.012), math.inf)


def test_plot_styles_tell_neighbours_apart() -> None:
    a = analyze(nine_schedule_doc())
    styles = plot_styles(a.contenders)
    keys = [(s["color"], s["marker"], s["linestyle"]) for s in styles.values()]
    assert len(set(keys)) == 9 and len({k[1] for k in keys}) == 9
    assert all(x[0] != y[0] and x[1] != y[1] for x, y in itertools.pairwise(keys))
    assert "#000000" not in {k[0] for k in keys}  # black is for the validation and target lines


def test_write_report_writes_pngs_md_and_self_contained_html(tmp_path: Path) -> None:
    doc = one_seed_doc()
    doc["title"] = "<script>alert(1)</script> & co"  # jinja2 escapes every value
    (tmp_path / "results.json").write_text(json.dumps(doc))
    a = write_report(load_results(tmp_path), tmp_path)
    assert a.contenders[0].schedule == "warmup(0.05) >> cosine()"
    assert list(PLOTS) == ["lr_curves.png", "val_loss.png", "loss_curves.png", "sensitivity.png",
                           "gap_to_winner.png"]
    for name in PLOTS:
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000, name
    html = (tmp_path / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 5
    assert "http://" not in html and "https://" not in html and "<link" not in html and "<script" not in html
    assert "<title>&lt;script&gt;alert(1)&lt;/script&gt; &amp; co</title>" in html
    assert 'font-family: -apple-system, "Segoe UI"' in html  # the CSS is not escaped
    assert html.count('<tr class="') == 2 and '<td class="name">warmup(0.05) &gt;&gt; cosine()</td>' in html
    assert (tmp_path / "report.md").read_text().count("](") == 5
    assert not list(tmp_path.glob(".*"))  # no temp files left behind


def test_results_written_before_this_version_render(tmp_path: Path) -> None:
    # a results.json of an older lrlab: no device, python or corpus at the top, no chains, env {} in every run
    doc = three_seed_doc(0.05)
    for t in doc["trials"]:
        t["result"].pop("env")
    a = write_report(doc, tmp_path)
    assert a.device is None and (tmp_path / "gap_to_winner.png").is_file()
    assert "+0.050 ± 0.043" in (tmp_path / "report.md").read_text()


def _png_pixels(path: Path) -> np.ndarray:
    import matplotlib.image as mpimg

    return np.asarray(mpimg.imread(str(path)))


def test_html_renders_in_headless_chromium(tmp_path: Path) -> None:
    """Fails (does not skip) without Chromium: install it with `apt-get install -y chromium`."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    assert chromium, "headless Chromium is required for this test: apt-get install -y chromium"
    doc = one_seed_doc()
    write_report(doc, tmp_path)
    page = (tmp_path / "report.html").resolve().as_uri()
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}"]
    shot = tmp_path / "shot.png"
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1200,2000", page], capture_output=True,
                   timeout=120, check=True)
    px = _png_pixels(shot)
    assert px.shape[0] >= 1000 and px.shape[1] >= 1000
    assert float(px[..., :3].std()) > 0.05  # not a blank page: text, table borders and plots
    dom = subprocess.run([*flags, "--dump-dom", page], capture_output=True, text=True, timeout=120, check=True).stdout
    assert dom.count('<tr class="') == 2 and "warmup(0.05) &gt;&gt; cosine()" in dom
    assert dom.count('src="data:image/png;base64,') == 5
    assert 'id="sensitivity"' in dom
