"""Chunk-by-chunk generation driven by the caller, one chunk per call: for interactive play, where a chunk's camera
is known only when the user presses the keys for it.

`sample_autoregressive` with interval_k = 1 runs each chunk through the whole σ list, then a σ = 0 save pass that
commits it into the streaming state (sana_wm.md §6.5), then the next chunk: no chunk starts before the one before it
is final. `ChunkRollout` is that loop turned inside out. It keeps the committed state between calls, and `next`
takes one chunk's noise and cameras and returns its clean latents. So a rollout fed the chunks of a clip, in order,
gives what `sample_autoregressive(..., interval_k=1)` gives on the whole clip (tests/samplers/test_chunk_rollout.py
locks the two together). The pyramid schedule (interval_k < 1) denoises later chunks before earlier ones are final,
so it needs cameras ahead of time and has no interactive form.

Every chunk gets its save pass, the last one included: the rollout does not know which chunk is the last.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from camworld.samplers.euler import check_sigmas, euler_frames, frame_sigma
from camworld.samplers.model_api import StreamingModel


class ChunkRollout:
    """The committed state of a chunk-by-chunk rollout of `model` (a `StreamingModel`: WorldDiT, or a guided one).

    text [B, L, D], text_mask [B, L]: the prompt for every chunk; sigmas: each chunk's σ list (from 1 down to 0)."""

    def __init__(self, model: StreamingModel, text: torch.Tensor, text_mask: torch.Tensor,
                 sigmas: Sequence[float] | torch.Tensor):
        self.model = model
        self.text, self.text_mask = text, text_mask
        self.sigmas = check_sigmas(sigmas)
        self.state = model.init_state(text.shape[0])
        self.frames_done = 0

    @torch.no_grad()
    def next(self, noise: torch.Tensor, camera_chunk: Any = None, held: torch.Tensor | None = None) -> torch.Tensor:
        """Denoise the next chunk and commit it. noise [B, n, h, w, C] at σ = 1, except frames where held [n] (bool)
        is True: those are clean latents (the encoded input image) and stay bit-identical. camera_chunk: the
        model's camera inputs for these n frames (`CameraInputs.frames`) or None. Returns the clean chunk
        [B, n, h, w, C]."""
        batch, frames = noise.shape[:2]
        hold = torch.zeros(frames, dtype=torch.bool, device=noise.device) if held is None else held.to(noise.device)
        x = noise
        for k in range(len(self.sigmas) - 1):
            sigma = frame_sigma(self.sigmas[k], batch, hold)
            sigma_next = frame_sigma(self.sigmas[k + 1], batch, hold)
            v, _ = self.model.step(x, sigma, self.text, self.text_mask, camera_chunk, self.state)
            x = euler_frames(x, v, sigma, sigma_next, hold)
        zeros = torch.zeros(batch, frames, device=noise.device)
        _, self.state = self.model.step(x, zeros, self.text, self.text_mask, camera_chunk, self.state)
        self.frames_done += frames
        return x
