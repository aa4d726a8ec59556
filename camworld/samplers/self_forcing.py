"""The self-forcing rollout: the distilled student's chunk-by-chunk sampling with a gradient through one denoising
step per chunk, as it is trained (sana_wm.md §6.5; Self-Forcing, Huang et al. 2025).

Each chunk is denoised from noise with the student's few-step σ list (Euler steps, as at inference), starting from
the stream state that the student's own earlier chunks left, so training sees the student's own context instead of
ground truth (the exposure bias that teacher forcing leaves). At the chunk's exit step k the student's clean estimate
x̂₀ = x_σk − σk v is the chunk's output; for k = the last step that is exactly the sampler's result. Then a σ = 0
save pass on the detached output commits the chunk into the state.

Gradient truncation as in Self-Forcing: steps before the exit run without a graph, and the saved state is detached,
so each chunk's graph is one model call on one chunk (memory does not grow with the number of steps). With every
exit at the last step and no gradient, the rollout equals `sample_autoregressive(..., interval_k=1)`
(tests/samplers/test_self_forcing.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from camworld.errors import UserError
from camworld.ops.chunks import chunk_bounds
from camworld.samplers.euler import check_sigmas, euler_frames, frame_sigma, frozen_frames, start_latents
from camworld.samplers.model_api import StreamingModel


def _frames(camera: Any, start: int, end: int) -> Any:
    return None if camera is None else camera.frames(start, end)


def self_forcing_rollout(
    model: StreamingModel,
    noise: torch.Tensor,
    text: torch.Tensor,
    text_mask: torch.Tensor,
    camera: Any = None,
    *,
    sigmas: Sequence[float],
    chunk_first: int,
    chunk_size: int,
    exit_steps: Sequence[int],
    first_frame: torch.Tensor | None = None,
) -> torch.Tensor:
    """The student's rollout, latents [B, T, h, w, C] with a graph through each chunk's exit step.

    noise [B, T, h, w, C]: the start at σ = sigmas[0]; text [B, L, D], text_mask [B, L]; camera: the model's camera
    inputs for all T frames or None; exit_steps[c] in [0, len(sigmas) − 2]: the step whose clean estimate is chunk
    c's output; first_frame [B, 1, h, w, C]: the clean conditioning latent, held as frame 0.
    """
    sigma_list = check_sigmas(sigmas)
    x = start_latents(noise, first_frame)
    batch, frames = x.shape[:2]
    hold = frozen_frames(frames, first_frame is not None, x.device)
    chunks = chunk_bounds(frames, chunk_first, chunk_size)
    if len(exit_steps) != len(chunks) or not all(0 <= k < len(sigma_list) - 1 for k in exit_steps):
        raise UserError(f"need one exit step in [0, {len(sigma_list) - 2}] per chunk ({len(chunks)}), got "
                        f"{list(exit_steps)}")
    state = model.init_state(batch)
    outputs = []
    for c, (s, e) in enumerate(chunks):
        part, held, cams = x[:, s:e], hold[s:e], _frames(camera, s, e)
        with torch.no_grad():
            for k in range(exit_steps[c]):
                sigma = frame_sigma(sigma_list[k], batch, held)
                v, _ = model.step(part, sigma, text, text_mask, cams, state)
                part = euler_frames(part, v, sigma, frame_sigma(sigma_list[k + 1], batch, held), held)
        sigma = frame_sigma(sigma_list[exit_steps[c]], batch, held)
        v, _ = model.step(part, sigma, text, text_mask, cams, state)
        out = torch.where(held[None, :, None, None, None], part, part - sigma[:, :, None, None, None] * v)
        outputs.append(out)
        if c < len(chunks) - 1:
            with torch.no_grad():
                zeros = torch.zeros(batch, e - s, device=x.device)
                _, state = model.step(out.detach(), zeros, text, text_mask, cams, state)
    return torch.cat(outputs, dim=1)
