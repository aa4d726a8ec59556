"""`camworld data make | validate | show`: build, check and preview a sharded dataset of rendered clips."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def add_parser(subparsers) -> None:
    from camworld.cli import OneLineParser

    p = subparsers.add_parser("data", help="make, validate or preview a rendered dataset", description=__doc__)
    sub = p.add_subparsers(dest="data_command", required=True, parser_class=OneLineParser)

    make = sub.add_parser("make", help="render clips into shards (resumable)")
    make.add_argument("--out", required=True, help="dataset folder")
    make.add_argument("--num-clips", type=int, required=True)
    make.add_argument("--frames", type=int, required=True, help="frames per clip")
    make.add_argument("--size", default="64x64", help="HxW in pixels")
    make.add_argument("--seed-start", type=int, default=0, help="world seed of the first clip")
    make.add_argument("--shard-size", type=int, default=16, help="clips per shard")
    make.add_argument("--workers", type=int, default=1, help="rendering processes")
    make.add_argument("--trajectory", default="mix", help="random | waypoint | revisit | mix")
    make.add_argument("--no-depth", action="store_true", help="do not store depth maps")
    make.add_argument("--shard-index", type=int, default=0, help="this process makes shards i = k mod n ...")
    make.add_argument("--num-shards", type=int, default=1, help="... of n processes")
    make.set_defaults(func=run_make)

    validate = sub.add_parser("validate", help="check every shard of a dataset")
    validate.add_argument("root", help="dataset folder")
    validate.set_defaults(func=run_validate)

    show = sub.add_parser("show", help="write preview mp4s and a contact sheet of a few clips")
    show.add_argument("root", help="dataset folder")
    show.add_argument("--out", required=True, help="preview folder")
    show.add_argument("--clips", type=int, default=4, help="how many clips to preview")
    show.set_defaults(func=run_show)


def run_make(args: argparse.Namespace) -> int:
    from camworld.cli.render_cmd import parse_size
    from camworld.data.make import DatasetSpec, make_dataset

    height, width = parse_size(args.size)
    spec = DatasetSpec(num_clips=args.num_clips, num_frames=args.frames, height=height, width=width,
                       seed_start=args.seed_start, shard_size=args.shard_size, trajectory=args.trajectory,
                       depth=not args.no_depth)
    counts = make_dataset(args.out, spec, shard_index=args.shard_index, num_shards=args.num_shards,
                          workers=args.workers)
    print(f"{args.out}: made {counts['shards_made']} shards ({counts['clips_made']} clips), "
          f"skipped {counts['shards_skipped']} already complete, {counts['shards_total']} shards in the dataset")
    return 0


def run_validate(args: argparse.Namespace) -> int:
    from camworld.data.make import validate_dataset
    from camworld.errors import UserError

    clips, problems = validate_dataset(args.root)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        raise UserError(f"{len(problems)} problem(s) in {args.root}")
    print(f"{args.root}: ok, {clips} clips")
    return 0


def _upscale(frames: np.ndarray, min_width: int = 256) -> np.ndarray:
    factor = max(1, -(-min_width // frames.shape[2]))
    return frames.repeat(factor, axis=1).repeat(factor, axis=2)


def run_show(args: argparse.Namespace) -> int:
    from camworld.data.shards import list_shards, read_clip, read_shard_meta
    from camworld.errors import UserError
    from camworld.video import contact_sheet, save_png, write_mp4

    out = Path(args.out)
    picked = [(shard, i) for shard in list_shards(args.root) for i in range(len(read_shard_meta(shard)))]
    picked = picked[: max(1, args.clips)]
    if not picked:
        raise UserError(f"no shards in {args.root}")
    tiles, labels = [], []
    for n, (shard, i) in enumerate(picked):
        clip = read_clip(shard, i)
        frames = _upscale(clip.frames)
        write_mp4(out / f"clip_{n:02d}_seed{clip.seed}.mp4", frames, fps=int(clip.fps))
        kind = clip.trajectory.get("template", clip.trajectory.get("kind", "?"))
        for t in sorted({0, len(frames) // 2, len(frames) - 1}):
            tiles.append(frames[t])
            labels.append(f"seed {clip.seed} {clip.style} {kind}, frame {t}: {clip.caption}" if t == 0
                          else f"frame {t}")
    cols = len(tiles) // len(picked)
    save_png(out / "contact_sheet.png", contact_sheet(np.stack(tiles), cols=cols, labels=labels))
    print(f"wrote {len(picked)} preview videos and contact_sheet.png to {out}")
    return 0
