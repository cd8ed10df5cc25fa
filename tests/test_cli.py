"""The CLI end to end: one run per core command, and bad input -> one line, no traceback, exit 2."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import lrlab
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
    assert isinstance(s, lrlab.Schedule)  # one base LR: one schedule
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


# ------------------------------------------------------------------------------------------ conventions (#14)
def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    import lrlab

    for flag in ("--version", "-V"):
        code, out, _ = run([flag], capsys)
        assert code == 0 and out == f"lrlab {lrlab.__version__}\n"


def verbs() -> list[str]:
    from lrlab.cli import command

    return sorted(command().commands)


def test_every_verb_is_registered() -> None:
    assert {"list", "show", "plot", "compare", "report", "train", "diagnose", "find", "suggest", "predict"} <= \
        set(verbs())


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help_everywhere_without_markup(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run([flag], capsys)
    assert code == 0 and "Usage: lrlab" in out and "--install-completion" in out
    for verb in verbs():
        code, out, err = run([verb, flag], capsys)
        assert code == 0 and f"Usage: lrlab {verb}" in out, (verb, err)
        assert "``" not in out and "`" not in out, verb  # docstring markup shown as plain text


def test_help_texts_are_plain_one_line_paragraphs() -> None:
    from lrlab.cli import command

    def texts(cmd: object) -> list[str]:
        found = [getattr(cmd, "help", None) or ""]
        found += [getattr(p, "help", None) or "" for p in getattr(cmd, "params", [])]
        for sub in getattr(cmd, "commands", {}).values():
            found += texts(sub)
        return found

    for text in texts(command()):
        assert "`" not in text, text
        assert all("\n" not in para for para in text.split("\n\n")), text


def test_shell_completion_script(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--show-completion", "bash"], capsys)
    assert code == 0 and "_LRLAB_COMPLETE=complete_bash" in out


def complete(words: str) -> list[str]:
    """What the shell would offer for the last word of ``words`` (bash protocol, through the real entry point)."""
    env = {**os.environ, "_LRLAB_COMPLETE": "complete_bash", "COMP_WORDS": words,
           "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1))}
    proc = subprocess.run([sys.executable, "-m", "lrlab.cli"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout.split()


def test_completion_offers_verbs_and_choices() -> None:
    assert complete("lrlab sh") == ["show"]
    assert complete("lrlab show x -n 10 --as ") == ["torch", "hf", "lightning", "optax", "timm"]


def test_a_bad_choice_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["show", "cosine()", "-n", "10", "--as", "keras"], capsys)
    assert code == 2 and out == ""
    assert "Invalid value for '--as': 'keras' is not one of torch, hf, lightning, optax, timm" in flat(err)


def flat(text: str) -> str:
    """A usage error's text without the panel around it, on one line."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


# ------------------------------------------------------------------------------------------ list, show (#14)
def test_list_is_plain_text(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["list"], capsys)
    assert code == 0 and "`" not in out
    assert "step(every, factor, peak, total)\n    Step decay: multiply by factor every every clock units.\n" in out
    assert "aliases: onecycle = one_cycle" in out


def test_show_prints_the_formula_of_the_shape_in_use(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["show", "warmup(0.1, shape=cosine) >> cooldown(shape=linear)", "-n", "100"], capsys)
    assert code == 0
    assert "floor + (peak - floor) * (1 - cos(pi * p)) / 2, p = t / total" in out
    assert "floor + (peak - floor) * (1 - p), p = min(t / total, 1)" in out
    assert "sqrt" not in out and "exponential" not in out and "`" not in out


@pytest.mark.parametrize(("peer", "line"), [
    ("torch", "scheduler = LambdaLR(optimizer, lr_lambda)"),
    ("hf", "scheduler = get_cosine_with_min_lr_schedule_with_warmup("),
    ("lightning", "def configure_optimizers(self):"),
    ("optax", "schedule = optax.warmup_cosine_decay_schedule("),
    ("timm", "scheduler = CosineLRScheduler("),
])
def test_show_as_peer(peer: str, line: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["show", "warmup(0.06) >> cosine(floor=0.1)", "-n", "1000", "--as", peer], capsys)
    assert code == 0 and err == ""
    assert out.startswith(f"# warmup(60) >> cosine(floor=0.1, total=940) over 1000 updates (lrlab show --as {peer})")
    assert line in out
    compile(out, "<show --as>", "exec")  # valid Python


def test_show_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["show", "cosine()", "-n", "100", "--as", "torch", "--json"], capsys)
    assert code == 0
    assert json.loads(out)["body"] == "scheduler = CosineAnnealingLR(optimizer, T_max=100)"


def test_show_as_refuses_what_the_peer_cannot_express(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["show", "one_cycle()", "-n", "1000", "--as", "hf"], capsys)
    assert code == 2 and out == ""
    assert err == ("error: transformers cannot express one_cycle(1000) exactly: transformers has no one_cycle "
                   "schedule (it has constant, linear, cosine, polynomial, inverse_sqrt, cosine with hard restarts "
                   "and WSD, each after a linear warm-up); --as torch writes it\n")


