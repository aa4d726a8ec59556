"""Degraded conditioning frames for training: the clean first latent replaced, for some clips, by a blurred and
noised copy (our addition, not in SANA-WM).

Why: `--mode ar` makes long videos in segments, and each segment starts from the last frame the previous one
generated, which is blurrier than any frame the model saw as its condition in training (there frame 0 is always a
true frame). The model copies that blur forward, and after a few hand-offs the world has dissolved. Training with
degraded first latents and true later frames asks the model to continue a world from an imperfect frame.

The degradation works on latents [B, h, w, C]: a per-clip strength u in [0, 1) blends the latent with its 3×3
spatial average (a 24-pixel blur through the tokenizer's 8× downsampling) and adds Gaussian noise of std
u · noise_frac · (the latent's own std).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def blur_latent(z: torch.Tensor) -> torch.Tensor:
    """3×3 spatial mean of z [B, h, w, C] with replicated borders (a constant field stays itself)."""
    x = z.permute(0, 3, 1, 2)
    x = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    return x.permute(0, 2, 3, 1)


def degrade_first_latent(z: torch.Tensor, strength: torch.Tensor, noise: torch.Tensor,
                         noise_frac: float) -> torch.Tensor:
    """z [B, h, w, C] blended with its blur and noised, clip b by strength[b] in [0, 1); strength 0 returns z[b]
    exactly. noise [B, h, w, C] standard normal."""
    u = strength.to(z)[:, None, None, None]
    scale = z.flatten(1).std(dim=1)[:, None, None, None]
    return torch.where(u > 0, (1 - u) * z + u * blur_latent(z) + u * noise_frac * scale * noise.to(z), z)
