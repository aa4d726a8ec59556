"""Distribution matching distillation (DMD) in flow-matching form: the two losses of self-forcing distillation
(sana_wm.md §6.5; SANA-WM's released student was trained with LongSANA's `dmd_sana` objective, which is not public,
so this follows DMD / DMD2 / Self-Forcing as published).

A few-step generator G makes clean latents x₀ = G(ε). Both scores are velocity models (v = ε − x₀):
- the **real score** is the frozen teacher, the **fake score** (critic) a copy of it trained, with the ordinary
  flow-matching loss, on G's own samples, so it tracks G's distribution;
- at a noise level σ, x_σ = (1 − σ) x₀ + σ ε, each score's denoised estimate is x̂ = x_σ − σ v;
- the generator's gradient on x₀ is (x̂_fake − x̂_real) / mean|x₀ − x̂_real| (DMD's per-sample normaliser): it
  moves x₀ toward where the teacher would denoise it and away from where G's current distribution would. It is
  applied as the MSE between x₀ and the stop-gradient target x₀ − grad, whose gradient is exactly `grad` per element
  (times 1 / element count, from the mean).

Frames held clean (the conditioning image's latent) are fed at σ = 0 and left out of both losses.
"""

from __future__ import annotations

import torch

from camworld.flow.schedule import shift_sigma, velocity_target


def sample_dmd_sigma(batch: int, generator: torch.Generator, *, low: float, high: float, shift: float) -> torch.Tensor:
    """One σ per clip [B]: u ~ U[low, high], then the training shift (Self-Forcing draws DMD timesteps uniformly
    between its min and max step and shifts them the way the teacher was trained)."""
    u = low + (high - low) * torch.rand(batch, generator=generator)
    return shift_sigma(u, shift).float()


def frame_levels(sigma: torch.Tensor, frames: int, hold: torch.Tensor) -> torch.Tensor:
    """Per-frame σ [B, T] from one σ per clip [B], 0 at held frames (hold: bool [T])."""
    levels = sigma[:, None].expand(-1, frames).clone()
    return levels.masked_fill(hold.to(levels.device)[None], 0.0)


def denoised(x_sigma: torch.Tensor, v: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """x̂₀ = x_σ − σ v for latents [B, T, h, w, C] and per-frame σ [B, T]."""
    return x_sigma - sigma[:, :, None, None, None] * v


def dmd_direction(x0: torch.Tensor, x0_real: torch.Tensor, x0_fake: torch.Tensor) -> torch.Tensor:
    """(x̂_fake − x̂_real) / mean|x₀ − x̂_real| per clip, all [B, T, h, w, C] (no gradient flows through it)."""
    with torch.no_grad():
        scale = (x0 - x0_real).abs().mean(dim=(1, 2, 3, 4), keepdim=True).clamp_min(1e-6)
        return (x0_fake - x0_real) / scale


def dmd_loss(x0: torch.Tensor, direction: torch.Tensor, hold: torch.Tensor) -> torch.Tensor:
    """0.5 · mean over the generated frames of (x₀ − sg(x₀ − direction))²: its gradient on x₀ is direction / count.
    x0 [B, T, h, w, C] (with the generator's graph), direction the same shape, hold bool [T]."""
    keep = ~hold.to(x0.device)
    target = (x0 - direction).detach()
    return 0.5 * ((x0[:, keep] - target[:, keep]) ** 2).mean()


def critic_loss(velocity: torch.Tensor, x0: torch.Tensor, noise: torch.Tensor, hold: torch.Tensor) -> torch.Tensor:
    """The fake score's flow-matching MSE on the generator's samples: velocity (the critic's prediction at
    x_σ = (1 − σ) x₀ + σ ε) against ε − x₀, over the generated frames. All [B, T, h, w, C]; hold bool [T]."""
    keep = ~hold.to(x0.device)
    return ((velocity[:, keep] - velocity_target(x0, noise)[:, keep]) ** 2).mean()