# ------------------------------------------------------------------------------------------ plot (#14)
def test_plot_overlays_several_schedules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "lr.png"
    code, out, _ = run(["plot", "cosine(); linear(); warmup(0.1) >> cosine(floor=0.1)", "-n", "100", "--out",
                        str(png), "--log-y"], capsys)
    assert code == 0 and png.read_bytes()[:4] == b"\x89PNG"
    assert "  1: cosine()\n  2: linear()\n  3: warmup(0.1) >> cosine(floor=0.1)\n" in out
    assert "1: peak 1 at t=0; minimum 0 at t=100\n" in out
    assert "3: peak 1 at t=10; minimum 0.1 at t=100\n" in out
    code, out, _ = run(["plot", "cosine(); linear()", "-n", "100", "--no-terminal"], capsys)
    assert out == "  1: cosine()\n  2: linear()\n1: peak 1 at t=0; minimum 0 at t=100\n" \
                  "2: peak 1 at t=0; minimum 0 at t=100\n"


def test_plot_refuses_an_empty_list(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["plot", " ; ", "-n", "100"], capsys)
    assert code == 2 and err.startswith("error: give at least one schedule spec")


# ------------------------------------------------------------------------------------------ 80 columns, piped
def piped(args: list[str], columns: int = 80) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": str(columns), "TERM": "dumb"}
    env.pop("FORCE_COLOR", None)
    return subprocess.run([sys.executable, "-m", "lrlab.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("args", [
    ["list"],
    ["show", "warmup(0.06) >> constant(total=0.5) >> cosine_restarts(0.1, mult=2, decay=0.5) >> constant(0.01)",
     "-n", "100000", "--lr", "3e-4"],
    ["plot", "warmup(0.06) >> cosine(floor=0.1); wsd(warmup=0.06, decay=0.2); one_cycle()", "-n", "1000"],
    ["plot", "cosine_restarts(0.25, decay=0.5)", "-n", "1000", "--log-y"],
    ["--help"], ["show", "--help"], ["compare", "--help"], ["train", "--help"], ["find", "--help"],
], ids=["list", "show", "plot-several", "plot-log", "help", "show-help", "compare-help", "train-help", "find-help"])
def test_readable_at_80_columns_when_piped(args: list[str]) -> None:
    proc = piped(args)
    assert proc.returncode == 0, proc.stderr
    assert "\x1b[" not in proc.stdout  # no escape codes in a pipe
    assert "…" not in proc.stdout  # nothing cut short
    assert max(len(line) for line in proc.stdout.splitlines()) <= 80, proc.stdout


# ------------------------------------------------------------------------------------------ missing extras (#14)
MISSING = [
    (["compare", "--steps", "20", "--out", "{out}"], "torch", "lrlab compare needs torch: pip install 'lrlab[bench]'"),
    (["compare", "--steps", "20", "--out", "{out}"], "matplotlib",
     "lrlab compare needs matplotlib for its plots: pip install 'lrlab[bench]' (or pass --no-plots)"),
    (["compare", "--task", "vision", "--no-plots", "--out", "{out}"], "sklearn",
     "lrlab compare needs scikit-learn for the vision task: pip install 'lrlab[bench]'"),
    (["train", "--steps", "20", "--out", "{out}"], "torch", "lrlab train needs torch: pip install 'lrlab[bench]'"),
    (["find", "--out", "{out}/find.png"], "torch", "lrlab find needs torch: pip install 'lrlab[bench]'"),
    (["find", "--out", "{out}/find.png"], "matplotlib",
     "lrlab find needs matplotlib for the plot: pip install 'lrlab[plot]'"),
    (["tune", "--steps", "100", "--out", "{out}"], "torch", "lrlab tune needs torch: pip install 'lrlab[bench]'"),
    (["tune", "--steps", "100", "--out", "{out}"], "scipy", "lrlab tune needs scipy: pip install 'lrlab[bench]'"),
    (["suggest", "--task", "lm", "--steps", "100", "--find"], "torch",
     "lrlab suggest needs torch for --find: pip install 'lrlab[bench]'"),
    (["predict", "{out}"], "scipy", "lrlab predict needs scipy: pip install 'lrlab[predict]'"),
    (["report", "{out}"], "matplotlib",
     "lrlab report needs matplotlib for its plots: pip install 'lrlab[plot]' (or pass --no-plots)"),
    (["plot", "cosine()", "-n", "10", "--no-terminal", "--out", "{out}/lr.png"], "matplotlib",
     "lrlab plot needs matplotlib for the PNG: pip install 'lrlab[plot]'"),
]


