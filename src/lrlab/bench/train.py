"""One training run: a plain loop that reads top to bottom, like nanoGPT's ``train.py``.

Each update ``t`` (0-based, ``t`` = updates done so far) sets ``lr = config.lr * schedule(t)`` on every parameter
group, draws the batch of update ``t``, runs forward and backward, clips the gradient norm and steps the optimizer.
How it stops early, checkpoints and resumes, handles schedule-free AdamW, runs under ``torchrun`` and stays
deterministic: docs/harness.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import platform
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

import lrlab
from lrlab.bench.device import device_kind, placement
from lrlab.bench.presets import PRESET_NAMES
from lrlab.bench.tasks import Task, check_task_name, data_fingerprint, get_task
from lrlab.checks import check
from lrlab.errors import LrlabError
from lrlab.files import atomic_write_with, file_error
from lrlab.schedule import BlockCache

if TYPE_CHECKING:
    import torch
    from torch import nn

OPTIMIZERS: tuple[str, ...] = ("sgd", "adagrad", "rmsprop", "adam", "adamw", "schedulefree")
CHECKPOINT = "checkpoint.pt"
#: Config fields a resumed run may change: they do not change any number of the run.
RESUMABLE_CHANGES = ("checkpoint_every",)
#: weight decay by optimizer when `TrainConfig.weight_decay` is None: decoupled (AdamW-style) 0.1 where the
#: optimizer decouples it, the classic 5e-4 L2 for SGD with momentum, none for Adam/Adagrad/RMSprop (an L2 term
#: there is rescaled by the adaptive denominators, which is why AdamW exists)
DEFAULT_WEIGHT_DECAY: dict[str, float] = {"sgd": 5e-4, "adagrad": 0.0, "rmsprop": 0.0, "adam": 0.0, "adamw": 0.1,
                                          "schedulefree": 0.1}


#: the largest run, batch and validation set the harness accepts: it keeps every update's LR and loss (in memory, in
#: checkpoints and in results.json) and builds its validation batches at once, so larger values exhaust memory
MAX_STEPS = 10_000_000
MAX_BATCH_SIZE = 1 << 20
MAX_EVAL_BATCHES = 10_000


def check_sizes(steps: int, batch_size: int | None, eval_batches: int) -> None:
    """Refuse ``steps``, ``batch_size`` or ``eval_batches`` above `MAX_STEPS`, `MAX_BATCH_SIZE`,
    `MAX_EVAL_BATCHES` (they are whole numbers >= 1 already)."""
    for name, value, limit in (("steps", steps, MAX_STEPS), ("batch_size", batch_size, MAX_BATCH_SIZE),
                               ("eval_batches", eval_batches, MAX_EVAL_BATCHES)):
        if value is not None and value > limit:
            raise LrlabError(f"{name} must be at most {limit:,} (the harness keeps every update's numbers and "
                             f"builds its batches in memory), got {value:,}")


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Everything that decides a run's numbers.

    Args:
        task: ``lm`` | ``vision`` | ``text:PATH`` | ``hf:NAME_OR_PATH[#COLUMN]`` (see `lrlab.bench.tasks`).
        preset: model size and batch: ``tiny`` | ``small`` | ``base``.
        schedule: lrlab spec; its value at update ``t`` multiplies ``lr`` (parsed with ``total=steps``).
        optimizer: ``sgd`` (momentum 0.9) | ``adagrad`` | ``rmsprop`` | ``adam`` | ``adamw`` | ``schedulefree``
            (``schedulefree.AdamWScheduleFree``; its good LRs are 1-10x AdamW's).
        lr: peak (base) learning rate, > 0.
        steps: optimizer updates, >= 1.
        seed: >= 0; decides the initial weights and the order of training batches.
        batch_size: sequences or images per update (>= 1); None: the preset's.
        eval_every: updates between validations (>= 1); validation also runs at update 0 and after the last.
        eval_batches: validation batches of ``batch_size`` (>= 1), fixed for the whole run.
        weight_decay: >= 0, on linear-layer weights only (`lrlab.bench.model.param_groups`): decoupled for
            adamw and schedulefree, an L2 term in the gradient for the others (torch's ``weight_decay``).
            None (default): the optimizer's usual value, `DEFAULT_WEIGHT_DECAY` — 0.1 decoupled for adamw and
            schedulefree, 5e-4 L2 for sgd, 0 for adam, adagrad and rmsprop. One value for all would be wrong:
            an L2 of 0.1 under SGD shrinks the weights every update faster than they learn (BENCHMARKS.md).
        grad_clip: maximum global gradient norm (> 0); None: no clipping.
        checkpoint_every: updates between checkpoints when ``out_dir`` is given (>= 0; 0: only on stop and at
            the end).
    """

    task: str = "lm"
    preset: str = "tiny"
    schedule: str = "constant()"
    optimizer: str = "adamw"
    lr: float = 1e-2
    steps: int = 400
    seed: int = 0
    batch_size: int | None = None
    eval_every: int = 50
    eval_batches: int = 8
    weight_decay: float | None = None
    grad_clip: float | None = 1.0
    checkpoint_every: int = 0

    def __post_init__(self) -> None:
        check_task_name(self.task)
        if self.preset not in PRESET_NAMES:
            raise LrlabError(f"preset {self.preset!r} is not supported; choose from {', '.join(PRESET_NAMES)}")
        if self.optimizer not in OPTIMIZERS:
            raise LrlabError(f"optimizer {self.optimizer!r} is not supported; choose from {', '.join(OPTIMIZERS)}")
        whole = {"steps": 1, "seed": 0, "eval_every": 1, "eval_batches": 1, "checkpoint_every": 0}
        if self.batch_size is not None:
            whole["batch_size"] = 1
        for name, minimum in whole.items():
            object.__setattr__(self, name, check.whole(name, getattr(self, name), minimum=minimum))
        check_sizes(self.steps, self.batch_size, self.eval_batches)
        check.positive("lr", self.lr)
        if self.weight_decay is None:
            object.__setattr__(self, "weight_decay", DEFAULT_WEIGHT_DECAY[self.optimizer])
        check.nonneg("weight_decay", self.weight_decay)
        if self.grad_clip is not None:
            check.positive("grad_clip", self.grad_clip)
        try:
            factors = lrlab.parse(self.schedule, total=self.steps).values(np.arange(self.steps, dtype=np.float64))
        except LrlabError as e:
            raise LrlabError(f"schedule {self.schedule!r}: {e}") from None
        bad = np.flatnonzero(~np.isfinite(factors) | (factors < 0))
        if bad.size:
            i = int(bad[0])
            raise LrlabError(f"schedule {self.schedule!r} gives LR factor {float(factors[i])!r} at update {i}; "
                             "factors must be finite and >= 0")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        return cls(**check.fields("train config", d, cls))


