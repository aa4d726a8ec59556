"""What a pose engine returns (`SfMResult`), and filling the poses of frames it could not register.

Poses are OpenCV camera-to-world in the engine's own gauge (arbitrary scale, origin and orientation); each frame
carries the engine's observations of triangulated points, (u, v) pixels and the point's depth in that camera, which
the metric-scale step compares with a metric depth map (sana_wm.md §7.2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class SfMResult:
    """c2w float64 `[F, 4, 4]` (NaN rows for unregistered frames), registered bool `[F]`, K float64 `[3, 3]`
    (pixels, centres at integers), per-frame observations [(uv [N, 2], depth [N])], the mean reprojection
    error in pixels, the engine's name and free-form notes for the metadata."""

    c2w: np.ndarray
    registered: np.ndarray
    K: np.ndarray
    observations: list[tuple[np.ndarray, np.ndarray]]
    reprojection_px: float
    engine: str
    notes: dict = field(default_factory=dict)

    @property
    def registered_fraction(self) -> float:
        return float(self.registered.mean())


def _slerp(r0: np.ndarray, r1: np.ndarray, t: float) -> np.ndarray:
    """Rotation a fraction t of the way from r0 to r1 (both `[3, 3]`), by the axis-angle of r0ᵀ r1."""
    import cv2

    rel = r0.T @ r1
    vec, _ = cv2.Rodrigues(rel)
    step, _ = cv2.Rodrigues(vec * t)
    return r0 @ step


def fill_unregistered(c2w: np.ndarray, registered: np.ndarray) -> np.ndarray:
    """Poses `[F, 4, 4]` for every frame: an unregistered frame between two registered ones is interpolated
    (slerp rotation, linear centre, by frame index); before the first / after the last it copies the nearest."""
    known = np.flatnonzero(registered)
    if len(known) == 0:
        raise ValueError("no registered frame to fill from")
    out = np.array(c2w, dtype=np.float64)
    for f in np.flatnonzero(~registered):
        after = known[known > f]
        before = known[known < f]
        if len(before) == 0 or len(after) == 0:
            out[f] = out[after[0] if len(before) == 0 else before[-1]]
            continue
        a, b = before[-1], after[0]
        t = (f - a) / (b - a)
        out[f] = np.eye(4)
        out[f, :3, :3] = _slerp(out[a, :3, :3], out[b, :3, :3], t)
        out[f, :3, 3] = (1 - t) * out[a, :3, 3] + t * out[b, :3, 3]
    return out
