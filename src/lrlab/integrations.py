"""lrlab schedules inside other frameworks: Hugging Face Trainer, PyTorch Lightning, optax and Keras 3.

Each framework is imported only by the function or class that needs it, so importing this module costs nothing.

- Hugging Face ``Trainer``: `LrlabTrainer` (or `HFSchedulerMixin` in front of another Trainer class) builds
  lrlab's scheduler in the Trainer's own ``create_scheduler`` hook (`trainer_scheduler`), so the Trainer keeps
  its optimizer (``optim=``, weight-decay groups), ``num_train_epochs``, FSDP and DeepSpeed: the schedule comes
  from ``lr_scheduler_kwargs={"lrlab": "<spec>"}`` after the arguments' warm-up, else from
  ``lr_scheduler_type`` translated exactly (`lrlab.compat.hf`), ``reduce_lr_on_plateau`` included (a plateau
  controller fed by an `HFPlateauCallback`). Or pass ``optimizers=(opt, sched)`` with a scheduler from
  `hf_scheduler` (not allowed by the Trainer under FSDP). `HFPlateauCallback` feeds evaluation metrics to a
  plateau controller. The manual: docs/integrations.md.
- PyTorch Lightning: return ``{"optimizer": opt, "lr_scheduler": lightning_scheduler_config(sched)}`` from
  ``configure_optimizers`` (``interval="step"``: the clock counts optimizer updates). Lightning saves and restores
  the scheduler's ``state_dict`` with its checkpoints. `LightningPlateauCallback` feeds a logged metric to the
  plateau controller after each validation. `lightning_find_lr` runs lrlab's range test on a LightningModule.
- optax: `lrlab.optax.schedule` (its one home) returns a jax.numpy function of the step count, usable as
  ``learning_rate=``: jittable, exportable and differentiable.
- Keras 3: `keras_schedule` returns a ``keras.optimizers.schedules.LearningRateSchedule`` (`KerasSchedule`) that
  serializes to its spec text; on the torch, jax and numpy backends (not TensorFlow, Keras' default: set
  ``KERAS_BACKEND``).

- `lrlab.monitor.Monitor` in a Trainer: `HFMonitorCallback` / `LightningMonitorCallback`, built by
  ``monitor.hf_callback()`` / ``monitor.lightning_callback()``.

The classes that subclass a framework's base class (`KerasSchedule`, `HFPlateauCallback`, `HFMonitorCallback`,
`LightningPlateauCallback`, `LightningMonitorCallback`) are built on first access of the attribute (PEP 562) by
one mechanism, `lazy_class` (`lightning_class` to choose the Lightning package), with this module as their
home, so they pickle and serialize by name.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import math
import sys
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lrlab.checks import check
from lrlab.errors import LrlabError
from lrlab.lazy_classes import LazyClasses
from lrlab.schedule import Schedule
from lrlab.spec import as_schedule, parse

if TYPE_CHECKING:
    import torch

    from lrlab.monitor import Monitor
    from lrlab.torch import LRScheduler


def _scale(value: object) -> float:
    """The peak LR the schedule's values multiply."""
    return check.number("scale", value)


# ------------------------------------------------------------------------------------------------ Hugging Face

#: ``lr_scheduler_type`` values whose HF factor depends on ``optimizer.defaults["lr"]`` (``min_lr``, ``lr_end``)
_READS_DEFAULT_LR = ("polynomial", "cosine_with_min_lr", "cosine_warmup_with_min_lr")


