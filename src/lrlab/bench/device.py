"""Where a run trains: ``--device auto | cpu | cuda | cuda:N | mps`` resolved against the devices this machine has.
`resolve_device` picks one process's device (``lrlab train``, ``lrlab find``; under torchrun, each rank's own GPU),
`worker_devices` the device of each worker of a comparison or a tune (one worker per GPU), `place_resumed` those of
one resumed (on the kind of device it started on), and `placement` says how a run uses its device: the torch
device, its name, and bf16 autocast where the device supports it. The CPU never autocasts, so CPU results stay bit
for bit what they were. An absent device is refused, naming what is present. torch is imported by the functions
that need it.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from lrlab.errors import LrlabError

#: how a comparison's or a tune's runs execute (``--backend``): local worker processes or Ray tasks
#: (`lrlab.bench.jobs.LocalBackend`, `RayBackend`)
BACKENDS = ("local", "ray")
#: the spellings ``--device`` accepts
DEVICE_CHOICES = "auto, cpu, cuda, cuda:N or mps"
#: what deterministic cuBLAS needs set before the first CUDA matrix product of a process (torch's reproducibility
#: notes); without it, deterministic mode refuses CUDA matrix products
CUBLAS_WORKSPACE = ":4096:8"


def parse_device(text: str) -> tuple[str, int | None]:
    """``--device`` text -> (kind, index): kind is ``auto``, ``cpu``, ``cuda`` or ``mps``; index only for
    ``cuda:N``. `LrlabError` for any other spelling."""
    t = text.strip().lower() if isinstance(text, str) else ""
    if t in ("auto", "cpu", "cuda", "mps"):
        return t, None
    m = re.fullmatch(r"cuda:(\d+)", t)
    if m is None:
        raise LrlabError(f"device {text!r} is not supported; choose from {DEVICE_CHOICES}")
    return "cuda", int(m.group(1))


@dataclass(frozen=True, kw_only=True)
class Devices:
    """The accelerators torch sees in this process: CUDA devices (count) and Apple's MPS."""

    cuda: int
    mps: bool

    def present(self) -> str:
        """``cpu, cuda:0 .. cuda:1`` and so on: what ``--device`` can name here."""
        out = ["cpu"]
        if self.cuda == 1:
            out.append("cuda:0")
        elif self.cuda > 1:
            out.append(f"cuda:0 .. cuda:{self.cuda - 1}")
        if self.mps:
            out.append("mps")
        return ", ".join(out)


def available() -> Devices:
    """What this process can train on (`torch.cuda.is_available` / `device_count`, `torch.backends.mps`)."""
    import torch  # optional dependency

    cuda = torch.cuda.device_count() if torch.cuda.is_available() else 0
    mps = getattr(torch.backends, "mps", None)
    return Devices(cuda=int(cuda), mps=bool(mps is not None and mps.is_available()))


def _absent(text: str, why: str, have: Devices) -> LrlabError:
    return LrlabError(f"device {text!r} is not available here ({why}); available: {have.present()} "
                      "(--device auto picks CUDA, then MPS, then the CPU)")


def _no_cuda_reason() -> str:
    import torch

    if getattr(torch.version, "cuda", None) is None:
        return f"this torch {torch.__version__} is built without CUDA"
    return "torch.cuda.is_available() is False: no GPU or no working driver"


def _kind(text: str, have: Devices) -> tuple[str, int | None]:
    """The kind ``text`` names on this machine (auto resolved), refusing an absent device."""
    kind, index = parse_device(text)
    if kind == "auto":
        return ("cuda" if have.cuda else "mps" if have.mps else "cpu"), None
    if kind == "mps" and not have.mps:
        raise _absent(text, "torch.backends.mps.is_available() is False", have)
    if kind == "cuda":
        if have.cuda == 0:
            raise _absent(text, _no_cuda_reason(), have)
        if index is not None and index >= have.cuda:
            raise _absent(text, f"{have.cuda} CUDA device{'s' if have.cuda != 1 else ''}", have)
    return kind, index


def resolve_device(text: str = "auto", *, local_rank: int | None = None) -> str:
    """The torch device one process trains on: ``cpu``, ``cuda:N`` or ``mps``. ``cuda`` (and ``auto`` on a
    machine with GPUs) is ``cuda:0``, or under torchrun ``cuda:LOCAL_RANK`` (``local_rank``; None reads the
    ``LOCAL_RANK`` variable torchrun sets), so each process of a DDP run has its own GPU."""
    have = available()
    kind, index = _kind(text, have)
    if kind != "cuda":
        return kind
    if index is None:
        rank = local_rank if local_rank is not None else int(os.environ.get("LOCAL_RANK", "0"))
        index = rank % have.cuda
    return f"cuda:{index}"


