"""Rendered world clips with known metric poses, the ground truth the annotator is checked against.

Kinds: "walk" (a forward walk through random waypoints, `waypoint_trajectory`), "orbit" and "out_and_back"
(`revisit_trajectory` templates). Checks use world seeds >= TEST_SEED_START, never seen by the depth net.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from camworld.annotate.metric_scale import path_length
from camworld.data.make import intrinsics_for_fov
from camworld.errors import UserError

TEST_SEED_START = 10_000
CLIP_KINDS = ("walk", "orbit", "out_and_back")
__all__ = ["CLIP_KINDS", "TEST_SEED_START", "WorldClip", "path_length", "render_world_clip", "scale_error"]


@dataclass
class WorldClip:
    """frames uint8 `[F, H, W, 3]`, c2w float32 `[F, 4, 4]` (metres, frame 0 = identity), K float32 `[3, 3]`,
    metric depth float32 `[F, H, W]` (inf = sky), and the world's caption."""

    frames: np.ndarray
    c2w: np.ndarray
    K: np.ndarray
    depth: np.ndarray
    caption: str


def render_world_clip(seed: int, kind: str, num_frames: int, height: int = 256, width: int = 448,
                      hfov_deg: float = 70.0, traj_seed: int = 0) -> WorldClip:
    """Render world `seed` along a trajectory of `kind` (one of CLIP_KINDS)."""
    from camworld.world import World
    from camworld.world.trajectories import revisit_trajectory, waypoint_trajectory

    if kind not in CLIP_KINDS:
        raise UserError(f"unknown clip kind {kind!r}; choose one of {', '.join(CLIP_KINDS)}")
    world = World(seed)
    if kind == "walk":
        c2w, _ = waypoint_trajectory(world, num_frames, traj_seed)
    else:
        c2w, _ = revisit_trajectory(world, num_frames, traj_seed, template=kind)
    K = intrinsics_for_fov(hfov_deg, height, width)
    frames, depth = world.render(c2w, K, height, width)
    return WorldClip(frames, c2w, K, depth, world.caption)


def scale_error(est_c2w: np.ndarray, gt_c2w: np.ndarray) -> float:
    """Relative error of the estimated trajectory's metric scale: 1 / s − 1, with s the Umeyama Sim(3) scale
    mapping the estimated camera centres (relative to frame 0) onto the true ones."""
    from camworld.camera import relativize, umeyama_sim3

    scale, _, _ = umeyama_sim3(relativize(np.asarray(est_c2w, np.float64))[:, :3, 3],
                               relativize(np.asarray(gt_c2w, np.float64))[:, :3, 3])
    return float(1.0 / scale - 1.0)