def hf_scheduler(
    optimizer: torch.optim.Optimizer,
    args: Any,
    *,
    num_training_steps: int | None = None,
    schedule: str | Schedule | None = None,
) -> LRScheduler:
    """An `lrlab.torch.LRScheduler` built from Hugging Face ``TrainingArguments``.

    Args:
      optimizer: the optimizer passed to the Trainer with it (``optimizers=(optimizer, scheduler)``).
      args: the ``TrainingArguments``: ``warmup_steps`` (steps, or a ratio below 1) gives the warm-up ``w``
        through ``args.get_warmup_steps`` (the Trainer's own rounding), ``max_steps`` the total,
        ``lr_scheduler_type`` and ``lr_scheduler_kwargs`` the schedule.
      num_training_steps: the run's optimizer updates when ``args.max_steps`` is not set (> 0): the Trainer's
        ``len(dataloader) // gradient_accumulation_steps * num_train_epochs``.
      schedule: instead of ``lr_scheduler_type``, what follows the warm-up (spec text or schedule; fractions are
        of the whole run): ``warmup(w) >> schedule``.
    Returns:
      The scheduler. Without ``schedule`` its LRs are the Trainer's own scheduler's (`lrlab.compat.hf`
      ``get_scheduler``, parity-tested), for every ``lr_scheduler_type`` that is a function of the step.
    """
    # here, not at the top: lrlab.torch imports torch, and `import lrlab.integrations` stays light
    from lrlab.compat import hf as hf_compat
    from lrlab.torch import LRScheduler

    total = num_training_steps if num_training_steps is not None else getattr(args, "max_steps", -1)
    if isinstance(total, bool) or not isinstance(total, int) or total <= 0:
        raise LrlabError(
            f"hf_scheduler needs the run's length: args.max_steps is {getattr(args, 'max_steps', None)!r}; pass "
            "num_training_steps=<optimizer updates> (> 0)"
        )
    warmup = int(args.get_warmup_steps(total))
    if schedule is None:
        kind = str(getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type))
        kwargs = dict(getattr(args, "lr_scheduler_kwargs", None) or {})
        if kind == "reduce_lr_on_plateau":
            raise LrlabError(
                "hf_scheduler: lr_scheduler_type 'reduce_lr_on_plateau' is feedback, not a function of the step; "
                "lrlab's equivalent: sched = LRScheduler(opt, 'constant()', plateau=lrlab.plateau.Plateau(...)) "
                "with Trainer(..., callbacks=[HFPlateauCallback(sched, 'eval_loss')])"
            )
        if kind in _READS_DEFAULT_LR:
            kwargs.setdefault("default_lr", optimizer.defaults["lr"])
        # base LR 1.0: the factor HF's LambdaLR multiplies each group's base LR by
        found = hf_compat.get_scheduler(kind, 1.0, num_warmup_steps=warmup, num_training_steps=total,
                                        scheduler_specific_kwargs=kwargs)
        if not isinstance(found, Schedule):
            raise LrlabError(f"hf_scheduler: lr_scheduler_type {kind!r} gave {found!r}, not one schedule")
        # built at LR 1.0, it is the factor of each group's LR: a copy without compat's "holds LRs" mark
        s: Schedule = dataclasses.replace(found)
    else:
        if not isinstance(schedule, (str, Schedule)):
            raise LrlabError(f"schedule must be an lrlab schedule or spec text such as 'cosine()', got {schedule!r}")
        rest = schedule if isinstance(schedule, Schedule) else parse(schedule)
        s = parse(f"warmup({warmup})") >> rest if warmup else rest
    return LRScheduler(optimizer, s, total=total if s.needs_total else None, absolute=False)


#: the key of ``TrainingArguments.lr_scheduler_kwargs`` holding lrlab spec text for `trainer_scheduler`
SPEC_KEY = "lrlab"


