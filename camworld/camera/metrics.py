"""Camera-pose accuracy as SANA-WM's released evaluator computes it, plus Umeyama Sim(3) and revisit pairs.

Reference: sana_wm.md §8.1–8.2 and evaluation_and_users.md §2.1 (upstream `tools/metrics/sana_wm/pose_utils.py`):
both trajectories are made relative to their first frame, the estimate's world-to-camera extrinsics are aligned
to the ground truth's by a similarity (rotation from the SVD of mean(R_gtᵀ R_est) with no reflection fix, scale
by least squares on centred, rotation-compensated translations, then an offset), and the errors are means over
frames. The paper calls this "Umeyama Sim(3) alignment"; the released code is the extrinsics alignment
reproduced here, computed in float64 (upstream runs float32 on the GPU).
"""

from __future__ import annotations

import numpy as np

from camworld.camera.files import relativize, validate_c2w


def umeyama_sim3(src, dst) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity with dst ≈ scale · R @ src + t for point sets `[N, 3]` (Umeyama 1991,
    with the reflection fix so det R = +1). Returns (scale, R [3, 3], t [3])."""
    src, dst = np.asarray(src, dtype=np.float64), np.asarray(dst, dtype=np.float64)
    mu_src, mu_dst = src.mean(0), dst.mean(0)
    src_c, dst_c = src - mu_src, dst - mu_dst
    cov = dst_c.T @ src_c / len(src)
    u, sing, vh = np.linalg.svd(cov)
    sign = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vh) < 0:
        sign[2, 2] = -1.0
    rot = u @ sign @ vh
    var_src = (src_c**2).sum() / len(src)
    scale = float(np.trace(np.diag(sing) @ sign) / var_src) if var_src > 0 else 1.0
    return scale, rot, mu_dst - scale * rot @ mu_src


def _invert_rigid(pose: np.ndarray) -> np.ndarray:
    """[R | t] `[N, 4, 4]` -> [Rᵀ | −Rᵀt] (upstream `closed_form_inverse_se3`)."""
    rot_t = np.swapaxes(pose[:, :3, :3], 1, 2)
    out = np.tile(np.eye(4), (len(pose), 1, 1))
    out[:, :3, :3] = rot_t
    out[:, :3, 3] = -(rot_t @ pose[:, :3, 3:])[..., 0]
    return out


def align_extrinsics(w2c_src: np.ndarray, w2c_tgt: np.ndarray) -> np.ndarray:
    """Align world-to-camera extrinsics `[N, 4, 4]` of `src` onto `tgt` by a world similarity (upstream
    `align_camera_extrinsics` + `apply_transformation`); returns the aligned `src` `[N, 4, 4]`."""
    r_src, r_tgt = w2c_src[:, :3, :3], w2c_tgt[:, :3, :3]
    u, _, vh = np.linalg.svd((np.swapaxes(r_tgt, 1, 2) @ r_src).mean(0))
    align_rot = vh.T @ u.T
    a = (np.swapaxes(r_src, 1, 2) @ w2c_src[:, :3, 3:])[..., 0]  # Rᵀ t of the source, [N, 3]
    b = (np.swapaxes(r_src, 1, 2) @ w2c_tgt[:, :3, 3:])[..., 0]  # the target's t seen through the source's R
    a_mu, b_mu = a.mean(0), b.mean(0)
    scale = 1.0
    if len(a) > 1:
        a_c, b_c = a - a_mu, b - b_mu
        scale = (a_c * b_c).mean() / max((a_c**2).mean(), 1e-9)
    align_t = b_mu - scale * a_mu
    out = np.tile(np.eye(4), (len(w2c_src), 1, 1))
    out[:, :3, :3] = r_src @ align_rot
    out[:, :3, 3] = (r_src @ align_t) + scale * w2c_src[:, :3, 3]
    return out


def pose_errors(est_c2w, gt_c2w) -> dict[str, float]:
    """RotErr (degrees), TransErr and CamMC of an estimated trajectory against ground truth, both c2w `[N, 4, 4]`
    sampled at the same frames. As upstream, only the first min(N_est, N_gt) frames are compared; the count is
    returned as `n_frames`. Keys: RotErr, TransErr, CamMC (upstream JSON: RotErr, TransErr_rel, CamMC_rel)."""
    est = validate_c2w(est_c2w, "estimated poses").astype(np.float64)
    gt = validate_c2w(gt_c2w, "ground-truth poses").astype(np.float64)
    n = min(len(est), len(gt))
    gt = relativize(gt)[:n]
    est = relativize(est)[:n]
    aligned = _invert_rigid(align_extrinsics(_invert_rigid(est), _invert_rigid(gt)))
    cos = (np.trace(np.swapaxes(gt[:, :3, :3], 1, 2) @ aligned[:, :3, :3], axis1=1, axis2=2) - 1) / 2
    rot_err = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
    trans_err = np.linalg.norm(aligned[:, :3, 3] - gt[:, :3, 3], axis=-1)
    cam_mc = np.linalg.norm((aligned[:, :3, :4] - gt[:, :3, :4]).reshape(n, 12), axis=-1)
    return {"RotErr": float(rot_err.mean()), "TransErr": float(trans_err.mean()), "CamMC": float(cam_mc.mean()),
            "n_frames": n}


def find_revisit_pairs(c2w, max_dist: float = 0.5, max_angle_deg: float = 20.0, min_gap: int = 48,
                       max_pairs: int = 5) -> list[tuple[int, int]]:
    """Frame pairs (i, j), 1 <= i < j, where the camera comes back to a viewpoint: centres closer than
    `max_dist` and optical axes within `max_angle_deg` (sana_wm.md §8.1), at least `min_gap` frames apart
    (3 s at 16 fps by default) so that a slow pan is not a revisit. Up to `max_pairs`, closest first.

    The benchmark's own pair generator is not public; our choices: frame 0 is excluded (the benchmark's pairs
    never use it, it is the conditioning image), "view angle" is the angle between optical axes, and once a pair
    is taken, other pairs with both ends within `min_gap` frames of it are skipped, so the list holds distinct
    revisits rather than neighbours of one.
    """
    pose = validate_c2w(c2w, "c2w").astype(np.float64)
    centres, axes = pose[:, :3, 3], pose[:, :3, 2]
    i, j = np.triu_indices(len(pose), k=max(1, min_gap))
    keep = i >= 1
    i, j = i[keep], j[keep]
    dist = np.linalg.norm(centres[i] - centres[j], axis=-1)
    cos = np.einsum("nc,nc->n", axes[i], axes[j]) / (
        np.linalg.norm(axes[i], axis=-1) * np.linalg.norm(axes[j], axis=-1))
    angle = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
    ok = (dist < max_dist) & (angle < max_angle_deg)
    i, j, dist, angle = i[ok], j[ok], dist[ok], angle[ok]
    chosen: list[tuple[int, int]] = []
    for n in np.lexsort((angle, dist)):
        a, b = int(i[n]), int(j[n])
        if any(abs(a - p) < min_gap and abs(b - q) < min_gap for p, q in chosen):
            continue
        chosen.append((a, b))
        if len(chosen) == max_pairs:
            break
    return chosen
