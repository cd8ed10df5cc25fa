"""Monitor: plain calls, the files it writes (JSONL, CSV, TensorBoard) and reads back, resume, live diagnoses,
the applied LR of schedule-free optimizers, the Hugging Face and Lightning callbacks with the real libraries,
real short runs of the built-in tiny model with bad LRs, and `lrlab diagnose`."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from lrlab.diagnose import Finding
from lrlab.errors import LrlabError
from lrlab.monitor import EVALS_CSV, FINDINGS_FILE, JSONL_FILE, STEPS_CSV, Monitor, load_curves


class FakeClock:
    """A clock that advances by `dt` seconds each time it is read."""

    def __init__(self, dt: float = 0.5) -> None:
        self.t = 100.0
        self.dt = dt

    def __call__(self) -> float:
        self.t += self.dt
        return self.t


def records(path: Path) -> list[dict[str, Any]]:
    # strict JSON: a NaN literal would make parse_constant fail the test
    return [json.loads(line, parse_constant=pytest.fail) for line in path.read_text().splitlines()]


def feed(m: Monitor, n: int = 10, *, start: int = 0, scale: float = 1.0) -> None:
    for k in range(start, start + n):
        m.on_step(k, lrs=[1e-3 * (k + 1), 1e-4 * (k + 1)], loss=scale * (3.0 - 0.1 * k), grad_norm=1.0 + k,
                  tokens=512 * (k + 1))


# ------------------------------------------------------------------------------------------------ plain calls


def test_records_every_group_loss_grad_norm_and_throughput(tmp_path: Path) -> None:
    m = Monitor(tmp_path, csv=True, clock=FakeClock(0.5), total_steps=10)
    feed(m, 5)
    m.on_eval(5, val_loss=2.5, accuracy=0.75)
    # written and flushed as they come: readable while the Monitor is open
    recs = records(tmp_path / JSONL_FILE)
    assert [r["type"] for r in recs] == ["meta", "step", "step", "step", "step", "step", "eval"]
    assert recs[0]["format"] == "lrlab.monitor/1" and recs[0]["total_steps"] == 10
    s = recs[3]
    assert s["step"] == 2 and s["lr"] == [1e-3 * 3, 1e-4 * 3] and s["loss"] == pytest.approx(2.8, rel=1e-12)
    assert s["grad_norm"] == 3.0 and s["tokens"] == 1536
    assert s["updates_per_s"] == pytest.approx(2.0, rel=1e-12)  # one update per 0.5 s
    assert s["tokens_per_s"] == pytest.approx(1024.0, rel=1e-12)  # 512 tokens per 0.5 s
    assert recs[1]["updates_per_s"] is None  # no previous update to measure from
    assert recs[6] == {"type": "eval", "step": 5, "val_loss": 2.5, "metrics": {"accuracy": 0.75},
                       "time": recs[6]["time"]}
    lines = (tmp_path / STEPS_CSV).read_text().splitlines()
    assert lines[0] == "step,loss,grad_norm,tokens,time,updates_per_s,tokens_per_s,lr_0,lr_1"
    assert lines[3].split(",")[0] == "2" and float(lines[3].split(",")[-2]) == 1e-3 * 3
    assert (tmp_path / EVALS_CSV).read_text().splitlines()[0] == "step,val_loss,time,accuracy"
    c = m.curves()
    assert c.step == (0, 1, 2, 3, 4)
    assert c.lr[4] == (1e-3 * 5, 1e-4 * 5)
    assert c.loss == pytest.approx((3.0, 2.9, 2.8, 2.7, 2.6), rel=1e-12)
    assert c.eval_step == (5,) and c.val_loss == (2.5,) and c.eval_metrics == {"accuracy": (0.75,)}
    assert c.total_steps == 10
    m.close()


def test_in_memory_only() -> None:
    m = Monitor()
    feed(m, 3)
    assert m.curves().step == (0, 1, 2)
    assert m.close() == []


def test_one_lr_as_a_number_and_tensors() -> None:
    import torch
    m = Monitor()
    m.on_step(0, lrs=torch.tensor(0.01, dtype=torch.float64), loss=torch.tensor(2.0), grad_norm=torch.tensor(1.5))
    m.on_step(1, lrs=0.02, loss=1.9)
    c = m.curves()
    assert c.lr == ((0.01,), (0.02,)) and c.loss == (2.0, 1.9)


def test_nan_loss_and_grad_norm_are_recorded_as_strings(tmp_path: Path) -> None:
    m = Monitor(tmp_path, csv=True)
    m.on_step(0, lrs=[1e-3], loss=float("nan"), grad_norm=float("inf"))
    m.on_eval(1, val_loss=float("inf"))
    recs = {r["type"]: r for r in records(tmp_path / JSONL_FILE)}
    assert recs["step"]["loss"] == "nan" and recs["step"]["grad_norm"] == "inf"
    assert recs["eval"]["val_loss"] == "inf"
    assert recs["finding"]["kind"] == "divergence"
    m.close()
    c = load_curves(tmp_path)
    assert math.isnan(c.loss[0]) and c.grad_norm[0] == math.inf and c.val_loss[0] == math.inf
    c2 = load_curves(tmp_path / STEPS_CSV)
    assert math.isnan(c2.loss[0]) and c2.val_loss[0] == math.inf


@pytest.mark.parametrize(("call", "needle"), [
    (lambda m: m.on_step(3, lrs=[1e-3, float("nan")], loss=1.0), "lrs[1] (step 3) must be a finite number, got nan"),
    (lambda m: m.on_step(3, lrs=[-1e-3], loss=1.0), "lrs[0] (step 3) must be >= 0, got -0.001"),
    (lambda m: m.on_step(3, lrs=[], loss=1.0), "lrs must hold the LR of at least one parameter group"),
    (lambda m: m.on_step(-1, lrs=[1e-3], loss=1.0), "step must be a whole number >= 0, got -1"),
    (lambda m: m.on_step(1.5, lrs=[1e-3], loss=1.0), "step must be a whole number >= 0, got 1.5"),
    (lambda m: m.on_step(3, lrs=[1e-3], loss="x"), "loss (step 3) must be a number, got 'x'"),
    (lambda m: m.on_step(3, lrs=[1e-3], loss=1.0, tokens=float("nan")),
     "tokens (step 3) must be a finite number, got nan"),
    (lambda m: m.on_eval(4, val_loss=1.0, accuracy=float("nan")),
     "metrics['accuracy'] (evaluation at step 4) must be a finite number, got nan"),
], ids=["nan-lr", "negative-lr", "no-lr", "negative-step", "float-step", "loss-type", "nan-tokens", "nan-metric"])
def test_bad_input_raises_naming_the_field(call: Any, needle: str) -> None:
    m = Monitor()
    with pytest.raises(LrlabError) as e:
        call(m)
    assert needle in str(e.value)


def test_constructor_validation(tmp_path: Path) -> None:
    with pytest.raises(LrlabError, match="total_steps must be a whole number >= 1, got 0"):
        Monitor(total_steps=0)
    with pytest.raises(LrlabError, match="diagnose_every must be a whole number >= 1"):
        Monitor(diagnose_every=0)
    with pytest.raises(LrlabError, match="tensorboard=True needs out_dir"):
        Monitor(tensorboard=True)


def test_closed_monitor_refuses_records(tmp_path: Path) -> None:
    m = Monitor(tmp_path)
    feed(m, 2)
    m.close()
    with pytest.raises(LrlabError, match="closed"):
        feed(m, 1, start=2)


def test_csv_needs_a_fixed_set_of_columns(tmp_path: Path) -> None:
    m = Monitor(tmp_path, csv=True)
    m.on_step(0, lrs=[1e-3, 1e-4], loss=1.0)
    with pytest.raises(LrlabError, match="CSV needs the same LR groups"):
        m.on_step(1, lrs=[1e-3], loss=1.0)


# ------------------------------------------------------------------------------------------------ resume, reading


def test_step_records_are_flushed_every_flush_every_seconds(tmp_path: Path) -> None:
    m = Monitor(tmp_path, clock=FakeClock(0.25), flush_every=1.0, diagnose_live=False, tensorboard=False)
    m.on_step(0, lrs=[1e-3], loss=3.0)  # the first update is flushed (nothing was written before)

    def steps_on_disk() -> list[int]:
        return [r["step"] for r in records(tmp_path / JSONL_FILE) if r["type"] == "step"]

    assert steps_on_disk() == [0]
    for k in range(1, 4):  # 0.25 s apart: still inside the 1 s window
        m.on_step(k, lrs=[1e-3], loss=3.0)
    assert steps_on_disk() == [0]
    m.on_step(4, lrs=[1e-3], loss=3.0)  # 1 s after the last flush
    assert steps_on_disk() == [0, 1, 2, 3, 4]
    m.on_step(5, lrs=[1e-3], loss=3.0)
    m.on_eval(6, val_loss=2.0)  # an evaluation flushes everything at once
    assert steps_on_disk() == [0, 1, 2, 3, 4, 5]
    m.on_step(6, lrs=[1e-3], loss=float("nan"))  # so does a divergence
    assert steps_on_disk()[-1] == 6
    m.close()
    every = Monitor(tmp_path / "every", clock=FakeClock(0.25), flush_every=0, diagnose_live=False)
    every.on_step(0, lrs=[1e-3], loss=3.0)
    every.on_step(1, lrs=[1e-3], loss=3.0)
    assert [r["step"] for r in records(tmp_path / "every" / JSONL_FILE) if r["type"] == "step"] == [0, 1]
    every.close()
    with pytest.raises(LrlabError, match="flush_every must be >= 0, got -1"):
        Monitor(tmp_path / "x", flush_every=-1)


def test_a_resumed_step_replaces_the_later_records(tmp_path: Path) -> None:
    m = Monitor(tmp_path, csv=True)
    feed(m, 10)
    m.on_eval(5, val_loss=2.6)
    m.on_eval(10, val_loss=2.1)
    # resumed from a checkpoint at 6 updates: updates 6.. run again (with other numbers here)
    feed(m, 4, start=6, scale=2.0)
    m.flush()  # step records reach the files at most every flush_every seconds; evaluations at once
    expected_loss = tuple([3.0 - 0.1 * k for k in range(6)] + [2.0 * (3.0 - 0.1 * k) for k in range(6, 10)])
    for c in (m.curves(), load_curves(tmp_path), load_curves(tmp_path / STEPS_CSV)):
        assert c.step == tuple(range(10))
        assert c.loss == pytest.approx(expected_loss, rel=1e-12)
    for c in (m.curves(), load_curves(tmp_path)):
        assert c.eval_step == (5,)  # the evaluation after 10 updates belonged to the replaced run
    m.close()


def test_reopening_a_folder_continues_its_curves(tmp_path: Path) -> None:
    m = Monitor(tmp_path, total_steps=20)
    feed(m, 5)
    m.close()
    m2 = Monitor(tmp_path)
    assert m2.curves().step == (0, 1, 2, 3, 4) and m2.curves().total_steps == 20
    feed(m2, 3, start=5)
    m2.close()
    assert load_curves(tmp_path).step == tuple(range(8))
    m3 = Monitor(tmp_path, total_steps=30)  # a new plan wins, also when read back
    assert m3.curves().total_steps == 30
    m3.close()
    assert load_curves(tmp_path).total_steps == 30


def test_a_last_line_cut_by_a_crash_is_ignored_and_dropped(tmp_path: Path) -> None:
    m = Monitor(tmp_path)
    feed(m, 3)
    m.close()
    path = tmp_path / JSONL_FILE
    path.write_text(path.read_text() + '{"type":"step","step":3,"lr":[0.00')
    assert load_curves(tmp_path).step == (0, 1, 2)
    m2 = Monitor(tmp_path)
    feed(m2, 1, start=3)
    m2.close()
    assert load_curves(tmp_path).step == (0, 1, 2, 3)


@pytest.mark.parametrize(("text", "needle"), [
    ('{"type":"step","step":0,"lr":[0.1],"loss":1}\nnot json\n{"type":"meta"}\n', "2: not a JSON line"),
    ('{"type":"step","step":0,"lr":["nan"],"loss":1}\n', "lr[0] must be a finite number"),
    ('{"type":"step","step":-2,"lr":[0.1],"loss":1}\n', "step must be a whole number >= 0, got -2"),
    ('{"type":"weird"}\n', "unknown record type 'weird'"),
    ('{"type":"meta"}\n', "holds no step or eval records"),
], ids=["json", "nan-lr", "step", "type", "empty"])
def test_bad_logs_raise(tmp_path: Path, text: str, needle: str) -> None:
    p = tmp_path / "log.jsonl"
    p.write_text(text)
    with pytest.raises(LrlabError) as e:
        load_curves(p)
    assert needle in str(e.value)


def test_load_curves_errors(tmp_path: Path) -> None:
    with pytest.raises(LrlabError, match="does not exist"):
        load_curves(tmp_path / "nope.jsonl")
    with pytest.raises(LrlabError, match=r"no monitor\.jsonl or steps\.csv"):
        load_curves(tmp_path)
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(LrlabError, match=r"expected a \.jsonl or \.csv"):
        load_curves(tmp_path / "x.txt")


def test_tensorboard_scalars_by_default(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    m = Monitor(tmp_path, clock=FakeClock(), tensorboard_every=1)  # tensorboard=None: on, since it is installed
    assert m.use_tb
    feed(m, 4)
    m.on_eval(4, val_loss=2.5, accuracy=0.5)
    m.close()
    assert [p.name.startswith("events.out.tfevents.") for p in (tmp_path / "tb").iterdir()] == [True]
    ea = EventAccumulator(str(tmp_path / "tb"))
    ea.Reload()
    assert sorted(ea.Tags()["scalars"]) == ["eval/accuracy", "grad_norm", "loss/train", "loss/val", "lr/group0",
                                            "lr/group1", "throughput/tokens_per_s", "throughput/updates_per_s"]
    assert [e.value for e in ea.Scalars("grad_norm")] == [1.0, 2.0, 3.0, 4.0]
    assert [e.step for e in ea.Scalars("lr/group1")] == [0, 1, 2, 3]
    assert [e.value for e in ea.Scalars("lr/group1")] == pytest.approx([1e-4 * (k + 1) for k in range(4)], rel=1e-6)
    assert [e.value for e in ea.Scalars("loss/train")] == pytest.approx([3.0, 2.9, 2.8, 2.7], rel=1e-6)
    assert [(e.step, e.value) for e in ea.Scalars("loss/val")] == [(4, 2.5)]
    assert [e.value for e in ea.Scalars("eval/accuracy")] == [0.5]
    assert [e.value for e in ea.Scalars("throughput/tokens_per_s")] == pytest.approx([1024.0] * 3, rel=1e-6)


def test_tensorboard_writes_every_tenth_update_and_non_finite_losses_at_once(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    m = Monitor(tmp_path, clock=FakeClock())
    feed(m, 25)
    m.on_step(25, lrs=[1e-3, 1e-4], loss=float("nan"))
    m.on_step(26, lrs=[1e-3, 1e-4], loss=1.0)
    m.close()
    ea = EventAccumulator(str(tmp_path / "tb"))
    ea.Reload()
    assert [e.step for e in ea.Scalars("lr/group0")] == [0, 10, 20, 25]
    assert [e.step for e in ea.Scalars("loss/train")] == [0, 10, 20, 25]
    assert math.isnan(ea.Scalars("loss/train")[-1].value)
    assert len(records(tmp_path / JSONL_FILE)) >= 27  # the JSONL still has every update
    with pytest.raises(LrlabError, match="tensorboard_every must be a whole number >= 1, got 0"):
        Monitor(tmp_path / "x", tensorboard_every=0)


def test_tensorboard_off_and_forced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    m = Monitor(tmp_path / "off", tensorboard=False)
    feed(m, 2)
    m.close()
    assert not m.use_tb and not (tmp_path / "off" / "tb").exists()
    # the public writer: torch's SummaryWriter (tensorboardX's without torch)
    from torch.utils.tensorboard import SummaryWriter

    from lrlab.monitor_files import public_writer

    assert public_writer()[0] is SummaryWriter
    # tensorboard missing: auto turns it off quietly, True says what is missing
    for name in ("torch.utils.tensorboard", "tensorboardX", "tensorboard.summary.writer.event_file_writer"):
        monkeypatch.setitem(__import__("sys").modules, name, None)
    auto = Monitor(tmp_path / "auto")
    feed(auto, 2)
    auto.close()
    assert not auto.use_tb and not (tmp_path / "auto" / "tb").exists()
    with pytest.raises(LrlabError, match="tensorboard=True needs the tensorboard package installed"):
        Monitor(tmp_path / "forced", tensorboard=True)
    with pytest.raises(LrlabError, match="tensorboard must be None"):
        Monitor(tmp_path, tensorboard="yes")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------ live diagnoses


def test_live_divergence_on_the_first_nan(tmp_path: Path) -> None:
    seen: list[Finding] = []
    m = Monitor(tmp_path, on_finding=seen.append, diagnose_every=1000)
    for k in range(30):
        m.on_step(k, lrs=[1e-3], loss=1.0 + 3.0 * math.exp(-k / 5))
    assert not m.diverged and m.findings == []
    m.on_step(30, lrs=[1e-3], loss=float("nan"))
    assert m.diverged
    assert [(f.kind, f.step) for f in m.findings] == [("divergence", 30)]
    assert seen == m.findings
    m.on_step(31, lrs=[1e-3], loss=float("nan"))
    assert len(seen) == 1  # each kind is reported once
    finding_lines = [r for r in records(tmp_path / JSONL_FILE) if r["type"] == "finding"]
    assert [(r["kind"], r["step"], r["evidence"]["loss"]) for r in finding_lines] == [("divergence", 30, "nan")]
    final = m.close()
    doc = json.loads((tmp_path / FINDINGS_FILE).read_text())
    assert [f["kind"] for f in doc["findings"]] == [f.kind for f in final] == ["divergence"]
    assert doc["n_steps"] == 32


def test_live_diagnosis_finds_problems_during_the_run() -> None:
    m = Monitor(diagnose_every=50, diagnose_budget=1.0, total_steps=400, clock=FakeClock(0.5))
    for k in range(200):  # too slow: 0.02% per update
        m.on_step(k, lrs=[1e-3], loss=5.5 - 0.001 * k)
    assert [f.kind for f in m.findings] == ["too_slow"]
    assert m.findings[0].evidence["suggested_peak_lr"] == pytest.approx(3e-3, rel=1e-12)


def test_live_diagnoses_keep_to_their_time_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    import lrlab.monitor

    calls: list[int] = []
    real = lrlab.monitor.diagnose

    def counting(curves: Any, **kw: Any) -> Any:
        calls.append(len(curves.step))
        return real(curves, **kw)

    monkeypatch.setattr(lrlab.monitor, "diagnose", counting)
    # every clock read advances 0.5 s: a diagnosis "takes" 0.5 s, so with a 1% budget the next one waits 50 s,
    # i.e. 100 updates (one clock read each), although diagnose_every allows one every 10; the first (cold)
    # diagnosis does not make the second one wait
    m = Monitor(diagnose_every=10, diagnose_budget=0.01, clock=FakeClock(0.5))
    for k in range(400):
        m.on_step(k, lrs=[1e-3], loss=2.0)
    assert calls == [10, 20, 120, 220, 320]
    m.on_eval(400, val_loss=2.0)  # an evaluation within the wait does not diagnose either ...
    assert len(calls) == 5
    m.on_eval(401, val_loss=float("nan"))  # ... but a NaN does, at once
    assert len(calls) == 6 and m.diverged


def test_no_live_diagnosis_when_off() -> None:
    m = Monitor(diagnose_live=False)
    m.on_step(0, lrs=[1e-3], loss=float("nan"))
    assert m.findings == [] and not m.diverged
    assert [f.kind for f in m.diagnose()] == ["divergence"]


# ------------------------------------------------------------------------------------------------ optimizers


def test_lrs_from_optimizer_reads_every_group() -> None:
    import torch
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    opt = torch.optim.SGD([{"params": a.parameters(), "lr": 0.1}, {"params": b.parameters(), "lr": 0.01}])
    assert Monitor.lrs_from_optimizer(opt) == [0.1, 0.01]
    with pytest.raises(LrlabError, match="param_groups"):
        Monitor.lrs_from_optimizer(object())


def test_lrs_from_schedulefree_are_the_applied_ones() -> None:
    import schedulefree
    import torch
    net = torch.nn.Linear(3, 1)
    opt = schedulefree.AdamWScheduleFree(net.parameters(), lr=0.01, warmup_steps=10)
    opt.train()
    assert Monitor.lrs_from_optimizer(opt) == [0.01]  # no step yet: the configured LR
    got = []
    for _ in range(4):
        opt.zero_grad()
        net(torch.ones(1, 3)).sum().backward()
        opt.step()
        got.append(Monitor.lrs_from_optimizer(opt)[0])
    # group["lr"] stays 0.01; the optimizer applied its own linear warm-up (k + 1) / 10
    assert opt.param_groups[0]["lr"] == 0.01
    assert got == pytest.approx([0.001, 0.002, 0.003, 0.004], rel=1e-12)


# ------------------------------------------------------------------------------------------------ integrations


@pytest.mark.slow
def test_hugging_face_trainer_callback(tmp_path: Path) -> None:
    import accelerate  # noqa: F401  (the Trainer needs it: a missing dev dependency fails here)
    import torch
    import transformers
    from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=64, n_positions=16, n_embd=16, n_layer=2, n_head=2,
                                       bos_token_id=0, eos_token_id=0))

    class Tokens(torch.utils.data.Dataset):  # type: ignore[misc]
        def __init__(self, n: int, seed: int) -> None:
            self.x = torch.randint(0, 64, (n, 16), generator=torch.Generator().manual_seed(seed))

        def __len__(self) -> int:
            return len(self.x)

        def __getitem__(self, i: int) -> dict[str, Any]:
            return {"input_ids": self.x[i], "labels": self.x[i]}

    named = list(model.named_parameters())
    opt = torch.optim.AdamW([{"params": [p for n, p in named if ".h.0." in n], "lr": 1e-3},
                             {"params": [p for n, p in named if ".h.0." not in n], "lr": 1e-4}])
    sched = transformers.get_cosine_schedule_with_warmup(opt, 4, 12)
    mon = Monitor(tmp_path / "mon")  # total_steps comes from the Trainer's state.max_steps
    args = TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=12, per_device_train_batch_size=4,
                             logging_steps=1, eval_strategy="steps", eval_steps=6, report_to=[], use_cpu=True,
                             save_strategy="no", disable_tqdm=True, logging_nan_inf_filter=False)
    trainer = Trainer(model=model, args=args, train_dataset=Tokens(48, 1), eval_dataset=Tokens(8, 2),
                      optimizers=(opt, sched), callbacks=[mon.hf_callback()])
    trainer.train()
    c = load_curves(tmp_path / "mon")
    hf_logs = [h for h in trainer.state.log_history if "loss" in h]
    hf_evals = [h for h in trainer.state.log_history if "eval_loss" in h]
    assert c.step == tuple(range(12))
    # every group, as applied; HF logs group 0 only
    lr0 = [g[0] for g in c.lr]
    assert lr0 == pytest.approx([h["learning_rate"] for h in hf_logs], rel=1e-12)
    assert [g[1] / g[0] for g in c.lr[1:]] == pytest.approx([0.1] * 11, rel=1e-9)
    assert lr0[:5] == pytest.approx([0.0, 2.5e-4, 5e-4, 7.5e-4, 1e-3], rel=1e-12)  # 4-update warm-up
    assert list(c.loss) == pytest.approx([h["loss"] for h in hf_logs], rel=1e-12)
    assert list(c.grad_norm) == pytest.approx([h["grad_norm"] for h in hf_logs], rel=1e-12)
    assert c.eval_step == (6, 12)
    assert list(c.val_loss) == pytest.approx([h["eval_loss"] for h in hf_evals], rel=1e-12)
    assert (tmp_path / "mon" / FINDINGS_FILE).exists()  # closed at the end of training
    assert mon.total_steps == 12 and c.total_steps == 12


@pytest.mark.slow
def test_hugging_face_callback_reports_a_divergence_live(tmp_path: Path) -> None:
    import accelerate  # noqa: F401
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=64, n_positions=16, n_embd=16, n_layer=2, n_head=2,
                                       bos_token_id=0, eos_token_id=0))
    x = torch.randint(0, 64, (120, 16), generator=torch.Generator().manual_seed(1))
    data = [{"input_ids": row, "labels": row} for row in x]
    mon = RecordingMonitor(tmp_path, diagnose_every=5)
    args = TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=30, per_device_train_batch_size=4,
                             learning_rate=1.0, lr_scheduler_type="constant", logging_steps=1, report_to=[],
                             use_cpu=True, save_strategy="no", disable_tqdm=True, logging_nan_inf_filter=False)
    Trainer(model=model, args=args, train_dataset=data, callbacks=[mon.hf_callback()]).train()
    assert "divergence" in mon.live()  # reported through the callback during training
    assert next(n for k, n, _ in mon.arrivals if k == "divergence") < 30
    f = next(f for f in mon.findings if f.kind == "divergence")
    assert f.severity == "error" and f.evidence["peak_lr"] == 1.0 and f.evidence["suggested_peak_lr"] <= 1 / 3
    assert mon.total_steps == 30


@pytest.mark.slow
def test_lightning_callback_with_gradient_accumulation(tmp_path: Path) -> None:
    import pytorch_lightning as pl
    import torch

    micro_losses: list[float] = []

    class Module(pl.LightningModule):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            micro_losses.append(float(loss.detach()))
            return loss

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            x, y = batch
            self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

        def configure_optimizers(self) -> Any:
            opt = torch.optim.SGD([{"params": self.net[0].parameters(), "lr": 0.1},
                                   {"params": self.net[2].parameters(), "lr": 0.01}])
            sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    torch.manual_seed(0)
    x = torch.randn(64, 8)
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True)), batch_size=8)
    mon = Monitor(tmp_path)
    trainer = pl.Trainer(max_epochs=2, accelerator="cpu", enable_progress_bar=False, logger=False,
                         enable_checkpointing=False, enable_model_summary=False, accumulate_grad_batches=2,
                         num_sanity_val_steps=0, callbacks=[mon.lightning_callback(grad_norm=True)])
    trainer.fit(Module(), data, data)
    c = load_curves(tmp_path)
    assert c.step == tuple(range(8))  # 2 epochs x 8 batches / 2 micro-batches per update
    # StepLR(3, 0.5) stepped after every update: updates 0-2 used 0.1, 3-5 used 0.05, 6-7 used 0.025
    assert [g[0] for g in c.lr] == pytest.approx([0.1] * 3 + [0.05] * 3 + [0.025] * 2, rel=1e-12)
    assert [g[1] for g in c.lr] == pytest.approx([0.01] * 3 + [0.005] * 3 + [0.0025] * 2, rel=1e-12)
    assert list(c.loss) == pytest.approx([(micro_losses[2 * k] + micro_losses[2 * k + 1]) / 2 for k in range(8)],
                                         rel=1e-6)
    assert all(g is not None and g > 0 for g in c.grad_norm)
    assert c.eval_step == (4, 8) and len(c.val_loss) == 2
    assert (tmp_path / FINDINGS_FILE).exists()
    assert mon.total_steps == 8 and c.total_steps == 8  # from trainer.estimated_stepping_batches


@pytest.mark.slow
def test_lightning_callback_reports_a_divergence_live(tmp_path: Path) -> None:
    import pytorch_lightning as pl
    import torch

    class Module(pl.LightningModule):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            x, y = batch
            return torch.nn.functional.mse_loss(self.net(x), y)

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.5)  # far too high for this regression

    torch.manual_seed(0)
    x = torch.randn(256, 8)
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, 3 * x.sum(1, keepdim=True)), batch_size=8)
    mon = RecordingMonitor(tmp_path, diagnose_every=5)
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", enable_progress_bar=False, logger=False,
                         enable_checkpointing=False, enable_model_summary=False,
                         callbacks=[mon.lightning_callback(package="pytorch_lightning")])
    trainer.fit(Module(), data)
    assert "divergence" in mon.live()
    assert next(n for k, n, _ in mon.arrivals if k == "divergence") < 32
    assert mon.total_steps == 32
    f = next(f for f in mon.findings if f.kind == "divergence")
    assert f.severity == "error" and f.evidence["suggested_peak_lr"] <= 0.5 / 3


def test_lightning_package_choice() -> None:
    import importlib
    import importlib.util
    import sys

    import pytorch_lightning as pl

    from lrlab.integrations import lightning_package

    mon = Monitor()
    # the default is the package already imported (lightning.pytorch when both are), else the installed one
    default = lightning_package()
    assert default in sys.modules
    assert isinstance(mon.lightning_callback(), importlib.import_module(default).Callback)
    assert isinstance(mon.lightning_callback(package="pytorch_lightning"), pl.Callback)
    if importlib.util.find_spec("lightning") is None:
        with pytest.raises(LrlabError, match=r"needs lightning\.pytorch installed"):
            mon.lightning_callback(package="lightning")
    with pytest.raises(LrlabError, match="package must be one of"):
        mon.lightning_callback(package="keras")


# ------------------------------------------------------------------------------------------------ real runs


class RecordingMonitor(Monitor):
    """A Monitor that notes, for each finding it reports, how many updates it had recorded and whether it was
    closing: a finding with closing False arrived live, during training, not from the diagnosis in `close`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.closing = False
        self.arrivals: list[tuple[str, int, bool]] = []
        super().__init__(*args, on_finding=self._arrived, **kwargs)

    def _arrived(self, f: Finding) -> None:
        self.arrivals.append((f.kind, len(self.curves().step), self.closing))

    def close(self) -> list[Finding]:
        self.closing = True
        return super().close()

    def live(self) -> list[str]:
        return [kind for kind, _, closing in self.arrivals if not closing]


