"""Built-in training tasks (``lm``, ``vision``) and loaders for user data (``text:PATH``, ``hf:NAME``): a model
shape, real data and a fixed train/validation split, deterministic given a seed. What each task is, how batches
are drawn and why: docs/harness.md.
"""

from __future__ import annotations

import hashlib
import math
import platform
import sysconfig
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lrlab.bench.presets import PRESET_NAMES, PRESETS, ModelConfig
from lrlab.checks import check
from lrlab.errors import LrlabError
from lrlab.files import read_bytes

if TYPE_CHECKING:
    import torch
    from torch import nn

#: Standard-library source files of the ``lm`` corpus, relative to ``sysconfig.get_path("stdlib")``, in corpus
#: order. Chosen to exist with the same path in CPython 3.10 to 3.14 (1.6 MB on 3.11).
STDLIB_CORPUS: tuple[str, ...] = (
    "textwrap.py", "argparse.py", "collections/__init__.py", "json/__init__.py", "json/decoder.py",
    "json/encoder.py", "string.py", "functools.py", "dataclasses.py", "enum.py", "typing.py", "inspect.py",
    "difflib.py", "fractions.py", "statistics.py", "heapq.py", "bisect.py", "calendar.py", "csv.py",
    "configparser.py", "shlex.py", "tokenize.py", "ast.py", "random.py", "logging/__init__.py", "contextlib.py",
    "copy.py", "pprint.py", "queue.py", "shutil.py", "tempfile.py", "threading.py", "ipaddress.py",
    "urllib/parse.py", "email/message.py", "http/client.py", "unittest/case.py",
)

#: Fraction of each text held out for validation.
VAL_FRACTION = 0.1
TASK_FORMS = "lm, vision, text:PATH or hf:NAME_OR_PATH[#COLUMN]"


@dataclass(frozen=True, kw_only=True, eq=False)
class Task:
    """A model shape plus its data. Build one with `get_task`.

    Attributes:
        name: the task as given to `get_task` (``lm``, ``vision``, ``text:PATH``, ``hf:...``).
        kind: ``"lm"`` (byte-level language model) or ``"vision"`` (image classifier).
        preset: ``tiny`` | ``small`` | ``base``.
        seed: decides the order of training batches (and, through `train`, the initial weights).
        batch_size: sequences (LM) or images (vision) per update.
        model: the model shape.
        description: one line saying what the data is, for reports.
        info: facts about the data for results (Python version and corpus size for ``lm``, split sizes, ...).
        items_per_batch: tokens (LM: bytes) or images per training batch, for throughput.
        train_data, val_data: LM: uint8 byte tensors; vision: float32 images ``(N, 8, 8)`` in [0, 1].
        train_labels, val_labels: vision only: int64 class ids.
    """

    name: str
    kind: str
    preset: str
    seed: int
    batch_size: int
    model: ModelConfig
    description: str
    info: dict[str, Any]
    train_data: torch.Tensor
    val_data: torch.Tensor
    train_labels: torch.Tensor | None = None
    val_labels: torch.Tensor | None = None

    @property
    def items_per_batch(self) -> int:
        return self.batch_size * (self.model.context if self.kind == "lm" else 1)

    def build_model(self) -> nn.Module:
        """A freshly initialised model for this task, drawn from torch's global RNG."""
        from lrlab.bench.model import build_model  # imports torch: keeps `import lrlab.bench.tasks` light

        return build_model(self.model)

    def get_batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The training batch of update ``step`` (0-based): ``(inputs, targets)``, a pure function of
        ``(self.seed, step)``. LM: ``batch_size`` random windows of ``context + 1`` bytes, inputs and targets
        shifted by one, int64 ``(B, T)``. Vision: ``batch_size`` images drawn with replacement ``(B, 8, 8)`` and
        their labels ``(B,)``."""
        import torch

        rng = np.random.default_rng((self.seed, step))
        if self.kind == "lm":
            T = self.model.context
            starts = torch.from_numpy(rng.integers(0, len(self.train_data) - T, size=self.batch_size))
            xy = self.train_data[starts[:, None] + torch.arange(T + 1)].long()
            return xy[:, :-1], xy[:, 1:]
        assert self.train_labels is not None
        idx = torch.from_numpy(rng.integers(0, len(self.train_data), size=self.batch_size))
        return self.train_data[idx], self.train_labels[idx]

    def val_batches(self, n_batches: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Fixed validation batches: ``n_batches * batch_size`` examples spread evenly over the validation split
        (LM: windows with evenly spaced starts; vision: the first images of the split, all of them if it is
        smaller). They do not depend on the seed."""
        import torch

        n = n_batches * self.batch_size
        if self.kind == "lm":
            T = self.model.context
            starts = torch.from_numpy(np.linspace(0, len(self.val_data) - T - 1, n).round().astype(np.int64))
            xy = self.val_data[starts[:, None] + torch.arange(T + 1)].long()
            xs, ys = xy[:, :-1], xy[:, 1:]
        else:
            assert self.val_labels is not None
            xs, ys = self.val_data[:n], self.val_labels[:n]
        return list(zip(xs.split(self.batch_size), ys.split(self.batch_size)))

    def evaluate(self, model: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, float]:
        """Mean validation loss over ``batches`` (nats per token, i.e. per byte, for LM tasks) under key ``loss``,
        plus ``bits_per_byte`` (LM) or ``accuracy`` in [0, 1] (vision)."""
        import torch
        import torch.nn.functional as F

        total, correct, count = 0.0, 0, 0
        model.eval()
        with torch.no_grad():
            for x, y in batches:
                logits = model(x).flatten(0, -2)
                total += float(F.cross_entropy(logits, y.flatten(), reduction="sum"))
                correct += int((logits.argmax(-1) == y.flatten()).sum())
                count += y.numel()
        model.train()
        loss = total / count
        if self.kind == "lm":
            return {"loss": loss, "bits_per_byte": loss / math.log(2)}
        return {"loss": loss, "accuracy": correct / count}


