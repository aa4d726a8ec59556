"""`WorldModel.generate` with random tiny weights: first-frame conditioning, streaming decode, refiner frame drop,
offloading, and the input preprocessing (image crop and intrinsics agree)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from camworld.camera import action_string_to_c2w, relativize
from camworld.errors import UserError
from camworld.pipeline_inputs import load_image, prepare_cameras, resize_crop_image, snap_num_frames
from camworld.tokenizer.vae import to_uint8
from camworld.video import Mp4Writer, read_video

DEMO = Path("/work/shared/reference/sana_wm_demo")
ACTION = "w-8,dw-8"


def _intrinsics(hw, n, fov_deg=70.0):
    focal = hw[1] / (2 * np.tan(np.radians(fov_deg) / 2))
    K = np.array([[focal, 0, hw[1] / 2], [0, focal, hw[0] / 2], [0, 0, 1]], dtype=np.float32)
    return np.repeat(K[None], n, axis=0)


def _image(hw, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (*hw, 3), dtype=np.uint8)


def test_first_latent_is_the_encoded_image_and_frame0_its_decode(world_model):
    c2w = action_string_to_c2w(ACTION)
    image = _image((48, 80))
    result = world_model.generate(image, "a quiet street", c2w, _intrinsics((48, 80), len(c2w)), steps=2,
                                  refiner=False, progress=False)
    prepared = world_model.prepare_image(image)
    encoded = world_model.encode_image(prepared)
    assert torch.equal(result.latents[:, :1], encoded)  # bit-identical latent 0
    decoded0 = to_uint8(world_model.vae().decode(encoded))[0, 0].numpy()
    assert np.abs(result.frames[0].astype(int) - decoded0.astype(int)).max() <= 1
    assert result.frames.shape == (17, 32, 64, 3) and result.num_frames == 17 and not result.refined
    np.testing.assert_array_equal(result.c2w, c2w[:17])
    np.testing.assert_array_equal(result.first_frame, prepared)


def test_refiner_drops_frame0_and_realigns_poses(world_model):
    c2w = action_string_to_c2w(ACTION)
    K = _intrinsics(world_model.image_hw, len(c2w))
    result = world_model.generate(_image(world_model.image_hw), "", c2w, K, steps=1, refiner=True,
                                  offload_refiner=True, offload_vae=True, progress=False)
    assert result.refined and result.frames.shape[0] == 16 and result.num_frames == 17
    np.testing.assert_array_equal(result.c2w, c2w[1:17])
    np.testing.assert_allclose(result.K, K[1:17], rtol=1e-6)
    assert result.notes["vae_offload"] == "freed" and world_model._refiner is None
    assert {"text", "encode", "sample", "refine", "decode", "total"} <= set(result.timings)


def test_ar_stream_is_readable_midway_and_equals_whole_decode(world_model, tmp_path):
    c2w = action_string_to_c2w("w-24")  # 25 frames = 7 latents = chunks of 4 and 3 latent frames
    K = _intrinsics(world_model.image_hw, len(c2w))
    path = tmp_path / "live.mp4"
    writer = Mp4Writer(path, streaming=True)
    streamed, seen_midway = [], []

    def on_frames(frames, index):
        assert index == sum(len(f) for f in streamed)
        streamed.append(frames)
        writer.write(frames)

    def on_chunk(c, chunk):
        if c > 0:  # chunk 0 is decoded and appended by now; the file must already play
            seen_midway.append(len(read_video(path)))

    result = world_model.generate(_image(world_model.image_hw), "", c2w, K, steps=2, mode="ar", stream=True,
                                  refiner=False, on_frames=on_frames, on_chunk=on_chunk, progress=False)
    writer.close()
    assert result.frames is None
    assert seen_midway and 12 <= seen_midway[0] <= 13  # chunk 0 = 13 frames; the newest may still be buffered
    assert len(read_video(path)) == 25
    whole = to_uint8(world_model.vae().decode(result.latents, chunk=0))[0].numpy()
    assert np.abs(np.concatenate(streamed).astype(int) - whole.astype(int)).max() <= 1


def test_refiner_streams_its_blocks(world_model):
    c2w = action_string_to_c2w("w-24")
    got = []
    result = world_model.generate(_image(world_model.image_hw), "", c2w, _intrinsics(world_model.image_hw, 25),
                                  steps=1, mode="ar", stream=True, refiner=True,
                                  on_frames=lambda f, i: got.append((i, len(f))), progress=False)
    assert got[0][0] == 1 and sum(n for _, n in got) == 24 and len(got) > 1 and result.refined


def test_bad_generate_arguments(world_model):
    c2w = action_string_to_c2w(ACTION)
    K = _intrinsics(world_model.image_hw, len(c2w))
    image = _image(world_model.image_hw)
    with pytest.raises(UserError, match="mode"):
        world_model.generate(image, "", c2w, K, mode="sideways", progress=False)
    with pytest.raises(UserError, match="streaming"):
        world_model.generate(image, "", c2w, K, stream=True, progress=False)
    with pytest.raises(UserError, match="beyond the trajectory"):
        world_model.generate(image, "", c2w, K, num_frames=40, progress=False)
    with pytest.raises(UserError, match="field of view"):
        world_model.generate(image, "", c2w, _intrinsics(world_model.image_hw, len(c2w), fov_deg=10.0),
                             progress=False)
    bad = c2w.copy()
    bad[3, :3, :3] *= 2.0
    with pytest.raises(UserError, match="rigid"):
        world_model.generate(image, "", bad, K, progress=False)
    with pytest.raises(UserError, match="shape"):
        world_model.generate(image, "", c2w[:, :3], K, progress=False)
    with pytest.raises(UserError, match="intrinsics"):
        world_model.generate(image, "", c2w, K[:, :2], progress=False)


def test_without_an_image_the_model_draws_frame0(world_model):
    c2w = action_string_to_c2w("w-4")
    result = world_model.generate(None, "", c2w, _intrinsics(world_model.image_hw, 5), steps=1, refiner=False,
                                  progress=False)
    assert result.frames.shape == (5, 32, 64, 3)
    np.testing.assert_array_equal(result.first_frame, result.frames[0])


def test_snap_num_frames():
    assert snap_num_frames(None, 17, 4) == 17
    assert snap_num_frames(None, 20, 4) == 17
    assert snap_num_frames(15, 17, 4) == 17 and snap_num_frames(14, 17, 4) == 13
    assert snap_num_frames(961, 961, 8) == 961 and snap_num_frames(1, 30, 4) == 5
    with pytest.raises(UserError):
        snap_num_frames(18, 17, 4)
    with pytest.raises(UserError):
        snap_num_frames(None, 4, 4)


def test_crop_and_intrinsics_agree():
    """A point projected with the source intrinsics lands, after resize + crop, where the new intrinsics put it."""
    src_hw, dst_hw = (300, 700), (32, 64)
    K = _intrinsics(src_hw, 1)
    K[0, 0, 2], K[0, 1, 2] = 380.0, 140.0  # off-centre principal point
    point = np.array([0.4, -0.2, 3.0])
    u, v = (K[0] @ point)[:2] / point[2]
    image = np.zeros((*src_hw, 3), dtype=np.uint8)
    image[int(v) - 6 : int(v) + 7, int(u) - 6 : int(u) + 7] = 255
    out = resize_crop_image(image, dst_hw)
    ys, xs = np.nonzero(out[..., 0] > 100)
    c2w = np.repeat(np.eye(4, dtype=np.float32)[None], 5, axis=0)
    cams = prepare_cameras(c2w, np.repeat(K, 5, axis=0), src_hw, dst_hw, (4, 8), 4, 5)
    u2, v2 = (cams.K[0] @ point)[:2] / point[2]
    assert abs(xs.mean() - u2) < 1.0 and abs(ys.mean() - v2) < 1.0
    assert cams.inputs.plucker.shape == (1, 2, 4, 8, 24) and cams.inputs.c2w.shape == (1, 2, 4, 4)


def test_cameras_are_relativised():
    c2w = action_string_to_c2w(ACTION)
    shift = np.eye(4, dtype=np.float32)
    shift[:3, 3] = (5.0, 0.0, -2.0)
    cams = prepare_cameras(shift @ c2w, _intrinsics((32, 64), len(c2w)), (32, 64), (32, 64), (4, 8), 4, 17)
    np.testing.assert_allclose(cams.c2w, relativize(c2w[:17]), atol=1e-5)


@pytest.mark.skipif(not (DEMO / "demo_0.png").is_file(), reason="SANA-WM demo inputs not present")
def test_real_photo_and_intrinsics_are_accepted(world_model):
    image = load_image(DEMO / "demo_0.png")
    K = np.load(DEMO / "demo_0_intrinsics.npy")
    c2w = np.load(DEMO / "demo_0_pose.npy")
    result = world_model.generate(image, (DEMO / "demo_0.txt").read_text(), c2w, K, num_frames=9, steps=1,
                                  refiner=False, progress=False)
    assert result.frames.shape == (9, 32, 64, 3)
    assert result.first_frame.shape == (32, 64, 3)


def test_image_load_errors(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        load_image(tmp_path / "missing.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG not really")
    with pytest.raises(UserError, match="not a readable image"):
        load_image(bad)


def test_generate_rebases_plucker_rays_and_takes_the_packaged_guidance(weights_dir, tmp_path, monkeypatch):
    import json
    import shutil

    import camworld.pipeline as pipeline
    from camworld.ops.chunks import rebase_frames

    weights = tmp_path / "weights"
    shutil.copytree(weights_dir, weights)
    config = json.loads((weights / "dit" / "config.json").read_text())
    config["sampling"] = {"cfg_scale": 1.0}
    config["model"]["plucker_rebase_chunks"] = 2  # the default, 6, starts only after 7 chunks
    (weights / "dit" / "config.json").write_text(json.dumps(config))
    model = pipeline.WorldModel.from_pretrained(weights)
    seen = {}

    def spy_cameras(*args):
        seen["bases"] = args[7]
        return prepare_cameras(*args)

    class SpyGuidance(pipeline.ClassifierFreeGuidance):
        def __init__(self, *args):
            super().__init__(*args)
            seen["scale"] = self.scale

    monkeypatch.setattr(pipeline, "prepare_cameras", spy_cameras)
    monkeypatch.setattr(pipeline, "ClassifierFreeGuidance", SpyGuidance)
    c2w = action_string_to_c2w("w-20,dw-20,d-12")  # 53 frames: 14 latent frames in 5 chunks
    model.generate(_image(model.image_hw), "", c2w, _intrinsics(model.image_hw, len(c2w)), steps=1, mode="ar",
                   refiner=False, progress=False)
    assert model.default_cfg_scale == seen["scale"] == 1.0
    assert seen["bases"] == rebase_frames(14, 4, 3, 2) and seen["bases"][-1] == 7