def trainer_scheduler(trainer: Any, num_training_steps: int, optimizer: Any = None) -> LRScheduler:
    """lrlab's scheduler for a Hugging Face ``Trainer``, built from its arguments in its ``create_scheduler`` hook.

    Call it from ``create_scheduler`` (`HFSchedulerMixin` / `LrlabTrainer` do): the Trainer then built its own
    optimizer (``optim=``, weight-decay groups; wrapped by Accelerate, FSDP or DeepSpeed) and computed the run's
    length, also from ``num_train_epochs``.

    Args:
      trainer: the ``Trainer``; ``trainer.args`` give the warm-up (``warmup_steps``, a ratio below 1, through
        ``args.get_warmup_steps``: the Trainer's own rounding), ``lr_scheduler_type`` and ``lr_scheduler_kwargs``.
      num_training_steps: the run's optimizer updates (the Trainer's ``max_steps``).
      optimizer: the optimizer to drive (the Trainer passes one under DeepSpeed); default ``trainer.optimizer``.
    Returns:
      An `lrlab.torch.LRScheduler`:

      - ``lr_scheduler_kwargs={"lrlab": spec}``: ``warmup(w) >> spec`` (just ``spec`` without a warm-up in the
        arguments; a spec that starts with its own warm-up while the arguments give one is refused), fractions
        of the whole run; no other key may sit beside it;
      - otherwise ``lr_scheduler_type`` with its ``lr_scheduler_kwargs``, the Trainer's own LRs (`hf_scheduler`);
      - ``reduce_lr_on_plateau``: ``constant()`` (after the warm-up, if the arguments give one: HF's ignores it)
        with an `lrlab.plateau.Plateau` built from the kwargs (torch ``ReduceLROnPlateau``'s names: ``mode``,
        ``factor``, ``patience``, ``threshold``, ``threshold_mode``, ``cooldown``, ``min_lr``, ``eps``), fed the
        ``metric_for_best_model`` (default ``eval_loss``) of each evaluation by an `HFPlateauCallback` added to
        the trainer.
    """
    from lrlab.plateau import Plateau
    from lrlab.torch import LRScheduler

    args = trainer.args
    opt = optimizer if optimizer is not None else trainer.optimizer
    if opt is None:
        raise LrlabError("trainer_scheduler: the trainer has no optimizer yet; call it from create_scheduler")
    kwargs = dict(getattr(args, "lr_scheduler_kwargs", None) or {})
    total = check.whole("num_training_steps", num_training_steps, minimum=1)
    if SPEC_KEY in kwargs:
        spec = kwargs.pop(SPEC_KEY)
        if kwargs:
            raise LrlabError(
                f"lr_scheduler_kwargs holds {SPEC_KEY!r} and also {', '.join(sorted(kwargs))}: those are the "
                f"arguments of HF's schedule types; with an lrlab spec write everything in the spec"
            )
        if not isinstance(spec, (str, Schedule)):
            raise LrlabError(f"lr_scheduler_kwargs[{SPEC_KEY!r}] must be lrlab spec text such as "
                             f"'cosine(floor=0.1)', got {spec!r}")
        s = parse(spec) if isinstance(spec, str) else spec
        if int(args.get_warmup_steps(total)) and _starts_with_warmup(s):
            raise LrlabError(
                f"the warm-up is given twice: by the TrainingArguments (warmup_steps={args.warmup_steps!r}) and by "
                f"the spec {str(s)!r}; give it once"
            )
        return hf_scheduler(opt, args, num_training_steps=total, schedule=s)
    kind = str(getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type))
    if kind != "reduce_lr_on_plateau":
        return hf_scheduler(opt, args, num_training_steps=total)
    try:
        plateau = Plateau(**kwargs)
    except TypeError as e:
        raise LrlabError(f"lr_scheduler_kwargs for reduce_lr_on_plateau: {e} (the names of torch's "
                         "ReduceLROnPlateau: mode, factor, patience, threshold, threshold_mode, cooldown, min_lr, "
                         "eps)") from None
    warmup = int(args.get_warmup_steps(total))
    s = parse(f"warmup({warmup}) >> constant()" if warmup else "constant()", total=total)
    sched = LRScheduler(opt, s, plateau=plateau)
    metric = getattr(args, "metric_for_best_model", None) or "eval_loss"
    if not metric.startswith("eval_"):
        metric = f"eval_{metric}"  # the Trainer's own rule for the metric it checks
    trainer.add_callback(lazy_class("HFPlateauCallback")(sched, metric))
    return sched


def _starts_with_warmup(s: Schedule) -> bool:
    from lrlab.compose import Join
    from lrlab.families import Warmup

    return isinstance(s, Warmup) or (isinstance(s, Join) and isinstance(s.pieces[0], Warmup))