def worker_devices(text: str, workers: int | None, *, cpu_workers: int) -> tuple[str, ...]:
    """The device of each worker of a comparison (its length is the number of workers).

    ``cpu`` (and ``auto`` without accelerators): ``workers`` CPU workers, ``cpu_workers`` by default. ``cuda`` (and
    ``auto`` with GPUs): one worker per GPU by default; more workers than GPUs share them in turn. ``cuda:N`` and
    ``mps``: every worker on that one device, one worker by default."""
    have = available()
    kind, index = _kind(text, have)
    if kind == "cpu":
        return ("cpu",) * (workers if workers is not None else cpu_workers)
    if kind == "mps":
        return ("mps",) * (workers if workers is not None else 1)
    gpus = [f"cuda:{index}"] if index is not None else [f"cuda:{i}" for i in range(have.cuda)]
    n = workers if workers is not None else len(gpus)
    return tuple(gpus[i % len(gpus)] for i in range(n))


def place_resumed(execution: dict[str, Any], device: str | None, workers: int | None, *, folder: str, what: str,
                  runs: str = "runs") -> None:
    """Set in ``execution`` (a ``compare.json`` or ``tune.json`` record) the device of each worker of a resumed
    comparison or tune (`worker_devices`): ``device``, ``devices`` and ``workers``; its torch thread count is kept.

    It finishes on the kind of device it started on (the CPU for folders written before devices were recorded):
    runs are deterministic per kind of device, so a ``device`` of another kind is refused, as is a recorded kind
    this machine lacks. ``device`` None: that kind; ``workers`` None: the recorded count on the CPU, one per GPU on
    CUDA. ``folder`` (the ``--resume`` folder), ``what`` (``the comparison``, ``the tune``) and ``runs`` (what it
    trains: ``runs``, ``trials``) name them in the messages."""
    before = str(execution.get("device", "cpu"))
    n = workers if workers is not None else (int(execution["workers"]) if before == "cpu" else None)
    try:
        devices = worker_devices(device if device is not None else before, n, cpu_workers=int(execution["workers"]))
    except LrlabError as e:
        if device is not None:
            raise
        raise LrlabError(f"--resume {folder!r}: {what} trained on {before} and must finish there: {e}") from None
    if device_kind(devices[0]) != before:
        raise LrlabError(f"--resume {folder!r}: {what} trained on {before}, and --device {device} is "
                         f"{device_kind(devices[0])}; runs are deterministic per kind of device, so its remaining "
                         f"{runs} must train on {before} too: drop --device (or give one of that kind)")
    execution.update(device=before, devices=list(devices), workers=len(devices))


def device_kind(device: str) -> str:
    """``cpu``, ``cuda`` or ``mps`` of a device string."""
    return parse_device(device)[0]


@dataclass(frozen=True, kw_only=True)
class Placement:
    """How a run uses its device.

    Attributes:
        device: the torch device (``cpu``, ``cuda:N``, ``mps``).
        name: the GPU's name (None for the CPU and MPS).
        autocast: ``bfloat16`` when forward passes and the loss run under bf16 autocast (CUDA devices with bf16,
            compute capability 8.0 or newer); None: float32 throughout (the CPU, older GPUs, MPS).
    """

    device: str
    name: str | None = None
    autocast: str | None = None

    @contextlib.contextmanager
    def autocasting(self) -> Iterator[None]:
        """The autocast region of a forward pass (nothing at all without autocast: the CPU path is unchanged)."""
        if self.autocast is None:
            yield
            return
        import torch

        with torch.autocast(device_type=device_kind(self.device), dtype=getattr(torch, self.autocast)):
            yield

    def record(self) -> dict[str, Any]:
        """What a run's ``env`` records of its device."""
        return {"device": self.device, "device_name": self.name, "autocast": self.autocast}


def placement(device: str = "cpu") -> Placement:
    """The `Placement` of a resolved ``device`` (see `resolve_device`). On CUDA it sets ``CUBLAS_WORKSPACE_CONFIG``
    (unless set) so that deterministic mode can run matrix products: call it before the process first uses CUDA."""
    kind, index = parse_device(device)
    if kind == "auto":
        raise LrlabError("placement needs a resolved device (cpu, cuda:N or mps), got 'auto'")
    if kind != "cuda":
        return Placement(device=kind)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    import torch

    i = index or 0
    bf16 = torch.cuda.get_device_capability(i) >= (8, 0)
    return Placement(device=f"cuda:{i}", name=torch.cuda.get_device_name(i), autocast="bfloat16" if bf16 else None)
