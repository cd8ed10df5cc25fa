"""`lrlab predict` end to end on a fabricated compare folder (the real results.json format) and a Monitor log; bad
input exits 2 with one line, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import lrlab.predict as lp
from lrlab.cli import main
from lrlab.predict.laws import LAWS, features

TOTAL = 400
PEAK = 6e-3
TRUE = {"L0": 1.5, "A": 3.0, "alpha": 0.5, "B": 0.5, "C": 0.5, "beta": 0.6, "gamma": 0.5}


def write_compare(folder: Path, specs: list[str], *, seeds: tuple[int, ...] = (0, 1),
                  nan_at: int | None = None, total: int = TOTAL, k: float = 1.0) -> Path:
    """A results.json as `lrlab compare` writes it (the fields `load_runs` reads), losses from the multi-power law
    (with start-up factor ``k`` on runs without a warm-up)."""
    trials = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        for i, spec in enumerate(specs):
            lr = lp.lr_sequence(spec, total=total, peak_lr=PEAK)
            steps = list(range(0, total + 1, 10))
            loss = LAWS["multipower"].loss({**TRUE, "K": k}, features(lr / PEAK, np.maximum(steps, 1)))
            loss = loss * (1 + 0.002 * rng.standard_normal(loss.size))
            if nan_at is not None:
                loss[nan_at] = float("nan")
            cfg = {"task": "lm", "preset": "tiny", "schedule": spec, "optimizer": "adamw", "lr": PEAK,
                   "steps": total, "seed": seed}
            result = {"config": cfg, "eval_steps": steps, "val_loss": [float(x) for x in loss],
                      "val_metrics": {}, "train_loss": [3.0] * total, "lr": lr.tolist(),
                      "final_val_loss": float(loss[-1]), "best_val_loss": float(np.nanmin(loss)), "diverged": False,
                      "wall_time_s": 1.0, "tokens_per_s": 1.0, "n_params": 1, "env": {}, "resumed_from": None}
            trials.append({"id": f"{i:02d}-s{seed}", "schedule": spec, "optimizer": "adamw", "seed": seed,
                           "lr": PEAK, "lr_index": 0, "phase": "grid", "branched_from": None, "result": result})
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"format": "lrlab.compare/1", "status": "complete", "config": {"steps": total}, "trials": trials}
    (folder / "results.json").write_text(json.dumps(doc))
    return folder


def design_specs() -> list[str]:
    return list(lp.design_runs(TOTAL, peak_lr=PEAK).specs)


def test_predict_json_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_compare(tmp_path / "design", design_specs())
    plot = tmp_path / "pred.png"
    code = main(["predict", str(folder), "--steps", "800", "--bootstrap", "3", "--json", "--plot", str(plot),
                 "-s", "constant(); warmup(0.05) >> cosine(); wsd(warmup=0.05, decay=0.2)"])
    out = capsys.readouterr().out
    assert code == 0
    doc = json.loads(out)
    finals = [p["final"] for p in doc["predictions"]]
    assert finals == sorted(finals) and len(finals) == 3
    assert doc["fit"]["law"] == "multipower" and doc["steps"] == 800
    truth = LAWS["multipower"].loss(TRUE, features(lp.lr_sequence("warmup(0.05) >> cosine()", total=800,
                                                                  peak_lr=PEAK) / PEAK, np.array([800])))[0]
    cos = next(p for p in doc["predictions"] if p["label"] == "warmup(0.05) >> cosine()")
    assert cos["final"] == pytest.approx(truth, abs=0.01)
    assert any("extrapolated in time" in n for n in cos["notes"])
    assert plot.stat().st_size > 10_000 and doc["plot"] == str(plot)
    assert doc["fit"]["quality"]["holdout"]["n"] > 0


def test_predict_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_compare(tmp_path / "design", design_specs(), seeds=(0,))
    code = main(["predict", str(folder), "--law", "momentum", "--bootstrap", "2", "--no-plot",
                 "-s", "cosine_restarts(0.143, mult=2); warmup(0.05) >> linear()"])
    out = capsys.readouterr().out
    assert code == 0
    assert "momentum law fitted on 4 curves" in out and "rises again after the warm-up" in out
    assert "held out" in out and "left out" in out


def test_design_folder_with_its_start_up_probe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`run_design`'s layout: the design in DIR, its probe (no warm-up, 15 % of the horizon) in DIR/probe; the fit
    reads both, measures the start-up factor, and predicts schedules without a warm-up without the support note."""
    design = lp.design_runs(TOTAL, peak_lr=PEAK)
    folder = write_compare(tmp_path / "design", list(design.specs), k=1.25)
    write_compare(folder / "probe", ["constant()"], k=1.25, total=design.probe)
    labels = [c.label for c in lp.load_runs(folder)]
    assert labels.count("constant()") == 2 and len(labels) == 10  # 4 design runs and the probe, 2 seeds
    assert main(["predict", str(folder), "--bootstrap", "0", "--json", "--no-plot", "-s",
                 "cosine(); warmup(0.05) >> cosine()"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["fit"]["params"]["K"] == pytest.approx(1.25, rel=0.05) and "K" not in doc["fit"]["fixed"]
    cos = next(p for p in doc["predictions"] if p["label"] == "cosine()")
    truth = LAWS["multipower"].loss({**TRUE, "K": 1.25}, features(lp.lr_sequence("cosine()", total=TOTAL,
                                                                                 peak_lr=PEAK) / PEAK,
                                                                 np.array([TOTAL])))[0]
    assert cos["final"] == pytest.approx(truth, abs=0.01) and cos["notes"] == []
    assert main(["predict", str(folder), "--bootstrap", "0", "--no-plot", "-s", "cosine()"]) == 0
    assert "start-up factor K = 1.2" in capsys.readouterr().out


def test_monitor_log_input(tmp_path: Path) -> None:
    from lrlab.monitor import Monitor

    lr = lp.lr_sequence(design_specs()[1], total=TOTAL, peak_lr=PEAK)
    steps = np.arange(0, TOTAL + 1, 10)
    loss = LAWS["multipower"].loss(TRUE, features(lr / PEAK, np.maximum(steps, 1)))
    mon = Monitor(out_dir=tmp_path / "mon", total_steps=TOTAL)
    for u in range(TOTAL):
        mon.on_step(u, lrs=float(lr[u]), loss=3.0)
        if u % 10 == 0:
            mon.on_eval(u, val_loss=float(loss[u // 10]))
    mon.on_eval(TOTAL, val_loss=float(loss[-1]))
    mon.close()
    (curve,) = lp.load_runs(tmp_path / "mon")
    assert np.array_equal(curve.lr, lr) and curve.steps[-1] == TOTAL
    assert curve.loss == pytest.approx(loss, rel=1e-12)


@pytest.mark.parametrize(("setup", "match"), [
    ("missing", "does not exist"),
    ("nan", "loss at step 100 is nan"),
    ("constant-only", "no curve's LR decreases after its warm-up"),
    ("bad-spec", "unknown schedule"),
    ("zero-steps", "--steps must be a whole number >= 1, got 0"),
], ids=["missing", "nan", "unidentifiable", "bad-spec", "zero-steps"])  # a bad --law: tests/test_cli.py
def test_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], setup: str, match: str) -> None:
    folder = tmp_path / "runs"
    args = ["predict", str(folder), "--no-plot", "--bootstrap", "0", "-s", "cosine()"]
    if setup == "nan":
        write_compare(folder, design_specs(), nan_at=10)
    elif setup == "constant-only":
        write_compare(folder, design_specs()[:1])
    elif setup == "zero-steps":  # the default schedules are written for --steps: 0 used to divide by zero
        write_compare(folder, design_specs(), seeds=(0,))
        args = [*args[:-2], "--steps", "0"]
    elif setup in ("bad-spec", "bad-law"):
        write_compare(folder, design_specs(), seeds=(0,))
        args = [*args[:-1], "cosin()"] if setup == "bad-spec" else [*args, "--law", "cubic"]
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and match in err and "Traceback" not in err


@pytest.mark.slow
def test_run_design_trains_branches_from_the_trunk(tmp_path: Path) -> None:
    design = lp.design_runs(80, peak_lr=6e-3)
    doc = lp.run_design(design, tmp_path / "design", task="lm", preset="tiny", seeds=1, workers=1)
    assert doc["status"] == "complete"
    branched = [t for t in doc["trials"] if t["branched_from"]]
    assert len(branched) == 4  # the trunk and each cool-down continue from the shared prefix, trained once
    curves = lp.load_runs(tmp_path / "design")  # the design and its start-up probe (design/probe)
    assert sorted(c.label for c in curves) == sorted([*design.specs, "constant()"])
    assert all(c.total == 80 and c.data_passes is not None for c in curves if c.label != "constant()")
    probe = next(c for c in curves if c.label == "constant()")
    assert probe.total == design.probe == 12 and np.all(probe.lr == 6e-3)
    # the probe is the prefix of a no-warm-up constant run: the same seed's first updates, bit for bit
    trunk = next(c for c in curves if c.label == design.specs[0])
    assert trunk.loss[0] == probe.loss[0]  # one initial model
    fitted = lp.fit(curves, law="s1", bootstrap=0, quality=False)
    assert fitted.scope.cold and "K" not in fitted.fixed


def test_predict_table_keeps_specs_whole(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """At 80 columns a long spec folds onto a second line of its cell; it is not cut short with an ellipsis."""
    monkeypatch.setenv("COLUMNS", "80")
    folder = write_compare(tmp_path / "design", design_specs(), seeds=(0,))
    assert main(["predict", str(folder), "--bootstrap", "0", "--no-plot", "-s",
                 "exponential(0.98855309); cosine_restarts(0.143, mult=2)"]) == 0
    out = capsys.readouterr().out
    assert "…" not in out and max(len(line) for line in out.splitlines()) <= 80
    assert "5309" in out and "143, mult=2)" in out