class HFSchedulerMixin:
    """Put in front of a Hugging Face ``Trainer`` class (``class MyTrainer(HFSchedulerMixin, SFTTrainer)``): its
    ``create_scheduler`` builds lrlab's scheduler (`trainer_scheduler`) instead of HF's. `LrlabTrainer` is
    ``HFSchedulerMixin`` + ``transformers.Trainer``."""

    lr_scheduler: Any
    _created_lr_scheduler: bool

    def create_scheduler(self, num_training_steps: int, optimizer: Any = None) -> Any:
        """The Trainer's hook, called after the optimizer is built and wrapped: lrlab's scheduler, once."""
        if self.lr_scheduler is None:
            self.lr_scheduler = trainer_scheduler(self, num_training_steps, optimizer)
            self._created_lr_scheduler = True  # the Trainer rebuilds it on the next train() (hyperparameter search)
        return self.lr_scheduler


# ------------------------------------------------------------------------------------------------ Lightning


def lightning_scheduler_config(scheduler: LRScheduler, *, name: str | None = None) -> dict[str, Any]:
    """The ``lr_scheduler`` entry for ``configure_optimizers``: stepped after every optimizer update.

    In a ``LightningModule``::

        def configure_optimizers(self):
            opt = torch.optim.AdamW(self.parameters(), lr=3e-4)
            sched = LRScheduler(opt, "warmup(0.05) >> cosine()", total=self.trainer.estimated_stepping_batches)
            return {"optimizer": opt, "lr_scheduler": lightning_scheduler_config(sched)}
    """
    out: dict[str, Any] = {"scheduler": scheduler, "interval": "step", "frequency": 1}
    if name is not None:
        out["name"] = name
    return out


def lightning_find_lr(module: Any, train_dataloader: Any, *, val_dataloader: Any = None, **kwargs: Any) -> Any:
    """lrlab's LR range test (`lrlab.range_test.find_lr`) on a ``LightningModule``, like Lightning's
    ``Tuner(trainer).lr_find(module)`` but with lrlab's sweep, suggestions and exact restore, and without a Trainer.

    The optimizer is the first one ``module.configure_optimizers()`` returns (an optimizer, a list, or a dict /
    list of dicts with ``"optimizer"``; its scheduler is not used: the sweep sets the LR); the loss of a batch is
    what ``module.training_step(batch, batch_idx)`` returns (a tensor, or a dict with ``"loss"``). ``self.log``
    calls in it are skipped (there is no Trainer to log to). Automatic optimization only.

    Args:
      module: the ``LightningModule`` (of either Lightning package); moved nowhere: place it on its device first.
      train_dataloader: its training batches (a DataLoader or list; started over when exhausted).
      val_dataloader: with it, the curve is the mean ``training_step`` loss over these batches, measured without
        gradients after every ``val_every``-th update (`find_lr`'s validation mode).
      kwargs: the other arguments of `find_lr` (``start_lr``, ``end_lr``, ``num_iter``, ``amp``, ...).
    Returns:
      A `lrlab.range_test.RangeTestResult` (``suggest_all(result)``, ``plot_range_test(result, path)``).
    """
    from lrlab.range_test import find_lr

    if not getattr(module, "automatic_optimization", True):
        raise LrlabError("lightning_find_lr needs automatic optimization: a module that steps its own optimizers in "
                         "training_step cannot have its LR swept from outside")
    optimizer = _first_optimizer(module.configure_optimizers())
    index = [0]

    def batch_loss(batch: Any) -> Any:
        out = module.training_step(batch, index[0])
        index[0] += 1
        loss = out.get("loss") if isinstance(out, Mapping) else out
        if loss is None:
            raise LrlabError("training_step returned no loss (None, or a dict without 'loss')")
        return loss

    with warnings.catch_warnings():  # training_step's self.log() has no Trainer to go to: skipped, not warned
        warnings.filterwarnings("ignore", message="You are trying to `self.log", category=UserWarning)
        return find_lr(module, None, train_dataloader, optimizer, val_batches=val_dataloader,
                       batch_loss=batch_loss, **kwargs)


