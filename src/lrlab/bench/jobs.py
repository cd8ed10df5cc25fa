"""How a comparison's runs execute: trials become `Job`s (`plan_jobs`; trials whose LRs agree bit for bit up to
some update branch from one shared *prefix job*), jobs run in worker processes (`run_job`, on a local process pool
or as Ray tasks) and `execute` drives them to the end, writing each finished trial at once. How branching and
resume work: docs/harness.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import queue as queue_mod
import shutil
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import lrlab
from lrlab.bench.design import CompareConfig, Trial, trial_label, trial_record
from lrlab.bench.device import resolve_device
from lrlab.bench.events import Event, EventSink
from lrlab.bench.train import CHECKPOINT, TrainConfig, load_checkpoint, train
from lrlab.errors import LrlabError
from lrlab.files import atomic_copy, atomic_write_text, hold_shared

if TYPE_CHECKING:
    from lrlab.bench.compare import CompareRun

#: a worker posts its progress at most this often (seconds); the bars refresh 4 times a second
PROGRESS_EVERY_S = 0.5
#: a worker looks at the driver's stop request (Ctrl-C) at most this often (seconds)
STOP_CHECK_EVERY_S = 0.1


@dataclass(frozen=True, kw_only=True)
class Job:
    """A unit of work for a worker: train ``train`` from update ``start`` (the checkpoint of job ``parent``, or
    scratch) to update ``stop``. A trial job finishes its trial; a prefix job (``trial`` None) trains an LR
    prefix its children share and leaves its checkpoint for them."""

    id: str
    trial: Trial | None
    train: dict[str, Any]
    start: int
    stop: int
    parent: str | None


def _lr_factors(spec: str, steps: int) -> Any:
    return lrlab.parse(spec, total=steps).values(np.arange(steps, dtype=np.float64))


def _common_prefix(a: Any, b: Any) -> int:
    diff = np.flatnonzero(a != b)
    return int(diff[0]) if diff.size else int(a.size)


def plan_jobs(trials: Sequence[Trial], config: CompareConfig) -> list[Job]:
    """Jobs for ``trials``, parents before children. Trials with the same optimizer, seed and peak LR form a
    tree by their shared LR prefixes (equal bit for bit); a shared segment of at least ``branch_min * steps``
    updates becomes one prefix job."""
    if not config.branch:
        return [Job(id=t.id, trial=t, train=t.train_kwargs(config), start=0, stop=config.steps, parent=None)
                for t in trials]
    groups: dict[tuple[str, int, float], list[Trial]] = {}
    for t in trials:
        groups.setdefault((t.optimizer, t.seed, t.lr), []).append(t)
    factors = {spec: _lr_factors(spec, config.steps) for spec in {t.schedule for t in trials}}
    min_len = max(1, math.ceil(config.branch_min * config.steps))
    jobs: list[Job] = []

    def build(members: list[Trial], start: int, parent: str | None) -> None:
        if len(members) == 1:
            t = members[0]
            jobs.append(Job(id=t.id, trial=t, train=t.train_kwargs(config), start=start, stop=config.steps,
                            parent=parent))
            return
        pref = {(a.id, b.id): _common_prefix(factors[a.schedule], factors[b.schedule])
                for i, a in enumerate(members) for b in members[i + 1:]}
        split = min(pref.values())
        if split - start >= min_len:
            key = "|".join([*sorted(m.id for m in members), str(split)])
            pid = f"prefix-{hashlib.sha1(key.encode()).hexdigest()[:12]}"
            jobs.append(Job(id=pid, trial=None, train=members[0].train_kwargs(config), start=start, stop=split,
                            parent=parent))
            start, parent = split, pid
        # members still together after `split`: connected components of "prefix longer than split"
        comps: list[list[Trial]] = []
        for m in members:
            joined = [c for c in comps if any(pref.get((m.id, o.id), pref.get((o.id, m.id), 0)) > split for o in c)]
            merged = [m] + [x for c in joined for x in c]
            comps = [c for c in comps if c not in joined] + [merged]
        for comp in sorted(comps, key=lambda c: min(members.index(x) for x in c)):
            build(sorted(comp, key=members.index), start, parent)

    for members in groups.values():
        build(members, 0, None)
    return jobs


# ------------------------------------------------------------------------------------------------ workers

#: per-process worker state, set by `_init_worker` in each pool process (stop event, progress queue, whether the
#: driver has died, whether a job is running)
_WORKER: dict[str, Any] = {}
#: a worker checks that its driver process is alive this often (seconds)
DRIVER_CHECK_EVERY_S = 0.2
#: a worker whose driver died stops its job (saving its checkpoint) and exits; after this long it exits anyway
ORPHAN_GRACE_S = 10.0


def _init_worker(stop: Any, progress: Any, workers_lock: str | None = None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver handles Ctrl-C and tells workers via `stop`
    _WORKER.update(stop=stop, progress=progress, orphaned=False, busy=False)
    if workers_lock is not None:  # held shared while this process lives: a resumed driver waits for it to end
        _WORKER["lock_fd"] = hold_shared(workers_lock)
    threading.Thread(target=_watch_driver, args=(os.getppid(),), name="lrlab-driver-watch", daemon=True).start()


def _watch_driver(driver: int) -> None:
    """End this worker soon after its driver process dies (``kill -9`` leaves no one to stop it): the running job
    sees ``orphaned`` in `worker_hooks`' ``should_stop``, saves its checkpoint and returns; then the process exits,
    so nothing writes the comparison folder once a resumed driver may."""
    while os.getppid() == driver:  # a dead parent's children are handed to another process
        time.sleep(DRIVER_CHECK_EVERY_S)
    _WORKER["orphaned"] = True
    deadline = time.monotonic() + ORPHAN_GRACE_S
    while _WORKER.get("busy") and time.monotonic() < deadline:
        time.sleep(0.05)
    os._exit(3)


def _init_device_worker(devices: Any, *args: Any) -> None:
    """`_init_worker`, after taking this process's device from the ``devices`` queue (one per worker: a comparison
    on N GPUs runs one worker on each, each keeping its GPU for its life)."""
    _WORKER["device"] = devices.get() if devices is not None else "cpu"
    _init_worker(*args)


def job_device(payload: Mapping[str, Any]) -> str:
    """The device a job trains on: its pool worker's (`_init_device_worker`), else the payload's ``device``
    (a Ray task, which Ray gives its own GPU, or a job run in this process), else the CPU."""
    return str(_WORKER.get("device") or resolve_device(str(payload.get("device", "cpu"))))


def has_checkpoint(folder: Path) -> bool:
    """Whether ``folder`` holds a training checkpoint."""
    return (folder / CHECKPOINT).is_file()


def worker_hooks(progress: Any, stop_event: Any, job_id: str, done: int,
                 stop_at: int) -> tuple[Callable[..., None], Callable[[], bool]]:
    """`train`'s ``on_step`` and ``should_stop`` for a job that has ``done`` updates and ends at ``stop_at``:
    progress goes to the ``progress`` queue (None: nowhere), and the run stops at ``stop_at`` or when the driver
    sets ``stop_event`` (None: never). `run_job` uses them; ``benchmarks/harness_overhead.py`` times them."""
    clock = {"step": done, "last_post": 0.0, "last_check": 0.0}

    # both run every update, so each does its costly part on a timer (benchmarks/harness_overhead.py): a put on
    # the progress queue wakes its feeder thread, and a multiprocessing Event's is_set() takes ~10 us of locks
    def on_step(step: int, **_: Any) -> None:
        clock["step"] = step + 1  # `step` is the 0-based update just done
        now = time.monotonic()
        if progress is not None and (now - clock["last_post"] > PROGRESS_EVERY_S or step + 1 >= stop_at):
            clock["last_post"] = now
            with contextlib.suppress(queue_mod.Full):  # the driver drains it; a lost tick only delays a bar
                progress.put_nowait((job_id, step + 1, stop_at))

    def should_stop() -> bool:  # train() asks before every update
        if clock["step"] >= stop_at:  # a prefix job ends where its children branch off
            return True
        now = time.monotonic()
        if now - clock["last_check"] < STOP_CHECK_EVERY_S:
            return False
        clock["last_check"] = now
        if _WORKER.get("orphaned"):  # the driver died: save and end (see `_watch_driver`)
            return True
        return stop_event is not None and bool(stop_event.is_set())

    return on_step, should_stop


def run_job(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Run one job in this process (pool worker or Ray task). Returns ``{"id", "status", "result"}``: status is
    ``done`` (result: RunResult dict for a trial job, None for a prefix job) or ``stopped`` (asked to stop; the
    checkpoint in its folder holds the progress)."""
    import torch  # optional dependency: keeps `import lrlab.bench.jobs` light

    torch.set_num_threads(int(payload["threads"]))
    job_id = str(payload["id"])
    ckpt = Path(payload["ckpt_dir"])
    if payload.get("parent_dir") and not has_checkpoint(ckpt):
        # branch: start from the parent's checkpoint at the end of the shared prefix (train() accepts it when the
        # schedules' LRs agree on every update it has done)
        atomic_copy(Path(payload["parent_dir"]) / CHECKPOINT, ckpt / CHECKPOINT)
    stop_at = int(payload["stop"])
    total = int(payload["train"]["steps"])
    progress = _WORKER.get("progress")
    stop_event = _WORKER.get("stop")
    # updates done so far: a job resumed after a crash starts where its own checkpoint stands
    done = _checkpoint_step(ckpt) if has_checkpoint(ckpt) else int(payload["start"])
    on_step, should_stop = worker_hooks(progress, stop_event, job_id, done, stop_at)
    if progress is not None:
        progress.put_nowait((job_id, done, stop_at))
    # a finished trial's checkpoint is deleted at once: not writing it saves an fsynced write per run (a prefix job
    # is stopped by should_stop at its end, and a stopped run always writes the checkpoint its children need)
    _WORKER["busy"] = True
    try:
        result = train(TrainConfig(**payload["train"]), out_dir=ckpt, resume=True, on_step=on_step,
                       should_stop=should_stop, save_final=False, device=job_device(payload))
    finally:
        _WORKER["busy"] = False
    if _WORKER.get("orphaned"):  # its checkpoint is saved; no driver will take the result
        os._exit(3)
    if stop_at < total:  # a prefix job: done when its checkpoint stands at the end of the prefix
        if result.steps_done < stop_at and not result.diverged:
            return {"id": job_id, "status": "stopped", "result": None}
        atomic_write_text(ckpt / "DONE.json", json.dumps({"step": result.steps_done}))
        return {"id": job_id, "status": "done", "result": None}
    if result.stopped:
        return {"id": job_id, "status": "stopped", "result": None}
    return {"id": job_id, "status": "done", "result": result.to_dict()}


