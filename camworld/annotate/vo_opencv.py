"""The fallback pose engine: an OpenCV visual-odometry chain with metric depth (PnP against a keyframe).

When COLMAP fails its checks (too few frames in one model, or rotations that disagree with the essential
matrices, the forward-walk failure of feasibility_cpu.md §5), the annotator chains frames with OpenCV instead.
A plain essential-matrix chain has noisy translation directions and no consistent scale on forward motion, so,
like RGB-D odometry, this chain lifts the keyframe's SIFT keypoints to 3D with the metric depth the scale step uses
anyway (the depth net or --depth-dir maps) and solves each frame's pose by PnP + RANSAC against them. Its
translations are therefore already metric, up to the depth's error; its rotations are checked like COLMAP's.
"""

from __future__ import annotations

import cv2
import numpy as np

from camworld.annotate import two_view
from camworld.annotate.sfm_result import SfMResult

KEYFRAME_GAP = 6
MIN_PNP_POINTS = 12
REPROJECTION_PX = 2.0


def sample_depth(depth_map: np.ndarray, uv: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray:
    """Depth `[N]` at pixels `[N, 2]` of an `image_hw` image, read from `depth_map` `[h, w]` of any size (nearest)."""
    height, width = depth_map.shape
    scale = np.array([width / image_hw[1], height / image_hw[0]])
    idx = np.clip(np.round((uv + 0.5) * scale - 0.5).astype(int), 0, [width - 1, height - 1])
    return depth_map[idx[:, 1], idx[:, 0]].astype(np.float64)


def lift(uv: np.ndarray, depth_map: np.ndarray, K: np.ndarray,
         image_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Camera-frame points `[M, 3]` of pixels `[N, 2]` that have a valid depth in `depth_map`, and the bool mask
    `[N]` of which pixels had one."""
    z = sample_depth(depth_map, uv, image_hw)
    ok = np.isfinite(z) & (z > 0)
    rays = np.column_stack([(uv[:, 0] - K[0, 2]) / K[0, 0], (uv[:, 1] - K[1, 2]) / K[1, 1], np.ones(len(uv))])
    return rays[ok] * z[ok, None], ok


def _pnp(points: np.ndarray, uv: np.ndarray, K: np.ndarray):
    """World-to-camera (R, t) of pixels `[N, 2]` seeing world points `[N, 3]`, with the inlier indices; or None."""
    if len(points) < MIN_PNP_POINTS:
        return None
    ok, rvec, tvec, inliers = cv2.solvePnPRansac(points, uv, K, None, reprojectionError=REPROJECTION_PX,
                                                 iterationsCount=300, confidence=0.999, flags=cv2.SOLVEPNP_EPNP)
    if not ok or inliers is None or len(inliers) < MIN_PNP_POINTS:
        return None
    inliers = inliers[:, 0]
    rvec, tvec = cv2.solvePnPRefineLM(points[inliers], uv[inliers], K, None, rvec, tvec)
    return cv2.Rodrigues(rvec)[0], tvec[:, 0], inliers


def run_opencv_chain(frames: np.ndarray, K: np.ndarray, depth: np.ndarray,
                     features: list[two_view.FrameFeatures] | None = None) -> SfMResult:
    """Chain uint8 frames `[F, H, W, 3]` with intrinsics K `[3, 3]` and metric depth `[F, h, w]` (metres)."""
    K = np.asarray(K, dtype=np.float64)
    features = features if features is not None else two_view.detect(frames)
    num, image_hw = len(frames), frames.shape[1:3]
    c2w = np.full((num, 4, 4), np.nan)
    c2w[0] = np.eye(4)
    registered = np.zeros(num, dtype=bool)
    registered[0] = True
    observations = [(np.zeros((0, 2)), np.zeros(0))] * num
    errors = []
    key = 0
    for j in range(1, num):
        pairs = two_view.match(features[key], features[j])
        cam_points, ok = lift(features[key].uv[pairs[:, 0]], depth[key], K, image_hw)
        world = cam_points @ c2w[key, :3, :3].T + c2w[key, :3, 3]
        uv_j = features[j].uv[pairs[ok, 1]]
        solved = _pnp(world, uv_j, K)
        if solved is None:
            # Re-anchor on the last registered frame so one bad frame does not end the chain.
            key = max(f for f in range(j) if registered[f])
            continue
        rot, trans, inliers = solved
        c2w[j] = np.eye(4)
        c2w[j, :3, :3], c2w[j, :3, 3] = rot.T, -rot.T @ trans
        registered[j] = True
        cam_j = world[inliers] @ rot.T + trans
        projected = cam_j @ K.T
        errors.append(np.linalg.norm(projected[:, :2] / projected[:, 2:] - uv_j[inliers], axis=1))
        observations[j] = (uv_j[inliers], cam_j[:, 2])
        if j - key >= KEYFRAME_GAP:
            key = j
    first_points, ok = lift(features[0].uv, depth[0], K, image_hw)
    observations[0] = (features[0].uv[ok], first_points[:, 2])
    error = float(np.concatenate(errors).mean()) if errors else float("nan")
    return SfMResult(c2w, registered, K, observations, error, "opencv", {"keyframe_gap": KEYFRAME_GAP})