def _first_optimizer(configured: Any) -> Any:
    """The first optimizer in what ``configure_optimizers`` returns."""
    found = configured
    if isinstance(found, (list, tuple)) and found:
        found = found[0]
        if isinstance(found, (list, tuple)) and found:  # ([optimizers], [schedulers])
            found = found[0]
    if isinstance(found, Mapping):
        found = found.get("optimizer")
    if getattr(found, "param_groups", None) is None:
        raise LrlabError(f"configure_optimizers() returned {configured!r}: no optimizer found (an optimizer, a list of "
                         "them, or a dict with 'optimizer')")
    return found


# ------------------------------------------------------------------------------------------------ lazy classes


#: Keras backends `KerasSchedule` computes on
KERAS_BACKENDS = ("torch", "jax", "numpy")


def _keras_backend_error(backend: str) -> LrlabError:
    return LrlabError(
        f"lrlab's KerasSchedule runs on the Keras backends {', '.join(KERAS_BACKENDS)}; this Keras uses {backend}"
        " (TensorFlow is Keras' default backend, and lrlab does not trace its schedules in TensorFlow graphs). Set"
        " the environment variable KERAS_BACKEND=jax (or torch) before Keras is first imported, or set \"backend\""
        " in ~/.keras/keras.json"
    )


def _make_keras_schedule(package: str | None = None) -> type:
    try:
        import keras
    except ModuleNotFoundError as e:
        if e.name is None or e.name.split(".")[0] != "tensorflow":
            raise
        # no KERAS_BACKEND set: Keras defaults to TensorFlow and fails to import without it
        raise _keras_backend_error("tensorflow (not installed)") from e

    base: Any = keras.optimizers.schedules.LearningRateSchedule

    class KerasSchedule(base):
        """A Keras 3 learning-rate schedule: ``scale * s(step)``, serialized as its spec text.

        Args:
          spec: lrlab spec text (bound: no fractions or open lengths left).
          scale: the peak LR the values multiply.
        Backends: torch, jax (the jax.numpy formulas of `lrlab.optax`) and numpy; values in
        Keras' ``floatx``. The TensorFlow backend (Keras' default) is refused: set ``KERAS_BACKEND``.
        """

        def __init__(self, spec: str, scale: float = 1.0) -> None:
            super().__init__()
            self.schedule = as_schedule(spec)
            self.spec = str(self.schedule)
            self.scale = _scale(scale)

        def __call__(self, step: Any) -> Any:
            backend = keras.backend.backend()
            if backend == "jax":
                import lrlab.optax  # optional dependency (jax); keeps import light

                value = lrlab.optax.schedule(self.schedule, scale=self.scale)(step)
            elif backend in ("torch", "numpy"):
                t = float(keras.ops.convert_to_tensor(step))  # a host sync on a GPU, like any .item()
                value = self.scale * self.schedule(t) if self.scale != 1.0 else self.schedule(t)
            else:
                raise _keras_backend_error(backend)
            return keras.ops.cast(value, keras.config.floatx())

        def get_config(self) -> dict[str, Any]:
            return {"spec": self.spec, "scale": self.scale}

    KerasSchedule.__module__ = __name__
    KerasSchedule.__qualname__ = KerasSchedule.__name__ = "KerasSchedule"
    return keras.saving.register_keras_serializable(package="lrlab", name="KerasSchedule")(KerasSchedule)


def _make_hf_plateau_callback(package: str | None) -> type:
    from transformers import TrainerCallback

    class HFPlateauCallback(TrainerCallback):
        """Feed each evaluation's ``metric`` (e.g. ``eval_loss``) to ``scheduler.report``.

        ``Trainer(..., optimizers=(opt, sched), callbacks=[HFPlateauCallback(sched, "eval_loss")])``
        """

        def __init__(self, scheduler: LRScheduler, metric: str = "eval_loss") -> None:
            self.scheduler = scheduler
            self.metric = metric

        def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, float] | None = None,
                        **kwargs: Any) -> None:
            if not metrics or self.metric not in metrics:
                raise LrlabError(f"HFPlateauCallback: the evaluation has no {self.metric!r} (it has "
                                 f"{', '.join(sorted(metrics or {}))})")
            self.scheduler.report(metrics[self.metric])

    return HFPlateauCallback


