"""`lrlab.tune.Tuner`'s trials run by a Hugging Face Trainer and by Lightning (`lrlab.tune.frameworks`): the worked
examples of docs/tune.md run here as written, on a 120-update horizon; every update gets ``trial.lr_at(t)``, a
trunk trained in two pieces through a checkpoint equals the straight run bit for bit, and a branch's scheduler
takes its trunk's state only where their LRs agree."""

from __future__ import annotations

import dataclasses
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import lrlab
from lrlab.errors import LrlabError
from lrlab.tune import TuneConfig, Tuner, TuneTrial

torch = pytest.importorskip("torch")

DOC = Path(__file__).resolve().parents[1] / "docs" / "tune.md"
#: the docs' config, and the cheapest one tests/test_tune.py runs a real loop with (s1: the fastest law to fit)
DOC_CONFIG = "TuneConfig(horizon=1000, lr=3e-3)"
SMALL_CONFIG = "TuneConfig(horizon=120, lr=0.02, budget=700, law='s1')"
#: Lightning's notice on resuming a loader without a saved position: the trial's loader starts at trial.start
RESUME_NOTICE = "ignore:You're resuming from a checkpoint that ended before the epoch ended"


def doc_block(marker: str) -> str:
    """The Python block of docs/tune.md that contains ``marker``, with the small config in place of the docs'."""
    blocks = [b for b in re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S) if marker in b]
    assert len(blocks) == 1 and blocks[0].count(DOC_CONFIG) == 1
    return blocks[0].replace(DOC_CONFIG, SMALL_CONFIG)


def trunk_in_two(tuner: Tuner) -> tuple[TuneTrial, TuneTrial]:
    """A trunk trial that continues another's checkpoint, and the same run from scratch in one piece."""
    trunk2 = next(t for t in tuner.trials if t.kind == "trunk" and t.start > 0)
    return trunk2, dataclasses.replace(trunk2, name="straight", start=0, resume_from=None, checkpoint=None)


def assert_lrs(tuner: Tuner, used: dict[str, dict[int, float]]) -> None:
    """Every update of every trial trained at ``trial.lr_at(t)`` (exactly: same float64 product)."""
    assert sorted(used) == sorted(t.name for t in tuner.trials)
    for t in tuner.trials:
        assert used[t.name] == {s: t.lr_at(s) for s in range(t.start, t.stop)}, t.name


def assert_finished(tuner: Tuner) -> None:
    r = tuner.result()
    assert tuner.finished and r.spent <= 700 and r.lr > 0 and math.isfinite(r.estimate.loss)
    assert lrlab.parse(r.schedule, total=120).values([0, 119]).shape == (2,)
    for t in tuner.trials:  # each evaluation in the trial's span reported, the last update's included
        expected = [s for s in range(t.start + 1, t.stop + 1) if s % t.eval_every == 0 or s == t.stop]
        assert sorted(tuner.losses_told()[t.name]) == expected, t.name


# ------------------------------------------------------------------------------------------- the scheduler


def test_a_branch_scheduler_continues_its_trunks_state_where_the_lrs_agree() -> None:
    from lrlab.torch import LRScheduler
    from lrlab.tune.frameworks import trial_scheduler

    tuner = Tuner(TuneConfig(horizon=120, lr=0.02, budget=700))
    trunk = tuner.ask()
    assert trunk is not None
    tuner.tell(trunk, {trunk.stop: 1.0})
    cool = tuner.ask()
    assert cool is not None and cool.resume_from == trunk.name and cool.start == trunk.stop

    def run(trial: TuneTrial, state: dict[str, Any] | None) -> tuple[list[float], dict[str, Any]]:
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=trial.lr)
        sched = trial_scheduler(opt, trial)
        if state is not None:
            sched.load_state_dict(state)
        lrs = []
        for _ in range(trial.start, trial.stop):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return lrs, sched.state_dict()

    lrs, state = run(trunk, None)
    assert lrs == [trunk.lr_at(t) for t in range(trunk.stop)] and state["updates"] == trunk.stop
    branch, _ = run(cool, state)
    assert branch == [cool.lr_at(t) for t in range(cool.start, cool.stop)]
    # a plain LRScheduler refuses the trunk's state (another schedule): the reason `trial_scheduler` exists
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cool.lr)
    with pytest.raises(LrlabError, match="different schedule"):
        LRScheduler(opt, cool.schedule, total=cool.horizon).load_state_dict(state)
    # a state whose LRs differ before the resume point is refused, naming both schedules
    _, cooled = run(cool, state)
    late = dataclasses.replace(cool, name="late", schedule=tuner.rungs.final, start=cool.stop, stop=cool.horizon)
    with pytest.raises(LrlabError, match=r"gives its first 60 updates other LRs"):
        run(late, cooled)
    with pytest.raises(LrlabError, match=r"build the optimizer with lr=trial\.lr"):
        trial_scheduler(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1), trunk)


