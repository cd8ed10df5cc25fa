"""A log that is not UTF-8 text (UTF-16 with its byte-order mark, Latin-1) is refused by every log reader with an
`LrlabError` naming the file and its encoding, and by `lrlab predict` / `lrlab diagnose` with one line, exit 2
(was a bare `UnicodeDecodeError` from predict, naming no file). lrlab writes UTF-8 and appends to Monitor files,
so it refuses other encodings rather than decoding them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from lrlab.cli import main
from lrlab.errors import LrlabError
from lrlab.log_readers import load_log
from lrlab.monitor import Monitor
from lrlab.monitor_files import load_curves, read_csv, read_jsonl

JSONL = "".join(json.dumps(r) + "\n" for r in [{"type": "meta", "total_steps": 20}]
                + [{"type": "step", "step": s, "lr": [1e-3], "loss": 3.0 - 0.01 * s} for s in range(20)]
                + [{"type": "eval", "step": 20, "val_loss": 2.8}])
STEPS_CSV = "step,lr_0,loss\n" + "".join(f"{s},0.001,{3.0 - 0.01 * s}\n" for s in range(20))
EVALS_CSV = "step,val_loss\n20,2.8\n"
HF_STATE = json.dumps({"max_steps": 20, "log_history": [{"step": s, "loss": 3.0 - 0.01 * s, "learning_rate": 1e-3}
                                                        for s in range(1, 21)]})
UTF16 = "is UTF-16 text; lrlab reads UTF-8: convert it (e.g. iconv -f UTF-16 -t UTF-8)"


def write(path: Path, text: str, encoding: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def latin1(text: str) -> str:
    """``text`` with a non-ASCII character (é) added where the readers would accept it in UTF-8."""
    return text + ("# café\n" if not text.startswith("{") else '{"type": "meta", "n": "é"}\n')


# ---------------------------------------------------------------------------------------------- readers


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "latin-1"])
@pytest.mark.parametrize(("name", "text", "read"), [
    ("monitor.jsonl", JSONL, lambda p: read_jsonl(p)),
    ("steps.csv", STEPS_CSV, lambda p: read_csv(p, None)),
    ("evals.csv", EVALS_CSV, None),  # the evals file beside a good steps.csv
    ("trainer_state.json", HF_STATE, lambda p: load_log(p)),
    ("metrics.csv", "step,train_loss,lr-AdamW\n" + "".join(f"{s},{3 - 0.01 * s},0.001\n" for s in range(20)),
     lambda p: load_log(p)),
], ids=["jsonl", "steps.csv", "evals.csv", "hf", "lightning-csv"])
def test_readers_refuse_a_log_that_is_not_utf8_naming_it(
        tmp_path: Path, name: str, text: str, read: Callable[[Path], object] | None, encoding: str) -> None:
    if encoding == "latin-1":
        text = latin1(text)
    path = write(tmp_path / name, text, encoding)
    if read is None:
        write(tmp_path / "steps.csv", STEPS_CSV, "utf-8")
        read = lambda _: read_csv(tmp_path / "steps.csv", path)  # noqa: E731
    with pytest.raises(LrlabError) as e:
        read(path)
    msg = str(e.value)
    assert repr(str(path)) in msg and "\n" not in msg
    if encoding == "latin-1":
        assert "is not UTF-8 text (byte 0xe9 at offset" in msg
    elif encoding == "utf-16-be":  # no byte-order mark: ASCII is valid UTF-8 with a zero byte before each letter
        assert "is not UTF-8 text (a zero byte at offset 0: UTF-16 or UTF-32 without a byte-order mark" in msg
    else:
        assert UTF16 in msg


def test_utf8_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    write(tmp_path / "steps.csv", STEPS_CSV, "utf-8-sig")
    write(tmp_path / "evals.csv", EVALS_CSV, "utf-8-sig")
    curves = load_curves(tmp_path)
    assert list(curves.step) == list(range(20)) and list(curves.val_loss) == [2.8]
    assert len(load_curves(write(tmp_path / "monitor.jsonl", JSONL, "utf-8-sig")).step) == 20


def test_a_monitor_resuming_onto_a_utf16_csv_refuses_it(tmp_path: Path) -> None:
    path = write(tmp_path / "steps.csv", STEPS_CSV, "utf-16")
    with pytest.raises(LrlabError, match=UTF16.split(";")[0]) as e:
        Monitor(out_dir=tmp_path, jsonl=False, csv=True)
    assert repr(str(path)) in str(e.value)


# ---------------------------------------------------------------------------------------------- CLI


@pytest.mark.parametrize("verb", ["predict", "diagnose"])
@pytest.mark.parametrize("given", ["file", "folder"])
def test_cli_refuses_a_utf16_monitor_log_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     verb: str, given: str) -> None:
    path = write(tmp_path / "mon" / "steps.csv", STEPS_CSV, "utf-16")
    args = [verb, str(path if given == "file" else path.parent)] + (["--no-plot"] if verb == "predict" else [])
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err == f"error: Monitor log {str(path)!r} {UTF16}\n"


def test_predict_refuses_a_utf16_results_json_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "run" / "results.json", json.dumps({"trials": []}), "utf-16")
    assert main(["predict", str(path.parent), "--no-plot"]) == 2
    assert capsys.readouterr().err == f"error: results.json {str(path)!r} {UTF16}\n"