@dataclass(frozen=True, kw_only=True)
class RunResult:
    """What a run produced. Curves are plain lists; ``to_dict()`` is JSON-ready.

    Attributes:
        config: the run's config.
        eval_steps: updates done at each validation (0, eval_every, 2 * eval_every, ..., steps).
        val_loss: validation loss at each of ``eval_steps`` (nats per token: per byte for LM tasks).
        val_metrics: name -> values at ``eval_steps``: ``bits_per_byte`` (LM) or ``accuracy`` (vision).
            Non-finite validation numbers are stored as ``inf``.
        train_loss: training loss of each update (``inf`` where it was not finite).
        lr: the LR of each update (group 0), as applied by the optimizer.
        final_val_loss: validation loss after the last update; ``inf`` if the run diverged, ``nan`` if it was
            stopped before its end.
        best_val_loss: lowest validation loss seen (``inf`` if none was finite).
        diverged: the loss became non-finite; the run ended there.
        wall_time_s: seconds spent in `train`, summed over resumed sessions.
        tokens_per_s: training throughput, tokens (bytes) per second for LM tasks, images per second for vision,
            timed over the updates only (not validation or checkpoints), over all sessions.
        n_params: model parameters (a tied weight once).
        env: python / torch / numpy versions, torch threads, the task's description and data facts.
        resumed_from: the update the last session resumed from; None if it started from scratch.
    """

    config: TrainConfig
    eval_steps: list[int]
    val_loss: list[float]
    val_metrics: dict[str, list[float]]
    train_loss: list[float]
    lr: list[float]
    final_val_loss: float
    best_val_loss: float
    diverged: bool
    wall_time_s: float
    tokens_per_s: float
    n_params: int
    env: dict[str, Any]
    resumed_from: int | None = None

    @property
    def steps_done(self) -> int:
        """Updates done (the diverging update counts: its loss is recorded)."""
        return len(self.train_loss)

    @property
    def stopped(self) -> bool:
        """True if ``should_stop`` ended the run before its last update."""
        return self.steps_done < self.config.steps and not self.diverged

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["config"] = self.config.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunResult:
        known = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        kw["config"] = TrainConfig.from_dict(dict(d["config"]))
        return cls(**kw)


