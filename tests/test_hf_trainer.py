"""The Hugging Face Trainer with lrlab's scheduler built in its own create_scheduler hook (`LrlabTrainer`,
`HFSchedulerMixin`, `trainer_scheduler`): a tiny random GPT-2 on local text, a few updates each."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

import lrlab
from lrlab.integrations import HFSchedulerMixin, trainer_scheduler
from lrlab.torch import LRScheduler

transformers = pytest.importorskip("transformers")
torch.set_num_threads(1)
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]

SEQ = 16


class _LocalText(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """Byte-level sequences of local text (lrlab's own spec.py): token = byte, vocabulary 256."""

    def __init__(self, n: int = 24, offset: int = 0) -> None:
        data = Path(lrlab.__file__).with_name("spec.py").read_bytes()
        ids = torch.tensor(list(data[offset * SEQ:(offset + n) * SEQ]), dtype=torch.long)
        self.ids = ids.view(n, SEQ)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def _model() -> Any:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=256, n_positions=SEQ,
                                      bos_token_id=0, eos_token_id=0))


def _args(out: Path, **kw: Any) -> Any:
    from transformers import TrainingArguments

    base = {"output_dir": str(out), "per_device_train_batch_size": 4, "learning_rate": 1e-3, "logging_steps": 1,
            "report_to": [], "use_cpu": True, "save_strategy": "no", "disable_tqdm": True, "seed": 0,
            "data_seed": 0, "max_steps": 8}
    return TrainingArguments(**{**base, **kw})


def _logged_lrs(trainer: Any) -> list[float]:
    return [h["learning_rate"] for h in trainer.state.log_history if "learning_rate" in h]


def test_spec_with_epochs_accumulation_the_trainers_optimizer_and_resume(tmp_path: Path) -> None:
    """lr_scheduler_kwargs={"lrlab": spec} after the arguments' warm-up; the total is the Trainer's own plan from
    num_train_epochs (24 samples / batch 4 / accumulation 2 = 3 updates per epoch, x 4 epochs); the Trainer's
    AdamW with its weight-decay groups is kept (wrapped by Accelerate: the scheduler hooks the optimizer inside)."""
    from accelerate.optimizer import AcceleratedOptimizer

    LrlabTrainer = lrlab.integrations.LrlabTrainer
    spec = "cosine(floor=0.1)"
    args = _args(tmp_path, max_steps=-1, num_train_epochs=4, gradient_accumulation_steps=2, warmup_steps=0.25,
                 weight_decay=0.1, lr_scheduler_kwargs={"lrlab": spec}, save_strategy="steps", save_steps=6)
    trainer = LrlabTrainer(model=_model(), args=args, train_dataset=_LocalText())
    trainer.train()
    sched = trainer.lr_scheduler
    assert isinstance(sched, LRScheduler) and trainer.state.max_steps == 12
    assert isinstance(trainer.optimizer, AcceleratedOptimizer) and sched.hooked is trainer.optimizer.optimizer
    assert sorted(g["weight_decay"] for g in trainer.optimizer.param_groups) == [0.0, 0.1]
    assert str(sched.schedule) == str(lrlab.parse("warmup(3) >> cosine(floor=0.1)", total=12))
    expected = [1e-3 * v for v in lrlab.parse("warmup(3) >> cosine(floor=0.1)", total=12).values(np.arange(12))]
    assert _logged_lrs(trainer) == pytest.approx(expected, rel=1e-12)  # the LR each update used
    assert sched.state_dict() == {"spec": str(sched.schedule), "clock": "steps", "t": 12.0, "updates": 12,
                                  "absolute": False, "base_lrs": [1e-3, 1e-3]}
    # resume from update 6 in a fresh trainer: the scheduler state loads (torch.load(weights_only=True))
    again = LrlabTrainer(model=_model(), args=args, train_dataset=_LocalText())
    again.train(resume_from_checkpoint=str(tmp_path / "checkpoint-6"))
    assert _logged_lrs(again)[-6:] == pytest.approx(expected[6:], rel=1e-12)


@pytest.mark.parametrize("kind, kwargs", [
    ("cosine_with_min_lr", {"min_lr": 1e-4}),
    ("warmup_stable_decay", {"num_decay_steps": 3}),
    ("inverse_sqrt", {}),
], ids=["cosine_with_min_lr", "warmup_stable_decay", "inverse_sqrt"])
def test_hf_scheduler_types_are_the_trainers_own_lrs(kind: str, kwargs: dict[str, Any], tmp_path: Path) -> None:
    from transformers import Trainer

    args = _args(tmp_path, lr_scheduler_type=kind, lr_scheduler_kwargs=kwargs, warmup_steps=2)
    theirs = Trainer(model=_model(), args=args, train_dataset=_LocalText())
    theirs.train()
    ours = lrlab.integrations.LrlabTrainer(model=_model(), args=args, train_dataset=_LocalText())
    ours.train()
    assert isinstance(ours.lr_scheduler, LRScheduler)
    assert _logged_lrs(ours) == pytest.approx(_logged_lrs(theirs), rel=1e-12, abs=1e-18)


