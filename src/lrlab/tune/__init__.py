"""`lrlab.tune`: the best schedule and peak LR for a run, for a quarter of a grid's compute.

`Tuner` is the ask/tell loop (any training loop runs its trials); `tune` runs it on a built-in task with the
harness of `lrlab compare` (local processes or Ray, resumable). How it decides: `lrlab.tune.study`; the budget:
`lrlab.tune.plan`; the Hugging Face Trainer and Lightning pieces: `lrlab.tune.frameworks`; docs/tune.md has worked
examples. Importing this package loads numpy only.
"""

from __future__ import annotations

from lrlab.tune.choose import Estimate, Option
from lrlab.tune.config import TuneConfig
from lrlab.tune.frameworks import hf_resume_from, hf_trial_arguments, lightning_trial_arguments, trial_scheduler
from lrlab.tune.plan import Plan, Rungs, default_budget
from lrlab.tune.result import TuneResult
from lrlab.tune.study import Tuner
from lrlab.tune.trial import TuneTrial

__all__ = ["Estimate", "Option", "Plan", "Rungs", "TuneConfig", "TuneResult", "TuneTrial", "Tuner", "default_budget",
           "hf_resume_from", "hf_trial_arguments", "lightning_trial_arguments", "trial_scheduler", "tune"]


def tune(*args: object, **kwargs: object) -> TuneResult:
    """`lrlab.tune.runner.tune` (imported on first call: it needs the harness)."""
    from lrlab.tune.runner import tune as run

    return run(*args, **kwargs)  # type: ignore[arg-type]
