"""The dense-flow metric scale: the per-pixel solve is exact, and on a rendered clip the scale follows the depth."""

from __future__ import annotations

import numpy as np
import pytest

from camworld.annotate.flow_scale import flow_scale, pixel_scales, weighted_median
from camworld.errors import UserError


def test_pixel_scales_recover_a_known_scale():
    rng = np.random.default_rng(0)
    K = np.array([[200.0, 0, 112], [0, 200.0, 64], [0, 0, 1]])
    uv = rng.uniform([0, 0], [224, 128], (50, 2))
    depth = rng.uniform(2.0, 20.0, 50)
    angle = np.radians(4.0)
    R = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    t = np.array([0.3, -0.05, -0.4])
    points = (np.column_stack([uv, np.ones(50)]) @ np.linalg.inv(K).T) * depth[:, None]
    moved = (points @ R.T + 1.7 * t) @ K.T
    target = moved[:, :2] / moved[:, 2:]
    s, parallax = pixel_scales(uv, target, depth, K, R, t)
    np.testing.assert_allclose(s, 1.7, rtol=1e-9)
    assert (parallax > 0).all()
    # parallax is pixels per unit log s: moving s by 1 % moves the projection by about 1 % of it
    s_up = (points @ R.T + 1.7 * 1.01 * t) @ K.T
    shift = np.linalg.norm(s_up[:, :2] / s_up[:, 2:] - target, axis=1)
    np.testing.assert_allclose(shift, 0.01 * parallax, rtol=0.02)


def test_weighted_median():
    assert weighted_median(np.array([3.0, 1.0, 2.0]), np.ones(3)) == 2.0
    assert weighted_median(np.array([3.0, 1.0, 2.0]), np.array([10.0, 1.0, 1.0])) == 3.0


def test_scale_follows_the_trajectory_and_the_depth(small_orbit):
    clip = small_orbit
    registered = np.ones(len(clip.frames), bool)
    exact = flow_scale(clip.frames, clip.c2w, clip.K, clip.depth, registered)
    assert exact.scale == pytest.approx(1.0, abs=0.03)
    assert exact.pairs == (len(clip.frames) - 4) + (len(clip.frames) - 8) and exact.pixels > 1000
    shrunk = clip.c2w.copy()
    shrunk[:, :3, 3] /= 7.0
    assert flow_scale(clip.frames, shrunk, clip.K, clip.depth, registered).scale == pytest.approx(
        7.0 * exact.scale, rel=1e-6)  # float32 poses
    deeper = flow_scale(clip.frames, clip.c2w, clip.K, clip.depth * 1.25, registered)
    assert deeper.scale == pytest.approx(1.25 * exact.scale, rel=1e-6)  # depth and s enter as a ratio
    some = registered.copy()
    some[::2] = False  # only pairs of registered frames count
    assert flow_scale(clip.frames, clip.c2w, clip.K, clip.depth, some).pairs == 8 + 6


def test_a_camera_that_does_not_move_fixes_no_scale(small_orbit):
    clip = small_orbit
    still = np.repeat(clip.c2w[:1], len(clip.frames), axis=0)
    with pytest.raises(UserError, match="fixes no scale"):
        flow_scale(clip.frames, still, clip.K, clip.depth, np.ones(len(clip.frames), bool))
