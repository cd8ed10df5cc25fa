"""lrlab schedules inside other frameworks: Hugging Face Trainer, PyTorch Lightning, optax and Keras 3.

Each framework is imported only by the function or class that needs it, so importing this module costs nothing.

- Hugging Face ``Trainer``: pass ``optimizers=(opt, lrlab.torch.LRScheduler(opt, ...))``, or build the scheduler
  from ``TrainingArguments`` with `hf_scheduler` (warm-up and total from the arguments, exactly as the Trainer's
  own scheduler, and a checkpoint that holds the spec and the clock). The Trainer steps the scheduler once per
  optimizer update and not after an update the GradScaler skipped. `HFPlateauCallback` feeds evaluation
  metrics to a plateau controller.
- PyTorch Lightning: return ``{"optimizer": opt, "lr_scheduler": lightning_scheduler_config(sched)}`` from
  ``configure_optimizers`` (``interval="step"``: the clock counts optimizer updates). Lightning saves and restores
  the scheduler's ``state_dict`` with its checkpoints. `LightningPlateauCallback` feeds a logged metric to the
  plateau controller after each validation.
- optax: `optax_schedule` (also `lrlab.optax.schedule`) returns a jit-traceable function of the step count, usable
  as ``learning_rate=``. It computes on the host through ``jax.pure_callback`` (see `OptaxSchedule` for what that
  costs and rules out).
- Keras 3: `keras_schedule` returns a ``keras.optimizers.schedules.LearningRateSchedule`` (`KerasSchedule`) that
  serializes to its spec text; on the torch, jax and numpy backends (not TensorFlow, Keras' default: set
  ``KERAS_BACKEND``).

The classes that subclass a framework's base class (`KerasSchedule`, `HFPlateauCallback`,
`LightningPlateauCallback`) are created on first access of the attribute (PEP 562), with this module as their
home, so they pickle and serialize by name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from lrlab.errors import LrlabError
from lrlab.schedule import Schedule
from lrlab.spec import as_schedule, parse

if TYPE_CHECKING:
    import torch

    from lrlab.torch import LRScheduler


def _scale(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise LrlabError(f"scale must be a finite number (the peak LR the schedule multiplies), got {value!r}")
    return float(value)


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
        s: Schedule = found
    else:
        if not isinstance(schedule, (str, Schedule)):
            raise LrlabError(f"schedule must be an lrlab schedule or spec text such as 'cosine()', got {schedule!r}")
        rest = schedule if isinstance(schedule, Schedule) else parse(schedule)
        s = parse(f"warmup({warmup})") >> rest if warmup else rest
    return LRScheduler(optimizer, s, total=total if s.needs_total else None)


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


# ------------------------------------------------------------------------------------------------ optax / jax


def _jax_float() -> Any:
    import jax.numpy as jnp
    from jax import dtypes

    return dtypes.canonicalize_dtype(jnp.float64)  # float32 unless jax_enable_x64


@dataclass(frozen=True, kw_only=True)
class OptaxSchedule:
    """``scale * s(count)`` as a jax function (an optax learning rate). Build it with `optax_schedule`.

    The value is computed on the host by ``s.values`` (``jax.pure_callback``), so it is lrlab's float64 number,
    rounded to float32 unless ``jax_enable_x64`` is on; it traces under ``jit`` and ``vmap``.

    Caveats of the host callback (lrlab's formulas are NumPy float64 code, not jnp): every call is a round trip
    from the device to the host and back (microseconds on a CPU; a sync point on a GPU/TPU, once per update,
    usually small next to the update itself); a jitted function holding it cannot be serialized with
    ``jax.export`` (AOT) or run where no Python host is attached; it is not differentiable with respect to the
    count. If one of these matters, precompute ``lrs = jnp.asarray(scale * s.values(np.arange(total)))`` and use
    ``lambda count: lrs[jnp.minimum(count, total - 1)]``, a pure array lookup.
    """

    schedule: Schedule
    scale: float = 1.0

    def host_values(self, count: Any) -> np.ndarray:
        """The values at ``count`` (any shape) as a NumPy array of jax's default float type."""
        t = np.asarray(count, dtype=np.float64)
        v = self.schedule.values(t) if self.scale == 1.0 else self.scale * self.schedule.values(t)
        return np.asarray(v, dtype=_jax_float())

    def __call__(self, count: Any) -> Any:
        import jax
        import jax.numpy as jnp

        count = jnp.asarray(count)
        shape = jax.ShapeDtypeStruct(count.shape, _jax_float())
        return jax.pure_callback(self.host_values, shape, count, vmap_method="expand_dims")

    def __str__(self) -> str:
        return str(self.schedule) if self.scale == 1.0 else f"{self.scale!r} * ({self.schedule})"


def optax_schedule(schedule: str | Schedule, *, scale: float = 1.0, total: float | None = None) -> OptaxSchedule:
    """A jit-traceable function ``count -> scale * s(count)`` for ``optax.adamw(learning_rate=...)``.

    Args:
      schedule: spec text or schedule; ``count`` is optax's update count (0 at the first update), the same clock
        as `lrlab.torch.LRScheduler`'s default.
      scale: the peak LR the schedule's values multiply.
      total: binds fractions and open lengths.
    Returns:
      An `OptaxSchedule`: float64 values with ``jax.config.update("jax_enable_x64", True)``, else float32.

    >>> import jax
    >>> f = optax_schedule("cosine(100)", scale=0.1)
    >>> float(jax.jit(f)(50))
    0.05000000074505806
    """
    return OptaxSchedule(schedule=as_schedule(schedule, total), scale=_scale(scale))


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


def _make_keras_schedule() -> type:
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
        Backends: torch, jax (traced through ``jax.pure_callback``, see `OptaxSchedule`) and numpy; values in
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
                value = OptaxSchedule(schedule=self.schedule, scale=self.scale)(step)
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


def _make_hf_plateau_callback() -> type:
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

    HFPlateauCallback.__module__ = __name__
    return HFPlateauCallback


def _make_lightning_plateau_callback() -> type:
    import pytorch_lightning as pl

    class LightningPlateauCallback(pl.Callback):
        """After each validation, report ``trainer.callback_metrics[monitor]`` to every lrlab scheduler that has a
        plateau controller (``Trainer(callbacks=[LightningPlateauCallback("val_loss")])``)."""

        def __init__(self, monitor: str = "val_loss") -> None:
            self.monitor = monitor

        def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
            from lrlab.torch import LRScheduler

            if trainer.sanity_checking:
                return
            if self.monitor not in trainer.callback_metrics:
                raise LrlabError(f"LightningPlateauCallback: no logged metric {self.monitor!r} (logged: "
                                 f"{', '.join(sorted(trainer.callback_metrics))})")
            value = float(trainer.callback_metrics[self.monitor])
            for config in trainer.lr_scheduler_configs:
                if isinstance(config.scheduler, LRScheduler) and config.scheduler.plateau is not None:
                    config.scheduler.report(value)

    LightningPlateauCallback.__module__ = __name__
    return LightningPlateauCallback


_LAZY = {"KerasSchedule": _make_keras_schedule, "HFPlateauCallback": _make_hf_plateau_callback,
         "LightningPlateauCallback": _make_lightning_plateau_callback}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        cls = _LAZY[name]()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def keras_schedule(schedule: str | Schedule, *, scale: float = 1.0, total: float | None = None) -> Any:
    """A Keras 3 ``LearningRateSchedule`` (`KerasSchedule`) giving ``scale * s(step)``.

    Set ``KERAS_BACKEND`` (torch, jax or numpy; not Keras' default, TensorFlow) before Keras is first imported. The
    schedule serializes as ``{"spec": ..., "scale": ...}`` (``keras.saving.serialize_keras_object``); deserializing
    needs ``lrlab.integrations.KerasSchedule`` to have been accessed once (which registers it), or
    ``custom_objects={"KerasSchedule": KerasSchedule}``.
    """
    cls = __getattr__("KerasSchedule") if "KerasSchedule" not in globals() else globals()["KerasSchedule"]
    return cls(str(as_schedule(schedule, total)), scale=scale)
