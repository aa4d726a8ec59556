"""WorldDiT: streaming == chunk-causal forward (every layer type, all zero-init layers perturbed), chunk-causality,
exact zero camera contribution at init, functional streaming state, gradient checkpointing, bad input."""

import pytest
import torch
from world_dit_inputs import CAMERA_ZERO_INIT, perturb, random_cameras, random_inputs, tiny_config, tiny_model

from camworld.errors import UserError
from camworld.models.dit import CameraInputs, WorldDiT


def _stream(model, x, sigma, text, mask, camera, bounds):
    state = model.init_state(x.shape[0])
    pieces = []
    for s, e in bounds:
        v, state = model.step(x[:, s:e], sigma[:, s:e], text, mask, camera.frames(s, e), state)
        pieces.append(v)
    return torch.cat(pieces, 1), state


@pytest.mark.parametrize("frames,grid", [(8, (3, 5)), (7, (3, 4))])
def test_streaming_equals_chunk_causal_forward(frames, grid):
    model = tiny_model()
    x, sigma, text, mask, camera = random_inputs(model.cfg, frames=frames, height=grid[0], width=grid[1])
    with torch.no_grad():
        full = model(x, sigma, text, mask, camera, causal=True)
        bounds = [(0, 3), (3, 5), (5, 7), (7, 8)][: 3 + (frames == 8)]
        streamed, state = _stream(model, x, sigma, text, mask, camera, bounds)
    assert (streamed - full).abs().max() <= 1e-5
    assert state.frame_offset == frames and state.chunks_done == len(bounds)


def test_finite_window_streaming_equals_windowed_forward():
    model = tiny_model(kv_window_chunks=1)
    x, sigma, text, mask, camera = random_inputs(model.cfg)
    with torch.no_grad():
        windowed = model(x, sigma, text, mask, camera, causal=True, windowed=True)
        unwindowed = model(x, sigma, text, mask, camera, causal=True)
        streamed, _ = _stream(model, x, sigma, text, mask, camera, [(0, 3), (3, 5), (5, 7), (7, 8)])
    assert (streamed - windowed).abs().max() <= 1e-5
    # the last chunk has lost chunk 1 from the softmax window, so the two forwards differ there only
    assert (windowed[:, 7:] - unwindowed[:, 7:]).abs().max() > 1e-4
    assert (windowed[:, :7] - unwindowed[:, :7]).abs().max() <= 1e-5


def test_later_chunks_do_not_change_earlier_outputs():
    model = tiny_model()
    x, sigma, text, mask, camera = random_inputs(model.cfg)
    x2, sigma2 = x.clone(), sigma.clone()
    c2w2, plucker2 = camera.c2w.clone(), camera.plucker.clone()
    x2[:, 5:7] += 1.0  # chunk 2 = frames [5, 7): latents, noise levels and cameras
    sigma2[:, 5:7] = 1.0 - sigma2[:, 5:7]
    c2w2[:, 5:7, :3, 3] += 1.0
    plucker2[:, 5:7] += 1.0
    camera2 = CameraInputs(c2w2, camera.K, plucker2)
    with torch.no_grad():
        base = model(x, sigma, text, mask, camera, causal=True)
        moved = model(x2, sigma2, text, mask, camera2, causal=True)
        bidirectional = model(x, sigma, text, mask, camera)
        bidirectional2 = model(x2, sigma2, text, mask, camera2)
    assert (moved[:, :5] - base[:, :5]).abs().max() <= 1e-6
    assert (moved[:, 5:] - base[:, 5:]).abs().max() > 1e-3
    assert (bidirectional2[:, :5] - bidirectional[:, :5]).abs().max() > 1e-4


def test_cameras_contribute_exactly_zero_at_init():
    torch.manual_seed(0)
    model = perturb(WorldDiT(tiny_config()), 1, skip=CAMERA_ZERO_INIT).eval()
    x, sigma, text, mask, camera = random_inputs(model.cfg)
    other = random_cameras(torch.Generator().manual_seed(9), 2, 8, 3, 5, model.cfg.temporal_stride)
    with torch.no_grad():
        without = model(x, sigma, text, mask, None)
        assert torch.equal(model(x, sigma, text, mask, camera), without)
        assert torch.equal(model(x, sigma, text, mask, other), without)
        perturb(model, 2)  # now the camera layers too: cameras must matter
        assert (model(x, sigma, text, mask, camera) - model(x, sigma, text, mask, other)).abs().max() > 1e-4


