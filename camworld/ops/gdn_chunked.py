"""The frame-wise gated delta rule in pure torch, shaped for the CPU: big batched matmuls around a small K×K scan.

The update of gdn_reference.py is affine in the state (sana_wm.md §2.3, the CP helper `frame_gdn/api.py`):

    S_t = M_t S_{t-1} + U_t,    M_t = γ_t (I − A_t),    A_t = K_tᵀ β_t K_t ∈ R^{K×K},    U_t = K_tᵀ β_t V_t ∈ R^{K×V}

so all transitions and inputs come from one batched product over the S tokens of every frame, the sequential part
is T small [K×K]·[K×V] products, and all outputs Q_t S_t are one batched product again. The FLOPs match the loop
(≈3·S·K·V per frame plus K²·V) but each heavy product runs once over all frames instead of once per frame.

The backward pass is written by hand (10-20% faster than autograd through the loop in benchmarks/gdn_backends.py,
and it saves only the inputs, the transitions and the T+1 states): with G_t the gradient of the state after frame t,
the scan runs backwards as G ← Mᵀ G, then dM_t = G_t S_{t-1}ᵀ, dU_t = G_t, dA_t = −γ_t dM_t,
dγ_t = ⟨dM_t, I − A_t⟩, and the token gradients follow from A = KᵀβK (symmetric, which saves a product) and
U = KᵀβV in three more batched products. Tensors are time-major, [T, N = B·H, S, *], so each frame's slice is
contiguous.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable


class _FrameDeltaScan(torch.autograd.Function):
    """q, k [T, N, S, K]; v [T, N, S, V]; beta [T, N, S]; gamma [T, N]; initial [N, K, V], all contiguous.

    Returns (o [T, N, S, V], final state [N, K, V]). The scan keeps states X [T+1, N, K, V] laid out so that frame
    t reads X[t+1] in both directions: forward frame t moves X[t] -> X[t+1], reverse frame t moves X[t+1] -> X[t].
    """

    @staticmethod
    def forward(ctx, q, k, v, beta, gamma, initial, reverse):
        frames, dk = q.shape[0], q.shape[-1]
        k_beta = k * beta[..., None]
        k_beta_t = k_beta.transpose(-1, -2)
        eye_minus_a = torch.eye(dk, dtype=q.dtype, device=q.device) - torch.matmul(k_beta_t, k)
        transition = gamma[..., None, None] * eye_minus_a
        inputs = torch.matmul(k_beta_t, v)
        states = q.new_empty((frames + 1, *initial.shape))
        if reverse:
            states[frames] = initial
            for t in range(frames - 1, -1, -1):
                torch.baddbmm(inputs[t], transition[t], states[t + 1], out=states[t])
        else:
            states[0] = initial
            for t in range(frames):
                torch.baddbmm(inputs[t], transition[t], states[t], out=states[t + 1])
        o = torch.matmul(q, states[1:])
        ctx.save_for_backward(q, k, v, beta, gamma, eye_minus_a, transition, states)
        ctx.reverse = reverse
        return o, (states[0] if reverse else states[frames]).clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_o, grad_final):
        q, k, v, beta, gamma, eye_minus_a, transition, states = ctx.saved_tensors
        frames = q.shape[0]
        read = states[1:]
        grad_q = torch.matmul(grad_o, read.transpose(-1, -2))
        grad_read = torch.matmul(q.transpose(-1, -2), grad_o)
        # grad_inputs[t]: gradient of the state right after frame t was absorbed, which is also dU_t.
        grad_inputs = torch.empty_like(grad_read)
        carry = grad_final
        order = range(frames) if ctx.reverse else range(frames - 1, -1, -1)
        for t in order:
            if ctx.reverse:
                grad_inputs[t] = carry
                carry = torch.baddbmm(grad_read[t], transition[t].transpose(-1, -2), carry)
            else:
                torch.add(carry, grad_read[t], out=grad_inputs[t])
                carry = torch.bmm(transition[t].transpose(-1, -2), grad_inputs[t])
        before = states[1:] if ctx.reverse else states[:-1]
        grad_transition = torch.matmul(grad_inputs, before.transpose(-1, -2))
        grad_gamma = (grad_transition * eye_minus_a).sum((-1, -2))
        # A = Kᵀ diag(β) K is symmetric, so only the symmetric part of dA matters:
        # dK = β ⊙ (V dUᵀ + 2 K sym(dA)), dβ_s = k_sᵀ sym(dA) k_s + k_sᵀ dU v_s, dV = diag(β) K dU.
        grad_a = -0.5 * gamma[..., None, None] * (grad_transition + grad_transition.transpose(-1, -2))
        k2, v2, grad_a2, grad_u2 = (x.flatten(0, 1) for x in (k, v, grad_a, grad_inputs))
        beta2 = beta.flatten(0, 1)[..., None]
        from_u = torch.bmm(v2, grad_u2.transpose(-1, -2))
        from_a = torch.bmm(k2, grad_a2)
        grad_k = beta2 * (from_u + 2 * from_a)
        grad_beta = (k2 * (from_u + from_a)).sum(-1)
        grad_v = torch.bmm(k2 * beta2, grad_u2)
        return (
            grad_q, grad_k.view_as(k), grad_v.view_as(v), grad_beta.view_as(beta), grad_gamma, carry, None
        )


def _time_major(x: torch.Tensor) -> torch.Tensor:
    """[B, T, S, H, *] -> [T, B·H, S, *] (or [B, T, S, H] -> [T, B·H, S]), contiguous."""
    if x.dim() == 4:
        return _time_major(x[..., None])[..., 0]
    b, t, s, h, d = x.shape
    return x.permute(1, 0, 3, 2, 4).reshape(t, b * h, s, d)


def frame_delta_scan_chunked(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    beta: torch.Tensor,
    gamma: torch.Tensor,
    *,
    reverse: bool,
    initial_state: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Same contract as `gdn_reference.frame_delta_scan_reference`; returns (o [B, T, S, H, V], state [B, H, K, V])."""
    b, t, s, h, _ = q.shape
    o, state = _FrameDeltaScan.apply(
        _time_major(q),
        _time_major(k),
        _time_major(v),
        _time_major(beta),
        gamma.permute(1, 0, 2).reshape(t, b * h),
        initial_state.reshape(b * h, *initial_state.shape[2:]),
        reverse,
    )
    o = o.view(t, b, h, s, -1).permute(1, 0, 3, 2, 4)
    return o, state.view(initial_state.shape)
