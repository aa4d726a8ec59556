"""SDPA attention equals the explicit softmax reference, with and without the chunk-causal block mask."""

from __future__ import annotations

import pytest
import torch

from camworld.errors import UserError
from camworld.ops.attention import attention, chunk_causal_mask
from camworld.ops.chunks import chunk_index


def _qkv(nq, nk, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(2, 3, nq, 8, generator=gen, dtype=dtype)
    k = torch.randn(2, 3, nk, 8, generator=gen, dtype=dtype)
    v = torch.randn(2, 3, nk, 5, generator=gen, dtype=dtype)
    return q, k, v


def _run(backend, q, k, v, mask):
    leaves = [x.detach().clone().requires_grad_() for x in (q, k, v)]
    o = attention(*leaves, mask=mask, backend=backend)
    (o * torch.linspace(-1, 1, o.numel(), dtype=o.dtype).view_as(o)).sum().backward()
    return o.detach(), [x.grad for x in leaves]


def _masks():
    frames, tokens = 7, 3
    chunks = chunk_index(frames, first=4, size=3)
    return {
        "full": (frames * tokens, frames * tokens, None),
        "chunk_causal": (frames * tokens, frames * tokens, chunk_causal_mask(chunks, chunks, tokens)),
        "streamed_chunk": (3 * tokens, frames * tokens, chunk_causal_mask(chunks[4:], chunks, tokens)),
    }


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("case", ["full", "chunk_causal", "streamed_chunk"])
def test_sdpa_equals_reference_forward_and_backward(case, dtype):
    nq, nk, mask = _masks()[case]
    q, k, v = _qkv(nq, nk, dtype)
    tol = {"atol": 1e-10, "rtol": 1e-10} if dtype == torch.float64 else {"atol": 1e-5, "rtol": 1e-5}
    o_ref, g_ref = _run("reference", q, k, v, mask)
    o, g = _run("sdpa", q, k, v, mask)
    torch.testing.assert_close(o, o_ref, **tol)
    for a, b in zip(g, g_ref):
        torch.testing.assert_close(a, b, **tol)


def test_chunk_causal_mask_matches_its_definition():
    q_chunk, k_chunk, tokens = torch.tensor([1, 1, 2]), torch.tensor([0, 0, 0, 0, 1, 1, 1, 2]), 2
    mask = chunk_causal_mask(q_chunk, k_chunk, tokens)
    assert mask.shape == (6, 16) and mask.dtype == torch.bool
    for i in range(6):
        for j in range(16):
            assert mask[i, j] == (q_chunk[i // tokens] >= k_chunk[j // tokens])


def test_masked_keys_do_not_influence_the_output():
    frames, tokens = 7, 2
    chunks = chunk_index(frames, first=4, size=3)
    q, k, v = _qkv(frames * tokens, frames * tokens)
    mask = chunk_causal_mask(chunks, chunks, tokens)
    v2 = v.clone()
    v2[:, :, 4 * tokens :] += 10.0
    out, out2 = attention(q, k, v, mask=mask), attention(q, k, v2, mask=mask)
    torch.testing.assert_close(out[:, :, : 4 * tokens], out2[:, :, : 4 * tokens], atol=1e-12, rtol=0)


def test_bad_backend_or_mask_raises_user_error():
    q, k, v = _qkv(4, 4)
    with pytest.raises(UserError, match="backend"):
        attention(q, k, v, backend="flash")
    with pytest.raises(UserError, match="bool"):
        attention(q, k, v, mask=torch.ones(4, 4))
