"""`camworld annotate` on real video with true metric poses: the 51-frame KITTI odometry excerpt in
/work/shared/data/kitti_seq1 (CC BY-NC-SA: read in place, never copied into the package).

Reports, for given and for COLMAP-estimated intrinsics: the engine used, registered frames, RotErr (°),
TransErr / path length after Sim(3) alignment, the metric-scale error of the depth net (trained only on the
synthetic world, so its metric scale on KITTI is expected to be poor), and the GT-pose mode's scale error; then
the scale error the flow scale (camworld/annotate/flow_scale.py) would give with the net's depth on the GT-pose
mode's trajectory, i.e. with the pose engines' disagreement set aside.

    python3 benchmarks/annotate_kitti.py [--root /work/shared/data/kitti_seq1] [--frames 51]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from camworld.annotate.depth_net import load_depth_net, predict_depth
from camworld.annotate.flow_scale import flow_scale
from camworld.annotate.pipeline import annotate_frames
from camworld.annotate.world_clips import path_length, scale_error
from camworld.camera import pose_errors
from camworld.errors import UserError
from camworld.video import read_frames

KITTI_K = np.array([[707.0912, 0, 601.8873], [0, 707.0912, 183.1104], [0, 0, 1]])


def load_kitti(root: Path, frames: int) -> tuple[np.ndarray, np.ndarray]:
    images = read_frames(root / "image_l")[:frames]
    rows = np.loadtxt(root / "poses.txt")[:frames]
    c2w = np.tile(np.eye(4), (len(rows), 1, 1))
    c2w[:, :3, :4] = rows.reshape(-1, 3, 4)
    return images, c2w


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="/work/shared/data/kitti_seq1")
    parser.add_argument("--frames", type=int, default=51)
    args = parser.parse_args()
    frames, gt = load_kitti(Path(args.root), args.frames)
    net = load_depth_net()
    length = path_length(gt)
    print(f"KITTI excerpt: {len(frames)} frames {frames.shape[1]}x{frames.shape[2]}, path {length:.2f} m")
    print(f"{'setting':<34} {'engine':<7} {'reg':>6} {'RotErr°':>8} {'Trans/path':>10} {'scale err':>9} "
          f"{'fx':>7} {'time s':>7}  note")
    settings = [("given K, depth-net scale", KITTI_K, None), ("estimated K, depth-net scale", None, None),
                ("given K, GT-pose scale (Sim(3))", KITTI_K, gt)]
    for name, K, gt_c2w in settings:
        start = time.perf_counter()
        try:
            a = annotate_frames(frames, K=K, depth_for=lambda K_used: predict_depth(net, frames, K_used),
                                gt_c2w=gt_c2w)
        except UserError as exc:
            print(f"{name:<34} FAILED ({time.perf_counter() - start:.1f} s): {exc}")
            continue
        e = pose_errors(a.c2w, gt)
        print(f"{name:<34} {a.engine:<7} {a.registered:>3}/{len(frames):<2} {e['RotErr']:8.3f} "
              f"{e['TransErr'] / length:10.2%} {scale_error(a.c2w, gt):+9.2%} {a.K[0, 0]:7.1f} "
              f"{time.perf_counter() - start:7.1f}  {'; '.join(a.notes['rejected_engines'])}")
        if gt_c2w is not None:
            flow = flow_scale(frames, a.c2w, a.K, predict_depth(net, frames, a.K), np.ones(len(frames), bool))
            print(f"{'  the same, flow scale (net depth)':<34} {'':<7} {'':>6} {'':>8} {'':>10} "
                  f"{(1 + scale_error(a.c2w, gt)) * flow.scale - 1:+9.2%}")


if __name__ == "__main__":
    main()
