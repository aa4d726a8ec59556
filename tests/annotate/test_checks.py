"""Engine checks (registration, reprojection, rotation cross-check) and SANA-WM's camera filters."""

from __future__ import annotations

import numpy as np
import pytest

from camworld.annotate import two_view
from camworld.annotate.checks import (
    camera_filter_problem,
    chain_agreement,
    chain_problem,
    check_pairs,
    engine_problem,
    rotation_discrepancies,
    rotation_outlier_frames,
)
from camworld.annotate.metric_scale import path_length, sim3_scale
from camworld.annotate.sfm_result import SfMResult, fill_unregistered


def _rot_y(deg: float) -> np.ndarray:
    a = np.radians(deg)
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])


def _trajectory(num: int, yaw_per_frame: float) -> np.ndarray:
    c2w = np.tile(np.eye(4), (num, 1, 1))
    for f in range(num):
        c2w[f, :3, :3] = _rot_y(yaw_per_frame * f)
        c2w[f, :3, 3] = [0.0, 0.0, 0.05 * f]
    return c2w


def _result(c2w, registered=None, reproj=0.4) -> SfMResult:
    num = len(c2w)
    registered = np.ones(num, bool) if registered is None else registered
    return SfMResult(c2w, registered, np.eye(3), [(np.zeros((0, 2)), np.zeros(0))] * num, reproj, "colmap",
                     {"models": 1})


def _essential_from(c2w):
    return {(i, j): c2w[j, :3, :3].T @ c2w[i, :3, :3] for i, j in check_pairs(len(c2w))}


def test_consistent_rotations_pass_and_drifting_ones_are_rejected():
    truth = _trajectory(20, 0.5)
    essential = _essential_from(truth)
    assert engine_problem(_result(truth), essential) is None
    assert np.allclose(rotation_discrepancies(truth, np.ones(20, bool), essential), 0, atol=1e-4)
    wrong = _trajectory(20, 2.0)  # plausible-looking, but turning four times too fast
    problem = engine_problem(_result(wrong), essential)
    assert problem is not None and "disagree with essential-matrix rotations" in problem


def test_one_turned_camera_is_found_though_the_clip_wide_check_passes():
    truth = _trajectory(30, 0.5)
    essential = _essential_from(truth)
    assert len(rotation_outlier_frames(truth, np.ones(30, bool), essential)) == 0
    turned = truth.copy()
    turned[17, :3, :3] = turned[17, :3, :3] @ _rot_y(130.0)
    assert engine_problem(_result(turned), essential) is None
    np.testing.assert_array_equal(rotation_outlier_frames(turned, np.ones(30, bool), essential), [17])
    registered = np.ones(30, bool)
    registered[17] = False  # an unregistered frame is not an outlier, whatever its pose holds
    assert len(rotation_outlier_frames(turned, registered, essential)) == 0


def test_registration_and_reprojection_limits():
    truth = _trajectory(20, 0.5)
    essential = _essential_from(truth)
    registered = np.ones(20, bool)
    registered[:3] = False
    assert "registered 17/20" in engine_problem(_result(truth, registered), essential)
    assert "reprojection" in engine_problem(_result(truth, reproj=5.0), essential)
    assert "essential matrix" in engine_problem(_result(truth), {})


def test_chain_agreement_catches_a_turned_trajectory_that_sim3_absorbs():
    """The engine's trajectory against the depth-PnP chain's: a scaled copy agrees; one whose path is turned 15°
    fits by Sim(3) (a rotation absorbs it) but not anchored at the shared first camera; one whose cameras are
    turned 3° has a rotation gap."""
    chain = _trajectory(30, 1.0)
    chain[:, 0, 3] = 0.02 * np.arange(30) ** 1.5  # a curved path, so a turn of it is not a rescale of it
    agree = chain_agreement(_scaled(chain, 0.2), chain)
    assert agree["rotation_gap_deg"] < 1e-6 and agree["anchored_rmse_of_path"] < 1e-9
    assert chain_problem("colmap", agree) is None

    turned_path = chain.copy()
    turned_path[:, :3, 3] = chain[:, :3, 3] @ _rot_y(30.0).T
    _, fit = sim3_scale(turned_path, chain)
    assert fit["rmse_m"] < 1e-6 * path_length(chain)
    agree = chain_agreement(turned_path, chain)
    assert agree["rotation_gap_deg"] < 1e-6 and agree["anchored_rmse_of_path"] > 0.2
    assert "start-anchored residual" in chain_problem("colmap", agree)

    turned_cameras = chain.copy()
    turned_cameras[1:, :3, :3] = _rot_y(3.0) @ chain[1:, :3, :3]
    agree = chain_agreement(turned_cameras, chain)
    assert agree["rotation_gap_deg"] == pytest.approx(3.0 * 29 / 30, rel=1e-6)
    assert "mean rotation gap 2.90°" in chain_problem("colmap", agree)


def _scaled(c2w, factor):
    out = c2w.copy()
    out[:, :3, 3] *= factor
    return out


def test_camera_filters_name_the_reason():
    K = np.array([[300.0, 0, 223.5], [0, 300.0, 127.5], [0, 0, 1]])
    assert camera_filter_problem(K, (256, 448), 0.1) is None
    wide = K.copy()
    wide[0, 0] = wide[1, 1] = 100.0
    assert "horizontal field of view" in camera_filter_problem(wide, (256, 448), None)
    squashed = K.copy()
    squashed[1, 1] = 380.0
    assert "focal mismatch" in camera_filter_problem(squashed, (256, 448), None)
    assert "coefficient of variation 2.50" in camera_filter_problem(K, (256, 448), 2.5)
    assert "coefficient of variation" in camera_filter_problem(K, (256, 448), float("nan"))


def test_fill_unregistered_interpolates_between_neighbours():
    truth = _trajectory(5, 2.0)
    registered = np.array([False, True, False, True, True])
    holed = truth.copy()
    holed[~registered] = np.nan
    filled = fill_unregistered(holed, registered)
    np.testing.assert_allclose(filled[2], truth[2], atol=1e-9)
    np.testing.assert_allclose(filled[0], truth[1])


def test_essential_rotations_on_rendered_frames(small_orbit):
    clip = small_orbit
    features = two_view.detect(clip.frames)
    essential = two_view.essential_rotations(features, clip.K, check_pairs(len(clip.frames)))
    assert len(essential) >= 10
    gaps = rotation_discrepancies(clip.c2w.astype(np.float64), np.ones(len(clip.c2w), bool), essential)
    assert np.median(gaps) < 0.5
    rot = two_view.rotation_angle_deg(np.stack([_rot_y(10.0), np.eye(3)]))
    np.testing.assert_allclose(rot, [10.0, 0.0], atol=1e-6)


@pytest.mark.parametrize("num", [1, 2])
def test_check_pairs_on_tiny_clips(num):
    assert all(j < num for _, j in check_pairs(num))