def run_ray_job(payload: Mapping[str, Any], progress: Any) -> dict[str, Any]:
    """`run_job` as a Ray task: ``progress`` (a ``ray.util.queue.Queue``) carries its step reports to the driver."""
    _WORKER["progress"] = progress
    return run_job(payload)


def _checkpoint_step(folder: Path) -> int:
    path = folder / CHECKPOINT
    if not path.is_file():
        return 0
    return int(load_checkpoint(path)["step"])


# ----------------------------------------------------------------------------------------------- backends


class LocalBackend:
    """A pool of spawned processes; progress and the stop flag go through multiprocessing primitives."""

    def __init__(self, workers: int, devices: Sequence[str] = (), *,
                 workers_lock: str | os.PathLike[str] | None = None) -> None:
        """``workers_lock``: the `lrlab.files.WORKERS_LOCK_FILE` of the folder the driver holds, which each
        worker holds shared while it lives."""
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        ctx = mp.get_context("spawn")  # a fresh interpreter per worker: no forked torch thread pools
        self.stop = ctx.Event()
        self.progress = ctx.Queue()
        self.devices = ctx.Queue()  # each worker process takes one for its life (`_init_device_worker`)
        for d in list(devices) or ["cpu"] * workers:
            self.devices.put(d)
        lock = str(workers_lock) if workers_lock is not None else None
        self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_device_worker,
                                        initargs=(self.devices, self.stop, self.progress, lock))

    def submit(self, payload: dict[str, Any]) -> Any:
        return self.pool.submit(run_job, payload)

    def wait(self, handles: Sequence[Any], timeout: float) -> list[Any]:
        from concurrent.futures import FIRST_COMPLETED, wait

        done, _ = wait(list(handles), timeout=timeout, return_when=FIRST_COMPLETED)
        return list(done)

    def result(self, handle: Any) -> dict[str, Any]:
        out: dict[str, Any] = handle.result()
        return out

    def drain(self) -> list[tuple[str, int, int]]:
        items = []
        while True:
            try:
                items.append(self.progress.get_nowait())
            except queue_mod.Empty:
                return items

    def request_stop(self, handles: Sequence[Any]) -> None:
        self.stop.set()
        for h in handles:
            h.cancel()  # those not started yet

    def close(self) -> None:
        self.stop.set()  # anything still running (an interrupt outside the job loop) checkpoints and returns
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.progress.close()