class Monitor(Protocol):
    """What `train` calls on a monitor (`lrlab.monitor.Monitor` has these)."""

    def on_step(self, step: int, *, lrs: list[float], loss: float, grad_norm: float | None, tokens: int) -> None: ...

    def on_eval(self, step: int, *, val_loss: float, **metrics: float) -> None: ...

    def close(self) -> None: ...


@dataclass
class _Curves:
    """The mutable record of a run in progress (what a checkpoint stores besides tensors)."""

    eval_steps: list[int] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_metrics: dict[str, list[float]] = field(default_factory=dict)
    train_loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    diverged: bool = False
    wall_time_s: float = 0.0
    update_time_s: float = 0.0

    def record_eval(self, step: int, metrics: dict[str, float]) -> None:
        # non-finite values are stored as inf, so that results compare equal and read back from JSON alike
        self.eval_steps.append(step)
        for name, value in metrics.items():
            value = value if math.isfinite(value) else math.inf
            if name == "loss":
                self.val_loss.append(value)
            else:
                self.val_metrics.setdefault(name, []).append(value)


def init_distributed() -> tuple[int, int]:
    """Join torchrun's process group when this process is one of several (``WORLD_SIZE`` > 1 in the environment):
    gloo, from the ``MASTER_ADDR`` / ``MASTER_PORT`` / ``RANK`` variables torchrun sets. Returns (rank, world size);
    (0, 1) outside torchrun. Calling it again returns the same."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo")  # CPU tensors: NCCL takes only CUDA ones
    return dist.get_rank(), dist.get_world_size()


def _process_group() -> tuple[int, int]:
    """(rank, world size) of the initialised process group; (0, 1) when there is none."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def build_optimizer(name: str, groups: list[dict[str, Any]], lr: float) -> torch.optim.Optimizer:
    """The optimizer ``name`` (see `OPTIMIZERS`) over parameter ``groups`` (each with its ``weight_decay``)."""
    import torch

    # fused kernels where torch has them on CPU (one kernel for all parameters: ~7 % faster updates at the tiny
    # preset than foreach); rmsprop has none
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, fused=True)
    if name == "adagrad":
        cpu = all(p.device.type == "cpu" for g in groups for p in g["params"])  # fused Adagrad: the CPU only
        return torch.optim.Adagrad(groups, lr=lr, fused=True if cpu else None)
    if name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=lr, foreach=True)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, fused=True)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, fused=True)
    if name == "schedulefree":
        from schedulefree import AdamWScheduleFree

        return AdamWScheduleFree(groups, lr=lr, warmup_steps=0)  # warm-up, if any, comes from the lrlab schedule
    raise LrlabError(f"optimizer {name!r} is not supported; choose from {', '.join(OPTIMIZERS)}")


