"""The fine camera branch's shared input embedding (SANA-WM §3.3).

Plücker rays of the `stride` raw frames behind each latent frame are packed into 6 * stride channels per latent
token (`camworld.camera.pack_plucker`) and embedded once by a per-token Linear (Sana `plucker_embedder`, a
PatchEmbedMS3D with patch (1, 1, 1)). Each block then adds its own zero-init `Linear(C, C)` of this embedding
right after self-attention (`camworld.modules.norms.zero_linear`), so the pretrained model is unchanged at init.

Deliberate difference from sana_wm.md §3.3, which lists the embedder as zero-init too: with both the embedder and
every per-block projection at exactly zero, each one's gradient is the other's weight times the upstream gradient,
so both stay at zero forever (a saddle Adam cannot leave). Measured on camworld's first bundled weights: after
1180 camera steps every `plucker_proj.weight` was still exactly 0. The embedder therefore keeps torch's default
Linear init; the zero-init per-block projections alone keep the model unchanged at init.
"""

from __future__ import annotations

import torch
from torch import nn


class PluckerEmbedder(nn.Module):
    """plucker [B, T, h, w, channels] -> [B, T, h, w, C]; torch's default Linear init (see the module docstring)."""

    def __init__(self, channels: int, dim: int):
        super().__init__()
        self.proj = nn.Linear(channels, dim)

    def forward(self, plucker: torch.Tensor) -> torch.Tensor:
        return self.proj(plucker.to(self.proj.weight.dtype))
