"""Pose metrics as SANA-WM's evaluator computes them, Umeyama Sim(3), and the revisit-pair finder."""

from __future__ import annotations

import numpy as np
import pytest

from camworld.camera import action_string_to_c2w, find_revisit_pairs, pose_errors, umeyama_sim3


def _rotation(rng):
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.linalg.det(q))


def _similarity(rng):
    return float(rng.uniform(0.2, 5.0)), _rotation(rng), rng.normal(size=3)


@pytest.mark.parametrize("seed", range(5))
def test_umeyama_recovers_random_sim3(seed):
    rng = np.random.default_rng(seed)
    scale, rot, trans = _similarity(rng)
    src = rng.normal(size=(30, 3))
    s, r, t = umeyama_sim3(src, scale * src @ rot.T + trans)
    assert s == pytest.approx(scale, rel=1e-10)
    np.testing.assert_allclose(r, rot, atol=1e-10)
    np.testing.assert_allclose(t, trans, atol=1e-10)


def _trajectory():
    # Re-orthonormalised in float64: acos near 1 turns float32 rounding of R (~1e-8 in the cosine) into ~0.01°.
    c2w = action_string_to_c2w("w-30,dw-40,ik-10,lw-20,i-15,aw-30,s-10", smooth=False).astype(np.float64)
    u, _, vh = np.linalg.svd(c2w[:, :3, :3])
    c2w[:, :3, :3] = u @ vh
    return c2w


def test_identical_trajectories_give_zero_errors():
    gt = _trajectory()
    errors = pose_errors(gt, gt)
    assert errors["n_frames"] == len(gt)
    for key in ("RotErr", "TransErr", "CamMC"):
        assert errors[key] == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize("seed", range(3))
def test_errors_are_invariant_to_a_global_similarity_of_the_estimate(seed):
    rng = np.random.default_rng(seed)
    gt = _trajectory()
    scale, rot, trans = _similarity(rng)
    est = gt.copy()
    est[:, :3, :3] = rot @ gt[:, :3, :3]
    est[:, :3, 3] = scale * gt[:, :3, 3] @ rot.T + trans
    errors = pose_errors(est, gt)
    for key in ("RotErr", "TransErr", "CamMC"):
        assert errors[key] == pytest.approx(0.0, abs=1e-5)


def test_errors_grow_with_perturbation_and_use_degrees():
    gt = _trajectory()
    est = gt.copy()
    yaw = np.radians(10.0)
    spin = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
    est[1::2, :3, :3] = est[1::2, :3, :3] @ spin  # every other camera turned 10° in place
    errors = pose_errors(est, gt)
    assert 1.0 < errors["RotErr"] < 10.0
    est[1::2, :3, 3] += [0.5, 0.0, 0.0]
    worse = pose_errors(est, gt)
    assert worse["TransErr"] > 0.05 and worse["CamMC"] > errors["CamMC"]


def test_lengths_are_truncated_to_the_shorter():
    gt = _trajectory()
    assert pose_errors(gt[:50], gt)["n_frames"] == 50


def test_revisit_pairs_on_an_out_and_back_walk():
    # Walk 1 m forward, turn 180°, walk back, turn 180° again: the last frame is the first viewpoint again.
    c2w = action_string_to_c2w("w-40,d-300,w-40,d-300", smooth=False)
    pairs = find_revisit_pairs(c2w)
    assert pairs[0] == (1, 680)
    assert len(pairs) <= 5 and len(set(pairs)) == len(pairs)
    for i, j in pairs:
        assert 1 <= i < j and j - i >= 48
        assert np.linalg.norm(c2w[i, :3, 3] - c2w[j, :3, 3]) < 0.5
        assert np.degrees(np.arccos(np.clip(c2w[i, :3, 2] @ c2w[j, :3, 2], -1, 1))) < 20.0
    dists = [np.linalg.norm(c2w[i, :3, 3] - c2w[j, :3, 3]) for i, j in pairs]
    assert dists == sorted(dists)
    # A full turn in place revisits frame 1's view at frame 600 (and frame 0's, which never counts); the
    # neighbours (2, 599), (1, 599), ... are the same revisit and are not listed again.
    assert find_revisit_pairs(action_string_to_c2w("d-600")) == [(1, 600)]
    assert find_revisit_pairs(c2w, max_pairs=1) == [(1, 680)]


def test_no_revisits_on_a_straight_line():
    assert find_revisit_pairs(action_string_to_c2w("w-200")) == []
