"""Refiner inference: the sink is held and committed once, the σ list and chunk plan of both modes, oracle
recovery, and equality with the plain chunk-causal forward on the real tiny WorldDiT."""

import pytest
import torch
from sampler_fakes import OracleModel, RecordingModel, random_cameras, text_inputs, tiny_world_config, tiny_world_model

from camworld.config import RefinerConfig
from camworld.errors import UserError
from camworld.flow.refiner_objective import refiner_model_config, with_chunk_plan
from camworld.flow.schedule import add_noise
from camworld.samplers.autoregressive import sample_autoregressive_reference
from camworld.samplers.euler import euler_frames
from camworld.samplers.refine import refine_latents

B, T, H, W, C = 2, 7, 3, 5, 4
SIGMAS = RefinerConfig().sigmas


def _clip(seed=0, channels=C):
    gen = torch.Generator().manual_seed(seed)
    x_h = torch.randn(B, T, H, W, channels, generator=gen)
    x_l = x_h + 0.3 * torch.randn(B, T, H, W, channels, generator=gen)
    x_l[:, 0] = x_h[:, 0]
    return x_h, x_l


@pytest.mark.parametrize("mode", ["bidirectional", "chunk_causal"])
def test_oracle_refiner_recovers_the_target_and_keeps_the_sink(mode):
    x_h, x_l = _clip()
    x_l[0, 0, 0, 0, 0] = -0.0
    text, mask = text_inputs(B, 3, 6)
    out = refine_latents(OracleModel(x_h), x_l, text, mask, mode=mode, block=2)
    assert out[:, :1].view(torch.int32).equal(x_l[:, :1].view(torch.int32))
    torch.testing.assert_close(out[:, 1:], x_h[:, 1:], atol=1e-5, rtol=0)


def test_chunk_plans_and_sigmas_of_both_modes():
    x_h, x_l = _clip()
    text, mask = text_inputs(B, 3, 6)
    camera = random_cameras(B, T, H, W, 2)
    for mode, plan in (("bidirectional", [(1, 6)]), ("chunk_causal", [(1, 3), (4, 3)])):
        model = RecordingModel()
        chunks = []
        refine_latents(model, x_l, text, mask, camera, mode=mode, block=3,
                       on_chunk=lambda i, x, seen=chunks: seen.append(i))
        expected = [(0, 1, 0.0)]  # the sink is committed once, at σ = 0
        for n, (start, size) in enumerate(plan):
            expected += [(start, size, s) for s in SIGMAS[:-1]]
            if n < len(plan) - 1:
                expected.append((start, size, 0.0))
        got = [(c["offset"], c["frames"], float(c["sigma"][0, 0])) for c in model.calls]
        assert got == [(o, n, pytest.approx(s)) for o, n, s in expected]
        assert all(float(c["sigma"].max()) == float(c["sigma"].min()) for c in model.calls)
        for c in model.calls:
            assert torch.equal(c["c2w"], camera.c2w[:, c["offset"] : c["offset"] + c["frames"]])
        assert chunks == list(range(len(plan) + 1))


def test_seed_sets_the_refiner_noise():
    _, x_l = _clip()
    text, mask = text_inputs(B, 3, 6)
    a, b, c = (refine_latents(RecordingModel(), x_l, text, mask, seed=s) for s in (1, 1, 2))
    assert torch.equal(a, b) and not torch.allclose(a, c)
    with pytest.raises(UserError):
        refine_latents(RecordingModel(), x_l, text, mask, mode="sideways")
    with pytest.raises(UserError):
        refine_latents(RecordingModel(), x_l[:, :1], text, mask)


@pytest.fixture(scope="module")
def refiner():
    cfg = refiner_model_config(tiny_world_config(), RefinerConfig(window_chunks=1))
    gen = torch.Generator().manual_seed(4)
    x_l = torch.randn(B, T, H, W, cfg.in_channels, generator=gen)
    text, mask = text_inputs(B, 3, cfg.text_dim)
    return tiny_world_model(cfg, seed=2), x_l, text, mask, random_cameras(B, T, H, W, cfg.temporal_stride, seed=1)


def _start(x_l, seed):
    noise = torch.randn(x_l[:, 1:].shape, generator=torch.Generator().manual_seed(seed))
    return torch.cat([x_l[:, :1], add_noise(x_l[:, 1:], noise, torch.tensor(SIGMAS[0]))], dim=1)


def test_sink_bidirectional_refine_equals_the_sink_masked_forward(refiner):
    model, x_l, text, mask, camera = refiner
    out = refine_latents(model, x_l, text, mask, camera, seed=7)
    # SANA-WM's loop: the whole [sink; current] clip through the model each step, sink at σ = 0 and never updated
    x = _start(x_l, 7)
    hold = torch.arange(T) == 0
    with torch.no_grad():
        for s, s_next in zip(SIGMAS, SIGMAS[1:]):
            sigma = torch.full((B, T), s).masked_fill(hold, 0.0)
            sigma_next = torch.full((B, T), s_next).masked_fill(hold, 0.0)
            v = model(x, sigma, text, mask, camera, causal=True)
            x = euler_frames(x, v, sigma, sigma_next, hold)
    torch.testing.assert_close(out, x, atol=2e-5, rtol=1e-5)


def test_streaming_refine_equals_the_chunk_causal_reference(refiner):
    model, x_l, text, mask, camera = refiner
    out = refine_latents(model, x_l, text, mask, camera, seed=7, mode="chunk_causal", block=2)
    plain = sample_autoregressive_reference(
        with_chunk_plan(model, 1, 2), _start(x_l, 7), text, mask, camera, sigmas=SIGMAS, chunk_first=1,
        chunk_size=2, interval_k=1.0, first_frame=x_l[:, :1],
    )
    torch.testing.assert_close(out, plain, atol=2e-5, rtol=1e-5)
    assert torch.equal(out[:, :1], x_l[:, :1])
    bidirectional = refine_latents(model, x_l, text, mask, camera, seed=7)
    assert (bidirectional - out).abs().max() > 1e-3
