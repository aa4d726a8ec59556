"""The metric-scale step: SANA-WM's inverse-depth-weighted per-frame scale, its smoothing, and GT-pose Sim(3)."""

from __future__ import annotations

import numpy as np
import pytest

from camworld.annotate.metric_scale import ema, frame_scale, fuse_scale, gt_pose_scale
from camworld.camera import relativize, umeyama_sim3
from camworld.errors import UserError


def test_frame_scale_is_the_weighted_least_squares_minimiser():
    rng = np.random.default_rng(0)
    d_p = rng.uniform(0.5, 5.0, 200)
    d_m = 2.5 * d_p * np.exp(rng.normal(0, 0.05, 200))  # all within the ratio gate
    s = frame_scale(d_p, d_m)
    w = 1 / d_m
    loss = lambda c: (w * (c * d_p - d_m) ** 2).sum()
    grid = np.linspace(s - 0.05, s + 0.05, 101)
    assert abs(grid[np.argmin([loss(c) for c in grid])] - s) < 1e-3
    assert frame_scale(d_p, 3.0 * d_p) == pytest.approx(3.0)


def test_frame_scale_gates_depth_misreads_at_edges():
    d_p = np.linspace(1.0, 5.0, 100)
    d_m = 2.0 * d_p
    d_m[:15] = 0.2  # the near side of an edge read for a far point: with 1/d weights these would dominate
    assert frame_scale(d_p, d_m) == pytest.approx(2.0)


def test_frame_scale_needs_enough_valid_points():
    d = np.array([1.0, 2.0, np.inf, -1.0, np.nan, 3.0])
    assert np.isnan(frame_scale(d, d))


def test_ema_holds_through_missing_frames():
    track = ema(np.array([np.nan, 2.0, np.nan, 4.0]), momentum=0.5)
    np.testing.assert_allclose(track, [np.nan, 2.0, 2.0, 3.0])


def test_fuse_scale_reads_depth_at_observed_pixels():
    depth = np.full((3, 20, 30), np.inf, dtype=np.float32)
    rng = np.random.default_rng(1)
    obs = []
    for t in range(3):
        flat = rng.choice(20 * 30, 40, replace=False)
        uv = np.column_stack([flat % 30, flat // 30]).astype(float)
        d_true = rng.uniform(1, 10, 40)
        depth[t, uv[:, 1].astype(int), uv[:, 0].astype(int)] = d_true
        obs.append((uv, d_true / (4.0 + t)))  # SfM depth in a gauge 4, 5, 6 times smaller
    est = fuse_scale(obs, depth, (20, 30))
    np.testing.assert_allclose(est.per_frame, [4.0, 5.0, 6.0], rtol=1e-5)
    assert est.scale == pytest.approx(5.0)
    assert est.coefficient_of_variation == pytest.approx(np.std([4, 5, 6]) / 5.0)
    assert fuse_scale(obs, depth, (20, 30), smoothing="ema").scale == pytest.approx(4.01, abs=0.02)
    with pytest.raises(UserError):
        fuse_scale(obs, depth, (20, 30), smoothing="mean")


def test_gt_pose_scale_recovers_scale_despite_outliers():
    rng = np.random.default_rng(2)
    gt = np.tile(np.eye(4), (30, 1, 1))
    gt[:, :3, 3] = np.cumsum(rng.normal(0, 0.2, (30, 3)), axis=0)
    gt[0, :3, 3] = 0
    sfm = gt.copy()
    sfm[:, :3, 3] /= 7.0
    sfm[[5, 11, 17], :3, 3] += 0.1  # outliers the 80th-percentile refit must drop
    plain, _, _ = umeyama_sim3(relativize(sfm)[:, :3, 3], gt[:, :3, 3])
    assert abs(plain - 7.0) > 0.05
    scale, fit = gt_pose_scale(sfm, gt)
    assert scale == pytest.approx(7.0, rel=1e-6)
    assert fit["inliers"] == 24 and fit["rmse_m"] < 1e-6
    with pytest.raises(UserError, match="never moves"):
        gt_pose_scale(sfm, np.tile(np.eye(4), (30, 1, 1)))