def train(config: TrainConfig, *, out_dir: str | Path | None = None, resume: bool = False,
          monitor: Monitor | None = None, on_step: Callable[..., Any] | None = None,
          should_stop: Callable[[], bool] | None = None, save_final: bool = True,
          device: str = "cpu") -> RunResult:
    """Train ``config`` and return its `RunResult` (see the module docstring for stopping, checkpoints, resume).

    Args:
        config: the run.
        out_dir: folder for ``checkpoint.pt`` (created if needed); None: no checkpoints.
        resume: continue from ``out_dir/checkpoint.pt`` if it exists.
        monitor: gets ``on_step(t, lrs=, loss=, grad_norm=, tokens=)`` after update ``t`` (0-based; ``tokens``:
            tokens or images trained so far), ``on_eval(step, val_loss=, **metrics)`` at each validation
            (``step``: updates done) and ``close()`` when `train` returns or raises.
        on_step: called as ``on_step(t, total=config.steps)`` after update ``t`` (0-based), for progress bars.
        should_stop: called before every update; True stops the run (checkpoint written, partial result returned).
        save_final: write the checkpoint of a run that completed its ``config.steps`` updates. False saves a
            caller that discards it (as `lrlab compare` does for a finished trial) one atomic, fsynced write.
            A stopped run always saves.
        device: where to train: ``cpu``, ``cuda:N`` or ``mps`` (`lrlab.bench.device.resolve_device` turns
            ``--device`` into one). CUDA devices with bf16 run forward passes under bf16 autocast
            (`lrlab.bench.device.placement`); the CPU never does. A run resumes only on the kind of device it
            started on: results are deterministic per device, not across devices.

    Deterministic algorithms are on while it trains (bitwise-reproducible runs and resumes), with
    ``torch.utils.deterministic.fill_uninitialized_memory`` off: that debugging aid fills every new tensor with NaN,
    which costs time (BENCHMARKS.md), and correct kernels never read the memory it fills.
    """
    import torch  # optional dependency: keeps `import lrlab.bench.train` light

    from lrlab.bench.model import count_params, param_groups  # imports torch: keeps `import lrlab.bench.train` light

    t_start = time.perf_counter()
    ckpt = Path(out_dir) / CHECKPOINT if out_dir is not None else None
    previous = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    previous_fill = torch.utils.deterministic.fill_uninitialized_memory  # type: ignore[attr-defined]
    torch.use_deterministic_algorithms(True)
    torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]
    try:
        task = get_task(config.task, config.preset, config.seed, batch_size=config.batch_size)
        schedule = BlockCache(lrlab.parse(config.schedule, total=config.steps))
        random.seed(config.seed)
        np.random.seed(config.seed)
        torch.manual_seed(config.seed)
        model = task.build_model()  # initialised on the CPU: the same weights on every device
        on = placement(device)
        model.to(on.device)  # on the CPU: nothing moves
        decay = DEFAULT_WEIGHT_DECAY[config.optimizer] if config.weight_decay is None else config.weight_decay
        optimizer = build_optimizer(config.optimizer, param_groups(model, decay), config.lr)
        schedule_free = config.optimizer == "schedulefree"
        params = list(model.parameters())
        rank, world = _process_group()
        if task.batch_size % world:
            raise LrlabError(f"batch_size {task.batch_size} does not split evenly across {world} processes; give "
                             f"a batch size divisible by {world}")
        env = {**_env(task, world), **on.record()}
        fingerprint = data_fingerprint(task.info)
        run = _Curves()
        step = 0  # updates done: the clock, and the data position
        resumed_from = None
        if ckpt is not None and ckpt.exists():
            if not resume:
                raise LrlabError(f"out_dir {str(ckpt.parent)!r} already holds a checkpoint; pass resume=True to "
                                 "continue it, or use another out_dir")
            state = load_checkpoint(ckpt)
            _check_resumable(state, config, schedule, fingerprint)
            if state.get("device", "cpu") != device_kind(on.device):  # checkpoints without one: the CPU
                raise LrlabError(f"cannot resume on {on.device}: the checkpoint was trained on "
                                 f"{state.get('device', 'cpu')}, and runs are deterministic per kind of device; "
                                 "resume with that --device")
            try:
                model.load_state_dict(state["model"])
                optimizer.load_state_dict(state["optimizer"])
                _set_rng_state(state["rng"])
            except LrlabError:
                raise
            except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as e:
                raise LrlabError(f"checkpoint {str(ckpt)!r} does not fit this run's model and optimizer "
                                 f"({type(e).__name__}: {_first_line(e)}); {_DAMAGED_ADVICE}") from None
            run = _Curves(**state["curves"])
            step = resumed_from = state["step"]
        if schedule_free:
            optimizer.train()  # type: ignore[attr-defined]
        net = model if world == 1 else _ddp(model)  # trains; `model` (the same parameters) evaluates and saves
        val_batches = [(x.to(on.device), y.to(on.device)) for x, y in task.val_batches(config.eval_batches)]
        last_saved = step if resumed_from is not None else -1
        wall_before = run.wall_time_s

        def evaluate() -> None:
            metrics: dict[str, float] = {}
            if rank == 0:
                with _eval_point(model, optimizer, schedule_free), on.autocasting():
                    metrics = task.evaluate(model, val_batches)
            if world > 1:  # every rank records rank 0's numbers (and stops on the same divergence)
                metrics = _broadcast(metrics)
            run.record_eval(step, metrics)
            run.diverged = run.diverged or not math.isfinite(metrics["loss"])
            if monitor is not None:  # the loss may be non-finite (divergence); other metrics only when finite
                monitor.on_eval(step, val_loss=metrics["loss"],
                                **{k: v for k, v in metrics.items() if k != "loss" and math.isfinite(v)})

        def save() -> None:
            nonlocal last_saved
            run.wall_time_s = wall_before + time.perf_counter() - t_start
            if ckpt is not None and last_saved != step and rank == 0:
                _save_checkpoint(ckpt, config, step, model, optimizer, schedule_free, run, fingerprint)
                last_saved = step

        if step == 0 and not run.eval_steps:
            evaluate()
        while step < config.steps and not run.diverged:
            stop = should_stop is not None and should_stop()
            if world > 1:
                stop = _any_rank(stop)
            if stop:
                break
            t0 = time.perf_counter()
            lr = config.lr * schedule(step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            x, y = (z.to(on.device) for z in task.get_batch(step))  # the CPU: the same tensors
            if world > 1:  # this rank's slice of the global batch
                x, y = x.chunk(world)[rank], y.chunk(world)[rank]
            with on.autocasting():  # bf16 on GPUs that have it; nothing at all on the CPU
                logits = net(x)
                loss = torch.nn.functional.cross_entropy(logits.flatten(0, -2), y.flatten())
            loss_value = loss.item() if world == 1 else _mean_over_ranks(loss)
            run.lr.append(lr)
            if not math.isfinite(loss_value):
                run.train_loss.append(math.inf)
                run.diverged = True
                if monitor is not None:  # the monitor records the divergence itself
                    monitor.on_step(step, lrs=[g["lr"] for g in optimizer.param_groups], loss=loss_value,
                                    grad_norm=None, tokens=(step + 1) * task.items_per_batch)
                break
            loss.backward()
            grad_norm = None
            if config.grad_clip is not None:
                grad_norm = torch.nn.utils.clip_grad_norm_(params, config.grad_clip, foreach=True)
            elif monitor is not None:
                grad_norm = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if schedule_free:  # it applies lr times its own warm-up factor (1 here): record what it applied
                run.lr[-1] = optimizer.param_groups[0]["scheduled_lr"]
            run.train_loss.append(loss_value)
            run.update_time_s += time.perf_counter() - t0
            if monitor is not None:
                monitor.on_step(step, lrs=[g["lr"] for g in optimizer.param_groups], loss=loss_value,
                                grad_norm=None if grad_norm is None else float(grad_norm),
                                tokens=(step + 1) * task.items_per_batch)
            if on_step is not None:
                on_step(step, total=config.steps)
            step += 1
            if step % config.eval_every == 0 or step == config.steps:
                evaluate()
            if config.checkpoint_every and step % config.checkpoint_every == 0 and (save_final or step < config.steps):
                save()
        if save_final or step < config.steps:  # stopped early or diverged: resumable (or inspectable) from here
            save()
        run.wall_time_s = wall_before + time.perf_counter() - t_start
        return _result(config, run, count_params(model), env, resumed_from, task.items_per_batch)
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
        torch.utils.deterministic.fill_uninitialized_memory = previous_fill  # type: ignore[attr-defined]
        if monitor is not None:
            monitor.close()


# ------------------------------------------------------------------------------------------------- helpers


def _result(config: TrainConfig, run: _Curves, n_params: int, env: dict[str, Any], resumed_from: int | None,
            items_per_batch: int) -> RunResult:
    done = len(run.train_loss)
    if run.diverged:
        final = math.inf
    elif done < config.steps:
        final = math.nan
    else:
        final = run.val_loss[-1]
    finite = [v for v in run.val_loss if math.isfinite(v)]
    return RunResult(config=config, eval_steps=list(run.eval_steps), val_loss=list(run.val_loss),
                     val_metrics={k: list(v) for k, v in run.val_metrics.items()},
                     train_loss=list(run.train_loss), lr=list(run.lr), final_val_loss=final,
                     best_val_loss=min(finite) if finite else math.inf, diverged=run.diverged,
                     wall_time_s=run.wall_time_s,
                     tokens_per_s=(done * items_per_batch / run.update_time_s) if run.update_time_s > 0 else 0.0,
                     n_params=n_params, env=env, resumed_from=resumed_from)


def _env(task: Task, world: int) -> dict[str, Any]:
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "threads": torch.get_num_threads(), "processes": world, "task": task.description,
            "data": dict(task.info)}