def test_the_trainer_arguments_of_a_trial() -> None:
    from lrlab.tune.frameworks import _report, hf_resume_from, hf_trial_arguments, lightning_trial_arguments

    trunk = TuneTrial(number=0, name="trunk", kind="trunk", schedule="constant()", lr=0.01, seed=3, horizon=1010,
                      start=0, stop=400, checkpoint="trunk", eval_every=25)
    last = dataclasses.replace(trunk, name="last", kind="final", start=400, stop=1010, resume_from="trunk",
                               checkpoint=None)
    assert hf_trial_arguments(trunk, "ck") == {
        "output_dir": str(Path("ck") / "trunk"), "max_steps": 400, "learning_rate": 0.01, "seed": 3, "data_seed": 3,
        "eval_strategy": "steps", "eval_steps": 25, "save_strategy": "steps", "save_steps": 400,
        "save_only_model": False}
    assert hf_trial_arguments(last, "ck")["save_strategy"] == "no" and hf_resume_from(trunk, "ck") is None
    assert hf_resume_from(last, "ck") == str(Path("ck") / "trunk" / "checkpoint-400")
    # 1010 is no multiple of 25: Lightning validates every 5 updates, and the trial keeps 425, 450, ... and 1010
    assert lightning_trial_arguments(last) == {"max_steps": 1010, "val_check_interval": 5,
                                               "check_val_every_n_epoch": None, "num_sanity_val_steps": 0}
    for step in range(405, 1011, 5):
        _report(last, 1.0, step)
    assert sorted(last.reports) == [*range(425, 1001, 25), 1010]
    assert _report(last, math.nan, 1005) and last.reports[1010] == 1.0  # not finite: stop; not an evaluation step
    with pytest.raises(LrlabError, match=r"trial must be a lrlab\.tune\.TuneTrial"):
        lrlab.tune.frameworks.trial_scheduler(None, "trunk")  # type: ignore[arg-type]


