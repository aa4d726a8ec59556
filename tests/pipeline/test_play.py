"""Interactive play (`camworld.play.PlaySession`): a session is, frame for frame, `generate(mode="ar", stream=True)`
on its action string, in one pass and in segments (with and without colour matching, and with a refined
hand-over); step sizes follow the chunk plan; bad keys and intrinsics are one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

from camworld.camera import action_string_to_c2w
from camworld.errors import UserError
from camworld.pipeline import WorldModel
from camworld.play import PlaySession, step_keys

SOURCE_HW = (48, 80)  # not the model's resolution, so the intrinsics go through the crop
KEYS = ["w", "dw", "a", "", "wl"]


def _intrinsics(hw, fov_deg=70.0):
    focal = hw[1] / (2 * np.tan(np.radians(fov_deg) / 2))
    return np.array([[focal, 0, hw[1] / 2], [0, focal, hw[0] / 2], [0, 0, 1]], dtype=np.float32)


def _image():
    return np.random.default_rng(3).integers(0, 256, (*SOURCE_HW, 3), dtype=np.uint8)


@pytest.mark.parametrize(("segment_frames", "color_match", "refine_handoff"),
                         [(0, False, False), (25, False, False), (25, True, False), (25, False, True)])
def test_session_equals_streamed_generate_of_its_action_string(world_model, segment_frames, color_match,
                                                               refine_handoff):
    K = _intrinsics(SOURCE_HW)
    session = PlaySession(world_model, _image(), "a road", K, seed=5, steps=2, segment_frames=segment_frames,
                          segment_color_match=color_match, segment_refine_handoff=refine_handoff)
    steps = [session.step(keys) for keys in KEYS]
    assert [len(s.frames) for s in steps] == [13, 12, 12, 12, 12]
    assert [s.first_pose for s in steps] == [0, 13, 25, 37, 49] and session.num_poses == 61
    assert session.segments_started == (1 if segment_frames == 0 else 3)
    assert session.action_string == "w-12,dw-12,a-12,none-12,lw-12"
    np.testing.assert_array_equal(session.c2w, action_string_to_c2w(session.action_string))
    played = np.concatenate([s.frames for s in steps])

    made = world_model.generate(_image(), "a road", session.c2w, np.repeat(K[None], session.num_poses, axis=0),
                                mode="ar", stream=True, steps=2, interval_k=1.0, seed=5, refiner=False, progress=False,
                                segment_frames=segment_frames, segment_color_match=color_match,
                                segment_refine_handoff=refine_handoff)
    np.testing.assert_array_equal(played, made.frames)
    np.testing.assert_allclose(np.concatenate([s.c2w for s in steps]), made.c2w, atol=1e-6)
    np.testing.assert_allclose(np.concatenate([s.K for s in steps]), made.K, rtol=1e-6)


def test_step_sizes_follow_the_chunk_plan(world_model):
    session = PlaySession(world_model, _image(), "", _intrinsics(SOURCE_HW), steps=1, segment_frames=21)
    sizes = []
    for _ in range(4):  # 21 frames are 6 latents: chunks of 4 and 2, so steps of 12 and 8 poses
        sizes.append(session.next_step_frames())
        step = session.step("w")
        assert len(step.frames) == sizes[-1] + (1 if step.first_pose == 0 else 0)
    assert sizes == [12, 8, 12, 8] and session.num_poses == 41


def test_bad_keys_and_intrinsics_are_one_line_errors(world_model, monkeypatch):
    assert step_keys(" WD ") == "dw" and step_keys("") == step_keys("none") == step_keys(".") == "none"
    with pytest.raises(UserError, match="unknown keys 'xz'"):
        step_keys("wxz")
    K = _intrinsics(SOURCE_HW)
    with pytest.raises(UserError, match="3x3"):
        PlaySession(world_model, _image(), "", K[:2])
    with pytest.raises(UserError, match="(?i)fov|field of view"):
        PlaySession(world_model, _image(), "", _intrinsics(SOURCE_HW, fov_deg=170.0))
    with pytest.raises(UserError, match="segment_frames"):
        PlaySession(world_model, _image(), "", K, segment_frames=10)
    with pytest.raises(UserError, match="uint8"):
        PlaySession(world_model, _image().astype(np.float32), "", K)
    with monkeypatch.context() as patch:
        patch.setattr(WorldModel, "has_refiner", property(lambda self: False))
        with pytest.raises(UserError, match="needs a refiner"):
            PlaySession(world_model, _image(), "", K, segment_refine_handoff=True)
    session = PlaySession(world_model, _image(), "", K, steps=1)
    with pytest.raises(UserError, match="unknown keys"):
        session.step("q")
    assert session.num_poses == 1 and session.action_string == ""  # a rejected step changes nothing


def test_an_interrupted_step_changes_nothing_and_ends_the_session(world_model, monkeypatch):
    session = PlaySession(world_model, _image(), "", _intrinsics(SOURCE_HW), steps=1)
    session.step("w")
    before = (session.num_poses, session.action_string, session.c2w.copy())

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("camworld.samplers.chunk_rollout.ChunkRollout.next", interrupt)
    with pytest.raises(KeyboardInterrupt):
        session.step("dw")
    assert (session.num_poses, session.action_string) == before[:2]
    np.testing.assert_array_equal(session.c2w, before[2])
    monkeypatch.undo()
    with pytest.raises(UserError, match="interrupted"):
        session.step("w")


def test_default_session_equals_default_ar_generate_with_a_packaged_schedule(weights_dir, tmp_path):
    """The bundled weights' path: no schedule named, so both take the packaged σ list (chunk by chunk, no guidance)
    and segment length."""
    import json
    import shutil

    from camworld.pipeline import WorldModel

    packaged = tmp_path / "packaged"
    shutil.copytree(weights_dir, packaged)
    config = json.loads((packaged / "dit" / "config.json").read_text())
    config["sampling"].update(cfg_scale=1.0, ar_sigmas=[1.0, 0.96, 0.889, 0.727, 0.0], ar_interval_k=1.0,
                              ar_segment_frames=21)
    (packaged / "dit" / "config.json").write_text(json.dumps(config))
    model = WorldModel.from_pretrained(packaged)
    K = _intrinsics(SOURCE_HW)
    session = PlaySession(model, _image(), "a road", K, seed=3)
    assert session.sigmas == [1.0, 0.96, 0.889, 0.727, 0.0] and session.cfg_scale == 1.0
    assert session.segment_frames == 21 and "packaged" in session.schedule
    played = np.concatenate([session.step(keys).frames for keys in ["w", "dw", "a", "a"]])
    made = model.generate(_image(), "a road", session.c2w, np.repeat(K[None], session.num_poses, axis=0),
                          mode="ar", stream=True, seed=3, refiner=False, progress=False)
    assert made.notes["schedule"].startswith("packaged") and len(made.segments) == 2
    np.testing.assert_array_equal(played, made.frames)
