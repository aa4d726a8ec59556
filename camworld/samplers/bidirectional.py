"""The bidirectional sampler: every latent frame denoised together by flow-matching Euler (sana_wm.md §6.2, §10.4).

SANA-WM's stage-1 sampler (`flow_euler_ltx`): 60 steps over the shifted σ list (`camworld.flow.schedule.sigmas`,
shift 9.8, or 8.0 on its benchmark), one σ per latent frame, frame 0 held at σ = 0 when an image conditions the
clip (§2.6), text CFG through `ClassifierFreeGuidance`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

from camworld.samplers.euler import check_sigmas, euler_frames, frame_sigma, frozen_frames, start_latents
from camworld.samplers.model_api import VelocityModel


@torch.no_grad()
def sample_bidirectional(
    model: VelocityModel,
    latents: torch.Tensor,
    text: torch.Tensor,
    text_mask: torch.Tensor,
    camera: Any = None,
    *,
    sigmas: Sequence[float] | torch.Tensor,
    first_frame: torch.Tensor | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Denoise the whole clip at once and return the clean latents [B, T, h, w, C].

    latents [B, T, h, w, C]: the starting point at σ = sigmas[0] (Gaussian noise when it is 1). text [B, L, D],
    text_mask [B, L] bool, camera: the model's camera inputs for all T frames (or None). first_frame [B, 1, h, w, C]:
    the encoded input image; it replaces frame 0, which then stays bit-identical. The model is called bidirectionally
    (`causal=False`) once per step.
    """
    sigma_list = check_sigmas(sigmas)
    x = start_latents(latents, first_frame)
    batch, frames = x.shape[:2]
    frozen = frozen_frames(frames, first_frame is not None, x.device)
    for i in tqdm(range(len(sigma_list) - 1), desc="denoise", disable=not progress):
        sigma = frame_sigma(sigma_list[i], batch, frozen)
        sigma_next = frame_sigma(sigma_list[i + 1], batch, frozen)
        v = model(x, sigma, text, text_mask, camera)
        x = euler_frames(x, v, sigma, sigma_next, frozen)
    return x
