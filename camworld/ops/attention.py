"""Softmax attention with an optional boolean mask, and the chunk-causal block mask (sana_wm.md §2.4).

Two backends behind one signature: "sdpa" (torch's fused scaled_dot_product_attention) and "reference" (the explicit
softmax(QKᵀ/√D + mask)V that the tests lock the fused path to). Both use the default scale 1/√D.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from camworld.errors import UserError


def _reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    logits = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    if mask is not None:
        logits = logits.masked_fill(~mask, float("-inf"))
    return torch.matmul(torch.softmax(logits, dim=-1), v)


def _sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


_BACKENDS = {"sdpa": _sdpa, "reference": _reference, "auto": _sdpa}


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, mask: torch.Tensor | None = None, backend: str = "auto"
) -> torch.Tensor:
    """Softmax attention.

    q [B, H, Nq, D], k [B, H, Nk, D], v [B, H, Nk, Dv] -> [B, H, Nq, Dv]. `mask` is a bool tensor broadcastable to
    [B, H, Nq, Nk], True where the query may attend to the key; every query row must allow at least one key.
    backend: "sdpa" (fused), "reference" (explicit softmax) or "auto" (= "sdpa").
    """
    if backend not in _BACKENDS:
        raise UserError(f"unknown attention backend {backend!r}; choose one of {sorted(_BACKENDS)}")
    if mask is not None and mask.dtype != torch.bool:
        raise UserError(f"attention mask must be bool (True = may attend), got {mask.dtype}")
    return _BACKENDS[backend](q, k, v, mask)


def chunk_causal_mask(q_chunk: torch.Tensor, k_chunk: torch.Tensor, tokens_per_frame: int) -> torch.Tensor:
    """Block mask letting a query token attend to a key token when chunk(query) >= chunk(key).

    q_chunk [Tq] and k_chunk [Tk] hold the chunk number of each frame (see `chunks.chunk_index`); every frame is
    `tokens_per_frame` consecutive tokens. Returns bool [Tq*S, Tk*S].
    """
    allowed = q_chunk[:, None] >= k_chunk[None, :]
    return allowed.repeat_interleave(tokens_per_frame, dim=0).repeat_interleave(tokens_per_frame, dim=1)
