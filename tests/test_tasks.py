"""Built-in tasks load real data with the expected sizes, their batches are pure functions of (seed, step), the
validation batches are fixed, and user data (text:PATH, hf:PATH saved locally) loads; bad input names the problem."""

from __future__ import annotations

import hashlib
import math
import platform
import sysconfig
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from lrlab.bench.presets import PRESETS
from lrlab.bench.tasks import DIGITS_VAL, STDLIB_CORPUS, get_task
from lrlab.errors import LrlabError

STDLIB = Path(sysconfig.get_path("stdlib"))


def as_bytes(t: torch.Tensor) -> bytes:
    return bytes(t.tolist())


# ---------------------------------------------------------------------------------------------------- lm


def test_lm_corpus_is_this_pythons_stdlib_source_split_per_file() -> None:
    task = get_task("lm")
    sources = [(STDLIB / rel).read_bytes() for rel in STDLIB_CORPUS]
    n_val = [math.ceil(len(s) * 0.1) for s in sources]
    assert len(STDLIB_CORPUS) == 37
    assert task.info["python"] == platform.python_version()
    assert task.info["corpus_bytes"] == sum(map(len, sources)) > 1_000_000
    assert len(task.val_data) == task.info["val_bytes"] == sum(n_val)
    assert len(task.train_data) == task.info["train_bytes"] == sum(map(len, sources)) - sum(n_val)
    # training bytes are each file's head in corpus order, validation bytes each file's tail
    assert as_bytes(task.train_data[:500]) == sources[0][:500]
    assert as_bytes(task.val_data[: n_val[0]]) == sources[0][-n_val[0]:]
    assert as_bytes(task.val_data[-n_val[-1]:]) == sources[-1][-n_val[-1]:]
    assert task.train_data.dtype == torch.uint8 and task.model.vocab_size == 256
    assert platform.python_version() in task.description and f"{task.info['corpus_bytes']:,} bytes" in task.description
    assert task.kind == "lm" and task.batch_size == 16 and task.items_per_batch == 16 * 32


def test_lm_batches_are_shifted_windows_and_pure_functions_of_seed_and_step() -> None:
    task = get_task("lm", seed=3)
    x, y = task.get_batch(7)
    assert x.shape == y.shape == (16, 32) and x.dtype == torch.int64
    assert torch.equal(x[:, 1:], y[:, :-1])
    train = as_bytes(task.train_data)
    for row_x, row_y in zip(x, y):
        assert as_bytes(torch.cat([row_x, row_y[-1:]])) in train
    again = get_task("lm", seed=3).get_batch(7)
    assert torch.equal(again[0], x) and torch.equal(again[1], y)
    assert not torch.equal(task.get_batch(8)[0], x)
    assert not torch.equal(get_task("lm", seed=4).get_batch(7)[0], x)


def test_lm_validation_batches_are_fixed_evenly_spread_windows() -> None:
    a = get_task("lm", seed=0).val_batches(4)
    b = get_task("lm", seed=9).val_batches(4)
    assert len(a) == 4 and all(x.shape == (16, 32) for x, _ in a)
    assert all(torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b))
    val = get_task("lm").val_data
    assert torch.equal(a[0][0][0], val[:32].long())  # first window at the start of the split
    assert torch.equal(a[-1][1][-1], val[-32:].long())  # last window's targets end at its end


def test_lm_batch_size_and_presets() -> None:
    assert get_task("lm", batch_size=5).get_batch(0)[0].shape == (5, 32)
    small = get_task("lm", "small")
    assert small.get_batch(0)[0].shape == (32, 64) and small.model.d_model == 64
    assert get_task("lm", "base").model == PRESETS["lm"]["base"].model


def test_lm_names_the_missing_stdlib_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "textwrap.py").write_text("x = 1\n" * 100)
    monkeypatch.setattr("lrlab.bench.tasks.sysconfig.get_path", lambda name: str(tmp_path))
    with pytest.raises(LrlabError) as e:
        get_task("lm")
    message = str(e.value)
    assert "36 of its 37 files are missing there: argparse.py, collections/__init__.py" in message
    assert "textwrap.py," not in message and "use task text:PATH" in message


# ------------------------------------------------------------------------------------------------ vision


def test_vision_uses_all_digits_in_a_fixed_split() -> None:
    from sklearn.datasets import load_digits

    task = get_task("vision")
    assert task.train_data.shape == (1797 - DIGITS_VAL, 8, 8) and task.val_data.shape == (DIGITS_VAL, 8, 8)
    assert task.train_data.dtype == torch.float32 and float(task.train_data.min()) == 0.0
    assert float(task.train_data.max()) == 1.0
    assert task.val_labels is not None and task.train_labels is not None
    assert sorted(set(task.val_labels.tolist())) == list(range(10))
    digits = load_digits()
    expected = Counter((img.astype(np.float32).tobytes(), int(t))
                       for img, t in zip(digits.images / 16.0, digits.target))
    got = Counter((img.numpy().tobytes(), int(t)) for img, t in zip(torch.cat([task.train_data, task.val_data]),
                                                                   torch.cat([task.train_labels, task.val_labels])))
    assert got == expected  # every image exactly once, with its label
    other = get_task("vision", seed=5)
    assert torch.equal(other.val_data, task.val_data)  # the split does not depend on the seed
    assert task.model.kind == "vit" and task.items_per_batch == task.batch_size == 32


