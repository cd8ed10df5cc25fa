"""`lrlab train`: one run in this process, or one run over several processes under ``torchrun`` (DDP), written as
a one-trial comparison (``results.json`` in the `lrlab.bench.compare` format) so the same report renders it.
`distributed` is the one place a process joins and leaves the process group. See docs/harness.md.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lrlab.bench.analysis import RESULTS_FILE
from lrlab.bench.compare import FORMAT, cores, fingerprint, utc_now
from lrlab.bench.design import CompareConfig, Trial, trial_id, trial_label, trial_record
from lrlab.bench.device import device_kind, resolve_device
from lrlab.bench.events import Event, EventSink
from lrlab.bench.train import OPTIMIZERS, TrainConfig, init_distributed, train
from lrlab.checks import check
from lrlab.errors import LrlabError
from lrlab.files import FolderLock, make_dir, write_json


@contextlib.contextmanager
def distributed() -> Iterator[tuple[int, int]]:
    """Join torchrun's process group for the block (`lrlab.bench.train.init_distributed`) and yield (rank, world
    size); (0, 1) outside torchrun. The group is destroyed on leaving only if this block created it, so nested
    blocks (``lrlab train`` around `train_one`) share one group."""
    joined = False
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        import torch.distributed as dist  # optional dependency: only under torchrun

        joined = not dist.is_initialized()
    rank, world = init_distributed()
    try:
        yield rank, world
    finally:
        if joined:
            dist.destroy_process_group()


def shared_path(path: Path, world: int) -> Path:
    """Rank 0's ``path`` on every rank (e.g. a folder named by rank 0's clock); ``path`` itself with one process.
    Every rank must call it."""
    if world == 1:
        return path
    import torch.distributed as dist  # optional dependency: only under torchrun

    box: list[Any] = [path]
    dist.broadcast_object_list(box, src=0)
    return Path(box[0])


def train_one(*, schedule: str, task: str = "lm", preset: str = "tiny", optimizer: str = "adamw", lr: float = 1e-2,
              steps: int = 1000, seed: int = 0, batch_size: int | None = None, eval_every: int = 50,
              checkpoint_every: int = 500, out_dir: str | Path, resume: bool = False,
              on_event: EventSink | None = None, device: str = "cpu") -> dict[str, Any]:
    """`lrlab train`: one run with the Monitor attached (when `lrlab.monitor` is installed).

    Writes ``out_dir/results.json`` in the comparison format (one trial), so `lrlab.bench.report` renders it
    like a comparison; the Monitor's logs go to ``out_dir/monitor/``. Ctrl-C stops at the next update with a
    checkpoint in ``out_dir/ckpt`` (``resume=True`` continues it); the returned document then has no result.

    Under ``torchrun`` with several processes (``WORLD_SIZE`` > 1) every process calls this: they join a gloo
    process group (`distributed`) and train one run with DDP, each on its slice of every update's batch;
    ``out_dir`` must be the same folder for all. Only rank 0 attaches the Monitor, reports progress and writes
    ``results.json`` and the checkpoints; every rank returns the document.

    ``device``: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (`lrlab.bench.device.resolve_device`; under
    torchrun, ``cuda`` is each process's own GPU, ``cuda:LOCAL_RANK``).
    """
    if optimizer not in OPTIMIZERS:
        raise LrlabError(f"optimizer {optimizer!r} is not supported; choose from {', '.join(OPTIMIZERS)}")
    lr = check.positive("lr", lr)
    seed = check.whole("seed", seed)
    cfg = CompareConfig(task=task, preset=preset, steps=steps, schedules=(schedule,), optimizers=(optimizer,),
                        lr=((optimizer, lr),), lr_grid=1, confirm_seeds=0, batch_size=batch_size,
                        eval_every=eval_every, checkpoint_every=checkpoint_every, branch=False, title="lrlab train")
    cfg = cfg.resolved()  # checks the spec before torch loads
    t = Trial(id=trial_id(cfg, schedule, optimizer, 0, seed), schedule=schedule, optimizer=optimizer, seed=seed,
              lr=lr, lr_index=0, phase="grid")
    config = TrainConfig(**t.train_kwargs(cfg))
    data = fingerprint(task, preset)  # reads and checks the data: everything is checked before a file is made

    import torch  # optional dependency: keeps `import lrlab.bench.single` light

    on = resolve_device(device)  # an absent device is refused before a file is made

    out = Path(out_dir)
    ckpt = out / "ckpt"
    # rank 0 holds the folder from its creation until results.json is written
    with contextlib.ExitStack() as held:
        with distributed() as (rank, world):
            lead = rank == 0
            if not resume and (out / RESULTS_FILE).exists():
                raise LrlabError(f"--out {str(out)!r} already holds a run; use another --out (or --resume to "
                                 "continue it)")
            if lead:  # one writer: rank 0 makes the folder and holds it
                make_dir(out, what="--out")
                held.enter_context(FolderLock(out, command="lrlab train" + (" --resume" if resume else "")))
            emit = (on_event if lead else None) or (lambda e: None)
            monitor, monitor_note = _make_monitor(out / "monitor", steps) if lead else (None, None)
            stop = {"requested": False}

            def on_sigint(signum: int, frame: Any) -> None:
                stop["requested"] = True
                emit(Event(kind="stopping"))

            def on_step(step: int, **_: Any) -> None:
                emit(Event(kind="step", job=t.id, step=step + 1, total=steps))

            # the processes of this machine share its cores
            threads = max(1, cores() // int(os.environ.get("LOCAL_WORLD_SIZE", world)))
            torch.set_num_threads(threads)
            emit(Event(kind="phase", total=steps, jobs=1))
            emit(Event(kind="start", job=t.id, label=trial_label(t), total=steps))
            previous = signal.signal(signal.SIGINT, on_sigint)
            t0 = time.monotonic()
            try:
                result = train(config, out_dir=ckpt, resume=resume, monitor=monitor,
                               on_step=on_step, should_stop=lambda: stop["requested"], device=on)
            finally:
                signal.signal(signal.SIGINT, previous)
        done = not result.stopped
        record = {**trial_record(t), "result": result.to_dict() if done else None}
        doc = {"format": FORMAT, "title": cfg.title, "status": "complete" if done else "interrupted",
               "created": utc_now(), "config": cfg.to_dict(), "lr_centers": {optimizer: lr}, "lr_find": None,
               "execution": {"backend": "in-process" if world == 1 else "torchrun (DDP, gloo)", "workers": 1,
                             "processes": world, "cores": cores(), "threads": threads,
                             "device": device_kind(on)},
               **data,
               "sessions": [{"started": utc_now(), "resumed": resume, "wall_time_s": time.monotonic() - t0}],
               "n_planned": 1, "wall_time_s": time.monotonic() - t0, "trials": [record],
               "notes": ([monitor_note] if monitor_note else []) + _finding_notes(monitor),
               "monitor_files": sorted(str(p) for p in (out / "monitor").glob("*")) if monitor is not None else []}
        if not lead:  # one writer: rank 0
            return doc
        write_json(out / RESULTS_FILE, doc)
        if done:
            emit(Event(kind="finish", job=t.id, label=trial_label(t), step=steps, total=steps,
                       loss=record["result"]["final_val_loss"]))
            shutil.rmtree(ckpt, ignore_errors=True)
        return doc


def _finding_notes(monitor: Any) -> list[str]:
    """The Monitor's live diagnoses as report notes (`lrlab.diagnose.Finding`: severity, step, message, advice)."""
    if monitor is None:
        return []
    return [f"Monitor {f.severity} at update {f.step} ({f.kind}): {f.message} {f.advice}" for f in monitor.findings]


def _make_monitor(folder: Path, steps: int) -> tuple[Any, str | None]:
    """The lrlab Monitor writing into ``folder``, or (None, a note saying why there is none)."""
    try:
        from lrlab.monitor import Monitor  # optional: an installation may leave the monitor out
    except ModuleNotFoundError:
        return None, "No Monitor attached: lrlab.monitor is not available in this installation."
    folder.mkdir(parents=True, exist_ok=True)
    return Monitor(out_dir=folder, total_steps=steps), None
