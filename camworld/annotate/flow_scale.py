"""The metric scale of an up-to-scale trajectory from dense optical flow and predicted metric depth.

Our addition to SANA-WM's metric-scale step (sana_wm.md §7.2), used when the depth is predicted (the depth net),
not measured. For frame pairs (i, i + g), DIS optical flow (OpenCV) gives where each pixel of frame i lands in frame
j; a pixel lifted with its metric depth d_i and moved by the trajectory's relative pose (R, s·t) lands at

    u_j(s) = π(K (R d_i K⁻¹ u_i + s t)),

so each pixel with parallax fixes one translation scale s: the least-squares solution of u_j(s) = flow target,
after multiplying out the projection (linear in s). The per-clip scale is the median of log s over all pixels and
pairs, weighted by each pixel's parallax (pixels per unit log s). Pixels whose forward and backward flow disagree
(occlusions, textureless areas), that leave the image, or move less than a pixel with s are not used.

Why: the depth-PnP chain (vo_opencv.py) fixes the scale from the depth at SIFT keypoints, which sit on corners and
edges where a small depth net is worst; this estimate averages the net's depth over every textured pixel. Measured
with the shipped net on the annotator's trajectories of world clips (docs/results/annotation.md): within 10 % on 14 of
17 clips, against the chain's 10, when chosen; then on 9 of 11 held-out clips, against 8. With exact depth maps the
chain is the better of the two for COLMAP (it solves its own rotations, while this takes the engine's, and COLMAP's
orbit rotations bias it by up to 11 %), so there measured depth keeps the chain (pipeline.py). The OpenCV engine's
trajectory, solved again from the flow (flow_translations.py), is scaled by this with either depth.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from camworld.annotate.vo_opencv import sample_depth
from camworld.errors import UserError

PAIR_GAPS = (4, 8)
PIXEL_STRIDE = 4
MAX_FORWARD_BACKWARD_PX = 1.0
MIN_PARALLAX_PX = 1.0
MIN_PIXELS = 500


@dataclass
class FlowScale:
    """The per-clip scale, how many pixel estimates made it and over how many frame pairs."""

    scale: float
    pixels: int
    pairs: int


def grid_pixels(image_hw: tuple[int, int], stride: int = PIXEL_STRIDE) -> np.ndarray:
    """Pixel coordinates `[N, 2]` (x, y) of a regular grid with `stride`, offset by half a stride."""
    ys, xs = np.mgrid[stride // 2:image_hw[0]:stride, stride // 2:image_hw[1]:stride]
    return np.column_stack([xs.ravel(), ys.ravel()]).astype(np.float64)


class DenseFlow:
    """DIS optical flow (OpenCV) between frames of one clip, on the grid pixels `uv` `[N, 2]`. Each pair is computed
    once and kept, since the flow scale and the translation averaging ask for the same pairs (about 16 bytes per
    grid pixel per pair)."""

    def __init__(self, frames: np.ndarray):
        self.image_hw = frames.shape[1:3]
        self.uv = grid_pixels(self.image_hw)
        self._gray = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in frames]
        self._engine = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        self._pairs: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def pair(self, i: int, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Where the grid pixels of frame i land in frame j `[N, 2]`, and the bool mask `[N]` of pixels that stay
        in the image and whose backward flow returns them within MAX_FORWARD_BACKWARD_PX."""
        if (i, j) not in self._pairs:
            self._pairs[i, j] = self._compute(i, j)
        return self._pairs[i, j]

    def _compute(self, i: int, j: int) -> tuple[np.ndarray, np.ndarray]:
        height, width = self.image_hw
        forward = self._engine.calc(self._gray[i], self._gray[j], None)
        backward = self._engine.calc(self._gray[j], self._gray[i], None)
        ix = self.uv.astype(int)
        moved = forward[ix[:, 1], ix[:, 0]].astype(np.float64)
        target = self.uv + moved
        inside = ((target[:, 0] >= 0) & (target[:, 0] <= width - 1) & (target[:, 1] >= 0)
                  & (target[:, 1] <= height - 1))
        at = np.clip(np.round(target).astype(int), 0, [width - 1, height - 1])
        returned = np.linalg.norm(moved + backward[at[:, 1], at[:, 0]], axis=1)
        return target, inside & (returned < MAX_FORWARD_BACKWARD_PX)

    def depth_at_grid(self, depth_map: np.ndarray) -> np.ndarray:
        """The metric depth `[N]` of the grid pixels, read from a depth map `[h, w]` of any size."""
        return sample_depth(depth_map, self.uv, self.image_hw)


