"""`ChunkRollout` fed one chunk at a time equals `sample_autoregressive` with interval_k = 1 on the whole clip (the
real tiny WorldDiT with cameras and a first-frame image, guided and not), and keeps held frames bit-identical."""

import pytest
import torch
from sampler_fakes import RecordingModel, random_cameras, text_inputs, tiny_world_config, tiny_world_model

from camworld.flow.schedule import sigmas as shifted_sigmas
from camworld.ops.chunks import chunk_bounds
from camworld.samplers.autoregressive import sample_autoregressive
from camworld.samplers.chunk_rollout import ChunkRollout
from camworld.samplers.guidance import ClassifierFreeGuidance

T, H, W = 8, 3, 5  # chunks [0, 3), [3, 5), [5, 7), [7, 8)


def _rollout(model, noise, image, text, mask, camera, sigmas, cfg):
    rollout = ChunkRollout(model, text, mask, sigmas)
    parts = []
    for s, e in chunk_bounds(T, cfg.chunk_first, cfg.chunk_size):
        chunk = noise[:, s:e].clone()
        held = torch.zeros(e - s, dtype=torch.bool)
        if s == 0:
            chunk[:, :1], held[0] = image, True
        parts.append(rollout.next(chunk, camera.frames(s, e), held))
    assert rollout.frames_done == T
    return torch.cat(parts, dim=1)


@pytest.mark.parametrize("guidance", [None, 3.0])
def test_rollout_equals_chunk_by_chunk_sampler(guidance):
    cfg = tiny_world_config()
    model = tiny_world_model(cfg)
    if guidance is not None:
        model = ClassifierFreeGuidance(model, torch.zeros(3, cfg.text_dim), torch.tensor([True, False, False]),
                                       guidance)
    gen = torch.Generator().manual_seed(3)
    noise = torch.randn(2, T, H, W, cfg.in_channels, generator=gen)
    image = torch.randn(2, 1, H, W, cfg.in_channels, generator=gen)
    text, mask = text_inputs(2, 4, cfg.text_dim)
    camera = random_cameras(2, T, H, W, cfg.temporal_stride)
    sigmas = shifted_sigmas(3, 3.0)
    whole = sample_autoregressive(model, noise, text, mask, camera, sigmas=sigmas, chunk_first=cfg.chunk_first,
                                  chunk_size=cfg.chunk_size, interval_k=1.0, first_frame=image)
    stepped = _rollout(model, noise, image, text, mask, camera, sigmas, cfg)
    assert torch.equal(stepped, whole)
    assert torch.equal(stepped[:, :1], image)
    # the committed state carries the earlier chunks: a fresh rollout on the last chunk alone differs
    alone = ChunkRollout(model, text, mask, sigmas).next(noise[:, 7:8], camera.frames(7, 8))
    assert (alone - whole[:, 7:8]).abs().max() > 1e-3


def test_each_chunk_runs_the_sigma_list_then_its_save_pass():
    model = RecordingModel(nan_frame0=True)  # the held frame's velocity is NaN: it must never be used
    text, mask = text_inputs(1, 2, 3)
    rollout = ChunkRollout(model, text, mask, [1.0, 0.5, 0.0])
    held = torch.tensor([True, False])
    first = rollout.next(torch.randn(1, 2, 2, 2, 1), held=held)
    second = rollout.next(torch.randn(1, 1, 2, 2, 1))
    assert torch.isfinite(first).all() and torch.isfinite(second).all()
    assert [(c["offset"], c["frames"]) for c in model.calls] == [(0, 2)] * 3 + [(2, 1)] * 3
    assert [c["sigma"][0].tolist() for c in model.calls] == [[0.0, 1.0], [0.0, 0.5], [0.0, 0.0], [1.0], [0.5],
                                                            [0.0]]
    # denoising steps read the state before the chunk; only the save pass moves it on
    assert [len(c["history"]) for c in model.calls] == [0, 0, 0, 1, 1, 1]
