"""Long videos in segments (`camworld.pipeline_segments`): the bounds, the first segment equal to the one-pass video
of its length, every later segment equal to a plain `generate` from the previous segment's last frame, streaming,
the refiner, and bad input caught before any frame is made."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from camworld.camera import action_string_to_c2w, intrinsics_resize_crop, relativize
from camworld.errors import UserError
from camworld.pipeline import WorldModel
from camworld.pipeline_segments import check_segment_frames, match_color_statistics, segment_bounds

ACTION = "w-8,dw-12"  # 21 poses: segments of 9 give poses 0-8, 8-16, 16-20
SOURCE_HW = (48, 80)  # not the model's resolution, so the intrinsics go through the crop


def _intrinsics(hw, n, fov_deg=70.0):
    focal = hw[1] / (2 * np.tan(np.radians(fov_deg) / 2))
    K = np.array([[focal, 0, hw[1] / 2], [0, focal, hw[0] / 2], [0, 0, 1]], dtype=np.float32)
    return np.repeat(K[None], n, axis=0)


def _inputs():
    c2w = action_string_to_c2w(ACTION)
    image = np.random.default_rng(3).integers(0, 256, (*SOURCE_HW, 3), dtype=np.uint8)
    return image, c2w, _intrinsics(SOURCE_HW, len(c2w))


def test_bounds_share_one_pose_and_cover_the_video():
    assert segment_bounds(961, 81) == [(80 * k, 80 * k + 81) for k in range(12)]
    assert segment_bounds(21, 9) == [(0, 9), (8, 17), (16, 21)]
    assert segment_bounds(9, 9) == [(0, 9)] and segment_bounds(5, 81) == [(0, 5)]
    check_segment_frames(0, 4)
    check_segment_frames(81, 4)
    for bad in (1, 4, 10, -3):
        with pytest.raises(UserError, match="segment_frames"):
            check_segment_frames(bad, 4)


def test_color_match_takes_the_reference_statistics():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 120, (24, 40, 3), dtype=np.uint8)
    reference = rng.integers(60, 256, (30, 50, 3), dtype=np.uint8)
    matched = match_color_statistics(image, reference)
    assert matched.shape == image.shape and matched.dtype == np.uint8
    for channel in range(3):  # up to the rounding to integers (and a little clipping at 255)
        assert abs(matched[..., channel].mean() - reference[..., channel].mean()) < 1.0
        assert abs(matched[..., channel].std() - reference[..., channel].std()) < 1.0
    np.testing.assert_array_equal(match_color_statistics(reference, reference), reference)
    flat = np.full((4, 4, 3), 7, dtype=np.uint8)
    np.testing.assert_array_equal(match_color_statistics(flat, reference)[0, 0],
                                  np.rint(reference.reshape(-1, 3).mean(axis=0)).astype(np.uint8))


@pytest.mark.parametrize(("mode", "color_match"), [("ar", True), ("ar", False), ("bidirectional", True)])
def test_segments_equal_plain_generations_chained(world_model, mode, color_match):
    image, c2w, K = _inputs()
    kwargs = {"steps": 2, "refiner": False, "progress": False, "mode": mode, "seed": 5}
    whole = world_model.generate(image, "a road", c2w, K, segment_frames=9, segment_color_match=color_match,
                                 **kwargs)
    assert whole.frames.shape[0] == 21 and whole.num_frames == 21 and len(whole.segments) == 3
    assert whole.segment_bounds == ((0, 9), (8, 17), (16, 21)) and "3 segments" in whole.notes["segments"]
    k_image = intrinsics_resize_crop(K, SOURCE_HW, world_model.image_hw)
    np.testing.assert_allclose(whole.c2w, relativize(c2w.astype(np.float64)), atol=1e-6)
    np.testing.assert_allclose(whole.K, k_image, rtol=1e-6)
    assert whole.latents.shape[1] == 6  # 1 + 2 + 2 + 1 latents: later segments' latent 0 left out

    first = world_model.generate(image, "a road", c2w, K, num_frames=9, segment_frames=0, **kwargs)
    np.testing.assert_array_equal(whole.frames[:9], first.frames)
    assert torch.equal(whole.latents[:, :3], first.latents)
    last = whole.frames[8]
    for k, (start, end) in enumerate(whole.segment_bounds[1:], start=1):
        anchor = match_color_statistics(last, first.first_frame) if color_match else last
        plain = world_model.generate(anchor, "a road", relativize(c2w[start:end].astype(np.float64)),
                                     k_image[start:end], segment_frames=0, **{**kwargs, "seed": 5 + k})
        np.testing.assert_array_equal(whole.frames[start + 1 : end], plain.frames[1:])
        last = plain.frames[-1]
    # one segment holds it all: the one-pass video, no segments recorded
    single = world_model.generate(image, "a road", c2w, K, num_frames=9, segment_frames=81, **kwargs)
    np.testing.assert_array_equal(single.frames, first.frames)
    assert not single.segments


def test_streamed_segments_arrive_in_order_and_equal_the_collected_video(world_model):
    image, c2w, K = _inputs()
    kwargs = {"steps": 2, "refiner": False, "progress": False, "mode": "ar", "segment_frames": 9}
    collected = world_model.generate(image, "", c2w, K, **kwargs)
    got, chunks = [], []
    streamed = world_model.generate(image, "", c2w, K, stream=True, on_frames=lambda f, i: got.append((i, f)),
                                    on_chunk=lambda i, z: chunks.append(i), **kwargs)
    assert streamed.frames is None
    starts = [i for i, _ in got]
    assert starts[0] == 0 and all(b == a + len(f) for (a, f), b in zip(got, starts[1:], strict=False))
    # streamed chunks are decoded one by one, the collected video in larger passes: the same up to rounding (as in
    # test_pipeline's one-pass stream), and the segments that follow start from frames that agree to 1 level
    diff = np.abs(np.concatenate([f for _, f in got]).astype(int) - collected.frames.astype(int))
    assert diff.max() <= 2 and diff.mean() < 0.05
    assert chunks == list(range(len(chunks))) and len(chunks) >= 3  # numbered over all segments


def test_refiner_output_starts_at_pose_1_and_refine_goes_segment_by_segment(world_model):
    image, c2w, K = _inputs()
    kwargs = {"steps": 1, "progress": False, "mode": "ar", "segment_frames": 9}
    refined = world_model.generate(image, "", c2w, K, refiner=True, **kwargs)
    assert refined.refined and refined.frames.shape[0] == 20 and len(refined.c2w) == 20
    np.testing.assert_allclose(refined.c2w, relativize(c2w.astype(np.float64))[1:], atol=1e-6)
    stage1 = world_model.generate(image, "", c2w, K, refiner=False, **kwargs)
    after = world_model.refine(stage1, "", c2w, K, progress=False)
    assert after.refined and after.frames.shape[0] == 20 and len(after.segments) == 3
    one = world_model.generate(image, "", c2w, K, num_frames=9, refiner=False, segment_frames=0, steps=1,
                               progress=False, mode="ar")
    np.testing.assert_array_equal(after.frames[:8], world_model.refine(one, "", c2w, K, progress=False).frames)
    # generate hands the refined last frame on, refine() the stage-1 one: equal in the first segment only
    np.testing.assert_array_equal(refined.frames[:8], after.frames[:8])


def test_refined_handoff_hands_on_the_refiners_last_frame_and_outputs_stage_1(world_model):
    image, c2w, K = _inputs()
    kwargs = {"steps": 1, "progress": False, "mode": "ar", "refiner": False, "seed": 5}
    handed = world_model.generate(image, "", c2w, K, segment_frames=9, segment_refine_handoff=True, **kwargs)
    plain = world_model.generate(image, "", c2w, K, segment_frames=9, **kwargs)
    assert not handed.refined and handed.frames.shape[0] == 21
    assert handed.timings["handoff_refine"] > 0 and "handoff_refine" not in plain.timings
    np.testing.assert_array_equal(handed.frames[:9], plain.frames[:9])  # the first segment is stage 1's own
    assert not np.array_equal(handed.frames[9:], plain.frames[9:])
    k_image = intrinsics_resize_crop(K, SOURCE_HW, world_model.image_hw)
    last = handed.frames[8]
    for k, (start, end) in enumerate(handed.segment_bounds):
        segment = world_model.generate(image if k == 0 else last, "", relativize(c2w[start:end].astype(np.float64)),
                                       (K if k == 0 else k_image)[start:end], segment_frames=0,
                                       **{**kwargs, "seed": 5 + k})
        np.testing.assert_array_equal(handed.frames[start + (k > 0) : end], segment.frames[(k > 0):])
        last = world_model.refine(segment, "", segment.c2w, segment.K, progress=False).frames[-1]
        assert not np.array_equal(last, segment.frames[-1])
    # with the refiner on, the output is refined and hands its own last frame on: the option changes nothing
    on = {**kwargs, "refiner": True}
    np.testing.assert_array_equal(
        world_model.generate(image, "", c2w, K, segment_frames=9, segment_refine_handoff=True, **on).frames,
        world_model.generate(image, "", c2w, K, segment_frames=9, **on).frames)


def test_refined_handoff_without_a_refiner_is_a_one_line_error(world_model, monkeypatch):
    image, c2w, K = _inputs()
    monkeypatch.setattr(WorldModel, "has_refiner", property(lambda self: False))
    with pytest.raises(UserError, match="needs a refiner"):
        world_model.generate(image, "", c2w, K, steps=1, mode="ar", refiner=False, progress=False, segment_frames=9,
                             segment_refine_handoff=True)


def test_a_bad_later_pose_stops_before_any_frame(world_model):
    image, c2w, K = _inputs()
    K = K.copy()
    K[18, 0, 0] = K[18, 1, 1] = 1.0  # a ~180° field of view in the third segment
    seen = []
    with pytest.raises(UserError, match="(?i)fov|field of view"):
        world_model.generate(image, "", c2w, K, steps=1, refiner=False, progress=False, segment_frames=9,
                             on_frames=lambda f, i: seen.append(i))
    assert not seen


def test_packaged_segment_length_applies_in_ar_mode_only(weights_dir, tmp_path):
    path = tmp_path / "tiny"
    shutil.copytree(weights_dir, path)
    config = json.loads((path / "dit" / "config.json").read_text())
    config["sampling"]["ar_segment_frames"] = 9
    (path / "dit" / "config.json").write_text(json.dumps(config))
    world = WorldModel(path)
    image, c2w, K = _inputs()
    kwargs = {"num_frames": 17, "steps": 1, "refiner": False, "progress": False}
    assert world.generate(image, "", c2w, K, mode="ar", **kwargs).segment_bounds == ((0, 9), (8, 17))
    assert not world.generate(image, "", c2w, K, mode="ar", segment_frames=0, **kwargs).segments
    assert not world.generate(image, "", c2w, K, mode="bidirectional", **kwargs).segments


def test_without_an_image_later_segments_start_from_the_drawn_video(world_model):
    _, c2w, _ = _inputs()
    K = _intrinsics(world_model.image_hw, len(c2w))
    kwargs = {"steps": 1, "refiner": False, "progress": False, "mode": "ar", "seed": 2}
    whole = world_model.generate(None, "", c2w, K, num_frames=17, segment_frames=9, **kwargs)
    first = world_model.generate(None, "", c2w, K, num_frames=9, segment_frames=0, **kwargs)
    np.testing.assert_array_equal(whole.frames[:9], first.frames)
    np.testing.assert_array_equal(whole.first_frame, first.first_frame)  # frame 0 drawn by the model
    second = world_model.generate(whole.frames[8], "", relativize(c2w[8:17].astype(np.float64)), K[8:17],
                                  segment_frames=0, **{**kwargs, "seed": 3})
    np.testing.assert_array_equal(whole.frames[9:], second.frames[1:])
