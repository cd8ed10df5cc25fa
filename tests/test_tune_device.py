"""`lrlab tune --device` (#11), as `lrlab compare` has it: the workers' devices recorded in ``tune.json`` and given
to the backend and to every trial's payload (on machines with GPUs, `lrlab.bench.device.available` mocked, and a
fake backend in place of the worker processes), a resumed tune kept on the kind of device it started on, an absent
device refused with exit 2 naming what is present, and the CPU path end to end."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

from lrlab.bench import device as device_mod
from lrlab.bench import jobs
from lrlab.bench.compare import cores
from lrlab.bench.device import Devices
from lrlab.cli import main
from lrlab.errors import LrlabError
from lrlab.files import WORKERS_LOCK_FILE
from lrlab.tune import TuneConfig
from lrlab.tune.runner import run_tune

#: the smallest tune of tests/test_tune_cli.py: 100 updates, a 500-update budget
SMALL: dict[str, Any] = {"task": "lm", "preset": "tiny", "horizon": 100, "budget": 500, "checkpoint_every": 10}


def machine(monkeypatch: pytest.MonkeyPatch, *, gpus: int = 0, mps: bool = False) -> None:
    """Pretend this machine has ``gpus`` CUDA devices and maybe MPS."""
    monkeypatch.setattr(device_mod, "available", lambda: Devices(cuda=gpus, mps=mps))


class FakeBackend:
    """Stands in for `LocalBackend` / `RayBackend`: records how it was built and what it was given, trains nothing,
    and is interrupted (Ctrl-C) on its first wait, so the tune stops with its first trials handed out."""

    made: ClassVar[list[dict[str, Any]]] = []
    payloads: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        FakeBackend.made.append({"args": args, "kwargs": kwargs})
        self.waited = False

    def submit(self, payload: dict[str, Any]) -> int:
        FakeBackend.payloads.append(payload)
        return len(FakeBackend.payloads)

    def wait(self, handles: Sequence[Any], timeout: float) -> list[Any]:
        if not self.waited:
            self.waited = True
            raise KeyboardInterrupt
        return list(handles)  # stopped: each returns at once

    def drain(self) -> list[tuple[str, int, int]]:
        return []

    def request_stop(self, handles: Sequence[Any]) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.fixture
def fake_backends(monkeypatch: pytest.MonkeyPatch) -> type[FakeBackend]:
    FakeBackend.made, FakeBackend.payloads = [], []
    monkeypatch.setattr(jobs, "LocalBackend", FakeBackend)
    monkeypatch.setattr(jobs, "RayBackend", FakeBackend)
    return FakeBackend


def execution(out: Path) -> dict[str, Any]:
    meta: dict[str, Any] = json.loads((out / "tune.json").read_text())["execution"]
    return meta


@pytest.mark.parametrize(
    ("gpus", "device", "workers", "devices"),
    [(2, "auto", None, ["cuda:0", "cuda:1"]),
     (2, "cuda", 3, ["cuda:0", "cuda:1", "cuda:0"]),
     (4, "cuda:3", None, ["cuda:3"]),
     (2, "cpu", 1, ["cpu"]),
     (0, "auto", 2, ["cpu", "cpu"]),
     (0, None, 2, ["cpu", "cpu"])],
    ids=["auto-2-gpus", "cuda-3-workers", "cuda:3", "cpu-on-a-gpu-machine", "auto-no-gpu", "default-cpu"])
def test_each_worker_gets_its_device_and_each_trial_the_kind(
        monkeypatch: pytest.MonkeyPatch, fake_backends: type[FakeBackend], tmp_path: Path, gpus: int,
        device: str | None, workers: int | None, devices: list[str]) -> None:
    machine(monkeypatch, gpus=gpus)
    out = tmp_path / "tune"
    doc, result = run_tune(TuneConfig(**SMALL), out, workers=workers, device=device)
    assert result is None and doc["status"] == "interrupted"
    kind = devices[0].split(":")[0]
    n = len(devices)
    assert {k: execution(out)[k] for k in ("device", "devices", "workers", "threads")} == \
        {"device": kind, "devices": devices, "workers": n, "threads": max(1, cores() // n)}
    assert doc["execution"] == execution(out)  # results.json says it too
    assert fake_backends.made == [{"args": (n, devices), "kwargs": {"workers_lock": out / WORKERS_LOCK_FILE}}]
    assert fake_backends.payloads and {p["device"] for p in fake_backends.payloads} == {kind}


@pytest.mark.parametrize(("device", "gpus"), [("cuda", 1), ("cpu", 0)])
def test_ray_tasks_ask_for_a_gpu_on_cuda(monkeypatch: pytest.MonkeyPatch, fake_backends: type[FakeBackend],
                                         tmp_path: Path, device: str, gpus: int) -> None:
    machine(monkeypatch, gpus=2)
    run_tune(TuneConfig(**SMALL), tmp_path / "tune", workers=1, device=device, backend="ray", address="auto")
    threads = execution(tmp_path / "tune")["threads"]
    assert fake_backends.made == [{"args": ("auto", threads), "kwargs": {"gpus": gpus}}]


def test_a_resumed_tune_stays_on_its_kind_of_device(monkeypatch: pytest.MonkeyPatch,
                                                    fake_backends: type[FakeBackend], tmp_path: Path) -> None:
    machine(monkeypatch, gpus=2)
    out = tmp_path / "tune"
    run_tune(TuneConfig(**SMALL), out, device="auto")
    threads = execution(out)["threads"]
    # None: the kind it ran on (one worker per GPU), whatever auto would pick now; its thread count is kept
    machine(monkeypatch, gpus=4)
    run_tune(None, out, resume=True)
    assert {k: execution(out)[k] for k in ("device", "devices", "threads")} == \
        {"device": "cuda", "devices": ["cuda:0", "cuda:1", "cuda:2", "cuda:3"], "threads": threads}
    assert {p["device"] for p in fake_backends.payloads} == {"cuda"}
    run_tune(None, out, resume=True, device="cuda:1", workers=2)
    assert execution(out)["devices"] == ["cuda:1", "cuda:1"]
    sessions = len(json.loads((out / "tune.json").read_text())["sessions"])
    with pytest.raises(LrlabError, match=r"the tune trained on cuda, and --device cpu is cpu; runs are deterministic "
                                         r"per kind of device, so its remaining trials must train on cuda too"):
        run_tune(None, out, resume=True, device="cpu")
    machine(monkeypatch, gpus=0)
    with pytest.raises(LrlabError, match=r"the tune trained on cuda and must finish there: device 'cuda' is not "
                                         r"available here \(.*\); available: cpu "):
        run_tune(None, out, resume=True)
    assert len(json.loads((out / "tune.json").read_text())["sessions"]) == sessions  # refused: nothing written


def test_a_folder_from_before_devices_were_recorded_resumes_on_the_cpu(
        monkeypatch: pytest.MonkeyPatch, fake_backends: type[FakeBackend], tmp_path: Path) -> None:
    out = tmp_path / "tune"
    run_tune(TuneConfig(**SMALL), out, workers=2)
    meta = json.loads((out / "tune.json").read_text())
    meta["execution"] = {"backend": "local", "workers": 3, "cores": 8, "threads": 5}  # as written before #11
    (out / "tune.json").write_text(json.dumps(meta))
    machine(monkeypatch, gpus=2)
    run_tune(None, out, resume=True)
    assert execution(out) == {"backend": "local", "workers": 3, "cores": 8, "threads": 5, "device": "cpu",
                              "devices": ["cpu"] * 3}
    assert fake_backends.made[-1]["args"] == (3, ["cpu"] * 3)
    with pytest.raises(LrlabError, match="the tune trained on cpu, and --device auto is cuda"):
        run_tune(None, out, resume=True, device="auto")


@pytest.mark.parametrize(("what", "runs"), [("the comparison", "runs"), ("the tune", "trials")],
                         ids=["compare", "tune"])
def test_compare_and_tune_resume_on_their_kind_of_device_by_one_function(
        monkeypatch: pytest.MonkeyPatch, what: str, runs: str) -> None:
    """`lrlab.bench.device.place_resumed`, which `lrlab.bench.compare.place_workers` and the tune runner call."""
    machine(monkeypatch, gpus=2)
    ex: dict[str, Any] = {"workers": 2, "threads": 3, "device": "cuda", "devices": ["cuda:0", "cuda:1"]}
    device_mod.place_resumed(ex, "cuda:1", None, folder="f", what=what, runs=runs)
    assert ex == {"workers": 1, "threads": 3, "device": "cuda", "devices": ["cuda:1"]}
    with pytest.raises(LrlabError, match=rf"^--resume 'f': {what} trained on cuda, and --device cpu is cpu; runs "
                                         rf"are deterministic per kind of device, so its remaining {runs} must train "
                                         r"on cuda too: drop --device \(or give one of that kind\)$"):
        device_mod.place_resumed(ex, "cpu", None, folder="f", what=what, runs=runs)
    machine(monkeypatch, gpus=0)
    with pytest.raises(LrlabError, match=rf"^--resume 'f': {what} trained on cuda and must finish there: device "
                                         r"'cuda' is not available here"):
        device_mod.place_resumed(ex, None, None, folder="f", what=what, runs=runs)
    with pytest.raises(LrlabError, match=r"^device 'cuda:1' is not available here"):  # as given: not reworded
        device_mod.place_resumed(ex, "cuda:1", None, folder="f", what=what, runs=runs)
    assert ex["devices"] == ["cuda:1"]  # refused: unchanged


@pytest.mark.parametrize(
    ("args", "gpus", "message"),
    [(["--device", "cuda"], 0, "device 'cuda' is not available here (this torch "),
     (["--device", "cuda:1"], 1, "device 'cuda:1' is not available here (1 CUDA device); available: cpu, cuda:0 "),
     (["--device", "mps"], 0, "device 'mps' is not available here (torch.backends.mps.is_available() is False); "
                              "available: cpu "),
     (["--device", "gpu"], 0, "device 'gpu' is not supported; choose from auto, cpu, cuda, cuda:N or mps")],
    ids=["cuda", "cuda:1", "mps", "misspelt"])
def test_the_cli_refuses_an_absent_device_with_exit_2_and_creates_nothing(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
        gpus: int, message: str) -> None:
    machine(monkeypatch, gpus=gpus)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    assert main(["tune", "--steps", "100", "--budget", "500", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1
    assert not out.exists() and not (tmp_path / "lrlab-runs").exists()


def test_the_cli_default_is_auto_and_resume_keeps_the_kind(monkeypatch: pytest.MonkeyPatch,
                                                           fake_backends: type[FakeBackend], tmp_path: Path) -> None:
    machine(monkeypatch, gpus=2)
    out = tmp_path / "tune"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["tune", "--steps", "100", "--budget", "500", "--out", str(out)]) == 130  # the fake's Ctrl-C
        assert execution(out)["devices"] == ["cuda:0", "cuda:1"]
        machine(monkeypatch, gpus=1)
        assert main(["tune", "--resume", str(out)]) == 130
    assert execution(out)["devices"] == ["cuda:0"]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_cpu_tune_end_to_end_then_resumed_keeps_the_cpu(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tune"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["tune", "--steps", "100", "--budget", "500", "--checkpoint-every", "10", "--no-plots",
                     "--device", "cpu", "--workers", "2", "--out", str(out)]) == 0
    doc = json.loads((out / "results.json").read_text())
    assert doc["status"] == "complete" and doc["result"]["spent"] <= 500
    assert {k: doc["execution"][k] for k in ("device", "devices", "workers")} == \
        {"device": "cpu", "devices": ["cpu", "cpu"], "workers": 2}
    # the finished folder, resumed: refused on another kind, kept on the CPU by default
    assert main(["tune", "--resume", str(out), "--device", "auto", "--no-plots"]) == 0  # auto is the CPU here
    assert main(["tune", "--resume", str(out), "--device", "cuda", "--no-plots"]) == 2
    assert "device 'cuda' is not available here" in capsys.readouterr().err
    again = json.loads((out / "results.json").read_text())
    assert again["result"] == doc["result"] and again["execution"]["device"] == "cpu"
