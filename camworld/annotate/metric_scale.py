"""The metric-scale step (sana_wm.md §7.2): SfM structure is up to scale; metric depth fixes it.

Per frame t, with SfM depths d_P and metric depths d_M at the frame's triangulated points, s_t minimises
Σ w (s·d_P − d_M)² with inverse-depth weights w = 1/d_M: s_t = Σ w d_P d_M / Σ w d_P². The per-frame scales are
then smoothed over time, by SANA-WM's EMA (momentum 0.99) or by a robust median, and give a per-clip multiplier
on the translations (SANA-WM's training data stores a per-clip scale). Deliberate difference: the per-clip value of
the EMA mode is the median of the EMA track (SANA-WM does not say which value it stores).

`sim3_scale` maps one trajectory onto another: an Umeyama Sim(3) of the camera centres, refitted on the 80 % of
frames with the smallest residuals (SANA-WM's 80th-percentile inlier filtering). GT-pose mode fits the SfM
trajectory to the known poses with it; with measured depth the annotator fits it to the metric-depth PnP chain
(vo_opencv.py) instead of using the per-frame structure scale, and with predicted depth it uses the dense flow scale
(flow_scale.py); see pipeline.py for why.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from camworld.annotate.vo_opencv import sample_depth
from camworld.camera import relativize, umeyama_sim3
from camworld.errors import UserError

MIN_POINTS_PER_FRAME = 8
RATIO_INLIER_FACTOR = 1.25
EMA_MOMENTUM = 0.99
INLIER_PERCENTILE = 80.0
SMOOTHING = ("median", "ema")


@dataclass
class ScaleEstimate:
    """The per-clip scale, the raw per-frame scales `[F]` (NaN where a frame had too few points) and how the
    per-clip value was made."""

    scale: float
    per_frame: np.ndarray
    method: str

    @property
    def coefficient_of_variation(self) -> float:
        """std(s_t) / mean(s_t) over frames with a scale (SANA-WM's metric-scale filter, §7.4)."""
        valid = self.per_frame[np.isfinite(self.per_frame)]
        return float(valid.std() / valid.mean()) if len(valid) > 1 and valid.mean() > 0 else float("nan")


def frame_scale(d_sfm: np.ndarray, d_metric: np.ndarray) -> float:
    """s = Σ w d_P d_M / Σ w d_P² with w = 1/d_M over points with finite, positive depths in both whose ratio
    d_M / d_P is within a factor RATIO_INLIER_FACTOR of the frame's median ratio; NaN if fewer than
    MIN_POINTS_PER_FRAME such points.

    The ratio gate is our addition: SfM points sit on corners and edges, where a depth map read at the keypoint
    often gives the other side of the edge, and the 1/d weights let a few such near-depth misreads pull the scale
    (measured: −13 % on a 64-frame orbit with exact depth maps, within 2 % with the gate)."""
    d_sfm, d_metric = np.asarray(d_sfm, np.float64), np.asarray(d_metric, np.float64)
    ok = np.isfinite(d_sfm) & np.isfinite(d_metric) & (d_sfm > 0) & (d_metric > 0)
    if ok.sum() < MIN_POINTS_PER_FRAME:
        return float("nan")
    ratio = d_metric[ok] / d_sfm[ok]
    gate = np.abs(np.log(ratio / np.median(ratio))) <= np.log(RATIO_INLIER_FACTOR)
    if gate.sum() < MIN_POINTS_PER_FRAME:
        return float("nan")
    p, m = d_sfm[ok][gate], d_metric[ok][gate]
    w = 1.0 / m
    return float((w * p * m).sum() / (w * p * p).sum())


def ema(values: np.ndarray, momentum: float = EMA_MOMENTUM) -> np.ndarray:
    """Exponential moving average over frames, skipping NaNs (the track holds its value through them)."""
    out = np.full(len(values), np.nan)
    state = np.nan
    for i, v in enumerate(values):
        if np.isfinite(v):
            state = v if not np.isfinite(state) else momentum * state + (1 - momentum) * v
        out[i] = state
    return out


def fuse_scale(observations: list[tuple[np.ndarray, np.ndarray]], depth: np.ndarray, image_hw: tuple[int, int],
               smoothing: str = "median") -> ScaleEstimate:
    """Per-clip metric scale from per-frame observations [(uv [N, 2], SfM depth [N])] and metric depth maps
    `[F, h, w]` (any resolution; pixels are rescaled)."""
    if smoothing not in SMOOTHING:
        raise UserError(f"unknown scale smoothing {smoothing!r}; choose one of {', '.join(SMOOTHING)}")
    per_frame = np.array([frame_scale(d_p, sample_depth(depth[t], uv, image_hw)) if len(uv) else np.nan
                          for t, (uv, d_p) in enumerate(observations)])
    valid = per_frame[np.isfinite(per_frame)]
    if len(valid) == 0:
        raise UserError("metric scale: no frame has enough triangulated points with a valid metric depth")
    if smoothing == "median":
        scale = float(np.median(valid))
    else:
        track = ema(per_frame)
        scale = float(np.median(track[np.isfinite(track)]))
    return ScaleEstimate(scale, per_frame, smoothing)


def path_length(c2w: np.ndarray) -> float:
    """Total distance travelled by the camera centres of c2w `[F, 4, 4]`."""
    return float(np.linalg.norm(np.diff(np.asarray(c2w)[:, :3, 3], axis=0), axis=1).sum())


def sim3_scale(src_c2w: np.ndarray, dst_c2w: np.ndarray) -> tuple[float, dict]:
    """Scale mapping the camera centres of trajectory src onto those of dst (both c2w `[F, 4, 4]`, made relative
    to frame 0): Umeyama Sim(3), refitted on the frames whose residual is within the 80th percentile.
    Returns (scale, {"inliers": count, "rmse_m": inlier residual RMS in dst's units})."""
    src = relativize(np.asarray(src_c2w, np.float64))[:, :3, 3]
    dst = relativize(np.asarray(dst_c2w, np.float64))[:, :3, 3]
    scale, rot, trans = umeyama_sim3(src, dst)
    residual = np.linalg.norm(scale * src @ rot.T + trans - dst, axis=1)
    keep = residual <= np.percentile(residual, INLIER_PERCENTILE)
    if keep.sum() >= 3:
        scale, rot, trans = umeyama_sim3(src[keep], dst[keep])
    residual = np.linalg.norm(scale * src[keep] @ rot.T + trans - dst[keep], axis=1)
    return float(scale), {"inliers": int(keep.sum()), "rmse_m": float(np.sqrt((residual**2).mean()))}


def gt_pose_scale(sfm_c2w: np.ndarray, gt_c2w: np.ndarray) -> tuple[float, dict]:
    """GT-pose mode: `sim3_scale` of the SfM trajectory onto known metric poses (both `[F, 4, 4]`)."""
    if len(sfm_c2w) != len(gt_c2w):
        raise UserError(f"--gt-poses has {len(gt_c2w)} poses for {len(sfm_c2w)} frames")
    dst = relativize(np.asarray(gt_c2w, np.float64))[:, :3, 3]
    if np.linalg.norm(dst - dst.mean(0), axis=1).max() < 1e-6:
        raise UserError("--gt-poses: the known camera never moves, so it fixes no scale")
    return sim3_scale(sfm_c2w, gt_c2w)
