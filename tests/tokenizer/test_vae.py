"""Causal video VAE: causality, chunked == whole encode, streaming == whole decode, normalisation, checkpoints."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from camworld.config import RunConfig, TokenizerConfig
from camworld.errors import UserError
from camworld.tokenizer.vae import CausalVideoVAE, StreamingDecoder, load_vae, save_vae, to_uint8, to_unit

ATOL = 1e-5


def small_cfg(**kw) -> TokenizerConfig:
    base = {"latent_channels": 4, "base_channels": 8, "channel_mults": (1, 2, 2), "height": 16, "width": 24,
            "chunk_latents": 2}
    return TokenizerConfig(**{**base, **kw})


def make_vae(**kw) -> CausalVideoVAE:
    torch.manual_seed(0)
    vae = CausalVideoVAE(small_cfg(**kw)).eval()
    with torch.no_grad():
        vae.latents_mean.copy_(torch.randn(vae.cfg.latent_channels))
        vae.latents_std.copy_(torch.rand(vae.cfg.latent_channels) + 0.5)
    return vae


def clip(frames: int, seed: int = 0, batch: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, frames, 16, 24, 3, generator=g) * 2 - 1


@torch.no_grad()
def test_shapes_and_frame_counts():
    vae = make_vae()
    z = vae.encode(clip(13))
    assert z.shape == (2, 4, 2, 3, 4)
    assert vae.decode(z).shape == (2, 13, 16, 24, 3)
    assert vae.decode(vae.encode(clip(1))).shape == (2, 1, 16, 24, 3)
    with pytest.raises(UserError):
        vae.encode(clip(12))


@torch.no_grad()
def test_first_frame_alone_equals_first_latent():
    vae = make_vae()
    video = clip(17)
    torch.testing.assert_close(vae.encode(video[:, :1]), vae.encode(video)[:, :1], atol=ATOL, rtol=0)


@torch.no_grad()
def test_encoder_is_causal_with_bounded_context():
    """Latent k sees raw frames 4k-4 .. 4k only: frame 4k+1 changes latent k+1 but nothing before it."""
    vae = make_vae()
    video = clip(17)
    z = vae.encode(video)
    for frame in (1, 4, 5, 10, 16):
        bumped = video.clone()
        bumped[:, frame] += 0.5
        zb = vae.encode(bumped)
        k = (frame + 3) // 4  # the latent whose group holds this frame
        # the group's last frame (4k) is also the causal context of latent k+1
        changed = {k, k + 1} if frame % 4 == 0 and k + 1 < z.shape[1] else {k}
        for j in range(z.shape[1]):
            diff = (zb[:, j] - z[:, j]).abs().max().item()
            assert (diff > 1e-4) if j in changed else (diff <= ATOL), (frame, j, diff)


@torch.no_grad()
@pytest.mark.parametrize("chunk", [1, 2, 3])
def test_chunked_encode_equals_whole(chunk):
    vae = make_vae()
    video = clip(21)
    torch.testing.assert_close(vae.encode(video, chunk=chunk), vae.encode(video, chunk=0), atol=ATOL, rtol=0)


@torch.no_grad()
def test_uint8_input_matches_float():
    vae = make_vae()
    frames = torch.randint(0, 256, (1, 9, 16, 24, 3), dtype=torch.uint8)
    torch.testing.assert_close(vae.encode(frames), vae.encode(to_unit(frames)), atol=ATOL, rtol=0)
    assert torch.equal(to_uint8(to_unit(frames)), frames)


@torch.no_grad()
@pytest.mark.parametrize("sizes", [[1, 1, 1, 1, 1, 1], [2, 3, 1], [4, 2], [1, 5]])
def test_streaming_decode_equals_whole(sizes):
    vae = make_vae()
    z = torch.randn(2, sum(sizes), 2, 3, 4)
    whole = vae.decode(z, chunk=0)
    stream = StreamingDecoder(vae)
    parts, k0 = [], 0
    for n in sizes:
        part = stream.step(z[:, k0 : k0 + n])
        assert part.shape[1] == (1 + 4 * (n - 1) if k0 == 0 else 4 * n)
        parts.append(part)
        k0 += n
    torch.testing.assert_close(torch.cat(parts, dim=1), whole, atol=ATOL, rtol=0)
    torch.testing.assert_close(vae.decode(z), whole, atol=ATOL, rtol=0)


@torch.no_grad()
def test_decoder_is_causal():
    """Frames of group k depend on latents k and k-1 only: changing latent 3 leaves frames 0..8 alone."""
    vae = make_vae()
    z = torch.randn(1, 5, 2, 3, 4)
    bumped = z.clone()
    bumped[:, 3] += 1.0
    a, b = vae.decode(z), vae.decode(bumped)
    torch.testing.assert_close(b[:, :9], a[:, :9], atol=ATOL, rtol=0)
    assert (b[:, 9:13] - a[:, 9:13]).abs().max() > 1e-4
    assert (b[:, 13:17] - a[:, 13:17]).abs().max() > 1e-4


@torch.no_grad()
def test_latent_normalisation_round_trip():
    vae = make_vae()
    video = clip(9)
    raw = vae.moments(video)[0]
    z = vae.encode(video)
    torch.testing.assert_close(z, (raw - vae.latents_mean) / vae.latents_std, atol=ATOL, rtol=0)
    torch.testing.assert_close(vae.denormalize(z), raw, atol=ATOL, rtol=0)
    # decode inverts the normalisation: decoding normalised latents equals decoding the raw posterior mean
    torch.testing.assert_close(vae.decode(z), vae.decode_raw(raw), atol=ATOL, rtol=0)


@torch.no_grad()
def test_checkpoint_round_trip(tmp_path):
    vae = make_vae()
    save_vae(vae, tmp_path / "ckpt", RunConfig(tokenizer=vae.cfg))
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["config.json", "model.safetensors"]
    tensors = load_file(str(tmp_path / "ckpt" / "model.safetensors"))
    torch.testing.assert_close(tensors["latents_std"], vae.latents_std)
    loaded = load_vae(tmp_path / "ckpt")
    assert loaded.cfg == vae.cfg
    video = clip(9)
    torch.testing.assert_close(loaded.encode(video), vae.encode(video), atol=0, rtol=0)
    z = torch.randn(1, 3, 2, 3, 4)
    torch.testing.assert_close(loaded.decode(z), vae.decode(z), atol=0, rtol=0)


def test_checkpoint_mismatch_and_missing_raise(tmp_path):
    vae = make_vae()
    save_vae(vae, tmp_path / "ckpt", RunConfig(tokenizer=small_cfg(latent_channels=8)))
    with pytest.raises(UserError):
        load_vae(tmp_path / "ckpt")
    with pytest.raises(UserError):
        load_vae(tmp_path / "nothing")


def test_bad_config_raises():
    with pytest.raises(UserError):
        CausalVideoVAE(small_cfg(channel_mults=(1, 2)))
    with pytest.raises(UserError):
        CausalVideoVAE(small_cfg(spatial_stride=6))


@pytest.mark.parametrize("name, grid", [("tiny", (9, 16)), ("small", (18, 32)), ("full", (22, 40))])
def test_presets_agree_with_the_model(name, grid):
    from camworld.presets import get_preset

    run = get_preset(name)
    tok = run.tokenizer
    assert tok.latent_channels == run.model.in_channels
    assert tok.temporal_stride == run.model.temporal_stride
    assert run.text.dim == run.model.text_dim
    assert (tok.train_frames - 1) % tok.temporal_stride == 0
    assert (tok.height // tok.spatial_stride, tok.width // tok.spatial_stride) == grid
    with torch.device("meta"):
        vae = CausalVideoVAE(tok)
        z = vae.encode(torch.zeros(1, 1, tok.height, tok.width, 3))
    assert z.shape == (1, 1, *grid, tok.latent_channels)
