"""The scenes of `camworld bench`: held-out worlds × a `simple` and a `hard` trajectory split, SANA-WM style.

SANA-WM's 60 s benchmark (sana_wm.md §8.1) runs every one of its 80 first frames (4 categories × 20) through two
splits: `simple` (10 smooth templates: arcs, S-curves, backtracking, figure-eight returns) and `hard` (10 stress
templates: large yaw, vertical motion, extreme pitch, whip-pans, double loops, crane moves). Each template is
11–15 waypoints (position, yaw, pitch) joined with centripetal Catmull-Rom and Squad, retimed at ≤ 0.4 m/s and
≤ 12°/s, travel capped at 60 % of the first frame's median depth, collision-checked with a 0.3 m margin (30 %
shrink, 3 retries), 961 frames at 16 fps, with revisit pairs (< 0.5 m, < 20°, up to 5).

Ours: scene `index` is world seed HELD_OUT_SEED + index (never trained on) in style STYLES[index % 6], so both
splits see the same worlds and every style appears; template `index % 10` of the split, its random parameters drawn
from `numpy.random.default_rng([seed, split, index])`. Everything is deterministic in (split, index, seed,
num_frames). Keyframes are joined by `world.trajectories.keyframe_trajectory`. One hard template deliberately
exceeds the angular limit ("fast_whip_pan", 30°/s) and says so in `BenchScene.above_angular_limit`; all others
respect 12°/s. In clips too short to turn through a template's angles at the limit, the angles shrink
(`meta["angle_scale"]` < 1), so short runs are compressed versions of the 60 s templates.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from camworld.camera import find_revisit_pairs
from camworld.errors import UserError
from camworld.eval.camera_following import DEFAULT_FOV, HELD_OUT_SEED, first_frame
from camworld.world import STYLES, World
from camworld.world.trajectories import FPS, MAX_ANGULAR_DEG, keyframe_trajectory

SPLITS = ("simple", "hard")
TRAVEL_DEPTH_FRACTION = 0.6  # sana_wm.md §8.1: travel capped at 60 % of the first frame's median depth
FAST_ANGULAR_DEG = 30.0
Keyframes = Callable[[np.random.Generator], np.ndarray]


def _rows(x, y, z, yaw, pitch) -> np.ndarray:
    """Keyframes [N, 5] (x, y, z m; yaw, pitch °) from broadcastable columns."""
    return np.column_stack(np.broadcast_arrays(*(np.asarray(c, dtype=np.float64) for c in (x, y, z, yaw, pitch))))


def _there_and_back(out: np.ndarray) -> np.ndarray:
    """The keyframes out, then the same poses in reverse (walking backwards), so every view is revisited."""
    return np.concatenate([out, out[-2::-1]])


def _side(rng) -> float:
    return float(rng.choice([-1.0, 1.0]))


def _circle(radius: float, side: float, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x, z) of a circle through the origin tangent to +Z, turning toward `side` (phi in radians)."""
    return side * radius * (1 - np.cos(phi)), radius * np.sin(phi)


def _arc(rng) -> np.ndarray:
    side, radius, angle = _side(rng), rng.uniform(4, 8), rng.uniform(60, 110)
    phi = np.radians(np.linspace(0, angle, 12))
    x, z = _circle(radius, side, phi)
    return _rows(x, 0, z, side * np.degrees(phi), rng.uniform(-6, 6) * np.sin(np.pi * np.linspace(0, 1, 12)))


def _arc_return(rng) -> np.ndarray:
    side, radius, angle = _side(rng), rng.uniform(3, 6), rng.uniform(50, 90)
    phi = np.radians(np.linspace(0, angle, 7))
    x, z = _circle(radius, side, phi)
    return _there_and_back(_rows(x, 0, z, side * np.degrees(phi), 0))


def _s_path(rng, count: int, length: float) -> np.ndarray:
    """Forward path whose heading swings side·H·sin(2πt); the camera looks along it."""
    heading = _side(rng) * math.radians(rng.uniform(25, 45)) * np.sin(2 * np.pi * np.linspace(0, 1, count))
    step = length / (count - 1)
    x = np.concatenate([[0.0], np.cumsum(step * np.sin(heading[:-1]))])
    z = np.concatenate([[0.0], np.cumsum(step * np.cos(heading[:-1]))])
    return _rows(x, 0, z, np.degrees(heading), 0)


def _s_curve(rng) -> np.ndarray:
    return _s_path(rng, 12, rng.uniform(8, 14))


def _s_curve_return(rng) -> np.ndarray:
    return _there_and_back(_s_path(rng, 7, rng.uniform(4, 8)))