def test_vision_batches_and_validation() -> None:
    task = get_task("vision", seed=1)
    x, y = task.get_batch(11)
    assert x.shape == (32, 8, 8) and y.shape == (32,) and y.dtype == torch.int64
    assert torch.equal(get_task("vision", seed=1).get_batch(11)[0], x)
    assert not torch.equal(get_task("vision", seed=2).get_batch(11)[0], x)
    batches = task.val_batches(8)  # 8 x 32 = 256 of the 360 validation images
    assert [len(b[1]) for b in batches] == [32] * 8
    assert torch.equal(torch.cat([b[0] for b in batches]), task.val_data[:256])
    assert sum(len(b[1]) for b in task.val_batches(100)) == DIGITS_VAL  # at most the whole split


# ------------------------------------------------------------------------------------------- user text


def test_text_file_task(tmp_path: Path) -> None:
    text = "".join(f"line {i}: naïve café {i * i}\n" for i in range(300))
    path = tmp_path / "corpus.txt"
    path.write_text(text, encoding="utf-8")
    data = text.encode("utf-8")
    task = get_task(f"text:{path}", seed=2)
    k = len(data) - math.ceil(len(data) * 0.1)
    assert as_bytes(task.train_data) == data[:k] and as_bytes(task.val_data) == data[k:]
    assert task.info["corpus_bytes"] == len(data) and "corpus.txt" in task.description
    x, y = task.get_batch(0)
    assert x.shape == (16, 32) and as_bytes(torch.cat([x[0], y[0, -1:]])) in data


def test_text_file_errors(tmp_path: Path) -> None:
    with pytest.raises(LrlabError, match="does not exist or is not a file"):
        get_task(f"text:{tmp_path / 'missing.txt'}")
    small = tmp_path / "small.txt"
    small.write_text("x" * 200)
    with pytest.raises(LrlabError, match="the validation split holds 20 bytes; the tiny preset needs at least 33"):
        get_task(f"text:{small}")
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"abc\xff" + b"x" * 1000)
    with pytest.raises(LrlabError, match=r"is not UTF-8 text \(invalid byte at offset 3\)"):
        get_task(f"text:{binary}")


def test_hf_dataset_saved_locally(tmp_path: Path) -> None:
    from datasets import Dataset, DatasetDict

    rows = [f"row {i}: the quick brown fox {i}" for i in range(200)]
    Dataset.from_dict({"text": rows, "label": list(range(200))}).save_to_disk(str(tmp_path / "single"))
    task = get_task(f"hf:{tmp_path / 'single'}")
    joined = "\n".join(rows).encode()
    k = len(joined) - math.ceil(len(joined) * 0.1)
    assert as_bytes(task.train_data) == joined[:k] and as_bytes(task.val_data) == joined[k:]
    assert task.info["column"] == "text" and "'text'" in task.description

    train_rows = [f"train {i} " * 3 for i in range(100)]
    val_rows = [f"validation {i} " * 3 for i in range(30)]
    DatasetDict({
        "train": Dataset.from_dict({"title": ["t"] * 100, "body": train_rows}),
        "validation": Dataset.from_dict({"title": ["t"] * 30, "body": val_rows}),
    }).save_to_disk(str(tmp_path / "dict"))
    with pytest.raises(LrlabError, match=r"cannot tell which column holds the text \(string columns: title, body\)"):
        get_task(f"hf:{tmp_path / 'dict'}")
    task = get_task(f"hf:{tmp_path / 'dict'}#body")
    assert as_bytes(task.train_data) == "\n".join(train_rows).encode()
    assert as_bytes(task.val_data) == "\n".join(val_rows).encode()
    assert task.info["val_split"] == "validation"
    with pytest.raises(LrlabError, match="column 'nope' is not in the dataset; columns: title, body"):
        get_task(f"hf:{tmp_path / 'dict'}#nope")


# --------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "mnist"}, "task 'mnist' is not supported; choose from lm, vision, text:PATH or hf:NAME_OR_PATH"),
        ({"name": "text:"}, "task 'text:' is not supported"),
        ({"name": "lm", "preset": "huge"}, "preset 'huge' is not supported; choose from tiny, small, base"),
        ({"name": "lm", "seed": -1}, "seed must be a whole number >= 0, got -1"),
        ({"name": "vision", "batch_size": 0}, "batch_size must be a whole number >= 1, got 0"),
    ],
    ids=["name", "empty-path", "preset", "seed", "batch"],
)
def test_bad_task_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(LrlabError) as e:
        get_task(**kwargs)  # type: ignore[arg-type]
    assert message in str(e.value)


def test_data_info_and_fingerprint_without_building_the_task(tmp_path: Path) -> None:
    from lrlab.bench.tasks import data_fingerprint, data_info

    lm = get_task("lm")
    assert data_info("lm") == lm.info and len(lm.info["corpus_sha256"]) == 64
    assert data_fingerprint(lm.info) == {"python": platform.python_version(),
                                         "corpus_sha256": lm.info["corpus_sha256"]}
    vision = data_info("vision")
    assert vision == get_task("vision").info
    assert data_fingerprint(vision)["corpus_sha256"] == vision["data_sha256"] and len(vision["data_sha256"]) == 64
    text = tmp_path / "t.txt"
    text.write_text("abc " * 500)
    assert data_info(f"text:{text}")["corpus_sha256"] == hashlib.sha256(text.read_bytes()).hexdigest()
    with pytest.raises(LrlabError, match="task 'nope' is not supported"):
        data_info("nope")
