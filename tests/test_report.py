"""Report analysis (ranking at each schedule's best peak LR, significance, steps to target) on results documents
with known numbers, and the rendered artefacts: markdown, PNGs, and a self-contained HTML that headless
Chromium renders."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lrlab.bench.analysis import analyze, load_results, paired_noise, steps_to_target
from lrlab.bench.report import LEGEND, html_report, markdown, summary_lines, table_rows, write_report
from lrlab.errors import LrlabError

STEPS = 100
EVAL = list(range(10, STEPS + 1, 10))


def run_result(final: float, *, start: float = 3.0, lr: float = 1e-2, diverged: bool = False) -> dict[str, Any]:
    """A RunResult dict whose validation loss falls linearly from ``start`` to ``final``."""
    val = np.linspace(start, final, len(EVAL)).tolist()
    if diverged:
        val[-1] = math.nan
    train = np.linspace(start + 0.1, final + 0.05, STEPS).tolist()
    return {"config": {"lr": lr, "steps": STEPS}, "eval_steps": EVAL, "val_loss": val, "val_metrics": {},
            "train_loss": train, "lr": [lr] * STEPS, "final_val_loss": math.nan if diverged else final,
            "best_val_loss": min(v for v in val if not math.isnan(v)), "diverged": diverged, "wall_time_s": 2.0,
            "tokens_per_s": 1000.0, "n_params": 1000, "env": {}, "resumed_from": None}


def trial(schedule: str, lr: float, seed: int, final: float, *, optimizer: str = "adamw", idx: int = 0,
          diverged: bool = False, branched: bool = False) -> dict[str, Any]:
    return {"id": f"{schedule}-{optimizer}-lr{idx}-s{seed}", "schedule": schedule, "optimizer": optimizer,
            "seed": seed, "lr": lr, "lr_index": idx, "phase": "grid",
            "branched_from": {"trial": "prefix-x", "step": 34} if branched else None,
            "result": run_result(final, lr=lr, diverged=diverged)}


def document(trials: list[dict[str, Any]], schedules: list[str], **extra: Any) -> dict[str, Any]:
    return {"format": "lrlab.compare/1", "title": "test compare", "status": "complete",
            "config": {"task": "lm", "steps": STEPS, "schedules": schedules, "target_loss": None, **extra},
            "trials": trials, "n_planned": len(trials), "wall_time_s": 12.0}


LRS = (1e-2 / 3, 1e-2, 3e-2)


def one_seed_doc() -> dict[str, Any]:
    # the 400-update fact: at the shared peak 1e-2 constant wins (1.92 vs 1.99), but at its own best
    # peak (3e-2) warm-up + cosine wins
    finals = {"constant()": (2.05, 1.92, 2.24), "warmup(0.05) >> cosine()": (2.20, 1.99, 1.89)}
    trials = [trial(s, lr, 0, f, idx=i) for s, fs in finals.items() for i, (lr, f) in enumerate(zip(LRS, fs))]
    return document(trials, list(finals))


def test_each_schedule_is_ranked_at_its_own_best_peak_lr() -> None:
    a = analyze(one_seed_doc())
    w, c = a.contenders
    assert (w.schedule, w.rank, w.best_lr, w.final_mean) == ("warmup(0.05) >> cosine()", 1, LRS[2], 1.89)
    assert (c.schedule, c.rank, c.best_lr, c.final_mean) == ("constant()", 2, LRS[1], 1.92)
    assert c.gap == pytest.approx(0.03, rel=1e-12)
    assert w.at_grid_edge and not c.at_grid_edge  # 3e-2 is the largest LR tried
    assert [p.final_mean for p in c.grid] == [2.05, 1.92, 2.24]
    # one seed: no spread estimate, significance unknown
    assert a.sigma is None and c.significant is None and c.final_std is None
    assert any("no noise estimate" in n for n in a.notes)
    assert any("edge of the grid" in n and "warmup(0.05) >> cosine()" in n for n in a.notes)


def test_target_is_the_baseline_final_loss_and_steps_are_first_eval_at_or_below() -> None:
    a = analyze(one_seed_doc())
    assert a.target_loss == 1.92 and "constant()" in a.target_source
    w, c = a.contenders
    # winner: linspace(3.0, 1.89, 10) first <= 1.92 at index 9 (1.89); index 8 is 2.013
    assert w.steps_to_target == 100.0 and w.reached == 1
    assert c.steps_to_target == 100.0  # the baseline reaches its own final loss at its last evaluation
    assert steps_to_target([10, 20, 30], [2.0, 1.5, 1.4], 1.5) == 20
    assert steps_to_target([10, 20], [2.0, math.nan], 1.5) is None


def test_steps_to_target_compare_with_the_baseline_on_the_same_seed() -> None:
    # seed 1 is worse for everyone; cosine beats constant by 0.1 on both seeds
    trials = [trial("constant()", 1e-2, 0, 2.0), trial("constant()", 1e-2, 1, 2.4),
              trial("cosine()", 1e-2, 0, 1.9), trial("cosine()", 1e-2, 1, 2.3)]
    a = analyze(document(trials, ["constant()", "cosine()"]))
    w = a.contenders[0]
    # val losses run linearly from 3.0 to the final value at steps 10..100: cosine's seed 0 (to 1.9) is first
    # <= 2.0 at step 100 (2.022 at 90), seed 1 (to 2.3) first <= 2.4 at step 90 (2.378); against the mean
    # target 2.2 seed 1 would never get there
    assert w.schedule == "cosine()" and w.reached == 2 and w.steps_to_target == 95.0
    assert a.target_loss == pytest.approx(2.2) and "2.000 on seed 0, 2.400 on seed 1" in a.target_source


def test_given_target_loss_overrides_baseline() -> None:
    doc = one_seed_doc()
    doc["config"]["target_loss"] = 2.5
    a = analyze(doc)
    assert a.target_loss == 2.5 and a.target_source == "given (target_loss)"
    # linspace(3.0, 1.89, 10): 3.0, 2.8767, 2.7533, 2.63, 2.5067, 2.3833 -> first <= 2.5 at index 5 (step 60)
    assert a.contenders[0].steps_to_target == 60.0


def three_seed_doc(gap: float) -> dict[str, Any]:
    # seed offsets shared by both schedules (-0.02, 0, +0.02) and noise in the difference (+0.01, -0.02, +0.01)
    trials = []
    for seed, (offset, noise) in enumerate(((-0.02, 0.01), (0.0, -0.02), (0.02, 0.01))):
        trials.append(trial("cosine()", 1e-2, seed, 1.52 + offset))
        trials.append(trial("constant()", 1e-2, seed, 1.52 + gap + offset + noise))
    return document(trials, ["constant()", "cosine()"])


@pytest.mark.parametrize(("gap", "significant"), [(0.005, False), (0.02, True), (0.2, True)],
                         ids=["within-noise", "outside", "far"])
def test_significance_uses_the_noise_of_paired_differences(gap: float, significant: bool) -> None:
    a = analyze(three_seed_doc(gap))
    w, c = a.contenders
    assert w.schedule == "cosine()" and w.n_seeds == 3 and a.paired_seeds == (0, 1, 2)
    assert w.final_std == pytest.approx(0.02, rel=1e-9)  # the raw spread is mostly the shared seed offset
    # residuals of the two-way model are -+(noise - mean noise)/2: sigma^2 = (1e-4 + 4e-4 + 1e-4) / 4 / dof 1..
    assert a.sigma == pytest.approx(math.sqrt(0.0006 / 4), rel=1e-9) and a.sigma_dof == 2
    # one std of the difference of two 3-seed means: sigma * sqrt(2/3) = 0.01 exactly (the paired t-test's)
    assert c.gap_sd == pytest.approx(0.01, rel=1e-9)
    assert c.gap == pytest.approx(gap, rel=1e-9)
    assert c.significant is significant
    cell = table_rows(a)[1][1][7]
    assert cell == f"+{gap:.3f}" + ("" if significant else " ≈")
    assert any("sigma = 0.012 per seed (2 dof)" in line for line in summary_lines(a))


def test_paired_noise_removes_the_seed_offsets() -> None:
    table = {"a": {0: 1.0, 1: 1.5, 2: 2.0}, "b": {0: 1.1, 1: 1.6, 2: 2.1}}  # b = a + 0.1 at every seed
    sigma, dof = paired_noise(table, [0, 1, 2])
    assert sigma == pytest.approx(0.0, abs=1e-12) and dof == 2
    table["c"] = {0: 1.0, 1: 1.5, 2: 2.3}
    # 3 x 3 residuals: c's +0.3 at seed 2 spread over the table; dof 4
    x = np.array([[1.0, 1.5, 2.0], [1.1, 1.6, 2.1], [1.0, 1.5, 2.3]])
    r = x - x.mean(1, keepdims=True) - x.mean(0, keepdims=True) + x.mean()
    assert paired_noise(table, [0, 1, 2]) == (pytest.approx(math.sqrt((r**2).sum() / 4), rel=1e-12), 4)
    assert paired_noise(table, [0]) == (None, 0)


def test_best_lr_is_chosen_on_the_seeds_every_lr_has() -> None:
    # seed 0 at three LRs: 1e-2 best (1.90); two more seeds at 1e-2 come out worse (2.10, 2.12); 3e-3 with its
    # single seed (1.95) must not win on a smaller sample
    trials = [trial("a()", lr, 0, f, idx=i) for i, (lr, f) in enumerate(zip(LRS, (1.95, 1.90, 2.30)))]
    trials += [trial("a()", 1e-2, s, f, idx=1) for s, f in ((1, 2.10), (2, 2.12))]
    a = analyze(document(trials, ["a()"]))
    (c,) = a.contenders
    assert c.best_lr == 1e-2 and c.n_seeds == 3 and c.final_mean == pytest.approx(2.04, rel=1e-12)


def test_diverged_runs_rank_last_and_read_diverged() -> None:
    trials = [trial("constant()", 1e-2, 0, 2.0), trial("cosine()", 1e-2, 0, 0.0, diverged=True)]
    a = analyze(document(trials, ["constant()", "cosine()"]))
    assert [c.schedule for c in a.contenders] == ["constant()", "cosine()"]
    last = a.contenders[1]
    assert math.isinf(last.final_mean) and last.diverged == 1 and last.significant is True
    assert table_rows(a)[1][1][3] == "diverged"


def test_several_optimizers_are_labelled_and_partial_runs_noted() -> None:
    trials = [trial("constant()", 1e-2, 0, 2.0), trial("constant()", 3e-2, 0, 1.8, optimizer="schedulefree")]
    trials.append({**trial("cosine()", 1e-2, 0, 1.0), "result": None})  # not finished
    doc = document(trials, ["constant()", "cosine()"])
    doc["status"] = "interrupted"
    a = analyze(doc)
    assert [c.label for c in a.contenders] == ["constant() · schedulefree", "constant() · adamw"]
    assert a.n_runs == 2 and a.n_planned == 3
    assert any("interrupted: 2 of 3" in n for n in a.notes)


def test_branched_runs_are_marked_and_listed() -> None:
    # a results file written before chains were recorded: only the immediate parent and its end
    trials = [trial("constant()", 1e-2, 0, 2.0, branched=True), trial("step(0.34)", 1e-2, 0, 1.9)]
    trials[0]["id"] = "00-constant"
    a = analyze(document(trials, ["constant()", "step(0.34)"]))
    assert a.branches == (
        "1 of 2 runs did not train from scratch: they branched from the checkpoint of an LR prefix they share bit "
        "for bit with other schedules (1 shared prefixes, each trained once), which gives the same numbers as "
        "retraining it.",
        "constant(): 1 run branched at update 34 from the prefix of its first 34 updates.")
    assert any("†" in r[1] for r in table_rows(a)[1])
    assert any(line.startswith("† constant(): 1 run branched at update 34") for line in summary_lines(a))


def chained(schedule: str, lr: float, idx: int, final: float, chain: list[tuple[str, int, int]]) -> dict[str, Any]:
    t = trial(schedule, lr, 0, final, idx=idx)
    t["branched_from"] = {"trial": chain[-1][0], "step": chain[-1][2],
                          "chain": [{"prefix": p, "start": a, "stop": b} for p, a, b in chain]}
    return t


def test_a_folder_resumed_across_versions_mixes_old_and_chained_branch_records() -> None:
    # runs of one schedule written before chains were recorded (first update unknown) and after, in one folder:
    # the summary lists both (sorting them once raised TypeError: None < int)
    old = trial("constant()", 1e-2, 0, 2.0, branched=True)
    new = chained("constant()", 2e-2, 1, 2.1, [("p1-1", 0, 34)])
    a = analyze(document([old, new, trial("step(0.34)", 1e-2, 0, 1.9)], ["constant()", "step(0.34)"]))
    assert a.branches[1:] == ("constant(): 1 run branched at update 34 from the prefix of its first 34 updates.",
                              "constant(): 1 run branched at update 34 from the prefix of updates [0, 34).")


def test_nested_branches_name_every_prefix_of_the_chain() -> None:
    # `plan_jobs` for constant, wsd(decay=0.2), wsd(decay=0.1), step(0.34) over 1000 updates, at two peak LRs:
    # all four share [0, 340); constant and both WSDs go on to 801; constant and wsd(0.1) to 901
    trials = []
    for idx, lr in enumerate((1e-2, 2e-2)):
        p1, p2, p3 = f"p1-{idx}", f"p2-{idx}", f"p3-{idx}"
        trials += [chained("constant()", lr, idx, 2.0, [(p1, 0, 340), (p2, 340, 801), (p3, 801, 901)]),
                   chained("wsd(decay=0.2)", lr, idx, 1.9, [(p1, 0, 340), (p2, 340, 801)]),
                   chained("wsd(decay=0.1)", lr, idx, 1.95, [(p1, 0, 340), (p2, 340, 801), (p3, 801, 901)]),
                   chained("step(0.34)", lr, idx, 2.1, [(p1, 0, 340)]),
                   trial("cosine()", lr, 0, 1.97, idx=idx)]
    a = analyze(document(trials, ["constant()", "wsd(decay=0.2)", "wsd(decay=0.1)", "step(0.34)", "cosine()"]))
    head, *lines = a.branches
    assert head.startswith("8 of 10 runs did not train from scratch") and "(6 shared prefixes, each" in head
    assert lines == [
        "constant(): 2 runs branched at update 901 from nested prefixes: updates [0, 340) shared with step(0.34), "
        "wsd(decay=0.1) and wsd(decay=0.2); then updates [340, 801) shared with wsd(decay=0.1) and wsd(decay=0.2); "
        "then updates [801, 901) shared with wsd(decay=0.1) (each continues the one before).",
        "wsd(decay=0.2): 2 runs branched at update 801 from nested prefixes: updates [0, 340) shared with "
        "constant(), step(0.34) and wsd(decay=0.1); then updates [340, 801) shared with constant() and "
        "wsd(decay=0.1) (each continues the one before).",
        "wsd(decay=0.1): 2 runs branched at update 901 from nested prefixes: updates [0, 340) shared with "
        "constant(), step(0.34) and wsd(decay=0.2); then updates [340, 801) shared with constant() and "
        "wsd(decay=0.2); then updates [801, 901) shared with constant() (each continues the one before).",
        "step(0.34): 2 runs branched at update 340 from the prefix of updates [0, 340) shared with constant(), "
        "wsd(decay=0.1) and wsd(decay=0.2).",
    ]
    md = markdown(a)
    assert all(f"- † {line}" in md for line in a.branches)
    assert [c.branched for c in a.contenders if c.schedule == "cosine()"] == [False]


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


def test_the_report_names_the_python_and_the_corpus() -> None:
    doc = one_seed_doc()
    doc.update(python="3.11.7", corpus_sha256="ab12cd34ef56" + "0" * 52)
    a = analyze(doc)
    line = "Task lm · Python 3.11.7 · corpus sha256 ab12cd34ef56"
    assert any(x.startswith(line + "; 100 updates per run") for x in summary_lines(a))
    assert line in markdown(a) and line in html_report(a, {})
    # older results: taken from the runs' environment
    doc = one_seed_doc()
    for t in doc["trials"]:
        t["result"]["env"] = {"python": "3.12.1", "data": {"corpus_sha256": "ff" * 32}}
    lines = summary_lines(analyze(doc))
    assert any(x.startswith("Task lm · Python 3.12.1 · corpus sha256 ffffffffffff") for x in lines)


def test_markdown_has_the_table_and_the_sensitivity_grid() -> None:
    a = analyze(one_seed_doc())
    md = markdown(a, plots=["lr_curves.png"])
    assert ("| 1 | warmup(0.05) >> cosine() | 0.03 (best at grid edge) | 1.890 | 1.890 | 100 | 2 s "
            "| winner |") in md
    assert "| 2 | constant() | 0.01 | 1.920 | 1.920 | 100 | 2 s | +0.030 ? |" in md
    assert "| constant() | 2.050 | 1.920 ← | 2.240 |" in md
    assert "![Learning rate of every schedule at its best peak LR](lr_curves.png)" in md


def test_load_results_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(LrlabError, match=r"no results\.json"):
        load_results(tmp_path)
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(LrlabError, match="not valid JSON"):
        load_results(tmp_path)
    (tmp_path / "results.json").write_text('{"a": 1}')
    with pytest.raises(LrlabError, match="needs 'config' and 'trials'"):
        load_results(tmp_path)


def test_write_report_writes_pngs_md_and_self_contained_html(tmp_path: Path) -> None:
    doc = one_seed_doc()
    (tmp_path / "results.json").write_text(json.dumps(doc))
    a = write_report(load_results(tmp_path), tmp_path)
    assert a.contenders[0].schedule == "warmup(0.05) >> cosine()"
    for name in ("lr_curves.png", "val_loss.png", "loss_curves.png", "sensitivity.png", "final_loss.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000, name
    html = (tmp_path / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 5
    assert "http://" not in html and "https://" not in html and "<link" not in html and "<script" not in html
    assert html.count('<tr class="') == 2
    assert (tmp_path / "report.md").read_text().count("](") == 5
    assert not list(tmp_path.glob(".*"))  # no temp files left behind


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
