"""Write a contact sheet of one or more videos: one row per video, evenly spaced frames, each labelled with its index.

Used for the documentation's pictures of generated videos (e.g. docs/generate_demo_0.png: the SANA-WM demo photo run
through the bundled tiny weights).

    python3 scripts/video_contact_sheet.py out/demo/video.mp4 [more.mp4 ...] --frames 8 --out sheet.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from camworld.errors import UserError
from camworld.fileio import atomic_path
from camworld.video import read_video

LABEL_HEIGHT = 14


def sheet(videos: list[np.ndarray], names: list[str], columns: int, scale: int) -> Image.Image:
    """One row per video [F, H, W, 3] (all of the same H, W), `columns` evenly spaced frames per row."""
    height, width = videos[0].shape[1:3]
    cell_h, cell_w = height * scale + LABEL_HEIGHT, width * scale
    canvas = Image.new("RGB", (columns * cell_w, len(videos) * cell_h), "white")
    draw = ImageDraw.Draw(canvas)
    for row, (frames, name) in enumerate(zip(videos, names, strict=True)):
        picks = np.linspace(0, len(frames) - 1, columns).round().astype(int)
        for col, index in enumerate(picks):
            tile = Image.fromarray(frames[index]).resize((cell_w, height * scale), Image.NEAREST)
            canvas.paste(tile, (col * cell_w, row * cell_h + LABEL_HEIGHT))
            draw.text((col * cell_w + 2, row * cell_h + 1), f"{name} frame {index}", fill="black")
    return canvas


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("videos", nargs="+")
    parser.add_argument("--frames", type=int, default=8, help="frames per row")
    parser.add_argument("--scale", type=int, default=2, help="integer upscaling of each frame")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    try:
        if args.frames < 1 or args.scale < 1:
            raise UserError("--frames and --scale must be >= 1")
        videos = [read_video(path) for path in args.videos]
        if len({v.shape[1:] for v in videos}) > 1:
            raise UserError("the videos differ in frame size")
    except UserError as exc:
        print(f"video_contact_sheet: error: {exc}", file=sys.stderr)
        return 2
    names = [Path(path).parent.name or Path(path).stem for path in args.videos]
    with atomic_path(args.out) as tmp:
        sheet(videos, names, args.frames, args.scale).save(tmp, format="PNG")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
