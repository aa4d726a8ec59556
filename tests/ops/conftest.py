"""Shared random inputs for the frame-wise gated delta rule tests."""

from __future__ import annotations

import pytest
import torch


def random_gdn_inputs(batch=2, frames=5, tokens=3, heads=2, dk=4, dv=3, dtype=torch.float64, seed=0, device="cpu"):
    """(q, k, v, beta, gamma, initial_state) with keys scaled 1/sqrt(D*S) as the mixer does, gates in (0, 1)."""
    gen = torch.Generator().manual_seed(seed)
    shape = (batch, frames, tokens, heads, dk)
    q = torch.randn(shape, generator=gen, dtype=dtype)
    k = torch.rand(shape, generator=gen, dtype=dtype) * (dk * tokens) ** -0.5
    v = torch.randn(batch, frames, tokens, heads, dv, generator=gen, dtype=dtype)
    beta = torch.rand(batch, frames, tokens, heads, generator=gen, dtype=dtype)
    gamma = 0.5 + 0.5 * torch.rand(batch, frames, heads, generator=gen, dtype=dtype)
    state = torch.randn(batch, heads, dk, dv, generator=gen, dtype=dtype)
    return tuple(x.to(device) for x in (q, k, v, beta, gamma, state))


@pytest.fixture
def gdn_inputs():
    return random_gdn_inputs