def run_tiny(tmp_path: Path, lr: float, steps: int = 200, **monitor: Any) -> tuple[RecordingMonitor, Any]:
    import torch

    from lrlab.bench.train import TrainConfig, train

    torch.set_num_threads(1)
    mon = RecordingMonitor(tmp_path, total_steps=steps, **monitor)  # default: diagnose_every and diagnose_budget
    result = train(TrainConfig(task="lm", schedule="warmup(0.05) >> cosine(floor=0.1)", lr=lr, steps=steps,
                               eval_every=25, eval_batches=2), monitor=mon)
    return mon, result


@pytest.mark.slow
def test_real_run_with_a_good_lr_has_no_findings(tmp_path: Path) -> None:
    mon, result = run_tiny(tmp_path, 1e-2)
    assert not result.diverged and result.final_val_loss < 3.5
    assert mon.findings == [] and mon.close() == []


@pytest.mark.slow
def test_real_run_with_a_too_high_lr_is_divergence(tmp_path: Path) -> None:
    mon, _ = run_tiny(tmp_path, 3.0)
    # diagnosed during training, under the default time budget, long before the run's 200 updates end
    live = [(kind, n) for kind, n, closing in mon.arrivals if not closing]
    assert {k for k, _ in live} & {"divergence", "warmup_spike"}
    assert min(n for _, n in live) < 100
    offline = {f.kind: f for f in __import__("lrlab.diagnose").diagnose.diagnose(load_curves(tmp_path))}
    assert "divergence" in offline
    f = offline["divergence"]
    assert f.severity == "error" and f.evidence["suggested_peak_lr"] <= 1.0  # at least 3x lower
    assert f.step < 20  # it breaks during the 10-update warm-up