def _ddp(model: nn.Module) -> nn.Module:
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model)  # broadcasts rank 0's weights: every rank starts from the same point


def _mean_over_ranks(loss: torch.Tensor) -> float:
    """The global batch's mean loss: the mean of the ranks' (equal-sized) slice means."""
    import torch.distributed as dist

    value = loss.detach().clone()
    dist.all_reduce(value)
    return value.item() / dist.get_world_size()


def _any_rank(flag: bool) -> bool:
    import torch
    import torch.distributed as dist

    t = torch.tensor([int(flag)])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def _broadcast(metrics: dict[str, float]) -> dict[str, float]:
    import torch.distributed as dist

    box: list[Any] = [metrics]
    dist.broadcast_object_list(box, src=0)
    return dict(box[0])


@contextlib.contextmanager
def _eval_point(model: nn.Module, optimizer: torch.optim.Optimizer, schedule_free: bool) -> Iterator[None]:
    """Schedule-free: switch the model to the averaged point x for the block, then restore the training point y
    bit for bit (``optimizer.train()`` alone recomputes y by interpolation, which rounds differently)."""
    if not schedule_free:
        yield
        return
    import torch

    saved = [p.detach().clone() for p in model.parameters()]
    optimizer.eval()  # type: ignore[attr-defined]
    try:
        yield
    finally:
        optimizer.train()  # type: ignore[attr-defined]
        with torch.no_grad():
            for p, y in zip(model.parameters(), saved):
                p.copy_(y)


