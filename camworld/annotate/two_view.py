"""OpenCV two-view geometry: SIFT keypoints, ratio-test matching and essential-matrix relative rotations.

These are the independent measurements the annotator checks structure from motion against (feasibility_cpu.md §5:
COLMAP can return plausible but wrong rotations on forward walks, while the essential matrix between nearby frames
gives good pairwise rotations, 0.4-1.8° median) and the matches the OpenCV fallback chain is built from.
Pixel convention: keypoint (u, v) with pixel centres at integers, as camworld's intrinsics.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

RATIO = 0.8
MIN_INLIERS = 30


@dataclass
class FrameFeatures:
    """SIFT keypoints `[N, 2]` (u, v) and descriptors `[N, 128]` float32 of one frame."""

    uv: np.ndarray
    desc: np.ndarray


def detect(frames: np.ndarray, max_features: int = 2000) -> list[FrameFeatures]:
    """SIFT on every uint8 frame `[F, H, W, 3]`."""
    sift = cv2.SIFT_create(nfeatures=max_features)
    out = []
    for frame in frames:
        grey = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
        kps, desc = sift.detectAndCompute(grey, None)
        uv = np.array([kp.pt for kp in kps], dtype=np.float64).reshape(-1, 2)
        out.append(FrameFeatures(uv, desc if desc is not None else np.zeros((0, 128), np.float32)))
    return out


def match(a: FrameFeatures, b: FrameFeatures, ratio: float = RATIO) -> np.ndarray:
    """Mutual-nearest matches passing Lowe's ratio test: index pairs `[M, 2]` into a and b."""
    if len(a.desc) < 2 or len(b.desc) < 2:
        return np.zeros((0, 2), dtype=np.int64)
    matcher = cv2.BFMatcher(cv2.NORM_L2)
    forward = matcher.knnMatch(a.desc, b.desc, k=2)
    backward = {m.queryIdx: m.trainIdx for m in matcher.match(b.desc, a.desc)}
    pairs = [(m.queryIdx, m.trainIdx) for m, n in (p for p in forward if len(p) == 2)
             if m.distance < ratio * n.distance and backward.get(m.trainIdx) == m.queryIdx]
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def relative_rotation(uv_a: np.ndarray, uv_b: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, int] | None:
    """Rotation R_ba (camera a -> camera b, x_b = R_ba x_a + t) from matched pixels `[M, 2]` by the essential
    matrix (RANSAC, 5-point); returns (R [3, 3], inlier count) or None if too few inliers."""
    if len(uv_a) < MIN_INLIERS:
        return None
    K = np.asarray(K, dtype=np.float64)
    E, mask = cv2.findEssentialMat(uv_a, uv_b, K, method=cv2.RANSAC, prob=0.999, threshold=1.0)
    if E is None or E.shape != (3, 3) or mask is None or int(mask.sum()) < MIN_INLIERS:
        return None
    # Of E's two rotations keep the smaller one: nearby video frames turn far less than the 180° that separates
    # them. recoverPose's cheirality vote is unreliable here, since near-pure rotations put points at infinity.
    r1, r2, _ = cv2.decomposeEssentialMat(E)
    R = min((r1, r2), key=lambda r: float(rotation_angle_deg(r)))
    return R, int(mask.sum())


def rotation_angle_deg(R: np.ndarray) -> np.ndarray:
    """Angle of rotation matrices `[..., 3, 3]` in degrees."""
    cos = (np.trace(R, axis1=-2, axis2=-1) - 1) / 2
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def essential_rotations(features: list[FrameFeatures], K: np.ndarray,
                        pairs: list[tuple[int, int]]) -> dict[tuple[int, int], np.ndarray]:
    """R_ji for each frame pair (i, j) whose essential matrix could be estimated; K `[F, 3, 3]` or `[3, 3]`.
    With per-frame intrinsics the pixels of b are first mapped into a's camera (the rotation is unchanged)."""
    K = np.asarray(K, dtype=np.float64)
    out = {}
    for i, j in pairs:
        idx = match(features[i], features[j])
        uv_i, uv_j = features[i].uv[idx[:, 0]], features[j].uv[idx[:, 1]]
        K_i = K if K.ndim == 2 else K[i]
        if K.ndim == 3:
            uv_j = _reproject_pixels(uv_j, K[j], K_i)
        result = relative_rotation(uv_i, uv_j, K_i)
        if result is not None:
            out[(i, j)] = result[0]
    return out


def _reproject_pixels(uv: np.ndarray, K_from: np.ndarray, K_to: np.ndarray) -> np.ndarray:
    homog = np.column_stack([uv, np.ones(len(uv))])
    mapped = (K_to @ np.linalg.inv(K_from) @ homog.T).T
    return mapped[:, :2] / mapped[:, 2:]
