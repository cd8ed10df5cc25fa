"""Run the trials of `lrlab.tune.Tuner` with a Hugging Face ``Trainer`` or Lightning: one trial is one
``trainer.train(...)`` / ``trainer.fit(...)`` call, from scratch or resumed from the checkpoint of the trial it
branches from (docs/tune.md has both loops; tests/test_tune_frameworks.py runs them).

- `trial_scheduler`: the LR scheduler of a trial (`lrlab.torch.LRScheduler` over the whole run's schedule). It
  takes the scheduler state of the checkpoint it branches from although that was saved by another schedule (the
  trunk's), when the two give the same LR to every update before the resume point: "continue this run with this
  schedule". A plain `lrlab.torch.LRScheduler` refuses a state saved by another schedule.
- `hf_trial_arguments`, `hf_resume_from`: the ``TrainingArguments`` fields and the ``resume_from_checkpoint``
  folder of a trial; `HFTrialCallback` reports each evaluation loss to the trial (and evaluates at its last
  update).
- `lightning_trial_arguments`: the ``Trainer`` fields of a trial; `LightningTrialCallback` reports each
  validation loss to the trial.

Each framework is imported when its piece is first used: importing this module loads numpy only. The callback
classes subclass their framework's ``Callback``; they are built on first access (PEP 562) with this module as
their home, by the same `lrlab.lazy_classes.LazyClasses` as `lrlab.integrations`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lrlab.errors import LrlabError
from lrlab.lazy_classes import LazyClasses
from lrlab.tune.trial import TuneTrial

if TYPE_CHECKING:
    from lrlab.torch import LRScheduler

# and the classes built on first access: HFTrialCallback, LightningTrialCallback, TrialScheduler
__all__ = ["hf_resume_from", "hf_trial_arguments", "lightning_trial_arguments", "trial_scheduler"]


def trial_scheduler(optimizer: Any, trial: TuneTrial) -> LRScheduler:
    """The scheduler that gives update ``t`` of ``trial`` the LR ``trial.lr_at(t)``.

    Args:
        optimizer: the torch optimizer, built with ``lr=trial.lr`` (the peak the schedule's factors multiply).
        trial: the trial to run.
    Returns:
        A `lrlab.torch.LRScheduler` (``total=trial.horizon``) whose ``load_state_dict`` also takes the state of the
        checkpoint named ``trial.resume_from``: its clock, once the saved schedule is checked to give every update
        before the saved clock the LR this one gives (else `LrlabError`, showing both schedules).
    """
    if not isinstance(trial, TuneTrial):
        raise LrlabError(f"trial must be a lrlab.tune.TuneTrial, got {type(trial).__name__}")
    lrs = [float(g["lr"]) for g in optimizer.param_groups]
    if any(not math.isclose(lr, trial.lr, rel_tol=1e-12) for lr in lrs):
        raise LrlabError(f"trial {trial.name}: build the optimizer with lr=trial.lr ({trial.lr:g}), the peak the "
                         f"schedule's factors multiply; its param groups have lr {', '.join(f'{x:g}' for x in lrs)}")
    return _class("TrialScheduler")(optimizer, trial.schedule, total=trial.horizon)


def hf_trial_arguments(trial: TuneTrial, root: str | Path) -> dict[str, Any]:
    """The ``TrainingArguments`` fields that make one ``trainer.train`` call run ``trial``.

    Trains to ``max_steps=trial.stop`` at ``learning_rate=trial.lr`` with ``seed``/``data_seed`` the trial's seed,
    evaluates every ``trial.eval_every`` updates, and (when ``trial.checkpoint`` names one) saves the Trainer's
    checkpoint at ``trial.stop``, in ``root/<trial.name>/checkpoint-<stop>`` (`hf_resume_from` finds it). Add
    your own fields (batch size, ``use_cpu``, ``report_to``) beside them.
    """
    out: dict[str, Any] = {
        "output_dir": str(Path(root) / trial.name), "max_steps": trial.stop, "learning_rate": trial.lr,
        "seed": trial.seed, "data_seed": trial.seed, "eval_strategy": "steps", "eval_steps": trial.eval_every,
        "save_strategy": "no"}
    if trial.checkpoint is not None:
        # a multiple of stop: the one save of the call is at its last update
        out.update(save_strategy="steps", save_steps=trial.stop, save_only_model=False)
    return out


def hf_resume_from(trial: TuneTrial, root: str | Path) -> str | None:
    """``resume_from_checkpoint`` for ``trainer.train``: the checkpoint folder the trial named
    ``trial.resume_from`` saved under ``root`` (with `hf_trial_arguments`), or None for a trial from scratch."""
    if trial.resume_from is None:
        return None
    return str(Path(root) / trial.resume_from / f"checkpoint-{trial.start}")


def lightning_trial_arguments(trial: TuneTrial) -> dict[str, Any]:
    """The Lightning ``Trainer`` fields that make one ``trainer.fit`` call run ``trial`` (one training batch per
    update): train to ``max_steps=trial.stop``, validate every ``trial.eval_every`` updates and after the last one
    (every ``gcd(eval_every, stop)`` updates, counted over the whole run: ``check_val_every_n_epoch=None``), no
    sanity validation. Add your own fields (``logger``, ``accelerator``) beside them."""
    return {"max_steps": trial.stop, "val_check_interval": math.gcd(trial.eval_every, trial.stop),
            "check_val_every_n_epoch": None, "num_sanity_val_steps": 0}


def _report(trial: TuneTrial, value: Any, step: int) -> bool:
    """Report ``value`` at ``step`` when the step is one of the trial's evaluations (a multiple of ``eval_every``
    in its span, or its last update); True when the loss is not finite (the run diverged)."""
    v = float(value)
    if trial.start < step <= trial.stop and (step % trial.eval_every == 0 or step == trial.stop):
        trial.report(v, step)
    return not math.isfinite(v)


# ------------------------------------------------------------------------------------- lazily built classes


def _make_trial_scheduler() -> type:
    import numpy as np

    from lrlab.spec import parse
    from lrlab.torch import LRScheduler

    class TrialScheduler(LRScheduler):
        """`lrlab.torch.LRScheduler` that continues a saved run with its own schedule (see `trial_scheduler`)."""

        def load_state_dict(self, state_dict: Any) -> None:
            saved, mine = state_dict.get("spec"), self._spec
            if isinstance(saved, str) and saved != mine:
                n = int(state_dict.get("updates", 0))
                ts = np.arange(n, dtype=np.float64)
                if not np.array_equal(parse(saved).values(ts), self.schedules[0].values(ts)):
                    raise LrlabError(f"cannot continue a run with another schedule that gives its first {n} "
                                     f"updates other LRs:\n  saved: {saved}\n  this:  {mine}")
                state_dict = {**state_dict, "spec": mine}
            super().load_state_dict(state_dict)

    return TrialScheduler


def _make_hf_trial_callback() -> type:
    try:
        from transformers import TrainerCallback
    except ImportError:
        raise LrlabError("HFTrialCallback needs transformers installed") from None

    class HFTrialCallback(TrainerCallback):
        """Reports the Trainer's evaluation losses to a `lrlab.tune.TuneTrial` (``trial.report(loss, step)``),
        evaluates after the trial's last update, and stops the run once a loss is not finite.

        Args:
            trial: the trial this ``trainer.train`` call runs.
            metric: the evaluation metric to report (default ``eval_loss``).
        """

        def __init__(self, trial: TuneTrial, metric: str = "eval_loss") -> None:
            self.trial = trial
            self.metric = metric

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            if state.global_step == self.trial.stop:
                control.should_evaluate = True
            return control

        def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Any = None, **kwargs: Any) -> Any:
            if metrics is not None and self.metric not in metrics:
                raise LrlabError(f"HFTrialCallback: metric {self.metric!r} is not among the evaluation's metrics "
                                 f"{sorted(metrics)}")
            if metrics is not None and _report(self.trial, metrics[self.metric], int(state.global_step)):
                control.should_training_stop = True
            return control

    return HFTrialCallback


def _make_lightning_trial_callback() -> type:
    import importlib

    from lrlab.integrations import lightning_package

    callback = importlib.import_module(lightning_package()).Callback

    class LightningTrialCallback(callback):  # type: ignore[misc,valid-type]
        """Reports each validation's logged loss to a `lrlab.tune.TuneTrial` (``trial.report(loss, step)``) and
        stops the run once it is not finite.

        Args:
            trial: the trial this ``trainer.fit`` call runs.
            metric: the name the LightningModule logs its validation loss under (default ``val_loss``).
        """

        def __init__(self, trial: TuneTrial, metric: str = "val_loss") -> None:
            self.trial = trial
            self.metric = metric

        def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
            if trainer.sanity_checking:
                return
            metrics = trainer.callback_metrics
            if self.metric not in metrics:
                raise LrlabError(f"LightningTrialCallback: metric {self.metric!r} is not among the logged "
                                 f"metrics {sorted(metrics)}")
            if _report(self.trial, metrics[self.metric], int(trainer.global_step)):
                trainer.should_stop = True

    return LightningTrialCallback


_CLASSES = LazyClasses(__name__, {
    "TrialScheduler": _make_trial_scheduler,
    "HFTrialCallback": _make_hf_trial_callback,
    "LightningTrialCallback": _make_lightning_trial_callback,
})


def _class(name: str) -> type:
    """The class `name` of `_CLASSES`, built once (importing its framework)."""
    cls = _CLASSES.get(name)
    globals()[name] = cls  # later look-ups (and pickling by name) find it without `__getattr__`
    return cls


def __getattr__(name: str) -> Any:
    """The framework subclasses, built on first access."""
    if name in _CLASSES:
        return _class(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
