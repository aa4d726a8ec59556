"""Inference of the stage-2 long-video refiner (sana_wm.md §5, `DiffusersLTX2Refiner.refine_latents`).

The stage-1 latents are partly re-noised to σ_0 = 0.909375 with the refiner's own seed, then denoised by 3 Euler
steps over σ = 0.909375, 0.725, 0.421875, 0 (SANA-WM writes the step through x₀ = x − vσ, x ← x + (σ' − σ)(x − x₀)/σ,
which is the plain v Euler step). Frame 0, the clean first latent, is the sink: fed at σ = 0, never changed.

Two modes of the same weights:
- "bidirectional" (SANA-WM's default, block_size None): chunk plan [0], [1 .. T−1]; sink queries see the sink, all
  other frames see the sink and each other. The sink is committed once into the stream state, then the 3 steps
  run on frames 1 .. T−1 from that state.
- "chunk_causal" (streaming): chunk plan [0], then blocks of `block` frames, each refined by the 3 steps and then
  saved (σ = 0 pass); softmax layers see the sink + the model's KV window of recent blocks + the active block.

Output: all T latents, frame 0 the untouched sink. SANA-WM decodes [sink; refined] and drops the first decoded frame
(and realigns the trajectory to c2w[1:]); that is the pipeline's job: with camworld's causal VAE latent 0 decodes to
exactly raw frame 0, so it drops that one frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from camworld.config import RefinerConfig
from camworld.errors import UserError
from camworld.flow.refiner_objective import with_chunk_plan
from camworld.flow.schedule import add_noise
from camworld.samplers.autoregressive import ChunkCallback, sample_autoregressive
from camworld.samplers.euler import check_sigmas

MODES = ("bidirectional", "chunk_causal")


@torch.no_grad()
def refine_latents(
    model: torch.nn.Module,
    latents: torch.Tensor,
    text: torch.Tensor,
    text_mask: torch.Tensor,
    camera: Any = None,
    *,
    sigmas: Sequence[float] | torch.Tensor = RefinerConfig.sigmas,
    seed: int = RefinerConfig.seed,
    mode: str = RefinerConfig.mode,
    block: int = RefinerConfig.block,
    on_chunk: ChunkCallback | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Refine stage-1 latents [B, T, h, w, C] (T >= 2; frame 0 the encoded first image) into [B, T, h, w, C].

    model: the refiner WorldDiT (any chunk plan: it is re-planned per mode with `with_chunk_plan`). text [B, L, D],
    text_mask [B, L] bool, camera: CameraInputs of the T frames or None. seed: the refiner's noise (drawn on the
    CPU, so it does not depend on the device). on_chunk(index, latents [B, n, h, w, C]) fires per finished chunk,
    the sink first.
    """
    if mode not in MODES:
        raise UserError(f"unknown refiner mode {mode!r}; choose one of {MODES}")
    if latents.dim() != 5 or latents.shape[1] < 2:
        raise UserError(f"refiner latents must be [B, T >= 2, h, w, C], got {list(latents.shape)}")
    if block < 1:
        raise UserError(f"refiner block must be >= 1 latent frame, got {block}")
    sigma_list = check_sigmas(sigmas)
    frames = latents.shape[1]
    current = latents[:, 1:]
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(current.shape, generator=generator, dtype=torch.float32).to(current)
    sigma_start = torch.tensor(sigma_list[0], device=current.device)
    start = torch.cat([latents[:, :1], add_noise(current, noise, sigma_start)], dim=1)
    size = frames - 1 if mode == "bidirectional" else block
    return sample_autoregressive(
        with_chunk_plan(model, 1, size), start, text, text_mask, camera, sigmas=sigma_list, chunk_first=1,
        chunk_size=size, interval_k=1.0, first_frame=latents[:, :1], on_chunk=on_chunk, progress=progress,
    )
