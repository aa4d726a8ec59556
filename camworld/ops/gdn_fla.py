"""Glue to flash-linear-attention's token-wise gated delta rule kernel (CUDA + triton), imported lazily.

fla implements the token-wise rule, where token i reads the state already updated by tokens < i of the same
frame. The frame-wise rule (sana_wm.md §2.3) lets all S tokens of a frame read the same pre-update state; the two
agree exactly only when S == 1. For S > 1 the frame transition I − KᵀβK is a sum of rank-1 terms, not the product
of S rank-1 factors a token-wise kernel applies, and rewriting one as the other needs either an eigendecomposition
(orthogonal keys, with 1/λ-scaled values and unstable eigh gradients) or a triangular solve that is singular when
β‖k‖² = 1: neither is exact in practice. So this backend runs only when S == 1 and raises otherwise.

The reverse exclusive scan maps onto the inclusive kernel by flipping time and shifting k, v, β (padded with 0)
and log γ (padded with 0, i.e. γ = 1) one step later, plus one trailing step that absorbs the last frame so the
final state is complete. γ = 0 (used by the chunk-causal reverse reset) becomes log γ = -inf, which the kernel's
in-chunk cumulative sums cannot represent; it is clamped to a very negative number, so that case is approximate.
"""

from __future__ import annotations

import importlib.util

import torch

from camworld.errors import UserError

_MIN_LOG_DECAY = -60.0


def fla_available() -> bool:
    """True when flash-linear-attention's triton kernels import (they need CUDA and triton)."""
    try:
        from fla.ops.gated_delta_rule import chunk_gated_delta_rule  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available()


def fla_trusted() -> bool:
    """False on Hopper GPUs with Triton >= 3.4, < 3.7.1 and no tilelang. There fla refuses its own gated backward
    (wrong dq/dk, fla issue #640), and on an H100 with Triton 3.6 and fla-core 0.6.0 its forward also differed from
    the reference by more than 2e-3 in 3 of 6 cases of tests/ops/test_gdn_equivalence.py (measured 2026-11-26; the
    glue itself matches fla's pure-PyTorch chunk form to 2e-6 at those shapes). `auto` does not pick fla there."""
    try:
        from fla.utils import IS_NVIDIA_HOPPER, TRITON_ABOVE_3_4_0, TRITON_ABOVE_3_7_1
    except ImportError:
        return False
    refused = IS_NVIDIA_HOPPER and TRITON_ABOVE_3_4_0 and not TRITON_ABOVE_3_7_1
    return not refused or importlib.util.find_spec("tilelang") is not None


def token_kernel_frame_scan(
    kernel,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    beta: torch.Tensor,
    gamma: torch.Tensor,
    *,
    reverse: bool,
    initial_state: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The frame-wise scan with S == 1 through a token-wise kernel with fla's chunk signature
    `kernel(q, k, v, g, beta, scale=, initial_state=, output_final_state=) -> (o [B, T, H, V], state)`.
    Shapes as `gdn_reference.frame_delta_scan_reference`."""
    if q.shape[2] != 1:
        raise UserError(
            f"the fla backend is exact only with one token per frame (S == 1), got S = {q.shape[2]}; "
            "use backend='chunked' for the frame-wise rule"
        )
    q, k, v, beta = (x[:, :, 0] for x in (q, k, v, beta))
    log_decay = torch.log(gamma).clamp_min(_MIN_LOG_DECAY)
    if reverse:
        q, k, v, beta, log_decay = (x.flip(1) for x in (q, k, v, beta, log_decay))
        q = torch.cat([q, torch.zeros_like(q[:, :1])], dim=1)
        k, v, beta, log_decay = (torch.cat([torch.zeros_like(x[:, :1]), x], dim=1) for x in (k, v, beta, log_decay))
    o, state = kernel(q, k, v, log_decay, beta, scale=1.0, initial_state=initial_state, output_final_state=True)
    o = o.to(v.dtype)
    if reverse:
        o = o[:, :-1].flip(1)
    return o[:, :, None], state.to(initial_state.dtype)


def frame_delta_scan_fla(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    beta: torch.Tensor,
    gamma: torch.Tensor,
    *,
    reverse: bool,
    initial_state: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Same contract as `gdn_reference.frame_delta_scan_reference`, for S == 1 on CUDA tensors only."""
    if not q.is_cuda:
        raise UserError("the fla backend needs CUDA tensors; use backend='chunked' on the CPU")
    try:
        from fla.ops.gated_delta_rule import chunk_gated_delta_rule
    except ImportError as err:
        raise UserError(f"the fla backend needs flash-linear-attention with triton ({err})") from err
    # triton kernels have no float64 path; run them in float32 and hand back the caller's dtype.
    args = [x.float() for x in (q, k, v, beta, gamma)]
    o, state = token_kernel_frame_scan(
        chunk_gated_delta_rule, *args, reverse=reverse, initial_state=initial_state.float()
    )
    return o.to(q.dtype), state.to(initial_state.dtype)
