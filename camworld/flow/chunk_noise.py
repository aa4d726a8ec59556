"""SANA-WM's per-chunk noise mixture for chunk-causal fine-tuning (sana_wm.md §6.4, `diffusion/model/respace.py`).

Each training clip draws one of four modes; every frame of a chunk shares its chunk's noise level:

    same_t                 0.1  all chunks at one logit-normal level
    incremental            0.4  a uniformly chosen anchor chunk at a logit-normal level; levels are non-decreasing
                                from the first chunk to the last (earlier chunks are less or equally noisy), drawn
                                uniformly among all such sequences through the anchor
    last_chunk_anchor      0.4  as incremental, anchored on the last chunk
    teacher_forcing_clean  0.1  as last_chunk_anchor, then a uniformly sized prefix of 1..(chunks−1) chunks is clean

Levels are integers 0..999 (`TRAIN_LEVELS`) and are shifted into σ only at the end; the shift is monotone, so the
ordering survives. SANA-WM draws the uniform monotone sequences with a log-space DP over (chunks, levels); here the
same distribution comes from the stars-and-bars bijection, which is exact: a uniformly random n-subset
c_0 < ... < c_{n−1} of {0, ..., n + m − 2} maps one-to-one onto the non-decreasing sequences c_i − i with values in
0..m−1, so a uniform subset gives a uniform sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from camworld.errors import UserError
from camworld.flow.schedule import TRAIN_LEVELS, levels_to_sigma, logit_normal_levels


@dataclass(frozen=True)
class ChunkNoiseMixture:
    """Mode probabilities (SANA-WM's released stage-4 config); they must sum to 1."""

    same_t: float = 0.1
    incremental: float = 0.4
    last_chunk_anchor: float = 0.4
    teacher_forcing_clean: float = 0.1

    def probabilities(self) -> torch.Tensor:
        p = torch.tensor(
            [self.same_t, self.incremental, self.last_chunk_anchor, self.teacher_forcing_clean], dtype=torch.float64
        )
        if (p < 0).any() or abs(float(p.sum()) - 1.0) > 1e-6:
            raise UserError(f"chunk noise mode probabilities must be >= 0 and sum to 1, got {p.tolist()}")
        return p


MODES = ("same_t", "incremental", "last_chunk_anchor", "teacher_forcing_clean")


def uniform_nondecreasing(length: int, low: int, high: int, generator: torch.Generator | None = None) -> list[int]:
    """A uniformly random non-decreasing sequence of `length` integers in [low, high] (stars and bars)."""
    if length == 0:
        return []
    if high < low:
        raise UserError(f"empty level range [{low}, {high}]")
    slots = length + (high - low)
    chosen = torch.randperm(slots, generator=generator)[:length].sort().values
    return [low + int(c) - i for i, c in enumerate(chosen)]


def anchored_levels(
    num_chunks: int, anchor: int, anchor_level: int, generator: torch.Generator | None = None
) -> list[int]:
    """Levels per chunk, non-decreasing in chunk order, equal to `anchor_level` at chunk `anchor`; the chunks before
    the anchor (levels in [0, anchor_level]) and after it (in [anchor_level, 999]) are each uniform given the anchor."""
    left = uniform_nondecreasing(anchor, 0, anchor_level, generator)
    right = uniform_nondecreasing(num_chunks - anchor - 1, anchor_level, TRAIN_LEVELS - 1, generator)
    return left + [anchor_level] + right


def chunk_levels(mode: str, num_chunks: int, generator: torch.Generator | None = None) -> list[int]:
    """Integer noise levels (0..999) of each chunk for one clip under `mode` (one of `MODES`)."""
    if num_chunks < 1:
        raise UserError(f"need at least one chunk, got {num_chunks}")
    level = int(logit_normal_levels((1,), generator)[0])
    if mode == MODES[0]:
        return [level] * num_chunks
    if mode == MODES[1]:
        anchor = int(torch.randint(num_chunks, (1,), generator=generator))
        return anchored_levels(num_chunks, anchor, level, generator)
    levels = anchored_levels(num_chunks, num_chunks - 1, level, generator)
    if mode == MODES[2] or num_chunks == 1:
        return levels
    if mode == MODES[3]:
        clean = int(torch.randint(1, num_chunks, (1,), generator=generator))
        return [0] * clean + levels[clean:]
    raise UserError(f"unknown chunk noise mode {mode!r}; choose one of {MODES}")


def sample_chunk_sigma(
    chunks: list[tuple[int, int]],
    shift: float,
    generator: torch.Generator | None = None,
    mixture: ChunkNoiseMixture = ChunkNoiseMixture(),
) -> tuple[torch.Tensor, str]:
    """One clip's per-frame σ [T] from the mixture, plus the mode drawn.

    chunks: (start, end exclusive) latent-frame ranges covering 0..T−1 (`camworld.ops.chunks.chunk_bounds`).
    """
    mode = MODES[int(torch.multinomial(mixture.probabilities(), 1, generator=generator))]
    levels = chunk_levels(mode, len(chunks), generator)
    per_frame = torch.empty(chunks[-1][1], dtype=torch.long)
    for (start, end), level in zip(chunks, levels):
        per_frame[start:end] = level
    return levels_to_sigma(per_frame, shift), mode