def get_task(name: str, preset: str = "tiny", seed: int = 0, *, batch_size: int | None = None) -> Task:
    """Load a task.

    Args:
        name: ``lm`` | ``vision`` | ``text:PATH`` | ``hf:NAME_OR_PATH`` | ``hf:NAME_OR_PATH#COLUMN``.
        preset: ``tiny`` | ``small`` | ``base`` (see `PRESETS`).
        seed: integer >= 0; decides the order of training batches.
        batch_size: sequences or images per update (>= 1); None: the preset's.

    Returns:
        The `Task`. Raises `LrlabError` for an unknown name or preset, a missing or too small file, missing
        standard-library files, or a dataset without a usable text column.
    """
    check_task_name(name)
    if preset not in PRESET_NAMES:
        raise LrlabError(f"preset {preset!r} is not supported; choose from {', '.join(PRESET_NAMES)}")
    seed = check.whole("seed", seed)
    if batch_size is not None:
        batch_size = check.whole("batch_size", batch_size, minimum=1)
    if name == "vision":
        return _vision_task(preset, seed, batch_size)
    if name == "lm":
        train, val, description, info = _stdlib_corpus(sysconfig.get_path("stdlib"))
    elif name.startswith("text:") and name[5:]:
        train, val, description, info = _text_file(name[5:])
    elif name.startswith("hf:") and name[3:]:
        train, val, description, info = _hf_dataset(name[3:])
    else:
        raise LrlabError(f"task {name!r} is not supported; choose from {TASK_FORMS}")
    return _byte_task(name, train, val, description, info, preset, seed, batch_size)


def check_task_name(name: object) -> str:
    """``name`` when it has one of the forms of `TASK_FORMS` (the data itself is not read: see `check_data`)."""
    if not (isinstance(name, str) and (name in ("lm", "vision") or (name.startswith(("text:", "hf:"))
                                                                    and name.split(":", 1)[1].strip()))):
        shown = repr(name) if len(repr(name)) <= 80 else repr(name)[:77] + "..."
        raise LrlabError(f"task {shown} is not supported; choose from {TASK_FORMS}")
    return name


def data_source(name: str) -> str:
    """What task ``name`` reads, in words, without reading it (a resumed comparison says it before it reads)."""
    check_task_name(name)
    if name == "lm":
        return f"the source of {len(STDLIB_CORPUS)} standard-library modules in {sysconfig.get_path('stdlib')}"
    if name == "vision":
        return "scikit-learn's bundled 8x8 digits"
    if name.startswith("text:"):
        return f"the text file {Path(name[5:]).expanduser().absolute()!s}"
    dataset = name[3:].partition("#")[0]
    if Path(dataset).expanduser().exists():
        return f"the Hugging Face dataset saved in {Path(dataset).expanduser().absolute()!s}"
    return f"the Hugging Face dataset {dataset!r} (downloaded if it is not in the local cache)"


