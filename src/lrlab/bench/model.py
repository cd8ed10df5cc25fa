"""The two tiny Transformers the built-in tasks train, written plainly in the style of nanoGPT's ``model.py``.

- `GPT`: a causal byte-level language model. Pre-LayerNorm blocks, learned position embeddings, the output head
  tied to the token embedding, the residual projections initialised with std ``0.02 / sqrt(2 * n_layers)``.
- `ViT`: a Vision Transformer for small square images: non-overlapping patches are linear-embedded as tokens, a
  learned CLS token is prepended, the same blocks run without a causal mask, and a linear head reads the CLS token.

Neither uses dropout: runs are short and, without it, a run's numbers depend only on its weights and its batches,
which keeps resume bitwise exact. `param_groups` splits parameters into decay / no-decay groups for the optimizer.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lrlab.bench.presets import ModelConfig


class SelfAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int, causal: bool) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.causal = causal
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        # (B, T, C) -> (B, heads, T, head_dim)
        q, k, v = (z.view(B, T, self.n_heads, C // self.n_heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class Block(nn.Module):
    """Pre-LN Transformer block: ``x + attn(ln(x))``, then ``x + mlp(ln(x))``."""

    def __init__(self, d_model: int, n_heads: int, mlp_ratio: int, causal: bool) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = SelfAttention(d_model, n_heads, causal)
        self.ln2 = nn.LayerNorm(d_model)
        self.fc = nn.Linear(d_model, mlp_ratio * d_model)
        self.proj = nn.Linear(mlp_ratio * d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.proj(F.gelu(self.fc(self.ln2(x))))


def _init_weights(model: nn.Module, n_layers: int) -> None:
    """nanoGPT's initialisation: N(0, 0.02) for linear and embedding weights, zero biases, and the projections
    that write into the residual stream scaled by 1/sqrt(2 * n_layers) (GPT-2)."""
    for name, p in model.named_parameters():
        if name.endswith("bias"):
            nn.init.zeros_(p)
        elif p.dim() >= 2 or name.endswith(("pos", "cls")):
            std = 0.02 / math.sqrt(2 * n_layers) if name.endswith("proj.weight") else 0.02
            nn.init.normal_(p, mean=0.0, std=std)
        # LayerNorm weights stay at their default 1.0


class GPT(nn.Module):
    """Causal Transformer language model. ``forward(idx)`` takes token ids ``(B, T)`` with ``T <= context`` and
    returns logits ``(B, T, vocab_size)``; position ``i`` sees tokens ``0..i`` only."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        d = config.d_model
        self.tok = nn.Embedding(config.vocab_size, d)
        self.pos = nn.Parameter(torch.zeros(config.context, d))
        self.blocks = nn.ModuleList(
            [Block(d, config.n_heads, config.mlp_ratio, causal=True) for _ in range(config.n_layers)]
        )
        self.ln = nn.LayerNorm(d)
        _init_weights(self, config.n_layers)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.tok(idx) + self.pos[: idx.shape[1]]
        for block in self.blocks:
            x = block(x)
        return F.linear(self.ln(x), self.tok.weight)  # head tied to the token embedding


class ViT(nn.Module):
    """Vision Transformer. ``forward(images)`` takes ``(B, image_size, image_size)`` floats and returns class
    logits ``(B, n_classes)`` read from the CLS token."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        d, p = config.d_model, config.patch_size
        n_patches = (config.image_size // p) ** 2
        self.patch = nn.Linear(p * p, d)
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.pos = nn.Parameter(torch.zeros(n_patches + 1, d))
        self.blocks = nn.ModuleList(
            [Block(d, config.n_heads, config.mlp_ratio, causal=False) for _ in range(config.n_layers)]
        )
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, config.n_classes)
        _init_weights(self, config.n_layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        B, H, W = images.shape
        p = self.config.patch_size
        # (B, H, W) -> (B, H/p * W/p, p*p): row-major non-overlapping patches
        patches = images.reshape(B, H // p, p, W // p, p).transpose(2, 3).reshape(B, -1, p * p)
        x = torch.cat([self.cls.expand(B, -1, -1), self.patch(patches)], dim=1) + self.pos
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln(x[:, 0]))


def build_model(config: ModelConfig) -> nn.Module:
    """A freshly initialised `GPT` or `ViT` (drawn from torch's global RNG: seed it first)."""
    return GPT(config) if config.kind == "gpt" else ViT(config)


def count_params(model: nn.Module) -> int:
    """Number of distinct parameter elements (a tied weight counts once)."""
    return sum(p.numel() for p in model.parameters())


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Optimizer parameter groups: the weights of `nn.Linear` layers get ``weight_decay``; biases, LayerNorm
    weights, the token embedding (and with it the GPT head tied to it), position embeddings and the CLS token get
    none. nanoGPT's ``configure_optimizers`` differs: it decays every tensor of two or more dimensions, embeddings
    included. Every parameter lands in exactly one group; a tied weight is listed once (as an embedding)."""
    no_decay_ids = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    decay_ids = {id(m.weight) for m in model.modules() if isinstance(m, nn.Linear)} - no_decay_ids
    decay = [p for p in model.parameters() if id(p) in decay_ids]
    no_decay = [p for p in model.parameters() if id(p) not in decay_ids]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
