"""Inputs of a generation, made ready for the model: the first image (resized and centre-cropped to the model's
resolution), the clip length (snapped to stride·k + 1), and the camera conditions (poses relativised to frame 0,
intrinsics carried through the crop and onto the latent grid, FOV check, Plücker packing, latent-rate cameras).

Reference: sana_wm.md §2.6 (first frame: aspect-preserving resize + centre crop), §3.1 (camera preprocessing),
§4 (num_frames snapped to 8k+1 and never past the trajectory's end).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from camworld.camera import (
    check_fov,
    intrinsics_resize_crop,
    intrinsics_to_grid,
    latent_cameras,
    pack_plucker,
    relativize,
    resize_crop_geometry,
    validate_c2w,
)
from camworld.errors import UserError
from camworld.models.dit import CameraInputs


def read_image(source: str | os.PathLike | IO[bytes], name: str) -> np.ndarray:
    """An image file (a path, or an open binary file such as an upload) as uint8 RGB [H, W, 3], turned upright by
    its EXIF orientation as photo viewers show it; an unreadable one is a UserError that starts with `name`."""
    try:
        with Image.open(source) as image:
            image.load()
            return np.asarray(ImageOps.exif_transpose(image).convert("RGB")).copy()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise UserError(f"{name}: not a readable image ({str(exc).splitlines()[0]})") from None


def load_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as uint8 RGB [H, W, 3] (`read_image`); a missing or unreadable file is a UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"image {path}: no such file")
    return read_image(path, f"image {path}")


def resize_crop_image(image: np.ndarray, dst_hw: tuple[int, int]) -> np.ndarray:
    """uint8 [H, W, 3] -> uint8 [dst_h, dst_w, 3]: aspect-preserving resize that covers dst_hw, then centre crop.

    Uses the same numbers as `intrinsics_resize_crop` (`resize_crop_geometry`), so pixels and intrinsics agree.
    Bicubic resampling (PIL antialiases when shrinking).
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise UserError(f"the first frame must be uint8 [H, W, 3], got {image.dtype} {list(image.shape)}")
    (resized_h, resized_w), (top, left) = resize_crop_geometry(image.shape[:2], dst_hw)
    resized = Image.fromarray(image).resize((resized_w, resized_h), Image.Resampling.BICUBIC)
    out = np.asarray(resized)[top : top + dst_hw[0], left : left + dst_hw[1]]
    return np.ascontiguousarray(out)


def snap_num_frames(requested: int | None, available: int, stride: int) -> int:
    """The clip length: `requested` (None: the whole trajectory) snapped to the nearest stride·k + 1 with k >= 1,
    never past the `available` poses (sana_wm.md §4). Asking for more frames than the trajectory has is an error."""
    if available < stride + 1:
        raise UserError(f"the trajectory has {available} poses; at least {stride + 1} are needed "
                        f"(one latent frame after the first)")
    if requested is None:
        requested = available
    if requested < 1:
        raise UserError(f"num_frames must be positive, got {requested}")
    if requested > available:
        raise UserError(f"num_frames {requested} is beyond the trajectory, which has {available} poses")
    k = max(1, round((requested - 1) / stride))
    while stride * k + 1 > available:
        k -= 1
    return stride * k + 1


def check_trajectory(c2w, K) -> tuple[np.ndarray, np.ndarray]:
    """Poses (N, 4, 4) (finite, rigid) and intrinsics (M, 3, 3) (finite) as float64 arrays, else a UserError."""
    c2w = validate_c2w(c2w, "camera poses")
    K = np.asarray(K, dtype=np.float64)
    if c2w.ndim != 3:
        raise UserError(f"camera poses: expected shape (F, 4, 4), got {c2w.shape}")
    if K.ndim != 3 or K.shape[1:] != (3, 3) or len(K) == 0:
        raise UserError(f"intrinsics: expected shape (F, 3, 3), got {K.shape}")
    if not np.isfinite(K).all():
        raise UserError("intrinsics contain NaN or inf")
    return c2w.astype(np.float64), K


@dataclass(frozen=True)
class PreparedCameras:
    """Cameras of one clip: raw-frame poses c2w (F, 4, 4) relativised to frame 0 and intrinsics K (F, 3, 3) in
    pixels of the model's image, plus the model's `CameraInputs` (batch 1, on the CPU)."""

    c2w: np.ndarray
    K: np.ndarray
    inputs: CameraInputs


def prepare_cameras(c2w, K, source_hw, image_hw, grid_hw, stride: int, num_frames: int,
                    plucker_bases=None) -> PreparedCameras:
    """Poses (>= num_frames, 4, 4) and intrinsics (>= num_frames, 3, 3) in pixels of the `source_hw` image ->
    the first `num_frames` as model conditions (sana_wm.md §3.1). plucker_bases: the origin latent frame of each
    latent frame's Plücker rays (`pack_plucker`; None: frame 0).

    Intrinsics follow the image's resize + centre crop to `image_hw`, the FOV check runs in those pixels, and the
    latent-grid intrinsics (`grid_hw`) feed the Plücker map [T, h, w, 6·stride] and the latent-rate cameras
    (raw frame stride·k).
    """
    c2w, K = check_trajectory(c2w, K)
    if len(c2w) < num_frames or len(K) < num_frames:
        raise UserError(f"{num_frames} frames need as many poses and intrinsics, got {len(c2w)} and {len(K)}")
    rel = relativize(c2w[:num_frames].astype(np.float64))
    k_image = intrinsics_resize_crop(K[:num_frames], source_hw, image_hw)
    check_fov(k_image, image_hw)
    k_grid = intrinsics_to_grid(k_image, image_hw, grid_hw)
    plucker = pack_plucker(rel, k_grid, stride, grid_hw, plucker_bases)
    c2w_lat, k_lat = latent_cameras(rel, k_grid, stride)
    inputs = CameraInputs(
        c2w=torch.as_tensor(c2w_lat, dtype=torch.float32)[None],
        K=torch.as_tensor(k_lat, dtype=torch.float32)[None],
        plucker=plucker[None],
    )
    return PreparedCameras(rel.astype(np.float32), k_image.astype(np.float32), inputs)
