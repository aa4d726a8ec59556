"""Plücker ray maps and the mapping from raw frames to latent frames (SANA-WM's dual-rate camera inputs).

Reference: sana_wm.md §3.1 (which raw frames feed latent frame k; the "last" raw frame per latent frame) and
§3.3 (ρ = (d, o × d) per pixel with world-space unit direction d and camera centre o, pixel grid u = 0..W-1,
v = 0..H-1 without a +0.5 offset, as upstream `compute_raymap`).
"""

from __future__ import annotations

import numpy as np
import torch

from camworld.errors import UserError


def _as_float64(x) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().to(dtype=torch.float64, device="cpu")
    return torch.as_tensor(np.asarray(x), dtype=torch.float64)


def plucker_rays(c2w, K, height: int, width: int) -> torch.Tensor:
    """Plücker rays `[..., height, width, 6]` float32 = (d, o × d) for poses `[..., 4, 4]` and intrinsics
    `[..., 3, 3]` in pixels of a `height`x`width` grid (leading dims broadcast). Computed in float64."""
    c2w, K = _as_float64(c2w), _as_float64(K)
    if c2w.shape[-2:] != (4, 4) or K.shape[-2:] != (3, 3):
        raise UserError(f"plucker_rays needs c2w [..., 4, 4] and K [..., 3, 3], got {tuple(c2w.shape)}, "
                        f"{tuple(K.shape)}")
    v, u = torch.meshgrid(torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64),
                          indexing="ij")
    fx, fy = K[..., 0, 0, None, None], K[..., 1, 1, None, None]
    cx, cy = K[..., 0, 2, None, None], K[..., 1, 2, None, None]
    x, y = (u - cx) / fx, (v - cy) / fy
    dirs_cam = torch.stack(torch.broadcast_tensors(x, y, torch.ones_like(x)), dim=-1)  # [..., H, W, 3]
    rot = c2w[..., None, None, :3, :3]
    dirs = torch.nn.functional.normalize((rot @ dirs_cam[..., None])[..., 0], dim=-1)
    origin = c2w[..., None, None, :3, 3].expand_as(dirs)
    return torch.cat([dirs, torch.linalg.cross(origin, dirs, dim=-1)], dim=-1).to(torch.float32)


def latent_raw_indices(k: int, stride: int) -> list[int]:
    """Raw frames behind latent frame k: max(0, stride·k − stride + 1) … stride·k, always `stride` of them
    (k = 0 -> 0 … stride − 1); the causal VAE's first latent frame covers frame 0 alone, so upstream reuses
    the first stride frames for it."""
    if k < 0 or stride < 1:
        raise ValueError(f"latent_raw_indices needs k >= 0 and stride >= 1, got k={k}, stride={stride}")
    start = max(0, stride * k - stride + 1)
    return list(range(start, start + stride))


def num_latent_frames(num_raw: int, stride: int) -> int:
    """T = (F − 1) // stride + 1 latent frames for F raw frames."""
    return (num_raw - 1) // stride + 1


def level_frame(c2w) -> torch.Tensor:
    """The frame at camera `c2w` [4, 4] (float64 tensor) turned only about frame 0's vertical axis (y, OpenCV): its
    centre, and its heading (the yaw of its viewing axis), but frame 0's up direction."""
    heading = torch.atan2(c2w[0, 2], c2w[2, 2])
    cos, sin = torch.cos(heading), torch.sin(heading)
    frame = torch.eye(4, dtype=c2w.dtype)
    frame[0, 0], frame[0, 2], frame[2, 0], frame[2, 2] = cos, sin, -sin, cos
    frame[:3, 3] = c2w[:3, 3]
    return frame


def pack_plucker(c2w_raw, K_grid_raw, stride: int, grid_hw, bases=None) -> torch.Tensor:
    """Per-latent-frame stack of the raw frames' Plücker maps, `[T, h, w, 6·stride]` float32.

    c2w_raw `[F, 4, 4]` (relativised), K_grid_raw `[F, 3, 3]` in latent-grid cells. Channel 6·j + c holds
    component c ∈ (dx, dy, dz, mx, my, mz) of the j-th raw frame in latent_raw_indices(k); indices past the last
    raw frame repeat the last pose.

    bases: None (every ray in the frame of c2w_raw, SANA-WM) or, per latent frame k, the latent frame b_k whose
    camera P (raw frame stride·b_k) is the origin of latent k's rays: they are computed from L⁻¹ · c2w with
    L = `level_frame(P)` (P's centre and heading, frame 0's up direction). Bases of 0 give the plain map, since
    c2w_raw is relative to raw frame 0.
    """
    c2w_raw, K_grid_raw = _as_float64(c2w_raw), _as_float64(K_grid_raw)
    num_raw = c2w_raw.shape[0]
    if K_grid_raw.shape[0] != num_raw:
        raise UserError(f"pack_plucker: {num_raw} poses but {K_grid_raw.shape[0]} intrinsics")
    grid_h, grid_w = grid_hw
    num_latent = num_latent_frames(num_raw, stride)
    index = torch.tensor([[min(r, num_raw - 1) for r in latent_raw_indices(k, stride)]
                          for k in range(num_latent)])  # [T, stride]
    bases = torch.zeros(num_latent, dtype=torch.long) if bases is None else torch.as_tensor(bases, dtype=torch.long)
    if bases.shape != (num_latent,) or bool((bases < 0).any()) or bool((bases > torch.arange(num_latent)).any()):
        raise UserError(f"pack_plucker: need one base latent frame <= k per latent frame k ({num_latent}), got "
                        f"{bases.tolist()}")
    packed = torch.empty(num_latent, grid_h, grid_w, 6 * stride, dtype=torch.float32)
    for base in bases.unique().tolist():
        rows = (bases == base).nonzero()[:, 0]
        origin = level_frame(c2w_raw[min(stride * base, num_raw - 1)])
        poses = c2w_raw[index[rows]]  # [t, stride, 4, 4]
        poses = torch.linalg.inv(origin) @ poses if base else poses
        grouped = plucker_rays(poses, K_grid_raw[index[rows]], grid_h, grid_w)  # [t, stride, h, w, 6]
        packed[rows] = grouped.permute(0, 2, 3, 1, 4).reshape(len(rows), grid_h, grid_w, 6 * stride)
    return packed


def latent_cameras(c2w_raw, K_raw, stride: int):
    """Pose and intrinsics of each latent frame: raw frame stride·k (upstream `cam_sample_strategy: last`).

    Returns (c2w `[T, 4, 4]`, K `[T, 3, 3]`) of the input's type (numpy or torch)."""
    num_raw = c2w_raw.shape[0]
    index = [stride * k for k in range(num_latent_frames(num_raw, stride))]
    return c2w_raw[index], K_raw[index]
