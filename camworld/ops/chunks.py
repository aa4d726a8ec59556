"""The chunk plan of chunk-causal generation: which latent frames form each chunk (sana_wm.md §2.3, §6.4, §6.5).

SANA-WM generates the first chunk with 4 latent frames and every later chunk with 3 ("num_frame_per_block = 3, the
first chunk is 4"); both sizes are arguments here so smaller presets can pick their own plan.
"""

from __future__ import annotations

import torch

from camworld.errors import UserError


def _check_plan(num_frames: int, first: int, size: int) -> None:
    if num_frames < 0:
        raise UserError(f"number of frames must be >= 0, got {num_frames}")
    if first < 1 or size < 1:
        raise UserError(f"chunk sizes must be >= 1, got first={first}, size={size}")


def chunk_bounds(num_frames: int, first: int = 4, size: int = 3) -> list[tuple[int, int]]:
    """(start, end exclusive) of each chunk covering frames 0..num_frames-1; the last chunk may be short."""
    _check_plan(num_frames, first, size)
    bounds = []
    start, length = 0, first
    while start < num_frames:
        end = min(start + length, num_frames)
        bounds.append((start, end))
        start, length = end, size
    return bounds


def chunk_index(num_frames: int, first: int = 4, size: int = 3) -> torch.Tensor:
    """The chunk number of every frame, a LongTensor [T]."""
    index = torch.empty(num_frames, dtype=torch.long)
    for c, (start, end) in enumerate(chunk_bounds(num_frames, first, size)):
        index[start:end] = c
    return index


def rebase_frames(num_frames: int, first: int = 4, size: int = 3, back: int | None = None) -> list[int]:
    """For every frame, the first frame of the chunk `back` chunks before its own (chunk 0 when there is none);
    all 0 when `back` is None. Used as the origin of each chunk's Plücker rays (`ModelConfig.plucker_rebase_chunks`).
    """
    if back is not None and back < 0:
        raise UserError(f"rebase distance must be >= 0 chunks or None, got {back}")
    bounds = chunk_bounds(num_frames, first, size)
    bases = []
    for c, (start, end) in enumerate(bounds):
        base = 0 if back is None else bounds[max(c - back, 0)][0]
        bases.extend([base] * (end - start))
    return bases


def reverse_gate_mask(num_frames: int, first: int = 4, size: int = 3, offset: int = 0) -> torch.Tensor:
    """Frames whose reverse-scan beta and gamma must be zeroed so the reverse scan stops at chunk boundaries.

    Returns a BoolTensor [num_frames] for the global frames offset .. offset+num_frames-1 under the chunk plan that
    starts at global frame 0. True at every interior chunk start and at every frame of a size-1 chunk, as upstream's
    `_mask_reverse_gates_for_chunk_boundaries` (sana_wm.md §2.3). With beta = gamma = 0 at a chunk's first frame,
    absorbing that frame sets the reverse state to zero, so the previous chunk never reads frames of later chunks.
    """
    if offset < 0:
        raise UserError(f"frame offset must be >= 0, got {offset}")
    mask = torch.zeros(offset + num_frames, dtype=torch.bool)
    for start, end in chunk_bounds(offset + num_frames, first, size):
        if start > 0 or end - start == 1:
            mask[start] = True
    return mask[offset:]
