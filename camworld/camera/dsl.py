"""SANA-WM's keyboard action DSL: an action string such as ``"w-100,dw-60"`` rolled out into a camera trajectory.

Reference: sana_wm.md §4 (grammar, conventions, the current "v3" key map and velocity model, the first-release
"v1" mapping). Poses are camera-to-world in the OpenCV convention (+X right, +Y down, +Z forward); pose 0 is the
identity, world "up" is -Y, and translation stays on the world plane y = 0. The rollout is done in float64 and
cast to float32 at the end, which is what makes it reproduce the released ``demo_*_pose.npy`` files bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from camworld.errors import UserError

FPS = 16
TAU_PRESS = 0.45
TAU_COAST = 1.0
ACTION_KEYS = frozenset("wasdijkl")

# Canonical controls: [forward, strafe right, yaw right, pitch up]; each key adds +1 or -1 to one of them.
_FORWARD, _STRAFE, _YAW, _PITCH = range(4)


@dataclass(frozen=True)
class DslVersion:
    """One released key map with its defaults. `key_axis` maps a key to (control index, sign)."""

    key_axis: dict[str, tuple[int, float]]
    translation_speed: float
    rotation_speed_deg: float
    pitch_limit_deg: float
    smooth: bool
    clamp_pitch: bool  # v3 clamps pitch at the limit; v1 skips the whole pitch step that would cross it


V3 = DslVersion(
    key_axis={
        "w": (_FORWARD, 1.0), "s": (_FORWARD, -1.0),
        "a": (_YAW, -1.0), "d": (_YAW, 1.0),
        "i": (_PITCH, 1.0), "k": (_PITCH, -1.0),
        "j": (_STRAFE, -1.0), "l": (_STRAFE, 1.0),
    },
    translation_speed=0.025, rotation_speed_deg=0.6, pitch_limit_deg=60.0, smooth=True, clamp_pitch=True,
)
V1 = DslVersion(
    key_axis={
        "w": (_FORWARD, 1.0), "s": (_FORWARD, -1.0),
        "a": (_STRAFE, -1.0), "d": (_STRAFE, 1.0),
        "i": (_PITCH, 1.0), "k": (_PITCH, -1.0),
        "j": (_YAW, -1.0), "l": (_YAW, 1.0),
    },
    translation_speed=0.05, rotation_speed_deg=1.2, pitch_limit_deg=85.0, smooth=False, clamp_pitch=False,
)
DSL_VERSIONS = {"v1": V1, "v3": V3}


def parse_action_string(action: str) -> list[frozenset[str]]:
    """One set of held keys per frame (lower-case letters from ``wasdijkl``; empty for ``none``).

    Grammar (§4): whitespace is ignored, the full-width comma is a comma, segments ``<keys>-<N>`` are split at
    the last ``-``, N is a positive integer, keys are ``none`` or letters of ``wasdijkl`` in any case.
    Deliberate difference: upstream accepts an empty key list (``"-5"``) as ``none``; we reject it as a typo.
    """
    cleaned = "".join(str(action).replace("，", ",").split())
    if not cleaned:
        raise UserError("action string is empty")
    frames: list[frozenset[str]] = []
    for segment in cleaned.split(","):
        if not segment:
            raise UserError(f"action string {cleaned!r} has an empty segment (stray comma)")
        if "-" not in segment:
            raise UserError(f"action segment {segment!r} has no '-': expected '<keys>-<frames>'")
        keys_part, count = segment.rsplit("-", 1)
        if not (count.isascii() and count.isdigit()):
            raise UserError(f"action segment {segment!r}: frame count {count!r} is not a positive integer")
        if int(count) <= 0:
            raise UserError(f"action segment {segment!r}: frame count must be positive")
        keys_lower = keys_part.lower()
        if not keys_lower:
            raise UserError(f"action segment {segment!r} has no keys: use 'none-{count}' to hold nothing")
        if keys_lower == "none":
            keys = frozenset()
        else:
            unknown = sorted(set(keys_lower) - ACTION_KEYS)
            if unknown:
                raise UserError(
                    f"action segment {segment!r} has unknown keys {''.join(unknown)!r}; allowed: wasdijkl or none"
                )
            keys = frozenset(keys_lower)
        frames.extend([keys] * int(count))
    return frames


def rot_x(angle: float) -> np.ndarray:
    """Rotation about X; positive angle maps +Z toward -Y (looks up in OpenCV)."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rot_y(angle: float) -> np.ndarray:
    """Rotation about Y; positive angle maps +Z toward +X (turns right)."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _on_ground(axis: np.ndarray) -> np.ndarray:
    """A camera axis projected onto the world plane y = 0, normalised the way upstream does (÷(‖·‖ + 1e-6))."""
    flat = axis.copy()
    flat[1] = 0.0
    norm = float(np.linalg.norm(flat))
    if norm > 0:
        flat /= norm + 1e-6
    return flat


def _target_velocity(keys: frozenset[str], version: DslVersion, speeds: np.ndarray) -> np.ndarray:
    """[forward, strafe, yaw, pitch] per frame for the held keys: (plus − minus) · speed per control."""
    plus, minus = np.zeros(4), np.zeros(4)
    for key in keys:
        index, sign = version.key_axis[key]
        (plus if sign > 0 else minus)[index] = 1.0
    return (plus - minus) * speeds


def _ease(velocity: np.ndarray, target: np.ndarray) -> np.ndarray:
    """One 1/FPS step of exponential easing: tau 0.45 s toward a non-zero target, 1.0 s when coasting to 0."""
    eased = velocity.copy()
    for c in range(4):
        tau = TAU_PRESS if abs(target[c]) > 1e-12 else TAU_COAST
        alpha = 1.0 - math.exp(-(1.0 / FPS) / tau)
        eased[c] = velocity[c] + alpha * (target[c] - velocity[c])
    return eased


def action_string_to_c2w(
    action: str,
    *,
    translation_speed: float | None = None,
    rotation_speed_deg: float | None = None,
    pitch_limit_deg: float | None = None,
    smooth: bool | None = None,
    dsl_version: str = "v3",
) -> np.ndarray:
    """Roll an action string out into camera-to-world poses, float32 ``(N+1, 4, 4)`` with pose 0 = identity.

    Unset arguments take the version's defaults: v3 0.025 m, 0.6°/frame, pitch limit 60°, smoothing on;
    v1 0.05 m, 1.2°/frame, limit 85°, no smoothing (v1 had none, so ``smooth=True`` with v1 is an error).
    """
    if dsl_version not in DSL_VERSIONS:
        raise UserError(f"unknown DSL version {dsl_version!r}; choose one of {sorted(DSL_VERSIONS)}")
    version = DSL_VERSIONS[dsl_version]
    if smooth and not version.smooth:
        raise UserError(f"DSL {dsl_version} has no velocity smoothing; pass smooth=False or use v3")
    ts = version.translation_speed if translation_speed is None else float(translation_speed)
    rot = math.radians(version.rotation_speed_deg if rotation_speed_deg is None else rotation_speed_deg)
    pitch_limit = math.radians(version.pitch_limit_deg if pitch_limit_deg is None else pitch_limit_deg)
    smooth = version.smooth if smooth is None else bool(smooth)
    speeds = np.array([ts, ts, rot, rot])

    pose = np.eye(4)
    pitch = 0.0
    velocity = np.zeros(4)
    last_keys: frozenset[str] = frozenset()
    poses = [pose.copy()]
    for keys in parse_action_string(action):
        target = _target_velocity(keys, version, speeds)
        if not smooth:
            velocity = target
        elif keys - last_keys:
            velocity = target  # a fresh key press snaps to full speed
        else:
            velocity = _ease(velocity, target)
        last_keys = keys

        pitch_step = velocity[_PITCH]
        if version.clamp_pitch:
            new_pitch = min(pitch_limit, max(-pitch_limit, pitch + pitch_step))
            pitch_step, pitch = new_pitch - pitch, new_pitch
        elif -pitch_limit <= pitch + pitch_step <= pitch_limit:
            pitch += pitch_step
        else:
            pitch_step = 0.0

        # Yaw about world Y (pre-multiplied), pitch about the camera's own X (post-multiplied).
        rotation = rot_y(velocity[_YAW]) @ pose[:3, :3] @ rot_x(pitch_step)
        forward, right = _on_ground(rotation[:, 2]), _on_ground(rotation[:, 0])
        position = pose[:3, 3] + forward * velocity[_FORWARD] + right * velocity[_STRAFE]

        pose = np.eye(4)
        pose[:3, :3] = rotation
        pose[:3, 3] = position
        poses.append(pose.copy())
    return np.stack(poses).astype(np.float32)
