"""`run_tune`: a `Tuner` driven on a built-in task by `lrlab compare`'s harness — its worker processes or Ray tasks
(`lrlab.bench.jobs`), its checkpoints, its atomic files — in a folder that survives ``kill -9``.

The folder:
    ``tune.json``      config, data fingerprint, execution (backend, workers, threads, the kind of device and each
                       worker's), sessions, and with ``lr_find`` the range test that centred the grid (`find_centre`);
                       written first.
    ``state.json``     the tuner (`Tuner.to_dict`: trials handed out, losses told, decisions), after every tell.
    ``runs/NAME.json`` each finished trial and its curves, written before the tuner is told.
    ``ckpt/NAME/``     checkpoints: a trunk's at its end (branches copy it), a running trial's every
                       ``checkpoint_every`` updates. Removed when tune completes.
    ``results.json``, ``report.md``, ``tune.png``: the result and its evidence (`lrlab.tune.report`).

Resuming (``resume=True``) reloads the tuner, tells it the trials whose record was written before the crash, and
runs the others again from their checkpoints: the results are identical to an uninterrupted run (bitwise on CPU:
the thread count is kept from the first session). A tune centred by ``lr_find`` keeps the centre it recorded: the
range test runs once, before the folder is created. A resumed tune trains on the kind of device it started on (runs
are deterministic per kind of device; a ``device`` of another kind is refused), as `lrlab compare` does. Ctrl-C
stops the running trials at their next update, each saving a checkpoint, and returns the document with
``status: "interrupted"``.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lrlab.bench.device import BACKENDS, device_kind, place_resumed, worker_devices
from lrlab.errors import LrlabError
from lrlab.files import WORKERS_LOCK_FILE, FolderLock, make_dir, read_json, write_json
from lrlab.tune.config import TuneConfig, default_lr
from lrlab.tune.result import TuneResult
from lrlab.tune.study import Tuner
from lrlab.tune.trial import TuneTrial

FORMAT = "lrlab.tune-run/1"
CONFIG_FILE = "tune.json"
STATE_FILE = "state.json"
RESULTS_FILE = "results.json"


def _validate(config: TuneConfig | None, out: Path, *, resume: bool, workers: int | None, backend: str,
              device: str | None) -> tuple[TuneConfig, dict[str, Any]]:
    """Everything checked before anything is written: (the resolved config, the ``tune.json`` record: a new one,
    or when resuming the saved one with this session's devices placed,
    `lrlab.bench.device.place_resumed`)."""
    from lrlab.bench.compare import cores, default_workers, fingerprint, utc_now

    if backend not in BACKENDS:
        raise LrlabError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise LrlabError(f"workers must be a whole number >= 1, got {workers!r}")
    if resume:
        path = out / CONFIG_FILE
        if not path.is_file():
            raise LrlabError(f"--resume {str(out)!r}: no {CONFIG_FILE} there; give the --out folder of an earlier "
                             "`lrlab tune`")
        meta = read_json(path, what=f"--resume {out}: {CONFIG_FILE}")
        if meta.get("format") != FORMAT or not isinstance(meta.get("config"), dict):
            raise LrlabError(f"--resume {str(out)!r}: {CONFIG_FILE} is not an lrlab tune record (format "
                             f"{meta.get('format')!r}, expected {FORMAT!r})")
        saved = TuneConfig.from_dict(meta["config"])
        if config is not None and _as_saved(config, saved) != saved:
            raise LrlabError(f"--resume {str(out)!r}: the folder holds a tune with other settings; resume it "
                             "without changing them (or use a new --out)")
        now = fingerprint(saved.task or "lm", saved.preset)
        differ = [k for k in ("python", "corpus_sha256") if meta.get(k) is not None and meta[k] != now[k]]
        if differ:
            changes = "; ".join(f"{k} {meta[k]} then, {now[k]} now" for k in differ)
            raise LrlabError(f"--resume {str(out)!r}: the tune was started on other data or another Python "
                             f"({changes}); resume it with the original interpreter and data, or start anew")
        place_resumed(meta["execution"], device, workers, folder=str(out), what="the tune", runs="trials")
        return saved, meta
    if config is None:
        raise LrlabError("give a TuneConfig (or resume=True with the folder of an earlier tune)")
    if config.task is None:
        raise LrlabError("config.task is None: the built-in harness needs a task (lm, vision, text:PATH, hf:NAME); "
                         "for a training loop of your own use lrlab.tune.Tuner's ask/tell")
    if (out / CONFIG_FILE).exists():
        raise LrlabError(f"--out {str(out)!r} already holds a tune; use --resume {out} to finish it, or another "
                         "--out")
    if config.lr_find and config.lr is not None:
        raise LrlabError(f"lr_find takes the centre of the peak-LR grid from an LR range test; give lr "
                         f"({config.lr}) or lr_find, not both")
    devices = worker_devices(device or "cpu", workers, cpu_workers=default_workers())  # an absent one fails here
    # with lr_find, the plan is checked around a stand-in centre: the range test runs after every other check
    cfg = config.centred(default_lr(config.optimizer)) if config.lr_find else config.resolved()
    Tuner(cfg)  # the horizon, the budget and the plan are checked here
    data = fingerprint(cfg.task or "lm", cfg.preset)  # an unknown task, a missing or unusable file or dataset fails
    if config.lr_find:
        cfg = dataclasses.replace(cfg, lr=None)
    execution = {"backend": backend, "workers": len(devices), "cores": cores(),
                 "threads": max(1, cores() // len(devices)), "device": device_kind(devices[0]),
                 "devices": list(devices)}
    return cfg, {"format": FORMAT, "created": utc_now(), "config": cfg.to_dict(), **data, "lr_find": None,
                 "execution": execution, "sessions": []}


def _as_saved(config: TuneConfig, saved: TuneConfig) -> TuneConfig:
    """``config`` resolved as the saved one was: with ``lr_find`` and no ``lr``, centred on the saved centre (the
    range test's peak LR, recorded when the tune started: a resumed tune never runs it again)."""
    if config.lr_find and config.lr is None and saved.lr is not None:
        return config.centred(saved.lr)
    return config.resolved()


def find_centre(cfg: TuneConfig, execution: Mapping[str, Any], emit: Any) -> tuple[TuneConfig, dict[str, Any]]:
    """``lr_find``: the peak LR ``lrlab find`` suggests (`lrlab.bench.find.peak_on_task`: `PEAK_RULE` on the
    calibrated 300-update range test) on seed ``seed`` of the task, trained on the device of the first worker, as
    ``lrlab compare --lr find`` centres its grid. Returns (``cfg`` centred on it, ``tune.json``'s ``lr_find``
    record: ``{optimizer: {suggestion, rule, num_iter, peak, suggestions, result, device}}``, the shape of
    ``compare.json``'s). Raises `LrlabError` when no LR of the sweep trained the model."""
    from lrlab.bench.compare import cores, lr_find_note
    from lrlab.bench.events import Event
    from lrlab.bench.find import peak_on_task, peak_record
    from lrlab.range_test import CALIBRATED_SWEEP

    device = str(execution["devices"][0])
    emit(Event(kind="note", label=f"LR range test ({CALIBRATED_SWEEP[2]} updates) for the grid centre of "
                                  f"{cfg.optimizer}"))
    result, peak = peak_on_task(cfg.task or "lm", preset=cfg.preset, optimizer=cfg.optimizer, seed=cfg.seed,
                                batch_size=cfg.batch_size, threads=cores(), device=device)
    record = {cfg.optimizer: {**peak_record(result, peak), "device": device}}
    centred = cfg.centred(peak.lr)
    Tuner(centred)
    emit(Event(kind="note", label=lr_find_note(record, {cfg.optimizer: centred.lr})))
    return centred, record


def run_tune(config: TuneConfig | None, out_dir: str | Path, *, resume: bool = False, workers: int | None = None,
             backend: str = "local", address: str | None = None, on_event: Any = None,
             device: str | None = None) -> tuple[dict[str, Any], TuneResult | None]:
    """Run (or finish, with ``resume=True``) a tune on a built-in task in ``out_dir``. Returns (the document also
    written to ``out_dir/results.json``, the `TuneResult` or None when interrupted). The document holds ``status``
    (``complete`` or ``interrupted``), ``result`` (`TuneResult.to_dict`, None until complete), the config,
    execution and sessions, and every trial's curves.

    ``device``: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``, as for `lrlab.bench.compare.run_compare` (one
    worker per GPU unless ``workers`` says otherwise); None: the CPU, or for a resumed tune the kind of device it
    ran on. Nothing is written until the config, the device, the task's data and the budget have passed their
    checks, and, with ``config.lr_find``, the range test has found the centre (`find_centre`)."""
    out = Path(out_dir)
    emit = on_event or (lambda e: None)
    cfg, meta = _validate(config, out, resume=resume, workers=workers, backend=backend, device=device)
    if not resume and cfg.lr_find:
        cfg, meta["lr_find"] = find_centre(cfg, meta["execution"], emit)
        meta["config"] = cfg.to_dict()
    elif meta.get("lr_find"):  # resumed: the centre it recorded
        from lrlab.bench.compare import lr_find_note
        from lrlab.bench.events import Event

        emit(Event(kind="note", label=lr_find_note(meta["lr_find"], {cfg.optimizer: cfg.lr})))
    if not resume:
        make_dir(out, what="--out")
    lock = FolderLock(out, command="lrlab tune" + (" --resume" if resume else "")).acquire()
    try:
        return _session(cfg, meta, out, resume=resume, backend=backend, address=address, on_event=emit)
    finally:
        lock.release()


def _session(cfg: TuneConfig, meta: dict[str, Any], out: Path, *, resume: bool, backend: str, address: str | None,
             on_event: Any) -> tuple[dict[str, Any], TuneResult | None]:
    from lrlab.bench.compare import utc_now
    from lrlab.bench.events import Event

    if not resume:
        if (out / CONFIG_FILE).exists():  # another process created it since we looked
            raise LrlabError(f"--out {str(out)!r} already holds a tune; use --resume {out} to finish it")
        tuner = Tuner(cfg)
    else:
        meta["execution"]["backend"] = backend
        state = out / STATE_FILE
        tuner = Tuner.from_dict(read_json(state, what="state.json")) if state.is_file() else Tuner(cfg)
    emit = on_event or (lambda e: None)
    session = {"started": utc_now(), "resumed": resume, "wall_time_s": 0.0}
    meta["sessions"].append(session)
    write_json(out / CONFIG_FILE, meta)
    t0 = time.monotonic()
    status = "running"
    try:
        status = _drive(tuner, out, meta, backend, address, emit, Event)
    except KeyboardInterrupt:
        status = "interrupted"
    finally:
        session["wall_time_s"] = time.monotonic() - t0
        write_json(out / CONFIG_FILE, meta)
    result = tuner.result() if status == "complete" else None
    doc = document(tuner, out, meta, status, result)
    write_json(out / RESULTS_FILE, doc)
    if status == "complete":
        shutil.rmtree(out / "ckpt", ignore_errors=True)
    return doc, result


def _record(out: Path, name: str) -> dict[str, Any] | None:
    path = out / "runs" / f"{name}.json"
    return read_json(path, what=f"run record {name}") if path.is_file() else None


def _tell(tuner: Tuner, trial: TuneTrial, record: Mapping[str, Any], out: Path) -> None:
    curve = record["curve"]
    losses = {int(s): (math.inf if v is None else float(v)) for s, v in zip(curve["eval_steps"], curve["val_loss"])
              if trial.start <= int(s) <= trial.stop}
    if curve.get("diverged"):
        losses[min(trial.stop, len(curve.get("train_loss", ())) or trial.stop)] = math.inf
    tuner.tell(trial, losses)
    tuner.save(out / STATE_FILE)


def _payload(tuner: Tuner, trial: TuneTrial, out: Path, threads: int, device: str) -> dict[str, Any]:
    """What a worker runs for ``trial`` (`lrlab.bench.jobs.run_job`); ``device``: the kind of device it trains on
    (a pool worker trains on its own; a Ray task, which Ray gives its own GPU, resolves it)."""
    c = tuner.config
    train = {"task": c.task, "preset": c.preset, "schedule": trial.schedule, "optimizer": c.optimizer,
             "lr": trial.lr, "steps": trial.horizon, "seed": trial.seed, "batch_size": c.batch_size,
             "eval_every": tuner.rungs.eval_every, "eval_batches": c.eval_batches,
             "checkpoint_every": c.checkpoint_every}
    return {"id": trial.name, "train": train, "start": trial.start, "stop": trial.stop, "threads": threads,
            "device": device, "ckpt_dir": str(out / "ckpt" / trial.name),
            "parent_dir": str(out / "ckpt" / trial.resume_from) if trial.resume_from else None}


def _curve_of(out: Path, trial: TuneTrial, result: Mapping[str, Any] | None) -> dict[str, Any]:
    """The curves of a finished trial (from update 0): from its result, or, for a trial that ends before the
    horizon, from the checkpoint it left."""
    if result is None:
        from lrlab.bench.train import CHECKPOINT, load_checkpoint

        curves = load_checkpoint(out / "ckpt" / trial.name / CHECKPOINT)["curves"]
        src = {"eval_steps": curves["eval_steps"], "val_loss": curves["val_loss"],
               "val_metrics": curves["val_metrics"], "train_loss": curves["train_loss"],
               "diverged": curves["diverged"], "wall_time_s": curves["wall_time_s"]}
    else:
        src = {k: result[k] for k in ("eval_steps", "val_loss", "val_metrics", "train_loss", "diverged",
                                      "wall_time_s")}
    return src


def _drive(tuner: Tuner, out: Path, meta: dict[str, Any], backend: str, address: str | None, emit: Any,
           Event: Any) -> str:
    """Run the tuner's trials to the end; ``complete`` or ``interrupted``."""
    from lrlab.bench.jobs import LocalBackend, RayBackend

    for t in tuner.pending():  # finished before a crash, told never
        rec = _record(out, t.name)
        if rec is not None:
            _tell(tuner, t, rec, out)
            emit(Event(kind="skip", job=t.name, label=_label(t), loss=_end(rec, t)))
    ex = meta["execution"]
    threads = int(ex["threads"])
    queue = list(tuner.pending())  # handed out before a crash: run again from their checkpoints
    if tuner.finished and not queue:
        return "complete"
    device = str(ex["device"])
    engine = (LocalBackend(int(ex["workers"]), ex["devices"], workers_lock=out / WORKERS_LOCK_FILE)
              if backend == "local" else RayBackend(address, threads, gpus=int(device == "cuda")))
    running: dict[Any, TuneTrial] = {}
    try:
        try:
            while True:
                while (asked := tuner.ask()) is not None:
                    queue.append(asked)
                    tuner.save(out / STATE_FILE)
                while queue:
                    t = queue.pop(0)
                    emit(Event(kind="phase", total=t.updates, jobs=1))
                    running[engine.submit(_payload(tuner, t, out, threads, device))] = t
                    emit(Event(kind="start", job=t.name, label=_label(t), step=t.start, start=t.start,
                               total=t.stop))
                if not running:
                    break
                for h in engine.wait(list(running), 0.2):
                    t = running.pop(h)
                    res = engine.result(h)
                    if res["status"] != "done":
                        continue
                    rec = {"trial": t.to_dict(), "curve": _curve_of(out, t, res.get("result"))}
                    write_json(out / "runs" / f"{t.name}.json", rec)
                    _tell(tuner, t, rec, out)
                    if t.checkpoint is None:
                        shutil.rmtree(out / "ckpt" / t.name, ignore_errors=True)
                    emit(Event(kind="finish", job=t.name, label=_label(t), step=t.stop, total=t.stop,
                               loss=_end(rec, t)))
                for job_id, step, total in engine.drain():
                    emit(Event(kind="step", job=job_id, step=step, total=total))
        except KeyboardInterrupt:
            emit(Event(kind="stopping"))
            engine.request_stop(list(running))
            try:
                while running:  # let running trials checkpoint and return; a second Ctrl-C abandons them
                    for h in engine.wait(list(running), 0.5):
                        running.pop(h)
            except KeyboardInterrupt:
                pass
            return "interrupted"
    finally:
        engine.close()
    if not tuner.finished:  # pragma: no cover - the tuner always has work while it is not finished
        raise LrlabError("tune stalled: no trial to run and the tuner is not finished")
    return "complete"


def _end(rec: Mapping[str, Any], t: TuneTrial) -> float | None:
    c = rec["curve"]
    if c.get("diverged"):
        return math.inf
    return next((math.inf if v is None else float(v) for s, v in zip(c["eval_steps"], c["val_loss"])
                 if int(s) == t.stop), None)


def _label(t: TuneTrial) -> str:
    return f"{t.kind} [{t.start}, {t.stop}) · {t.schedule} · lr {t.lr:.3g} · seed {t.seed}"


def document(tuner: Tuner, out: Path, meta: Mapping[str, Any], status: str,
             result: TuneResult | None) -> dict[str, Any]:
    """The results document: status, config, execution, sessions, the result (when complete) and every trial with
    its curves."""
    trials = []
    for t in tuner.trials:
        rec = _record(out, t.name)
        trials.append({**t.to_dict(), "curve": rec["curve"] if rec else None})
    return {"format": FORMAT, "status": status, "created": meta["created"], "config": tuner.config.to_dict(),
            "plan": {"peaks": tuner.plan.peaks, "keep": tuner.plan.keep, "confirm": tuner.plan.confirm,
                     "seeds": tuner.plan.seeds},
            "rungs": {"warmup": tuner.rungs.warmup, "first": tuner.rungs.first,
                      "first_cooldown": tuner.rungs.first_cooldown, "second": tuner.rungs.second,
                      "eval_every": tuner.rungs.eval_every},
            "execution": meta["execution"], "python": meta.get("python"),
            "corpus_sha256": meta.get("corpus_sha256"), "lr_find": meta.get("lr_find"), "sessions": meta["sessions"],
            "wall_time_s": sum(float(s.get("wall_time_s", 0.0)) for s in meta["sessions"]),
            "spent": tuner.spent, "budget": tuner.config.budget, "result": result.to_dict() if result else None,
            "trials": trials}


def tune(config: TuneConfig | None = None, out_dir: str | Path = "lrlab-runs/tune", *, resume: bool = False,
         workers: int | None = None, backend: str = "local", address: str | None = None, device: str | None = None,
         report: bool = True, plots: bool = True, **fields: Any) -> TuneResult:
    """Tune the schedule and peak LR of a built-in task; returns the `TuneResult` (also written, with its
    report, to ``out_dir``). ``fields`` build the config when ``config`` is None:
    ``tune(task="lm", horizon=1000)``. ``device`` as for `run_tune` (None: the CPU; resumed, the kind it ran on).
    Raises KeyboardInterrupt when interrupted (``resume=True`` finishes it).
    """
    if config is None and fields and not resume:
        config = TuneConfig(**fields)
    elif fields:
        raise LrlabError(f"give either config or its fields, not both (got {sorted(fields)})")
    doc, result = run_tune(config, out_dir, resume=resume, workers=workers, backend=backend, address=address,
                           device=device)
    if result is None:
        raise KeyboardInterrupt(f"tune interrupted; tune(out_dir={str(out_dir)!r}, resume=True) finishes it")
    if report:
        from lrlab.tune.report import write_report

        write_report(doc, result, out_dir, plots=plots)
    return result