@pytest.mark.slow
def test_real_run_with_a_too_low_lr_is_too_slow(tmp_path: Path) -> None:
    # A 400-update tiny run trains in seconds, and the default budget (0.1 % of the wall time) spaces live
    # diagnoses ~1,000x their own duration apart, so whether the third one falls before the end depends on the
    # machine's load (it did not at load 5 on 2 cores). A 5 % budget tests live detection, not the machine's speed;
    # test_live_diagnoses_keep_to_their_time_budget tests the budget with a fake clock.
    mon, _ = run_tiny(tmp_path, 1e-5, steps=400, diagnose_budget=0.05)
    assert [f.kind for f in mon.findings] == ["too_slow"]
    assert mon.live() == ["too_slow"]  # found during training, not only by close()
    assert mon.arrivals[0][1] < 400
    f = mon.close()[0]
    assert f.kind == "too_slow" and f.evidence["progress_per_update"] < f.evidence["threshold"] / 3
    assert f.evidence["suggested_peak_lr"] == pytest.approx(3e-5, rel=1e-12)
    assert f.evidence["window_steps"] == 80  # 20% of the planned 400 updates


def test_a_finding_arrives_during_a_plain_loop() -> None:
    """Plain calls, the default budget and a real clock: the first diagnoses come at once; the budget spaces out
    the later ones. A loop that stops on `monitor.diverged` stops long before its planned end."""
    mon = RecordingMonitor(total_steps=10_000)
    stopped_at = None
    for k in range(10_000):
        loss = 5.0 - 0.01 * k if k < 60 else 5.0 * 1.2 ** (k - 60)  # blows up from update 60, stays finite
        mon.on_step(k, lrs=[1e-3], loss=loss)
        if mon.diverged:
            stopped_at = k
            break
    assert stopped_at is not None and stopped_at < 200
    assert "divergence" in mon.live()
    assert next(f.step for f in mon.findings if f.kind == "divergence") >= 60


