"""The action overlay of generated videos (sana_wm.md §10.4: "WASD/joystick overlay unless --no_action_overlay").

Drawn into the bottom-left corner of each frame, nowhere else:
- from an action string: two key pads, W A S D (move / yaw) and I J K L (pitch / strafe), the keys held at that
  frame filled in (`KeyOverlay`, key sets from `camworld.camera.parse_action_string`);
- from a camera file: a compass whose arrow is the camera's horizontal motion since the previous frame (up =
  forward, right = strafe right, length relative to the trajectory's fastest step) and whose dot is the rotation
  (right = yaw right, up = pitch up) (`PoseOverlay`).

Pose index i is the frame reached after the i-th key set (pose 0, the start, has no keys), so callers that drop
leading frames (the refiner drops frame 0) pass the pose index of their first frame.
"""

from __future__ import annotations

import abc
import math

import numpy as np
from PIL import Image, ImageDraw

from camworld.camera import parse_action_string
from camworld.errors import UserError

_PAD_LAYOUT = {"w": (1, 0), "a": (0, 1), "s": (1, 1), "d": (2, 1), "i": (4, 0), "j": (3, 1), "k": (4, 1), "l": (5, 1)}
_IDLE, _PRESSED, _EDGE, _TEXT = (40, 40, 40), (250, 210, 40), (230, 230, 230), (255, 255, 255)


def _key_size(height: int, width: int) -> int:
    return max(3, min(height, width) // 14)


def overlay_box(height: int, width: int) -> tuple[int, int, int, int]:
    """The corner region (top, left, bottom, right) that overlays may change in a height x width frame."""
    key = _key_size(height, width)
    margin = max(2, key // 3)
    box_w, box_h = 6 * key + 2, 2 * key + 1
    return height - margin - box_h, margin, height - margin, margin + box_w


def _check_frames(frames) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise UserError(f"overlay frames must be uint8 [F, H, W, 3], got {frames.dtype} {list(frames.shape)}")
    return frames


class _CornerPainter(abc.ABC):
    """Copies frames and redraws only their `overlay_box` region, via `_draw(draw, pose_index, size)`."""

    def paint(self, frames, first_pose: int) -> np.ndarray:
        """uint8 [F, H, W, 3] whose frame j shows pose first_pose + j -> a copy with the overlay drawn."""
        frames = _check_frames(frames)
        out = frames.copy()
        top, left, bottom, right = overlay_box(*frames.shape[1:3])
        for j in range(len(out)):
            corner = Image.fromarray(out[j, top:bottom, left:right])
            self._draw(ImageDraw.Draw(corner), first_pose + j, corner.size)
            out[j, top:bottom, left:right] = np.asarray(corner)
        return out

    @abc.abstractmethod
    def _draw(self, draw: ImageDraw.ImageDraw, pose: int, size: tuple[int, int]) -> None:
        """Draw pose `pose`'s overlay onto the corner image of `size` (width, height)."""


class KeyOverlay(_CornerPainter):
    """WASD / IJKL key pads with the held keys of an action string lit."""

    def __init__(self, action: str):
        self.keys = parse_action_string(action)

    def keys_at(self, pose: int) -> frozenset[str]:
        """The keys held while moving into pose `pose` (none at pose 0 or past the end)."""
        return self.keys[pose - 1] if 1 <= pose <= len(self.keys) else frozenset()

    def _draw(self, draw, pose, size):
        held = self.keys_at(pose)
        key = (size[0] - 2) // 6
        for name, (col, row) in _PAD_LAYOUT.items():
            x0, y0 = col * key + (2 if col >= 3 else 0), row * key
            draw.rectangle((x0, y0, x0 + key - 1, y0 + key - 1), fill=_PRESSED if name in held else _IDLE,
                           outline=_EDGE)
            if key >= 12:
                draw.text((x0 + key // 2, y0 + key // 2), name.upper(), fill=(0, 0, 0) if name in held else _TEXT,
                          anchor="mm")


class PoseOverlay(_CornerPainter):
    """A motion compass from the per-frame pose deltas of a c2w trajectory (F, 4, 4)."""

    def __init__(self, c2w):
        c2w = np.asarray(c2w, dtype=np.float64)
        if c2w.ndim != 3 or c2w.shape[1:] != (4, 4):
            raise UserError(f"pose overlay needs poses (F, 4, 4), got {c2w.shape}")
        steps = np.zeros((len(c2w), 4))  # per pose: strafe, forward, yaw (rad), pitch (rad) since the previous one
        for i in range(1, len(c2w)):
            delta = np.linalg.inv(c2w[i - 1]) @ c2w[i]
            fwd = delta[:3, 2]
            steps[i] = (delta[0, 3], delta[2, 3], math.atan2(fwd[0], fwd[2]), math.atan2(-fwd[1], fwd[2]))
        self.steps = steps
        self.move_scale = max(float(np.hypot(steps[:, 0], steps[:, 1]).max()), 1e-9)
        self.turn_scale = max(float(np.abs(steps[:, 2:]).max()), 1e-9)

    def _draw(self, draw, pose, size):
        radius = min(size) // 2 - 1
        cx, cy = radius, size[1] - 1 - radius
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=_IDLE, outline=_EDGE)
        if not 0 <= pose < len(self.steps):
            return
        strafe, forward, yaw, pitch = self.steps[pose]
        tip_x = cx + radius * strafe / self.move_scale
        tip_y = cy - radius * forward / self.move_scale
        draw.line((cx, cy, tip_x, tip_y), fill=_PRESSED, width=max(1, radius // 6))
        dot_x = cx + 2 * radius + 2 + radius * yaw / self.turn_scale
        dot_y = cy - radius * pitch / self.turn_scale
        box = 2 * radius + 2
        draw.rectangle((box, cy - radius, box + 2 * radius, cy + radius), fill=_IDLE, outline=_EDGE)
        dot = max(1, radius // 4)
        draw.ellipse((dot_x - dot, dot_y - dot, dot_x + dot, dot_y + dot), fill=_PRESSED)
