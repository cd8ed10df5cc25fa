"""lrlab schedules inside the real frameworks, on tiny models: HF Trainer, PyTorch Lightning, optax, Keras 3."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is first imported

import json
import pickle
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import lrlab
import lrlab.optax
from lrlab.integrations import hf_scheduler, keras_schedule, lightning_scheduler_config
from lrlab.optax import schedule as optax_schedule
from lrlab.plateau import Plateau
from lrlab.torch import LRScheduler

torch.set_num_threads(1)

# ------------------------------------------------------------------------------------------------ Hugging Face


class _TokenData(torch.utils.data.Dataset):  # type: ignore[type-arg]
    def __init__(self, n: int = 64) -> None:
        g = torch.Generator().manual_seed(0)
        self.ids = torch.randint(0, 32, (n, 8), generator=g)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def _hf_model() -> Any:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=32, n_positions=16))


def _hf_args(out: Path, **kw: Any) -> Any:
    from transformers import TrainingArguments

    base = {"output_dir": str(out), "max_steps": 12, "per_device_train_batch_size": 4, "learning_rate": 1e-3,
            "warmup_steps": 0.25, "lr_scheduler_type": "cosine", "logging_steps": 1, "report_to": [],
            "use_cpu": True, "save_strategy": "no", "disable_tqdm": True, "seed": 0, "data_seed": 0}
    return TrainingArguments(**{**base, **kw})


def _logged_lrs(trainer: Any) -> list[float]:
    return [h["learning_rate"] for h in trainer.state.log_history if "learning_rate" in h]


HF_KINDS = {
    "linear": {}, "cosine": {}, "constant": {}, "constant_with_warmup": {}, "inverse_sqrt": {},
    "cosine_with_min_lr": {"min_lr": 1e-4}, "cosine_with_restarts": {"num_cycles": 3},
    "polynomial": {"lr_end": 1e-5, "power": 2.0}, "warmup_stable_decay": {"num_decay_steps": 40},
}


@pytest.mark.parametrize("kind", HF_KINDS)
def test_hf_scheduler_gives_the_trainers_own_lrs(kind: str, tmp_path: Path) -> None:
    from transformers import get_scheduler

    kwargs = HF_KINDS[kind]
    args = _hf_args(tmp_path, lr_scheduler_type=kind, lr_scheduler_kwargs=kwargs, warmup_steps=0.07)
    total = 137
    opt = torch.optim.AdamW(_hf_model().parameters(), lr=1e-3)
    ours = hf_scheduler(opt, args, num_training_steps=total)
    opt2 = torch.optim.AdamW(_hf_model().parameters(), lr=1e-3)
    theirs = get_scheduler(kind, opt2, num_warmup_steps=args.get_warmup_steps(total), num_training_steps=total,
                           scheduler_specific_kwargs=kwargs)
    p = torch.nn.Parameter(torch.zeros(1))
    ours_lrs, their_lrs = [], []
    for _ in range(total + 3):
        ours_lrs.append(opt.param_groups[0]["lr"])
        their_lrs.append(opt2.param_groups[0]["lr"])
        for o in (opt, opt2):
            p.grad = None
            o.step()  # no gradients: the update changes nothing but counts
        ours.step()
        theirs.step()
    if kind in ("polynomial", "cosine_with_restarts"):  # lrlab.compat.hf: within an ulp or two
        assert ours_lrs == pytest.approx(their_lrs, rel=1e-12, abs=1e-18)
    else:
        assert ours_lrs == their_lrs
    if kind != "constant":
        assert str(ours.schedule).startswith("warmup(10")  # ceil(0.07 * 137) = 10, the Trainer's rounding


def test_hf_trainer_runs_with_an_lrlab_scheduler_and_resumes(tmp_path: Path) -> None:
    from transformers import Trainer

    data = _TokenData()
    # reference: the Trainer's own cosine-with-warm-up scheduler
    ref = Trainer(model=_hf_model(), args=_hf_args(tmp_path / "ref"), train_dataset=data)
    ref.train()
    expected = _logged_lrs(ref)
    assert len(expected) == 12

    # ours, through optimizers=(opt, sched), saving a checkpoint at update 6
    model = _hf_model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    args = _hf_args(tmp_path / "ours", save_strategy="steps", save_steps=6)
    sched = hf_scheduler(opt, args)
    trainer = Trainer(model=model, args=args, train_dataset=data, optimizers=(opt, sched))
    trainer.train()
    assert _logged_lrs(trainer) == expected
    assert sched.state_dict() == {"spec": str(sched.schedule), "clock": "steps", "t": 12.0, "updates": 12,
                                  "absolute": False, "base_lrs": [1e-3]}

    # resume from update 6 with fresh objects: the Trainer loads our state with torch.load(weights_only=True)
    model = _hf_model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = hf_scheduler(opt, args)
    resumed = Trainer(model=model, args=args, train_dataset=data, optimizers=(opt, sched))
    resumed.train(resume_from_checkpoint=str(tmp_path / "ours" / "checkpoint-6"))
    assert _logged_lrs(resumed)[-6:] == expected[6:]
    assert sched.t == 12.0


def test_hf_plateau_callback_reports_eval_loss(tmp_path: Path) -> None:
    from transformers import Trainer

    from lrlab.integrations import HFPlateauCallback

    model = _hf_model()
    opt = torch.optim.AdamW(model.parameters(), lr=0.0)
    # LR = level * 0: no learning, so the eval loss never improves; the levels (multipliers from 1.0) still halve
    sched = LRScheduler(opt, "constant(0)", absolute=True, plateau=Plateau(patience=0, factor=0.5, threshold=0.0))
    args = _hf_args(tmp_path, max_steps=8, eval_strategy="steps", eval_steps=2, learning_rate=0.0)
    trainer = Trainer(model=model, args=args, train_dataset=_TokenData(), eval_dataset=_TokenData(16),
                      optimizers=(opt, sched), callbacks=[HFPlateauCallback(sched, "eval_loss")])
    trainer.train()
    # 4 evaluations of the same loss: the first sets the best, the 3 others are not better -> 3 halvings
    assert sched.state_dict()["plateau"]["state"]["reductions"] == 3
    assert sched.state_dict()["plateau"]["state"]["levels"] == [0.125]
    with pytest.raises(lrlab.LrlabError, match="no 'val_acc'"):
        HFPlateauCallback(sched, "val_acc").on_evaluate(args, None, None, metrics={"eval_loss": 1.0})


def test_hf_scheduler_needs_a_total(tmp_path: Path) -> None:
    args = _hf_args(tmp_path, max_steps=-1)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(lrlab.LrlabError, match="pass num_training_steps"):
        hf_scheduler(opt, args)
    with pytest.raises(lrlab.LrlabError, match=r"'reduce_lr_on_plateau' is feedback.*HFPlateauCallback"):
        hf_scheduler(opt, _hf_args(tmp_path, lr_scheduler_type="reduce_lr_on_plateau", eval_strategy="steps",
                                   eval_steps=5))
    sched = hf_scheduler(opt, _hf_args(tmp_path, lr_scheduler_type="polynomial"), schedule="cooldown(shape=sqrt)")
    assert str(sched.schedule) == "warmup(3) >> cooldown(9)"


# ------------------------------------------------------------------------------------------------ Lightning


LIGHTNING_NOISE = (".*(num_workers|does not have many workers|LeafSpec|no `val_dataloader`"
                   "|dataloader is not resumable).*")


#: both Lightning namespaces: the unified ``lightning`` package and the standalone ``pytorch_lightning``
LIGHTNING = [pytest.param("lightning.pytorch", id="lightning"), pytest.param("pytorch_lightning", id="pl")]


def _lightning_module(spec: str, record: list[float], *, total: int, plateau: Plateau | None = None,
                      package: str = "pytorch_lightning", helper: bool = True) -> Any:
    import importlib

    pl = importlib.import_module(package)

    class Tiny(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.net = torch.nn.Linear(4, 1)

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            record.append(self.optimizers().param_groups[0]["lr"])
            x, y = batch
            return torch.nn.functional.mse_loss(self.net(x), y)

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            self.log("val_loss", 1.0)

        def configure_optimizers(self) -> Any:
            opt = torch.optim.SGD(self.parameters(), lr=0.1)
            sched = LRScheduler(opt, spec, total=total, plateau=plateau)
            return {"optimizer": opt, "lr_scheduler": lightning_scheduler_config(sched) if helper else sched}

    return Tiny()


def _loader() -> Any:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True)), batch_size=8)


def _lightning_trainer(root: Path, max_steps: int, package: str = "pytorch_lightning", **kw: Any) -> Any:
    import importlib

    pl = importlib.import_module(package)

    kw.setdefault("limit_val_batches", 0)
    return pl.Trainer(max_steps=max_steps, enable_progress_bar=False, logger=False, enable_checkpointing=False,
                      enable_model_summary=False, accelerator="cpu", devices=1, default_root_dir=str(root), **kw)


def test_lightning_step_interval_checkpoint_and_resume(tmp_path: Path) -> None:
    spec = "warmup(0.2) >> cosine(floor=0.1)"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=LIGHTNING_NOISE)
        straight: list[float] = []
        _lightning_trainer(tmp_path, 20).fit(_lightning_module(spec, straight, total=20), _loader())
        first: list[float] = []
        part = _lightning_trainer(tmp_path, 12)  # stopped at update 12 of a 20-update schedule
        part.fit(_lightning_module(spec, first, total=20), _loader())
        ckpt = tmp_path / "at12.ckpt"
        part.save_checkpoint(ckpt)
        saved = torch.load(ckpt, weights_only=False)["lr_schedulers"][0]
        assert saved == {"spec": str(lrlab.parse(spec, total=20)), "clock": "steps", "t": 12.0, "updates": 12,
                         "absolute": False, "base_lrs": [0.1]}
        rest: list[float] = []
        _lightning_trainer(tmp_path, 20).fit(_lightning_module(spec, rest, total=20), _loader(), ckpt_path=str(ckpt))
    expected = [0.1 * v for v in lrlab.parse(spec, total=20).values(np.arange(20))]
    assert straight == expected
    assert first == expected[:12]
    assert rest == expected[12:]


@pytest.mark.parametrize("package", LIGHTNING)
def test_lightning_plateau_callback(package: str, tmp_path: Path) -> None:
    from lrlab.integrations import lightning_class

    callback = lightning_class("LightningPlateauCallback", package)("val_loss")
    assert type(callback).__mro__[1].__module__.startswith(package)  # a subclass of that package's Callback
    record: list[float] = []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=LIGHTNING_NOISE)
        module = _lightning_module("constant()", record, total=16,
                                   plateau=Plateau(patience=0, factor=0.5, threshold=0.0), package=package)
        trainer = _lightning_trainer(tmp_path, 16, package, val_check_interval=4, num_sanity_val_steps=0,
                                     limit_val_batches=1, callbacks=[callback])
        trainer.fit(module, _loader(), _loader())
    # validations after updates 4, 8, 12, 16 log the same val_loss: 3 reductions, applied from the next update on
    assert record[4] == 0.1 and record[8] == 0.05 and record[12] == 0.025
    assert trainer.lr_scheduler_configs[0].scheduler.state_dict()["plateau"]["state"]["reductions"] == 3


@pytest.mark.parametrize("package", LIGHTNING)
def test_lightning_default_epoch_interval_still_gives_each_update_its_lr(package: str, tmp_path: Path) -> None:
    """{"optimizer": opt, "lr_scheduler": sched} without lrlab's helper: Lightning steps the scheduler once per
    epoch (8 updates here); the LR of every update is still the schedule's (no 0.0 for the whole first epoch)."""
    spec = "warmup(0.25) >> cosine(floor=0.1)"
    record: list[float] = []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=LIGHTNING_NOISE)
        trainer = _lightning_trainer(tmp_path, 24, package)
        trainer.fit(_lightning_module(spec, record, total=24, package=package, helper=False), _loader())
    assert trainer.lr_scheduler_configs[0].interval == "epoch"
    expected = [0.1 * v for v in lrlab.parse(spec, total=24).values(np.arange(24))]
    # read in training_step, before each update: the scheduler notices the cadence at update 1
    assert record[2:] == pytest.approx(expected[2:], rel=1e-12) and record[0] == expected[0]