def _save_checkpoint(path: Path, config: TrainConfig, step: int, model: nn.Module,
                     optimizer: torch.optim.Optimizer, schedule_free: bool, run: _Curves,
                     fingerprint: dict[str, Any]) -> None:
    import torch

    eval_model = None
    if schedule_free:
        with _eval_point(model, optimizer, schedule_free):
            eval_model = {k: v.clone() for k, v in model.state_dict().items()}
    state = {"format": 1, "step": step, "config": config.to_dict(), "model": model.state_dict(),
             "optimizer": optimizer.state_dict(), "eval_model": eval_model, "rng": _rng_state(),
             "curves": dataclasses.asdict(run), "data": fingerprint,
             "device": next(model.parameters()).device.type}
    # a unique temporary file, removed if the write fails (disk full), never a link planted in the folder
    atomic_write_with(path, lambda f: torch.save(state, f), fsync=True)


#: what to do with a checkpoint lrlab cannot use
_DAMAGED_ADVICE = ("delete it to train that run from its start again (an `lrlab compare` job restarts from its "
                   "shared prefix or from scratch, with the same numbers)")


def _first_line(e: BaseException, limit: int = 120) -> str:
    text = (str(e).strip().splitlines() or [""])[0]
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The state in checkpoint ``path`` (written by `train`), read with ``weights_only=True`` (no code runs from
    the file). `LrlabError` naming the file when it is unreadable, damaged, truncated, not a torch file or not an
    lrlab checkpoint: torch's own message is not passed on (for a file it cannot read, it suggests
    ``weights_only=False``, which would run whatever code the file holds)."""
    import pickle
    import warnings

    import torch

    path = Path(path)
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols of files it then refuses
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as e:
        raise file_error("read checkpoint", path, e) from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, KeyError, ValueError, TypeError, AttributeError,
            IndexError, UnicodeDecodeError, MemoryError, OverflowError) as e:
        raise LrlabError(f"checkpoint {str(path)!r} is damaged, truncated or not an lrlab checkpoint (torch could "
                         f"not read it safely: {type(e).__name__}); {_DAMAGED_ADVICE}") from None
    expected = {"step": int, "config": dict, "model": dict, "optimizer": dict, "rng": dict, "curves": dict}
    if not isinstance(state, dict):
        raise LrlabError(f"checkpoint {str(path)!r} holds a {type(state).__name__}, not an lrlab checkpoint; "
                         f"{_DAMAGED_ADVICE}")
    for key, kind in expected.items():
        if not isinstance(state.get(key), kind) or isinstance(state.get(key), bool):
            got = "nothing" if key not in state else f"a {type(state[key]).__name__}"
            raise LrlabError(f"checkpoint {str(path)!r} is not an lrlab checkpoint: its {key!r} must be a "
                             f"{kind.__name__}, got {got}; {_DAMAGED_ADVICE}")
    curves = {f.name for f in dataclasses.fields(_Curves)}
    if set(state["curves"]) - curves or state["step"] < 0 or not isinstance(state["rng"].get("numpy"), list):
        raise LrlabError(f"checkpoint {str(path)!r} is not an lrlab checkpoint (its step, curves or RNG state are "
                         f"not those `train` writes); {_DAMAGED_ADVICE}")
    done = len(state["curves"].get("train_loss", ()))
    if done not in (state["step"], state["step"] + 1):  # + 1: the update that diverged is recorded, not counted
        raise LrlabError(f"checkpoint {str(path)!r} is inconsistent: it says {state['step']} updates done but "
                         f"records {done}; {_DAMAGED_ADVICE}")
    return state


def _check_resumable(state: dict[str, Any], config: TrainConfig, schedule: Callable[[float], float],
                     fingerprint: dict[str, Any]) -> None:
    saved_data = state.get("data") or {}  # checkpoints written before it was recorded have none
    differ_data = [k for k in ("python", "corpus_sha256") if k in saved_data and saved_data[k] != fingerprint[k]]
    if differ_data:
        changes = "; ".join(f"{k}: checkpoint {saved_data[k]!r}, now {fingerprint[k]!r}" for k in differ_data)
        raise LrlabError(f"cannot resume: the checkpoint was trained on other data or another Python ({changes}); "
                         "resume with the interpreter and data of the original run, or start a new run")
    saved = dict(state["config"])
    new = config.to_dict()
    differ = [k for k in new if k not in RESUMABLE_CHANGES and k != "schedule" and saved.get(k) != new[k]]
    if differ:
        changes = "; ".join(f"{k}: checkpoint {saved.get(k)!r}, now {new[k]!r}" for k in differ)
        raise LrlabError(f"cannot resume: the checkpoint was written by a different config ({changes})")
    if saved["schedule"] != config.schedule:
        # a branch from a shared prefix: allowed when the LRs of every update done are the same, bit for bit
        done_lrs = state["curves"]["lr"]
        mismatch = next((t for t, v in enumerate(done_lrs) if config.lr * schedule(t) != v), None)
        if mismatch is not None:
            raise LrlabError(f"cannot resume: the checkpoint's schedule {saved['schedule']!r} and schedule "
                             f"{config.schedule!r} give different LRs at update {mismatch} "
                             f"({done_lrs[mismatch]!r} vs {config.lr * schedule(mismatch)!r})")


def _rng_state() -> dict[str, Any]:
    import torch

    np_state: tuple[Any, ...] = np.random.get_state(legacy=True)  # type: ignore[assignment]
    py_state = random.getstate()
    return {"python": [py_state[0], list(py_state[1]), py_state[2]],
            "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
            "torch": torch.get_rng_state()}


def _set_rng_state(state: dict[str, Any]) -> None:
    import torch

    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