@pytest.mark.parametrize(("args", "module", "message"), MISSING, ids=[f"{a[0]}-{m}" for a, m, _ in MISSING])
def test_a_missing_extra_is_one_line_and_creates_nothing(args: list[str], module: str, message: str, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now fails, as when it is not installed
    out_dir = tmp_path / "run"
    code, out, err = run([a.replace("{out}", str(out_dir)) for a in args], capsys)
    assert (code, out, err) == (2, "", f"error: {message}\n")
    assert not out_dir.exists()


def test_help_needs_no_extra(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    code, out, _ = run(["compare", "-h"], capsys)
    assert code == 0 and "Usage: lrlab compare" in out


def test_a_missing_extra_found_while_running_is_one_line(capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import lrlab.cli

    monkeypatch.setitem(lrlab.cli.NEEDS, "find", ())  # not declared: found when find imports torch
    monkeypatch.setitem(sys.modules, "torch", None)
    code, _, err = run(["find", "--num-iter", "5"], capsys)
    assert (code, err) == (2, "error: lrlab find needs torch: pip install 'lrlab[bench]'\n")


def test_without_torch_in_a_fresh_process(tmp_path: Path) -> None:
    """`pip install lrlab` without torch: one line, exit 2, no traceback, no run folder."""
    out_dir = tmp_path / "run"
    script = ("import sys; sys.modules['torch'] = None; from lrlab.cli import main; "
              f"sys.exit(main(['compare', '--steps', '20', '--out', {str(out_dir)!r}]))")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr == "error: lrlab compare needs torch: pip install 'lrlab[bench]'\n"
    assert "Traceback" not in proc.stderr and not out_dir.exists()


def test_choice_lists_match_the_library() -> None:
    from lrlab.cli_predict import LAWS
    from lrlab.predict.laws import LAW_NAMES

    assert LAWS == LAW_NAMES


def test_predict_law_is_checked_when_read(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["predict", "nowhere", "--law", "powerlaw"], capsys)
    assert code == 2 and out == ""
    assert "Invalid value for '--law': 'powerlaw' is not one of multipower, momentum, s1" in flat(err)


BAD_CHOICES = [
    (["find", "--preset", "huge"], "Invalid value for '--preset': 'huge' is not one of tiny, small, base"),
    (["find", "--optimizer", "adamx"], "Invalid value for '--optimizer': 'adamx' is not one of sgd, adagrad, "
                                       "rmsprop, adam, adamw, schedulefree"),
    (["find", "--mode", "log"], "Invalid value for '--mode': 'log' is not one of exp, linear"),
    (["find", "--task", "text:"], "Invalid value for '--task': 'text:' names no file; give lm, vision, text:PATH "
                                  "or hf:NAME"),
    (["find", "--task", "text:/no/such/file.txt"], "Invalid value for '--task': 'text:/no/such/file.txt': there "
                                                   "is no file '/no/such/file.txt'"),
    (["find", "--task", "imagenet"], "Invalid value for '--task': 'imagenet' is not a task; give lm, vision, "
                                     "text:PATH or hf:NAME"),
    (["suggest", "--task", "speech", "--steps", "100"], "Invalid value for '--task': 'speech' is not one of lm, "
                                                        "vision, finetune"),
    (["compare", "--optimizers", "adamw,lion"], "Invalid value for '--optimizers': 'lion' is not one of sgd, "
                                                "adagrad, rmsprop, adam, adamw, schedulefree"),
    (["compare", "--backend", "slurm"], "Invalid value for '--backend': 'slurm' is not one of local, ray"),
    (["compare", "--task", "hf:"], "Invalid value for '--task': 'hf:' names no dataset; give lm, vision, text:PATH "
                                   "or hf:NAME"),
    (["compare", "--preset", "xl"], "Invalid value for '--preset': 'xl' is not one of tiny, small, base"),
    (["train", "--optimizer", "lion"], "Invalid value for '--optimizer': 'lion' is not one of sgd, adagrad, "
                                       "rmsprop, adam, adamw, schedulefree"),
    (["diagnose", "nowhere", "--fail-on", "info"], "Invalid value for '--fail-on': 'info' is not one of warning, "
                                                   "error"),
    (["suggest", "--task", "lm", "--steps", "100", "--preset", "large"], "Invalid value for '--preset': 'large' is "
                                                                         "not one of tiny, small, base"),
]


@pytest.mark.parametrize(("args", "message"), BAD_CHOICES, ids=[" ".join(a) for a, _ in BAD_CHOICES])
def test_choices_are_checked_when_read(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(args, capsys)
    assert (code, out) == (2, "") and message in flat(err)


def test_completion_of_tasks_and_names(tmp_path: Path) -> None:
    assert complete("lrlab find --task ") == ["lm", "vision", "text:", "hf:"]
    assert complete("lrlab find --optimizer ada") == ["adagrad", "adam", "adamw"]
    assert complete("lrlab suggest --task f") == ["finetune"]
    assert complete("lrlab compare --optimizers adamw,s") == ["adamw,sgd", "adamw,schedulefree"]
    assert complete("lrlab compare --backend ") == ["local", "ray"]
    (tmp_path / "corpus.txt").write_text("x")
    assert complete(f"lrlab find --task text:{tmp_path}/co") == [f"text:{tmp_path}/corpus.txt"]
