"""Speaks Optuna: the trials of a `Tuner` recorded into an ``optuna.Study``, so that Optuna's dashboard, plots and
storage work on them. Optuna is imported here only (``pip install 'lrlab[tune]'``).

Each told trial becomes a finished ``FrozenTrial``: ``params`` ``lr`` (log-uniform over the grid's span) and
``schedule`` (categorical over every spec the tuner can run), ``value`` the loss at the trial's last update,
``intermediate_values`` the losses reported along the way, and the trial's piece of the run (kind, start, stop,
seed, checkpoints) in ``user_attrs``. A diverged trial is recorded as ``FAIL``. When the tuner is finished, the
recommendation goes to the study's ``user_attrs`` (``lrlab_schedule``, ``lrlab_lr``, ``lrlab_loss``).
"""

from __future__ import annotations

import math
from typing import Any

from lrlab.errors import LrlabError
from lrlab.tune.study import Tuner


def distributions(tuner: Tuner) -> dict[str, Any]:
    """The Optuna distributions of a tuner's ``params`` (the same for every one of its trials)."""
    import optuna

    c = tuner.config
    assert c.lr is not None
    span = (tuner.plan.peaks - 1) / 2 + c.lr_extend
    low, high = c.lr * c.factor ** (-span - 0.5), c.lr * c.factor ** (span + 0.5)
    return {"lr": optuna.distributions.FloatDistribution(low, high, log=True),
            "schedule": optuna.distributions.CategoricalDistribution(tuner.schedule_choices())}


def to_study(tuner: Tuner, study: Any = None, *, study_name: str | None = None) -> Any:
    """Add the told trials of ``tuner`` that ``study`` does not hold yet (by their ``lrlab_name`` attribute) to
    ``study`` (None: a new in-memory study minimising the loss) and return it."""
    try:
        import optuna
    except ModuleNotFoundError:
        raise LrlabError("recording into Optuna needs optuna: pip install 'lrlab[tune]'") from None
    if study is None:
        study = optuna.create_study(direction="minimize", study_name=study_name)
    have = {t.user_attrs.get("lrlab_name") for t in study.get_trials(deepcopy=False)}
    dists = distributions(tuner)
    told = tuner.losses_told()
    for trial in tuner.trials:
        if trial.name not in told or trial.name in have:
            continue
        losses = told[trial.name]
        end = losses.get(trial.stop, math.inf)
        ok = all(math.isfinite(v) for v in losses.values()) and math.isfinite(end)
        frozen = optuna.trial.create_trial(
            state=optuna.trial.TrialState.COMPLETE if ok else optuna.trial.TrialState.FAIL,
            value=end if ok else None,
            params={"lr": trial.lr, "schedule": trial.schedule}, distributions=dists,
            intermediate_values={s: v for s, v in losses.items() if math.isfinite(v)},
            user_attrs={"lrlab_name": trial.name, "lrlab_number": trial.number, "kind": trial.kind,
                        "seed": trial.seed, "start": trial.start, "stop": trial.stop, "horizon": trial.horizon,
                        "resume_from": trial.resume_from, "checkpoint": trial.checkpoint})
        study.add_trial(frozen)
    if tuner.finished:
        r = tuner.result()
        study.set_user_attr("lrlab_schedule", r.schedule)
        study.set_user_attr("lrlab_lr", r.lr)
        study.set_user_attr("lrlab_loss", r.measured_mean if r.measured else r.estimate.loss)
    return study