def test_every_zero_init_camera_layer_gets_a_gradient_at_init():
    """Zero-init layers must not sit in a saddle: each gets a nonzero gradient from the first camera batch (the old
    zero-init Plücker embedder made every `plucker_proj` gradient exactly zero)."""
    torch.manual_seed(0)
    model = perturb(WorldDiT(tiny_config()), 1, skip=("camera", "plucker"))  # camera layers as initialised
    x, sigma, text, mask, camera = random_inputs(model.cfg)
    model(x, sigma, text, mask, camera).pow(2).mean().backward()
    zero_init = [(n, p) for n, p in model.named_parameters() if any(k in n for k in CAMERA_ZERO_INIT)]
    assert len(zero_init) == 4 * model.cfg.depth
    for name, param in zero_init:
        assert param.grad is not None and param.grad.abs().max() > 0, name


def test_step_is_functional():
    model = tiny_model()
    x, sigma, text, mask, camera = random_inputs(model.cfg)
    with torch.no_grad():
        state = model.init_state(2)
        _, state = model.step(x[:, :3], sigma[:, :3], text, mask, camera.frames(0, 3), state)
        first, after = model.step(x[:, 3:5], sigma[:, 3:5], text, mask, camera.frames(3, 5), state)
        noisy, _ = model.step(torch.randn_like(x[:, 3:5]), sigma[:, 3:5], text, mask, camera.frames(3, 5), state)
        again, _ = model.step(x[:, 3:5], sigma[:, 3:5], text, mask, camera.frames(3, 5), state)
    assert torch.equal(first, again) and not torch.equal(first, noisy)
    assert state.frame_offset == 3 and after.frame_offset == 5


def test_step_rejects_a_chunk_of_the_wrong_length():
    model = tiny_model()
    x, sigma, text, mask, camera = random_inputs(model.cfg)
    state = model.init_state(2)
    with pytest.raises(UserError, match="one chunk"):
        model.step(x[:, :4], sigma[:, :4], text, mask, camera.frames(0, 4), state)
    _, state = model.step(x[:, :2], sigma[:, :2], text, mask, camera.frames(0, 2), state)  # a short final chunk
    with pytest.raises(UserError, match="chunk start"):
        model.step(x[:, 2:4], sigma[:, 2:4], text, mask, camera.frames(2, 4), state)
    with pytest.raises(UserError, match="sigma"):
        model(x, sigma[:, :3], text, mask, camera)


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    plain = perturb(WorldDiT(tiny_config()), 1).train()
    torch.manual_seed(0)
    checkpointed = perturb(WorldDiT(tiny_config(gradient_checkpointing=True)), 1).train()
    x, sigma, text, mask, camera = random_inputs(plain.cfg, frames=4, height=2, width=3)
    for model in (plain, checkpointed):
        model(x, sigma, text, mask, camera, causal=True).square().mean().backward()
    for (name, a), (_, b) in zip(plain.named_parameters(), checkpointed.named_parameters()):
        assert a.grad is not None and torch.isfinite(a.grad).all(), name
        torch.testing.assert_close(b.grad, a.grad, msg=name)


@pytest.mark.parametrize(
    "overrides",
    [{"gated_delta": False}, {"softmax_every": 1}, {"softmax_every": 0, "conv_kernel": 2}, {"ucpe": False}],
    ids=["cumulative", "all-softmax", "all-gdn", "plucker-only"],
)
def test_ablation_variants_stream_like_their_chunk_causal_forward(overrides):
    model = tiny_model(depth=2, **overrides)
    x, sigma, text, mask, camera = random_inputs(model.cfg, frames=5, height=2, width=3)
    with torch.no_grad():
        full = model(x, sigma, text, mask, camera, causal=True)
        streamed, _ = _stream(model, x, sigma, text, mask, camera, [(0, 3), (3, 5)])
    assert (streamed - full).abs().max() <= 1e-5