def _make_lrlab_trainer(package: str | None) -> type:
    from transformers import Trainer

    class LrlabTrainer(HFSchedulerMixin, Trainer):
        """``transformers.Trainer`` whose scheduler is lrlab's (`HFSchedulerMixin`, `trainer_scheduler`):
        ``LrlabTrainer(model=..., args=TrainingArguments(..., lr_scheduler_kwargs={"lrlab": "cosine(floor=0.1)"}))``.
        """

    return LrlabTrainer


def _make_hf_monitor_callback(package: str | None) -> type:
    try:
        from transformers import TrainerCallback
    except ImportError:
        raise LrlabError("Monitor.hf_callback needs transformers installed") from None
    from lrlab.monitor import Monitor, coverage_every  # here, not at the top: `import lrlab.integrations` stays light

    class HFMonitorCallback(TrainerCallback):
        """Hugging Face TrainerCallback feeding an lrlab Monitor (see `lrlab.monitor.Monitor.hf_callback`)."""

        def __init__(self, monitor: Monitor) -> None:
            self.monitor = monitor
            self._pending: dict[str, Any] | None = None

        def _flush(self, loss: float | None = None, grad_norm: float | None = None) -> None:
            p = self._pending
            if p is not None:
                self._pending = None
                self.monitor.on_step(p["step"], lrs=p["lrs"], loss=loss, grad_norm=grad_norm, tokens=p["tokens"])

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            max_steps = int(getattr(state, "max_steps", 0) or 0)
            if max_steps > 0:  # the Trainer's plan (max_steps, or epochs x updates per epoch)
                self.monitor.set_total_steps(max_steps)
            vocab = getattr(getattr(kwargs.get("model"), "config", None), "vocab_size", None)
            if self.monitor.chance_loss is None and isinstance(vocab, int) and vocab > 1:
                self.monitor.chance_loss = math.log(vocab)  # a language model's cross-entropy at a uniform guess
            every = float(getattr(args, "logging_steps", 1) or 1)
            total = self.monitor.total_steps
            if total is not None:
                every_n = math.ceil(every * total) if every < 1 else int(every)  # a float below 1: of the run
                limit = coverage_every(total, self.monitor.thresholds)
                if limit >= 1 and every_n > limit:
                    warnings.warn(
                        f"lrlab Monitor: the Trainer logs the training loss every {every_n} updates "
                        f"(logging_steps={args.logging_steps!r}) over {total}: too rarely for lrlab's diagnoses, which "
                        f"need one at least every {limit}. Set logging_steps=1 (and logging_nan_inf_filter=False)",
                        UserWarning, stacklevel=2)

        def on_optimizer_step(self, args: Any, state: Any, control: Any, optimizer: Any = None,
                              **kwargs: Any) -> None:
            self._flush()
            seen = int(getattr(state, "num_input_tokens_seen", 0) or 0)
            tokens = seen if seen > 0 else None  # counted only with include_num_input_tokens_seen
            # before the scheduler steps: these are the LRs this update used (the Trainer logs group 0 only)
            self._pending = {"step": int(state.global_step), "lrs": Monitor.lrs_from_optimizer(optimizer),
                             "tokens": tokens}

        def on_log(self, args: Any, state: Any, control: Any, logs: Mapping[str, Any] | None = None,
                   **kwargs: Any) -> None:
            logs = logs or {}
            if "loss" in logs and self._pending is not None and self._pending["step"] == int(state.global_step) - 1:
                gn = logs.get("grad_norm")
                self._flush(float(logs["loss"]), float(gn) if gn is not None else None)

        def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Mapping[str, Any] | None = None,
                        **kwargs: Any) -> None:
            metrics = metrics or {}
            if "eval_loss" not in metrics:
                return
            self._flush()
            skip = {"eval_loss", "eval_runtime", "eval_samples_per_second", "eval_steps_per_second", "epoch"}
            extra = {k.removeprefix("eval_"): float(v) for k, v in metrics.items()
                     if k not in skip and isinstance(v, (int, float)) and not isinstance(v, bool)
                     and math.isfinite(v)}
            self.monitor.on_eval(int(state.global_step), val_loss=float(metrics["eval_loss"]), **extra)

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self._flush()
            self.monitor.close()

    return HFMonitorCallback


