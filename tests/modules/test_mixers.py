"""Token mixers: the K short conv against torch's conv1d, the GDN mixer against a plain loop of sana_wm.md §2.3,
chunk-causality, streaming == chunk-causal (GDN, cumulative ablation, softmax with its sink + window KV cache)."""

import pytest
import torch
import torch.nn.functional as F

from camworld.modules.attn_mixer import SoftmaxMixer
from camworld.modules.gdn_mixer import GdnMixer, GdnState
from camworld.modules.layout import FrameLayout
from camworld.modules.rope import rotary_tables
from camworld.modules.short_conv import TemporalShortConv
from camworld.modules.ucpe import CameraRays

DIM, HEADS, HEAD_DIM = 64, 2, 32
PLAN = (3, 2)  # chunks [0, 3), [3, 5), [5, 7), [7, 8)


def _perturbed(module, seed, scale=0.1):
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn_like(p))
    return module.double()


def _conv_reference(conv, x, chunks):
    """Per chunk: causal conv1d over the whole past (zeros before frame 0) + anti-causal conv1d inside the chunk."""
    b, t, s, c = x.shape
    w = conv.weight.detach()
    seq = x.permute(0, 2, 3, 1).reshape(b * s, c, t)
    k = w.shape[1]
    causal = F.conv1d(F.pad(seq, (k - 1, 0)), w[:, None, :], groups=c)
    out = torch.zeros_like(seq)
    for start, end in chunks:
        piece = seq[..., start:end].flip(-1)
        backward = F.conv1d(F.pad(piece, (k - 1, 0)), w[:, None, :], groups=c).flip(-1)
        out[..., start:end] = causal[..., start:end] + backward - w[:, -1, None] * seq[..., start:end]
    return out.reshape(b, s, c, t).permute(0, 3, 1, 2)


def test_short_conv_starts_as_identity():
    conv = TemporalShortConv(8, 4)
    x = torch.randn(2, 5, 3, 8)
    y, _ = conv(x)
    torch.testing.assert_close(y, x)


@pytest.mark.parametrize("chunks", [None, [(0, 3), (3, 5), (5, 7), (7, 8)], [(0, 1), (1, 8)]])
def test_short_conv_matches_conv1d(chunks):
    conv = _perturbed(TemporalShortConv(6, 4), 0, scale=0.5)
    x = torch.randn(2, 8, 3, 6, dtype=torch.float64)
    y, tail = conv(x, chunks=chunks)
    torch.testing.assert_close(y, _conv_reference(conv, x, chunks or [(0, 8)]))
    torch.testing.assert_close(tail, x[:, -3:])


def test_short_conv_streaming_equals_chunk_causal_forward_and_backward():
    conv = _perturbed(TemporalShortConv(6, 4), 1, scale=0.5)
    chunks = [(0, 3), (3, 5), (5, 7), (7, 8)]
    x = torch.randn(2, 8, 3, 6, dtype=torch.float64, requires_grad=True)
    full, _ = conv(x, chunks=chunks)
    pieces, tail = [], None
    for s, e in chunks:
        y, tail = conv(x[:, s:e], tail=tail)
        pieces.append(y)
    streamed = torch.cat(pieces, 1)
    torch.testing.assert_close(streamed, full)
    g = torch.randn_like(full)
    (gx_full, gw_full) = torch.autograd.grad((full * g).sum(), (x, conv.weight))
    (gx_stream, gw_stream) = torch.autograd.grad((streamed * g).sum(), (x, conv.weight))
    torch.testing.assert_close(gx_stream, gx_full)
    torch.testing.assert_close(gw_stream, gw_full)