# ------------------------------------------------------------------------------------------------ optax / jax


def test_optax_schedule_is_jit_traceable_and_exact_in_x64() -> None:
    import jax
    import jax.numpy as jnp

    spec = "warmup(0.1) >> cosine(floor=0.1)"
    s = lrlab.parse(spec, total=100)
    f = optax_schedule(spec, total=100, scale=3e-3)
    steps = np.arange(120)
    with jax.enable_x64(False):  # jax's default float, whatever another test module left set
        got = np.asarray(jax.jit(f)(jnp.arange(120)))
    assert got.dtype == np.float32  # computed in float32, as optax's own schedules are
    np.testing.assert_allclose(got, 3e-3 * s.values(steps), rtol=1e-6, atol=1e-12)
    assert np.asarray(jax.vmap(f)(jnp.arange(5))).tolist() == got[:5].tolist()
    with jax.enable_x64(True):
        g = optax_schedule(spec, total=100)
        got64 = np.asarray(jax.jit(g)(jnp.arange(120)))
        assert got64.dtype == np.float64
        assert got64.tolist() == s.values(steps).tolist()
        assert [float(jax.jit(g)(i)) for i in (0, 10, 57)] == [s(0), s(10), s(57)]
    again = pickle.loads(pickle.dumps(f))
    assert again == f and str(again) == "0.003 * (warmup(10) >> cosine(floor=0.1, total=90))"


