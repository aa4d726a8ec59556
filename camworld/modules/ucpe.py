"""The coarse camera branch's ray-local UCPE encoding (sana_wm.md §3.2) and the branch's own projections.

Ray construction (pinhole, Sana `world_to_ray_mats`): for latent token (v, u) of a frame with c2w = [R | o] and
latent-grid intrinsics K, d = R·normalize((u−cx)/fx, (v−cy)/fy, 1) (no +0.5 pixel offset); the ray-local basis is
z = d, x = normalize(R[:, 1] × z) (R[:, 1] is the camera's own down axis), y = z × x, and the token's transform is
world → ray-local, P = [[R_l2wᵀ, −R_l2wᵀ·o], [0, 0, 0, 1]]. Rays that give NaN (degenerate cameras) use P = I.

Each camera-branch head (D channels) is split into D/2 "geometric" channels, read as D/8 homogeneous 4-vectors,
and D/2 "RoPE" channels rotated by the half-size RoPE (`rope.rotary_tables(..., rotary_dim=D/2)`):

    q̃ = (Pᵀ ⊕ RoPE) q,   k̃ = (P⁻¹ ⊕ RoPE) k,   ṽ = (P⁻¹ ⊕ RoPE) v,   o = (P ⊕ RoPE⁻¹) mix(q̃, k̃, ṽ)

so q̃ᵢ·k̃ⱼ = qᵀ Pᵢ Pⱼ⁻¹ k is a relative ray-to-ray transform. The translation part of P⁻¹ can inflate key norms,
which the GDN branch offsets by dividing β by the frame's mean key inflation (`discount_beta`, §3.2 step 5).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from camworld.errors import UserError
from camworld.modules.layout import FrameLayout
from camworld.modules.norms import RMSNorm, zero_linear
from camworld.modules.precision import autocast_off
from camworld.modules.rope import Rotary
from camworld.modules.short_conv import TemporalShortConv


def ray_transforms(c2w: torch.Tensor, K: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """World → ray-local 4×4 transform of every latent token. c2w [B, T, 4, 4], K [B, T, 3, 3] in latent-grid
    pixels -> P [B, T, height·width, 4, 4] float32 (autocast off), tokens row-major."""
    with autocast_off(c2w.device):
        return _ray_transforms(c2w.float(), K.float(), height, width)


def _ray_transforms(c2w: torch.Tensor, K: torch.Tensor, height: int, width: int) -> torch.Tensor:
    v, u = torch.meshgrid(
        torch.arange(height, dtype=torch.float32, device=c2w.device),
        torch.arange(width, dtype=torch.float32, device=c2w.device),
        indexing="ij",
    )
    u, v = u.reshape(1, 1, -1), v.reshape(1, 1, -1)
    fx, fy, cx, cy = (K[..., 0, 0, None], K[..., 1, 1, None], K[..., 0, 2, None], K[..., 1, 2, None])
    right, down_pixels = (u - cx) / fx, (v - cy) / fy
    d_cam = torch.stack((right, down_pixels, torch.ones_like(right)), dim=-1)
    rotation, origin = c2w[..., :3, :3], c2w[..., :3, 3]
    d_world = torch.einsum("btij,btsj->btsi", rotation, d_cam)
    z = d_world / d_world.norm(dim=-1, keepdim=True)
    down = rotation[..., :, 1][:, :, None, :].expand_as(z)
    x = torch.linalg.cross(down, z, dim=-1)
    x = x / x.norm(dim=-1, keepdim=True)
    y = torch.linalg.cross(z, x, dim=-1)
    world_to_local = torch.stack((x, y, z), dim=-2)  # rows x, y, z = R_l2wᵀ
    translation = -torch.einsum("btsij,btj->btsi", world_to_local, origin)
    P = torch.zeros(*z.shape[:-1], 4, 4, dtype=torch.float32, device=c2w.device)
    P[..., :3, :3] = world_to_local
    P[..., :3, 3] = translation
    P[..., 3, 3] = 1.0
    bad = ~torch.isfinite(P).flatten(-2).all(dim=-1)
    return torch.where(bad[..., None, None], torch.eye(4, device=P.device), P)


def rigid_inverse(P: torch.Tensor) -> torch.Tensor:
    """Closed-form inverse of rigid 4×4 transforms [..., 4, 4]: [[Rᵀ, −Rᵀt], [0, 1]]."""
    rotation_t = P[..., :3, :3].transpose(-1, -2)
    inverse = torch.zeros_like(P)
    inverse[..., :3, :3] = rotation_t
    inverse[..., :3, 3] = -torch.einsum("...ij,...j->...i", rotation_t, P[..., :3, 3])
    inverse[..., 3, 3] = 1.0
    return inverse


@dataclass(frozen=True)
class CameraRays:
    """Per-token UCPE transforms of one call: to_ray = P, from_ray = P⁻¹ [B, T, S, 4, 4], and the half-size RoPE."""

    to_ray: torch.Tensor
    from_ray: torch.Tensor
    rotary: Rotary

    @classmethod
    def from_cameras(cls, c2w: torch.Tensor, K: torch.Tensor, layout: FrameLayout, rotary: Rotary) -> CameraRays:
        P = ray_transforms(c2w, K, layout.height, layout.width)
        return cls(P, rigid_inverse(P), rotary)


def ucpe_transform(x: torch.Tensor, mats: torch.Tensor, rotary: Rotary, *, inverse_rope: bool = False) -> torch.Tensor:
    """(mats ⊕ RoPE) x. x [B, T, S, H, D]: the first D/2 channels are D/8 4-vectors multiplied by mats
    [B, T, S, 4, 4], the last D/2 are rotated by `rotary` (its inverse when `inverse_rope`). Computed in at least
    float32 with autocast off (the camera branch runs in fp32, `fp32_attention`), returned in x's dtype."""
    half, dtype = x.shape[-1] // 2, torch.promote_types(x.dtype, torch.float32)
    geometric = x[..., :half].to(dtype).unflatten(-1, (-1, 4))
    with autocast_off(x.device):
        geometric = torch.einsum("btsij,btshgj->btshgi", mats.to(dtype), geometric).flatten(-2)
    rotated = rotary.apply(x[..., half:].to(dtype), inverse=inverse_rope)
    return torch.cat((geometric, rotated), dim=-1).to(x.dtype)


