"""Public entry points of the frame-wise gated delta rule and of cumulative linear attention (sana_wm.md §2.3).

`frame_delta_scan` is one signature over three backends that compute the same maths:
    "reference"  gdn_reference.py, the per-frame loop (the specification)
    "chunked"    gdn_chunked.py, batched transitions + a small K×K scan (fast pure torch, any device)
    "fla"        gdn_fla.py, flash-linear-attention's CUDA kernel; exact only for one token per frame
    "auto"       "fla" for CUDA tensors with S == 1 when fla imports, else "chunked"

Scans run in at least float32 (bf16/fp16 inputs are promoted, float64 stays float64); the output is cast back to
the input dtype and the returned state keeps the compute dtype, so a streamed state does not lose precision.
The key scale 1/√(D·S) of the "spatial explosion" fix is the caller's job (see `key_scale`).
"""

from __future__ import annotations

import torch

from camworld.errors import UserError
from camworld.ops.gdn_chunked import frame_delta_scan_chunked
from camworld.ops.gdn_fla import fla_available, fla_trusted, frame_delta_scan_fla
from camworld.ops.gdn_reference import frame_delta_scan_reference

_BACKENDS = {
    "reference": frame_delta_scan_reference,
    "chunked": frame_delta_scan_chunked,
    "fla": frame_delta_scan_fla,
}


def key_scale(head_dim: int, tokens_per_frame: int) -> float:
    """The key scale 1/√(D·S) that keeps tr(K̂ᵀβK̂) ≤ 1 for ReLU(RMSNorm(k)) keys (sana_wm.md §2.3)."""
    if head_dim < 1 or tokens_per_frame < 1:
        raise UserError(f"head_dim and tokens_per_frame must be >= 1, got {head_dim}, {tokens_per_frame}")
    return float(head_dim * tokens_per_frame) ** -0.5


def _resolve(backend: str, q: torch.Tensor):
    if backend == "auto":
        # fla only where it is exact (one token per frame) and its kernels hold up on this GPU and Triton
        use_fla = q.is_cuda and q.shape[2] == 1 and fla_available() and fla_trusted()
        return frame_delta_scan_fla if use_fla else frame_delta_scan_chunked
    if backend not in _BACKENDS:
        raise UserError(f"unknown frame_delta_scan backend {backend!r}; choose one of {sorted(_BACKENDS) + ['auto']}")
    return _BACKENDS[backend]


def _check_shapes(q, k, v, beta, gamma, initial_state) -> None:
    if q.dim() != 5 or k.shape != q.shape:
        raise UserError(f"q and k must both be [B, T, S, H, K], got {tuple(q.shape)} and {tuple(k.shape)}")
    b, t, s, h, dk = q.shape
    if v.dim() != 5 or tuple(v.shape[:4]) != (b, t, s, h):
        raise UserError(f"v must be [B, T, S, H, V] = [{b}, {t}, {s}, {h}, V], got {tuple(v.shape)}")
    if tuple(beta.shape) != (b, t, s, h):
        raise UserError(f"beta must be [B, T, S, H] = {[b, t, s, h]}, got {list(beta.shape)}")
    if tuple(gamma.shape) != (b, t, h):
        raise UserError(f"gamma must be [B, T, H] = {[b, t, h]}, got {list(gamma.shape)}")
    if initial_state is not None and tuple(initial_state.shape) != (b, h, dk, v.shape[-1]):
        expected = [b, h, dk, v.shape[-1]]
        raise UserError(f"initial_state must be [B, H, K, V] = {expected}, got {list(initial_state.shape)}")


def _compute_dtype(*tensors: torch.Tensor) -> torch.dtype:
    dtype = torch.float32
    for x in tensors:
        dtype = torch.promote_types(dtype, x.dtype)
    return dtype


def frame_delta_scan(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    beta: torch.Tensor,
    gamma: torch.Tensor,
    *,
    reverse: bool = False,
    initial_state: torch.Tensor | None = None,
    return_state: bool = False,
    backend: str = "auto",
):
    """The frame-wise gated delta rule (sana_wm.md §2.3).

    q, k [B, T, S, H, K]; v [B, T, S, H, V]; beta [B, T, S, H] per-token gates; gamma [B, T, H] per-frame decays;
    state [B, H, K, V] (key index × value index). Per head:

        forward (inclusive): for t = 0..T-1:  Sp = γ_t S;  S = Sp + K_tᵀ diag(β_t) (V_t − K_t Sp);  o_t = Q_t S
        reverse (exclusive): S = initial (or 0); for t = T-1..0:  o_t = Q_t S;  then absorb frame t as above

    Bidirectional GDN sums a forward and a reverse scan; chunk-causal GDN zeroes the reverse scan's beta and gamma
    at `chunks.reverse_gate_mask` frames. SANA-WM's normaliser stream is this op with v = ones [..., 1] and
    unrotated q, k. Returns o [B, T, S, H, V], or (o, final_state) when `return_state`.
    """
    _check_shapes(q, k, v, beta, gamma, initial_state)
    scan = _resolve(backend, q)
    dtype = _compute_dtype(q, k, v, beta, gamma)
    b, t, _, h, dk = q.shape
    if initial_state is None:
        initial_state = torch.zeros(b, h, dk, v.shape[-1], dtype=dtype, device=q.device)
    if t == 0:
        o, state = v.new_zeros(v.shape), initial_state.to(dtype)
    else:
        o, state = scan(
            *(x.to(dtype) for x in (q, k, v, beta, gamma)), reverse=reverse, initial_state=initial_state.to(dtype)
        )
    o = o.to(v.dtype)
    return (o, state) if return_state else o


def cumulative_linear_scan(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    reverse: bool = False,
    initial_state: torch.Tensor | None = None,
    return_state: bool = False,
):
    """SANA-Video's cumulative linear attention, the undecayed baseline of sana_wm.md §2.3.

    A_t = A_{t-1} + K_tᵀ V_t, o_t = Q_t A_t (inclusive); reverse reads A before absorbing frame t (exclusive), as
    `frame_delta_scan`. q, k [B, T, S, H, K]; v [B, T, S, H, V]; state [B, H, K, V]. Returns o [B, T, S, H, V], or
    (o, final_state) when `return_state`. A prefix sum over per-frame outer products, so one implementation serves.
    """
    if q.dim() != 5 or k.shape != q.shape or v.dim() != 5 or tuple(v.shape[:4]) != tuple(q.shape[:4]):
        raise UserError(f"q, k must be [B, T, S, H, K] and v [B, T, S, H, V], got {q.shape}, {k.shape}, {v.shape}")
    out_dtype, dtype = v.dtype, _compute_dtype(q, k, v)
    q, k, v = (x.to(dtype) for x in (q, k, v))
    b, t, _, h, dk = q.shape
    initial = torch.zeros(b, h, dk, v.shape[-1], dtype=dtype, device=q.device)
    if initial_state is not None:
        initial = initial + initial_state.to(dtype)
    frame_kv = torch.einsum("btshk,btshv->bthkv", k, v)
    if reverse:
        suffix = frame_kv.flip(1).cumsum(1).flip(1)
        read = initial[:, None] + torch.cat([suffix[:, 1:], torch.zeros_like(frame_kv[:, :1])], dim=1)
        state = initial + suffix[:, 0] if t else initial
    else:
        read = initial[:, None] + frame_kv.cumsum(1)
        state = read[:, -1] if t else initial
    o = torch.einsum("btshk,bthkv->btshv", q, read).to(out_dtype)
    return (o, state) if return_state else o