def check_data(name: str, preset: str = "tiny") -> dict[str, Any]:
    """Read task ``name``'s data as `get_task` will, without building tensors (torch is not imported), and check
    that it can train the ``preset`` model: the file exists, is readable UTF-8 text and both its splits hold one
    sequence at least. Returns `data_info`. Callers run it before they create any file."""
    check_task_name(name)
    if preset not in PRESET_NAMES:
        raise LrlabError(f"preset {preset!r} is not supported; choose from {', '.join(PRESET_NAMES)}")
    info = data_info(name)
    if name != "vision":
        _check_size(name, info["train_bytes"], info["val_bytes"], preset)
    return info


def _check_size(name: str, train_bytes: int, val_bytes: int, preset: str) -> None:
    p = PRESETS["lm"][preset]
    need = p.model.context + 1
    for split, size in (("training", train_bytes), ("validation", val_bytes)):
        if size < need:
            raise LrlabError(f"task {name!r}: the {split} split holds {size} bytes; the {preset} preset needs at "
                             f"least {need} (one sequence of context {p.model.context} + 1)")


def data_info(name: str) -> dict[str, Any]:
    """`Task.info` of task ``name`` (any preset, any seed) without building tensors: torch is not imported."""
    if name == "vision":
        return _vision_split()[4]
    if name == "lm":
        return dict(_stdlib_corpus(sysconfig.get_path("stdlib"))[3])
    if name.startswith("text:") and name[5:]:
        return _text_file(name[5:])[3]
    if name.startswith("hf:") and name[3:]:
        return _hf_dataset(name[3:])[3]
    raise LrlabError(f"task {name!r} is not supported; choose from {TASK_FORMS}")


def data_fingerprint(info: dict[str, Any]) -> dict[str, Any]:
    """What a resumed run must share with the original besides its settings: the Python version (the ``lm`` corpus
    is the interpreter's own standard library) and ``corpus_sha256``, the SHA-256 of the data (``info`` is a
    `Task.info`): the corpus of a byte-level task, the images and labels of ``vision``."""
    return {"python": platform.python_version(),
            "corpus_sha256": info.get("corpus_sha256", info.get("data_sha256"))}


# ------------------------------------------------------------------------------------------------ byte tasks


def _byte_task(name: str, train: bytes, val: bytes, description: str, info: dict[str, Any], preset: str, seed: int,
               batch_size: int | None) -> Task:
    import torch

    p = PRESETS["lm"][preset]
    _check_size(name, len(train), len(val), preset)
    return Task(name=name, kind="lm", preset=preset, seed=seed, batch_size=batch_size or p.batch_size,
                model=p.model, description=description, info=info,
                train_data=torch.frombuffer(bytearray(train), dtype=torch.uint8),
                val_data=torch.frombuffer(bytearray(val), dtype=torch.uint8))


def _cut(data: bytes) -> tuple[bytes, bytes]:
    """Split bytes into head (training) and tail (validation) at 1 - VAL_FRACTION."""
    k = len(data) - math.ceil(len(data) * VAL_FRACTION)
    return data[:k], data[k:]


@lru_cache(maxsize=4)
def _stdlib_corpus(stdlib: str) -> tuple[bytes, bytes, str, dict[str, Any]]:
    root = Path(stdlib)
    paths = [root / rel for rel in STDLIB_CORPUS]
    missing = [rel for rel, p in zip(STDLIB_CORPUS, paths) if not p.is_file()]
    if missing:
        raise LrlabError(
            f"task 'lm' reads its corpus from the standard library's source in {stdlib!r}, but "
            f"{len(missing)} of its {len(STDLIB_CORPUS)} files are missing there: {', '.join(missing)}; this Python "
            f"({platform.python_version()}) ships without them — use task text:PATH with a text file instead")
    heads, tails = zip(*(_cut(read_bytes(p, what="standard-library source")) for p in paths))
    train, val = b"".join(heads), b"".join(tails)
    digest = hashlib.sha256(train + val).hexdigest()
    version = platform.python_version()
    info = {"python": version, "corpus_files": len(paths), "corpus_bytes": len(train) + len(val),
            "train_bytes": len(train), "val_bytes": len(val), "corpus_sha256": digest}
    description = (f"byte-level LM on the source of {len(paths)} Python {version} standard-library modules "
                   f"({len(train) + len(val):,} bytes: {len(train):,} train / {len(val):,} validation, "
                   f"sha256 {digest[:12]})")
    return train, val, description, info


