"""Write a contact sheet of the procedural world's styles (docs/world_styles.png by default).

Rows 1-2: the first frame (identity pose at the origin) of one world per style at 256x448. Row 3: a view pitched
up 45 degrees (clouds, landmark tops), a pitched-down view of the ground texture and the metric depth of the
first tile (near = bright, sky = black).

    python3 scripts/world_contact_sheet.py [--out docs/world_styles.png] [--backend gl]
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image, ImageDraw

from camworld.fileio import atomic_path
from camworld.world import BACKENDS, STYLES, World

HEIGHT, WIDTH = 256, 448


def pose(yaw_deg: float = 0.0, pitch_deg: float = 0.0) -> np.ndarray:
    y, p = np.deg2rad(yaw_deg), np.deg2rad(pitch_deg)
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    m = np.eye(4)
    m[:3, :3] = ry @ rx
    return m


def label(image: np.ndarray, text: str) -> np.ndarray:
    pil = Image.fromarray(image)
    draw = ImageDraw.Draw(pil)
    draw.rectangle((0, 0, 8 + 6 * len(text), 14), fill=(0, 0, 0))
    draw.text((4, 2), text, fill=(255, 255, 255))
    return np.asarray(pil)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/world_styles.png")
    parser.add_argument("--backend", default="auto", choices=BACKENDS)
    args = parser.parse_args()
    f = 0.6 * WIDTH
    K = np.array([[f, 0, (WIDTH - 1) / 2], [0, f, (HEIGHT - 1) / 2], [0, 0, 1]])
    tiles = []
    for seed, style in enumerate(STYLES):
        rgb, depth = World(seed, style).render(pose(), K, HEIGHT, WIDTH, backend=args.backend)
        tiles.append(label(rgb[0], f"{style} (seed {seed})"))
        if seed == 0:
            first_depth = depth[0]
    up = World(0, STYLES[0]).render(pose(60, 45), K, HEIGHT, WIDTH, backend=args.backend)[0][0]
    down = World(3, STYLES[3]).render(pose(-30, -40), K, HEIGHT, WIDTH, backend=args.backend)[0][0]
    shade = np.where(np.isfinite(first_depth), 255 * np.exp(-np.nan_to_num(first_depth, posinf=1e9) / 25), 0)
    depth_tile = np.repeat(shade.astype(np.uint8)[..., None], 3, axis=2)
    tiles += [label(up, f"{STYLES[0]}, pitched up 45"), label(down, f"{STYLES[3]}, pitched down 40"),
              label(depth_tile, f"depth of {STYLES[0]} (seed 0)")]
    rows = [np.concatenate(tiles[i:i + 3], axis=1) for i in range(0, len(tiles), 3)]
    with atomic_path(args.out) as tmp:
        Image.fromarray(np.concatenate(rows, axis=0)).save(tmp, format="PNG")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
