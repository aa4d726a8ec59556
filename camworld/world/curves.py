"""Smooth camera paths: unit quaternions (slerp, Squad), centripetal Catmull-Rom splines and speed-limited
retiming of a densely sampled path into frames.

SANA-WM builds its benchmark trajectories this way (sana_wm.md §8.1): Catmull-Rom positions, Squad rotations,
arc-length reparameterisation, angular velocity clamped at 12°/s and speed at 0.4 m/s, 16 fps. Quaternions are
(w, x, y, z), float64. Rotations follow the DSL's OpenCV convention (sana_wm.md §4): yaw about world Y (positive
turns right, +Z toward +X), pitch about the camera's X (positive looks up, +Z toward −Y), R = rot_y(yaw)·rot_x(pitch).
"""

from __future__ import annotations

import numpy as np


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of `[..., 4]` quaternions."""
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack([
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ], axis=-1)


def quat_conj(q: np.ndarray) -> np.ndarray:
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def quat_log(q: np.ndarray) -> np.ndarray:
    """Log of unit quaternions `[..., 4]` -> pure-vector part `[..., 3]` (half the rotation vector)."""
    v = q[..., 1:]
    norm_v = np.linalg.norm(v, axis=-1, keepdims=True)
    half = np.arctan2(norm_v, q[..., :1])
    return np.where(norm_v > 1e-12, v * half / np.maximum(norm_v, 1e-12), v)


def quat_exp(v: np.ndarray) -> np.ndarray:
    """Inverse of `quat_log`: `[..., 3]` -> unit quaternions `[..., 4]`."""
    half = np.linalg.norm(v, axis=-1, keepdims=True)
    sinc = np.where(half > 1e-12, np.sin(half) / np.maximum(half, 1e-12), 1.0)
    return np.concatenate([np.cos(half), v * sinc], axis=-1)


def quat_from_matrix(rot: np.ndarray) -> np.ndarray:
    """Rotation matrices `[..., 3, 3]` -> unit quaternions `[..., 4]` with w >= 0 (Shepperd's method)."""
    rot = np.asarray(rot, dtype=np.float64)
    m = rot.reshape(-1, 3, 3)
    trace = m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2]
    candidates = np.stack([
        np.stack([1 + trace, m[:, 2, 1] - m[:, 1, 2], m[:, 0, 2] - m[:, 2, 0], m[:, 1, 0] - m[:, 0, 1]], -1),
        np.stack([m[:, 2, 1] - m[:, 1, 2], 1 + 2 * m[:, 0, 0] - trace, m[:, 0, 1] + m[:, 1, 0],
                  m[:, 0, 2] + m[:, 2, 0]], -1),
        np.stack([m[:, 0, 2] - m[:, 2, 0], m[:, 0, 1] + m[:, 1, 0], 1 + 2 * m[:, 1, 1] - trace,
                  m[:, 1, 2] + m[:, 2, 1]], -1),
        np.stack([m[:, 1, 0] - m[:, 0, 1], m[:, 0, 2] + m[:, 2, 0], m[:, 1, 2] + m[:, 2, 1],
                  1 + 2 * m[:, 2, 2] - trace], -1),
    ], axis=1)
    # Each candidate is 4·q·q_k for the k it is built around; the one with the largest q_k is the best conditioned.
    best = np.argmax(np.stack([trace, m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]], -1), axis=-1)
    q = candidates[np.arange(len(m)), best]
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    q *= np.where(q[:, :1] < 0, -1.0, 1.0)
    return q.reshape(rot.shape[:-2] + (4,))


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Unit quaternions `[..., 4]` -> rotation matrices `[..., 3, 3]`."""
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], axis=-2)


def quat_from_yaw_pitch(yaw: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """Quaternions of R = rot_y(yaw)·rot_x(pitch) (radians, DSL convention), `[...]` -> `[..., 4]`."""
    yaw, pitch = np.asarray(yaw, dtype=np.float64), np.asarray(pitch, dtype=np.float64)
    zero = np.zeros_like(yaw)
    q_yaw = np.stack([np.cos(yaw / 2), zero, np.sin(yaw / 2), zero], -1)
    q_pitch = np.stack([np.cos(pitch / 2), np.sin(pitch / 2) + zero, zero, zero], -1)
    return quat_mul(q_yaw, q_pitch)


def make_continuous(q: np.ndarray) -> np.ndarray:
    """Flip signs along a sequence `[N, 4]` so neighbours lie in the same hemisphere (shortest interpolation)."""
    q = q.copy()
    for n in range(1, len(q)):
        if np.dot(q[n - 1], q[n]) < 0:
            q[n] = -q[n]
    return q


def slerp(q0: np.ndarray, q1: np.ndarray, t) -> np.ndarray:
    """Spherical linear interpolation `[..., 4]`, broadcasting over t; takes the shorter arc."""
    t = np.asarray(t, dtype=np.float64)[..., None]
    dot = np.sum(q0 * q1, axis=-1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)
    dot = np.abs(dot)
    theta = np.arccos(np.clip(dot, -1.0, 1.0))
    sin_theta = np.sin(theta)
    close = sin_theta < 1e-9
    w0 = np.where(close, 1 - t, np.sin((1 - t) * theta) / np.where(close, 1.0, sin_theta))
    w1 = np.where(close, t, np.sin(t * theta) / np.where(close, 1.0, sin_theta))
    out = w0 * q0 + w1 * q1
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


def squad_controls(q: np.ndarray) -> np.ndarray:
    """Squad inner control points s_i = q_i·exp(−(log(q_i⁻¹q_{i+1}) + log(q_i⁻¹q_{i−1}))/4), ends clamped. `[N, 4]`."""
    q = make_continuous(q)
    prev = np.concatenate([q[:1], q[:-1]])
    nxt = np.concatenate([q[1:], q[-1:]])
    inv = quat_conj(q)
    tangent = quat_log(quat_mul(inv, nxt)) + quat_log(quat_mul(inv, prev))
    return quat_mul(q, quat_exp(-tangent / 4))


def squad(q: np.ndarray, s: np.ndarray, segment: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Evaluate Squad between keys q[segment] and q[segment+1] at local t in [0, 1]; `[M]` -> `[M, 4]`."""
    q = make_continuous(q)
    a, b = q[segment], q[segment + 1]
    sa, sb = s[segment], s[segment + 1]
    return slerp(slerp(a, b, t), slerp(sa, sb, t), 2 * t * (1 - t))