# ------------------------------------------------------------------------------------------------ CLI


def write_log(folder: Path) -> Path:
    m = Monitor(folder, total_steps=400, diagnose_live=False)
    loss = 5.5
    for k in range(400):  # too low an LR: the loss falls slowly and steadily, in step with the warm-up's LR
        lr = 1e-3 * min(1.0, (k + 1) / 20)
        m.on_step(k, lrs=[lr], loss=loss)
        loss -= 0.5 * lr
    m.close()
    return folder / JSONL_FILE


def test_cli_diagnose_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lrlab.cli import main

    log = write_log(tmp_path)
    assert main(["diagnose", str(log), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["n_steps"] == 400 and doc["total_steps"] == 400
    assert [f["kind"] for f in doc["findings"]] == ["too_slow"]
    assert doc["findings"][0]["evidence"]["threshold"] == pytest.approx(0.1 / 80, rel=1e-12)


def test_cli_diagnose_table_and_fail_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lrlab.cli import main

    write_log(tmp_path)
    assert main(["diagnose", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "too_slow" in out and "raise the peak LR ~3x" in out and "400 updates" in out
    assert main(["diagnose", str(tmp_path), "--fail-on", "warning"]) == 1
    assert main(["diagnose", str(tmp_path), "--fail-on", "error"]) == 0
    capsys.readouterr()
    assert main(["diagnose", str(tmp_path / "missing.jsonl")]) == 2
    assert "error: log" in capsys.readouterr().err


def test_cli_diagnose_thresholds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lrlab.cli import main

    log = write_log(tmp_path)  # falls 0.0005 per update on ~5.5: too slow for slow_drop 10%, not for 0.1%
    assert main(["diagnose", str(log), "--json", "--threshold", "slow_drop=0.001"]) == 0
    assert "too_slow" not in [f["kind"] for f in json.loads(capsys.readouterr().out)["findings"]]
    # an int field, repeated options: smooth=3 and a 5% window give another threshold (0.1 / 20)
    assert main(["diagnose", str(log), "--json", "-t", "smooth=3", "--threshold", "slow_window=0.05"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["findings"][0]["evidence"]["threshold"] == pytest.approx(0.1 / 20, rel=1e-12)


@pytest.mark.parametrize(("option", "needle"), [
    ("slow_dorp=0.1", "unknown threshold 'slow_dorp'; choose from: smooth, diverge_factor, min_rise, spike_factor"),
    ("slow_drop", "--threshold must be NAME=VALUE, got 'slow_drop'; NAME is one of: smooth,"),
    ("slow_drop=abc", "--threshold slow_drop must be a number, got 'abc'"),
    ("smooth=2.5", "--threshold smooth must be an integer, got '2.5'"),
    ("slow_drop=1.5", "thresholds.slow_drop must be in (0, 1), got 1.5"),
], ids=["unknown", "no-value", "not-a-number", "not-an-int", "out-of-range"])
def test_cli_diagnose_bad_threshold(tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str,
                                    needle: str) -> None:
    from lrlab.cli import main

    log = write_log(tmp_path)
    assert main(["diagnose", str(log), "--threshold", option]) == 2
    err = capsys.readouterr().err
    assert needle in err and "floor_drop" in err if "choose from" in needle else needle in err
