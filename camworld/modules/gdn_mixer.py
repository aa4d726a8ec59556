"""The frame-wise Gated DeltaNet token mixer of SANA-WM's linear blocks, with its UCPE camera branch (sana_wm.md
§2.3, §3.2), as the released code computes it (`BidirectionalGDN`, `ChunkCausalGDN`, `_forward_cam_branch`):

1. qkv = Linear(C, 3C, no bias)(x); the keys get the bidirectional K short conv (identity at init).
2. Full-channel RMSNorm (eps 1e-5) on q and k, then ReLU; keys scaled by 1/√(D·S).
3. Gates: β = sigmoid(W_β x + b_β) per token and head; γ = exp(−exp(A_log)·softplus(W_g mean_s(x) + b_g + dt_bias))
   per frame and head. Init W_β = 0, b_β = 5, W_g = 0, b_g = 0, dt_bias = −5, A_log = log 1.
4. Numerator: the delta-rule state over RoPE-rotated q, k; normaliser z: the same rule with target 1 over the
   unrotated q, k (`frame_delta_scan` with v = ones). Each is a forward inclusive scan plus a reverse exclusive scan;
   chunk-causal calls zero the reverse β, γ at chunk starts (`FrameLayout.reverse_reset`), so the reverse scan
   never crosses into an earlier chunk, while the forward scan runs over everything before.
5. out = (num_f + num_b) / (den_f + den_b + 1e-8), exactly as the released block (no clamp on the denominator).
6. Camera branch: own projections, K short conv and norms; ReLU, key scale; UCPE on q, k, v; β discounted by the
   key inflation; the main branch's β, γ; numerator-only two-way scan; inverse transform; zero-init out_proj_cam.
7. y = proj((out + out_proj_cam(cam)) ⊙ SiLU(output_gate(x))), output gate W = 0, b = 1.27846 (SiLU(b) = 1).

`gated_delta=False` swaps the delta rule for SANA-Video's cumulative linear attention (an ablation): no gates, the
reverse pass runs chunk by chunk, everything else is unchanged.

Streaming: with a `GdnState`, x is one chunk; the forward scans start from the carried states and the short convs
read the carried tails, so chunk-by-chunk calls equal one chunk-causal call over the whole sequence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from camworld.modules.layout import FrameLayout
from camworld.modules.norms import RMSNorm
from camworld.modules.precision import at_least_fp32, autocast_off
from camworld.modules.rope import Rotary
from camworld.modules.short_conv import TemporalShortConv
from camworld.modules.ucpe import CameraBranch, CameraRays, discount_beta, ucpe_transform
from camworld.ops.gdn import cumulative_linear_scan, frame_delta_scan, key_scale

OUTPUT_GATE_BIAS = 1.278464542761074  # SiLU(b) = 1: the output gate starts as the identity
DENOMINATOR_EPS = 1e-8


@dataclass(frozen=True)
class GdnState:
    """Streaming state of one GDN block. kv, camera_kv [B, H, D, D]; z [B, H, D, 1]; tails [B, k−1, S, C].
    None means "nothing seen yet" (zeros)."""

    kv: torch.Tensor | None = None
    z: torch.Tensor | None = None
    camera_kv: torch.Tensor | None = None
    k_tail: torch.Tensor | None = None
    camera_k_tail: torch.Tensor | None = None


class GdnMixer(nn.Module):
    """x [B, T, S, C] -> [B, T, S, C]. See the module docstring for the maths."""

    def __init__(
        self,
        dim: int,
        heads: int,
        *,
        conv_kernel: int = 4,
        camera: bool = True,
        gated_delta: bool = True,
        backend: str = "auto",
    ):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.gated_delta, self.backend = gated_delta, backend
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.conv_k = TemporalShortConv(dim, conv_kernel) if conv_kernel > 0 else None
        self.q_norm = RMSNorm(dim, eps=1e-5)
        self.k_norm = RMSNorm(dim, eps=1e-5)
        if gated_delta:
            self.beta_proj = nn.Linear(dim, heads)
            self.gate_proj = nn.Linear(dim, heads)
            self.A_log = nn.Parameter(torch.full((heads,), math.log(1.0)))
            self.dt_bias = nn.Parameter(torch.full((heads,), -5.0))
            nn.init.zeros_(self.beta_proj.weight)
            nn.init.constant_(self.beta_proj.bias, 5.0)
            nn.init.zeros_(self.gate_proj.weight)
            nn.init.zeros_(self.gate_proj.bias)
        self.output_gate = nn.Linear(dim, dim)
        nn.init.zeros_(self.output_gate.weight)
        nn.init.constant_(self.output_gate.bias, OUTPUT_GATE_BIAS)
        self.proj = nn.Linear(dim, dim)
        self.camera = CameraBranch(dim, heads, conv_kernel=conv_kernel) if camera else None
        if self.camera is not None:
            self.camera.copy_from_main(self.qkv, self.q_norm, self.k_norm)

    def gates(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, T, S, C] -> (β [B, T, S, H], γ [B, T, H]) in at least float32."""
        beta_logits, pooled = at_least_fp32(self.beta_proj(x), self.gate_proj(x.mean(dim=2)))
        beta = torch.sigmoid(beta_logits)
        gamma = torch.exp(-self.A_log.to(pooled.dtype).exp() * F.softplus(pooled + self.dt_bias.to(pooled.dtype)))
        return beta, gamma

    def forward(
        self,
        x: torch.Tensor,
        layout: FrameLayout,
        rotary: Rotary,
        rays: CameraRays | None = None,
        state: GdnState | None = None,
    ) -> tuple[torch.Tensor, GdnState | None]:
        """x [B, T, S, C] -> (y [B, T, S, C], new state or None when `state` is None)."""
        previous = state if state is not None else GdnState()
        chunks, scale = layout.chunks(), key_scale(self.head_dim, layout.tokens_per_frame)
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        k_tail = None
        if self.conv_k is not None:
            k, k_tail = self.conv_k(k, chunks=chunks, tail=previous.k_tail)
        split = (self.heads, self.head_dim)
        q = F.relu(self.q_norm(q)).unflatten(-1, split)
        k = F.relu(self.k_norm(k)).unflatten(-1, split) * scale
        v = v.unflatten(-1, split)
        beta, gamma = self.gates(x) if self.gated_delta else (None, None)
        reset = layout.reverse_reset().to(x.device)
        mix = self._two_way if self.gated_delta else self._two_way_cumulative

        numerator, kv = mix(rotary.apply(q), rotary.apply(k), v, beta, gamma, reset, chunks, previous.kv)
        ones = v.new_ones((*v.shape[:-1], 1))
        denominator, z = mix(q, k, ones, beta, gamma, reset, chunks, previous.z)
        out = (numerator / (denominator + DENOMINATOR_EPS)).to(x.dtype).flatten(-2)

        camera_kv, camera_tail = previous.camera_kv, previous.camera_k_tail
        if self.camera is not None and rays is not None:
            cq, ck, cv, camera_tail = self.camera.project(x, layout, tail=previous.camera_k_tail)
            cq, ck = F.relu(cq), F.relu(ck) * scale
            cq_ray = ucpe_transform(cq, rays.to_ray.transpose(-1, -2), rays.rotary)
            ck_ray = ucpe_transform(ck, rays.from_ray, rays.rotary)
            cv_ray = ucpe_transform(cv, rays.from_ray, rays.rotary)
            camera_beta = discount_beta(beta, ck, ck_ray) if self.gated_delta else None
            mixed, camera_kv = mix(cq_ray, ck_ray, cv_ray, camera_beta, gamma, reset, chunks, previous.camera_kv)
            out = out + self.camera.output(mixed, rays).to(out.dtype)

        y = self.proj(out * F.silu(self.output_gate(x)))
        if state is None:
            return y, None
        return y, GdnState(kv=kv, z=z, camera_kv=camera_kv, k_tail=k_tail, camera_k_tail=camera_tail)

    def _two_way(self, q, k, v, beta, gamma, reset, chunks, initial):
        """Forward inclusive scan (from `initial`) + reverse exclusive scan reset at `reset` frames, in fp32 with
        autocast off (Sana keeps the recurrent state in fp32). Returns (o [B, T, S, H, V], final forward state)."""
        q, k, v = at_least_fp32(q, k, v)
        with autocast_off(q.device):
            forward, final = frame_delta_scan(
                q, k, v, beta, gamma, initial_state=initial, return_state=True, backend=self.backend
            )
            keep = (~reset).to(gamma.dtype)
            backward = frame_delta_scan(
                q, k, v, beta * keep[:, None, None], gamma * keep[:, None], reverse=True, backend=self.backend
            )
        return forward + backward, final

    def _two_way_cumulative(self, q, k, v, beta, gamma, reset, chunks, initial):
        """The cumulative-linear ablation: forward over everything, reverse inside each chunk (fp32, no autocast)."""
        del beta, gamma, reset
        q, k, v = at_least_fp32(q, k, v)
        with autocast_off(q.device):
            forward, final = cumulative_linear_scan(q, k, v, initial_state=initial, return_state=True)
            backward = torch.cat(
                [cumulative_linear_scan(q[:, s:e], k[:, s:e], v[:, s:e], reverse=True) for s, e in chunks], dim=1
            )
        return forward + backward, final