def test_optax_schedule_drives_an_optax_optimizer() -> None:
    s = lrlab.parse("warmup(3) >> linear(7)")
    assert _sgd_trajectory(optax_schedule(s, scale=0.5), 12) == _expected_sgd(s, 0.5, 12)


def test_lrlab_optax_schedule_drives_optax_sgd() -> None:
    s = lrlab.parse("warmup(0.25) >> cosine(floor=0.1)", total=12)
    f = lrlab.optax.schedule("warmup(0.25) >> cosine(floor=0.1)", total=12, scale=0.5)
    assert isinstance(f, lrlab.optax.OptaxSchedule) and str(f) == f"0.5 * ({s})"
    assert _sgd_trajectory(f, 14) == _expected_sgd(s, 0.5, 14)
    with pytest.raises(lrlab.LrlabError, match="pass total=N"):
        lrlab.optax.schedule("cosine()")


def _sgd_trajectory(learning_rate: Any, n: int) -> list[list[float]]:
    """Weights after each of `n` jitted optax.sgd updates with a constant gradient, in float64."""
    import jax
    import jax.numpy as jnp
    import optax

    with jax.enable_x64(True):
        tx = optax.sgd(learning_rate=learning_rate)
        w = jnp.zeros(2)
        state = tx.init(w)
        grad = jnp.array([1.0, -2.0])

        @jax.jit
        def update(w: jax.Array, state: Any) -> tuple[jax.Array, Any]:
            updates, state = tx.update(grad, state, w)
            return optax.apply_updates(w, updates), state

        trajectory = []
        for _ in range(n):
            w, state = update(w, state)
            trajectory.append(np.asarray(w).tolist())
    return trajectory


