"""`lrlab compare`: train every schedule x optimizer x seed x peak LR and rank each schedule at its own best peak
LR. `run_compare` is the driver: it opens the comparison folder (`open_run`), runs the phases of the trial design
(`lrlab.bench.design`) through `lrlab.bench.jobs`, and writes ``results.json`` for `lrlab.bench.analysis`. How a
comparison runs, resumes and stops: docs/harness.md.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lrlab.bench.analysis import RESULTS_FILE
from lrlab.bench.design import (
    CompareConfig,
    Trial,
    confirm_trials,
    expand_trials,
    extend_trials,
    lr_centers,
    trial_record,
)
from lrlab.bench.device import BACKENDS, device_kind, place_resumed, worker_devices
from lrlab.bench.documents import check_meta, check_trial
from lrlab.bench.events import Event, EventSink
from lrlab.bench.find import peak_on_task, peak_record
from lrlab.bench.jobs import LocalBackend, RayBackend, execute
from lrlab.bench.tasks import check_data, data_fingerprint, data_source
from lrlab.checks import check
from lrlab.errors import LrlabError
from lrlab.files import WORKERS_LOCK_FILE, FolderLock, make_dir, read_json, write_json
from lrlab.range_test import CALIBRATED_SWEEP

FORMAT = "lrlab.compare/1"
CONFIG_FILE = "compare.json"


def default_workers() -> int:
    """Parallel runs when ``--workers`` is not given: one per core, at most 2."""
    return max(1, min(2, cores()))


def cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def utc_now() -> str:
    """The time now, UTC, to the second, ISO 8601."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class CompareRun:
    """The state of one comparison folder: config, finished trials, and the results document. While it is open it
    holds the folder's `lrlab.files.FolderLock` (`close` gives it up)."""

    def __init__(self, out_dir: Path, config: CompareConfig, meta: dict[str, Any],
                 lock: FolderLock | None = None) -> None:
        self.out = out_dir
        self.config = config
        self.meta = meta  # compare.json: config, lr centres, lr-find data, threads, sessions
        self.lock = lock

    def close(self) -> None:
        """Give up the folder's lock (another process may then resume it)."""
        if self.lock is not None:
            self.lock.release()

    @property
    def runs_dir(self) -> Path:
        return self.out / "runs"

    def ckpt_dir(self, job_id: str) -> Path:
        return self.out / "ckpt" / job_id

    def finished(self) -> dict[str, dict[str, Any]]:
        out = {}
        if self.runs_dir.is_dir():
            for p in sorted(self.runs_dir.glob("*.json")):
                try:
                    rec = check_trial(str(p), "the trial record", read_json(p, what="trial record"))
                    if rec.get("result") is None:
                        raise LrlabError(f"{p}: the trial record has no result")
                except LrlabError as e:
                    raise LrlabError(f"{e}; delete {p} and resume: that trial runs again") from None
                out[rec["id"]] = dict(rec)
        return out

    def save_trial(self, record: Mapping[str, Any]) -> None:
        """Write a finished trial's record (`trial_record` with its result) to ``runs/<id>.json``."""
        write_json(self.runs_dir / f"{record['id']}.json", record)

    def save_meta(self) -> None:
        write_json(self.out / CONFIG_FILE, self.meta)

    def document(self, trials: Sequence[Trial], status: str) -> dict[str, Any]:
        done = self.finished()
        records = []
        for t in trials:
            rec = done.get(t.id)
            records.append(rec if rec is not None else {**trial_record(t), "result": None})
        return {
            "format": FORMAT, "title": self.config.title, "status": status, "created": self.meta["created"],
            "config": self.config.to_dict(), "lr_centers": self.meta["lr_centers"],
            "lr_find": self.meta.get("lr_find"), "execution": self.meta["execution"],
            "python": self.meta.get("python"), "corpus_sha256": self.meta.get("corpus_sha256"),
            "sessions": self.meta["sessions"], "n_planned": len(trials),
            "wall_time_s": sum(float(s.get("wall_time_s", 0.0)) for s in self.meta["sessions"]),
            "trials": records,
        }


