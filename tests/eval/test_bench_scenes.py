"""Benchmark scenes: deterministic in (split, index, seed), within SANA-WM's speed limits (or labelled), collision-free,
starting at the identity, with valid revisit pairs; and the keyframe builder's guard against Squad half-turns."""

from __future__ import annotations

import numpy as np
import pytest

from camworld.errors import UserError
from camworld.eval.bench_scenes import SPLITS, TEMPLATES, bench_world, make_scene, make_scenes, peak_speeds
from camworld.world import STYLES
from camworld.world.trajectories import MAX_ANGULAR_DEG, MAX_SPEED, keyframe_trajectory


def _check_scene(scene, num_frames):
    assert scene.c2w.shape == (num_frames, 4, 4)
    np.testing.assert_allclose(scene.c2w[0], np.eye(4), atol=1e-6)
    speed, angular = peak_speeds(scene.c2w)
    assert speed <= MAX_SPEED * 1.001
    limit = 30.0 if scene.above_angular_limit else MAX_ANGULAR_DEG
    assert angular <= limit * 1.001
    assert not scene.world.collides(scene.c2w[:, :3, 3], margin=0.3).any()
    assert scene.world_seed >= 10000 and scene.style == STYLES[scene.index % len(STYLES)]
    gap = scene.meta["revisit_min_gap"]
    for i, j in scene.revisit_pairs:
        assert i >= 1 and j - i >= gap
        assert np.linalg.norm(scene.c2w[i, :3, 3] - scene.c2w[j, :3, 3]) < 0.5


@pytest.mark.parametrize("split", SPLITS)
def test_every_template_is_within_limits_and_collision_free(split):
    world = bench_world(0)  # one world for all templates (building worlds is the slow part)
    for index, template in enumerate(TEMPLATES[split]):
        rng = np.random.default_rng([7, index])
        c2w, meta = keyframe_trajectory(world, 33, lambda t=template, r=rng: t.keyframes(r), kind=template.name,
                                        max_angular_deg=template.max_angular_deg)
        keys = np.asarray(meta["keyframes_xyz_yaw_pitch"])
        assert 11 <= len(keys) <= 15 and np.allclose(keys[0], 0)  # SANA-WM: 11-15 waypoints, from the start
        speed, angular = peak_speeds(c2w)
        assert speed <= MAX_SPEED * 1.001 and angular <= template.max_angular_deg * 1.001
        assert not world.collides(c2w[:, :3, 3], margin=0.3).any()
    for index in range(2):
        _check_scene(make_scene(split, index, num_frames=33), 33)


def test_full_length_scenes_keep_their_angles():
    for split, index in (("simple", 2), ("hard", 2)):  # a 360° loop and a walk with large pitch
        scene = make_scene(split, index, num_frames=961)
        _check_scene(scene, 961)
        assert scene.meta["angle_scale"] == 1.0
        forward = scene.c2w[:, :3, 2]
        turned = np.degrees(np.arccos(np.clip(forward[:, 2].min(), -1, 1)))
        assert turned > (150 if split == "simple" else 25)  # the full-size angles: round the loop, pitch > 25°
        assert scene.revisit_pairs


def test_scenes_are_deterministic_and_seeded():
    a = make_scene("hard", 1, seed=5, num_frames=41)
    b = make_scene("hard", 1, seed=5, num_frames=41)
    c = make_scene("hard", 1, seed=6, num_frames=41)
    np.testing.assert_array_equal(a.c2w, b.c2w)
    assert a.revisit_pairs == b.revisit_pairs and a.id == b.id == "hard_001_yaw_sweep"
    assert not np.allclose(a.c2w, c.c2w)
    scenes = make_scenes(SPLITS, 2, num_frames=41)
    assert [s.id for s in scenes] == ["simple_000_backtrack", "simple_001_arc", "hard_000_crane", "hard_001_yaw_sweep"]
    assert scenes[0].world_seed == scenes[2].world_seed  # both splits see the same worlds
    assert scenes[0].summary()["num_frames"] == 41


def test_bad_inputs():
    with pytest.raises(UserError, match="split"):
        make_scene("medium", 0)
    with pytest.raises(UserError, match="at least one"):
        make_scenes(SPLITS, 0)
    sharp = np.array([[0, 0, 0, 0, 0], [0, 0, 1, 120, 0], [0, 0, 2, 0, 0]], dtype=float)
    with pytest.raises(UserError, match="90°"):
        keyframe_trajectory(bench_world(0), 33, lambda: sharp)
