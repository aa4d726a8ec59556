"""One block of the Hybrid Linear DiT (sana_wm.md §2.2 `SanaVideoMSCamCtrlBlock.forward_frame_aware`).

With per-frame adaLN parameters t0 [B, T, 6C] broadcast over each frame's tokens:

    (shift1, scale1, gate1, shift2, scale2, gate2) = scale_shift_table + t0
    x = x + gate1 · SelfAttn(LN(x)·(1 + scale1) + shift1)     # GDN or softmax mixer, UCPE camera branch inside
    x = x + plucker_proj(plucker_emb)                         # zero-init Linear(C, C), the fine camera branch
    x = x + CrossAttn(x, text)                                # no gate, no norm on x (Sana convention)
    x = x + gate2 · FFN(LN(x)·(1 + scale2) + shift2)          # GLUMBConvTemp

LN is LayerNorm without affine (eps 1e-6). Block i is softmax iff softmax_every > 0 and (i + 1) % softmax_every == 0.
"""

from __future__ import annotations

import torch
from torch import nn

from camworld.config import ModelConfig
from camworld.models.state import BlockState
from camworld.modules.attn_mixer import SoftmaxMixer
from camworld.modules.conditioning import CrossAttention
from camworld.modules.ffn import GLUConvFFN
from camworld.modules.gdn_mixer import GdnMixer, GdnState
from camworld.modules.layout import FrameLayout
from camworld.modules.norms import modulate, zero_linear
from camworld.modules.rope import Rotary
from camworld.modules.ucpe import CameraRays


def is_softmax_block(cfg: ModelConfig, index: int) -> bool:
    return cfg.softmax_every > 0 and (index + 1) % cfg.softmax_every == 0


class WorldBlock(nn.Module):
    """x [B, T, S, C] -> [B, T, S, C]."""

    def __init__(self, cfg: ModelConfig, index: int):
        super().__init__()
        dim = cfg.dim
        self.softmax = is_softmax_block(cfg, index)
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        if self.softmax:
            self.attn = SoftmaxMixer(
                dim, cfg.heads, camera=cfg.ucpe, sink_chunks=cfg.kv_sink_chunks, window_chunks=cfg.kv_window_chunks
            )
        else:
            self.attn = GdnMixer(
                dim,
                cfg.heads,
                conv_kernel=cfg.conv_kernel,
                camera=cfg.ucpe,
                gated_delta=cfg.gated_delta,
                backend=cfg.gdn_backend,
            )
        self.plucker_proj = zero_linear(dim, dim) if cfg.plucker else None
        self.cross_attn = CrossAttention(dim, cfg.heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.ffn = GLUConvFFN(dim, dim * cfg.ffn_ratio, temporal_kernel=3)
        self.scale_shift_table = nn.Parameter(torch.randn(6, dim) / dim**0.5)

    def initial_state(self) -> BlockState:
        return BlockState(self.attn.initial_state() if self.softmax else GdnState())

    def forward(
        self,
        x: torch.Tensor,
        t0: torch.Tensor,
        text: torch.Tensor,
        text_mask: torch.Tensor,
        layout: FrameLayout,
        rotary: Rotary,
        rays: CameraRays | None,
        plucker: torch.Tensor | None,
        state: BlockState | None,
        windowed: bool = False,
    ) -> tuple[torch.Tensor, BlockState | None]:
        """x [B, T, S, C], t0 [B, T, 6C], text [B, L, C], text_mask [B, L], plucker [B, T, S, C] or None.
        Returns the new x and, when `state` is given (streaming), the block's new state."""
        b, t, s, c = x.shape
        mods = (self.scale_shift_table[None, None] + t0.unflatten(-1, (6, c))).unsqueeze(2)  # [B, T, 1, 6, C]
        shift1, scale1, gate1, shift2, scale2, gate2 = mods.unbind(dim=3)
        h = modulate(self.norm1(x), shift1, scale1)
        mixer_state = state.mixer if state is not None else None
        if self.softmax:
            attn, mixer_state = self.attn(h, layout, rotary, rays, mixer_state, windowed=windowed)
        else:
            attn, mixer_state = self.attn(h, layout, rotary, rays, mixer_state)
        x = x + gate1 * attn
        if self.plucker_proj is not None and plucker is not None:
            x = x + self.plucker_proj(plucker)
        x = x + self.cross_attn(x.reshape(b, t * s, c), text, text_mask).reshape(b, t, s, c)
        h = modulate(self.norm2(x), shift2, scale2).reshape(b, t, layout.height, layout.width, c)
        ffn, ffn_tail = self.ffn(h, chunks=layout.chunks(), tail=state.ffn_tail if state is not None else None)
        x = x + gate2 * ffn.reshape(b, t, s, c)
        if state is None:
            return x, None
        return x, BlockState(mixer_state, ffn_tail)