class RayBackend:
    """Each job is a Ray task needing ``threads`` CPUs. Checkpoints go to the same ``DIR`` path on the worker's
    node: resuming mid-run needs a filesystem shared with the driver (finished trials are gathered by the
    driver either way). Progress goes through a ``ray.util.queue.Queue`` (an actor holding no CPU)."""

    def __init__(self, address: str | None, threads: int, gpus: float = 0) -> None:
        try:
            import ray
        except ModuleNotFoundError:
            raise LrlabError("backend 'ray' needs Ray: pip install 'lrlab[ray]'") from None
        self.ray = ray
        if not ray.is_initialized():
            ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
        from ray.util.queue import Queue

        # gpus: 1 for a comparison on CUDA (Ray then shows each task its own GPU as cuda:0)
        self.remote = ray.remote(num_cpus=threads, num_gpus=gpus, max_retries=0)(run_ray_job)
        self.progress = Queue(actor_options={"num_cpus": 0})

    def submit(self, payload: dict[str, Any]) -> Any:
        return self.remote.remote(payload, self.progress)

    def wait(self, handles: Sequence[Any], timeout: float) -> list[Any]:
        done, _ = self.ray.wait(list(handles), num_returns=1, timeout=timeout)
        return list(done)

    def result(self, handle: Any) -> dict[str, Any]:
        out: dict[str, Any] = self.ray.get(handle)
        return out

    def drain(self) -> list[tuple[str, int, int]]:
        n = self.progress.qsize()
        return [tuple(x) for x in self.progress.get_nowait_batch(n)] if n else []

    def request_stop(self, handles: Sequence[Any]) -> None:
        for h in handles:
            self.ray.cancel(h)

    def close(self) -> None:
        self.progress.shutdown()


