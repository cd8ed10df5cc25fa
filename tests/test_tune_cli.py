"""`lrlab tune` on the built-in harness: end to end on the tiny `lm` task, `kill -9` + resume gives the same
numbers, and bad input exits 2 with nothing written."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from kill_point import kill_at
from lrlab.cli import main
from lrlab.tune import TuneConfig
from lrlab.tune.runner import run_tune

#: 100 updates and a 500-update budget: the plan of 3 peaks, 2 kept, one confirmation (490 updates)
SMALL = {"task": "lm", "preset": "tiny", "horizon": 100, "budget": 500, "checkpoint_every": 10}
ARGS = ["tune", "--steps", "100", "--budget", "500", "--checkpoint-every", "10"]


def losses(doc: dict[str, Any]) -> dict[str, list[Any]]:
    """trial name -> its validation curve (what must be identical after a resume)."""
    return {t["name"]: t["curve"]["val_loss"] for t in doc["trials"]}


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One uninterrupted `lrlab tune` through the CLI: (its folder, what it printed)."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("cli") / "tune"
    shown = io.StringIO()
    with contextlib.redirect_stdout(shown):
        assert main([*ARGS, "--out", str(out)]) == 0
    return out, shown.getvalue()


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_tune_end_to_end_via_the_cli(cli_run: tuple[Path, str]) -> None:
    out, shown = cli_run
    doc = json.loads((out / "results.json").read_text())
    assert doc["status"] == "complete" and TuneConfig(**SMALL).resolved().to_dict() == doc["config"]
    r = doc["result"]
    assert r["spent"] == doc["spent"] <= 500 and r["budget"] == 500 and r["lr"] > 0
    assert r["schedule"] in {o["schedule"] for o in r["options"]}
    kinds = [t["kind"] for t in doc["trials"]]
    assert kinds.count("trunk") == 5 and kinds.count("cooldown") == 3 and kinds.count("final") == 4
    # branches resumed from their trunk's checkpoint: their curves continue the trunk's
    by = {t["name"]: t for t in doc["trials"]}
    for t in doc["trials"]:
        if t["resume_from"]:
            parent = by[t["resume_from"]]["curve"]
            assert t["curve"]["val_loss"][: len(parent["val_loss"])] == parent["val_loss"]
    assert (out / "report.md").is_file() and (out / "tune.png").stat().st_size > 10_000
    assert not (out / "ckpt").exists()
    assert "recommended:" in shown and "spent" in shown
    # piped, the result reads at 80 columns: the headline wrapped, each spec folded whole, never cut with "…"
    result = shown[shown.index("recommended:"): shown.index("\nwrote ")]
    assert max(len(line) for line in result.splitlines()) <= 80 and "…" not in result
    assert "## Runs made" in (out / "report.md").read_text()


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_kill_9_then_resume_gives_identical_results(cli_run: tuple[Path, str], tmp_path: Path) -> None:
    reference = json.loads((cli_run[0] / "results.json").read_text())
    out = tmp_path / "tune"
    args = [sys.executable, "-m", "lrlab.cli", *ARGS, "--no-plots", "--out", str(out)]
    # killed once some trials have finished and a later one is mid-run with its own checkpoint
    kill_at(args, out, lambda done, ckpts: len(done) >= 3 and bool(ckpts - done), timeout=240, what="tune")
    assert not (out / "results.json").exists()
    doc, result = run_tune(None, out, resume=True)
    assert result is not None and doc["status"] == "complete"
    assert [s["resumed"] for s in doc["sessions"]] == [False, True]
    assert losses(doc) == losses(reference)  # bit for bit
    # the same decision and evidence; only the order in which trials were handed out (their number) may differ,
    # as it follows the order in which the workers finished
    def by_name(result: dict[str, Any]) -> dict[str, Any]:
        return {t["name"]: {k: v for k, v in t.items() if k != "number"} for t in result["trials"]}

    assert by_name(doc["result"]) == by_name(reference["result"])
    assert {k: v for k, v in doc["result"].items() if k != "trials"} == \
        {k: v for k, v in reference["result"].items() if k != "trials"}


@pytest.mark.parametrize(("extra", "message"), [
    (["--steps", "0"], "horizon must be a whole number >= 1, got 0"),
    (["--steps", "100", "--budget", "100"], "budget 100 updates is too small to make any decision"),
    (["--schedules", "cosin()"], "cosin"),
], ids=["horizon-0", "budget", "spec"])
def test_bad_input_exits_2_and_writes_nothing(extra: list[str], message: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "never"
    assert main(["tune", *extra, "--out", str(out)]) == 2
    captured = capsys.readouterr()
    err = captured.err
    assert "lrlab tune →" not in captured.out  # no folder is named before the input is accepted
    first, *rest = err.splitlines()
    assert first.startswith("error: ") and message in first and "Traceback" not in err
    # one line, except that a spec error shows the spec with a caret under the fault, as every verb does
    assert not rest or (message == "cosin" and rest[-1].strip() == "^")
    assert not out.exists()


@pytest.mark.parametrize(("extra", "message"), [
    (["--task", "imagenet"], "Invalid value for '--task': 'imagenet' is not a task; give lm, vision, text:PATH or "
                             "hf:NAME"),
    (["--task", "text:/no/such/corpus.txt"], "Invalid value for '--task': 'text:/no/such/corpus.txt': there is no "
                                             "file '/no/such/corpus.txt'"),
    (["--optimizer", "schedulefree"], "Invalid value for '--optimizer': 'schedulefree' has no schedule to tune (it "
                                      "is the no-schedule contender); choose from sgd, adagrad, rmsprop, adam, adamw"),
    (["--optimizer", "lion"], "Invalid value for '--optimizer': 'lion' is not one of sgd, adagrad, rmsprop, adam, "
                              "adamw"),
    (["--preset", "xl"], "Invalid value for '--preset': 'xl' is not one of tiny, small, base"),
    (["--law", "powerlaw"], "Invalid value for '--law': 'powerlaw' is not one of multipower, momentum, s1"),
    (["--backend", "slurm"], "Invalid value for '--backend': 'slurm' is not one of local, ray"),
], ids=["task", "missing-file", "schedulefree", "optimizer", "preset", "law", "backend"])
def test_bad_choices_are_usage_errors_naming_the_allowed_values(extra: list[str], message: str, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "never"
    assert main(["tune", *extra, "--out", str(out)]) == 2
    out_text, err = capsys.readouterr()
    assert out_text == "" and message in " ".join(re.sub(r"[│╭╮╰╯─]", " ", err).split())
    assert not out.exists()


def test_resume_of_a_folder_without_a_tune_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tune", "--resume", str(tmp_path)]) == 2
    assert "no tune.json there" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("extra", "dropped"), [
    (["--steps", "2000"], "--steps"),
    (["--lr", "find"], "--lr"),
    (["--task", "vision", "--preset", "small", "--optimizer", "sgd", "--seed", "1"],
     "--task, --preset, --optimizer, --seed"),
    (["--budget", "9000", "--schedules", "constant()", "--lr-extend", "0", "--law", "s1", "--batch-size", "8",
      "--checkpoint-every", "5", "--lr", "0.01"],
     "--lr, --budget, --schedules, --lr-extend, --law, --batch-size, --checkpoint-every"),
], ids=["steps", "lr-find", "task-preset-optimizer-seed", "the-rest"])
def test_resume_refuses_other_settings_with_exit_2_and_writes_nothing(
        extra: list[str], dropped: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """As `lrlab compare --resume` does (`lrlab.cli_options.refuse_beside_resume`): the folder's settings are the
    tune's; what may change on resume (--workers, --device, --backend, --address, --plots) is not refused."""
    folder = tmp_path / "tune"
    folder.mkdir()
    (folder / "tune.json").write_text("{}")
    assert main(["tune", "--resume", str(folder), *extra, "--workers", "1", "--device", "cpu"]) == 2
    out_text, err = capsys.readouterr()
    assert err == f"error: --resume takes its settings from DIR/tune.json; drop {dropped}\n" and out_text == ""
    assert [p.name for p in folder.iterdir()] == ["tune.json"] and (folder / "tune.json").read_text() == "{}"
