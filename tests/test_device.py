"""`lrlab.bench.device` on this (CPU) machine with torch's device queries mocked: what ``--device`` resolves to on
machines with 0, 1 or 4 GPUs or MPS, one worker per GPU, refusal of an absent device (one line, exit 2 through the
CLI), and that a CPU run is unchanged and records its device."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lrlab.bench.device import (
    DEVICE_CHOICES,
    Placement,
    parse_device,
    placement,
    resolve_device,
    worker_devices,
)
from lrlab.errors import LrlabError


def machine(monkeypatch: pytest.MonkeyPatch, *, gpus: int = 0, mps: bool = False) -> None:
    """Pretend this machine has ``gpus`` CUDA devices and maybe MPS (torch's own queries, mocked)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)


@pytest.mark.parametrize(("text", "parsed"), [("auto", ("auto", None)), ("CPU", ("cpu", None)),
                                              ("cuda", ("cuda", None)), ("cuda:3", ("cuda", 3)),
                                              (" mps ", ("mps", None))],
                         ids=["auto", "cpu", "cuda", "cuda-n", "mps"])
def test_parse_device(text: str, parsed: tuple[str, int | None]) -> None:
    assert parse_device(text) == parsed


@pytest.mark.parametrize("text", ["gpu", "cuda:", "cuda:-1", "cuda:x", "tpu", ""])
def test_a_misspelt_device_names_the_choices(text: str) -> None:
    with pytest.raises(LrlabError, match=f"device {text!r} is not supported; choose from {DEVICE_CHOICES}"):
        parse_device(text)


@pytest.mark.parametrize(
    ("gpus", "mps", "text", "expected"),
    [(0, False, "auto", "cpu"), (0, True, "auto", "mps"), (1, True, "auto", "cuda:0"), (4, False, "auto", "cuda:0"),
     (4, False, "cuda", "cuda:0"), (4, False, "cuda:3", "cuda:3"), (4, True, "mps", "mps"), (4, True, "cpu", "cpu")],
    ids=["cpu-only", "mac", "gpu-and-mps", "four-gpus", "cuda", "cuda-3", "mps", "cpu-despite-gpus"])
def test_auto_picks_cuda_then_mps_then_the_cpu(monkeypatch: pytest.MonkeyPatch, gpus: int, mps: bool, text: str,
                                               expected: str) -> None:
    machine(monkeypatch, gpus=gpus, mps=mps)
    assert resolve_device(text, local_rank=0) == expected


def test_under_torchrun_each_rank_takes_its_own_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    machine(monkeypatch, gpus=4)
    assert [resolve_device("cuda", local_rank=r) for r in range(4)] == ["cuda:0", "cuda:1", "cuda:2", "cuda:3"]
    monkeypatch.setenv("LOCAL_RANK", "2")
    assert resolve_device("auto") == "cuda:2"
    assert resolve_device("cuda:1") == "cuda:1"  # an explicit index wins


@pytest.mark.parametrize(
    ("gpus", "mps", "text", "message"),
    [(0, False, "cuda", "device 'cuda' is not available here (this torch 2.13.0+cpu is built without CUDA); "
                        "available: cpu (--device auto picks CUDA, then MPS, then the CPU)"),
     (2, False, "cuda:2", "device 'cuda:2' is not available here (2 CUDA devices); available: cpu, "
                          "cuda:0 .. cuda:1"),
     (1, False, "cuda:1", "device 'cuda:1' is not available here (1 CUDA device); available: cpu, cuda:0 "),
     (0, False, "mps", "device 'mps' is not available here (torch.backends.mps.is_available() is False); "
                       "available: cpu ")],
    ids=["no-cuda", "index-past-the-end", "one-gpu", "no-mps"])
def test_an_absent_device_is_refused_naming_what_is_present(monkeypatch: pytest.MonkeyPatch, gpus: int, mps: bool,
                                                            text: str, message: str) -> None:
    if "built without CUDA" in message and torch.version.cuda is not None:
        pytest.skip("this torch is built with CUDA")
    machine(monkeypatch, gpus=gpus, mps=mps)
    with pytest.raises(LrlabError) as e:
        resolve_device(text)
    assert str(e.value).startswith(message.replace("2.13.0+cpu", torch.__version__))
    with pytest.raises(LrlabError):
        worker_devices(text, None, cpu_workers=2)


@pytest.mark.parametrize(
    ("gpus", "mps", "text", "workers", "expected"),
    [(0, False, "auto", None, ("cpu", "cpu")), (0, False, "cpu", 3, ("cpu",) * 3),
     (4, False, "auto", None, ("cuda:0", "cuda:1", "cuda:2", "cuda:3")),
     (2, False, "cuda", 5, ("cuda:0", "cuda:1", "cuda:0", "cuda:1", "cuda:0")),
     (4, False, "cuda:2", None, ("cuda:2",)), (4, False, "cuda:2", 2, ("cuda:2", "cuda:2")),
     (0, True, "auto", None, ("mps",)), (4, False, "cpu", None, ("cpu", "cpu"))],
    ids=["cpu-default", "cpu-3", "one-per-gpu", "more-workers-than-gpus", "one-gpu-named", "two-on-one-gpu", "mps",
         "cpu-on-a-gpu-machine"])
def test_a_comparison_runs_one_worker_per_gpu(monkeypatch: pytest.MonkeyPatch, gpus: int, mps: bool, text: str,
                                              workers: int | None, expected: tuple[str, ...]) -> None:
    machine(monkeypatch, gpus=gpus, mps=mps)
    assert worker_devices(text, workers, cpu_workers=2) == expected


def test_placement_on_the_cpu_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    p = placement("cpu")
    assert p == Placement(device="cpu") and p.record() == {"device": "cpu", "device_name": None, "autocast": None}
    with p.autocasting():
        assert not torch.is_autocast_enabled("cpu")
    import os

    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    with pytest.raises(LrlabError, match="needs a resolved device"):
        placement("auto")


def test_placement_on_a_gpu_autocasts_where_it_has_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i: f"GPU {i}")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i: (9, 0) if i == 1 else (7, 5))
    assert placement("cuda:1") == Placement(device="cuda:1", name="GPU 1", autocast="bfloat16")
    assert placement("cuda:0").autocast is None  # compute capability 7.5 (T4): no bf16
    import os

    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"  # deterministic cuBLAS
    with Placement(device="cpu", autocast="bfloat16").autocasting():  # the context autocasts when asked
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16