def pending_jobs(jobs: Sequence[Job], finished: set[str], started: Callable[[str], bool],
                 prefix_done: Callable[[str], bool]) -> list[Job]:
    """The jobs of a plan (`plan_jobs` over *all* of a phase's trials) that are left to run, in plan order: every
    unfinished trial, and every prefix job that an unfinished job still needs — one with no checkpoint of its own
    yet (``started`` is False) — unless the prefix is complete already (``prefix_done``). Planning over every trial,
    finished or not, keeps the prefix ids of a resumed comparison those of the first session, so a prefix trained
    halfway before a crash is continued, not orphaned, and a finished one is branched from, not retrained."""
    children: dict[str | None, list[Job]] = {}
    for j in jobs:
        children.setdefault(j.parent, []).append(j)
    memo: dict[str, bool] = {}

    def needed(j: Job) -> bool:
        if j.id not in memo:
            if j.trial is not None:
                memo[j.id] = j.id not in finished
            else:
                memo[j.id] = not prefix_done(j.id) and any(needed(c) and not started(c.id)
                                                           for c in children.get(j.id, []))
        return memo[j.id]

    return [j for j in jobs if needed(j)]


def execute(run: CompareRun, trials: Sequence[Trial], engine: Any, emit: EventSink) -> str:
    """Run the jobs of ``trials`` that ``run`` has not finished on ``engine`` (a `LocalBackend` or `RayBackend`),
    saving each finished trial at once. Returns ``complete``, or ``interrupted`` after Ctrl-C."""
    done = run.finished()
    for t in trials:
        if t.id in done:
            emit(Event(kind="skip", job=t.id, label=trial_label(t), loss=done[t.id]["result"].get("final_val_loss")))
    plan = plan_jobs(trials, run.config)  # all of them: the same plan, and prefix ids, as the first session's
    by_id = {j.id: j for j in plan}
    jobs = pending_jobs(plan, set(done), lambda i: has_checkpoint(run.ckpt_dir(i)),
                        lambda i: (run.ckpt_dir(i) / "DONE.json").is_file())
    pending = {j.id for j in jobs}
    children: dict[str | None, list[Job]] = {}
    for j in jobs:
        children.setdefault(j.parent, []).append(j)
    emit(Event(kind="phase", total=sum(j.stop - j.start for j in jobs), jobs=len(jobs)))
    # a job can start when its parent's checkpoint is complete (the parent is not pending) or it has its own
    ready = [j for j in jobs if j.parent not in pending or has_checkpoint(run.ckpt_dir(j.id))]
    submitted: set[str] = set()
    threads = run.meta["execution"]["threads"]
    running: dict[Any, Job] = {}
    remaining_children = {pid: {c.id for c in cs} for pid, cs in children.items() if pid is not None}
    interrupted = False
    try:
        while ready or running:
            ready.sort(key=lambda x: (x.trial is not None, plan.index(x)))
            while ready:
                j = ready.pop(0)
                if j.id in submitted:
                    continue
                submitted.add(j.id)
                payload = {"id": j.id, "train": j.train, "start": j.start, "stop": j.stop, "threads": threads,
                           "device": run.meta["execution"].get("device", "cpu"),
                           "ckpt_dir": str(run.ckpt_dir(j.id)),
                           "parent_dir": str(run.ckpt_dir(j.parent)) if j.parent else None}
                running[engine.submit(payload)] = j
                emit(Event(kind="start", job=j.id, label=job_label(j), step=j.start, start=j.start, total=j.stop))
            for h in engine.wait(list(running), 0.2):
                j = running.pop(h)
                out = engine.result(h)
                if out["status"] != "done":
                    continue
                if j.trial is not None:
                    rec = {**trial_record(j.trial, _branch_info(j, by_id)), "result": out["result"]}
                    run.save_trial(rec)
                    shutil.rmtree(run.ckpt_dir(j.id), ignore_errors=True)
                    emit(Event(kind="finish", job=j.id, label=job_label(j), step=j.stop, total=j.stop,
                               loss=out["result"].get("final_val_loss")))
                else:
                    emit(Event(kind="finish", job=j.id, label=job_label(j), step=j.stop, total=j.stop))
                    ready += [c for c in children.get(j.id, []) if c.id not in submitted]
                if j.parent is not None and j.parent in remaining_children:
                    remaining_children[j.parent].discard(j.id)
                    if not remaining_children[j.parent]:
                        shutil.rmtree(run.ckpt_dir(j.parent), ignore_errors=True)
            for job_id, step, total in engine.drain():
                emit(Event(kind="step", job=job_id, step=step, total=total))
    except KeyboardInterrupt:
        interrupted = True
        emit(Event(kind="stopping"))
        engine.request_stop(list(running))
        try:
            while running:  # let running jobs checkpoint and return; a second Ctrl-C abandons them
                for h in engine.wait(list(running), 0.5):
                    j = running.pop(h)
                    try:
                        out = engine.result(h)
                    except Exception:  # cancelled before it started, or cancelled Ray task
                        continue
                    if out["status"] == "done" and j.trial is not None:
                        rec = {**trial_record(j.trial, _branch_info(j, by_id)), "result": out["result"]}
                        run.save_trial(rec)
        except KeyboardInterrupt:
            pass
    return "interrupted" if interrupted else "complete"


def _branch_info(job: Job, by_id: Mapping[str, Job]) -> dict[str, Any] | None:
    """Where a branched trial started: the prefix job whose checkpoint it copied (``trial``), that checkpoint's
    update (``step``), and ``chain``: every prefix job it continues, outermost first, each with its span of
    updates — prefixes nest when schedules part at different updates."""
    if job.parent is None:
        return None
    chain: list[dict[str, Any]] = []
    pid: str | None = job.parent
    while pid is not None:
        p = by_id[pid]
        chain.insert(0, {"prefix": p.id, "start": p.start, "stop": p.stop})
        pid = p.parent
    return {"trial": job.parent, "step": job.start, "chain": chain}


def job_label(j: Job) -> str:
    """How progress lines name a job: its trial, or the shared prefix it trains."""
    if j.trial is not None:
        return trial_label(j.trial)
    t = j.train
    return f"shared prefix [{j.start}, {j.stop}) · {t['optimizer']} · lr {t['lr']:.3g} · seed {t['seed']}"
