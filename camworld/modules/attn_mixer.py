"""The softmax token mixer of every 4th SANA-WM block, with its UCPE camera branch (sana_wm.md §2.4, §3.2).

Same parameter layout as the GDN mixer minus the short conv: qkv = Linear(C, 3C, no bias), full-channel RMSNorm on
q and k (no ReLU), 3D RoPE on q and k, softmax attention with scale 1/√D, y = proj((out + out_proj_cam(cam)) ⊙
SiLU(output_gate(x))). The camera branch is a parallel softmax attention over the UCPE-transformed q̃, k̃, ṽ (own
projections and norms, no ReLU, no key scale, no short conv), inverse-transformed before its zero-init out_proj_cam.

Deliberate differences from the released code: the unused GDN gate parameters of softmax blocks are left out, and
chunk-causal calls use the block mask chunk(q) ≥ chunk(k) (§2.4 recommends it; the released chunk-causal teacher
attends bidirectionally inside whatever prefix it is fed).

Masks: bidirectional = full attention; chunk-causal = chunk(q) ≥ chunk(k); `windowed` additionally keeps only the
`sink` first chunks and the `window` chunks before the query's own, which is exactly what streaming attends to
through its `SinkWindowKVCache`, so a windowed chunk-causal call equals a streamed rollout.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from camworld.modules.gdn_mixer import OUTPUT_GATE_BIAS
from camworld.modules.layout import FrameLayout
from camworld.modules.norms import RMSNorm
from camworld.modules.precision import at_least_fp32, autocast_off
from camworld.modules.rope import Rotary
from camworld.modules.ucpe import CameraBranch, CameraRays, ucpe_transform
from camworld.ops.attention import attention
from camworld.ops.kv_cache import SinkWindowKVCache


@dataclass(frozen=True)
class AttnState:
    """Streaming state of one softmax block: post-RoPE main keys/values and post-UCPE camera keys/values."""

    cache: SinkWindowKVCache
    camera_cache: SinkWindowKVCache


def chunk_window_mask(layout: FrameLayout, sink: int | None = None, window: int | None = None) -> torch.Tensor:
    """Token mask [T·S, T·S] (True = may attend): chunk(q) ≥ chunk(k), and when `sink`/`window` are given also
    chunk(k) < sink or chunk(k) ≥ chunk(q) − window."""
    ids = layout.chunk_ids()
    allowed = ids[:, None] >= ids[None, :]
    if sink is not None:
        allowed &= (ids[None, :] < sink) | (ids[None, :] >= ids[:, None] - window)
    s = layout.tokens_per_frame
    return allowed.repeat_interleave(s, dim=0).repeat_interleave(s, dim=1)


def _heads_first(x: torch.Tensor) -> torch.Tensor:
    """[B, T, S, H, D] -> [B, H, T·S, D]."""
    return x.flatten(1, 2).transpose(1, 2)


class SoftmaxMixer(nn.Module):
    """x [B, T, S, C] -> [B, T, S, C]; `sink_chunks` / `window_chunks` size the streaming KV cache."""

    def __init__(self, dim: int, heads: int, *, camera: bool = True, sink_chunks: int = 1, window_chunks: int = 2):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.sink_chunks, self.window_chunks = sink_chunks, window_chunks
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.q_norm = RMSNorm(dim, eps=1e-5)
        self.k_norm = RMSNorm(dim, eps=1e-5)
        self.output_gate = nn.Linear(dim, dim)
        nn.init.zeros_(self.output_gate.weight)
        nn.init.constant_(self.output_gate.bias, OUTPUT_GATE_BIAS)
        self.proj = nn.Linear(dim, dim)
        self.camera = CameraBranch(dim, heads) if camera else None
        if self.camera is not None:
            self.camera.copy_from_main(self.qkv, self.q_norm, self.k_norm)

    def initial_state(self) -> AttnState:
        return AttnState(
            SinkWindowKVCache(self.sink_chunks, self.window_chunks),
            SinkWindowKVCache(self.sink_chunks, self.window_chunks),
        )

    def forward(
        self,
        x: torch.Tensor,
        layout: FrameLayout,
        rotary: Rotary,
        rays: CameraRays | None = None,
        state: AttnState | None = None,
        *,
        windowed: bool = False,
    ) -> tuple[torch.Tensor, AttnState | None]:
        """x [B, T, S, C] -> (y [B, T, S, C], new state or None when `state` is None).

        With a state, x must be one whole chunk: it attends to the cached chunks and to itself.
        """
        mask = None
        if state is None and layout.causal:
            sink, window = (self.sink_chunks, self.window_chunks) if windowed else (None, None)
            mask = chunk_window_mask(layout, sink, window).to(x.device)
        split = (self.heads, self.head_dim)
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        q = rotary.apply(self.q_norm(q).unflatten(-1, split))
        k = rotary.apply(self.k_norm(k).unflatten(-1, split))
        v = v.unflatten(-1, split)
        out, cache = self._attend(q, k, v, mask, state.cache if state is not None else None)
        out = out.flatten(-2)

        camera_cache = state.camera_cache if state is not None else None
        if self.camera is not None and rays is not None:
            cq, ck, cv, _ = self.camera.project(x, layout)
            cq = ucpe_transform(cq, rays.to_ray.transpose(-1, -2), rays.rotary)
            ck = ucpe_transform(ck, rays.from_ray, rays.rotary)
            cv = ucpe_transform(cv, rays.from_ray, rays.rotary)
            with autocast_off(x.device):  # the camera branch runs in fp32 (§2.2)
                mixed, camera_cache = self._attend(*at_least_fp32(cq, ck, cv), mask, camera_cache)
            out = out + self.camera.output(mixed, rays).to(out.dtype)

        y = self.proj(out * F.silu(self.output_gate(x)))
        if state is None:
            return y, None
        return y, AttnState(cache, camera_cache)

    def _attend(self, q, k, v, mask, cache: SinkWindowKVCache | None):
        """Attention of q [B, T, S, H, D] over k, v (plus the cached chunks) -> ([B, T, S, H, D], new cache)."""
        shape = q.shape
        q, k, v = _heads_first(q), _heads_first(k), _heads_first(v)
        new_cache = None
        if cache is not None:
            keys, values = cache.keys_values(current=(k, v))
            new_cache = cache.append_chunk(k, v)
        else:
            keys, values = k, v
        out = attention(q, keys, values, mask=mask)
        return out.transpose(1, 2).reshape(shape), new_cache
