"""Classifier-free guidance wrapper: combination formula, duplicated cameras, empty-prompt batch, 2B stream state."""

import torch
from sampler_fakes import RecordingModel, random_cameras, text_inputs

from camworld.samplers.autoregressive import sample_autoregressive
from camworld.samplers.guidance import ClassifierFreeGuidance

B, T, H, W, C, D = 2, 4, 2, 3, 4, 6


def _setup():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(B, T, H, W, C, generator=gen)
    sigma = torch.rand(B, T, generator=gen)
    text, mask = text_inputs(B, 5, D)
    null = torch.randn(3, D, generator=gen)
    null_mask = torch.tensor([True, True, False])
    return x, sigma, text, mask, null, null_mask, random_cameras(B, T, H, W, 2)


def test_guided_velocity_combines_the_two_branches():
    x, sigma, text, mask, null, null_mask, camera = _setup()
    model = RecordingModel()
    v = ClassifierFreeGuidance(model, null, null_mask, 4.0)(x, sigma, text, mask, camera)
    call = model.calls[-1]
    assert call["batch"] == 2 * B and torch.equal(call["c2w"], torch.cat([camera.c2w, camera.c2w]))
    padded = torch.cat([null, torch.zeros(2, D)])
    assert torch.equal(call["text"][:B], padded.expand(B, -1, -1)) and torch.equal(call["text"][B:], text)
    assert call["text_mask"][:B].tolist() == [[True, True, False, False, False]] * B
    null_b = null[None].expand(B, -1, -1)
    v_u = model.velocity(x, sigma, null_b, null_mask[None].expand(B, -1), camera)
    v_c = model.velocity(x, sigma, text, mask, camera)
    torch.testing.assert_close(v, v_u + 4.0 * (v_c - v_u))
    assert (v - v_c).abs().max() > 1e-3


def test_scale_one_is_the_conditional_model_alone():
    x, sigma, text, mask, null, null_mask, camera = _setup()
    model = RecordingModel()
    v = ClassifierFreeGuidance(model, null, null_mask, 1.0)(x, sigma, text, mask, camera)
    assert model.calls[-1]["batch"] == B
    assert torch.equal(v, model.velocity(x, sigma, text, mask, camera))


def test_guided_streaming_keeps_a_double_batch_state():
    x, _, text, mask, null, null_mask, camera = _setup()
    model = RecordingModel()
    guided = ClassifierFreeGuidance(model, null, null_mask, 3.0)
    sample_autoregressive(guided, torch.cat([x, x], 1), text, mask, None, sigmas=[1.0, 0.5, 0.0], chunk_first=4,
                          chunk_size=4)
    assert [c["batch"] for c in model.calls] == [2 * B] * 4 + [2 * B]
    assert guided.init_state(B).batch == 2 * B