def rotated_projection(uv: np.ndarray, depth: np.ndarray, K: np.ndarray, R: np.ndarray) -> np.ndarray:
    """K R x_i `[N, 3]` = (a_x, a_y, c) for pixels uv `[N, 2]` lifted with depth `[N]` (metres): where frame j's
    camera sees each point before the translation, in homogeneous pixels."""
    rays = np.column_stack([uv, np.ones(len(uv))]) @ np.linalg.inv(K).T
    return (rays * depth[:, None]) @ R.T @ K.T


def pixel_scales(uv: np.ndarray, target: np.ndarray, depth: np.ndarray, K: np.ndarray, R: np.ndarray,
                 t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel, the scale s with u_j(s) closest to `target` (least squares on the projection multiplied out) and
    its parallax in pixels per unit log s (0 where the rotated point is behind camera j). uv, target `[N, 2]`,
    depth `[N]` (metres), K `[3, 3]`, R `[3, 3]`, t `[3]` with x_j = R x_i + s t. Returns (s `[N]`, parallax `[N]`)."""
    rotated = rotated_projection(uv, depth, K, R)  # (a_x, a_y, c)
    moved = K @ t  # (b_x, b_y, b_z)
    a, c = rotated[:, :2], rotated[:, 2]
    # target·(c + s b_z) = a + s b  <=>  s (target b_z − b) = a − target c, two equations per pixel
    e = target * moved[2] - moved[:2]
    r = a - target * c[:, None]
    norm2 = (e * e).sum(1)
    s = (e * r).sum(1) / np.maximum(norm2, 1e-12)
    parallax = np.sqrt(norm2) * np.abs(s) / np.maximum(np.abs(c + s * moved[2]), 1e-9)
    return s, np.where(c > 0, parallax, 0.0)  # a point rotated behind camera j has no usable parallax


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """The value below which half the total weight lies (values `[N]`, weights `[N]` >= 0)."""
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, 0.5 * cumulative[-1])])


def flow_scale(frames: np.ndarray, c2w: np.ndarray, K: np.ndarray, depth: np.ndarray, registered: np.ndarray,
               gaps: tuple[int, ...] = PAIR_GAPS, flow: DenseFlow | None = None) -> FlowScale:
    """Scale of trajectory c2w `[F, 4, 4]` (any units) that makes it agree with metric depth `[F, h, w]` through the
    optical flow of uint8 frames `[F, H, W, 3]` with intrinsics K `[3, 3]`; only pairs of registered `[F]` frames.
    `flow`: the clip's DenseFlow, if one is already at hand. Raises UserError when too few pixels have parallax (a
    camera that barely moves fixes no scale)."""
    K = np.asarray(K, np.float64)
    flow = flow if flow is not None else DenseFlow(frames)
    log_scales, weights, pairs = [], [], 0
    for gap in gaps:
        for i in range(len(frames) - gap):
            j = i + gap
            if not (registered[i] and registered[j]):
                continue
            relative = np.linalg.inv(np.asarray(c2w[j], np.float64)) @ np.asarray(c2w[i], np.float64)
            R, t = relative[:3, :3], relative[:3, 3]
            if t @ t < 1e-12:
                continue
            target, ok = flow.pair(i, j)
            d = flow.depth_at_grid(depth[i])
            ok = ok & np.isfinite(d) & (d > 0)
            s, parallax = pixel_scales(flow.uv[ok], target[ok], d[ok], K, R, t)
            good = (s > 0) & (parallax > MIN_PARALLAX_PX)
            log_scales.append(np.log(s[good]))
            weights.append(parallax[good])
            pairs += 1
    if pairs == 0 or sum(len(v) for v in log_scales) < MIN_PIXELS:
        raise UserError(f"flow scale: fewer than {MIN_PIXELS} pixels move with the camera; the clip fixes no scale")
    log_scales, weights = np.concatenate(log_scales), np.concatenate(weights)
    return FlowScale(float(np.exp(weighted_median(log_scales, weights))), len(log_scales), pairs)
