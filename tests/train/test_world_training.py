"""WorldDiT trained through the flow objective adapter and the stage recipe, at toy size (dim 64, depth 4)."""

import dataclasses

import numpy as np
import pytest
import torch

from camworld.config import ModelConfig
from camworld.models.dit import WorldDiT
from camworld.presets import tiny
from camworld.train.loop import train
from camworld.train.stages import apply_stage, load_previous_stage
from camworld.train.world_objective import WorldModelObjective

STRIDE, LAT_T, GRID, CH, TEXT_DIM, IMAGE = 2, 3, 4, 4, 16, 32
WORDS = ["red", "blue", "green", "forest", "desert", "city"]


def model_cfg(**kw):
    base = ModelConfig(in_channels=CH, dim=64, depth=4, heads=2, ffn_ratio=2, text_dim=TEXT_DIM,
                       temporal_stride=STRIDE, chunk_first=2, chunk_size=1, gdn_backend="chunked")
    return dataclasses.replace(base, **kw)


def encode_text(captions):
    """A fixed word-embedding table: each caption word adds its row; L = 4 tokens."""
    table = torch.randn(len(WORDS), TEXT_DIM, generator=torch.Generator().manual_seed(3))
    emb, mask = torch.zeros(len(captions), 4, TEXT_DIM), torch.zeros(len(captions), 4, dtype=torch.bool)
    for b, caption in enumerate(captions):
        for i, word in enumerate(caption.split()[:4]):
            emb[b, i], mask[b, i] = table[WORDS.index(word)], True
    return emb, mask


