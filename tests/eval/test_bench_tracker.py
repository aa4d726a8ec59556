"""The photometric pose estimator: its analytic Jacobian against finite differences of the warp, recovery of true
poses from true renders, and a frozen video giving a frozen trajectory (so a static output scores badly)."""

from __future__ import annotations

import numpy as np
import pytest

from camworld.camera import pose_errors
from camworld.eval.bench_scenes import make_scene
from camworld.eval.pose_tracker import PhotometricPoseTracker, apply_update


@pytest.fixture(scope="module")
def scene():
    return make_scene("simple", 0, num_frames=33)  # backtrack: out and back, 2 s


def _pixels(stage, Y):
    return np.stack([stage.K[0, 0] * Y[:, 0] / Y[:, 2] + stage.K[0, 2],
                     stage.K[1, 1] * Y[:, 1] / Y[:, 2] + stage.K[1, 2]], axis=1)


def test_jacobian_matches_finite_differences(scene):
    tracker = PhotometricPoseTracker(scene.world, scene.K, scene.image_hw)
    frame, _ = scene.world.render(scene.c2w[16], scene.K, *scene.image_hw)
    stage = tracker.stage(scene.c2w[12], 1, tracker._target(frame[0]))
    assert (stage.rho > 0).any() and (stage.rho == 0).any()  # ground and sky both present
    delta = apply_update(np.eye(4), np.array([0.01, -0.02, 0.005, 0.03, -0.01, 0.05]))
    r, gx, gy, Y = tracker.warp(stage, delta)
    J = tracker.jacobian(stage, gx, gy, Y)
    eps = 1e-6
    for k in range(6):
        step = np.zeros(6)
        step[k] = eps
        plus, minus = (tracker.warp(stage, apply_update(delta, sign * step)) for sign in (1, -1))
        # the geometry exactly: the pixel motion ∂w/∂ξ by central differences, times the same image gradients
        dw = (_pixels(stage, plus[3]) - _pixels(stage, minus[3])) / (2 * eps)
        np.testing.assert_allclose(J[:, k], gx * dw[:, 0] + gy * dw[:, 1], rtol=1e-4, atol=1e-6 * np.abs(J).max())
        # and the residual itself (bilinear sampling vs central-difference gradients agree only statistically)
        wide = np.zeros(6)
        wide[k] = 1e-3
        numeric = (tracker.warp(stage, apply_update(delta, wide))[0]
                   - tracker.warp(stage, apply_update(delta, -wide))[0]) / 2e-3
        assert np.corrcoef(numeric, J[:, k])[0, 1] > 0.9, k


def test_recovers_true_poses_from_true_renders(scene):
    tracker = PhotometricPoseTracker(scene.world, scene.K, scene.image_hw)
    visited = np.arange(0, len(scene.c2w), 4)
    frames, _ = scene.world.render(scene.c2w[visited], scene.K, *scene.image_hw)
    est, _ = tracker.track(frames[1:])
    est = np.concatenate([np.eye(4)[None], est])
    path = np.linalg.norm(np.diff(scene.c2w[:, :3, 3], axis=0), axis=-1).sum()
    position_error = np.linalg.norm(est[:, :3, 3] - scene.c2w[visited, :3, 3], axis=-1)
    rel = np.swapaxes(est[:, :3, :3], 1, 2) @ scene.c2w[visited, :3, :3]
    angle = np.degrees(np.arccos(np.clip((np.trace(rel, axis1=1, axis2=2) - 1) / 2, -1, 1)))
    assert path > 0.5
    assert angle.max() < 1.0
    assert position_error.max() < 0.05 * path
    assert pose_errors(est, scene.c2w[visited])["RotErr"] < 0.5


def test_frozen_video_gives_frozen_poses(scene):
    tracker = PhotometricPoseTracker(scene.world, scene.K, scene.image_hw)
    first, _ = scene.world.render(np.eye(4), scene.K, *scene.image_hw)
    est, _ = tracker.track(np.repeat(first, 6, axis=0))
    np.testing.assert_allclose(est, np.repeat(np.eye(4)[None], 6, axis=0), atol=1e-6)
    visited = np.arange(0, 4 * 7, 4)
    frozen = pose_errors(np.concatenate([np.eye(4)[None], est]), scene.c2w[visited])
    moving = np.linalg.norm(scene.c2w[visited[-1], :3, 3])
    assert frozen["TransErr"] > 0.2 * moving > 0  # the metric can fail: a static video is far from the path


def test_search_stays_in_its_trust_region(scene):
    tracker = PhotometricPoseTracker(scene.world, scene.K, scene.image_hw)
    far = np.eye(4)
    far[2, 3] = 1.0  # a metre ahead: beyond the 0.3 m one frame may move
    frame, _ = scene.world.render(far, scene.K, *scene.image_hw)
    est, _ = tracker.refine(frame[0], np.eye(4))
    assert 0.1 < est[2, 3] <= tracker.settings.max_step_m + 1e-9
