"""Exact context parallelism for the frame-wise GDN scan (sana_wm.md §2.3 "Context-parallel training").

Ranks own consecutive frame ranges of one clip (rank r holds frames before rank r + 1's). The per-frame update
S ← M_t S + U_t with M_t = γ_t (I − K_tᵀ diag(β_t) K_t) and U_t = K_tᵀ diag(β_t) V_t is affine in the state, so a
rank's whole range acts as S_end = C_p S_start + H_p. Each rank

  1. computes its transition composite C_p [K, K] and input composite H_p [K, V] with one local scan
     (`frame_delta_scan` on v' = [V | 0] from the initial state [0 | I]: the state then carries [H | C]),
  2. all-gathers the (C_p, H_p) of every rank,
  3. takes the exclusive prefix S̄_0 = 0, S̄_{p+1} = C_p S̄_p + H_p (for the reverse scan the same fold runs from
     the last rank down, with composites of the reversed order), and
  4. rescans its own frames from S̄_p.

SANA-WM writes the state as [V, K] and multiplies on the right (S̄_{p+1} = S̄_p C_p + H_p); camworld's state is
[K, V] (`camworld.ops.gdn`), so the same composites multiply on the left. Gradients flow through the gather (its
backward sums every rank's gradient of the gathered composites), so the result is exact in forward and backward.
The K short conv and FFN temporal conv need a halo exchange of the neighbouring frames, which is the model's
concern, not this op's. Chunk-causal reverse scans pass gates already zeroed at chunk starts.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from camworld.ops.gdn import frame_delta_scan


class _GatherComposites(torch.autograd.Function):
    """all_gather forward; backward all-reduces the gradient of the gathered stack and keeps this rank's slice."""

    @staticmethod
    def forward(ctx, local: torch.Tensor, group) -> torch.Tensor:
        ctx.group = group
        ctx.rank = dist.get_rank(group)
        parts = [torch.empty_like(local) for _ in range(dist.get_world_size(group))]
        dist.all_gather(parts, local.contiguous(), group=group)
        return torch.stack(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.contiguous()
        dist.all_reduce(grad, group=ctx.group)
        return grad[ctx.rank], None


def local_composites(q, k, v, beta, gamma, *, reverse: bool = False, backend: str = "auto") -> torch.Tensor:
    """[B, H, K, V + K]: this rank's input composite H_p followed by its transition composite C_p.

    The scan order is the op's order (forward: first to last frame; reverse: last to first), so for either
    direction S_after_range = C_p S_before_range + H_p. Inputs are `frame_delta_scan`'s.
    """
    b, _, _, h, dk = k.shape
    zeros = v.new_zeros(*v.shape[:-1], dk)
    eye = torch.eye(dk, dtype=torch.float32, device=v.device).expand(b, h, dk, dk)
    start = torch.cat([torch.zeros(b, h, dk, v.shape[-1], device=v.device), eye], dim=-1)
    _, state = frame_delta_scan(
        q, k, torch.cat([v, zeros], dim=-1), beta, gamma,
        reverse=reverse, initial_state=start, return_state=True, backend=backend,
    )
    return state


def prefix_state(composites: torch.Tensor, rank: int, *, reverse: bool = False) -> torch.Tensor:
    """The state entering rank `rank`'s frames from the gathered composites [P, B, H, K, V + K]."""
    dv = composites.shape[-1] - composites.shape[-2]
    state = torch.zeros_like(composites[0, ..., :dv])
    order = range(composites.shape[0] - 1, rank, -1) if reverse else range(rank)
    for p in order:
        h_p, c_p = composites[p, ..., :dv], composites[p, ..., dv:]
        state = c_p @ state + h_p
    return state


def context_parallel_delta_scan(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    beta: torch.Tensor,
    gamma: torch.Tensor,
    *,
    reverse: bool = False,
    group=None,
    backend: str = "auto",
) -> torch.Tensor:
    """`frame_delta_scan` over a clip whose frames are split across the ranks of `group` in rank order.

    q, k [B, T_p, S, H, K]; v [B, T_p, S, H, V]; beta [B, T_p, S, H]; gamma [B, T_p, H]: this rank's frames
    (T_p may differ between ranks). Returns this rank's o [B, T_p, S, H, V], equal to the matching frames of a
    single-process scan over the whole clip.
    """
    composites = local_composites(q, k, v, beta, gamma, reverse=reverse, backend=backend)
    gathered = _GatherComposites.apply(composites, group)
    start = prefix_state(gathered, dist.get_rank(group), reverse=reverse)
    # The gather's backward is a collective, so every rank's graph must reach it; the first rank (the last one for
    # the reverse scan) reads no composite, so it is tied to the gather by a term of weight zero.
    start = start + 0.0 * gathered.sum()
    return frame_delta_scan(q, k, v, beta, gamma, reverse=reverse, initial_state=start, backend=backend)
