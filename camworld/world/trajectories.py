"""Camera trajectories through a `World`: random key-press policies, smooth waypoint paths and revisit templates.

Every builder returns (c2w float32 [F, 4, 4], metadata dict): OpenCV camera-to-world, frame 0 = identity (the world
frame is the first camera's, as in the action DSL), and no camera centre within `margin` of an object
(`World.collides`). Builders retry a bounded number of times (re-drawing and shrinking the path) and then raise
`UserError`. All randomness comes from `numpy.random.default_rng([seed, kind])`, so a seed fixes the trajectory.

- `random_keypress_trajectory`: segments of DSL keys with plausible durations, rolled out by
  `action_string_to_c2w` (sana_wm.md §4) at the DSL's speeds.
- `waypoint_trajectory`: 3-15 random waypoints joined as SANA-WM's benchmark does (sana_wm.md §8.1): centripetal
  Catmull-Rom positions, Squad rotations, arc-length retiming with speed ≤ 0.4 m/s and angular speed ≤ 12°/s.
- `revisit_trajectory`: templates that come back to earlier viewpoints (out-and-back, loop, figure-eight,
  orbit), retimed the same way, with their revisit pairs (`find_revisit_pairs`) in the metadata.
- `keyframe_trajectory`: a caller's keyframes (position, yaw, pitch), joined and retimed the same way; the
  benchmark's scripted templates (camworld.eval.bench_scenes) are built with it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from camworld.camera import action_string_to_c2w, find_revisit_pairs, relativize
from camworld.errors import UserError
from camworld.world.curves import (
    catmull_rom,
    make_continuous,
    poses_from,
    quat_from_yaw_pitch,
    resample_in_time,
    squad,
    squad_controls,
    step_times,
)

FPS = 16
MAX_SPEED = 0.4  # m/s, sana_wm.md §8.1
MAX_ANGULAR_DEG = 12.0  # °/s, sana_wm.md §8.1
MARGIN = 0.3  # m, the benchmark's collision margin
_SALT = {"random": 1, "waypoint": 2, "revisit": 3}

# (keys, weight, min frames, max frames): mostly walking forward, with turns, pauses, strafes and looks.
KEYPRESS_SEGMENTS = (
    ("w", 0.40, 16, 64),
    ("dw", 0.08, 12, 48), ("aw", 0.08, 12, 48),
    ("d", 0.05, 8, 40), ("a", 0.05, 8, 40),
    ("none", 0.08, 8, 24),
    ("l", 0.05, 8, 32), ("j", 0.05, 8, 32),
    ("i", 0.04, 6, 24), ("k", 0.04, 6, 24),
    ("s", 0.03, 8, 24),
)


def _check_start(world, num_frames: int, margin: float) -> None:
    if num_frames < 2:
        raise UserError(f"a trajectory needs at least 2 frames, got {num_frames}")
    if world.collides(np.zeros((1, 3)), margin=margin)[0]:
        raise UserError(f"the start (the origin) is within {margin} m of an object in world seed {world.seed}")


def _finish(c2w: np.ndarray) -> np.ndarray:
    return relativize(np.asarray(c2w, dtype=np.float64)).astype(np.float32)


def _no_path(kind: str, world, attempts: int, margin: float) -> UserError:
    return UserError(f"no collision-free {kind} trajectory in world seed {world.seed} after {attempts} attempts "
                     f"(margin {margin} m)")


def random_keypress_trajectory(world, num_frames: int, seed: int, *, translation_speed: float = 0.025,
                               rotation_speed_deg: float = 0.6, margin: float = MARGIN,
                               max_attempts: int = 500) -> tuple[np.ndarray, dict]:
    """A random action string of `num_frames − 1` key frames; c2w `[num_frames, 4, 4]`.

    Segments are drawn one at a time; a segment whose frames (including the coast after earlier keys) come within
    `margin` of an object is re-drawn, and after 8 failures in a row the previous segment is dropped too.
    """
    _check_start(world, num_frames, margin)
    rng = np.random.default_rng([seed, _SALT["random"]])
    weights = np.array([w for _, w, _, _ in KEYPRESS_SEGMENTS])
    weights /= weights.sum()
    segments: list[tuple[str, int]] = []
    used, failures, attempts = 0, 0, 0
    c2w = np.eye(4, dtype=np.float32)[None]
    while used < num_frames - 1:
        attempts += 1
        if attempts > max_attempts:
            raise _no_path("random key-press", world, max_attempts, margin)
        keys, _, low, high = KEYPRESS_SEGMENTS[rng.choice(len(KEYPRESS_SEGMENTS), p=weights)]
        length = min(int(rng.integers(low, high + 1)), num_frames - 1 - used)
        candidate = segments + [(keys, length)]
        action = ",".join(f"{k}-{n}" for k, n in candidate)
        rollout = action_string_to_c2w(action, translation_speed=translation_speed,
                                       rotation_speed_deg=rotation_speed_deg)
        if world.collides(rollout[used + 1:, :3, 3], margin=margin).any():
            failures += 1
            if failures >= 8 and segments:
                used -= segments.pop()[1]
                failures = 0
            continue
        segments, used, failures, c2w = candidate, used + length, 0, rollout
    action = ",".join(f"{k}-{n}" for k, n in segments)
    meta = {"kind": "random", "seed": int(seed), "action": action, "translation_speed": translation_speed,
            "rotation_speed_deg": rotation_speed_deg, "attempts": attempts, "fps": FPS}
    return _finish(c2w), meta


def _fit_to_duration(build: Callable[[float], tuple[np.ndarray, np.ndarray]], num_frames: int, fps: int,
                     max_speed: float, max_angular_deg: float) -> tuple[np.ndarray, float, float]:
    """Shrink `build(scale)` (dense positions, quats) until it can be travelled within the clip at the limits.

    Returns (c2w [F, 4, 4] float64, scale, traversal seconds). The time needed scales about linearly with the
    scale, so a few corrections suffice.
    """
    duration = (num_frames - 1) / fps
    scale = 1.0
    for _ in range(12):
        positions, quats = build(scale)
        dt = step_times(positions, quats, max_speed, max_angular_deg, smooth_radius=len(positions) // 64)
        needed = float(dt.sum())
        if needed <= duration:
            pos, q = resample_in_time(positions, quats, dt, num_frames)
            return poses_from(pos, q), scale, needed
        scale *= 0.98 * duration / needed
    raise UserError(f"cannot fit the path into {num_frames} frames at {max_speed} m/s and {max_angular_deg}°/s")


def _retrying(kind: str, world, margin: float, max_attempts: int, draw: Callable[[], Callable],
              fit: Callable[[Callable], tuple]) -> tuple:
    """Draw a path, fit it, shrink it by 30 % on a collision (SANA-WM's benchmark retries so, sana_wm.md §8.1)
    up to 3 times, then draw a new one; raise after `max_attempts` fits."""
    for attempt in range(max_attempts):
        if attempt % 4 == 0:
            build = draw()
        shrink = 0.7 ** (attempt % 4)
        c2w, scale, needed = fit(lambda s, build=build, shrink=shrink: build(s * shrink))
        if not world.collides(c2w[:, :3, 3], margin=margin).any():
            return c2w, scale * shrink, needed, attempt + 1
    raise _no_path(kind, world, max_attempts, margin)


def _limits_meta(num_frames: int, fps: int, max_speed: float, max_angular_deg: float) -> dict:
    return {"num_frames": num_frames, "fps": fps, "max_speed": max_speed, "max_angular_deg": max_angular_deg}


def waypoint_trajectory(world, num_frames: int, seed: int, *, fps: int = FPS, max_speed: float = MAX_SPEED,
                        max_angular_deg: float = MAX_ANGULAR_DEG, margin: float = MARGIN,
                        max_attempts: int = 16) -> tuple[np.ndarray, dict]:
    """A smooth path through random waypoints (one per ~4.5 s of clip, 3 to 15), c2w `[num_frames, 4, 4]`.

    Waypoints wander forward with heading changes ~N(0, 35°), the camera looking near its heading
    (±15° yaw, ±20° pitch). The whole layout (positions and angles) is scaled down until it fits the clip.
    """
    _check_start(world, num_frames, margin)
    rng = np.random.default_rng([seed, _SALT["waypoint"]])
    count = int(np.clip(2 + round((num_frames - 1) / fps / 4.5), 3, 15))
    dense_per_segment = max(16, 12 * num_frames // (count - 1))

    def draw():
        heading = np.cumsum(np.concatenate([[0.0], rng.normal(0.0, math.radians(35), count - 1)]))
        steps = rng.uniform(0.6, 1.8, count - 1)
        points = np.zeros((count, 3))
        points[1:, 0] = np.cumsum(steps * np.sin(heading[:-1]))
        points[1:, 2] = np.cumsum(steps * np.cos(heading[:-1]))
        points[1:, 1] = np.clip(rng.normal(0.0, 0.05, count - 1), -0.15, 0.15)
        yaw = heading + np.concatenate([[0.0], rng.normal(0.0, math.radians(15), count - 1)])
        pitch = np.concatenate([[0.0], np.clip(rng.normal(0.0, math.radians(8), count - 1), -0.35, 0.35)])
        waypoints.append(np.column_stack([points, np.degrees(yaw), np.degrees(pitch)]))

        def build(scale):
            positions, segment, t = catmull_rom(points * scale, dense_per_segment)
            keys = make_continuous(quat_from_yaw_pitch(yaw * scale, pitch * scale))
            return positions, squad(keys, squad_controls(keys), segment, t)

        return build

    waypoints: list[np.ndarray] = []
    fit = lambda build: _fit_to_duration(build, num_frames, fps, max_speed, max_angular_deg)
    c2w, scale, needed, attempts = _retrying("waypoint", world, margin, max_attempts, draw, fit)
    meta = {"kind": "waypoint", "seed": int(seed), **_limits_meta(num_frames, fps, max_speed, max_angular_deg),
            "scale": scale, "traversal_s": needed, "attempts": attempts,
            "waypoints_xyz_yaw_pitch": np.round(waypoints[-1] * scale, 4).tolist()}
    return _finish(c2w), meta


def _out_and_back(p: dict, scale: float, m: int, heading: bool):
    """Straight out (facing forward, at an angle to the view) and walk back to the start: revisits every view."""
    g = (1 - np.cos(np.linspace(0, 2 * np.pi, m))) / 2
    direction = np.array([math.sin(p["direction"]), 0.0, math.cos(p["direction"])])
    side = np.array([direction[2], 0.0, -direction[0]])
    positions = g[:, None] * p["length"] * scale * direction + np.sin(np.pi * g)[:, None] * p["bow"] * scale * side
    return positions, g * p["pan"] * scale, np.zeros(m)


def _loop(p: dict, scale: float, m: int, heading: bool):
    """A circle through the start, tangent to the view; the camera looks along the path or keeps its heading."""
    phi = np.linspace(0, 2 * np.pi, m)
    r = p["radius"] * scale
    positions = np.column_stack([p["side"] * r * (1 - np.cos(phi)), np.zeros(m), r * np.sin(phi)])
    return positions, (p["side"] * phi if heading else np.zeros(m)), np.zeros(m)


def _figure_eight(p: dict, scale: float, m: int, heading: bool):
    """Two circles tangent at the start, one turning right then one turning left (720° of turning)."""
    phi = np.linspace(0, 2 * np.pi, m // 2)
    r = p["radius"] * scale
    first = np.column_stack([p["side"] * r * (1 - np.cos(phi)), np.zeros_like(phi), r * np.sin(phi)])
    second = first * [-1.0, 1.0, 1.0]
    positions = np.concatenate([first, second[1:]])
    if not heading:
        return positions, np.zeros(len(positions)), np.zeros(len(positions))
    yaw = np.concatenate([p["side"] * phi, p["side"] * (2 * np.pi - phi[1:])])
    return positions, yaw, np.zeros(len(yaw))


def _orbit(p: dict, scale: float, m: int, heading: bool):
    """Circle a point `distance` ahead while looking at it (tilting down a little on the way), out to `angle` and
    back; scale shrinks the angle."""
    alpha = p["side"] * p["angle"] * scale * np.sin(np.linspace(0, np.pi, m))
    d = p["distance"]
    positions = np.column_stack([-d * np.sin(alpha), np.zeros(m), d * (1 - np.cos(alpha))])
    return positions, alpha, p["pitch"] * scale * np.sin(np.linspace(0, np.pi, m))


_ORIENTATION = {"out_and_back": "forward", "orbit": "look_at"}
REVISIT_TEMPLATES = {
    "out_and_back": _out_and_back,
    "loop": _loop,
    "figure_eight": _figure_eight,
    "orbit": _orbit,
}


def _template_params(rng: np.random.Generator) -> dict:
    return {
        "direction": rng.uniform(-0.7, 0.7), "length": rng.uniform(2.0, 6.0), "bow": rng.uniform(-0.5, 0.5),
        "pan": rng.uniform(-0.25, 0.25), "radius": rng.uniform(1.0, 3.0), "side": float(rng.choice([-1, 1])),
        "angle": rng.uniform(math.radians(90), math.radians(180)), "distance": rng.uniform(1.5, 3.0),
        "pitch": rng.uniform(-0.15, 0.05),
    }


def revisit_trajectory(world, num_frames: int, seed: int, template: str | None = None, *, fps: int = FPS,
                       max_speed: float = MAX_SPEED, max_angular_deg: float = MAX_ANGULAR_DEG,
                       margin: float = MARGIN, max_attempts: int = 16) -> tuple[np.ndarray, dict]:
    """A template path that returns to earlier viewpoints; `template` None draws one of REVISIT_TEMPLATES.

    Loops and figure-eights look along the path when the clip is long enough to turn at ≤ `max_angular_deg`
    (a loop turns 360°, 30 s at 12°/s); otherwise the camera keeps its initial heading ("fixed" orientation),
    which still revisits. `meta["revisit_pairs"]` holds `find_revisit_pairs` of the result, with the minimum gap
    shortened to a third of the clip for clips under 9 s.
    """
    _check_start(world, num_frames, margin)
    rng = np.random.default_rng([seed, _SALT["revisit"]])
    names = list(REVISIT_TEMPLATES)
    name = names[rng.integers(len(names))] if template is None else template
    if name not in REVISIT_TEMPLATES:
        raise UserError(f"unknown revisit template {name!r}; choose one of {names}")
    shape = REVISIT_TEMPLATES[name]
    dense = 16 * num_frames + 64
    duration = (num_frames - 1) / fps
    turning = shape(_template_params(rng), 1.0, dense, True)
    turn_time = step_times(*_dense_path(turning), np.inf, max_angular_deg).sum()
    heading = name == "orbit" or turn_time <= 0.9 * duration

    def draw():
        params = _template_params(rng)
        return lambda scale: _dense_path(shape(params, scale, dense, heading))

    fit = lambda build: _fit_to_duration(build, num_frames, fps, max_speed, max_angular_deg)
    c2w, scale, needed, attempts = _retrying(f"{name} revisit", world, margin, max_attempts, draw, fit)
    c2w = _finish(c2w)
    min_gap = max(1, min(48, num_frames // 3))
    pairs = find_revisit_pairs(c2w, min_gap=min_gap)
    meta = {"kind": "revisit", "template": name, "seed": int(seed),
            **_limits_meta(num_frames, fps, max_speed, max_angular_deg),
            "orientation": _ORIENTATION.get(name, "heading" if heading else "fixed"), "scale": scale,
            "traversal_s": needed,
            "attempts": attempts, "revisit_min_gap": min_gap, "revisit_pairs": [[int(i), int(j)] for i, j in pairs]}
    return c2w, meta


def _dense_path(path: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    positions, yaw, pitch = path
    return positions, make_continuous(quat_from_yaw_pitch(yaw, pitch))


def _keyframe_path(keys: np.ndarray, position_scale: float, angle_scale: float, dense_per_segment: int):
    """Dense (positions, quats) through keyframes [N, 5] (x, y, z, yaw°, pitch°), positions and angles scaled."""
    positions, segment, t = catmull_rom(keys[:, :3] * position_scale, dense_per_segment)
    angles = np.radians(keys[:, 3:5]) * angle_scale
    quats = make_continuous(quat_from_yaw_pitch(angles[:, 0], angles[:, 1]))
    return positions, squad(quats, squad_controls(quats), segment, t)


def _angle_scale(keys: np.ndarray, dense: int, duration: float, max_angular_deg: float) -> float:
    """1, or the factor the keyframe angles must shrink by so that turning alone (standing still) takes at most
    70 % of the clip at the angular limit (the rest is left for paths that walk and turn in turns)."""
    scale = 1.0
    for _ in range(12):
        positions, quats = _keyframe_path(keys, 0.0, scale, dense)
        needed = float(step_times(positions, quats, np.inf, max_angular_deg, len(positions) // 64).sum())
        if needed <= 0.7 * duration:
            return scale
        scale *= 0.7 * 0.98 * duration / needed
    raise UserError(f"cannot turn through the keyframes in {duration:g} s at {max_angular_deg}°/s")


def keyframe_trajectory(world, num_frames: int, draw: Callable[[], np.ndarray], *, kind: str = "keyframe",
                        fps: int = FPS, max_speed: float = MAX_SPEED, max_angular_deg: float = MAX_ANGULAR_DEG,
                        margin: float = MARGIN, max_attempts: int = 16) -> tuple[np.ndarray, dict]:
    """A path through keyframes drawn by `draw()` -> [N, 5] (x, y, z in metres, yaw°, pitch°; N >= 2, row 0 the
    start at the origin looking along +Z; consecutive keyframes at most 90° apart in yaw and in pitch, beyond which
    Squad can flip through a half turn), c2w `[num_frames, 4, 4]`.

    Joined as `waypoint_trajectory` does (Catmull-Rom, Squad, retimed at ≤ `max_speed` and ≤ `max_angular_deg`).
    Unlike it, the angles keep their values unless the clip is too short to turn through them at the limit even
    standing still in 70 % of it (then they shrink: meta `angle_scale` < 1); otherwise only the positions shrink to fit
    (`position_scale`). On a collision the positions shrink by 30 % up to 3 times (SANA-WM's retry, sana_wm.md
    §8.1), then `draw()` is called for a new layout.
    """
    _check_start(world, num_frames, margin)
    duration = (num_frames - 1) / fps
    for attempt in range(max_attempts):
        if attempt % 4 == 0:
            keys = np.asarray(draw(), dtype=np.float64)
            if keys.ndim != 2 or keys.shape[1] != 5 or len(keys) < 2:
                raise UserError(f"keyframes must have shape (N >= 2, 5), got {keys.shape}")
            if not np.allclose(keys[0], 0):
                raise UserError(f"{kind}: the first keyframe must be the start pose (origin, yaw 0, pitch 0)")
            if np.abs(np.diff(keys[:, 3:5], axis=0)).max() > 90:
                raise UserError(f"{kind}: consecutive keyframes turn more than 90° in yaw or pitch")
            dense = max(16, 12 * num_frames // (len(keys) - 1))
            angle_scale = _angle_scale(keys, dense, duration, max_angular_deg)
        shrink = 0.7 ** (attempt % 4)
        c2w, scale, needed = _fit_to_duration(
            lambda s, keys=keys, shrink=shrink, dense=dense, a=angle_scale: _keyframe_path(keys, shrink * s, a, dense),
            num_frames, fps, max_speed, max_angular_deg)
        if not world.collides(c2w[:, :3, 3], margin=margin).any():
            meta = {"kind": kind, **_limits_meta(num_frames, fps, max_speed, max_angular_deg),
                    "position_scale": shrink * scale, "angle_scale": angle_scale, "traversal_s": needed,
                    "attempts": attempt + 1, "keyframes_xyz_yaw_pitch": np.round(keys, 4).tolist()}
            return _finish(c2w), meta
    raise _no_path(kind, world, max_attempts, margin)
