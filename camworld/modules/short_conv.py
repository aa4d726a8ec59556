"""The depthwise temporal short convolution that GDN blocks apply to their keys (sana_wm.md §2.2 `conv_kernel_size:
4`, `k_conv_only: true`; §2.3 step 1).

One causal kernel w_0..w_{k-1} (w_{k-1} multiplies the current frame; no bias, fla `ShortConvolution`) is used in both
directions: y = causal(x) + flip(causal(flip(x))) − w_{k-1}·x, a symmetric window [t−k+1, t+k−1] with mirrored taps.
It starts as the identity (w_{k-1} = 1, others 0). The S tokens of a frame are independent (folded into the batch).

Modes, all through `forward(x, chunks=..., tail=...)`:
- bidirectional: one chunk over the whole input, zero padding at both ends;
- chunk-causal (Sana `ChunkCausalGDN._apply_temporal_short_conv`): the causal part runs over the whole sequence,
  the flipped part only inside each chunk, so no frame sees a later chunk;
- streaming: x is one chunk and `tail` holds the conv inputs of the k−1 frames before it.
"""

from __future__ import annotations

import torch
from torch import nn


class TemporalShortConv(nn.Module):
    """Depthwise bidirectional short conv over T. weight [channels, kernel]; tap j multiplies frame t − (k−1) + j."""

    def __init__(self, channels: int, kernel: int = 4):
        super().__init__()
        self.kernel = kernel
        weight = torch.zeros(channels, kernel)
        weight[:, -1] = 1.0
        self.weight = nn.Parameter(weight)

    def forward(
        self, x: torch.Tensor, *, chunks: list[tuple[int, int]] | None = None, tail: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, T, S, C] -> (y [B, T, S, C], new_tail [B, k−1, S, C]).

        `chunks`: local (start, end) chunks tiling 0..T (None: one chunk). `tail`: conv inputs of the k−1 frames
        before x (None: zeros, the sequence start). `new_tail`: the conv inputs of the last k−1 frames up to x's end.
        """
        n, context = x.shape[1], self.kernel - 1
        weight = self.weight.to(x.dtype)
        left = x.new_zeros((x.shape[0], context, *x.shape[2:])) if tail is None else tail.to(x.dtype)
        history = torch.cat((left, x), dim=1)
        out = x * weight[:, -1]
        ends = _chunk_ends(chunks if chunks is not None else [(0, n)], n, x.device)
        frames = torch.arange(n, device=x.device)
        padded_right = torch.cat((x, x.new_zeros((x.shape[0], context, *x.shape[2:]))), dim=1)
        for lag in range(1, context + 1):
            tap = weight[:, context - lag]
            out = out + history[:, context - lag : context - lag + n] * tap
            keep = (frames + lag < ends).to(x.dtype).view(1, n, 1, 1)
            out = out + padded_right[:, lag : lag + n] * tap * keep
        return out, history[:, history.shape[1] - context :]


def _chunk_ends(chunks: list[tuple[int, int]], num_frames: int, device) -> torch.Tensor:
    """[T] long: the exclusive end of the chunk holding each frame; chunks must tile 0..T in order."""
    ends = torch.empty(num_frames, dtype=torch.long)
    position = 0
    for start, end in chunks:
        if start != position or end <= start:
            raise ValueError(f"chunks must tile 0..{num_frames} in order, got {chunks}")
        ends[start:end] = end
        position = end
    if position != num_frames:
        raise ValueError(f"chunks must tile 0..{num_frames} in order, got {chunks}")
    return ends.to(device)
