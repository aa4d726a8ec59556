"""The DiT feed-forward block: SANA-WM's `GLUMBConvTemp` (§2.7), a per-frame GLU conv FFN plus a temporal conv.

Per frame (2D ops on the h x w grid): inverted 1x1 conv C -> 2*hidden with bias + SiLU, depthwise 3x3 conv with
bias, split (a, g) -> a * SiLU(g), point 1x1 conv hidden -> C without bias. Then a zero-init temporal residual
`y + Conv_(k x 1)(y)` over T (C -> C, no bias), so at init the block is the per-frame FFN exactly.

The temporal conv runs in three modes that agree with each other:
- bidirectional (`chunks=None`, `tail=None`): zero padding at both ends of T;
- chunk-causal (`chunks=[(start, end), ...]`, Sana's `ChunkGLUMBConvTemp`): each chunk is padded on the left with
  the last frames of the previous chunk and on the right with zeros, so no frame sees a later chunk;
- streaming (`chunks=None`, `tail` from the previous call): x is one chunk whose left context is `tail`.

Deliberate differences from Sana: the 1x1 convs are `nn.Linear` on channels-last tokens (same maths, a reshaped
weight), and the temporal kernel is stored as a [C, C, k] parameter (Sana: Conv2d weight [C, C, k, 1]).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class GLUConvFFN(nn.Module):
    """SANA-WM `GLUMBConvTemp`. `temporal_kernel` must be odd; p = temporal_kernel // 2 frames of context."""

    def __init__(self, dim: int, hidden: int, temporal_kernel: int = 3):
        super().__init__()
        if temporal_kernel < 1 or temporal_kernel % 2 == 0:
            raise ValueError(f"temporal_kernel must be odd and positive, got {temporal_kernel}")
        self.context = temporal_kernel // 2
        self.inverted = nn.Linear(dim, 2 * hidden)
        self.depthwise = nn.Conv2d(2 * hidden, 2 * hidden, 3, padding=1, groups=2 * hidden)
        self.point = nn.Linear(hidden, dim, bias=False)
        # [C_out, C_in, k]: tap j multiplies frame t + j - p; zero-init keeps the pretrained per-frame FFN (§2.7).
        self.temporal_weight = nn.Parameter(torch.zeros(dim, dim, temporal_kernel))

    def spatial(self, x: torch.Tensor) -> torch.Tensor:
        """The per-frame GLU conv FFN without the temporal residual. x [B, T, h, w, C] -> [B, T, h, w, C]."""
        b, t, h, w, c = x.shape
        z = F.silu(self.inverted(x))
        # channels-last view: the depthwise conv reads it without a layout copy
        z = self.depthwise(z.reshape(b * t, h, w, -1).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        a, g = z.chunk(2, dim=-1)
        return self.point(a * F.silu(g)).reshape(b, t, h, w, c)

    def forward(
        self,
        x: torch.Tensor,
        *,
        chunks: list[tuple[int, int]] | None = None,
        tail: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, T, h, w, C] -> (out [B, T, h, w, C], new_tail [B, p, h, w, C]).

        `chunks`: (start, end) pairs covering 0..T in order (chunk-causal), or None (x is one chunk).
        `tail`: temporal-conv inputs of the p frames just before x (streaming), or None (zeros: sequence start).
        `new_tail`: temporal-conv inputs of the last p frames up to the end of x, to pass as the next `tail`.
        """
        y = self.spatial(x)
        return y + self._temporal(y, chunks, tail), self._new_tail(y, tail)

    def _left_context(self, y: torch.Tensor, tail: torch.Tensor | None) -> torch.Tensor:
        p = self.context
        if tail is None:
            return y.new_zeros((y.shape[0], p, *y.shape[2:]))
        if tail.shape != (y.shape[0], p, *y.shape[2:]):
            raise ValueError(f"tail must have shape {(y.shape[0], p, *y.shape[2:])}, got {tuple(tail.shape)}")
        return tail.to(y.dtype)

    def _new_tail(self, y: torch.Tensor, tail: torch.Tensor | None) -> torch.Tensor:
        p = self.context
        if y.shape[1] >= p:
            return y[:, y.shape[1] - p :]
        return torch.cat([self._left_context(y, tail), y], dim=1)[:, -p:]

    def _temporal(self, y: torch.Tensor, chunks: list[tuple[int, int]] | None, tail: torch.Tensor | None):
        """Sum over taps j of W_j y[t + j - p]; a tap that looks past the end of t's chunk is masked out.

        Left-looking taps need no mask: the previous chunk's last frames are exactly the true previous frames,
        which is what Sana's per-chunk left padding feeds (the tail, or zeros before the sequence start).
        """
        p, n = self.context, y.shape[1]
        ends = _chunk_ends(chunks if chunks is not None else [(0, n)], n, y.device)
        padded = torch.cat([self._left_context(y, tail), y, y.new_zeros((y.shape[0], p, *y.shape[2:]))], dim=1)
        frames = torch.arange(n, device=y.device)
        out = F.linear(y, self.temporal_weight[:, :, p])
        for j in range(2 * p + 1):
            offset = j - p
            if offset == 0:
                continue
            contribution = F.linear(padded[:, j : j + n], self.temporal_weight[:, :, j])
            if offset > 0:
                keep = (frames + offset < ends).to(y.dtype)
                contribution = contribution * keep.view(1, n, 1, 1, 1)
            out = out + contribution
        return out


def _chunk_ends(chunks: list[tuple[int, int]], num_frames: int, device) -> torch.Tensor:
    """[T] long: the exclusive end of the chunk holding each frame. Chunks must tile 0..T in order."""
    ends = []
    position = 0
    for start, end in chunks:
        if start != position or end <= start:
            raise ValueError(f"chunks must tile 0..{num_frames} in order without gaps, got {chunks}")
        ends.extend([end] * (end - start))
        position = end
    if position != num_frames:
        raise ValueError(f"chunks must tile 0..{num_frames} in order without gaps, got {chunks}")
    return torch.tensor(ends, dtype=torch.long, device=device)
