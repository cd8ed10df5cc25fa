"""The run files lrlab writes outside the compare harness are standard JSON from the one writer
(`lrlab.files.write_json`): the Monitor's ``findings.json`` and a tuner's ``state.json``; a file with the
``Infinity`` of an older writer still loads."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from lrlab.files import json_text
from lrlab.monitor import FINDINGS_FILE, Monitor
from lrlab.tune import TuneConfig, Tuner


def strict_json(text: str) -> Any:
    """``text`` parsed as standard JSON: ``NaN`` / ``Infinity`` refused, as ``jq`` and browsers do."""
    def refuse(name: str) -> None:
        raise ValueError(f"not standard JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def test_findings_json_is_written_by_the_one_json_writer(tmp_path: Path) -> None:
    m = Monitor(out_dir=tmp_path, diagnose_every=10, jsonl=False, csv=False)
    for k in range(30):
        m.on_step(k, lrs=[1e-3], loss=1.0 + 3.0 * math.exp(-k / 5))
    m.on_step(30, lrs=[1e-3], loss=float("inf"))
    m.close()
    text = (tmp_path / FINDINGS_FILE).read_text(encoding="utf-8")
    doc = strict_json(text)
    assert text == json_text(doc)  # the form of lrlab.files.json_text, as every other lrlab JSON file
    assert [(f["kind"], f["step"], f["evidence"]["loss"]) for f in doc["findings"]] == [("divergence", 30, "inf")]
    assert doc["n_steps"] == 31 and doc["format"] == "lrlab.monitor/1"


def test_a_tuner_state_with_a_divergence_is_standard_json_and_an_old_one_still_loads(tmp_path: Path) -> None:
    tuner = Tuner(TuneConfig(horizon=200, lr=3e-3))
    trial = tuner.ask()
    assert trial is not None
    tuner.tell(trial, {trial.start + 1: math.inf})
    tuner.save(tmp_path / "state.json")
    doc = strict_json((tmp_path / "state.json").read_text(encoding="utf-8"))
    assert doc["told"][trial.name] == [[trial.start + 1, None]]
    assert Tuner.load(tmp_path / "state.json").to_dict() == tuner.to_dict()
    # an older writer's form: bare Infinity, indent 2
    old = json.dumps({**doc, "told": {trial.name: [[trial.start + 1, math.inf]]}}, indent=2)
    assert "Infinity" in old
    (tmp_path / "old.json").write_text(old, encoding="utf-8")
    again = Tuner.load(tmp_path / "old.json")
    assert again.to_dict() == tuner.to_dict() and again.end_loss(trial.name) == math.inf