def test_importing_the_adapters_loads_no_framework() -> None:
    code = ("import sys, lrlab.tune.frameworks; print([m for m in ('torch', 'transformers', 'lightning') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---------------------------------------------------------------------------------------------- Hugging Face


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_the_hf_trainer_example_runs_a_tune(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    transformers = pytest.importorskip("transformers")
    from safetensors.torch import load_file

    used: dict[str, dict[int, float]] = {}

    class Recording(transformers.Trainer):  # type: ignore[misc]
        """The docs' Trainer, recording the LR each update trains with."""

        def __init__(self, *args: Any, callbacks: list[Any], **kwargs: Any) -> None:
            super().__init__(*args, callbacks=callbacks, **kwargs)
            self.record = used.setdefault(callbacks[0].trial.name, {})

        def training_step(self, *args: Any, **kwargs: Any) -> Any:
            self.record[self.state.global_step] = self.optimizer.param_groups[0]["lr"]
            return super().training_step(*args, **kwargs)

    # transformers swaps its lazy module in sys.modules on first use: patch the one `from transformers import` reads
    monkeypatch.setattr(sys.modules["transformers"], "Trainer", Recording)
    monkeypatch.chdir(tmp_path)
    torch.set_num_threads(1)
    ns: dict[str, Any] = {}
    exec(doc_block("from transformers import"), ns)
    tuner = ns["tuner"]
    assert_finished(tuner)
    assert_lrs(tuner, {k: v for k, v in used.items()})
    # the trunk trained in two pieces through a checkpoint equals the straight run, bit for bit
    trunk2, straight = trunk_in_two(tuner)
    torch.manual_seed(straight.seed)
    model = ns["Regression"]()
    opt = torch.optim.AdamW(model.parameters(), lr=straight.lr)
    args = transformers.TrainingArguments(**ns["hf_trial_arguments"](straight, "ckpt"), per_device_train_batch_size=64,
                                          per_device_eval_batch_size=512, report_to=[])
    trainer = Recording(model=model, args=args, train_dataset=ns["train"], eval_dataset=ns["val"],
                        optimizers=(opt, ns["trial_scheduler"](opt, straight)),
                        callbacks=[ns["HFTrialCallback"](straight)])
    trainer.train()
    pieces = load_file(tmp_path / "ckpt" / trunk2.name / f"checkpoint-{trunk2.stop}" / "model.safetensors")
    assert sorted(pieces) == sorted(model.state_dict())
    for k, v in model.state_dict().items():
        assert torch.equal(v, pieces[k]), k
    assert straight.reports[trunk2.stop] == tuner.losses_told()[trunk2.name][trunk2.stop]


# ------------------------------------------------------------------------------------------------ Lightning


@pytest.mark.slow
@pytest.mark.filterwarnings(RESUME_NOTICE)
def test_the_lightning_example_runs_a_tune(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pl = pytest.importorskip("lightning.pytorch")

    used: dict[str, dict[int, float]] = {}

    class RecordLR(pl.Callback):  # type: ignore[misc]
        def __init__(self, record: dict[int, float]) -> None:
            self.record = record

        def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, batch_idx: int) -> None:
            self.record[trainer.global_step] = trainer.optimizers[0].param_groups[0]["lr"]

    class Recording(pl.Trainer):  # type: ignore[misc]
        """The docs' Trainer, recording the LR each update trains with, quiet."""

        def __init__(self, *args: Any, callbacks: list[Any], **kwargs: Any) -> None:
            record = used.setdefault(callbacks[0].trial.name, {})
            super().__init__(*args, callbacks=[*callbacks, RecordLR(record)], enable_progress_bar=False,
                             enable_model_summary=False, accelerator="cpu", devices=1, **kwargs)

    monkeypatch.setattr(pl, "Trainer", Recording)
    monkeypatch.chdir(tmp_path)
    torch.set_num_threads(1)
    ns: dict[str, Any] = {}
    exec(doc_block("import lightning.pytorch as pl"), ns)
    tuner = ns["tuner"]
    assert_finished(tuner)
    assert_lrs(tuner, used)
    # the trunk in two pieces through a checkpoint = the straight run = the plain torch loop, bit for bit
    trunk2, straight = trunk_in_two(tuner)
    torch.manual_seed(straight.seed)
    model = ns["Regression"](straight)
    trainer = Recording(**ns["lightning_trial_arguments"](straight),
                        callbacks=[ns["LightningTrialCallback"](straight)], logger=False, enable_checkpointing=False)
    trainer.fit(model, torch.utils.data.DataLoader(ns["Updates"](straight), batch_size=None), ns["val"])
    pieces = torch.load(tmp_path / "ckpt" / f"{trunk2.name}.ckpt", weights_only=False)["state_dict"]
    torch.manual_seed(straight.seed)
    plain = torch.nn.Sequential(torch.nn.Linear(8, 64), torch.nn.GELU(), torch.nn.Linear(64, 1))
    opt = torch.optim.AdamW(plain.parameters(), lr=straight.lr)
    for t in range(straight.stop):
        for group in opt.param_groups:
            group["lr"] = straight.lr_at(t)
        x, y = ns["batch"](t, straight.seed)
        loss = torch.nn.functional.mse_loss(plain(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    for k, v in plain.state_dict().items():
        assert torch.equal(model.state_dict()[f"net.{k}"], pieces[f"net.{k}"]), k
        assert torch.equal(v, pieces[f"net.{k}"]), k
    assert straight.reports[trunk2.stop] == tuner.losses_told()[trunk2.name][trunk2.stop]
    assert lrlab.tune.frameworks.LightningTrialCallback.__module__ == "lrlab.tune.frameworks"
