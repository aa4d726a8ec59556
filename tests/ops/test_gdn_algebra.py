"""Algebraic invariants of the frame-wise gated delta rule (sana_wm.md §10.2, items 2-4)."""

from __future__ import annotations

import pytest
import torch

from camworld.ops.gdn import frame_delta_scan, key_scale

BACKENDS = ["reference", "chunked"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_zero_beta_is_pure_decay(gdn_inputs, backend):
    q, k, v, beta, gamma, state = gdn_inputs(frames=5, tokens=3)
    o, final = frame_delta_scan(
        q, k, v, torch.zeros_like(beta), gamma, initial_state=state, return_state=True, backend=backend
    )
    decay = gamma.cumprod(dim=1)
    states = decay[..., None, None] * state[:, None]
    torch.testing.assert_close(final, states[:, -1], atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(o, torch.einsum("btshk,bthkv->btshv", q, states), atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_delta_rule_recalls_the_written_value(gdn_inputs, backend):
    _, k, v, beta, gamma, state = gdn_inputs(frames=4, tokens=1, dk=6, dv=5)
    k = torch.nn.functional.normalize(k + 0.1, dim=-1)
    o = frame_delta_scan(k, k, v, torch.ones_like(beta), gamma, initial_state=state, backend=backend)
    torch.testing.assert_close(o, v, atol=1e-12, rtol=1e-10)


def _token_wise_loop(q, k, v, beta, gamma, state):
    """The token-wise gated delta rule on [B, N, H, *] sequences: each token reads the state left by the previous."""
    outputs = []
    for i in range(q.shape[1]):
        decayed = gamma[:, i, :, None, None] * state
        error = v[:, i] - torch.einsum("bhk,bhkv->bhv", k[:, i], decayed)
        state = decayed + torch.einsum("bhk,bhv->bhkv", k[:, i], beta[:, i, :, None] * error)
        outputs.append(torch.einsum("bhk,bhkv->bhv", q[:, i], state))
    return torch.stack(outputs, dim=1), state


@pytest.mark.parametrize("backend", BACKENDS)
def test_frame_wise_equals_token_wise_with_one_token_per_frame(gdn_inputs, backend):
    q, k, v, beta, gamma, state = gdn_inputs(frames=6, tokens=1)
    o, final = frame_delta_scan(q, k, v, beta, gamma, initial_state=state, return_state=True, backend=backend)
    o_tok, final_tok = _token_wise_loop(q[:, :, 0], k[:, :, 0], v[:, :, 0], beta[:, :, 0], gamma, state)
    torch.testing.assert_close(o[:, :, 0], o_tok, atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(final, final_tok, atol=1e-12, rtol=1e-10)


def test_frame_wise_differs_from_token_wise_with_several_tokens(gdn_inputs):
    """Tokens of one frame all read the pre-update state, so flattening frames into tokens changes the result."""
    q, k, v, beta, gamma, state = gdn_inputs(frames=1, tokens=4)
    k = k * 8.0
    _, final = frame_delta_scan(q, k, v, beta, gamma, initial_state=state, return_state=True)
    per_token_gamma = torch.cat([gamma, torch.ones_like(gamma).expand(-1, 3, -1)], dim=1)
    _, final_tok = _token_wise_loop(q[:, 0], k[:, 0], v[:, 0], beta[:, 0], per_token_gamma, state)
    assert (final - final_tok).abs().max() > 1e-3


def _relu_rms_keys(gen, shape):
    raw = torch.randn(shape, generator=gen, dtype=torch.float64)
    return torch.relu(raw * torch.rsqrt(raw.square().mean(-1, keepdim=True) + 1e-5))


def test_state_stays_bounded_with_key_scale_and_grows_without():
    batch, frames, tokens, heads, dim = 1, 240, 16, 2, 16
    gen = torch.Generator().manual_seed(0)
    k = _relu_rms_keys(gen, (batch, frames, tokens, heads, dim))
    v = torch.randn(batch, frames, tokens, heads, dim, generator=gen, dtype=torch.float64)
    beta = 0.5 + 0.5 * torch.rand(batch, frames, tokens, heads, generator=gen, dtype=torch.float64)
    gamma = 0.9 + 0.09 * torch.rand(batch, frames, heads, generator=gen, dtype=torch.float64)
    # S = dim query tokens equal to the identity read the whole state out: o_t = S_t.
    q = torch.eye(dim, dtype=torch.float64).expand(batch, frames, heads, dim, dim).permute(0, 1, 3, 2, 4)

    scaled_k = k * key_scale(dim, tokens)
    states = frame_delta_scan(q, scaled_k, v, beta, gamma, backend="chunked")
    # With tr(K̂ᵀβK̂) <= 1 every transition has spectral norm <= γ_t, so ‖S_t‖ <= max‖U‖ / (1 - max γ).
    inputs = torch.einsum("btshk,btshv->bthkv", scaled_k * beta[..., None], v)
    bound = torch.linalg.matrix_norm(inputs, ord=2).max() / (1 - gamma.max())
    norms = torch.linalg.matrix_norm(states.transpose(2, 3), ord=2)
    assert norms.max() <= bound
    assert norms[:, frames // 2 :].max() <= 2 * norms[:, : frames // 2].max()

    unscaled = frame_delta_scan(q, k / dim**0.5, v, beta, gamma, backend="chunked")
    assert (beta * (k / dim**0.5).square().sum(-1)).sum(2).min() > 2
    last = unscaled[:, -1].abs().max()
    assert not torch.isfinite(last) or last > 1e6 * norms.max()