def _lightning_callback_base(package: str | None, who: str) -> Any:
    try:
        return importlib.import_module(lightning_package(package)).Callback
    except ImportError as e:
        raise LrlabError(f"{who}(package={package!r}) needs {package} installed ({e})") from None


def _make_lightning_plateau_callback(package: str | None) -> type:
    base = _lightning_callback_base(package, "LightningPlateauCallback")

    class LightningPlateauCallback(base):  # type: ignore[misc,valid-type]
        """After each validation, report ``trainer.callback_metrics[monitor]`` to every lrlab scheduler that has a
        plateau controller (``Trainer(callbacks=[LightningPlateauCallback("val_loss")])``)."""

        def __init__(self, monitor: str = "val_loss") -> None:
            self.monitor = monitor

        def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
            from lrlab.torch import LRScheduler  # imports torch: only once a Trainer runs

            if trainer.sanity_checking:
                return
            if self.monitor not in trainer.callback_metrics:
                raise LrlabError(f"LightningPlateauCallback: no logged metric {self.monitor!r} (logged: "
                                 f"{', '.join(sorted(trainer.callback_metrics))})")
            value = float(trainer.callback_metrics[self.monitor])
            for config in trainer.lr_scheduler_configs:
                if isinstance(config.scheduler, LRScheduler) and config.scheduler.plateau is not None:
                    config.scheduler.report(value)

    return LightningPlateauCallback


def _make_lightning_monitor_callback(package: str | None) -> type:
    base = _lightning_callback_base(package, "Monitor.lightning_callback")
    from lrlab.monitor import Monitor  # here, not at the top: `import lrlab.integrations` stays light

    class LightningMonitorCallback(base):  # type: ignore[misc,valid-type]
        """Lightning Callback feeding an lrlab Monitor (see `lrlab.monitor.Monitor.lightning_callback`)."""

        def __init__(self, monitor: Monitor, *, grad_norm: bool = False, val_key: str | None = None) -> None:
            self.monitor = monitor
            self.grad_norm = grad_norm
            self.val_key = val_key
            self._lrs: list[float] | None = None
            self._gn: float | None = None
            self._losses: list[float] = []
            self._last_step = -1

        def on_train_start(self, trainer: Any, pl_module: Any) -> None:
            self._last_step = int(trainer.global_step)
            planned = trainer.estimated_stepping_batches  # inf when neither max_steps nor max_epochs bounds it
            if isinstance(planned, (int, float)) and math.isfinite(planned) and planned >= 1:
                self.monitor.set_total_steps(int(planned))

        def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
            self._lrs = Monitor.lrs_from_optimizer(optimizer)  # before the scheduler steps: this update's LRs
            if self.grad_norm:
                import torch  # Lightning runs on torch: it is imported already

                grads = [p.grad.detach().float().norm() for p in pl_module.parameters() if p.grad is not None]
                self._gn = float(torch.linalg.vector_norm(torch.stack(grads))) if grads else None

        def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                               batch_idx: int) -> None:
            loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
            if loss is not None:
                # automatic optimization hands back the loss divided by accumulate_grad_batches: undo it
                auto = pl_module.automatic_optimization
                k = int(getattr(trainer, "accumulate_grad_batches", 1) or 1) if auto else 1
                self._losses.append(float(loss) * k)
            step = int(trainer.global_step)
            if step > self._last_step and self._lrs is not None:
                lrs = self._lrs
                opt = trainer.optimizers[0] if trainer.optimizers else None
                if opt is not None:  # schedule-free optimizers store the LR they applied during the step
                    applied = Monitor.lrs_from_optimizer(opt)
                    lrs = [a if "scheduled_lr" in g else b for a, b, g in zip(applied, lrs, opt.param_groups)]
                mean = sum(self._losses) / len(self._losses) if self._losses else None
                self.monitor.on_step(step - 1, lrs=lrs, loss=mean, grad_norm=self._gn)
                self._losses = []
                self._gn = None
                self._last_step = step

        def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
            if getattr(trainer, "sanity_checking", False):
                return
            metrics = trainer.callback_metrics
            keys = [self.val_key] if self.val_key else ["val_loss", "val/loss", "validation_loss"]
            key = next((k for k in keys if k in metrics), None)
            if key is None:
                if self.val_key:
                    raise LrlabError(f"val_key {self.val_key!r} is not among the logged metrics {sorted(metrics)}")
                return
            self.monitor.on_eval(int(trainer.global_step), val_loss=float(metrics[key]))

        def on_train_end(self, trainer: Any, pl_module: Any) -> None:
            self.monitor.close()

    return LightningMonitorCallback


