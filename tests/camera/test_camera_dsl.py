"""The action DSL against SANA-WM's released demo trajectories and the test vectors of sana_wm.md §4.1–4.2."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from camworld.camera import action_string_to_c2w, parse_action_string
from camworld.errors import UserError

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO.parent / "shared" / "reference" / "sana_wm_demo"


def _yaw_deg(pose):
    return math.degrees(math.atan2(pose[0, 2], pose[2, 2]))


def _pitch_up_deg(pose):
    return math.degrees(math.asin(-pose[1, 2]))


def _demo_rows():
    if not (DEMO / "actions.tsv").is_file():
        return []
    with open(DEMO / "actions.tsv") as f:
        return list(csv.DictReader(f, delimiter="\t"))


@pytest.mark.skipif(not (DEMO / "actions.tsv").is_file(), reason=f"SANA-WM demo files not found at {DEMO}")
@pytest.mark.parametrize("row", _demo_rows(), ids=lambda r: r["demo"])
def test_reproduces_released_demo_poses(row):
    expected = np.load(DEMO / f"{row['demo']}_pose.npy", allow_pickle=False)
    c2w = action_string_to_c2w(row["action"], translation_speed=float(row["translation_speed"]),
                               rotation_speed_deg=float(row["rotation_speed_deg"]))
    assert c2w.dtype == np.float32 and c2w.shape == expected.shape
    assert np.abs(c2w - expected).max() <= 1e-6


def test_demo_0_final_translation():
    c2w = action_string_to_c2w("w-100,dw-60,w-100,aw-60")
    assert c2w.shape == (321, 4, 4)
    np.testing.assert_allclose(c2w[-1, :3, 3], [2.864, 0.0, 7.017], atol=1e-3)


def test_forward_16_frames_fast_speeds():
    c2w = action_string_to_c2w("w-16", translation_speed=0.055, rotation_speed_deg=1.2)
    assert c2w.shape == (17, 4, 4)
    np.testing.assert_array_equal(c2w[0], np.eye(4, dtype=np.float32))
    assert c2w[0, 2, 3] == 0 and c2w[-1, 2, 3] > 0.8
    np.testing.assert_allclose(c2w[-1, :3, 3], [0.0, 0.0, 0.88], atol=1e-5)


def test_yaw_right_100_frames_is_60_degrees():
    c2w = action_string_to_c2w("d-100")
    assert _yaw_deg(c2w[-1]) == pytest.approx(60.0, abs=1e-4)
    np.testing.assert_allclose(c2w[:, :3, 3], 0.0)


def test_pitch_clamps_at_limit():
    c2w = action_string_to_c2w("i-200")
    pitches = [_pitch_up_deg(p) for p in c2w]
    assert pitches[-1] == pytest.approx(60.0, abs=1e-3)
    assert max(pitches) <= 60.0 + 1e-3
    assert pitches[100] == pytest.approx(60.0, abs=1e-3)  # 0.6°/frame reaches the limit at frame 100
    down = action_string_to_c2w("k-120", pitch_limit_deg=30.0)
    assert _pitch_up_deg(down[-1]) == pytest.approx(-30.0, abs=1e-3)


def test_release_coasts_to_a_stop():
    c2w = action_string_to_c2w("w-16,none-32")
    assert c2w[16, 2, 3] == pytest.approx(0.40, abs=1e-4)
    assert c2w[48, 2, 3] == pytest.approx(0.735, abs=1e-3)
    steps = np.diff(c2w[16:, 2, 3])
    assert (steps > 0).all() and (np.diff(steps) < 0).all()


def test_unsmoothed_velocity_is_constant():
    c2w = action_string_to_c2w("w-16,none-32", smooth=False)
    assert c2w[16, 2, 3] == pytest.approx(0.40, abs=1e-5)
    np.testing.assert_array_equal(c2w[16:, :3, 3], np.repeat(c2w[16:17, :3, 3], 33, axis=0))


def test_yaw_is_world_y_and_pitch_is_camera_x():
    # Looking up then turning: the camera must turn about world up (−Y), keeping its elevation.
    c2w = action_string_to_c2w("i-50,d-50", smooth=False)
    assert _pitch_up_deg(c2w[50]) == pytest.approx(30.0, abs=1e-4)
    assert _pitch_up_deg(c2w[-1]) == pytest.approx(30.0, abs=1e-4)
    assert _yaw_deg(c2w[-1]) == pytest.approx(30.0, abs=1e-4)
    right = c2w[-1, :3, 0]
    assert abs(right[1]) < 1e-6  # no roll


def test_strafe_and_forward_stay_on_ground_plane():
    c2w = action_string_to_c2w("i-40,wl-30,ks-50,j-20")
    np.testing.assert_allclose(c2w[:, 1, 3], 0.0, atol=1e-7)
    strafe = action_string_to_c2w("l-10", smooth=False)
    np.testing.assert_allclose(strafe[-1, :3, 3], [0.25, 0.0, 0.0], atol=1e-5)


def test_v1_doc_example():
    c2w = action_string_to_c2w("w-80,jw-40,w-40,lw-60,w-100", translation_speed=0.055,
                               rotation_speed_deg=1.2, dsl_version="v1")
    assert c2w.shape == (321, 4, 4)
    np.testing.assert_allclose(c2w[-1, :3, 3], [-0.897, 0.0, 15.865], atol=2e-3)
    assert _yaw_deg(c2w[-1]) == pytest.approx(24.0, abs=1e-4)


def test_v1_key_map_and_defaults():
    strafe = action_string_to_c2w("d-10", dsl_version="v1")
    np.testing.assert_allclose(strafe[-1, :3, 3], [0.5, 0.0, 0.0], atol=1e-5)
    yaw = action_string_to_c2w("l-10", dsl_version="v1")
    assert _yaw_deg(yaw[-1]) == pytest.approx(12.0, abs=1e-4)


def test_v1_skips_pitch_step_past_limit():
    c2w = action_string_to_c2w("i-10", rotation_speed_deg=7.0, pitch_limit_deg=30.0, dsl_version="v1")
    # 4 steps reach 28°; a 5th would give 35° > 30°, so it and every later one is skipped (v3 would clamp at 30°).
    assert _pitch_up_deg(c2w[-1]) == pytest.approx(28.0, abs=1e-4)
    v3 = action_string_to_c2w("i-10", rotation_speed_deg=7.0, pitch_limit_deg=30.0, smooth=False)
    assert _pitch_up_deg(v3[-1]) == pytest.approx(30.0, abs=1e-4)


def test_v1_rejects_smoothing_and_unknown_version():
    with pytest.raises(UserError, match="smoothing"):
        action_string_to_c2w("w-1", dsl_version="v1", smooth=True)
    with pytest.raises(UserError, match="v2"):
        action_string_to_c2w("w-1", dsl_version="v2")


def test_grammar_accepts_case_whitespace_fullwidth_comma_and_none():
    frames = parse_action_string(" W d-2 ，NONE-1,wwA-1 ")
    assert frames == [frozenset("wd")] * 2 + [frozenset()] + [frozenset("wa")]
    np.testing.assert_array_equal(action_string_to_c2w("Wd-5，none-3"), action_string_to_c2w("dw-5,none-3"))


@pytest.mark.parametrize(("action", "fragment"), [
    ("", "empty"),
    ("   ", "empty"),
    ("w10", "'w10'"),
    ("w-0", "'w-0'"),
    ("w--3", "'w--3'"),
    ("w-1.5", "'w-1.5'"),
    ("w-", "'w-'"),
    ("w-x", "'w-x'"),
    ("w-²", "'w-²'"),
    ("wq-3", "'wq-3'"),
    ("nonew-3", "'nonew-3'"),
    ("-3", "'-3'"),
    ("w-3,,s-2", "empty segment"),
    ("w-3,", "empty segment"),
])
def test_grammar_errors_name_the_segment(action, fragment):
    with pytest.raises(UserError) as info:
        action_string_to_c2w(action)
    message = str(info.value)
    assert fragment in message and "\n" not in message
    assert isinstance(info.value, ValueError)
