"""`StreamState`: everything a chunk-by-chunk rollout of `WorldDiT` carries from one chunk to the next (§6.5).

Per block: the GDN recurrent states (main numerator S, normaliser z, camera S) and the K short-conv tails, or the
softmax KV caches (sink + window chunks, main and camera); plus the FFN temporal-conv tail. And the absolute frame
offset, which gives the RoPE time positions and the chunk numbers of the next chunk. States are values: `step`
returns a new one and never changes the old, so a sampler can denoise a chunk several times from the same state and
keep only the state of its final (σ = 0, "KV save") pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from camworld.modules.attn_mixer import AttnState
from camworld.modules.gdn_mixer import GdnState


@dataclass(frozen=True)
class BlockState:
    """One block's carried state: its token mixer's state and the FFN temporal-conv tail [B, 1, h, w, C]."""

    mixer: GdnState | AttnState
    ffn_tail: torch.Tensor | None = None


@dataclass(frozen=True)
class StreamState:
    """The rollout state after `frame_offset` latent frames (`chunks_done` chunks) of a batch of `batch` videos."""

    batch: int
    blocks: tuple[BlockState, ...]
    frame_offset: int = 0
    chunks_done: int = 0