def _backtrack(rng) -> np.ndarray:
    direction, length, sway = rng.uniform(-20, 20), rng.uniform(3, 7), rng.uniform(-15, 15)
    t = np.linspace(0, 1, 7)
    x, z = t * length * math.sin(math.radians(direction)), t * length * math.cos(math.radians(direction))
    return _there_and_back(_rows(x, 0, z, direction * t + sway * np.sin(np.pi * t), 0))


def _backtrack_pan(rng) -> np.ndarray:
    direction, length, pan = rng.uniform(-15, 15), rng.uniform(2.5, 5), _side(rng) * rng.uniform(35, 70)
    t = np.linspace(0, 1, 7)
    x, z = t * length * math.sin(math.radians(direction)), t * length * math.cos(math.radians(direction))
    return _there_and_back(_rows(x, 0, z, (direction + pan) * t, 0))


def _loop(rng) -> np.ndarray:
    side, radius = _side(rng), rng.uniform(1.8, 3.2)
    phi = np.radians(np.arange(0, 361, 30))
    x, z = _circle(radius, side, phi)
    return _rows(x, 0, z, side * np.degrees(phi), 0)


def _figure_eight(rng) -> np.ndarray:
    """Two circles tangent at the start, the camera looking ahead with a sway; passes the start three times."""
    side, radius, sway = _side(rng), rng.uniform(1.0, 1.6), rng.uniform(15, 35)
    phi = np.radians(np.arange(0, 361, 60))
    x1, z1 = _circle(radius, side, phi)
    x2, z2 = _circle(radius, -side, phi[1:])
    x, z = np.concatenate([x1, x2]), np.concatenate([z1, z2])
    yaw = np.concatenate([side * sway * np.sin(phi), -side * sway * np.sin(phi[1:])])
    return _rows(x, 0, z, yaw, 0)