def _expected_sgd(s: Any, scale: float, n: int) -> list[list[float]]:
    expected, cur = [], np.zeros(2)
    for t in range(n):
        cur = cur - scale * s(t) * np.array([1.0, -2.0])
        expected.append(cur.tolist())
    return expected


# ------------------------------------------------------------------------------------------------ Keras 3


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # keras' torch backend, numpy 2
def test_keras_schedule_values_serialization_and_fit(tmp_path: Path) -> None:
    import keras

    from lrlab.integrations import KerasSchedule

    assert keras.backend.backend() == "torch"
    spec = "warmup(5) >> cosine(45, floor=0.1)"
    s = lrlab.parse(spec)
    sched = keras_schedule(spec, scale=0.01)
    assert isinstance(sched, keras.optimizers.schedules.LearningRateSchedule) and isinstance(sched, KerasSchedule)
    assert [float(sched(t)) for t in (0, 3, 5, 30, 60)] == [float(np.float32(0.01 * s(t))) for t in (0, 3, 5, 30, 60)]

    config = keras.saving.serialize_keras_object(sched)
    assert config["config"] == {"spec": str(s), "scale": 0.01} and config["registered_name"] == "lrlab>KerasSchedule"
    back = keras.saving.deserialize_keras_object(config)
    assert isinstance(back, KerasSchedule) and back.spec == str(s) and float(back(7)) == float(sched(7))
    assert pickle.loads(pickle.dumps(KerasSchedule)) is KerasSchedule

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=sched), loss="mse")
    x = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
    model.fit(x, x.sum(1), batch_size=4, epochs=1, verbose=0)  # 8 updates
    assert int(model.optimizer.iterations) == 8
    assert float(model.optimizer.learning_rate) == float(np.float32(0.01 * s(8)))
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.optimizer._learning_rate, KerasSchedule)
    assert float(loaded.optimizer.learning_rate) == float(model.optimizer.learning_rate)


KERAS_JAX_CHILD = """
import json, sys
import numpy as np
import keras
from lrlab.integrations import KerasSchedule, keras_schedule

sched = keras_schedule("warmup(3) >> cosine(9, floor=0.1)", scale=0.1)
out = {"backend": keras.backend.backend(), "direct": [float(sched(t)) for t in (0, 2, 3, 7, 20)]}
# one weight, targets far above the output, mean absolute error: the gradient is -1 at every update, so after
# update k the weight is the sum of the LRs the optimizer used
model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")])
model.compile(optimizer=keras.optimizers.SGD(learning_rate=sched), loss="mae")
x = np.ones((6, 1), dtype="float32")
out["weights"] = []
for _ in range(6):
    model.fit(x, 100 * x, batch_size=6, epochs=1, verbose=0)  # one update per fit
    out["weights"].append(float(np.asarray(model.layers[0].kernel.value)[0, 0]))
out["iterations"] = int(model.optimizer.iterations)
out["lr_now"] = float(model.optimizer.learning_rate)
config = keras.saving.serialize_keras_object(sched)
back = keras.saving.deserialize_keras_object(config)
out["config"] = [config["registered_name"], config["config"]]
out["back"] = [isinstance(back, KerasSchedule), back.spec, float(back(7))]
model.save(sys.argv[1])
loaded = keras.saving.load_model(sys.argv[1])
out["loaded"] = [isinstance(loaded.optimizer._learning_rate, KerasSchedule), float(loaded.optimizer.learning_rate)]
print("RESULT " + json.dumps(out))
"""


