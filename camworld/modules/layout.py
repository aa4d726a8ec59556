"""`FrameLayout`: where one call's latent frames sit in the video and which chunks they form.

Every token mixer, short conv and FFN temporal conv of the DiT needs the same facts about its input: the latent grid,
the absolute index of the first frame (RoPE positions and chunk numbers in streaming) and the chunk plan of the
causal variants ("first_chunk_plus_one": a first chunk of `first` frames, then chunks of `size`; sana_wm.md §2.2).
Bidirectional calls have no plan and behave as one chunk that spans the whole input.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from camworld.errors import UserError
from camworld.ops.chunks import chunk_bounds, reverse_gate_mask


@dataclass(frozen=True)
class FrameLayout:
    """num_frames latent frames of height × width tokens starting at absolute frame `offset`.

    `chunk_plan` = (first, size) for chunk-causal calls, None for bidirectional ones. A chunk-causal call must start
    on a chunk boundary of the plan (streaming feeds one whole chunk per call).
    """

    num_frames: int
    height: int
    width: int
    offset: int = 0
    chunk_plan: tuple[int, int] | None = None

    def __post_init__(self):
        if self.num_frames < 1 or self.height < 1 or self.width < 1:
            raise UserError(f"need at least one frame and token, got {self.num_frames}x{self.height}x{self.width}")
        if self.chunk_plan is not None and self.offset not in {s for s, _ in self._global_bounds()}:
            raise UserError(f"frame offset {self.offset} is not a chunk start of plan {self.chunk_plan}")

    @property
    def tokens_per_frame(self) -> int:
        return self.height * self.width

    @property
    def causal(self) -> bool:
        return self.chunk_plan is not None

    def _global_bounds(self) -> list[tuple[int, int]]:
        first, size = self.chunk_plan
        return chunk_bounds(self.offset + self.num_frames, first, size)

    def chunks(self) -> list[tuple[int, int]]:
        """Local (start, end) of each chunk of this call; one chunk over everything when bidirectional."""
        if self.chunk_plan is None:
            return [(0, self.num_frames)]
        return [(s - self.offset, e - self.offset) for s, e in self._global_bounds() if s >= self.offset]

    def chunk_ids(self) -> torch.Tensor:
        """Absolute chunk number of every frame, LongTensor [T] (all zeros when bidirectional)."""
        ids = torch.zeros(self.num_frames, dtype=torch.long)
        if self.chunk_plan is None:
            return ids
        for c, (s, e) in enumerate(self._global_bounds()):
            if e > self.offset:
                ids[max(s - self.offset, 0) : e - self.offset] = c
        return ids

    def reverse_reset(self) -> torch.Tensor:
        """BoolTensor [T]: frames whose reverse-scan β and γ are zeroed so the reverse scan stops at chunk starts."""
        if self.chunk_plan is None:
            return torch.zeros(self.num_frames, dtype=torch.bool)
        first, size = self.chunk_plan
        return reverse_gate_mask(self.num_frames, first, size, offset=self.offset)

    def frame_indices(self) -> torch.Tensor:
        """Absolute latent-frame index of every frame, LongTensor [T] (the RoPE time positions)."""
        return torch.arange(self.offset, self.offset + self.num_frames)
