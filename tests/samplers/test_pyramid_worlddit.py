"""The streaming pyramid sampler (save pass + `step` chains) equals SANA-WM's prefix-forward ChunkFlowEuler on the
real tiny WorldDiT: chunk plan (3, 2) with a one-chunk softmax KV window, cameras, first-frame image, with and
without classifier-free guidance."""

import pytest
import torch
from sampler_fakes import random_cameras, text_inputs, tiny_world_config, tiny_world_model

from camworld.flow.schedule import sigmas as shifted_sigmas
from camworld.samplers.autoregressive import sample_autoregressive, sample_autoregressive_reference
from camworld.samplers.guidance import ClassifierFreeGuidance

T, H, W = 8, 3, 5  # chunks [0, 3), [3, 5), [5, 7), [7, 8): the window drops chunk 1 for the last chunk


@pytest.fixture(scope="module")
def setup():
    cfg = tiny_world_config()
    model = tiny_world_model(cfg)
    gen = torch.Generator().manual_seed(3)
    noise = torch.randn(2, T, H, W, cfg.in_channels, generator=gen)
    image = torch.randn(2, 1, H, W, cfg.in_channels, generator=gen)
    text, mask = text_inputs(2, 4, cfg.text_dim)
    return cfg, model, noise, image, text, mask, random_cameras(2, T, H, W, cfg.temporal_stride)


@pytest.mark.parametrize("interval_k", [None, 1.0])
def test_streaming_pyramid_equals_prefix_forward(setup, interval_k):
    cfg, model, noise, image, text, mask, camera = setup
    kwargs = {"sigmas": shifted_sigmas(3, 3.0), "chunk_first": cfg.chunk_first, "chunk_size": cfg.chunk_size,
              "interval_k": interval_k, "first_frame": image}
    fast = sample_autoregressive(model, noise, text, mask, camera, **kwargs)
    plain = sample_autoregressive_reference(model, noise, text, mask, camera, **kwargs)
    torch.testing.assert_close(fast, plain, atol=2e-5, rtol=1e-5)
    assert torch.equal(fast[:, :1], image)
    # the window matters here: the unwindowed prefix forward is a different sampler
    full = sample_autoregressive_reference(model, noise, text, mask, camera, windowed=False, **kwargs)
    assert (full - plain).abs().max() > 1e-3


def test_guided_streaming_pyramid_equals_guided_prefix_forward(setup):
    cfg, model, noise, image, text, mask, camera = setup
    null, null_mask = torch.zeros(3, cfg.text_dim), torch.tensor([True, False, False])
    guided = ClassifierFreeGuidance(model, null, null_mask, 3.0)
    kwargs = {"sigmas": shifted_sigmas(2, 3.0), "chunk_first": cfg.chunk_first, "chunk_size": cfg.chunk_size,
              "first_frame": image}
    fast = sample_autoregressive(guided, noise, text, mask, camera, **kwargs)
    plain = sample_autoregressive_reference(guided, noise, text, mask, camera, **kwargs)
    torch.testing.assert_close(fast, plain, atol=2e-5, rtol=1e-5)
