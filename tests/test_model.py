"""The tiny GPT and ViT: exact parameter counts per preset, causality, weight tying, patch order, initialisation,
and the decay / no-decay parameter groups."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lrlab.bench.model import GPT, ViT, build_model, count_params, param_groups
from lrlab.bench.presets import PRESETS, ModelConfig
from lrlab.errors import LrlabError


def gpt_params(d: int, layers: int, context: int, vocab: int = 256) -> int:
    # token + position embeddings, per block 12 d^2 + 13 d (two LayerNorms, qkv, attention proj, MLP), final LN;
    # the head is the token embedding
    return vocab * d + context * d + layers * (12 * d * d + 13 * d) + 2 * d


@pytest.mark.parametrize(
    ("kind", "preset", "expected"),
    [
        ("lm", "tiny", 34_688),
        ("lm", "small", 120_576),
        ("lm", "base", 842_496),
        ("vision", "tiny", 26_538),
        ("vision", "small", 102_218),
        ("vision", "base", 797_578),
    ],
    ids=["lm-tiny", "lm-small", "lm-base", "vision-tiny", "vision-small", "vision-base"],
)
def test_parameter_counts_per_preset(kind: str, preset: str, expected: int) -> None:
    config = PRESETS[kind][preset].model
    assert count_params(build_model(config)) == expected
    if kind == "lm":
        assert gpt_params(config.d_model, config.n_layers, config.context) == expected
    else:  # patch embedding, CLS, positions of 16 patches + CLS, blocks, final LN, 10-way head
        d = config.d_model
        assert 4 * d + d + d + 17 * d + config.n_layers * (12 * d * d + 13 * d) + 2 * d + 10 * d + 10 == expected


def test_gpt_is_causal_and_its_head_is_the_token_embedding() -> None:
    torch.manual_seed(0)
    model = GPT(ModelConfig(kind="gpt", d_model=32, n_layers=2, n_heads=2, context=16))
    idx = torch.randint(0, 256, (2, 16))
    changed = idx.clone()
    changed[:, 9] = (changed[:, 9] + 1) % 256
    a, b = model(idx), model(changed)
    assert a.shape == (2, 16, 256)
    assert torch.equal(a[:, :9], b[:, :9])  # positions before 9 cannot see token 9
    assert not torch.allclose(a[:, 9:], b[:, 9:])
    # tied head: logits are the final hidden states times the token embedding
    names = [n for n, _ in model.named_parameters()]
    assert not any("head" in n for n in names)
    with torch.no_grad():
        model.tok.weight[7].zero_()
    assert torch.count_nonzero(model(idx)[..., 7]) == 0


def test_gpt_takes_shorter_sequences() -> None:
    torch.manual_seed(0)
    model = GPT(ModelConfig(kind="gpt", d_model=32, n_layers=1, n_heads=2, context=16))
    idx = torch.randint(0, 256, (3, 16))
    assert torch.allclose(model(idx[:, :5]), model(idx)[:, :5], atol=1e-6)


def test_vit_embeds_row_major_patches_and_reads_the_cls_token() -> None:
    torch.manual_seed(0)
    model = ViT(PRESETS["vision"]["tiny"].model)
    images = torch.rand(4, 8, 8)
    seen: list[torch.Tensor] = []
    model.patch.register_forward_hook(lambda m, inp, out: seen.append(inp[0]))
    logits = model(images)
    assert logits.shape == (4, 10)
    # the same patches as F.unfold: 2x2 blocks in row-major order, pixels row-major inside a block
    expected = F.unfold(images[:, None], kernel_size=2, stride=2).transpose(1, 2)
    assert torch.equal(seen[0], expected)
    assert seen[0][0, 1].tolist() == images[0, 0:2, 2:4].flatten().tolist()


def test_initialisation_follows_nanogpt() -> None:
    torch.manual_seed(0)
    config = PRESETS["lm"]["base"].model
    model = build_model(config)
    params = dict(model.named_parameters())
    assert params["blocks.0.fc.weight"].std().item() == pytest.approx(0.02, rel=0.05)
    assert params["tok.weight"].std().item() == pytest.approx(0.02, rel=0.05)
    residual_std = 0.02 / math.sqrt(2 * config.n_layers)
    assert params["blocks.0.proj.weight"].std().item() == pytest.approx(residual_std, rel=0.05)
    assert params["blocks.0.attn.proj.weight"].std().item() == pytest.approx(residual_std, rel=0.05)
    assert torch.count_nonzero(params["blocks.0.fc.bias"]) == 0
    assert torch.equal(params["blocks.1.ln1.weight"], torch.ones(config.d_model))
    torch.manual_seed(0)
    again = build_model(config)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters()))


@pytest.mark.parametrize("kind", ["lm", "vision"])
def test_param_groups_split_linear_weights_from_the_rest(kind: str) -> None:
    model = build_model(PRESETS[kind]["tiny"].model)
    decay, no_decay = param_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    ids = [id(p) for p in decay["params"]] + [id(p) for p in no_decay["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())  # each parameter exactly once
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = sorted(names[id(p)] for p in decay["params"])
    assert all(n.endswith(("qkv.weight", "proj.weight", "fc.weight", "patch.weight", "head.weight"))
               for n in decayed)
    assert len(decayed) == 2 * 4 + (0 if kind == "lm" else 2)  # 4 linear layers per block (+ patch, head)
    kept = {names[id(p)] for p in no_decay["params"]}
    assert {"pos", "ln.weight", "ln.bias", "blocks.0.ln1.weight", "blocks.0.attn.qkv.bias"} <= kept
    assert ("tok.weight" in kept) == (kind == "lm") and ("cls" in kept) == (kind == "vision")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "rnn"}, "model kind must be 'gpt' or 'vit', got 'rnn'"),
        ({"d_model": 0}, "model d_model must be a whole number >= 1, got 0"),
        ({"n_heads": 3}, "model d_model (32) must be a multiple of n_heads (3)"),
        ({"kind": "vit", "image_size": 8, "patch_size": 3, "n_classes": 10}, "patch_size (3) must divide image_size"),
        ({"kind": "vit", "image_size": 8, "patch_size": 2}, "model n_classes must be a whole number >= 1, got 0"),
    ],
    ids=["kind", "width", "heads", "patch", "classes"],
)
def test_model_config_is_validated(kwargs: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"kind": "gpt", "d_model": 32, "n_layers": 1, "n_heads": 2, "context": 8}
    with pytest.raises(LrlabError) as e:
        ModelConfig(**{**base, **kwargs})  # type: ignore[arg-type]
    assert message in str(e.value)
