"""Accuracy of `camworld annotate` on rendered world clips with known metric poses (world seeds >= 10_000, never
seen by the depth net): per clip the engine used, registered frames, RotErr (°), TransErr / path length after
Sim(3) alignment (camworld.camera.pose_errors), the metric-scale error, or the failure reason.

    python3 benchmarks/annotate_world.py [--frames 64] [--size 256x448] [--depth net|gt] [--estimate-intrinsics]
"""

from __future__ import annotations

import argparse
import time

from camworld.annotate.depth_net import load_depth_net, predict_depth
from camworld.annotate.pipeline import annotate_frames
from camworld.annotate.world_clips import CLIP_KINDS, TEST_SEED_START, path_length, render_world_clip, scale_error
from camworld.camera import pose_errors
from camworld.errors import UserError


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--size", default="256x448")
    parser.add_argument("--clips-per-kind", type=int, default=2)
    parser.add_argument("--depth", choices=["net", "gt"], default="net", help="metric depth source")
    parser.add_argument("--estimate-intrinsics", action="store_true", help="do not give K: let COLMAP estimate it")
    args = parser.parse_args()
    height, width = (int(v) for v in args.size.split("x"))
    net = load_depth_net() if args.depth == "net" else None
    print(f"{'clip':<22} {'engine':<7} {'reg':>7} {'RotErr°':>8} {'Trans/path':>10} {'scale err':>9} "
          f"{'fx err':>7} {'time s':>7}  note")
    for k, kind in enumerate(CLIP_KINDS):
        for n in range(args.clips_per_kind):
            seed = TEST_SEED_START + 100 + 10 * k + n
            clip = render_world_clip(seed, kind, args.frames, height, width)
            depth_for = (lambda K, c=clip: predict_depth(net, c.frames, K)) if net else (lambda K, c=clip: c.depth)
            name = f"{kind} seed {seed}"
            start = time.perf_counter()
            try:
                a = annotate_frames(clip.frames, K=None if args.estimate_intrinsics else clip.K.astype(float),
                                    depth_for=depth_for)
            except UserError as exc:
                print(f"{name:<22} {'-':<7} {'-':>7} {'-':>8} {'-':>10} {'-':>9} {'-':>7} "
                      f"{time.perf_counter() - start:7.1f}  FAILED: {exc}")
                continue
            e = pose_errors(a.c2w, clip.c2w)
            fx_err = a.K[0, 0] / clip.K[0, 0] - 1
            note = "; ".join(a.notes["rejected_engines"])
            print(f"{name:<22} {a.engine:<7} {a.registered:>3}/{args.frames:<3} {e['RotErr']:8.3f} "
                  f"{e['TransErr'] / path_length(clip.c2w):10.2%} {scale_error(a.c2w, clip.c2w):+9.2%} "
                  f"{fx_err:+7.2%} {time.perf_counter() - start:7.1f}  {note}")


if __name__ == "__main__":
    main()
