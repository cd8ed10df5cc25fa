"""`lrlab.bench.analysis` on results documents with known numbers: each schedule ranked at its own best peak LR,
steps to target, the paired noise and the t-test of each gap (checked against scipy's paired t-test), branching
summaries, the recorded device, and loading results files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from lrlab.bench.analysis import ALPHA, analyze, gap_test, load_results, paired_noise, steps_to_target
from lrlab.bench.report import markdown, summary_lines, table_rows
from lrlab.errors import LrlabError
from results_docs import LRS, document, one_seed_doc, three_seed_doc, trial


def test_each_schedule_is_ranked_at_its_own_best_peak_lr() -> None:
    a = analyze(one_seed_doc())
    w, c = a.contenders
    assert (w.schedule, w.rank, w.best_lr, w.final_mean) == ("warmup(0.05) >> cosine()", 1, LRS[2], 1.89)
    assert (c.schedule, c.rank, c.best_lr, c.final_mean) == ("constant()", 2, LRS[1], 1.92)
    assert c.gap == pytest.approx(0.03, rel=1e-12)
    assert w.at_grid_edge and not c.at_grid_edge  # 3e-2 is the largest LR tried
    assert [p.final_mean for p in c.grid] == [2.05, 1.92, 2.24]
    # one seed: no spread estimate, significance unknown, no interval
    assert a.sigma is None and c.significant is None and c.final_std is None
    assert c.gap_sd is None and c.gap_ci is None and c.p_value is None
    assert c.seed_gaps == pytest.approx((0.03,), rel=1e-12)
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


@pytest.mark.parametrize(("gap", "significant"), [(0.005, False), (0.02, False), (0.05, True), (0.2, True)],
                         ids=["within-noise", "two-se", "five-se", "far"])
def test_significance_is_a_paired_t_test_on_the_noise_of_differences(gap: float, significant: bool) -> None:
    a = analyze(three_seed_doc(gap))
    w, c = a.contenders
    assert w.schedule == "cosine()" and w.n_seeds == 3 and a.paired_seeds == (0, 1, 2)
    assert w.final_std == pytest.approx(0.02, rel=1e-9)  # the raw spread is mostly the shared seed offset
    # residuals of the two-way model are -+(noise - mean noise)/2: sigma^2 = (1e-4 + 4e-4 + 1e-4) / 4 / dof 2
    assert a.sigma == pytest.approx(math.sqrt(0.0006 / 4), rel=1e-9) and a.sigma_dof == 2
    # the standard error of the difference of two 3-seed means: sigma * sqrt(2/3) = 0.01 exactly
    assert c.gap_sd == pytest.approx(0.01, rel=1e-9)
    assert c.gap == pytest.approx(gap, rel=1e-9)
    assert c.seed_gaps == pytest.approx((gap + 0.01, gap - 0.02, gap + 0.01), rel=1e-9)
    # with two contenders the pooled test is scipy's paired t-test of their per-seed final losses
    cosine = [1.50, 1.52, 1.54]
    constant = [x + gap + n for x, n in zip(cosine, (0.01, -0.02, 0.01))]
    ref = stats.ttest_rel(constant, cosine)
    assert c.p_value == pytest.approx(float(ref.pvalue), rel=1e-6)
    ci = ref.confidence_interval(0.95)
    assert c.gap_ci == pytest.approx((float(ci.low), float(ci.high)), rel=1e-6)
    assert c.significant is significant is (float(ref.pvalue) < ALPHA)
    half = float(stats.t.ppf(0.975, 2)) * 0.01  # 0.043
    cell = table_rows(a)[1][1][7]
    assert cell == f"+{gap:.3f} ± {half:.3f}" + ("" if significant else " ≈")
    assert any("sigma = 0.012 per seed (2 dof)" in line and "paired t-test" in line for line in summary_lines(a))


def test_gap_test_values() -> None:
    t = gap_test(0.1, 0.05, 8, 2)  # se = 0.05 * sqrt(2/2) = 0.05, t = 2, 8 dof
    assert (t.se, t.t) == (pytest.approx(0.05, rel=1e-12), pytest.approx(2.0, rel=1e-12))
    assert t.p_value == pytest.approx(2 * float(stats.t.sf(2.0, 8)), rel=1e-12)  # 0.0805
    assert t.ci == pytest.approx((0.1 - 2.306004135 * 0.05, 0.1 + 2.306004135 * 0.05), rel=1e-8)
    assert not t.significant and gap_test(0.2, 0.05, 8, 2).significant
    # no noise at all: a gap is real, no gap is not
    assert gap_test(0.1, 0.0, 2, 3).significant and gap_test(0.1, 0.0, 2, 3).ci == (0.1, 0.1)
    assert not gap_test(0.0, 0.0, 2, 3).significant


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


def chained(schedule: str, lr: float, idx: int, final: float, chain: list[tuple[str, int, int]]) -> dict:
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


def test_the_device_the_runs_trained_on_is_recorded() -> None:
    doc = one_seed_doc()
    assert analyze(doc).device is None  # results written before devices were recorded (and these test runs)
    for t in doc["trials"]:
        t["result"]["env"] = {"device": "cpu"}
    assert analyze(doc).device == "cpu"
    for i, t in enumerate(doc["trials"]):  # one worker per GPU
        t["result"]["env"] = {"device": f"cuda:{i % 2}", "device_name": "NVIDIA H200", "autocast": "bfloat16"}
    assert analyze(doc).device == ("cuda:0 (NVIDIA H200), bfloat16 autocast; "
                                   "cuda:1 (NVIDIA H200), bfloat16 autocast")


def test_load_results_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(LrlabError, match=r"no results\.json"):
        load_results(tmp_path)
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(LrlabError, match="not valid JSON"):
        load_results(tmp_path)
    (tmp_path / "results.json").write_text('{"a": 1}')
    with pytest.raises(LrlabError, match="'config'"):
        load_results(tmp_path)
