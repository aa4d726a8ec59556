"""`WorldDiT`: SANA-WM's Hybrid Linear DiT with dual-branch camera control (sana_wm.md §2, §3), and `CameraInputs`.

Pipeline per call (patch size 1 × 1 × 1, so one latent pixel = one token):
- x_embedder: per-token Linear(Cin, C); caption embedder on the text states (§2.6);
- timestep per latent frame, t = 1000·σ: TimestepEmbedder -> t_emb [B, T, C]; t_block = SiLU -> Linear(C, 6C)
  gives each frame its own adaLN parameters (`forward_frame_aware`);
- cameras: ray-local UCPE transforms from the latent-rate c2w + latent-grid K (coarse branch, every block) and the
  Plücker embedding of the raw-rate rays through each block's zero-init projection (fine branch, added after the
  block's self-attention; `camworld.modules.plucker_branch` says why the shared embedder is not zero-init);
- `depth` blocks (`WorldBlock`), softmax every `softmax_every`-th, the rest frame-wise GDN;
- T2I final layer: LayerNorm without affine, shift/scale = table[2, C] + t_emb per frame, Linear(C, Cin).

Modes: bidirectional (`causal=False`), chunk-causal (`causal=True`, chunk plan cfg.chunk_first then cfg.chunk_size),
and streaming (`init_state` + `step`, one chunk per call) which equals the chunk-causal forward exactly; with
`windowed=True` the chunk-causal forward also restricts softmax layers to the streaming KV window (sink + window
chunks), so the equality holds however long the rollout.

Initialisation follows Sana's `initialize`: t_embedder, t_block and the caption MLP ~ N(0, 0.02), x_embedder Xavier,
other Linear layers keep torch's default (Sana re-initialises them with Xavier, then loads a checkpoint anyway); the
branch-specific inits (GDN gates, output gates, zero-init camera projections) live in their modules.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from camworld.config import ModelConfig
from camworld.errors import UserError
from camworld.models.block import WorldBlock
from camworld.models.state import StreamState
from camworld.modules.conditioning import CaptionEmbedder, TimestepEmbedder
from camworld.modules.layout import FrameLayout
from camworld.modules.norms import modulate
from camworld.modules.plucker_branch import PluckerEmbedder
from camworld.modules.rope import rotary_tables
from camworld.modules.ucpe import CameraRays


@dataclass(frozen=True)
class CameraInputs:
    """Camera conditions of the latent frames: c2w [B, T, 4, 4] (relativised, OpenCV), K [B, T, 3, 3] in latent-grid
    pixels (UCPE branch) and plucker [B, T, h, w, 6·stride] (raw-rate Plücker rays, `camworld.camera.pack_plucker`)."""

    c2w: torch.Tensor
    K: torch.Tensor
    plucker: torch.Tensor

    def frames(self, start: int, end: int) -> CameraInputs:
        """The cameras of latent frames start..end-1 (e.g. one chunk for `WorldDiT.step`)."""
        return CameraInputs(self.c2w[:, start:end], self.K[:, start:end], self.plucker[:, start:end])

    def to(self, device) -> CameraInputs:
        return CameraInputs(self.c2w.to(device), self.K.to(device), self.plucker.to(device))


def check_model_config(cfg: ModelConfig) -> None:
    """Raise UserError for widths the blocks cannot be built with."""
    if cfg.dim % cfg.heads:
        raise UserError(f"model dim {cfg.dim} is not divisible by heads {cfg.heads}")
    head_dim = cfg.dim // cfg.heads
    if head_dim % 2 or head_dim < 6:
        raise UserError(f"head dim {head_dim} must be even and >= 6 for the 3D RoPE")
    if cfg.ucpe and (head_dim // 2) % 4:
        raise UserError(f"UCPE needs (head_dim / 2) % 4 == 0, got head_dim {head_dim}")
    if cfg.depth < 1 or cfg.softmax_every < 0:
        raise UserError(f"need depth >= 1 and softmax_every >= 0, got {cfg.depth}, {cfg.softmax_every}")


class WorldDiT(nn.Module):
    """Velocity prediction v [B, T, h, w, Cin] from noisy latents, per-frame σ, text and cameras."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        check_model_config(cfg)
        self.cfg = cfg
        dim = cfg.dim
        self.head_dim = dim // cfg.heads
        self.x_embedder = nn.Linear(cfg.in_channels, dim)
        self.t_embedder = TimestepEmbedder(dim)
        self.t_block = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))
        self.y_embedder = CaptionEmbedder(cfg.text_dim, dim)
        self.plucker_embedder = PluckerEmbedder(6 * cfg.temporal_stride, dim) if cfg.plucker else None
        self.blocks = nn.ModuleList(WorldBlock(cfg, i) for i in range(cfg.depth))
        self.final_norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.final_table = nn.Parameter(torch.randn(2, dim) / dim**0.5)
        self.final_linear = nn.Linear(dim, cfg.in_channels)
        nn.init.xavier_uniform_(self.x_embedder.weight)
        nn.init.zeros_(self.x_embedder.bias)
        for layer in (self.t_embedder.mlp[0], self.t_embedder.mlp[2], self.t_block[1]):
            nn.init.normal_(layer.weight, std=0.02)
        for layer in (self.y_embedder.mlp[0], self.y_embedder.mlp[2]):
            nn.init.normal_(layer.weight, std=0.02)

    def forward(
        self,
        x: torch.Tensor,
        sigma: torch.Tensor,
        text: torch.Tensor,
        text_mask: torch.Tensor,
        camera: CameraInputs | None = None,
        *,
        causal: bool = False,
        windowed: bool = False,
    ) -> torch.Tensor:
        """x [B, T, h, w, Cin], sigma [B, T] (or [B]) in [0, 1], text [B, L, text_dim], text_mask [B, L] bool,
        camera None (no camera control: both camera branches are skipped) -> v [B, T, h, w, Cin].

        `causal`: chunk-causal instead of bidirectional. `windowed` (causal only): softmax layers see only the sink
        and window chunks of the streaming KV cache.
        """
        if windowed and not causal:
            raise UserError("windowed attention needs causal=True")
        plan = (self.cfg.chunk_first, self.cfg.chunk_size) if causal else None
        layout = FrameLayout(x.shape[1], x.shape[2], x.shape[3], 0, plan)
        v, _ = self._run(x, sigma, text, text_mask, camera, layout, None, windowed)
        return v

    def init_state(self, batch: int) -> StreamState:
        """The state before the first chunk of a streamed rollout of `batch` videos."""
        return StreamState(batch, tuple(block.initial_state() for block in self.blocks))

    def step(
        self,
        x_chunk: torch.Tensor,
        sigma_chunk: torch.Tensor,
        text: torch.Tensor,
        text_mask: torch.Tensor,
        camera_chunk: CameraInputs | None,
        state: StreamState,
    ) -> tuple[torch.Tensor, StreamState]:
        """Run the next chunk: x_chunk [B, n, h, w, Cin] with n the plan's next chunk length (or fewer for a final
        short chunk), sigma_chunk [B, n] -> (v_chunk [B, n, h, w, Cin], state after this chunk). `state` is kept."""
        if x_chunk.shape[0] != state.batch:
            raise UserError(f"chunk batch {x_chunk.shape[0]} does not match the stream's batch {state.batch}")
        plan = (self.cfg.chunk_first, self.cfg.chunk_size)
        layout = FrameLayout(x_chunk.shape[1], x_chunk.shape[2], x_chunk.shape[3], state.frame_offset, plan)
        if len(layout.chunks()) != 1:
            expected, start = layout.chunks()[0][1], state.frame_offset
            raise UserError(f"step takes one chunk: {expected} frames at frame {start}, got {layout.num_frames}")
        v, blocks = self._run(x_chunk, sigma_chunk, text, text_mask, camera_chunk, layout, state.blocks, False)
        return v, StreamState(state.batch, blocks, state.frame_offset + layout.num_frames, state.chunks_done + 1)

    def _run(self, x, sigma, text, text_mask, camera, layout: FrameLayout, states, windowed: bool):
        b, t, h, w, _ = x.shape
        if sigma.dim() == 1:
            sigma = sigma[:, None].expand(b, t)
        if tuple(sigma.shape) != (b, t):
            raise UserError(f"sigma must be [B, T] = [{b}, {t}], got {list(sigma.shape)}")
        tokens = self.x_embedder(x).reshape(b, t, h * w, -1)
        t_emb = self.t_embedder(sigma * 1000.0)
        t0 = self.t_block(t_emb)
        text_tokens = self.y_embedder(text)
        frames = layout.frame_indices().to(x.device)
        rotary = rotary_tables(frames, h, w, self.head_dim, theta=self.cfg.rope_theta)
        rays, plucker = self._camera_features(camera, layout, frames, b)
        new_states = []
        for i, block in enumerate(self.blocks):
            args = (tokens, t0, text_tokens, text_mask, layout, rotary, rays, plucker)
            state = states[i] if states is not None else None
            if self.cfg.gradient_checkpointing and self.training and torch.is_grad_enabled():
                tokens, state = checkpoint(block, *args, state, windowed, use_reentrant=False)
            else:
                tokens, state = block(*args, state, windowed)
            new_states.append(state)
        shift, scale = (self.final_table[None, None] + t_emb[:, :, None]).unsqueeze(2).unbind(dim=3)
        out = self.final_linear(modulate(self.final_norm(tokens), shift, scale))
        return out.reshape(b, t, h, w, -1), tuple(new_states)

    def _camera_features(self, camera: CameraInputs | None, layout: FrameLayout, frames: torch.Tensor, batch: int):
        """(UCPE rays or None, Plücker embedding [B, T, S, C] or None) of this call's cameras."""
        if camera is None:
            return None, None
        t, h, w = layout.num_frames, layout.height, layout.width
        rays = plucker = None
        if self.cfg.ucpe:
            if tuple(camera.c2w.shape) != (batch, t, 4, 4) or tuple(camera.K.shape) != (batch, t, 3, 3):
                raise UserError(f"camera c2w/K must be [{batch}, {t}, 4, 4] / [{batch}, {t}, 3, 3]")
            half = rotary_tables(frames, h, w, self.head_dim, theta=self.cfg.rope_theta, rotary_dim=self.head_dim // 2)
            rays = CameraRays.from_cameras(camera.c2w, camera.K, layout, half)
        if self.plucker_embedder is not None:
            expected = (batch, t, h, w, 6 * self.cfg.temporal_stride)
            if tuple(camera.plucker.shape) != expected:
                raise UserError(f"camera plucker must be {list(expected)}, got {list(camera.plucker.shape)}")
            plucker = self.plucker_embedder(camera.plucker).reshape(batch, t, h * w, -1)
        return rays, plucker