def _text_file(path_text: str) -> tuple[bytes, bytes, str, dict[str, Any]]:
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise LrlabError(f"task 'text:{path_text}': file {str(path)!r} does not exist or is not a file")
    data = read_bytes(path, what=f"the corpus of task 'text:{path_text}'")
    if not data:
        raise LrlabError(f"task 'text:{path_text}': file {str(path)!r} is empty; expected UTF-8 text to train on")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise LrlabError(f"task 'text:{path_text}': file {str(path)!r} is not UTF-8 text "
                         f"(invalid byte at offset {e.start})") from None
    train, val = _cut(data)
    digest = hashlib.sha256(data).hexdigest()
    info = {"path": str(path), "corpus_bytes": len(data), "train_bytes": len(train), "val_bytes": len(val),
            "corpus_sha256": digest}
    description = (f"byte-level LM on {path.name} ({len(data):,} bytes: {len(train):,} train / {len(val):,} "
                   f"validation, sha256 {digest[:12]})")
    return train, val, description, info


def _hf_dataset(spec: str) -> tuple[bytes, bytes, str, dict[str, Any]]:
    name, _, column = spec.partition("#")
    try:
        import datasets
    except ModuleNotFoundError:
        raise LrlabError(f"task 'hf:{spec}' needs the datasets package: pip install 'lrlab[hf]'") from None
    try:
        if Path(name).expanduser().exists():
            loaded = datasets.load_from_disk(str(Path(name).expanduser()))
        else:
            loaded = datasets.load_dataset(name)
    except Exception as e:  # the library raises many types (not found, offline, bad format): report them as one
        raise LrlabError(f"task 'hf:{spec}': could not load dataset {name!r}: {e}") from e
    if isinstance(loaded, datasets.DatasetDict):
        splits = list(loaded)
        train_split = "train" if "train" in loaded else splits[0]
        val_split = next((s for s in ("validation", "valid", "test") if s in loaded and s != train_split), None)
        train_ds, val_ds = loaded[train_split], (loaded[val_split] if val_split else None)
    else:
        train_split, val_split, train_ds, val_ds = "(single)", None, loaded, None
    column = column or _text_column(train_ds, spec)
    if column not in train_ds.column_names:
        raise LrlabError(f"task 'hf:{spec}': column {column!r} is not in the dataset; columns: "
                         f"{', '.join(train_ds.column_names)}")
    text = "\n".join(str(t) for t in train_ds[column]).encode("utf-8")
    if val_ds is not None:
        train, val = text, "\n".join(str(t) for t in val_ds[column]).encode("utf-8")
    else:
        train, val = _cut(text)
    info = {"dataset": name, "column": column, "train_split": train_split, "val_split": val_split or "last 10 %",
            "train_bytes": len(train), "val_bytes": len(val),
            "corpus_sha256": hashlib.sha256(train + val).hexdigest()}
    description = (f"byte-level LM on Hugging Face dataset {name!r} column {column!r} ({len(train):,} train bytes "
                   f"from split {train_split!r} / {len(val):,} validation bytes from "
                   f"{repr(val_split) if val_split else 'its last 10 %'})")
    return train, val, description, info


def _text_column(ds: Any, spec: str) -> str:
    strings = [c for c, f in ds.features.items() if getattr(f, "dtype", None) in ("string", "large_string")]
    if "text" in strings:
        return "text"
    if len(strings) == 1:
        return strings[0]
    raise LrlabError(f"task 'hf:{spec}': cannot tell which column holds the text (string columns: "
                     f"{', '.join(strings) or 'none'}); name it as hf:NAME#COLUMN")


# ------------------------------------------------------------------------------------------------- vision


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images.astype(np.float32) / 16.0, d.target.astype(np.int64)


#: Validation images of the ``vision`` task (the rest of the 1,797 train).
DIGITS_VAL = 360


def _vision_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    images, labels = _digits()
    # a fixed split, the same for every seed: a permutation drawn once from seed 0
    order = np.random.default_rng(0).permutation(len(images))
    train_idx, val_idx = order[:-DIGITS_VAL], order[-DIGITS_VAL:]
    info = {"dataset": "sklearn digits", "train_images": len(train_idx), "val_images": len(val_idx), "classes": 10,
            "data_sha256": hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()}
    return images, labels, train_idx, val_idx, info


def _vision_task(preset: str, seed: int, batch_size: int | None) -> Task:
    import torch

    images, labels, train_idx, val_idx, info = _vision_split()
    p = PRESETS["vision"][preset]
    description = (f"ViT on scikit-learn's 8x8 digits ({len(train_idx):,} train / {len(val_idx):,} validation "
                   f"images, 10 classes)")
    return Task(name="vision", kind="vision", preset=preset, seed=seed, batch_size=batch_size or p.batch_size,
                model=p.model, description=description, info=info,
                train_data=torch.from_numpy(images[train_idx]), val_data=torch.from_numpy(images[val_idx]),
                train_labels=torch.from_numpy(labels[train_idx]), val_labels=torch.from_numpy(labels[val_idx]))
