"""The fine camera branch's shared input embedding (SANA-WM §3.3).

Plücker rays of the `stride` raw frames behind each latent frame are packed into 6 * stride channels per latent
token (`camworld.camera.pack_plucker`) and embedded once by a zero-init per-token Linear (Sana `plucker_embedder`,
a PatchEmbedMS3D with patch (1, 1, 1)). Each block then adds its own zero-init `Linear(C, C)` of this embedding
right after self-attention (`camworld.modules.norms.zero_linear`), so the pretrained model is unchanged at init.
"""

from __future__ import annotations

import torch
from torch import nn

from camworld.modules.norms import zero_linear


class PluckerEmbedder(nn.Module):
    """plucker [B, T, h, w, channels] -> [B, T, h, w, C]; weight and bias start at zero."""

    def __init__(self, channels: int, dim: int):
        super().__init__()
        self.proj = zero_linear(channels, dim)

    def forward(self, plucker: torch.Tensor) -> torch.Tensor:
        return self.proj(plucker.to(self.proj.weight.dtype))