def test_reduce_lr_on_plateau_gets_a_plateau_controller_fed_by_each_evaluation(tmp_path: Path) -> None:
    # an improvement must be 90% (threshold, relative): none is, so each evaluation after the first halves the LR
    args = _args(tmp_path, lr_scheduler_type="reduce_lr_on_plateau", eval_strategy="steps", eval_steps=2,
                 lr_scheduler_kwargs={"patience": 0, "factor": 0.5, "threshold": 0.9})
    trainer = lrlab.integrations.LrlabTrainer(model=_model(), args=args, train_dataset=_LocalText(),
                                              eval_dataset=_LocalText(4, offset=30))
    trainer.train()
    state = trainer.lr_scheduler.state_dict()["plateau"]["state"]
    assert state["reductions"] == 3
    assert _logged_lrs(trainer)[:8] == [1e-3] * 4 + [5e-4] * 2 + [2.5e-4] * 2  # evaluations after 2, 4, 6, 8
    with pytest.raises(lrlab.LrlabError, match="ReduceLROnPlateau: mode, factor"):
        trainer_scheduler(_Stub(_args(tmp_path, lr_scheduler_type="reduce_lr_on_plateau", eval_strategy="steps",
                                      eval_steps=2, lr_scheduler_kwargs={"patiense": 1})), 8)


class _Stub:
    """What `trainer_scheduler` reads of a trainer."""

    def __init__(self, args: Any) -> None:
        self.args = args
        self.optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        self.callbacks: list[Any] = []

    def add_callback(self, cb: Any) -> None:
        self.callbacks.append(cb)


def test_spec_errors_name_the_argument(tmp_path: Path) -> None:
    with pytest.raises(lrlab.LrlabError, match="warm-up is given twice"):
        twice = {"lrlab": "warmup(5) >> cosine()"}
        trainer_scheduler(_Stub(_args(tmp_path, warmup_steps=2, lr_scheduler_kwargs=twice)), 8)
    with pytest.raises(lrlab.LrlabError, match=r"holds 'lrlab' and also num_cycles"):
        trainer_scheduler(_Stub(_args(tmp_path, lr_scheduler_kwargs={"lrlab": "cosine()", "num_cycles": 2})), 8)
    with pytest.raises(lrlab.LrlabError, match="must be lrlab spec text"):
        trainer_scheduler(_Stub(_args(tmp_path, lr_scheduler_kwargs={"lrlab": 3})), 8)
    s = trainer_scheduler(_Stub(_args(tmp_path, lr_scheduler_kwargs={"lrlab": "wsd(decay=0.25)"})), 8)
    assert str(s.schedule) == str(lrlab.parse("wsd(decay=0.25)", total=8))


def test_fsdp_refuses_optimizers_but_not_the_create_scheduler_hook(tmp_path: Path) -> None:
    """Under FSDP the Trainer refuses optimizers=(opt, sched) (it must build the optimizer after wrapping the
    model); lrlab's scheduler comes through create_scheduler instead. FSDP needs GPUs: the Trainer is told it
    runs FSDP (is_fsdp_enabled), which on a CPU takes its FSDP path for creating the optimizer after the model is
    prepared (delayed creation), then the scheduler."""
    from transformers import Trainer

    class FSDPTrainer(Trainer):
        def create_accelerator_and_postprocess(self) -> None:
            super().create_accelerator_and_postprocess()
            self.is_fsdp_enabled = True
            self.accelerator.state.fsdp_plugin = SimpleNamespace(fsdp_version=1, activation_checkpointing=False)

    class LrlabFSDPTrainer(HFSchedulerMixin, FSDPTrainer):
        pass

    args = _args(tmp_path, lr_scheduler_kwargs={"lrlab": "cosine()"})
    model = _model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    with pytest.raises(RuntimeError, match="Passing `optimizers` is not allowed if PyTorch FSDP is enabled"):
        FSDPTrainer(model=model, args=args, train_dataset=_LocalText(), optimizers=(opt, LRScheduler(opt, "cosine(8)")))
    trainer = LrlabFSDPTrainer(model=_model(), args=args, train_dataset=_LocalText())
    try:
        trainer.train()
    finally:  # AcceleratorState is one shared state: later trainers must not see the stand-in plugin
        trainer.accelerator.state.__dict__.pop("fsdp_plugin", None)
    assert trainer.is_fsdp_enabled and isinstance(trainer.lr_scheduler, LRScheduler)
    assert _logged_lrs(trainer) == pytest.approx([1e-3 * v for v in lrlab.parse("cosine(8)").values(np.arange(8))],
                                                 rel=1e-12)
    assert math.isclose(trainer.lr_scheduler.t, 8.0)