def _orbit_path(distance: float, alpha_deg: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """Circle a point `distance` ahead while looking at it; alpha = the angle around it (°)."""
    alpha = np.radians(alpha_deg)
    return _rows(-distance * np.sin(alpha), 0, distance * (1 - np.cos(alpha)), alpha_deg, pitch)


def _orbit_return(rng) -> np.ndarray:
    t = np.linspace(0, 1, 7)
    out = _orbit_path(rng.uniform(3, 5), _side(rng) * rng.uniform(40, 80) * t, rng.uniform(-10, 0) * t)
    return _there_and_back(out)


def _lateral_return(rng) -> np.ndarray:
    """Truck right and left past the start and back, drifting forward and back, the view held ahead."""
    t = np.linspace(0, 1, 13)
    width, forward, side = rng.uniform(1.2, 2.5), rng.uniform(0.5, 1.5), _side(rng)
    return _rows(side * width * np.sin(2 * np.pi * t), 0, forward * np.sin(np.pi * t),
                 rng.uniform(-8, 8) * np.sin(2 * np.pi * t), rng.uniform(-5, 5) * np.sin(np.pi * t))


def _crane(rng) -> np.ndarray:
    t = np.linspace(0, 1, 7)
    out = _rows(0, -rng.uniform(0.8, 1.5) * t, rng.uniform(0.5, 2.0) * t, rng.uniform(-10, 10) * t,
                -rng.uniform(20, 35) * t)
    return _there_and_back(out)


def _yaw_sweep(rng) -> np.ndarray:
    sweep, side = rng.uniform(90, 115), _side(rng)
    yaw = side * sweep * np.array([0, 1 / 3, 2 / 3, 1, 1 / 3, -1 / 3, -1, -2 / 3, -1 / 3, 0, 0])
    t = np.linspace(0, 1, len(yaw))
    return _rows(0, 0, rng.uniform(0.5, 1.5) * np.sin(np.pi * t), yaw, 0)


def _pitch_walk(rng) -> np.ndarray:
    up, down = rng.uniform(30, 45), rng.uniform(25, 40)
    t = np.linspace(0, 1, 7)
    pitch = np.array([0, up / 2, up, 0, -down, -down / 2, 0])
    return _there_and_back(_rows(0, 0, rng.uniform(2, 4) * t, rng.uniform(-10, 10) * np.sin(np.pi * t), pitch))


def _whip_pans(rng, sweep: float, forward: float, shape: tuple[float, ...]) -> np.ndarray:
    """Pans out to ±sweep and back (yaw = side·sweep·shape) while creeping forward."""
    yaw = _side(rng) * sweep * np.array(shape)
    return _rows(0, 0, np.linspace(0, forward, len(yaw)), yaw, 0)


def _whip_pan(rng) -> np.ndarray:
    return _whip_pans(rng, rng.uniform(55, 75), rng.uniform(1, 3), (0, 0, 1, 0, 0, -1, 0, 0, 1, 0, 0, 0))


def _fast_whip_pan(rng) -> np.ndarray:
    half_steps = (0, 0.5, 1, 0.5, 0, 0, -0.5, -1, -0.5, 0, 0, 0.5, 1, 0.5, 0)  # Squad needs ≤ 90° per keyframe
    return _whip_pans(rng, rng.uniform(90, 120), rng.uniform(4, 8), half_steps)


def _double_loop(rng) -> np.ndarray:
    """Two circles through the start on the same side, the camera turning at half the path's rate (360° in all)."""
    side, r1, r2 = _side(rng), rng.uniform(1.0, 1.5), rng.uniform(1.3, 2.0)
    phi = np.radians(np.arange(0, 361, 60))
    x1, z1 = _circle(r1, side, phi)
    x2, z2 = _circle(r2, side, phi[1:])
    yaw = side * np.degrees(np.concatenate([phi, 2 * np.pi + phi[1:]])) / 2
    return _rows(np.concatenate([x1, x2]), 0, np.concatenate([z1, z2]), yaw, 0)


def _extreme_pitch(rng) -> np.ndarray:
    peak = rng.uniform(50, 60)
    pitch = np.array([0, 20, 40, peak, 40, 0, -40, -peak, -40, 0, 0])
    t = np.linspace(0, 1, len(pitch))
    return _rows(0, 0, rng.uniform(0.5, 1.5) * np.sin(np.pi * t), rng.uniform(-10, 10) * np.sin(np.pi * t), pitch)


def _turnaround(rng) -> np.ndarray:
    """Walk out, turn 180° on the spot, walk home facing it, turn on round to face the start view again."""
    length, side = rng.uniform(3, 6), _side(rng)
    z = length * np.array([0, 1 / 3, 2 / 3, 1, 1, 1, 1, 2 / 3, 1 / 3, 0, 0, 0, 0])
    yaw = side * np.array([0, 0, 0, 0, 60, 120, 180, 180, 180, 180, 240, 300, 360])
    return _rows(0, 0, z, yaw, 0)


def _orbit_wide(rng) -> np.ndarray:
    t = np.linspace(0, 1, 13)
    return _orbit_path(rng.uniform(2.5, 4), _side(rng) * rng.uniform(70, 110) * np.sin(2 * np.pi * t),
                       -rng.uniform(10, 20) * np.sin(np.pi * t))


def _helix(rng) -> np.ndarray:
    """A loop looking along the path that rises and comes back down, tilting down then up."""
    side, radius = _side(rng), rng.uniform(1.5, 2.5)
    phi = np.radians(np.arange(0, 361, 30))
    x, z = _circle(radius, side, phi)
    return _rows(x, -rng.uniform(0.6, 1.2) * np.sin(phi / 2), z, side * np.degrees(phi),
                 -rng.uniform(10, 25) * np.sin(phi))


@dataclass(frozen=True)
class Template:
    """A trajectory template: name, keyframe generator and the angular-speed limit it is retimed with (°/s)."""

    name: str
    keyframes: Keyframes
    max_angular_deg: float = MAX_ANGULAR_DEG


TEMPLATES: dict[str, tuple[Template, ...]] = {
    # The first of each split returns along its own path, so even short smoke runs have revisit pairs.
    "simple": (
        Template("backtrack", _backtrack), Template("arc", _arc), Template("loop", _loop),
        Template("s_curve_return", _s_curve_return), Template("figure_eight", _figure_eight),
        Template("backtrack_pan", _backtrack_pan), Template("orbit_return", _orbit_return),
        Template("s_curve", _s_curve), Template("arc_return", _arc_return),
        Template("lateral_return", _lateral_return),
    ),
    "hard": (
        Template("crane", _crane), Template("yaw_sweep", _yaw_sweep), Template("pitch_walk", _pitch_walk),
        Template("whip_pan", _whip_pan), Template("double_loop", _double_loop),
        Template("extreme_pitch", _extreme_pitch), Template("turnaround", _turnaround),
        Template("orbit_wide", _orbit_wide), Template("helix", _helix),
        Template("fast_whip_pan", _fast_whip_pan, FAST_ANGULAR_DEG),
    ),
}


@dataclass
class BenchScene:
    """One benchmark scene. c2w float32 [F, 4, 4] (pose 0 = identity), K (3, 3) in pixels of image_hw,
    revisit_pairs [(i, j)] pose indices (1 <= i < j), meta: the trajectory builder's record plus measured peak
    speeds. `world` is not serialised."""

    id: str
    split: str
    index: int
    world_seed: int
    style: str
    template: str
    c2w: np.ndarray
    K: np.ndarray
    image_hw: tuple[int, int]
    revisit_pairs: list[tuple[int, int]]
    above_angular_limit: bool
    meta: dict = field(default_factory=dict)
    world: World | None = field(default=None, repr=False)

    def summary(self) -> dict:
        """JSON-ready description (no poses: those go to the scene's .npz)."""
        return {"id": self.id, "split": self.split, "index": self.index, "world_seed": self.world_seed,
                "style": self.style, "template": self.template, "num_frames": len(self.c2w),
                "revisit_pairs": [list(p) for p in self.revisit_pairs],
                "above_angular_limit": self.above_angular_limit, "meta": self.meta}


def peak_speeds(c2w: np.ndarray, fps: int = FPS) -> tuple[float, float]:
    """(max speed m/s, max angular speed °/s) between consecutive poses of c2w [F, 4, 4]."""
    c2w = np.asarray(c2w, dtype=np.float64)
    speed = np.linalg.norm(np.diff(c2w[:, :3, 3], axis=0), axis=-1) * fps
    rel = np.swapaxes(c2w[:-1, :3, :3], 1, 2) @ c2w[1:, :3, :3]
    cos = (np.trace(rel, axis1=1, axis2=2) - 1) / 2
    angular = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))) * fps
    return float(speed.max(initial=0.0)), float(angular.max(initial=0.0))


