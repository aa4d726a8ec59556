"""The acceptance checks on rendered clips at 256x448 with the shipped depth net (world seeds >= 10_000):
rotation error <= 1°, translation error <= 5 % of the path after Sim(3) alignment, metric scale within 10 %."""

from __future__ import annotations

import pytest

from camworld.annotate.depth_net import load_depth_net, predict_depth
from camworld.annotate.pipeline import annotate_frames
from camworld.annotate.world_clips import path_length, render_world_clip, scale_error
from camworld.camera import pose_errors


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "seed"), [("walk", 10_010), ("orbit", 10_011), ("out_and_back", 10_012)])
def test_annotate_world_clip(kind, seed):
    clip = render_world_clip(seed, kind, 64)
    net = load_depth_net()
    a = annotate_frames(clip.frames, K=clip.K.astype(float), depth_for=lambda K: predict_depth(net, clip.frames, K))
    errors = pose_errors(a.c2w, clip.c2w)
    assert errors["RotErr"] <= 1.0, (a.engine, errors)
    assert errors["TransErr"] <= 0.05 * path_length(clip.c2w), (a.engine, errors)
    assert abs(scale_error(a.c2w, clip.c2w)) <= 0.10, a.notes
