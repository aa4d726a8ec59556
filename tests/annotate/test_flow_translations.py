"""Dense translation averaging: the per-pair solve is exact, and on a rendered clip the centres come back."""

from __future__ import annotations

import numpy as np

from camworld.annotate.flow_translations import pair_translation, refine_translations
from camworld.annotate.world_clips import path_length
from camworld.camera import pose_errors


def test_pair_translation_is_exact_without_noise():
    rng = np.random.default_rng(1)
    K = np.array([[200.0, 0, 112], [0, 210.0, 64], [0, 0, 1]])
    uv = rng.uniform([0, 0], [224, 128], (80, 2))
    depth = rng.uniform(2.0, 20.0, 80)
    angle = np.radians(-3.0)
    R = np.array([[1, 0, 0], [0, np.cos(angle), -np.sin(angle)], [0, np.sin(angle), np.cos(angle)]])
    t = np.array([-0.2, 0.1, 0.5])
    moved = ((np.column_stack([uv, np.ones(80)]) @ np.linalg.inv(K).T) * depth[:, None] @ R.T + t) @ K.T
    target = moved[:, :2] / moved[:, 2:]
    np.testing.assert_allclose(pair_translation(uv, target, depth, K, R), t, atol=1e-9)


def test_refined_centres_follow_the_flow(small_orbit):
    """True rotations, centres thrown off by 0.3 m of noise: the refined centres match the true path's shape and the
    first centre stays put; an unregistered frame is left as it was."""
    clip = small_orbit
    rng = np.random.default_rng(0)
    noisy = clip.c2w.astype(np.float64).copy()
    noisy[1:, :3, 3] += rng.normal(0, 0.3, (len(noisy) - 1, 3))
    registered = np.ones(len(noisy), bool)
    registered[7] = False
    before = pose_errors(noisy, clip.c2w)["TransErr"] / path_length(clip.c2w)
    refined = refine_translations(clip.frames, noisy, registered, clip.K, clip.depth)
    keep = registered
    after = pose_errors(refined[keep], clip.c2w[keep])["TransErr"] / path_length(clip.c2w[keep])
    assert before > 0.1 and after < 0.03, (before, after)
    np.testing.assert_array_equal(refined[:, :3, :3], noisy[:, :3, :3])
    np.testing.assert_array_equal(refined[0], noisy[0])
    np.testing.assert_array_equal(refined[7], noisy[7])
    cut_off = np.arange(len(noisy)) <= 10
    cut_off[19] = True  # frames 18, 17, 15 and 11, its partners 1, 2, 4 and 8 back, are unregistered
    alone = refine_translations(clip.frames, noisy, cut_off, clip.K, clip.depth)
    np.testing.assert_allclose(alone[19], noisy[19], atol=1e-9)
    assert np.abs(alone[1:11, :3, 3] - noisy[1:11, :3, 3]).max() > 0.1