def open_run(out_dir: str | Path, config: CompareConfig | None, *, resume: bool, workers: int | None = None,
             backend: str = "local", on_event: EventSink | None = None) -> CompareRun:
    """Create ``out_dir`` for a new comparison (``resume=False``; it must not hold one), or reopen one
    (``resume=True``; its saved config is used and ``config`` must be None or equal to it). The returned run holds
    the folder's lock (`CompareRun.close`).

    Everything is checked before anything is created: the config, and the task's data (readable, large enough).
    A resumed ``compare.json`` is checked like fresh input (a damaged or hand-edited one is refused naming the
    field), and ``on_event`` gets a ``note`` saying what data the comparison reads before it is read."""
    out = Path(out_dir)
    meta_path = out / CONFIG_FILE
    emit = on_event or (lambda e: None)
    if resume:
        if not meta_path.is_file():
            raise LrlabError(f"--resume {str(out)!r}: no {CONFIG_FILE} there; give the --out folder of an earlier "
                             "`lrlab compare`")
        lock = FolderLock(out, command="lrlab compare --resume").acquire()
        try:
            meta, saved = _read_meta(meta_path)
            if config is not None and config.resolved() != saved:
                raise LrlabError(f"--resume {str(out)!r}: the folder holds a comparison with other settings; "
                                 "resume it without changing --task/--steps/--schedules/... (or use a new --out)")
            emit(Event(kind="note", label=f"resuming {out}: task {saved.task} ({saved.preset}), reading "
                                          f"{data_source(saved.task)}"))
            _check_same_data(out, meta, saved)
            run = CompareRun(out, saved, meta, lock)
            run.finished()  # every finished trial's record is readable: refused now, not after a phase has run
            if workers is not None:
                meta["execution"]["workers"] = workers
            meta["execution"]["backend"] = backend
        except BaseException:
            lock.release()
            raise
        return run
    if meta_path.exists():
        raise LrlabError(f"--out {str(out)!r} already holds a comparison; use --resume {out} to finish it, or "
                         "another --out")
    cfg = (config or CompareConfig()).resolved()
    n_workers = workers if workers is not None else default_workers()
    check.whole("workers", n_workers, minimum=1)
    data = fingerprint(cfg.task, cfg.preset)  # reads and checks the data: before anything is created
    meta = {"format": FORMAT, "created": utc_now(), "config": cfg.to_dict(), **data,
            "lr_centers": None, "lr_find": None,
            "execution": {"backend": backend, "workers": n_workers, "cores": cores(),
                          "threads": max(1, cores() // n_workers)},
            "sessions": []}
    make_dir(out, what="--out")
    lock = FolderLock(out, command="lrlab compare").acquire()
    try:
        if meta_path.exists():  # another process created it since we looked
            raise LrlabError(f"--out {str(out)!r} already holds a comparison; use --resume {out} to finish it, "
                             "or another --out")
        run = CompareRun(out, cfg, meta, lock)
        run.save_meta()
    except BaseException:
        lock.release()
        raise
    return run


def _read_meta(path: Path) -> tuple[dict[str, Any], CompareConfig]:
    """``compare.json`` and its config, checked as fresh input is."""
    where = str(path)
    meta = read_json(path, what=CONFIG_FILE)
    check_meta(where, meta)
    try:
        saved = CompareConfig.from_dict(meta["config"])
        resolved = saved.resolved()
    except LrlabError as e:
        raise LrlabError(f"{where}: config: {e}") from None
    if resolved != saved:
        raise LrlabError(f"{where}: config: schedules must list the schedules compared, got null")
    check_meta(where, meta, optimizers=saved.optimizers)
    for key in ("python", "corpus_sha256"):  # what `_check_same_data` compares: a resume needs them
        if not isinstance(meta.get(key), str):
            raise LrlabError(f"{where}: {key} must be a string (recorded when the comparison started), got "
                             f"{meta.get(key)!r}; without it the data cannot be checked to be the same")
    return dict(meta), saved


def fingerprint(task: str, preset: str = "tiny") -> dict[str, Any]:
    """``python`` and ``corpus_sha256`` of ``task`` here and now (`lrlab.bench.tasks.data_fingerprint`), after
    checking that its data can train the ``preset`` model (`lrlab.bench.tasks.check_data`)."""
    return data_fingerprint(check_data(task, preset))


def _check_same_data(out: Path, meta: Mapping[str, Any], config: CompareConfig) -> None:
    """Refuse to resume a comparison under another Python or on other data: its runs would not be comparable (the
    ``lm`` corpus is the interpreter's own standard library)."""
    now = fingerprint(config.task, config.preset)
    differ = [k for k in ("python", "corpus_sha256") if meta.get(k) is not None and meta[k] != now[k]]
    if differ:  # the same for every task: a text file or a Hugging Face dataset that changed is refused alike
        changes = "; ".join(f"{k} {meta[k]} then, {now[k]} now" for k in differ)
        raise LrlabError(f"--resume {str(out)!r}: task {config.task} was started on other data or another Python "
                         f"({changes}); its runs would not be comparable. Resume it with the original interpreter "
                         "and data, or start a new --out")


def run_compare(config: CompareConfig | None, out_dir: str | Path, *, resume: bool = False,
                workers: int | None = None, backend: str = "local", address: str | None = None,
                on_event: EventSink | None = None, device: str | None = None) -> dict[str, Any]:
    """Run (or finish, with ``resume=True``) a comparison in ``out_dir``; returns the results document also
    written to ``out_dir/results.json``. Its ``status`` is ``complete``, or ``interrupted`` after Ctrl-C.
    ``device``: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (`place_workers`); None: the CPU, or for a
    resumed comparison the kind of device it ran on."""
    if backend not in BACKENDS:
        raise LrlabError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if workers is not None:
        workers = check.whole("workers", workers, minimum=1)
    if backend == "ray" and importlib.util.find_spec("ray") is None:
        raise LrlabError("backend 'ray' needs Ray: pip install 'lrlab[ray]'")
    emit = on_event or (lambda e: None)
    if not resume:  # an absent device is refused before the folder is created
        worker_devices(device or "cpu", workers, cpu_workers=1)
    run = open_run(out_dir, config, resume=resume, workers=workers, backend=backend, on_event=emit)
    try:
        place_workers(run, device, workers, resume=resume)
        return _run(run, resume=resume, backend=backend, address=address, emit=emit)
    finally:
        run.close()


def place_workers(run: CompareRun, device: str | None, workers: int | None, *, resume: bool) -> None:
    """Record in ``execution`` the device of each worker (`lrlab.bench.device.worker_devices`: one worker per GPU
    unless ``workers`` says otherwise) and its kind. A new comparison trains on ``device`` (None: the CPU); a resumed
    one keeps the kind of device it started on and its torch thread count
    (`lrlab.bench.device.place_resumed`)."""
    ex = run.meta["execution"]
    if resume:
        place_resumed(ex, device, workers, folder=str(run.out), what="the comparison")
    else:
        devices = worker_devices(device or "cpu", workers, cpu_workers=int(ex["workers"]))
        ex["threads"] = max(1, cores() // len(devices))
        ex.update(device=device_kind(devices[0]), devices=list(devices), workers=len(devices))
    run.save_meta()


def _run(run: CompareRun, *, resume: bool, backend: str, address: str | None, emit: EventSink) -> dict[str, Any]:
    session = {"started": utc_now(), "resumed": resume, "wall_time_s": 0.0}
    run.meta["sessions"].append(session)
    t0 = time.monotonic()
    cfg = run.config
    trials: list[Trial] = []
    status = "running"
    try:
        if run.meta["lr_centers"] is None:
            if cfg.lr_find:
                emit(Event(kind="note", label=f"LR range test ({CALIBRATED_SWEEP[2]} updates) for the grid centre "
                                              f"of {', '.join(cfg.optimizers)}"))
                finds = {opt: lr_range_test(cfg, opt, threads=cores()) for opt in cfg.optimizers}
                run.meta["lr_find"] = finds
                run.meta["lr_centers"] = {opt: f["suggestion"] for opt, f in finds.items()}
            else:
                run.meta["lr_centers"] = lr_centers(cfg)
            run.save_meta()
        if run.meta.get("lr_find"):  # also on resume: a folder started before #11 used another rule
            emit(Event(kind="note", label=lr_find_note(run.meta["lr_find"], run.meta["lr_centers"])))
        trials = expand_trials(cfg, run.meta["lr_centers"])
        ex = run.meta["execution"]
        engine = (LocalBackend(ex["workers"], ex["devices"], workers_lock=run.out / WORKERS_LOCK_FILE)
                  if backend == "local" else RayBackend(address, ex["threads"], gpus=int(ex["device"] == "cuda")))
        try:
            # later phases are planned from the results so far, so a resumed comparison plans the same ones;
            # extension runs again after the confirmation seeds, which can move a best LR to an edge
            status = execute(run, trials, engine, emit)
            for phase, rounds in (("extend", cfg.lr_extend), ("confirm", 1), ("extend", 2 * cfg.lr_extend)):
                for _ in range(rounds):
                    if status != "complete":
                        break
                    so_far = run.document(trials, "running")
                    extra = (extend_trials(cfg, so_far, run.meta["lr_centers"]) if phase == "extend"
                             else confirm_trials(cfg, so_far))
                    if not extra:
                        break
                    trials = trials + extra
                    status = execute(run, extra, engine, emit)
        finally:
            engine.close()
    except KeyboardInterrupt:
        status = "interrupted"
    finally:
        session["wall_time_s"] = time.monotonic() - t0
        run.save_meta()
        doc = run.document(trials, status if status != "running" else "failed")
        write_json(run.out / RESULTS_FILE, doc)
    if status == "complete":
        shutil.rmtree(run.out / "ckpt", ignore_errors=True)
    return doc


def lr_range_test(config: CompareConfig, optimizer: str, *, threads: int) -> dict[str, Any]:
    """``--lr find``: the peak LR ``lrlab find`` suggests (`lrlab.bench.find.peak_on_task`: `PEAK_RULE` on a
    range test of `lrlab.range_test.CALIBRATED_SWEEP`) on seed 0 of the task with ``optimizer``, the centre of its
    grid. Returns ``compare.json``'s ``lr_find.<optimizer>`` record: ``suggestion`` (the centre), ``rule`` and
    ``num_iter`` (what produced it), ``peak`` (its `LrSuggestion`), the classic ``suggestions`` (steepest, valley,
    minimum/10: shown, not used) and the curve (``result``).

    Folders started before issue #11 hold records of the old rule: ``rule`` "geometric median of steepest,
    valley, minimum/10", no ``num_iter`` (their ``result.num_iter``: 100); they resume on the centres they
    recorded (`lr_find_note` reads both)."""
    import torch  # optional dependency: keeps `import lrlab.bench.compare` light

    torch.set_num_threads(threads)
    result, peak = peak_on_task(config.task, preset=config.preset, optimizer=optimizer, seed=0,
                                batch_size=config.batch_size)
    return peak_record(result, peak)


def lr_find_note(finds: Mapping[str, Any], centers: Mapping[str, Any]) -> str:
    """One line saying where each optimizer's grid centre came from: its LR, the rule and the sweep length of its
    ``lr_find`` record (`lr_range_test`'s, or an older folder's, whose length is in its curve); a part a
    hand-edited record lacks is shown as ``?``."""
    parts = []
    for opt, rec in finds.items():
        rec = rec if isinstance(rec, Mapping) else {}
        curve = rec.get("result")
        n = rec.get("num_iter", curve.get("num_iter", "?") if isinstance(curve, Mapping) else "?")
        lr = centers.get(opt, rec.get("suggestion"))
        shown = f"{lr:.3g}" if isinstance(lr, (int, float)) else "?"
        parts.append(f"{opt} {shown} ({rec.get('rule', '?')}, {n}-update range test)")
    return "peak-LR grid centres from the LR range test: " + "; ".join(parts)