@pytest.mark.slow
def test_keras_schedule_on_the_jax_backend(tmp_path: Path) -> None:
    """Keras picks its backend once per process: the jax backend runs in a subprocess (this module uses torch)."""
    env = {**os.environ, "KERAS_BACKEND": "jax", "KERAS_HOME": str(tmp_path), "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", KERAS_JAX_CHILD, str(tmp_path / "m.keras")], capture_output=True,
                          text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))[len("RESULT "):])
    s = lrlab.parse("warmup(3) >> cosine(9, floor=0.1)")
    lr32 = [float(np.float32(0.1 * s(t))) for t in range(8)]
    assert out["backend"] == "jax"
    # on jax the formulas run in jax.numpy at Keras' float32 (lrlab.optax), so within float32 rounding
    assert out["direct"] == pytest.approx([0.1 * s(t) for t in (0, 2, 3, 7, 20)], rel=1e-6, abs=1e-12)
    assert out["weights"] == pytest.approx(np.cumsum(lr32[:6]).tolist(), rel=1e-6, abs=1e-9)
    assert out["iterations"] == 6 and out["lr_now"] == pytest.approx(lr32[6], rel=1e-6)
    assert out["config"] == ["lrlab>KerasSchedule", {"spec": str(s), "scale": 0.1}]
    assert out["back"][:2] == [True, str(s)] and out["back"][2] == pytest.approx(lr32[7], rel=1e-6)
    assert out["loaded"][0] is True and out["loaded"][1] == pytest.approx(lr32[6], rel=1e-6)


def test_keras_default_tensorflow_backend_is_refused_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import keras

    # no KERAS_BACKEND and no keras.json: Keras' default, TensorFlow, which is not installed here
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env["KERAS_HOME"] = str(tmp_path)
    code = "from lrlab.integrations import keras_schedule\nkeras_schedule('cosine(10)')"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 1
    assert ("lrlab.errors.LrlabError: lrlab's KerasSchedule runs on the Keras backends torch, jax, numpy; this Keras "
            "uses tensorflow (not installed)") in proc.stderr
    assert "Set the environment variable KERAS_BACKEND=jax (or torch) before Keras is first imported" in proc.stderr

    sched = keras_schedule("cosine(10)")
    monkeypatch.setattr(keras.backend, "backend", lambda: "tensorflow")
    with pytest.raises(lrlab.LrlabError, match=r"this Keras uses tensorflow \(TensorFlow is Keras' default backend"):
        sched(3)


@pytest.mark.parametrize("module", ["lrlab.optax"])
def test_doctests(module: str) -> None:
    import doctest
    import importlib

    import jax

    with jax.enable_x64(False):  # the examples show float32 values
        result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def test_import_is_lazy() -> None:
    code = ("import sys, lrlab.integrations, lrlab.plateau, lrlab.guard, lrlab.optax, lrlab.monitor\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'jax', 'keras', 'transformers', "
            "'pytorch_lightning', 'optax'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_monitor_callbacks_are_built_by_the_one_lazy_mechanism() -> None:
    import pytorch_lightning as pl
    import transformers

    import lrlab.integrations as li
    import lrlab.monitor

    hf = li.HFMonitorCallback
    assert issubclass(hf, transformers.TrainerCallback) and hf.__module__ == "lrlab.integrations"
    assert lrlab.monitor.HFMonitorCallback is hf  # the old home still finds it
    assert li.lazy_class("HFMonitorCallback") is hf  # built once
    light = li.lightning_class("LightningMonitorCallback", "pytorch_lightning")
    assert issubclass(light, pl.Callback) and light.__qualname__ == "LightningMonitorCallback"
    assert li.lightning_class("LightningPlateauCallback", "pytorch_lightning").__module__ == "lrlab.integrations"
    with pytest.raises(lrlab.LrlabError, match=r"package must be one of lightning\.pytorch, pytorch_lightning"):
        li.lightning_package("keras")
