"""Timestep and text conditioning of the DiT (SANA-WM §2.2 timestep embedding, §2.6 text).

- `TimestepEmbedder`: sinusoidal features (256) -> Linear -> SiLU -> Linear, per frame.
- `CaptionEmbedder`: Mlp(text_dim -> C -> C, GELU-tanh) then RMSNorm with weight init 0.01 (Sana `y_norm`).
- `CrossAttention`: image tokens attend to the caption tokens; full-channel q/k RMSNorm (Sana `cross_norm`).

The caption dropout for classifier-free guidance (`class_dropout_prob`) belongs to the training loop, not here.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from camworld.modules.norms import RMSNorm


def timestep_features(t: torch.Tensor, freq_dim: int = 256, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal features [cos | sin] of float timesteps. t [...] -> [..., freq_dim]."""
    half = freq_dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[..., None] * freqs
    features = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if freq_dim % 2:
        features = F.pad(features, (0, 1))
    return features


class TimestepEmbedder(nn.Module):
    """t [...] (t = sigma * 1000) -> [..., dim].

    Sana casts t to long before the sinusoid (§2.2); we keep it float on purpose: shifted and few-step schedules
    put several steps within one integer t near sigma = 1 (e.g. 999.4 and 999.8), which rounding would merge.
    """

    def __init__(self, dim: int, freq_dim: int = 256):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        features = timestep_features(t, self.freq_dim)
        return self.mlp(features.to(self.mlp[0].weight.dtype))


class CaptionEmbedder(nn.Module):
    """Text-encoder states [B, L, text_dim] -> caption tokens [B, L, C] (§2.6 `y_embedder` + `y_norm`)."""

    def __init__(self, text_dim: int, dim: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(text_dim, dim), nn.GELU(approximate="tanh"), nn.Linear(dim, dim))
        self.norm = RMSNorm(dim, init=0.01)

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        return self.norm(self.mlp(text))


class CrossAttention(nn.Module):
    """Sana `MultiHeadCrossAttention` with `qk_norm`: q from x, k/v from text, RMSNorm on the full C channels of
    q and k (before the head split), softmax attention with a key-padding mask, output projection.

    A batch row whose text mask is all False attends to nothing and returns exact zeros (not NaN, not the bias).
    """

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.q_linear = nn.Linear(dim, dim)
        self.kv_linear = nn.Linear(dim, 2 * dim)
        self.q_norm = RMSNorm(dim)
        self.k_norm = RMSNorm(dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        """x [B, N, C], text [B, L, C], text_mask [B, L] bool (True = real token) -> [B, N, C]."""
        b, n, c = x.shape
        h = self.heads
        q = self.q_norm(self.q_linear(x)).view(b, n, h, c // h).transpose(1, 2)
        k, v = self.kv_linear(text).chunk(2, dim=-1)
        k = self.k_norm(k).view(b, -1, h, c // h).transpose(1, 2)
        v = v.reshape(b, -1, h, c // h).transpose(1, 2)
        has_text = text_mask.any(dim=-1)
        # an all-False row would softmax over nothing (NaN); let it attend everywhere, then zero it below
        allowed = text_mask | ~has_text[:, None]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed[:, None, None, :])
        out = self.proj(out.transpose(1, 2).reshape(b, n, c))
        return out * has_text.to(out.dtype)[:, None, None]
