"""The action overlay draws only inside its corner box, and shows the held keys / the motion of each frame."""

from __future__ import annotations

import numpy as np
import pytest

from camworld.camera import action_string_to_c2w
from camworld.errors import UserError
from camworld.overlay import KeyOverlay, PoseOverlay, overlay_box


def _outside(frames, box):
    top, left, bottom, right = box
    mask = np.ones(frames.shape[1:3], dtype=bool)
    mask[top:bottom, left:right] = False
    return frames[:, mask]


@pytest.mark.parametrize("hw", [(32, 64), (72, 128), (360, 640)])
def test_key_overlay_stays_in_its_corner_and_lights_held_keys(hw):
    frames = np.repeat(np.random.default_rng(0).integers(0, 256, (1, *hw, 3), dtype=np.uint8), 4, axis=0)
    original = frames.copy()
    painter = KeyOverlay("w-1,dl-1,none-1")
    out = painter.paint(frames, 0)
    box = overlay_box(*hw)
    assert box[0] >= hw[0] // 2 and box[3] <= hw[1] // 2  # bottom-left corner
    np.testing.assert_array_equal(_outside(out, box), _outside(frames, box))
    top, left, bottom, right = box
    corners = out[:, top:bottom, left:right]
    assert not np.array_equal(corners, frames[:, top:bottom, left:right])
    # pose 0 (no keys) and pose 3 ("none") look the same; poses 1 (w) and 2 (d+l) differ from them and each other
    np.testing.assert_array_equal(corners[0], corners[3])
    assert not np.array_equal(corners[0], corners[1]) and not np.array_equal(corners[1], corners[2])
    np.testing.assert_array_equal(frames, original)  # the input is not drawn on
    assert painter.keys_at(2) == frozenset("dl") and painter.keys_at(0) == frozenset()


def test_pose_overlay_stays_in_its_corner_and_follows_motion():
    c2w = action_string_to_c2w("w-3,d-3", smooth=False)
    frames = np.full((7, 72, 128, 3), 90, dtype=np.uint8)
    out = PoseOverlay(c2w).paint(frames, 0)
    box = overlay_box(72, 128)
    np.testing.assert_array_equal(_outside(out, box), _outside(frames, box))
    top, left, bottom, right = box
    corners = out[:, top:bottom, left:right]
    np.testing.assert_array_equal(corners[1], corners[2])  # the same forward step
    assert not np.array_equal(corners[0], corners[1]) and not np.array_equal(corners[2], corners[5])


def test_overlay_rejects_bad_frames():
    with pytest.raises(UserError):
        KeyOverlay("w-1").paint(np.zeros((2, 8, 8, 3), dtype=np.float32), 0)