@pytest.mark.parametrize(
    ("args", "message"),
    [(["train", "--device", "cuda", "--steps", "10"], "device 'cuda' is not available here"),
     (["compare", "--device", "cuda:1", "--steps", "10"], "device 'cuda:1' is not available here"),
     (["find", "--device", "mps"], "device 'mps' is not available here"),
     (["compare", "--device", "gpu"], "device 'gpu' is not supported; choose from auto, cpu, cuda, cuda:N or mps")],
    ids=["train", "compare", "find", "misspelt"])
def test_the_cli_refuses_an_absent_device_with_exit_2_and_creates_nothing(
        args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from lrlab.cli import main

    machine(monkeypatch, gpus=1 if "cuda:1" in args else 0)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    code = main([*args, "--out", str(out)] if args[0] != "find" else args)
    _, err = capsys.readouterr()
    assert code == 2 and err.startswith("error: ") and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists() and not (tmp_path / "lrlab-runs").exists()


class FakeRun:
    """What `place_workers` reads and writes of a `CompareRun`."""

    def __init__(self, execution: dict[str, object]) -> None:
        self.out = Path("cmp")
        self.meta = {"execution": execution}
        self.saved = 0

    def save_meta(self) -> None:
        self.saved += 1


def test_a_comparison_records_its_devices_and_resumes_on_the_same_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    from lrlab.bench.compare import cores, place_workers

    machine(monkeypatch, gpus=2)
    new = FakeRun({"workers": 2, "threads": 1})
    place_workers(new, "auto", None, resume=False)  # type: ignore[arg-type]
    assert new.meta["execution"] == {"workers": 2, "threads": max(1, cores() // 2), "device": "cuda",
                                     "devices": ["cuda:0", "cuda:1"]} and new.saved == 1
    # resumed: the kind it ran on, whatever --device auto would pick now
    place_workers(new, None, None, resume=True)  # type: ignore[arg-type]
    assert new.meta["execution"]["devices"] == ["cuda:0", "cuda:1"]
    with pytest.raises(LrlabError, match="the comparison trained on cuda, and --device cpu is cpu; runs are "
                                         "deterministic per kind of device"):
        place_workers(new, "cpu", None, resume=True)  # type: ignore[arg-type]
    # a folder from before devices were recorded ran on the CPU: it keeps its workers and threads
    old = FakeRun({"workers": 3, "threads": 5})
    place_workers(old, None, None, resume=True)  # type: ignore[arg-type]
    assert old.meta["execution"] == {"workers": 3, "threads": 5, "device": "cpu", "devices": ["cpu"] * 3}
    with pytest.raises(LrlabError, match="trained on cpu, and --device auto is cuda"):
        place_workers(old, "auto", None, resume=True)  # type: ignore[arg-type]


def test_a_cpu_run_records_its_device_and_a_checkpoint_resumes_only_on_its_kind(tmp_path: Path) -> None:
    from lrlab.bench.train import CHECKPOINT, TrainConfig, train

    config = TrainConfig(steps=6, eval_every=3, eval_batches=1)
    asked = iter(range(100))
    r = train(config, out_dir=tmp_path, should_stop=lambda: next(asked) >= 3)  # stops after 3 updates
    assert r.stopped and r.steps_done == 3
    assert {k: r.env[k] for k in ("device", "device_name", "autocast")} == {"device": "cpu", "device_name": None,
                                                                            "autocast": None}
    state = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    assert state["device"] == "cpu"
    state["device"] = "cuda"  # as if trained on a GPU
    torch.save(state, tmp_path / CHECKPOINT)
    with pytest.raises(LrlabError, match="cannot resume on cpu: the checkpoint was trained on cuda"):
        train(config, out_dir=tmp_path, resume=True)