def latent_clips(n=8):
    """Precomputed-latent clips: a colour per caption word, a spatial ramp, a camera moving forward."""
    g = torch.Generator().manual_seed(0)
    frames = STRIDE * (LAT_T - 1) + 1
    K = np.array([[IMAGE, 0, IMAGE / 2], [0, IMAGE, IMAGE / 2], [0, 0, 1]], np.float32)
    items = []
    for i in range(n):
        colour, scene = i % 3, 3 + (i // 3) % 3
        base = torch.zeros(CH)
        base[colour] = 1.5
        ramp = torch.linspace(-1, 1, GRID)[:, None, None] * (scene - 4)
        lat = (base + ramp).expand(LAT_T, GRID, GRID, CH) + 0.05 * torch.randn(LAT_T, GRID, GRID, CH, generator=g)
        c2w = np.tile(np.eye(4, dtype=np.float32), (frames, 1, 1))
        c2w[:, 2, 3] = 0.1 * np.arange(frames) * (1 + i % 2)
        items.append({"latents": lat.contiguous(), "image_hw": torch.tensor([IMAGE, IMAGE]),
                      "c2w": torch.from_numpy(c2w), "intrinsics": torch.from_numpy(np.stack([K] * frames)),
                      "caption": f"{WORDS[colour]} {WORDS[scene]}"})
    return items


def objective(**kw):
    return WorldModelObjective(encode_text=encode_text, seed=1, shift=2.0, temporal_stride=STRIDE,
                               chunk_first=2, chunk_size=1, **kw)


def _eval(model, obj, data):
    batch = {k: (torch.stack([d[k] for d in data]) if k != "caption" else [d[k] for d in data]) for k in data[0]}
    batch["draw"] = torch.arange(10**6, 10**6 + len(data))
    model.eval()
    with torch.no_grad():
        loss = float(obj(model, batch)[0])
    model.train()
    return loss


def test_world_dit_with_camera_learns_from_precomputed_latents(tmp_path):
    torch.manual_seed(0)
    model = WorldDiT(model_cfg())
    obj, data = objective(camera=True), latent_clips(12)
    before = _eval(model, obj, data)
    cfg = dataclasses.replace(tiny().train, lr=2e-3, batch_size=4, steps=25, checkpoint_every=25, bf16=False)
    records = train(model, obj, data, cfg, tmp_path, progress=False)
    assert records[-1]["tokens"] == 4 * LAT_T * GRID * GRID
    assert _eval(model, obj, data) < 0.7 * before


def test_chunk_causal_stage_trains_with_the_noise_mixture(tmp_path):
    torch.manual_seed(0)
    model = WorldDiT(model_cfg())
    seen = []
    original = model.forward

    def spy(x, sigma, text, mask, camera, *, causal=False):
        seen.append((sigma.detach().clone(), causal))
        return original(x, sigma, text, mask, camera, causal=causal)

    model.forward = spy
    cfg = dataclasses.replace(tiny().train, lr=1e-3, batch_size=4, steps=3, checkpoint_every=3, bf16=True)
    records = train(model, objective(camera=True, causal=True), latent_clips(8), cfg, tmp_path, progress=False)
    assert all(np.isfinite(r["loss"]) for r in records)
    sigma = torch.cat([s for s, _ in seen])
    assert all(c for _, c in seen)
    # chunks {0, 1}, {2}: later chunks no less noisy; frame 0 shares chunk 0's level unless it is the clean I2V frame
    assert (sigma[:, 2] >= sigma[:, 1]).all()
    noised = sigma[:, 0] > 0
    assert torch.equal(sigma[noised, 0], sigma[noised, 1]) and (~noised).any()


def test_stage_chain_loads_weights_and_initialises_camera_from_main_qkv():
    cfgs = {n: apply_stage(tiny(), n) for n in (1, 2, 3, 4)}
    assert cfgs[1].model.softmax_every == 0 and not cfgs[1].model.ucpe and not cfgs[2].model.ucpe
    assert cfgs[2].model.softmax_every == 4 and cfgs[3].model.ucpe and cfgs[3].model.plucker
    assert cfgs[3].train.clip_frames == tiny().train.long_clip_frames and cfgs[1].train.clip_frames == 17
    assert cfgs[3].train.lr == pytest.approx(tiny().train.lr / 5) and cfgs[4].train.causal and not cfgs[3].train.causal
    assert cfgs[4].train.steps == round(tiny().train.steps / 3)

    torch.manual_seed(0)
    m1 = WorldDiT(model_cfg(softmax_every=0, ucpe=False, plucker=False))
    m2 = WorldDiT(model_cfg(softmax_every=4, ucpe=False, plucker=False))
    report = load_previous_stage(m2, m1.state_dict())
    assert report["dropped"] > 0 and report["new"] == 0
    assert torch.equal(m2.blocks[3].attn.qkv.weight, m1.blocks[3].attn.qkv.weight)
    m3 = WorldDiT(model_cfg(softmax_every=4))
    report = load_previous_stage(m3, m2.state_dict())
    assert report["new"] > 0 and report["camera_branches_from_main"] == 4
    for block in m3.blocks:
        q_main = block.attn.qkv.weight.chunk(3, dim=0)[0]
        assert torch.equal(block.attn.camera.q_proj_cam.weight, q_main)
    with pytest.raises(ValueError, match="not an earlier stage"):
        load_previous_stage(m3, {"bogus.weight": torch.zeros(1)})


def test_clip_cameras_rebase_plucker_rays_as_sampling_does():
    from camworld.camera import action_string_to_c2w, intrinsics_to_grid, pack_plucker, relativize
    from camworld.ops.chunks import rebase_frames
    from camworld.train.world_objective import clip_cameras

    K = np.array([[64.0, 0, 64], [0, 64, 36], [0, 0, 1]], np.float32)
    c2w = torch.as_tensor(action_string_to_c2w("w-20,dw-20,d-12"))[None]  # 53 raw frames: 14 latent, 5 chunks
    Ks = torch.as_tensor(K).expand(1, 53, 3, 3)
    rebased = clip_cameras(c2w, Ks, [(72, 128)], (9, 16), 4, (4, 3), 2)
    plain = clip_cameras(c2w, Ks, [(72, 128)], (9, 16), 4)
    k_grid = intrinsics_to_grid(Ks[0].double().numpy(), (72, 128), (9, 16))
    expected = pack_plucker(relativize(c2w[0].double().numpy()), k_grid, 4, (9, 16), rebase_frames(14, 4, 3, 2))
    torch.testing.assert_close(rebased.plucker[0], expected)
    assert torch.equal(rebased.plucker[:, :10], plain.plucker[:, :10])  # the first 3 chunks: frame 0 either way
    assert not torch.allclose(rebased.plucker[:, 10:], plain.plucker[:, 10:])
    assert torch.equal(rebased.c2w, plain.c2w)  # the UCPE branch keeps frame-0 poses (it sees only relative ones)
