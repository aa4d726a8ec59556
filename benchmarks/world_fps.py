"""Frames per second of the procedural world's renderers on this machine (end to end, numpy out).

Renders a walking-and-turning trajectory through a few worlds: the GL renderer (moderngl, headless EGL) at
72x128 and 256x448 in batches of frames, and the torch ray-caster fallback at 72x128 on a few frames.

    python3 benchmarks/world_fps.py [--frames 480] [--ray-frames 4]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from camworld.world import STYLES, World


def trajectory(num: int) -> np.ndarray:
    """Walk 0.4 m/s at 16 fps along +Z while slowly turning and nodding: c2w [num, 4, 4]."""
    c2w = np.tile(np.eye(4), (num, 1, 1))
    for i in range(num):
        yaw, pitch = np.deg2rad(0.6 * i), np.deg2rad(20 * np.sin(i / 40))
        ry = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
        rx = np.array([[1, 0, 0], [0, np.cos(pitch), -np.sin(pitch)], [0, np.sin(pitch), np.cos(pitch)]])
        c2w[i, :3, :3] = ry @ rx
        c2w[i, :3, 3] = ry @ np.array([0.0, 0.0, 0.025 * i])
    return c2w


def intrinsics(height: int, width: int) -> np.ndarray:
    f = 0.6 * width
    return np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1]])


def measure(worlds, backend: str, height: int, width: int, frames: int) -> float:
    c2w = trajectory(frames)
    K = intrinsics(height, width)
    worlds[0].render(c2w[:2], K, height, width, backend=backend)  # context, shaders, buffers
    start = time.perf_counter()
    for w in worlds:
        rgb, depth = w.render(c2w, K, height, width, backend=backend)
        assert rgb.shape == (frames, height, width, 3) and depth.shape == (frames, height, width)
    return len(worlds) * frames / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=480, help="GL frames per world")
    parser.add_argument("--ray-frames", type=int, default=4, help="ray-caster frames per world")
    args = parser.parse_args()
    worlds = [World(seed, style) for seed, style in enumerate(STYLES[:3])]
    for w in worlds:  # warm every world's GL buffers outside the timing
        w.render(np.eye(4), intrinsics(72, 128), 72, 128, backend="gl")
    gl_small = measure(worlds, "gl", 72, 128, args.frames)
    gl_large = measure(worlds, "gl", 256, 448, args.frames // 4)
    ray_small = measure(worlds[:1], "ray", 72, 128, args.ray_frames)
    print(f"gl   72x128 : {gl_small:8.1f} frames/s")
    print(f"gl  256x448 : {gl_large:8.1f} frames/s")
    print(f"ray  72x128 : {ray_small:8.2f} frames/s  (gl/ray = {gl_small / ray_small:.0f}x)")


if __name__ == "__main__":
    main()
