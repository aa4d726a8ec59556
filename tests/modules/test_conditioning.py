"""Conditioning and small modules: RMSNorm, modulate, TimestepEmbedder, CaptionEmbedder, CrossAttention (masks,
all-False rows, explicit-softmax reference), PluckerEmbedder init, zero_linear zero init."""

import math

import pytest
import torch
import torch.nn.functional as F

from camworld.modules.conditioning import CaptionEmbedder, CrossAttention, TimestepEmbedder, timestep_features
from camworld.modules.norms import RMSNorm, modulate, zero_linear
from camworld.modules.plucker_branch import PluckerEmbedder


def test_rmsnorm_unit_rms_and_init():
    x = torch.randn(3, 5, 16) * 7 + 2
    norm = RMSNorm(16)
    out = norm(x)
    torch.testing.assert_close(out.pow(2).mean(-1), torch.ones(3, 5), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(RMSNorm(16, init=0.01)(x), 0.01 * out)
    assert RMSNorm(16).weight.requires_grad
    assert RMSNorm(16)(x.bfloat16()).dtype == torch.bfloat16


def test_modulate():
    x, shift, scale = torch.randn(2, 4, 8), torch.randn(2, 1, 8), torch.randn(2, 1, 8)
    torch.testing.assert_close(modulate(x, shift, scale), x + x * scale + shift)
    torch.testing.assert_close(modulate(x, torch.zeros(8), torch.zeros(8)), x)


def test_timestep_features_formula_and_float_time():
    t = torch.tensor([0.0, 1.0, 999.4, 999.8])
    features = timestep_features(t, 8)
    freqs = torch.tensor([math.exp(-math.log(10000.0) * i / 4) for i in range(4)])
    torch.testing.assert_close(features[:, :4], torch.cos(t[:, None] * freqs))
    torch.testing.assert_close(features[:, 4:], torch.sin(t[:, None] * freqs))
    assert not torch.allclose(features[2], features[3]), "fractional t must not be rounded away"


def test_timestep_embedder_per_frame_shapes():
    emb = TimestepEmbedder(32)
    sigma = torch.rand(2, 5)
    out = emb(sigma * 1000)
    assert out.shape == (2, 5, 32)
    torch.testing.assert_close(out[1, 3], emb((sigma[1, 3] * 1000).reshape(1))[0])
    assert isinstance(emb.mlp[1], torch.nn.SiLU) and emb.mlp[0].in_features == 256


def test_caption_embedder_shape_and_small_output_at_init():
    emb = CaptionEmbedder(24, 32)
    text = torch.randn(2, 7, 24)
    out = emb(text)
    assert out.shape == (2, 7, 32)
    torch.testing.assert_close(emb.norm.weight, torch.full((32,), 0.01))
    torch.testing.assert_close(out.pow(2).mean(-1), torch.full((2, 7), 1e-4), rtol=1e-3, atol=1e-7)
    hidden = F.gelu(emb.mlp[0](text), approximate="tanh")
    torch.testing.assert_close(out, emb.norm(emb.mlp[2](hidden)))


def _cross_reference(attn, x, text, mask):
    """Explicit softmax over the allowed keys, batch row by batch row; rows without text give zeros."""
    b, n, c = x.shape
    h = attn.heads
    out = torch.zeros_like(x)
    for i in range(b):
        keep = mask[i]
        if not keep.any():
            continue
        q = attn.q_norm(attn.q_linear(x[i])).view(n, h, -1).transpose(0, 1)
        k, v = attn.kv_linear(text[i, keep]).chunk(2, dim=-1)
        k = attn.k_norm(k).view(-1, h, c // h).transpose(0, 1)
        v = v.reshape(-1, h, c // h).transpose(0, 1)
        weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(c // h), dim=-1)
        out[i] = attn.proj((weights @ v).transpose(0, 1).reshape(n, c))
    return out


def test_cross_attention_matches_reference_with_padding_and_empty_rows():
    torch.manual_seed(0)
    attn = CrossAttention(32, 4).double()
    x = torch.randn(3, 6, 32, dtype=torch.float64, requires_grad=True)
    text = torch.randn(3, 5, 32, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]], dtype=torch.bool)
    out = attn(x, text, mask)
    ref = _cross_reference(attn, x, text, mask)
    assert out.shape == (3, 6, 32)
    torch.testing.assert_close(out, ref)
    assert torch.count_nonzero(out[2]) == 0
    grad_out = torch.randn_like(out)
    got = torch.autograd.grad((out * grad_out).sum(), [x, text, *attn.parameters()])
    want = torch.autograd.grad((ref * grad_out).sum(), [x, text, *attn.parameters()], allow_unused=True)
    for a, b in zip(got, want):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, torch.zeros_like(a) if b is None else b)


def test_cross_attention_ignores_padded_tokens():
    torch.manual_seed(0)
    attn = CrossAttention(16, 2)
    x, text = torch.randn(1, 4, 16), torch.randn(1, 6, 16)
    mask = torch.tensor([[True, True, True, False, False, False]])
    changed = text.clone()
    changed[:, 3:] = torch.randn(1, 3, 16) * 100
    torch.testing.assert_close(attn(x, text, mask), attn(x, changed, mask))
    torch.testing.assert_close(attn(x, text, mask), attn(x, text[:, :3], mask[:, :3]))


def test_cross_attention_rejects_indivisible_heads():
    with pytest.raises(ValueError, match="divisible"):
        CrossAttention(30, 4)


def test_zero_linear_starts_at_zero_and_learns():
    layer = zero_linear(8, 8)
    x = torch.randn(3, 8)
    out = layer(x)
    assert torch.count_nonzero(out) == 0
    out.sum().backward()
    assert layer.weight.grad.abs().sum() > 0, "zero init must still learn"
    no_bias = zero_linear(8, 8, bias=False)
    assert no_bias.bias is None and torch.count_nonzero(no_bias(x)) == 0


def test_plucker_embedder_is_not_zero_init():
    """Its per-block projections are zero-init; a zero embedder too would make both gradients zero forever."""
    emb = PluckerEmbedder(24, 32)
    out = emb(torch.randn(2, 3, 4, 5, 24))
    assert out.shape == (2, 3, 4, 5, 32)
    assert out.abs().mean() > 0.05
