"""The annotator's small metric-depth net: canonical-focal handling, persistence, training data and the shipped
weights' accuracy on worlds it never saw."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from camworld.annotate.depth_net import DepthNet, DepthNetConfig, load_depth_net, predict_depth, save_depth_net
from camworld.annotate.train_depth import (
    DepthTrainSpec,
    _random_pose,
    depth_loss,
    render_depth_pairs,
    train_depth_net,
)
from camworld.annotate.world_clips import render_world_clip
from camworld.errors import UserError


def test_depth_scales_with_focal_length():
    torch.manual_seed(0)
    net = DepthNet(DepthNetConfig(widths=(8, 8, 16, 16)))
    frames = np.random.default_rng(0).integers(0, 256, (2, 64, 112, 3), dtype=np.uint8)
    K = np.array([[80.0, 0, 55.5], [0, 80.0, 31.5], [0, 0, 1]])
    near = predict_depth(net, frames, K)
    far = predict_depth(net, frames, K * [[2], [2], [1]])
    assert near.shape == (2, 64, 112) and (near > 0).all()
    np.testing.assert_allclose(far, 2 * near, rtol=1e-5)


def test_save_load_round_trip(tmp_path):
    net = DepthNet(DepthNetConfig(widths=(8, 8, 16, 16)))
    save_depth_net(net, tmp_path, {"note": "test"})
    loaded = load_depth_net(tmp_path)
    x = torch.rand(1, 3, 32, 48)
    torch.testing.assert_close(loaded(x), net.eval()(x))
    with pytest.raises(UserError, match="no depth net"):
        load_depth_net(tmp_path / "missing")


def test_training_pairs_use_only_training_worlds():
    rgb, log_depth = render_depth_pairs([3], 2, (32, 48), progress=False)
    assert rgb.shape == (2, 32, 48, 3) and log_depth.shape == (2, 32, 48)
    assert np.isfinite(log_depth).mean() > 0.3
    loss = depth_loss(torch.from_numpy(log_depth), torch.from_numpy(log_depth))
    assert float(loss) == 0.0
    with pytest.raises(UserError, match="below 5000"):
        render_depth_pairs([10_000], 1, (32, 48), progress=False)


def test_camera_heights_follow_the_height_jitter(tmp_path):
    rng = np.random.default_rng(0)
    for jitter in (0.0, 0.05, 0.6):
        poses = np.stack([_random_pose(rng, jitter) for _ in range(200)])
        heights = poses[:, 1, 3]  # y offset from the world's eye height (y down)
        assert np.abs(heights).max() <= jitter and (jitter == 0 or np.abs(heights).max() > 0.8 * jitter)
        rotations = poses[:, :3, :3]
        identity = np.broadcast_to(np.eye(3), rotations.shape)
        np.testing.assert_allclose(rotations @ rotations.transpose(0, 2, 1), identity, atol=1e-12)
    with pytest.raises(UserError, match="height_jitter"):
        train_depth_net(tmp_path, DepthTrainSpec(height_jitter=1.6), log=lambda line: None)


def test_training_continues_from_a_saved_net(tmp_path):
    torch.manual_seed(0)
    start = DepthNet(DepthNetConfig(widths=(8, 8, 16, 16)))
    save_depth_net(start, tmp_path / "start", {"note": "test"})
    spec = DepthTrainSpec(steps=2, batch=1, train_worlds=1, views_per_world=1, val_worlds=1,
                          init=str(tmp_path / "start"))
    train_depth_net(tmp_path / "next", spec, log=lambda line: None)
    after = load_depth_net(tmp_path / "next")
    assert after.cfg == start.cfg
    moved = [not torch.equal(a, b) for a, b in zip(after.state_dict().values(), start.state_dict().values())]
    assert any(moved)
    assert json.loads((tmp_path / "next" / "depth_net.json").read_text())["init"] == str(tmp_path / "start")


def test_shipped_net_is_metric_on_unseen_worlds():
    net = load_depth_net()
    clip = render_world_clip(10_005, "walk", 4, height=128, width=224)
    pred = predict_depth(net, clip.frames, clip.K)
    valid = np.isfinite(clip.depth) & (clip.depth < 50)
    ratio = np.median(pred[valid] / clip.depth[valid])
    assert abs(ratio - 1) < 0.15
