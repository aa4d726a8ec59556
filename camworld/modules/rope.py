"""3D rotary position embedding over (latent frame, row, column), as Wan's `WanRotaryPosEmbed` (sana_wm.md §2.5).

A head of D channels is D/2 complex pairs made of consecutive channels (interleaved, as Sana's `view_as_complex`).
The pairs are split over the three axes as Wan does: h = w = D//6 pairs each (2·(D//6) channels), t gets the rest
(D = 112 gives 20 / 18 / 18 pairs). Pair j of an axis with n_axis pairs rotates by pos · θ^(−j / n_axis) with
integer positions and θ = 10000.

The camera branch (§3.2) rotates only half of its channels with a "re-sliced" RoPE of half size: its pair counts
are the Wan split of D/2 and its frequencies are the first pairs of each axis of the full table.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from camworld.errors import UserError


def axis_pairs(rotary_dim: int) -> tuple[int, int, int]:
    """Complex pairs given to the (t, h, w) axes when `rotary_dim` channels are rotated (Wan's split)."""
    if rotary_dim <= 0 or rotary_dim % 2:
        raise UserError(f"rotary dim must be a positive even number, got {rotary_dim}")
    spatial = rotary_dim // 6
    return rotary_dim // 2 - 2 * spatial, spatial, spatial


@dataclass(frozen=True)
class Rotary:
    """cos/sin tables [T, S, P] of one call's tokens (P pairs), applied to tensors laid out [B, T, S, H, 2P]."""

    cos: torch.Tensor
    sin: torch.Tensor

    def apply(self, x: torch.Tensor, *, inverse: bool = False) -> torch.Tensor:
        """Rotate the interleaved pairs of x [B, T, S, H, 2P] (by −angle when `inverse`); computed in at least
        float32, returned in x's dtype."""
        dtype = torch.promote_types(x.dtype, torch.float32)
        pairs = x.to(dtype).unflatten(-1, (-1, 2))
        real, imag = pairs[..., 0], pairs[..., 1]
        cos = self.cos[:, :, None, :].to(dtype)
        sin = self.sin[:, :, None, :].to(dtype)
        sin = -sin if inverse else sin
        rotated = torch.stack((real * cos - imag * sin, real * sin + imag * cos), dim=-1)
        return rotated.flatten(-2).to(x.dtype)

    def frames(self, start: int, end: int) -> Rotary:
        return Rotary(self.cos[start:end], self.sin[start:end])


def rotary_tables(
    frames: torch.Tensor,
    height: int,
    width: int,
    head_dim: int,
    *,
    theta: float = 10000.0,
    rotary_dim: int | None = None,
) -> Rotary:
    """RoPE tables for the tokens of the given latent frames on a height × width grid (row-major tokens).

    frames: LongTensor [T] of absolute frame indices. `rotary_dim` (default head_dim) < head_dim gives the
    re-sliced half-size RoPE of the camera branch. Returns float32 tables of shape [T, height·width, rotary_dim/2].
    """
    rotary_dim = head_dim if rotary_dim is None else rotary_dim
    full, used = axis_pairs(head_dim), axis_pairs(rotary_dim)
    if any(u > f for u, f in zip(used, full)):
        raise UserError(f"rotary dim {rotary_dim} does not fit in head dim {head_dim}")
    device = frames.device
    rows = torch.arange(height, device=device).repeat_interleave(width)
    cols = torch.arange(width, device=device).repeat(height)
    angles = []
    for positions, n_used, n_full in zip((frames, rows, cols), used, full):
        # float64 so that large frame indices (minute-long rollouts) keep their phase exactly, as Sana's float64 RoPE
        freqs = theta ** (-torch.arange(n_used, dtype=torch.float64, device=device) / n_full)
        angles.append(positions.to(torch.float64)[:, None] * freqs)
    t_angles, h_angles, w_angles = angles
    num_frames, tokens = frames.shape[0], height * width
    table = torch.cat(
        (
            t_angles[:, None, :].expand(num_frames, tokens, -1),
            h_angles[None].expand(num_frames, tokens, -1),
            w_angles[None].expand(num_frames, tokens, -1),
        ),
        dim=-1,
    )
    return Rotary(torch.cos(table).float(), torch.sin(table).float())
