"""Presets build: `tiny` runs on real tensors, `small` and `full` are checked on the meta device (no memory)."""

import torch

from camworld.models.dit import CameraInputs, WorldDiT
from camworld.presets import get_preset


def _inputs(cfg, device, batch=1, frames=2, height=4, width=6, text_len=5):
    gen = torch.Generator().manual_seed(0)

    def rand(*shape):
        return torch.randn(*shape, generator=gen).to(device)

    c2w = torch.eye(4).repeat(batch, frames, 1, 1).to(device)
    K = torch.tensor([[5.0, 0, 2.5], [0, 5.0, 1.5], [0, 0, 1]]).repeat(batch, frames, 1, 1).to(device)
    camera = CameraInputs(c2w, K, rand(batch, frames, height, width, 6 * cfg.temporal_stride))
    mask = torch.ones(batch, text_len, dtype=torch.bool, device=device)
    return (
        rand(batch, frames, height, width, cfg.in_channels),
        torch.rand(batch, frames).to(device),
        rand(batch, text_len, cfg.text_dim),
        mask,
        camera,
    )


def test_tiny_runs_on_real_tensors():
    cfg = get_preset("tiny").model
    model = WorldDiT(cfg).eval()
    x, sigma, text, mask, camera = _inputs(cfg, "cpu")
    with torch.no_grad():
        v = model(x, sigma, text, mask, camera)
        state = model.init_state(1)
        v_chunk, state = model.step(x, sigma, text, mask, camera, state)
    assert v.shape == x.shape and v_chunk.shape == x.shape and torch.isfinite(v).all()
    assert state.frame_offset == 2


def test_small_shapes_on_meta():
    cfg = get_preset("small").model
    with torch.device("meta"):
        model = WorldDiT(cfg)
    x, sigma, text, mask, camera = _inputs(cfg, "meta", frames=5)
    v = model(x, sigma, text, mask, camera, causal=True)
    assert v.shape == x.shape and v.is_meta
    assert sum(b.softmax for b in model.blocks) == cfg.depth // 4


def test_full_is_sana_wm_stage1_size_on_meta():
    cfg = get_preset("full").model
    with torch.device("meta"):
        model = WorldDiT(cfg)
    assert all(p.is_meta for p in model.parameters())
    count = sum(p.numel() for p in model.parameters())
    assert abs(count - 2.66e9) <= 0.03 * 2.66e9, count
    assert [i for i, b in enumerate(model.blocks) if b.softmax] == [3, 7, 11, 15, 19]
    assert model.head_dim == 112 and cfg.in_channels == 128 and cfg.text_dim == 2304
    assert model.blocks[0].ffn.point.in_features == 3 * 2240