#: the Lightning packages a callback can subclass
LIGHTNING_PACKAGES = ("lightning.pytorch", "pytorch_lightning")


def lightning_package(package: str | None = None) -> str:
    """The Lightning package to subclass: `package` when given (``"lightning"`` means ``lightning.pytorch``);
    else the one already imported (the one the user's Trainer comes from; ``lightning.pytorch`` if both are),
    else the installed one."""
    if package is not None:
        if package == "lightning":
            package = "lightning.pytorch"
        return check.choice("package", package, LIGHTNING_PACKAGES)
    for name in LIGHTNING_PACKAGES:
        if name in sys.modules:
            return name
    for name in LIGHTNING_PACKAGES:
        try:
            if importlib.util.find_spec(name) is not None:
                return name
        except ModuleNotFoundError:  # find_spec("lightning.pytorch") without lightning
            continue
    raise LrlabError("the Lightning callbacks need lightning or pytorch-lightning installed")


# name -> factory(package) building the class; Lightning ones subclass `package`'s Callback, the others ignore it
_CLASSES = LazyClasses(__name__, {
    "KerasSchedule": _make_keras_schedule,
    "HFPlateauCallback": _make_hf_plateau_callback,
    "LrlabTrainer": _make_lrlab_trainer,
    "HFMonitorCallback": _make_hf_monitor_callback,
    "LightningPlateauCallback": _make_lightning_plateau_callback,
    "LightningMonitorCallback": _make_lightning_monitor_callback,
})


def lazy_class(name: str, package: str | None = None) -> type:
    """The class `name` of `_CLASSES`, built on first use (importing its framework) with this module as its
    home, and cached; `package` chooses the Lightning package (see `lightning_class`)."""
    return _CLASSES.get(name, package)


def lightning_class(name: str, package: str | None = None) -> type:
    """A Lightning callback class subclassing the ``Callback`` of `lightning_package(package)` (a Trainer accepts
    only its own package's callbacks)."""
    return lazy_class(name, lightning_package(package))


def __getattr__(name: str) -> Any:
    """The framework subclasses (`_CLASSES`), built on first access; Lightning ones for the default package."""
    if name in _CLASSES:
        cls = lightning_class(name) if name.startswith("Lightning") else lazy_class(name)
        globals()[name] = cls  # later look-ups skip this function
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def keras_schedule(schedule: str | Schedule, *, scale: float = 1.0, total: float | None = None) -> Any:
    """A Keras 3 ``LearningRateSchedule`` (`KerasSchedule`) giving ``scale * s(step)``.

    Set ``KERAS_BACKEND`` (torch, jax or numpy; not Keras' default, TensorFlow) before Keras is first imported. The
    schedule serializes as ``{"spec": ..., "scale": ...}`` (``keras.saving.serialize_keras_object``); deserializing
    needs ``lrlab.integrations.KerasSchedule`` to have been accessed once (which registers it), or
    ``custom_objects={"KerasSchedule": KerasSchedule}``.
    """
    cls = lazy_class("KerasSchedule")
    return cls(str(as_schedule(schedule, total)), scale=scale)
