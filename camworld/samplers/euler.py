"""The per-frame Euler update shared by every sampler, with clean condition frames held fixed (sana_wm.md §2.6,
§10.2 item 8).

A sampler's σ list runs from σ_0 (1 = pure noise, or the refiner's 0.909375) down to 0. Frame 0 of an image-to-video
rollout is the encoded input image: it is fed at σ = 0 on every call and never updated, so it stays bit-identical
(LTX-style `condition_frame_info={0: 0.0}`). The update itself is `camworld.flow.schedule.euler_step`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from camworld.errors import UserError
from camworld.flow.schedule import euler_step


def check_sigmas(sigmas: Sequence[float] | torch.Tensor) -> list[float]:
    """The σ list as floats; it must be strictly decreasing within [0, 1] and end at 0."""
    values = [float(s) for s in (sigmas.tolist() if isinstance(sigmas, torch.Tensor) else sigmas)]
    if len(values) < 2:
        raise UserError(f"need at least two sigmas (one Euler step), got {values}")
    if values[0] > 1.0 or values[-1] != 0.0:
        raise UserError(f"sigmas must start at most at 1 and end at 0, got {values}")
    if any(b >= a for a, b in zip(values, values[1:])):
        raise UserError(f"sigmas must be strictly decreasing, got {values}")
    return values


def start_latents(latents: torch.Tensor, first_frame: torch.Tensor | None) -> torch.Tensor:
    """A copy of the initial latents [B, T, h, w, C] with frame 0 replaced by first_frame [B, 1, h, w, C] if given."""
    if latents.dim() != 5 or latents.shape[1] < 1:
        raise UserError(f"latents must be [B, T >= 1, h, w, C], got {list(latents.shape)}")
    x = latents.clone()
    if first_frame is not None:
        expected = (latents.shape[0], 1, *latents.shape[2:])
        if tuple(first_frame.shape) != expected:
            raise UserError(f"first frame latent must be {list(expected)}, got {list(first_frame.shape)}")
        x[:, :1] = first_frame.to(x)
    return x


def frozen_frames(num_frames: int, first_frame: bool, device: torch.device | str) -> torch.Tensor:
    """BoolTensor [T]: the frames held clean (only frame 0, and only when an image conditions the rollout)."""
    frozen = torch.zeros(num_frames, dtype=torch.bool, device=device)
    frozen[0] = first_frame
    return frozen


def frame_sigma(sigma: float, batch: int, frozen: torch.Tensor) -> torch.Tensor:
    """Per-frame noise levels [B, n]: `sigma` everywhere except 0 at the frozen frames (frozen: bool [n])."""
    level = torch.full((batch, frozen.shape[0]), sigma, dtype=torch.float32, device=frozen.device)
    return level.masked_fill(frozen, 0.0)


def euler_frames(
    x: torch.Tensor, v: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor, hold: torch.Tensor
) -> torch.Tensor:
    """x [B, n, h, w, C] moved from sigma to sigma_next ([B, n]) along v; frames where hold [n] is True are returned
    untouched (bit for bit: an Euler step with σ = σ_next = 0 could still turn −0.0 into +0.0)."""
    stepped = euler_step(x, v, sigma, sigma_next)
    return torch.where(hold[None, :, None, None, None], x, stepped)
