"""The frame-wise gated delta rule as a plain per-frame loop: the specification the fast backends are tested against.

Per head, with the state S ∈ R^{K×V} (key index × value index) and frame t's keys K_t ∈ R^{S×K}, values
V_t ∈ R^{S×V}, queries Q_t ∈ R^{S×K}, per-token gates β_t ∈ [0,1]^S and one decay γ_t ∈ (0,1] (sana_wm.md §2.3):

    absorb(t):  Sp = γ_t S ;  S = Sp + K_tᵀ diag(β_t) (V_t − K_t Sp)
    forward (inclusive):  for t = 0..T-1:     absorb(t); o_t = Q_t S
    reverse (exclusive):  for t = T-1..0:     o_t = Q_t S; absorb(t)

All S tokens of a frame read the same pre-update state Sp; this is what makes the rule frame-wise, unlike the
token-wise gated delta rule that fla implements.
"""

from __future__ import annotations

import torch


def absorb_frame(
    state: torch.Tensor, k: torch.Tensor, v: torch.Tensor, beta: torch.Tensor, gamma: torch.Tensor
) -> torch.Tensor:
    """One frame's update. state [B, H, K, V], k [B, S, H, K], v [B, S, H, V], beta [B, S, H], gamma [B, H]."""
    decayed = gamma[:, :, None, None] * state
    predicted = torch.einsum("bshk,bhkv->bshv", k, decayed)
    correction = beta[..., None] * (v - predicted)
    return decayed + torch.einsum("bshk,bshv->bhkv", k, correction)


def frame_delta_scan_reference(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    beta: torch.Tensor,
    gamma: torch.Tensor,
    *,
    reverse: bool,
    initial_state: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The loop. q, k [B, T, S, H, K]; v [B, T, S, H, V]; beta [B, T, S, H]; gamma [B, T, H];
    initial_state [B, H, K, V]. Returns (o [B, T, S, H, V], final state [B, H, K, V])."""
    state = initial_state
    outputs = [None] * q.shape[1]
    frames = range(q.shape[1] - 1, -1, -1) if reverse else range(q.shape[1])
    for t in frames:
        if reverse:
            outputs[t] = torch.einsum("bshk,bhkv->bshv", q[:, t], state)
        state = absorb_frame(state, k[:, t], v[:, t], beta[:, t], gamma[:, t])
        if not reverse:
            outputs[t] = torch.einsum("bshk,bhkv->bshv", q[:, t], state)
    return torch.stack(outputs, dim=1), state