def catmull_rom(points: np.ndarray, samples_per_segment: int, alpha: float = 0.5):
    """Centripetal (alpha = 0.5) Catmull-Rom spline through `points` `[N, 3]`, N >= 2, with mirrored end points.

    Returns (positions [M, 3], segment [M] int, t [M] local parameter in [0, 1]), M = (N−1)·samples + 1, so rotation
    keys at the same points can be evaluated with `squad` at identical parameters.
    """
    p = np.asarray(points, dtype=np.float64)
    ext = np.concatenate([2 * p[:1] - p[1:2], p, 2 * p[-1:] - p[-2:-1]])
    steps = np.maximum(np.linalg.norm(np.diff(ext, axis=0), axis=-1) ** alpha, 1e-6)
    knots = np.concatenate([[0.0], np.cumsum(steps)])
    n_seg = len(p) - 1
    segment = np.repeat(np.arange(n_seg), samples_per_segment)
    t = np.tile(np.arange(samples_per_segment) / samples_per_segment, n_seg)
    segment = np.append(segment, n_seg - 1)
    t = np.append(t, 1.0)
    k0, k1, k2, k3 = (knots[segment + i][:, None] for i in range(4))
    p0, p1, p2, p3 = (ext[segment + i] for i in range(4))
    u = k1 + t[:, None] * (k2 - k1)
    # Barry-Goldman pyramid: three linear blends, then two, then one.
    a1 = (k1 - u) / (k1 - k0) * p0 + (u - k0) / (k1 - k0) * p1
    a2 = (k2 - u) / (k2 - k1) * p1 + (u - k1) / (k2 - k1) * p2
    a3 = (k3 - u) / (k3 - k2) * p2 + (u - k2) / (k3 - k2) * p3
    b1 = (k2 - u) / (k2 - k0) * a1 + (u - k0) / (k2 - k0) * a2
    b2 = (k3 - u) / (k3 - k1) * a2 + (u - k1) / (k3 - k1) * a3
    positions = (k2 - u) / (k2 - k1) * b1 + (u - k1) / (k2 - k1) * b2
    return positions, segment, t


def _dilate_then_average(x: np.ndarray, radius: int) -> np.ndarray:
    """A running max then a running mean over the same window: smooth, and never below x anywhere."""
    if radius <= 0 or len(x) < 2:
        return x
    padded = np.pad(x, radius, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1)
    dilated = np.pad(windows.max(axis=-1), radius, mode="edge")
    return np.lib.stride_tricks.sliding_window_view(dilated, 2 * radius + 1).mean(axis=-1)


def step_times(positions: np.ndarray, quats: np.ndarray, max_speed: float, max_angular_deg: float,
               smooth_radius: int = 0) -> np.ndarray:
    """Seconds each dense step needs so neither speed (m/s) nor angular speed (°/s) exceeds its limit, `[M−1]`.

    Arc-length parameterisation generalised to rotation: a step of length ds turning dθ takes
    max(ds / v_max, dθ / ω_max). SANA-WM Laplacian-smooths the path instead; we smooth these times with a running
    max then mean (`smooth_radius` steps), which keeps every step at or under both limits.
    """
    ds = np.linalg.norm(np.diff(positions, axis=0), axis=-1)
    dot = np.abs(np.sum(quats[1:] * quats[:-1], axis=-1))
    dtheta = 2 * np.degrees(np.arccos(np.clip(dot, -1.0, 1.0)))
    dt = np.maximum(ds / max_speed, dtheta / max_angular_deg)
    return _dilate_then_average(dt, smooth_radius)


def resample_in_time(positions: np.ndarray, quats: np.ndarray, dt: np.ndarray, num_frames: int):
    """Sample a dense path at `num_frames` equally spaced times along its cumulative step times `dt`.

    Returns (positions [F, 3], quats [F, 4]). Chords are never longer than the arcs they cut, so if the whole path
    takes at most (F−1)/fps seconds, consecutive frames respect the limits `dt` was built with.
    """
    times = np.concatenate([[0.0], np.cumsum(dt)])
    if times[-1] <= 0:
        return np.repeat(positions[:1], num_frames, 0), np.repeat(quats[:1], num_frames, 0)
    targets = np.linspace(0.0, times[-1], num_frames)
    j = np.clip(np.searchsorted(times, targets, side="right") - 1, 0, len(times) - 2)
    span = times[j + 1] - times[j]
    frac = np.where(span > 0, (targets - times[j]) / np.where(span > 0, span, 1.0), 0.0)
    pos = positions[j] + frac[:, None] * (positions[j + 1] - positions[j])
    return pos, slerp(quats[j], quats[j + 1], frac)


def poses_from(positions: np.ndarray, quats: np.ndarray) -> np.ndarray:
    """c2w `[F, 4, 4]` float64 from positions `[F, 3]` and quaternions `[F, 4]`."""
    c2w = np.tile(np.eye(4), (len(positions), 1, 1))
    c2w[:, :3, :3] = quat_to_matrix(quats)
    c2w[:, :3, 3] = positions
    return c2w