def discount_beta(beta: torch.Tensor, k_before: torch.Tensor, k_after: torch.Tensor) -> torch.Tensor:
    """β_cam = β / max(mean over the frame's tokens of ‖k_after‖² / ‖k_before‖², 1) per frame and head.

    beta [B, T, S, H], k_before / k_after [B, T, S, H, D] (keys before / after the UCPE transform). A zero key stays
    zero under the transform and counts as inflation 1.
    """
    dtype = torch.promote_types(k_before.dtype, torch.float32)
    before = k_before.to(dtype).pow(2).sum(-1)
    after = k_after.to(dtype).pow(2).sum(-1)
    positive = before > 0
    inflation = torch.where(positive, after / torch.where(positive, before, torch.ones_like(before)), 1.0)
    return beta / inflation.mean(dim=2, keepdim=True).clamp_min(1.0).to(beta.dtype)


class CameraBranch(nn.Module):
    """The camera branch's own parameters: q/k/v projections (Linear C→C with bias), full-channel q/k RMSNorms,
    an optional K short conv (GDN blocks only) and the zero-init output projection `out_proj_cam`.

    `copy_from_main` initialises the projections from the block's main qkv and copies its norms
    (`init_cam_from_base`, §3.2), so at init the branch sees what the main branch sees; `out_proj_cam` = 0 keeps the
    pretrained block unchanged.
    """

    def __init__(self, dim: int, heads: int, *, conv_kernel: int = 0, norm_eps: float = 1e-5):
        super().__init__()
        head_dim = dim // heads
        if (head_dim // 2) % 4 or head_dim % 2:
            raise UserError(f"UCPE needs (head_dim / 2) % 4 == 0, got head_dim {head_dim}")
        self.heads = heads
        self.q_proj_cam = nn.Linear(dim, dim)
        self.k_proj_cam = nn.Linear(dim, dim)
        self.v_proj_cam = nn.Linear(dim, dim)
        self.q_norm_cam = RMSNorm(dim, eps=norm_eps)
        self.k_norm_cam = RMSNorm(dim, eps=norm_eps)
        self.conv_k_cam = TemporalShortConv(dim, conv_kernel) if conv_kernel > 0 else None
        self.out_proj_cam = zero_linear(dim, dim)

    @torch.no_grad()
    def copy_from_main(self, qkv: nn.Linear, q_norm: RMSNorm, k_norm: RMSNorm) -> None:
        for proj, weight in zip((self.q_proj_cam, self.k_proj_cam, self.v_proj_cam), qkv.weight.chunk(3, dim=0)):
            proj.weight.copy_(weight)
            proj.bias.zero_()
        self.q_norm_cam.weight.copy_(q_norm.weight)
        self.k_norm_cam.weight.copy_(k_norm.weight)

    def project(
        self, x: torch.Tensor, layout: FrameLayout, *, tail: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """x [B, T, S, C] -> normed q, k and v [B, T, S, H, D] (before any kernel or UCPE) and the conv tail."""
        q, k, v = self.q_proj_cam(x), self.k_proj_cam(x), self.v_proj_cam(x)
        new_tail = None
        if self.conv_k_cam is not None:
            k, new_tail = self.conv_k_cam(k, chunks=layout.chunks(), tail=tail)
        split = (self.heads, -1)
        return (
            self.q_norm_cam(q).unflatten(-1, split),
            self.k_norm_cam(k).unflatten(-1, split),
            v.unflatten(-1, split),
            new_tail,
        )

    def output(self, mixed: torch.Tensor, rays: CameraRays) -> torch.Tensor:
        """Mixed camera values [B, T, S, H, D] (in ray-local coordinates) -> (P ⊕ RoPE⁻¹), merge heads, out_proj_cam."""
        back = ucpe_transform(mixed, rays.to_ray, rays.rotary, inverse_rope=True)
        return self.out_proj_cam(back.flatten(-2).to(self.out_proj_cam.weight.dtype))
