"""`camworld annotate clip`: a video file or frame folder in, one dataset shard out (camworld.data.shards format).

The annotated clip trains like a rendered one: frames, metric c2w relative to frame 0, per-frame intrinsics,
optional metric depth, a caption (from --caption, else a placeholder flagged in the metadata) and the annotation's
provenance under `trajectory`. Reading, annotation and checks all finish before `write_shard` (atomic) runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from camworld.annotate.pipeline import (
    PLACEHOLDER_CAPTION,
    Annotation,
    annotate_frames,
    load_depth_maps,
    load_gt_poses,
    parse_intrinsics,
)
from camworld.data.shards import SHARD_NAME, Clip, depth_to_float16, shard_name, write_shard
from camworld.errors import UserError
from camworld.video import read_frames, read_video, video_fps

DEFAULT_FPS = 16.0


@dataclass
class AnnotateOptions:
    """What `camworld annotate clip` takes besides the input and output paths (see its --help)."""

    intrinsics: str | None = None
    depth_dir: str | None = None
    gt_poses: str | None = None
    depth_net: str | None = None
    engine: str = "auto"
    scale_smoothing: str = "median"
    caption: str | None = None
    fps: float | None = None
    max_frames: int | None = None
    keep_depth: bool = False


@dataclass
class AnnotateResult:
    """Where the shard went and the annotation it holds."""

    shard: Path
    annotation: Annotation
    num_frames: int

    def summary(self) -> str:
        a = self.annotation
        return (f"{self.shard}: {self.num_frames} frames, engine {a.engine} ({a.registered} registered), "
                f"metric scale {a.scale:.4g} ({a.notes['scale_source']}), fx {a.K[0, 0]:.1f} fy {a.K[1, 1]:.1f}")


def read_input(path: str | os.PathLike) -> tuple[np.ndarray, float | None]:
    """Frames uint8 `[F, H, W, 3]` of a video file or image folder, and the video's frame rate (None for images)."""
    path = Path(path)
    if path.is_dir():
        return read_frames(path), None
    if not path.exists():
        raise UserError(f"input not found: {path}")
    frames = read_video(path)
    return frames, video_fps(path)


def next_shard_index(root: Path) -> int:
    if not root.is_dir():
        return 0
    used = [int(m.group(1)) for p in root.iterdir() if (m := SHARD_NAME.match(p.name))]
    return max(used, default=-1) + 1


def annotate_input(input_path: str | os.PathLike, out_root: str | os.PathLike, options: AnnotateOptions,
                   shard_index: int | None = None) -> AnnotateResult:
    """Annotate a video/frame folder and write it as `out_root/shard_NNNNN`."""
    from camworld.annotate.depth_net import load_depth_net, predict_depth

    if options.max_frames is not None and options.max_frames < 1:
        raise UserError(f"--max-frames must be positive, got {options.max_frames}")
    if options.fps is not None and not options.fps > 0:
        raise UserError(f"--fps must be positive, got {options.fps}")
    frames, fps = read_input(input_path)
    frames = frames[:options.max_frames]
    num = len(frames)
    K = parse_intrinsics(options.intrinsics, num) if options.intrinsics else None
    gt_c2w = load_gt_poses(options.gt_poses, num) if options.gt_poses else None
    given_depth = load_depth_maps(options.depth_dir, num) if options.depth_dir else None
    net = None if given_depth is not None else load_depth_net(options.depth_net)
    predicted: dict[bytes, np.ndarray] = {}

    def depth_for(K_used: np.ndarray) -> np.ndarray:
        if given_depth is not None:
            return given_depth
        key = np.round(K_used, 6).tobytes()
        if key not in predicted:
            predicted[key] = predict_depth(net, frames, K_used)
        return predicted[key]

    bar = tqdm(total=0, bar_format="annotating: {desc}", leave=False)
    annotation = annotate_frames(frames, K=K, depth_for=depth_for, gt_c2w=gt_c2w, engine=options.engine,
                                 smoothing=options.scale_smoothing, measured_depth=given_depth is not None,
                                 progress=bar.set_description_str)
    bar.close()
    depth = None
    if options.keep_depth:
        depth = depth_for(annotation.K.astype(np.float64))
        if depth.shape != frames.shape[:3]:
            raise UserError(f"--keep-depth: depth maps are {list(depth.shape)}, frames {list(frames.shape[:3])}")
        depth = depth_to_float16(depth)
    trajectory = {
        "kind": "annotated", "source": os.fspath(input_path), "engine": annotation.engine,
        "registered_frames": annotation.registered, "metric_scale": annotation.scale,
        "intrinsics_source": "given" if K is not None else "estimated",
        "depth_source": "gt_depth" if given_depth is not None else ("depth_net" if gt_c2w is None else "none"),
        "caption_placeholder": options.caption is None, **annotation.notes,
    }
    clip = Clip(frames=frames, c2w=annotation.c2w, intrinsics=np.repeat(annotation.K[None], num, axis=0),
                caption=options.caption or PLACEHOLDER_CAPTION, seed=-1, style="annotated",
                fps=float(options.fps or fps or DEFAULT_FPS), depth=depth, trajectory=trajectory)
    out_root = Path(out_root)
    index = next_shard_index(out_root) if shard_index is None else int(shard_index)
    if index < 0:
        raise UserError(f"--shard-index must be non-negative, got {index}")
    shard = out_root / shard_name(index)
    write_shard(shard, [clip])
    return AnnotateResult(shard, annotation, num)