def _gdn_loop_reference(mixer, x, layout, rotary):
    """sana_wm.md §2.3 steps 1-8 written out: per-head loops over frames for S and z, forward and reverse."""
    b, t, s, c = x.shape
    q, k, v = mixer.qkv(x).chunk(3, dim=-1)
    k, _ = mixer.conv_k(k, chunks=layout.chunks())
    q = F.relu(mixer.q_norm(q)).view(b, t, s, HEADS, HEAD_DIM)
    k = F.relu(mixer.k_norm(k)).view(b, t, s, HEADS, HEAD_DIM) / (HEAD_DIM * s) ** 0.5
    v = v.view(b, t, s, HEADS, HEAD_DIM)
    q_rot, k_rot = rotary.apply(q), rotary.apply(k)
    beta = torch.sigmoid(mixer.beta_proj(x))
    gamma = torch.exp(-mixer.A_log.exp() * F.softplus(mixer.gate_proj(x.mean(2)) + mixer.dt_bias))
    starts = {start for start, _ in layout.chunks()}
    out = torch.zeros(b, t, s, HEADS, HEAD_DIM, dtype=x.dtype)
    for bi in range(b):
        for h in range(HEADS):
            num = torch.zeros(t, s, HEAD_DIM, dtype=x.dtype)
            den = torch.zeros(t, s, dtype=x.dtype)
            S = torch.zeros(HEAD_DIM, HEAD_DIM, dtype=x.dtype)
            z = torch.zeros(HEAD_DIM, dtype=x.dtype)
            for f in range(t):
                Kr, K_, V = k_rot[bi, f, :, h], k[bi, f, :, h], v[bi, f, :, h]
                Bt, g = beta[bi, f, :, h], gamma[bi, f, h]
                Sp, zp = g * S, g * z
                S = Sp + Kr.T @ (Bt[:, None] * (V - Kr @ Sp))
                z = zp + K_.T @ (Bt * (1 - K_ @ zp))
                num[f] += q_rot[bi, f, :, h] @ S
                den[f] += q[bi, f, :, h] @ z
            S = torch.zeros_like(S)
            z = torch.zeros_like(z)
            for f in range(t - 1, -1, -1):
                if f + 1 in starts and f + 1 < t:  # the reverse scan never carries a later chunk back
                    S, z = torch.zeros_like(S), torch.zeros_like(z)
                num[f] += q_rot[bi, f, :, h] @ S
                den[f] += q[bi, f, :, h] @ z
                Kr, K_, V = k_rot[bi, f, :, h], k[bi, f, :, h], v[bi, f, :, h]
                Bt, g = beta[bi, f, :, h], gamma[bi, f, h]
                Sp, zp = g * S, g * z
                S = Sp + Kr.T @ (Bt[:, None] * (V - Kr @ Sp))
                z = zp + K_.T @ (Bt * (1 - K_ @ zp))
            out[bi, :, :, h] = num / (den[..., None] + 1e-8)
    out = out.reshape(b, t, s, c)
    return mixer.proj(out * F.silu(mixer.output_gate(x)))


@pytest.mark.parametrize("plan", [None, PLAN])
def test_gdn_mixer_matches_the_loop_of_the_spec(plan):
    mixer = _perturbed(GdnMixer(DIM, HEADS, camera=False, backend="reference"), 0)
    frames, height, width = 8, 3, 3
    layout = FrameLayout(frames, height, width, chunk_plan=plan)
    rotary = rotary_tables(layout.frame_indices(), height, width, HEAD_DIM)
    x = torch.randn(2, frames, height * width, DIM, dtype=torch.float64)
    y, _ = mixer(x, layout, rotary)
    torch.testing.assert_close(y, _gdn_loop_reference(mixer, x, layout, rotary))


def test_gdn_init_is_near_linear_attention():
    mixer = GdnMixer(DIM, HEADS)
    x = torch.randn(1, 2, 3, DIM)
    beta, gamma = mixer.gates(x)
    torch.testing.assert_close(beta, torch.full_like(beta, torch.sigmoid(torch.tensor(5.0)).item()))
    torch.testing.assert_close(gamma, torch.full_like(gamma, torch.exp(-F.softplus(torch.tensor(-5.0))).item()))
    assert torch.allclose(F.silu(mixer.output_gate(x)), torch.ones(1, 2, 3, DIM))


def random_cameras(gen, batch, frames, height, width):
    """Rigid c2w [B, T, 4, 4] (rotation = exp of a random skew matrix) and a pinhole K [B, T, 3, 3]."""
    w = torch.randn(batch, frames, 3, generator=gen)
    skew = torch.zeros(batch, frames, 3, 3)
    skew[..., 0, 1], skew[..., 0, 2], skew[..., 1, 2] = -w[..., 2], w[..., 1], -w[..., 0]
    c2w = torch.eye(4).repeat(batch, frames, 1, 1)
    c2w[..., :3, :3] = torch.linalg.matrix_exp(skew - skew.transpose(-1, -2))
    c2w[..., :3, 3] = torch.randn(batch, frames, 3, generator=gen)
    K = torch.tensor([[width * 0.9, 0, (width - 1) / 2], [0, width * 0.9, (height - 1) / 2], [0, 0, 1]])
    return c2w, K.repeat(batch, frames, 1, 1)


