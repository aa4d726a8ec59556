"""The self-forcing rollout (the student's training-time sampler) on the real tiny WorldDiT: exiting every chunk at
step k equals the streaming pyramid sampler, and its prefix-forward reference, run chunk by chunk on the σ list cut
after step k; the gradient flows through the exit step of each chunk and nothing else."""

import pytest
import torch
from sampler_fakes import random_cameras, text_inputs, tiny_world_config, tiny_world_model

from camworld.errors import UserError
from camworld.ops.chunks import chunk_bounds
from camworld.samplers.autoregressive import (
    DISTILLED_SIGMAS,
    sample_autoregressive,
    sample_autoregressive_reference,
)
from camworld.samplers.self_forcing import self_forcing_rollout

T, H, W = 8, 3, 5


@pytest.fixture(scope="module")
def setup():
    cfg = tiny_world_config()
    model = tiny_world_model(cfg)
    gen = torch.Generator().manual_seed(5)
    noise = torch.randn(2, T, H, W, cfg.in_channels, generator=gen)
    image = torch.randn(2, 1, H, W, cfg.in_channels, generator=gen)
    text, mask = text_inputs(2, 4, cfg.text_dim)
    return cfg, model, noise, image, text, mask, random_cameras(2, T, H, W, cfg.temporal_stride)


@pytest.mark.parametrize("exit_step", [0, 1, 3])
def test_rollout_equals_the_chunk_by_chunk_sampler_cut_at_the_exit_step(setup, exit_step):
    cfg, model, noise, image, text, mask, camera = setup
    chunks = chunk_bounds(T, cfg.chunk_first, cfg.chunk_size)
    with torch.no_grad():
        rollout = self_forcing_rollout(model, noise, text, mask, camera, sigmas=DISTILLED_SIGMAS,
                                       chunk_first=cfg.chunk_first, chunk_size=cfg.chunk_size,
                                       exit_steps=[exit_step] * len(chunks), first_frame=image)
    cut = list(DISTILLED_SIGMAS[: exit_step + 1]) + [0.0]
    kwargs = {"sigmas": cut, "chunk_first": cfg.chunk_first, "chunk_size": cfg.chunk_size, "interval_k": 1.0,
              "first_frame": image}
    streamed = sample_autoregressive(model, noise, text, mask, camera, **kwargs)
    plain = sample_autoregressive_reference(model, noise, text, mask, camera, **kwargs)
    torch.testing.assert_close(rollout, streamed, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(rollout, plain, atol=2e-5, rtol=1e-5)
    assert torch.equal(rollout[:, :1], image)


def test_gradient_flows_through_the_exit_step_only(setup):
    """The loss on the last chunk has the gradient of one model call on that chunk from the detached state that the
    earlier (no-graph) chunks left: rebuilt here by hand."""
    cfg, model, noise, image, text, mask, camera = setup
    chunks = chunk_bounds(T, cfg.chunk_first, cfg.chunk_size)
    exits = [2, 1, 0, 3][: len(chunks)]
    params = [p for p in model.parameters() if p.requires_grad]
    out = self_forcing_rollout(model, noise, text, mask, camera, sigmas=DISTILLED_SIGMAS,
                               chunk_first=cfg.chunk_first, chunk_size=cfg.chunk_size, exit_steps=exits,
                               first_frame=image)
    s, e = chunks[-1]
    grads = torch.autograd.grad(out[:, s:].square().sum(), params, allow_unused=True)

    with torch.no_grad():
        earlier = self_forcing_rollout(model, noise[:, :s], text, mask, camera.frames(0, s), sigmas=DISTILLED_SIGMAS,
                                       chunk_first=cfg.chunk_first, chunk_size=cfg.chunk_size,
                                       exit_steps=exits[:-1], first_frame=image)
        state = model.init_state(2)
        for (a, b) in chunks[:-1]:
            _, state = model.step(earlier[:, a:b], torch.zeros(2, b - a), text, mask, camera.frames(a, b), state)
        part = noise[:, s:e]
        for k in range(exits[-1]):
            sig = torch.full((2, e - s), DISTILLED_SIGMAS[k])
            v, _ = model.step(part, sig, text, mask, camera.frames(s, e), state)
            part = part + (DISTILLED_SIGMAS[k + 1] - DISTILLED_SIGMAS[k]) * v
    sig = torch.full((2, e - s), DISTILLED_SIGMAS[exits[-1]])
    v, _ = model.step(part, sig, text, mask, camera.frames(s, e), state)
    expected = torch.autograd.grad((part - sig[:, :, None, None, None] * v).square().sum(), params, allow_unused=True)
    torch.testing.assert_close(out[:, s:].detach(), (part - sig[:, :, None, None, None] * v).detach(), atol=1e-5,
                               rtol=1e-5)
    assert sum(g is not None and bool(g.abs().max() > 0) for g in grads) > len(params) // 2
    for g, want in zip(grads, expected, strict=True):
        if want is None:
            assert g is None or g.abs().max() == 0
        else:
            torch.testing.assert_close(g, want, atol=1e-5, rtol=1e-4)


def test_one_exit_step_per_chunk_in_range(setup):
    cfg, model, noise, image, text, mask, camera = setup
    with pytest.raises(UserError, match="exit step"):
        self_forcing_rollout(model, noise, text, mask, camera, sigmas=DISTILLED_SIGMAS, chunk_first=cfg.chunk_first,
                             chunk_size=cfg.chunk_size, exit_steps=[0], first_frame=image)
    with pytest.raises(UserError, match="exit step"):
        self_forcing_rollout(model, noise, text, mask, camera, sigmas=DISTILLED_SIGMAS, chunk_first=cfg.chunk_first,
                             chunk_size=cfg.chunk_size, exit_steps=[4, 4, 4, 4], first_frame=image)
