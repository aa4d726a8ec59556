"""`camworld render`: the ground-truth video of an action string (or a camera file) in world `--seed`.

Writes x.mp4 (H.264, 16 fps) with x.c2w.npy and x.intrinsics.npy beside it. Unlike SANA-WM's inference CLI
(sana_wm.md §4), `--num_frames` is not snapped to 8k+1: this renders ground truth, any length is valid.
"""

from __future__ import annotations

import argparse

import numpy as np


def parse_size(text: str) -> tuple[int, int]:
    from camworld.errors import UserError

    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UserError(f"--size must look like 256x448 (height x width), got {text!r}") from None
    if height < 8 or width < 8 or height % 2 or width % 2:
        raise UserError(f"--size must be even and at least 8x8, got {text!r}")
    return height, width


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("render", help="render the ground-truth video of an action string",
                              description=__doc__.splitlines()[0])
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--action", help='action string, e.g. "w-100,dw-60,w-100,aw-60"')
    source.add_argument("--camera", help="c2w .npy [F, 4, 4] (made relative to its first frame)")
    p.add_argument("--seed", type=int, default=0, help="world seed")
    p.add_argument("--style", default=None, help="world style (default: drawn from the seed)")
    p.add_argument("--num_frames", type=int, default=None, help="frames to render (default: the whole trajectory)")
    p.add_argument("--out", required=True, help="output .mp4")
    p.add_argument("--size", default="256x448", help="HxW in pixels")
    p.add_argument("--fov", type=float, default=70.0, help="horizontal field of view in degrees")
    p.add_argument("--intrinsics", default=None, help="K .npy [3,3] / [F,3,3] / [4] / [F,4] in pixels of --size")
    p.add_argument("--translation_speed", type=float, default=None, help="metres per frame (DSL default 0.025)")
    p.add_argument("--rotation_speed_deg", type=float, default=None, help="degrees per frame (DSL default 0.6)")
    p.add_argument("--fps", type=int, default=16)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from camworld.camera import action_string_to_c2w, check_fov, load_c2w, load_intrinsics, relativize
    from camworld.data.make import intrinsics_for_fov
    from camworld.data.render import render_video
    from camworld.errors import UserError
    from camworld.world import World

    height, width = parse_size(args.size)
    if args.action is not None:
        c2w = action_string_to_c2w(args.action, translation_speed=args.translation_speed,
                                   rotation_speed_deg=args.rotation_speed_deg)
    else:
        c2w = relativize(load_c2w(args.camera))
    num_frames = len(c2w) if args.num_frames is None else args.num_frames
    if not 1 <= num_frames <= len(c2w):
        raise UserError(f"--num_frames {num_frames} is outside 1..{len(c2w)} (the trajectory's length)")
    c2w = c2w[:num_frames]
    if args.intrinsics is not None:
        K = load_intrinsics(args.intrinsics, num_frames)
    else:
        K = np.repeat(intrinsics_for_fov(args.fov, height, width)[None], num_frames, axis=0)
    check_fov(K, (height, width))
    world = World(args.seed, style=args.style)
    render_video(args.out, world, c2w, K, height, width, fps=args.fps)
    print(f"wrote {args.out} ({num_frames} frames, {height}x{width}, world seed {args.seed}: {world.caption})")
    return 0