def _setup(frames=8, height=3, width=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    c2w, K = random_cameras(gen, 2, frames, height, width)
    x = torch.randn(2, frames, height * width, DIM, generator=gen, dtype=torch.float64)
    return x, c2w, K


def _call(mixer, x, c2w, K, layout, state=None, **kwargs):
    rotary = rotary_tables(layout.frame_indices(), layout.height, layout.width, HEAD_DIM)
    half = rotary_tables(layout.frame_indices(), layout.height, layout.width, HEAD_DIM, rotary_dim=HEAD_DIM // 2)
    rays = CameraRays.from_cameras(c2w, K, layout, half) if c2w is not None else None
    return mixer(x, layout, rotary, rays, state, **kwargs)


def _stream(mixer, x, c2w, K, state, height=3, width=3):
    pieces = []
    full = FrameLayout(x.shape[1], height, width, chunk_plan=PLAN)
    for s, e in full.chunks():
        layout = FrameLayout(e - s, height, width, offset=s, chunk_plan=PLAN)
        y, state = _call(mixer, x[:, s:e], c2w[:, s:e], K[:, s:e], layout, state)
        pieces.append(y)
    return torch.cat(pieces, 1), state


MIXERS = {
    "gdn": lambda: GdnMixer(DIM, HEADS),
    "cumulative": lambda: GdnMixer(DIM, HEADS, gated_delta=False),
    "softmax": lambda: SoftmaxMixer(DIM, HEADS, sink_chunks=1, window_chunks=8),
}


def _initial_state(mixer):
    return mixer.initial_state() if isinstance(mixer, SoftmaxMixer) else GdnState()


@pytest.mark.parametrize("kind", sorted(MIXERS))
def test_streaming_equals_chunk_causal(kind):
    mixer = _perturbed(MIXERS[kind](), 1)
    x, c2w, K = _setup()
    full, _ = _call(mixer, x, c2w, K, FrameLayout(8, 3, 3, chunk_plan=PLAN))
    streamed, _ = _stream(mixer, x, c2w, K, _initial_state(mixer))
    torch.testing.assert_close(streamed, full, atol=1e-9, rtol=1e-9)


def test_softmax_streaming_window_equals_windowed_mask():
    mixer = _perturbed(SoftmaxMixer(DIM, HEADS, sink_chunks=1, window_chunks=1), 2)
    x, c2w, K = _setup()
    layout = FrameLayout(8, 3, 3, chunk_plan=PLAN)
    windowed, _ = _call(mixer, x, c2w, K, layout, windowed=True)
    unwindowed, _ = _call(mixer, x, c2w, K, layout)
    streamed, _ = _stream(mixer, x, c2w, K, mixer.initial_state())
    torch.testing.assert_close(streamed, windowed, atol=1e-9, rtol=1e-9)
    # chunk 3 ([7, 8)) no longer sees chunk 1 ([3, 5)) through the window
    assert (windowed[:, 7:] - unwindowed[:, 7:]).abs().max() > 1e-4
    torch.testing.assert_close(windowed[:, :7], unwindowed[:, :7])


@pytest.mark.parametrize("kind", sorted(MIXERS))
def test_chunk_causal_ignores_later_chunks(kind):
    mixer = _perturbed(MIXERS[kind](), 3)
    x, c2w, K = _setup()
    layout = FrameLayout(8, 3, 3, chunk_plan=PLAN)
    base, _ = _call(mixer, x, c2w, K, layout)
    x2, c2w2 = x.clone(), c2w.clone()
    x2[:, 3:5] += torch.randn_like(x2[:, 3:5])  # chunk 1
    c2w2[:, 3:5, :3, 3] += 1.0
    moved, _ = _call(mixer, x2, c2w2, K, layout)
    torch.testing.assert_close(moved[:, :3], base[:, :3], atol=0, rtol=0)
    assert (moved[:, 3:5] - base[:, 3:5]).abs().max() > 1e-4
    bidirectional, _ = _call(mixer, x, c2w, K, FrameLayout(8, 3, 3))
    bidirectional2, _ = _call(mixer, x2, c2w2, K, FrameLayout(8, 3, 3))
    assert (bidirectional2[:, :3] - bidirectional[:, :3]).abs().max() > 1e-6


def test_streaming_leaves_the_old_state_untouched():
    mixer = _perturbed(GdnMixer(DIM, HEADS), 4)
    x, c2w, K = _setup()
    layout = FrameLayout(3, 3, 3, chunk_plan=PLAN)
    _, state = _call(mixer, x[:, :3], c2w[:, :3], K[:, :3], layout, GdnState())
    saved = {name: t.clone() for name, t in vars(state).items() if t is not None}
    next_layout = FrameLayout(2, 3, 3, offset=3, chunk_plan=PLAN)
    first, _ = _call(mixer, x[:, 3:5], c2w[:, 3:5], K[:, 3:5], next_layout, state)
    second, _ = _call(mixer, x[:, 3:5] * 2, c2w[:, 3:5], K[:, 3:5], next_layout, state)
    again, _ = _call(mixer, x[:, 3:5], c2w[:, 3:5], K[:, 3:5], next_layout, state)
    assert torch.equal(first, again) and not torch.equal(first, second)
    for name, t in saved.items():
        assert torch.equal(getattr(state, name), t)
