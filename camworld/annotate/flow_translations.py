"""Dense translation averaging: the OpenCV chain's camera centres re-solved from optical flow and metric depth.

Our addition (SANA-WM's annotator has its own dense SLAM, sana_wm.md §7.2). The depth-PnP chain (vo_opencv.py)
solves each frame against a keyframe's SIFT keypoints lifted with the metric depth. With the depth net's errors at
those keypoints its translations wander (measured on four world orbits: 4.1–7.3 % of the path after Sim(3)) while
its rotations hold (0.09–0.19°). So the rotations are kept and the translations solved again, densely: for frame
pairs (i, i + g), every pixel of frame i whose forward and backward DIS flow agree, lifted with its depth and
rotated, gives two equations linear in the pair's translation t_ij (the projection multiplied out, as in
flow_scale.py); t_ij is their Huber-weighted least-squares solution (iteratively reweighted, 1 px). Then the
centres solve C_i − C_j = R_j t_ij over all pairs by least squares, the first registered frame held where the chain
put it (and every centre pulled faintly towards the chain's, which decides only those no pair reaches).

The result's overall scale is not to be trusted (2–38 % short on seven world clips; our guess, not measured, is
that pixels whose flow is smoothed towards zero pull the pair translations in); the flow scale, a median, sets it
afterwards (pipeline.py). Its shape is: on
those seven clips, with the depth net, translation error 0.95–3.75 % of the path against the chain's 1.8–7.3 %.
"""

from __future__ import annotations

import numpy as np

from camworld.annotate.flow_scale import DenseFlow, rotated_projection

PAIR_GAPS = (1, 2, 4, 8)
HUBER_PX = 1.0
REWEIGHTING_ROUNDS = 10
MIN_PIXELS_PER_PAIR = 50
PRIOR_WEIGHT = 1e-3


def pair_translation(uv: np.ndarray, target: np.ndarray, depth: np.ndarray, K: np.ndarray,
                     R: np.ndarray) -> np.ndarray:
    """The translation t `[3]` (x_j = R x_i + t) that best moves pixels uv `[N, 2]` with depths `[N]` (metres) onto
    their flow targets `[N, 2]`: (K t)_x − u (K t)_z = u c − a_x and likewise in y, with (a_x, a_y, c) = K R x_i,
    solved by Huber-weighted least squares."""
    rotated = rotated_projection(uv, depth, K, R)
    rows = np.concatenate([K[0] - target[:, :1] * K[2], K[1] - target[:, 1:] * K[2]])
    rhs = np.concatenate([target[:, 0] * rotated[:, 2] - rotated[:, 0], target[:, 1] * rotated[:, 2] - rotated[:, 1]])
    weight = np.ones(len(rhs))
    for _ in range(REWEIGHTING_ROUNDS):
        root = np.sqrt(weight)
        t = np.linalg.lstsq(rows * root[:, None], rhs * root, rcond=None)[0]
        # a row's residual is pixels times the point's depth in camera j, so the 1 px knee bends sooner for far
        # points; that is the weighting the seven-clip measurement above was made with
        residual = np.abs(rows @ t - rhs)
        weight = np.minimum(1.0, HUBER_PX / np.maximum(residual, 1e-12))
    return t


def refine_translations(frames: np.ndarray, c2w: np.ndarray, registered: np.ndarray, K: np.ndarray,
                        depth: np.ndarray, gaps: tuple[int, ...] = PAIR_GAPS,
                        flow: DenseFlow | None = None) -> np.ndarray:
    """c2w `[F, 4, 4]` with the centres of registered `[F]` frames re-solved from the flow of uint8 frames
    `[F, H, W, 3]` and metric depth `[F, h, w]`, rotations and the first registered centre kept; other frames as
    given. `flow`: the clip's DenseFlow, if one is already at hand."""
    K = np.asarray(K, np.float64)
    c2w = np.array(c2w, dtype=np.float64)
    flow = flow if flow is not None else DenseFlow(frames)
    known = np.flatnonzero(registered)
    index = {f: n for n, f in enumerate(known)}
    rows, rhs = [], []
    for gap in gaps:
        for i in known:
            j = i + gap
            if j not in index:
                continue
            target, ok = flow.pair(i, j)
            d = flow.depth_at_grid(depth[i])
            ok = ok & np.isfinite(d) & (d > 0)
            if ok.sum() < MIN_PIXELS_PER_PAIR:
                continue
            R = c2w[j, :3, :3].T @ c2w[i, :3, :3]
            t = pair_translation(flow.uv[ok], target[ok], d[ok], K, R)
            row = np.zeros((3, 3 * len(known)))
            row[:, 3 * index[i]:3 * index[i] + 3] = np.eye(3)
            row[:, 3 * index[j]:3 * index[j] + 3] = -np.eye(3)
            rows.append(row)
            rhs.append(c2w[j, :3, :3] @ t)
    if not rows:
        return c2w
    # A faint pull towards the given centres decides those no pair reaches (a frame whose pairs all lacked
    # pixels, or a group of frames cut off from the first) and is negligible for the rest.
    prior = PRIOR_WEIGHT * np.eye(3 * len(known))
    A = np.concatenate([*rows, prior])
    b = np.concatenate([*rhs, PRIOR_WEIGHT * c2w[known, :3, 3].ravel()])
    anchor = c2w[known[0], :3, 3]
    # move the held first centre to the right-hand side and solve for the others
    b = b - A[:, :3] @ anchor
    others = np.linalg.lstsq(A[:, 3:], b, rcond=None)[0].reshape(-1, 3)
    c2w[known[1:], :3, 3] = others
    return c2w
