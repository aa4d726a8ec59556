"""Camera files and intrinsics bookkeeping: loading and checking c2w / intrinsics arrays, the resize + centre-crop
and latent-grid rescaling of intrinsics, relativising a trajectory to frame 0, and the field-of-view check.

Reference: sana_wm.md §3.1 (preprocessing) and §4.3 (accepted file shapes). Intrinsics are in pixels with
(fx, fy, cx, cy) read from K[0,0], K[1,1], K[0,2], K[1,2]; skew is ignored, as upstream does.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from camworld.errors import UserError

ROTATION_TOLERANCE = 1e-3
FOV_RANGE_DEG = (25.0, 120.0)


def validate_c2w(c2w, name: str = "c2w") -> np.ndarray:
    """Check camera-to-world poses `[..., 4, 4]` and return them as a numpy array (dtype kept if floating).

    Raises UserError naming `name` for a wrong shape, non-finite values, a bottom row other than [0, 0, 0, 1],
    or a rotation block that is not orthonormal with determinant +1 (within 1e-3).
    """
    arr = np.asarray(c2w)
    if arr.ndim < 2 or arr.shape[-2:] != (4, 4) or arr.size == 0:
        raise UserError(f"{name}: expected camera-to-world poses of shape (F, 4, 4), got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise UserError(f"{name}: poses contain NaN or inf")
    bottom = arr[..., 3, :]
    if np.abs(bottom - np.array([0.0, 0.0, 0.0, 1.0])).max() > ROTATION_TOLERANCE:
        raise UserError(f"{name}: the bottom row of every pose must be [0, 0, 0, 1]")
    rot = arr[..., :3, :3].astype(np.float64)
    gram_error = np.abs(np.swapaxes(rot, -1, -2) @ rot - np.eye(3)).max(axis=(-1, -2))
    det = np.linalg.det(rot)
    bad = (gram_error > ROTATION_TOLERANCE) | (np.abs(det - 1.0) > ROTATION_TOLERANCE)
    if bad.any():
        first = int(np.flatnonzero(bad.reshape(-1))[0])
        raise UserError(
            f"{name}: pose {first} is not a rigid transform (rotation not orthonormal or det != 1: "
            f"|RᵀR - I| = {gram_error.reshape(-1)[first]:.2g}, det = {det.reshape(-1)[first]:.4g})"
        )
    return arr


def _load_array(path, npz_key: str) -> tuple[np.ndarray, str]:
    """The array stored in a `.npy` file, or under `npz_key` in a `.npz` archive (the benchmark's format)."""
    name = os.fspath(path)
    if not Path(name).is_file():
        raise UserError(f"{name}: no such file")
    try:
        loaded = np.load(name, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise UserError(f"{name}: not a readable .npy/.npz array ({str(exc).splitlines()[0]})") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            if npz_key not in loaded.files:
                raise UserError(f"{name}: the .npz archive has no {npz_key!r} array (has {sorted(loaded.files)})")
            arr = loaded[npz_key]
    else:
        arr = loaded
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise UserError(f"{name}: expected a real numeric array, got dtype {arr.dtype}")
    return arr, name


def load_c2w(path) -> np.ndarray:
    """Camera-to-world poses float32 `[F, 4, 4]` from a `.npy` (or a benchmark `.npz` with key ``c2w``)."""
    arr, name = _load_array(path, "c2w")
    if arr.ndim != 3 or arr.shape[1:] != (4, 4) or arr.shape[0] == 0:
        raise UserError(f"{name}: expected camera-to-world poses of shape (F, 4, 4), got {arr.shape}")
    return validate_c2w(arr, name).astype(np.float32)


def fxfycxcy_to_K(vec) -> np.ndarray:
    """(fx, fy, cx, cy) `[..., 4]` -> K `[..., 3, 3]` (float32)."""
    vec = np.asarray(vec, dtype=np.float32)
    K = np.zeros((*vec.shape[:-1], 3, 3), dtype=np.float32)
    K[..., 0, 0], K[..., 1, 1], K[..., 0, 2], K[..., 1, 2] = vec[..., 0], vec[..., 1], vec[..., 2], vec[..., 3]
    K[..., 2, 2] = 1.0
    return K


def K_to_fxfycxcy(K) -> np.ndarray:
    """K `[..., 3, 3]` -> (fx, fy, cx, cy) `[..., 4]`."""
    K = np.asarray(K)
    return np.stack([K[..., 0, 0], K[..., 1, 1], K[..., 0, 2], K[..., 1, 2]], axis=-1)


def _to_length(seq: np.ndarray, num_frames: int) -> np.ndarray:
    """A per-frame sequence `[L, ...]` as `[num_frames, ...]`: broadcast if L = 1, truncated if L >= num_frames,
    otherwise linearly resampled over normalised time (first and last entries kept)."""
    length = seq.shape[0]
    if length == 1:
        return np.repeat(seq, num_frames, axis=0)
    if length >= num_frames:
        return seq[:num_frames]
    src = np.linspace(0.0, 1.0, length)
    dst = np.linspace(0.0, 1.0, num_frames)
    flat = seq.reshape(length, -1)
    cols = [np.interp(dst, src, flat[:, c]) for c in range(flat.shape[1])]
    return np.stack(cols, axis=1).reshape(num_frames, *seq.shape[1:])


def load_intrinsics(path, num_frames: int) -> np.ndarray:
    """Intrinsics float32 `[num_frames, 3, 3]` in image pixels from a `.npy` shaped (3,3), (F,3,3), (4,) or (F,4)
    (or a benchmark `.npz` with key ``intrinsics``). Sequences are truncated, broadcast or linearly resampled."""
    if int(num_frames) < 1:
        raise UserError(f"num_frames must be positive, got {num_frames}")
    arr, name = _load_array(path, "intrinsics")
    if arr.shape == (4,) or (arr.ndim == 2 and arr.shape[1] == 4 and arr.shape[0] > 0):
        vec = arr.reshape(-1, 4).astype(np.float64)
    elif arr.shape == (3, 3) or (arr.ndim == 3 and arr.shape[1:] == (3, 3) and arr.shape[0] > 0):
        vec = K_to_fxfycxcy(arr.reshape(-1, 3, 3).astype(np.float64))
    else:
        raise UserError(f"{name}: intrinsics must have shape (3,3), (F,3,3), (4,) or (F,4), got {arr.shape}")
    if not np.isfinite(vec).all():
        raise UserError(f"{name}: intrinsics contain NaN or inf")
    if (vec[:, :2] <= 0).any():
        raise UserError(f"{name}: focal lengths must be positive")
    return fxfycxcy_to_K(_to_length(vec, int(num_frames)))


def resize_crop_geometry(src_hw, dst_hw) -> tuple[tuple[int, int], tuple[int, int]]:
    """SANA-WM's aspect-preserving resize that covers `dst_hw`, then centre crop: returns
    ((resized_h, resized_w), (top, left)). Image code must use these numbers so pixels and intrinsics agree."""
    src_h, src_w = (int(x) for x in src_hw)
    dst_h, dst_w = (int(x) for x in dst_hw)
    if min(src_h, src_w, dst_h, dst_w) <= 0:
        raise UserError(f"image sizes must be positive, got source {src_hw} and target {dst_hw}")
    scale = max(dst_h / src_h, dst_w / src_w)
    resized_w = max(dst_w, int(round(src_w * scale)))
    resized_h = max(dst_h, int(round(src_h * scale)))
    return (resized_h, resized_w), ((resized_h - dst_h) // 2, (resized_w - dst_w) // 2)


def intrinsics_resize_crop(K, src_hw, dst_hw) -> np.ndarray:
    """K `[..., 3, 3]` of a `src_hw` image -> K of the resized + centre-cropped `dst_hw` image.

    Follows upstream exactly: f and c scale by resized/source size and c shifts by the crop offset, i.e. a pixel
    coordinate u maps to u·sx − left (no half-pixel correction).
    """
    (resized_h, resized_w), (top, left) = resize_crop_geometry(src_hw, dst_hw)
    sx, sy = resized_w / int(src_hw[1]), resized_h / int(src_hw[0])
    K = np.array(K, dtype=np.float64)
    out = K.copy()
    out[..., 0, 0] = K[..., 0, 0] * sx
    out[..., 0, 2] = K[..., 0, 2] * sx - left
    out[..., 1, 1] = K[..., 1, 1] * sy
    out[..., 1, 2] = K[..., 1, 2] * sy - top
    return out.astype(np.float32)


def intrinsics_to_grid(K, image_hw, grid_hw) -> np.ndarray:
    """K `[..., 3, 3]` in pixels of `image_hw` -> K in cells of the latent grid `grid_hw`
    (fx, cx · gw/W; fy, cy · gh/H; e.g. 40/1280 and 22/704 in SANA-WM)."""
    (height, width), (grid_h, grid_w) = image_hw, grid_hw
    K = np.array(K, dtype=np.float64)
    K[..., 0, 0] *= grid_w / width
    K[..., 0, 2] *= grid_w / width
    K[..., 1, 1] *= grid_h / height
    K[..., 1, 2] *= grid_h / height
    return K.astype(np.float32)


def relativize(c2w) -> np.ndarray:
    """Poses `[F, 4, 4]` relative to frame 0, P_0⁻¹ P_i (frame 0 becomes exactly the identity); dtype kept."""
    c2w = np.asarray(c2w)
    pose = c2w.astype(np.float64)
    rot, trans = pose[0, :3, :3], pose[0, :3, 3]
    inv0 = np.eye(4)
    inv0[:3, :3] = rot.T
    inv0[:3, 3] = -rot.T @ trans
    rel = inv0 @ pose
    rel[0] = np.eye(4)
    return rel.astype(c2w.dtype if np.issubdtype(c2w.dtype, np.floating) else np.float64)


def field_of_view_deg(K, image_hw) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal and vertical field of view in degrees, 2·atan(W / 2fx) and 2·atan(H / 2fy)."""
    K = np.asarray(K, dtype=np.float64)
    height, width = image_hw
    return (np.degrees(2 * np.arctan(width / (2 * K[..., 0, 0]))),
            np.degrees(2 * np.arctan(height / (2 * K[..., 1, 1]))))


def check_fov(K, image_hw, name: str = "intrinsics") -> None:
    """Raise UserError if any frame's horizontal or vertical FOV is outside (25°, 120°) (sana_wm.md §3.1)."""
    K = np.asarray(K, dtype=np.float64)
    if (K[..., 0, 0] <= 0).any() or (K[..., 1, 1] <= 0).any():
        raise UserError(f"{name}: focal lengths must be positive")
    low, high = FOV_RANGE_DEG
    for axis, fov in zip(("horizontal", "vertical"), field_of_view_deg(K, image_hw)):
        fov = np.atleast_1d(fov)
        outside = (fov <= low) | (fov >= high)
        if outside.any():
            value = float(fov[outside][0])
            raise UserError(
                f"{name}: {axis} field of view {value:.1f}° is outside ({low:g}°, {high:g}°) for a "
                f"{image_hw[0]}x{image_hw[1]} image; are the intrinsics in pixels of this image?"
            )