def median_depth(world: World, K: np.ndarray, image_hw: tuple[int, int]) -> float:
    """Median finite depth (m) of the world seen from the identity pose (sky excluded; the fog distance if all
    sky)."""
    _, depth = world.render(np.eye(4), K, *image_hw)
    finite = depth[np.isfinite(depth)]
    return float(np.median(finite)) if finite.size else float(world.far)


@functools.lru_cache(maxsize=16)
def bench_world(index: int) -> World:
    """The world of scene `index` (seed HELD_OUT_SEED + index, style STYLES[index % 6]). Cached: both splits
    share it, and building a world and its GL meshes costs seconds."""
    return World(HELD_OUT_SEED + index, style=STYLES[index % len(STYLES)])


def make_scene(split: str, index: int, *, seed: int = 42, num_frames: int = 961,
               image_hw: tuple[int, int] = (72, 128), fov: float = DEFAULT_FOV) -> BenchScene:
    """Scene `index` of `split`; see the module docstring."""
    if split not in TEMPLATES:
        raise UserError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if index < 0:
        raise UserError(f"scene index must be >= 0, got {index}")
    templates = TEMPLATES[split]
    template = templates[index % len(templates)]
    world = bench_world(index)
    _, K = first_frame(world, image_hw, fov)
    travel_cap = TRAVEL_DEPTH_FRACTION * median_depth(world, K, image_hw)
    rng = np.random.default_rng([int(seed), SPLITS.index(split), int(index)])

    def draw() -> np.ndarray:
        keys = template.keyframes(rng)
        extent = float(np.linalg.norm(keys[:, :3], axis=-1).max())
        keys[:, :3] *= min(1.0, travel_cap / extent) if extent > 0 else 1.0
        return keys

    c2w, meta = keyframe_trajectory(world, num_frames, draw, kind=template.name,
                                    max_angular_deg=template.max_angular_deg)
    min_gap = max(1, min(48, num_frames // 3))  # as world.trajectories.revisit_trajectory
    pairs = find_revisit_pairs(c2w, min_gap=min_gap)
    speed, angular = peak_speeds(c2w)
    meta.update({"travel_cap_m": travel_cap, "revisit_min_gap": min_gap, "peak_speed_m_s": speed,
                 "peak_angular_deg_s": angular, "path_length_m": float(
                     np.linalg.norm(np.diff(c2w[:, :3, 3].astype(np.float64), axis=0), axis=-1).sum())})
    return BenchScene(id=f"{split}_{index:03d}_{template.name}", split=split, index=index, world_seed=world.seed,
                      style=world.style, template=template.name, c2w=c2w, K=K, image_hw=tuple(image_hw),
                      revisit_pairs=[(int(i), int(j)) for i, j in pairs],
                      above_angular_limit=template.max_angular_deg > MAX_ANGULAR_DEG, meta=meta, world=world)


def make_scenes(splits: tuple[str, ...], count: int, **kwargs) -> list[BenchScene]:
    """Scenes 0..count−1 of each split, split by split."""
    if count < 1:
        raise UserError(f"need at least one scene per split, got {count}")
    return [make_scene(split, index, **kwargs) for split in splits for index in range(count)]
