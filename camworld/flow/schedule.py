"""The one time convention of camworld's flow matching (sana_wm.md §6.2, §10.2 item 8).

σ = 1 is pure noise and σ = 0 is data:  x_σ = (1 − σ) x₀ + σ ε,  the model predicts v = ε − x₀,  and an Euler step
from σ to σ_next is x += (σ_next − σ) v.  Timestep shift σ' = sσ / (1 + (s − 1)σ) moves mass towards high noise
(s > 1); s = 1 is the identity. The model receives σ itself in [0, 1] (SANA-WM feeds t = 1000σ'; the factor lives
in the timestep embedder, not here). Every sampler and trainer imports these functions; nothing else may restate
the convention.
"""

from __future__ import annotations

import math

import torch

from camworld.errors import UserError

TRAIN_LEVELS = 1000  # SANA-WM `train_sampling_steps`: training σ is drawn on a grid of 1000 levels


def shift_sigma(sigma, shift: float):
    """σ' = sσ / (1 + (s − 1)σ): monotone, fixes 0 and 1; works on floats and tensors alike."""
    if shift <= 0:
        raise UserError(f"timestep shift must be > 0, got {shift}")
    return shift * sigma / (1 + (shift - 1) * sigma)


def sigmas(num_steps: int, shift: float = 1.0) -> torch.Tensor:
    """Sampler noise levels [num_steps + 1], float32: 1 = σ_0 > σ_1 > ... > σ_num_steps = 0, uniform then shifted."""
    if num_steps < 1:
        raise UserError(f"number of sampling steps must be >= 1, got {num_steps}")
    grid = torch.linspace(1.0, 0.0, num_steps + 1, dtype=torch.float64)
    return shift_sigma(grid, shift).to(torch.float32)


def add_noise(x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """x_σ = (1 − σ) x₀ + σ ε with one σ per latent frame.

    x0, noise [B, T, h, w, C]; sigma [B, T] (or anything broadcastable after trailing singleton dims are added).
    """
    s = sigma.reshape(*sigma.shape, *([1] * (x0.dim() - sigma.dim()))).to(x0.dtype)
    return (1 - s) * x0 + s * noise


def velocity_target(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """v = ε − x₀, the regression target (`predict_flow_v`)."""
    return noise - x0


def euler_step(x: torch.Tensor, v: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
    """x_{σ_next} = x_σ + (σ_next − σ) v; sigma and sigma_next are per frame [B, T] (or scalars)."""
    delta = torch.as_tensor(sigma_next, dtype=x.dtype, device=x.device) - torch.as_tensor(
        sigma, dtype=x.dtype, device=x.device
    )
    delta = delta.reshape(*delta.shape, *([1] * (x.dim() - delta.dim())))
    return x + delta * v


def logit_normal_levels(shape, generator: torch.Generator | None = None, *, mean: float = 0.0, std: float = 1.0):
    """Integer levels ⌊1000u⌋ with u ~ sigmoid(N(mean, std)) (`weighting_scheme: logit_normal`), a LongTensor."""
    u = torch.sigmoid(torch.randn(shape, generator=generator, dtype=torch.float64) * std + mean)
    return torch.clamp((u * TRAIN_LEVELS).floor().long(), 0, TRAIN_LEVELS - 1)


def levels_to_sigma(levels: torch.Tensor, shift: float) -> torch.Tensor:
    """σ = shift(level / 1000), float32: the shift is applied after discretising, as SANA-WM's trainer does."""
    return shift_sigma(levels.to(torch.float64) / TRAIN_LEVELS, shift).to(torch.float32)


def sample_train_sigma(
    batch: int, frames: int, shift: float, generator: torch.Generator | None = None, *, per_frame: bool = False
) -> torch.Tensor:
    """Training noise levels [B, T]: shifted logit-normal, one per clip (shared by its frames) or one per frame.

    SANA-WM's timestep tensor is per latent frame ((B, 1, T), §6.2). In the bidirectional stages every frame of a
    clip shares one level, matching the bidirectional sampler that denoises all frames together; chunk-causal
    fine-tuning draws per-chunk levels with `camworld.flow.chunk_noise` instead.
    """
    levels = logit_normal_levels((batch, frames if per_frame else 1), generator)
    return levels_to_sigma(levels, shift).expand(batch, frames).contiguous()


def resolution_shift(tokens_per_frame: int, *, ref_tokens: int = 22 * 40, ref_shift: float = 9.95) -> float:
    """The training shift that keeps SANA-WM's signal-to-noise balance at another latent resolution.

    A shift s scales the noise-to-signal ratio σ/(1−σ) by s; averaging over n spatially redundant tokens raises the
    effective SNR by n, so keeping the balance needs s ∝ √n (the SD3 resolution rule). Only tokens per frame count:
    SANA-WM trains 5 s and 60 s clips with the same 9.95, at 22 × 40 tokens per frame. Never below 1.
    """
    if tokens_per_frame < 1:
        raise UserError(f"token count must be >= 1, got {tokens_per_frame}")
    return max(1.0, ref_shift * math.sqrt(tokens_per_frame / ref_tokens))
