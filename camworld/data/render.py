"""Ground-truth videos: render a `World` along given poses straight into an MP4, with the poses and intrinsics
saved beside it (`x.mp4`, `x.c2w.npy`, `x.intrinsics.npy`), every file written atomically."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from camworld.errors import UserError
from camworld.fileio import atomic_path
from camworld.video import Mp4Writer


def sidecar_paths(video_path: str | os.PathLike) -> tuple[Path, Path]:
    """(x.c2w.npy, x.intrinsics.npy) beside x.mp4."""
    path = Path(video_path)
    stem = path.with_suffix("")
    return stem.with_name(stem.name + ".c2w.npy"), stem.with_name(stem.name + ".intrinsics.npy")


def render_video(path: str | os.PathLike, world, c2w: np.ndarray, K: np.ndarray, height: int, width: int,
                 fps: int = 16, chunk: int = 32, progress: bool = True) -> None:
    """Render c2w `[F, 4, 4]` with intrinsics K `[F, 3, 3]` (pixels of height x width) to an H.264 MP4.

    Frames are rendered `chunk` at a time and appended to the encoder, so memory stays flat for long videos.
    """
    c2w = np.asarray(c2w, dtype=np.float32)
    K = np.asarray(K, dtype=np.float32)
    if c2w.ndim != 3 or c2w.shape[1:] != (4, 4) or K.shape != (len(c2w), 3, 3):
        raise UserError(f"need c2w [F, 4, 4] and intrinsics [F, 3, 3], got {list(c2w.shape)} and {list(K.shape)}")
    poses_path, intrinsics_path = sidecar_paths(path)
    with Mp4Writer(path, fps=fps) as writer, atomic_path(poses_path) as poses_tmp, \
            atomic_path(intrinsics_path) as intrinsics_tmp:
        for start in tqdm(range(0, len(c2w), chunk), desc="rendering", unit="chunk", disable=not progress):
            frames, _ = world.render(c2w[start:start + chunk], K[start:start + chunk], height, width)
            writer.write(frames)
        np.save(poses_tmp, c2w)
        np.save(intrinsics_tmp, K)
