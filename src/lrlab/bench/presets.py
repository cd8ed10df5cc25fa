"""Size presets of the built-in tasks: the model shape (`ModelConfig`) and batch of ``tiny`` / ``small`` / ``base``.

Torch-free, so configs, tasks and the CLI can name a model without importing torch; `lrlab.bench.model` builds
it. Parameter counts and what each preset is for: docs/harness.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from lrlab.checks import check
from lrlab.errors import LrlabError


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """Shape of a model.

    Args:
        kind: ``"gpt"`` (causal LM over ``vocab_size`` tokens) or ``"vit"`` (classifier of ``image_size`` square
            images into ``n_classes``).
        d_model: width (>= 1, a multiple of ``n_heads``).
        n_layers: Transformer blocks (>= 1).
        n_heads: attention heads per block (>= 1).
        context: GPT only: tokens per sequence (>= 1).
        vocab_size: GPT only: number of token ids (256 for bytes).
        image_size: ViT only: side of the square image in pixels.
        patch_size: ViT only: side of a square patch in pixels; must divide ``image_size``.
        n_classes: ViT only: number of classes.
        mlp_ratio: hidden width of the MLP as a multiple of ``d_model``.
    """

    kind: str
    d_model: int
    n_layers: int
    n_heads: int
    context: int = 0
    vocab_size: int = 256
    image_size: int = 0
    patch_size: int = 0
    n_classes: int = 0
    mlp_ratio: int = 4

    def __post_init__(self) -> None:
        if self.kind not in ("gpt", "vit"):
            raise LrlabError(f"model kind must be 'gpt' or 'vit', got {self.kind!r}")
        sizes = {"d_model": self.d_model, "n_layers": self.n_layers, "n_heads": self.n_heads,
                 "mlp_ratio": self.mlp_ratio}
        if self.kind == "gpt":
            sizes.update(context=self.context, vocab_size=self.vocab_size)
        else:
            sizes.update(image_size=self.image_size, patch_size=self.patch_size, n_classes=self.n_classes)
        for name, value in sizes.items():
            object.__setattr__(self, name, check.whole(f"model {name}", value, minimum=1))
        if self.d_model % self.n_heads:
            raise LrlabError(f"model d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})")
        if self.kind == "vit" and self.image_size % self.patch_size:
            raise LrlabError(f"model patch_size ({self.patch_size}) must divide image_size ({self.image_size})")


@dataclass(frozen=True, kw_only=True)
class Preset:
    """Model shape and batch of a size preset (``batch_size`` is sequences for LM tasks, images for vision)."""

    model: ModelConfig
    batch_size: int


PRESETS: dict[str, dict[str, Preset]] = {
    "lm": {
        "tiny": Preset(model=ModelConfig(kind="gpt", d_model=32, n_layers=2, n_heads=2, context=32), batch_size=16),
        "small": Preset(model=ModelConfig(kind="gpt", d_model=64, n_layers=2, n_heads=4, context=64), batch_size=32),
        "base": Preset(model=ModelConfig(kind="gpt", d_model=128, n_layers=4, n_heads=4, context=128),
                       batch_size=32),
    },
    "vision": {
        "tiny": Preset(model=ModelConfig(kind="vit", d_model=32, n_layers=2, n_heads=2, image_size=8, patch_size=2,
                                         n_classes=10), batch_size=32),
        "small": Preset(model=ModelConfig(kind="vit", d_model=64, n_layers=2, n_heads=4, image_size=8, patch_size=2,
                                          n_classes=10), batch_size=64),
        "base": Preset(model=ModelConfig(kind="vit", d_model=128, n_layers=4, n_heads=4, image_size=8,
                                         patch_size=2, n_classes=10), batch_size=128),
    },
}
PRESET_NAMES: tuple[str, ...] = ("tiny", "small", "base")
