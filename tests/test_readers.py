"""lrlab.log_readers on files written by the real tools: a Hugging Face Trainer's trainer_state.json and its
TensorBoard folder, torch's SummaryWriter, lrlab's own tb/, Lightning's CSVLogger; plain CSV with a column map;
and `lrlab diagnose` on them (with the sparse-log and uniform-guess findings)."""

from __future__ import annotations

import csv
import json
import math
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import lrlab
from lrlab.cli import app, main
from lrlab.log_readers import detect, load_log
from lrlab.monitor import at_chance, log_coverage

torch = pytest.importorskip("torch")
torch.set_num_threads(1)
sys.path.insert(0, str(Path(__file__).parent))
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


# ------------------------------------------------------------------------------------------------ Hugging Face


@pytest.fixture(scope="module")
def hf_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A tiny random GPT-2 on local text at LR 3 (far too high: the loss blows up and ends above a uniform
    guess), logging the loss every 50 of 150 updates, with TensorBoard and an lrlab Monitor attached."""
    pytest.importorskip("transformers")
    from transformers import Trainer

    from test_hf_trainer import _args, _LocalText, _model

    out = tmp_path_factory.mktemp("hf")
    monitor = lrlab.Monitor(out / "monitor")
    args = _args(out / "run", max_steps=150, logging_steps=50, learning_rate=3.0, eval_strategy="steps",
                 eval_steps=50, report_to=["tensorboard"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = Trainer(model=_model(), args=args, train_dataset=_LocalText(96),
                          eval_dataset=_LocalText(8, offset=100), callbacks=[monitor.hf_callback()])
        trainer.train()
    trainer.save_state()
    return {"out": out / "run", "history": trainer.state.log_history, "monitor": monitor,
            "warned": [str(w.message) for w in caught if "lrlab" in str(w.message)]}


def test_hf_trainer_state_json(hf_run: dict[str, Any]) -> None:
    out, history = hf_run["out"], hf_run["history"]
    assert detect(out) == "hf" and detect(out / "trainer_state.json") == "hf"
    c = load_log(out)
    train = [h for h in history if "loss" in h]
    # HF's step is the updates done: the record of update k (0-based) is at step k + 1
    assert c.step == tuple(h["step"] - 1 for h in train) == (49, 99, 149)
    assert c.loss == tuple(h["loss"] for h in train)
    assert [g[0] for g in c.lr] == [h["learning_rate"] for h in train]
    assert c.eval_step == (50, 100, 150) and c.val_loss == tuple(h["eval_loss"] for h in history if "eval_loss" in h)
    assert c.total_steps == 150


def test_hf_tensorboard_folder(hf_run: dict[str, Any]) -> None:
    out, history = hf_run["out"], hf_run["history"]
    runs = out / "runs"
    assert detect(runs) == "tensorboard"
    c = load_log(runs)  # train/* tags: HF's step numbering
    assert c.step == (49, 99, 149)
    assert c.loss == pytest.approx([h["loss"] for h in history if "loss" in h], rel=1e-6)  # float32 in the events
    assert c.eval_step == (50, 100, 150)


def test_a_coarse_hf_log_at_a_far_too_high_lr_is_not_no_problems(hf_run: dict[str, Any]) -> None:
    """The issue's run: the loss logged every logging_steps, a far too high LR ending above a uniform guess.
    The Monitor warns when training starts, and its diagnosis says so; so does `lrlab diagnose`."""
    assert any("logs the training loss every 50 updates" in w for w in hf_run["warned"])
    kinds = [f.kind for f in hf_run["monitor"].findings]
    assert "sparse_log" in kinds and "at_chance" in kinds  # the Monitor knew the vocabulary (256) from the model
    chance = next(f for f in hf_run["monitor"].findings if f.kind == "at_chance")
    assert chance.evidence["chance_loss"] == pytest.approx(math.log(256), rel=1e-12)
    assert "lower the peak LR" in chance.advice
    result = CliRunner().invoke(app, ["diagnose", str(hf_run["out"]), "--json", "--classes", "256"])
    assert result.exit_code == 0, result.output
    found = {f["kind"]: f for f in json.loads(result.output)["findings"]}
    assert {"sparse_log", "at_chance"} <= set(found)
    assert found["sparse_log"]["evidence"]["every"] == 50


def test_coverage_and_chance_rules() -> None:
    flat = lrlab.diagnose.Curves(step=(499, 999, 1499, 1999), loss=(5.55, 5.56, 5.54, 5.55), lr=((0.3,),) * 4,
                                 total_steps=2000)
    f = log_coverage(flat)
    assert f is not None and f.severity == "warning" and "may not have trained at all" in f.message
    assert f.evidence["max_every"] == 14  # 27 losses in 20% of 2000 updates
    assert "logging_steps=1" in f.advice
    dense = lrlab.diagnose.Curves(step=tuple(range(2000)), loss=(1.0,) * 2000, lr=((0.1,),) * 2000)
    assert log_coverage(dense) is None
    short = lrlab.diagnose.Curves(step=(0, 50), loss=(2.0, 1.0), lr=((0.1,),) * 2)  # too short to tell
    assert log_coverage(short) is None
    g = at_chance(flat, math.log(256))
    assert g is not None and g.kind == "at_chance" and "measure the LR" in g.advice
    assert at_chance(dense, math.log(256)) is None


# ------------------------------------------------------------------------------------------------ TensorBoard


def test_summary_writer_tags_with_a_column_map(tmp_path: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(tmp_path / "tb"))
    for k in range(20):
        writer.add_scalar("Loss/train", 3.0 - 0.1 * k, k)
        writer.add_scalar("opt/lr", 0.01 * (k + 1) / 20, k)
        if (k + 1) % 5 == 0:
            writer.add_scalar("Loss/valid", 3.5 - 0.1 * k, k + 1)
    writer.close()
    with pytest.raises(lrlab.LrlabError, match=r"no training or validation loss found .*Loss/train"):
        load_log(tmp_path)
    c = load_log(tmp_path, columns={"loss": "Loss/train", "lr": "opt/lr", "val_loss": "Loss/valid"})
    assert c.step == tuple(range(20))
    assert c.loss == pytest.approx([3.0 - 0.1 * k for k in range(20)], rel=1e-6)
    assert [g[0] for g in c.lr] == pytest.approx([0.01 * (k + 1) / 20 for k in range(20)], rel=1e-6)
    assert c.eval_step == (5, 10, 15, 20)


def test_lrlabs_own_tensorboard_folder(tmp_path: Path) -> None:
    mon = lrlab.Monitor(tmp_path, tensorboard=True, tensorboard_every=1, diagnose_live=False)
    for k in range(12):
        mon.on_step(k, lrs=[0.1 * (k + 1), 0.01 * (k + 1)], loss=2.0 / (k + 1))
    mon.on_eval(12, val_loss=0.5)
    mon.close()
    c = load_log(tmp_path / "tb")
    assert c.step == tuple(range(12))
    assert [g for g in c.lr] == [pytest.approx((0.1 * (k + 1), 0.01 * (k + 1)), rel=1e-6) for k in range(12)]
    assert c.loss == pytest.approx([2.0 / (k + 1) for k in range(12)], rel=1e-6)
    assert c.eval_step == (12,) and c.val_loss == (0.5,)


# ------------------------------------------------------------------------------------------------ Lightning CSV


@pytest.mark.parametrize("package", [pytest.param("lightning.pytorch", id="lightning"),
                                     pytest.param("pytorch_lightning", id="pl")])
def test_lightning_csv_logger(package: str, tmp_path: Path) -> None:
    import importlib

    pl = importlib.import_module(package)
    loggers = importlib.import_module(f"{package}.loggers")
    callbacks = importlib.import_module(f"{package}.callbacks")
    from lrlab.integrations import lightning_scheduler_config
    from lrlab.torch import LRScheduler

    seen: list[tuple[int, float, float]] = []

    class Tiny(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.net = torch.nn.Linear(4, 1)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            self.log("train_loss", loss)
            seen.append((self.global_step, float(loss), self.optimizers().param_groups[0]["lr"]))
            return loss

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            x, y = batch
            self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

        def configure_optimizers(self) -> Any:
            opt = torch.optim.SGD(self.parameters(), lr=0.1)
            return {"optimizer": opt, "lr_scheduler": lightning_scheduler_config(LRScheduler(opt, "cosine(12)"))}

    g = torch.Generator().manual_seed(0)
    x = torch.randn(48, 4, generator=g)
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True)), batch_size=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = pl.Trainer(max_steps=12, logger=loggers.CSVLogger(str(tmp_path)), log_every_n_steps=1,
                             callbacks=[callbacks.LearningRateMonitor("step")], val_check_interval=3,
                             num_sanity_val_steps=0, enable_progress_bar=False, enable_model_summary=False,
                             enable_checkpointing=False, accelerator="cpu", devices=1)
        trainer.fit(Tiny(), data, data)
    assert detect(tmp_path) == "csv"
    c = load_log(tmp_path)  # finds lightning_logs/version_0/metrics.csv; Lightning's step numbering
    assert c.step == tuple(s for s, _, _ in seen) == tuple(range(12))
    assert c.loss == pytest.approx([v for _, v, _ in seen], rel=1e-6)
    assert [g[0] for g in c.lr] == pytest.approx([lr for _, _, lr in seen], rel=1e-12)  # from lr-SGD
    assert c.eval_step == (3, 6, 9, 12)  # Lightning logs the validation after n updates at step n - 1
    result = CliRunner().invoke(app, ["diagnose", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["n_steps"] == 12


# ------------------------------------------------------------------------------------------------ plain CSV


def test_plain_csv_with_a_column_map_and_a_constant_lr(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["iter", "objective", "note"])
        for k in range(1, 11):
            w.writerow([k, 2.0 / k, "ok"])
    with pytest.raises(lrlab.LrlabError, match=r"no learning rate found .*--lr VALUE"):
        load_log(path, columns={"loss": "objective"})
    c = load_log(path, columns={"loss": "objective"}, lr=3e-4, convention="hf")  # iter 1 = the first update
    assert c.step == tuple(range(10)) and c.lr == ((3e-4,),) * 10
    assert c.loss == pytest.approx(list(2.0 / np.arange(1, 11)), rel=1e-12)
    result = CliRunner().invoke(app, ["diagnose", str(path), "-c", "loss=objective", "--lr", "3e-4", "--json"])
    assert result.exit_code == 0, result.output
    assert main(["diagnose", str(path), "-c", "speed=objective"]) == 2  # one line naming the fields
    zero = tmp_path / "zero.csv"
    zero.write_text("step,objective\n0,1.0\n1,0.5\n")
    with pytest.raises(lrlab.LrlabError, match="before the first update"):
        load_log(zero, columns={"loss": "objective"}, lr=1.0, convention="hf")


def test_detect_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(lrlab.LrlabError, match="not a format lrlab reads"):
        load_log(tmp_path / "notes.txt")
    with pytest.raises(lrlab.LrlabError, match="holds no log lrlab reads"):
        load_log(tmp_path)
    with pytest.raises(lrlab.LrlabError, match="does not exist"):
        load_log(tmp_path / "missing")
    with pytest.raises(lrlab.LrlabError, match="kind must be one of"):
        load_log(tmp_path / "notes.txt", kind="wandb")
