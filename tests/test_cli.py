"""The CLI end to end: one run per core command, and bad input -> one line, no traceback, exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lrlab.cli import main


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["list", "--json"], capsys)
    assert code == 0
    names = {r["name"] for r in json.loads(out)["schedules"]}
    assert {"cosine", "warmup", "wsd", "join", "one_cycle"} <= names


def test_show_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["show", "warmup(0.1) >> cosine(floor=0.1)", "--total", "100", "--at", "0,5,10,100",
                        "--lr", "3e-4", "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert [r["value"] for r in data["values"]][:3] == [0.0, 0.5, 1.0]
    assert data["values"][3]["value"] == pytest.approx(0.1, rel=1e-12)
    assert data["values"][2]["lr"] == pytest.approx(3e-4)
    assert [p["start"] for p in data["phases"]] == [0.0, 10.0]
    assert data["bound"] == "warmup(10) >> cosine(floor=0.1, total=90)"


def test_show_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["show", "step(0.25, factor=0.5)", "-n", "100"], capsys)
    assert code == 0
    assert "step(0.25, factor=0.5)" in out and "0.125" in out


def test_plot_writes_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "lr.png"
    code, out, _ = run(["plot", "warmup(0.06) >> cosine(floor=0.1)", "-n", "1000", "--out", str(png)], capsys)
    assert code == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert "peak 1 at t=60" in out and "minimum 0.1 at t=1000" in out
    assert "⠉" in out or "⣀" in out  # the braille terminal plot


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "cosin()", "-n", "10"], "did you mean cosine?"),
        (["show", "warmup(2000) >> cosine()", "-n", "1000"], "leaving nothing for cosine()"),
        (["show", "warmup(200) >> cosine(total=100)", "-n", "100"], "warmup(200) takes 200 clock units but the run's "
                                                                     "total is 100"),
        (["show", "wsd(warmupp=0.1)", "-n", "100"], "wsd has no argument 'warmupp'; did you mean warmup?"),
        (["show", "overlay(warmup(5))", "-n", "100"], "overlay is missing required argument 'base'"),
        (["show", "cosine(peak=-1, floor=2, total=0)", "-n", "10"], "cosine.total must be > 0"),
        (["plot", "cosine()", "-n", "-5"], "total must be a positive number"),
        (["show", "cosine()", "-n", "10", "--at", "a,b"], "--at must be comma-separated numbers"),
    ],
    ids=["unknown-name", "warmup-too-long", "fixed-warmup-too-long", "macro-keyword-typo", "missing-argument",
         "bad-total-field", "negative-total", "bad-at"],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(args, capsys)
    assert code == 2
    assert err.startswith("error: ") and message in err
    assert "Traceback" not in err + out


def test_console_script_exit_code_without_traceback() -> None:
    proc = subprocess.run([sys.executable, "-m", "lrlab.cli", "show", "cosine(flor=1)", "-n", "5"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "did you mean floor?" in proc.stderr and "Traceback" not in proc.stderr


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["plot"], capsys)
    assert code == 2 and "Missing argument" in err


BAD_FILES = [
    ({"name": "overlay"}, "overlay is missing required arguments 'head', 'base' (arguments: head, base)"),
    ({"name": "wsd", "foo": 1}, "wsd has no argument 'foo'"),
    ({"name": "wsd", "warmupp": 0.1}, "wsd has no argument 'warmupp'; did you mean warmup?"),
    ({"name": "cosine", "flor": 0.1}, "cosine has no argument 'flor'; did you mean floor?"),
    ({"schedule": {"name": "join", "pieces": [{"name": "warmup", "total": 10}, {"name": "cosin"}]}},
     "did you mean cosine?"),
    ({"name": "join", "pieces": 3}, "join: invalid argument value"),
    ({"name": "cosine", "total": "ten"}, "cosine.total must be a number, got 'ten'"),
]


@pytest.mark.parametrize(("data", "message"), BAD_FILES, ids=[m for _, m in BAD_FILES])
@pytest.mark.parametrize("command", ["show", "plot"])
def test_bad_schedule_file_is_one_line_and_exit_2(data: object, message: str, command: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "run.json"
    path.write_text(json.dumps(data))
    code, out, err = run([command, f"@{path}", "-n", "100", "--no-terminal"] if command == "plot"
                         else [command, f"@{path}", "-n", "100"], capsys)
    assert code == 2
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert "Traceback" not in err + out


def test_good_schedule_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lrlab.compat import timm
    from lrlab.spec import to_dict

    s = timm.WSDLRScheduler(0.1, 100, 30, lr_min=1e-3, stable_fn="rsqrt", stable_timescale=10)
    path = tmp_path / "run.json"
    path.write_text(json.dumps(to_dict(s)))
    code, out, _ = run(["show", f"@{path}", "-n", "100", "--at", "0,99", "--json"], capsys)
    assert code == 0
    assert [r["value"] for r in json.loads(out)["values"]] == s.values([0, 99]).tolist()


def test_plot_to_an_unwritable_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, out, err = run(["plot", "cosine()", "-n", "100", "--no-terminal", "--out", str(blocker / "lr.png")], capsys)
    assert code == 2 and err.startswith("error: cannot write the plot to") and "Traceback" not in err + out


@pytest.mark.parametrize("module", ["plotext", "matplotlib"])
def test_plot_without_plot_libraries(module: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    code, out, err = run(["plot", "cosine()", "-n", "100", "--out", str(tmp_path / "lr.png")], capsys)
    assert code == 2 and f"needs {module}" in err and "pip install 'lrlab[plot]'" in err
    assert "Traceback" not in err + out


@pytest.mark.parametrize("verb", ["plot", "show"])
def test_warmup_longer_than_the_run_is_refused_by_plot_and_show(verb: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run([verb, "warmup(2000) >> cosine(total=100)", "--total", "1000"], capsys)
    assert code == 2
    assert "warmup(2000) takes 2000 clock units but the run's total is 1000" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("verb", ["show", "plot"])
@pytest.mark.parametrize(("lr", "message"), [("nan", "--lr must be a finite number, got nan"),
                                             ("-1", "--lr must be > 0, got -1.0"), ("0", "--lr must be > 0, got 0.0")],
                         ids=["nan", "negative", "zero"])
def test_a_bad_base_lr_is_refused(verb: str, lr: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run([verb, "cosine()", "-n", "100", "--lr", lr, *(["--no-terminal"] if verb == "plot" else [])],
                         capsys)
    assert code == 2 and err == f"error: {message}\n" and out == ""


def test_plot_to_an_existing_folder_says_it_is_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "run.v2"
    folder.mkdir()
    code, out, err = run(["plot", "cosine()", "-n", "100", "--no-terminal", "--out", str(folder)], capsys)
    assert code == 2 and out == ""
    assert err == f"error: cannot write the plot to {str(folder)!r}: it is a folder; give a file name such as " \
                  f"{str(folder / 'lr.png')!r}\n"


@pytest.mark.parametrize("verb", ["show", "plot"])
@pytest.mark.parametrize(("data", "message"), [
    ("cosine()".encode("utf-16"), "is not UTF-8 text (it looks like UTF-16 or UTF-32"),
    (b"cosine(floor=0.1) # \xe9t\xe9", "is not UTF-8 text (byte 0xe9 at offset 20)"),
], ids=["utf16", "latin1"])
def test_a_spec_file_in_another_encoding_is_one_line_and_exit_2(verb: str, data: bytes, message: str, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "spec.txt"
    path.write_bytes(data)
    code, out, err = run([verb, f"@{path}", "-n", "100"], capsys)
    assert code == 2 and err.startswith(f"error: schedule file {str(path)!r} {message}") and err.count("\n") == 1
    assert "Traceback" not in err + out


@pytest.mark.parametrize(("spec", "message"), [
    ("warmup(0.1 >> cosine()", "unbalanced parenthesis: '(' is never closed (add ')') at column 7"),
    ("exponential(1.5)", "exponential(1.5, total=10000) gives inf at t=1751 of a run of 10000 clock units"),
    ("cosine(floor=-1)", "cosine(floor=-1, total=10000) gives -"),
], ids=["unbalanced", "overflow", "negative"])
def test_specs_refused_with_the_reason(spec: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["show", spec, "-n", "10000"], capsys)
    assert code == 2 and err.startswith(f"error: {message}")
