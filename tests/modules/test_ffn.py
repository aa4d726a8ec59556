"""GLUConvFFN (SANA-WM GLUMBConvTemp): per-frame FFN vs Sana-layout convs, temporal conv modes vs plain per-chunk
padding, streaming with tails == chunk-causal (forward and backward), causality, zero-init identity."""

import pytest
import torch
import torch.nn.functional as F

from camworld.modules.ffn import GLUConvFFN

B, H, W, C, HIDDEN = 2, 3, 4, 8, 12


def _ffn(kernel=3, seed=0):
    torch.manual_seed(seed)
    ffn = GLUConvFFN(C, HIDDEN, temporal_kernel=kernel).double()
    with torch.no_grad():
        ffn.temporal_weight.normal_(0, 0.3)
    return ffn


def _x(t, seed=1):
    return torch.randn(B, t, H, W, C, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _spatial_reference(ffn, x):
    """Sana's channels-first Conv2d pipeline, frame by frame."""
    frames = []
    for i in range(x.shape[1]):
        z = x[:, i].permute(0, 3, 1, 2)
        z = F.silu(F.conv2d(z, ffn.inverted.weight[:, :, None, None], ffn.inverted.bias))
        z = F.conv2d(z, ffn.depthwise.weight, ffn.depthwise.bias, padding=1, groups=z.shape[1])
        a, g = z.chunk(2, dim=1)
        z = F.conv2d(a * F.silu(g), ffn.point.weight[:, :, None, None])
        frames.append(z.permute(0, 2, 3, 1))
    return torch.stack(frames, dim=1)


def _temporal_reference(ffn, y, chunks):
    """Sana ChunkGLUMBConvTemp: pad each chunk with the previous chunk's last p frames (zeros at the start) on
    the left and p zeros on the right, then a valid (k x 1) Conv2d over [B, C, T, S]."""
    p = ffn.context
    weight = ffn.temporal_weight[..., None]
    ys = y.reshape(y.shape[0], y.shape[1], -1, C).permute(0, 3, 1, 2)
    zeros = ys.new_zeros(ys.shape[0], C, p, ys.shape[-1])
    history = torch.cat([zeros, ys], dim=2)
    outs = []
    for start, end in chunks:
        left = history[:, :, start : start + p]
        outs.append(F.conv2d(torch.cat([left, ys[:, :, start:end], zeros], dim=2), weight))
    out = torch.cat(outs, dim=2).permute(0, 2, 3, 1).reshape(y.shape)
    return y + out


def _grads(ffn, x, out):
    torch.manual_seed(5)
    loss = (out * torch.randn_like(out)).sum()
    params = [x, *ffn.parameters()]
    return torch.autograd.grad(loss, params)


def test_spatial_matches_sana_conv_layout():
    ffn = _ffn()
    x = _x(3)
    torch.testing.assert_close(ffn.spatial(x), _spatial_reference(ffn, x))


@pytest.mark.parametrize("t", [1, 2, 5, 7])
def test_bidirectional_matches_zero_padded_conv(t):
    ffn = _ffn()
    x = _x(t).requires_grad_()
    out, _ = ffn(x)
    y = ffn.spatial(x)
    ys = y.reshape(B, t, -1, C).permute(0, 3, 1, 2)
    ref = y + F.conv2d(ys, ffn.temporal_weight[..., None], padding=(1, 0)).permute(0, 2, 3, 1).reshape(y.shape)
    torch.testing.assert_close(out, ref)
    for a, b in zip(_grads(ffn, x, out), _grads(ffn, x, ref)):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize(
    ("kernel", "chunks"),
    [(3, [(0, 4), (4, 7), (7, 10)]), (3, [(0, 4), (4, 7), (7, 9)]), (3, [(0, 1), (1, 2), (2, 5)]),
     (5, [(0, 1), (1, 2), (2, 5), (5, 6)])],
)
def test_chunk_causal_matches_per_chunk_padding(kernel, chunks):
    ffn = _ffn(kernel)
    x = _x(chunks[-1][1]).requires_grad_()
    out, _ = ffn(x, chunks=chunks)
    ref = _temporal_reference(ffn, ffn.spatial(x), chunks)
    torch.testing.assert_close(out, ref)
    for a, b in zip(_grads(ffn, x, out), _grads(ffn, x, ref)):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize(
    ("kernel", "chunks"), [(3, [(0, 4), (4, 7), (7, 10), (10, 11)]), (5, [(0, 1), (1, 2), (2, 5), (5, 6)])]
)
def test_streaming_with_tails_equals_chunk_causal(kernel, chunks):
    ffn = _ffn(kernel)
    x = _x(chunks[-1][1]).requires_grad_()
    full, full_tail = ffn(x, chunks=chunks)
    outs, tail = [], None
    for start, end in chunks:
        out, tail = ffn(x[:, start:end], tail=tail)
        outs.append(out)
    streamed = torch.cat(outs, dim=1)
    torch.testing.assert_close(streamed, full)
    torch.testing.assert_close(tail, full_tail)
    assert tail.shape == (B, kernel // 2, H, W, C)
    for a, b in zip(_grads(ffn, x, streamed), _grads(ffn, x, full)):
        torch.testing.assert_close(a, b)


def test_perturbing_a_later_chunk_leaves_earlier_chunks_unchanged():
    ffn = _ffn()
    chunks = [(0, 4), (4, 7), (7, 10)]
    x = _x(10)
    base, _ = ffn(x, chunks=chunks)
    for c, (start, end) in enumerate(chunks[1:], start=1):
        bumped = x.clone()
        bumped[:, start:end] += torch.randn_like(bumped[:, start:end])
        out, _ = ffn(bumped, chunks=chunks)
        prefix = chunks[c - 1][1]
        torch.testing.assert_close(out[:, :prefix], base[:, :prefix], rtol=0, atol=0)
        assert not torch.allclose(out[:, start:end], base[:, start:end])
    bumped = x.clone()
    bumped[:, 4] += 1.0
    bidirectional, _ = ffn(bumped)
    assert not torch.allclose(bidirectional[:, 3], ffn(x)[0][:, 3]), "bidirectional mode must see the future"


def test_temporal_conv_is_zero_at_init():
    torch.manual_seed(0)
    ffn = GLUConvFFN(C, HIDDEN)
    assert torch.count_nonzero(ffn.temporal_weight) == 0
    x = _x(5).float()
    expected = ffn.spatial(x)
    assert torch.count_nonzero(expected) > 0
    torch.testing.assert_close(ffn(x)[0], expected, rtol=0, atol=0)
    torch.testing.assert_close(ffn(x, chunks=[(0, 4), (4, 5)])[0], expected, rtol=0, atol=0)


@pytest.mark.parametrize("chunks", [[(0, 3), (4, 7)], [(1, 7)], [(0, 3)], [(0, 3), (3, 3), (3, 7)]])
def test_chunks_must_tile_the_sequence(chunks):
    with pytest.raises(ValueError, match="tile"):
        _ffn()(_x(7), chunks=chunks)


def test_even_kernel_and_bad_tail_are_rejected():
    with pytest.raises(ValueError, match="odd"):
        GLUConvFFN(C, HIDDEN, temporal_kernel=2)
    with pytest.raises(ValueError, match="tail"):
        _ffn()(_x(3), tail=torch.zeros(B, 2, H, W, C, dtype=torch.float64))
