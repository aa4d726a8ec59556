"""The seeded scene description of one world: its look (shader numbers), landmarks, primitives and caption.

Everything here is plain numpy and fully determined by (seed, style): both renderers draw from the same
`Scene`, so the GL rasteriser and the ray-caster see identical geometry and colours.

Conventions (OpenCV world, as in SANA-WM §5 camera handling): +X right, +Y down, +Z forward, world up is -Y.
The ground is the plane y = ground_y > 0 (the action DSL starts the camera at the origin at eye height).
A landmark is a composite of primitives; a primitive is a unit shape scaled by `half` (half extents in metres),
turned by `yaw` about +Y and moved to `center`. Unit shapes (local coordinates, up is -y):
box [-1, 1]^3; cylinder x^2 + z^2 <= 1, |y| <= 1; sphere |q| <= 1; cone with apex at y = -1 and base radius 1
at y = +1; pyramid with apex at y = -1 and square base [-1, 1]^2 at y = +1.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from camworld.world.styles import STYLE_BY_NAME, STYLE_TABLE, Style

PRIMITIVE_KINDS = ("box", "cylinder", "sphere", "cone", "pyramid")
# Face patterns (index used by both renderers): noise, horizontal stripes, vertical stripes, checker, bricks,
# window grid, dots.
PATTERNS = ("noise", "hstripes", "vstripes", "checker", "bricks", "windows", "dots")
EYE_HEIGHT = 1.6
CLEAR_RADIUS = 4.0  # metres around the origin kept free of landmarks
WORLD_RADIUS = 80.0  # landmarks are placed inside this disc; fog hides everything past FAR
FAR = 140.0  # metres along a ray; beyond it a ray sees the sky
PLACEMENT_TRIES = 96


@dataclass(frozen=True)
class Primitive:
    kind: str
    center: tuple[float, float, float]
    half: tuple[float, float, float]
    yaw: float
    colour: tuple[float, float, float]
    accent: tuple[float, float, float]
    pattern: str
    pattern_scale: float  # pattern period in metres
    landmark: int


@dataclass(frozen=True)
class Landmark:
    """One named object in the world. `position` is the centre of its footprint on the ground (y = ground_y);
    `size` is its (width, height, depth) in metres before the yaw turn."""

    position: tuple[float, float, float]
    size: tuple[float, float, float]
    shape: str
    colour: tuple[float, float, float]
    colour_name: str
    yaw: float
    primitives: tuple[Primitive, ...] = field(repr=False)


@dataclass(frozen=True)
class Look:
    """The per-world shading numbers shared by both renderers (jittered from the style by the seed)."""

    ground_c0: np.ndarray
    ground_c1: np.ndarray
    ground_grout: np.ndarray
    ground_accent: np.ndarray
    ground_accent2: np.ndarray
    ground_weights: np.ndarray  # [4]
    ground_scales: np.ndarray  # [4]
    ground_tiles: np.ndarray  # [3]
    ground_speckles: np.ndarray  # [3]
    sky_zenith: np.ndarray
    sky_horizon: np.ndarray
    cloud_colour: np.ndarray
    cloud_cover: float
    sun_dir: np.ndarray  # unit vector towards the sun (world; up is -y)
    light: np.ndarray  # [2] ambient, diffuse
    fog_distance: float
    skyline_colour: np.ndarray
    skyline: np.ndarray  # [4]
    salt: int  # noise salt, < 2**24 so it is exact in every number format

    def uniforms(self) -> dict[str, float | int | tuple]:
        """Name -> value as the shaders name them (a `u_` prefix is added by the GL renderer)."""
        out = {}
        for name, value in self.__dict__.items():
            out[name] = tuple(float(v) for v in value) if isinstance(value, np.ndarray) else value
        return out


@dataclass(frozen=True)
class Scene:
    seed: int
    style: Style
    look: Look
    ground_y: float
    landmarks: tuple[Landmark, ...]
    primitives: dict[str, np.ndarray]  # column arrays over all primitives, see `primitive_table`
    caption: str


def _rot_y(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _jitter(rng: np.random.Generator, colour, amount: float = 0.06) -> tuple[float, float, float]:
    c = np.asarray(colour) * (1.0 + rng.uniform(-amount, amount)) + rng.uniform(-amount, amount, 3) * 0.5
    return tuple(float(v) for v in np.clip(c, 0.0, 1.0))


def _pick(rng: np.random.Generator, palette):
    name, rgb = palette[rng.integers(len(palette))]
    return name, _jitter(rng, rgb)


def _darker(colour, f: float = 0.55) -> tuple[float, float, float]:
    return tuple(float(v * f) for v in colour)


class _Parts:
    """Collects the primitives of one landmark in its own frame (base centre at the origin, up is -y)."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.items: list[tuple] = []

    def add(self, kind, bottom_y, half, colour, accent, pattern=None, scale=None, offset=(0.0, 0.0)):
        """A primitive standing with its bottom at height `bottom_y` above the ground (metres)."""
        pattern = pattern or PATTERNS[self.rng.integers(len(PATTERNS) - 1)]
        scale = scale if scale is not None else float(self.rng.uniform(0.35, 1.2))
        center = (offset[0], -(bottom_y + half[1]), offset[1])
        self.items.append((kind, center, tuple(float(h) for h in half), colour, accent, pattern, scale))


def _build_box(p: _Parts, style: Style):
    name, col = _pick(p.rng, style.palette)
    w, h, d = p.rng.uniform(1.0, 3.5), p.rng.uniform(1.0, 4.5), p.rng.uniform(1.0, 3.5)
    p.add("box", 0.0, (w / 2, h / 2, d / 2), col, _pick(p.rng, style.palette)[1])
    return name, col, (w, h, d)


def _build_pillar(p: _Parts, style: Style):
    name, col = _pick(p.rng, style.palette)
    r, h = p.rng.uniform(0.3, 0.8), p.rng.uniform(3.0, 8.0)
    p.add("cylinder", 0.0, (r, h / 2, r), col, _darker(col), p.rng.choice(["hstripes", "bricks", "dots"]))
    p.add("box", h, (r * 1.4, 0.2, r * 1.4), col, _darker(col, 0.8), "noise")
    return name, col, (2 * r, h + 0.4, 2 * r)


def _build_sphere(p: _Parts, style: Style):
    name, col = _pick(p.rng, style.palette)
    r = p.rng.uniform(0.8, 2.3)
    p.add("sphere", 0.0, (r, r, r), col, _pick(p.rng, style.palette)[1], p.rng.choice(["hstripes", "checker", "dots"]))
    return name, col, (2 * r, 2 * r, 2 * r)


def _build_cone(p: _Parts, style: Style):
    name, col = _pick(p.rng, style.palette)
    r, h = p.rng.uniform(1.0, 2.2), p.rng.uniform(2.0, 5.5)
    p.add("cone", 0.0, (r, h / 2, r), col, _pick(p.rng, style.palette)[1], p.rng.choice(["hstripes", "vstripes"]))
    return name, col, (2 * r, h, 2 * r)


def _build_pyramid(p: _Parts, style: Style):
    name, col = _pick(p.rng, style.palette)
    b, h = p.rng.uniform(2.0, 6.0), p.rng.uniform(2.0, 5.5)
    p.add("pyramid", 0.0, (b / 2, h / 2, b / 2), col, _darker(col), p.rng.choice(["bricks", "hstripes", "checker"]))
    return name, col, (b, h, b)


def _build_arch(p: _Parts, style: Style):
    name, col = _pick(p.rng, style.palette)
    leg, gap, h, t = p.rng.uniform(0.6, 1.0), p.rng.uniform(2.0, 3.5), p.rng.uniform(3.0, 5.0), p.rng.uniform(0.6, 1.0)
    depth = p.rng.uniform(0.8, 1.5)
    acc = _darker(col, 0.7)
    for side in (-1.0, 1.0):
        p.add("box", 0.0, (leg / 2, h / 2, depth / 2), col, acc, "bricks", 0.6, ((gap + leg) / 2 * side, 0.0))
    p.add("box", h, ((gap + 2 * leg) / 2 + 0.2, t / 2, depth / 2 + 0.1), col, acc, "bricks", 0.6)
    return name, col, (gap + 2 * leg + 0.4, h + t, depth + 0.2)


def _trunk(p: _Parts, height: float, radius: float):
    bark = _jitter(p.rng, (0.36, 0.24, 0.14))
    p.add("cylinder", 0.0, (radius, height / 2 + 0.3, radius), bark, _darker(bark), "vstripes", 0.25)


def _build_pine(p: _Parts, style: Style):
    name, col = _pick(p.rng, style.foliage)
    trunk_h, r, h = p.rng.uniform(0.8, 1.8), p.rng.uniform(1.0, 2.0), p.rng.uniform(3.5, 7.0)
    _trunk(p, trunk_h, 0.25)
    p.add("cone", trunk_h, (r, h / 2, r), col, _darker(col, 0.6), "hstripes", float(p.rng.uniform(0.5, 0.9)))
    return name, col, (2 * r, trunk_h + h, 2 * r)


def _build_round_tree(p: _Parts, style: Style):
    name, col = _pick(p.rng, style.foliage)
    trunk_h, r = p.rng.uniform(1.5, 3.0), p.rng.uniform(1.2, 2.4)
    _trunk(p, trunk_h, 0.22)
    p.add("sphere", trunk_h - 0.3, (r, r * 0.9, r), col, _darker(col, 0.65), "dots", float(p.rng.uniform(0.5, 0.9)))
    return name, col, (2 * r, trunk_h - 0.3 + 1.8 * r, 2 * r)


def _build_house(p: _Parts, style: Style):
    name, col = _pick(p.rng, style.palette)
    w, h, d = p.rng.uniform(3.0, 6.0), p.rng.uniform(2.5, 4.0), p.rng.uniform(3.0, 6.0)
    roof = _jitter(p.rng, (0.62, 0.22, 0.14)) if p.rng.random() < 0.6 else _pick(p.rng, style.palette)[1]
    p.add("box", 0.0, (w / 2, h / 2, d / 2), col, _darker(col, 0.45), "windows", 1.2)
    rh = p.rng.uniform(1.2, 2.5)
    p.add("pyramid", h, (w / 2 + 0.3, rh / 2, d / 2 + 0.3), roof, _darker(roof), "hstripes", 0.4)
    return name, col, (w + 0.6, h + rh, d + 0.6)


def _build_tower(p: _Parts, style: Style):
    name, col = _pick(p.rng, style.palette)
    r, h = p.rng.uniform(1.2, 2.2), p.rng.uniform(5.0, 10.0)
    roof = _pick(p.rng, style.palette)[1]
    p.add("cylinder", 0.0, (r, h / 2, r), col, _darker(col, 0.6), "bricks", 0.7)
    rh = p.rng.uniform(2.0, 4.0)
    p.add("cone", h, (r + 0.4, rh / 2, r + 0.4), roof, _darker(roof), "hstripes", 0.5)
    return name, col, (2 * r + 0.8, h + rh, 2 * r + 0.8)


def _build_obelisk(p: _Parts, style: Style):
    name, col = _pick(p.rng, style.palette)
    w, h = p.rng.uniform(0.8, 1.6), p.rng.uniform(6.0, 12.0)
    p.add("box", 0.0, (w / 2, h / 2, w / 2), col, _darker(col, 0.6), "hstripes", 1.0)
    p.add("pyramid", h, (w / 2, w * 0.6, w / 2), _jitter(p.rng, (0.9, 0.75, 0.2)), col, "noise")
    return name, col, (w, h + 1.2 * w, w)


def _build_building(p: _Parts, style: Style):
    name, col = _pick(p.rng, style.palette)
    w, h, d = p.rng.uniform(5.0, 11.0), p.rng.uniform(6.0, 28.0), p.rng.uniform(5.0, 11.0)
    p.add("box", 0.0, (w / 2, h / 2, d / 2), col, _darker(col, 0.35), "windows", float(p.rng.uniform(1.5, 2.5)))
    if p.rng.random() < 0.4:
        p.add("box", h, (w / 4, 1.0, d / 4), col, _darker(col, 0.5), "vstripes", 0.5)
    return name, col, (w, h, d)


def _build_rock(p: _Parts, style: Style):
    grey = _jitter(p.rng, (0.5, 0.48, 0.45), 0.15)
    r = p.rng.uniform(0.7, 2.2)
    p.add("sphere", -0.3 * r, (r * p.rng.uniform(1.0, 1.6), r * 0.7, r), grey, _darker(grey, 0.7), "noise", 0.5)
    return "grey", grey, (2 * r * 1.6, 1.1 * r, 2 * r)


def _build_snowman(p: _Parts, style: Style):
    white = (0.95, 0.95, 0.97)
    r = p.rng.uniform(0.6, 1.0)
    p.add("sphere", 0.0, (r, r, r), white, (0.8, 0.85, 0.95), "noise", 0.4)
    p.add("sphere", 1.8 * r, (0.7 * r, 0.7 * r, 0.7 * r), white, (0.8, 0.85, 0.95), "noise", 0.4)
    p.add("sphere", 3.0 * r, (0.5 * r, 0.5 * r, 0.5 * r), white, (0.2, 0.2, 0.2), "dots", 0.3)
    hat = _pick(p.rng, style.palette)[1]
    p.add("cylinder", 3.9 * r, (0.35 * r, 0.3 * r, 0.35 * r), hat, _darker(hat), "noise", 0.3)
    return "white", white, (2 * r, 4.5 * r, 2 * r)


def _build_cactus(p: _Parts, style: Style):
    name, col = _pick(p.rng, style.foliage)
    h, r = p.rng.uniform(2.5, 5.0), p.rng.uniform(0.25, 0.45)
    p.add("cylinder", 0.0, (r, h / 2, r), col, _darker(col, 0.6), "vstripes", 0.2)
    for side in (-1.0, 1.0):
        ah = h * p.rng.uniform(0.25, 0.45)
        base = h * p.rng.uniform(0.3, 0.5)
        p.add("cylinder", base, (0.7 * r, ah / 2, 0.7 * r), col, _darker(col, 0.6), "vstripes", 0.2, (side * 3 * r, 0))
        p.add("box", base, (1.5 * r, 0.6 * r, 0.6 * r), col, _darker(col, 0.6), "noise", 0.2, (side * 1.5 * r, 0))
    return name, col, (7.4 * r, h, 2 * r)


def _build_mesa(p: _Parts, style: Style):
    name, col = _pick(p.rng, style.palette)
    w, h, d = p.rng.uniform(6.0, 14.0), p.rng.uniform(4.0, 10.0), p.rng.uniform(6.0, 14.0)
    p.add("box", 0.0, (w / 2, h / 2, d / 2), col, _darker(col, 0.7), "hstripes", float(p.rng.uniform(0.8, 1.6)))
    return name, col, (w, h, d)


LANDMARK_BUILDERS = {
    "box": _build_box, "pillar": _build_pillar, "sphere": _build_sphere, "cone": _build_cone,
    "pyramid": _build_pyramid, "arch": _build_arch, "pine": _build_pine, "round_tree": _build_round_tree,
    "house": _build_house, "tower": _build_tower, "obelisk": _build_obelisk, "building": _build_building,
    "rock": _build_rock, "snowman": _build_snowman, "cactus": _build_cactus, "mesa": _build_mesa,
}


def _make_look(rng: np.random.Generator, style: Style, seed: int) -> Look:
    elev = np.deg2rad(style.sun_elevation_deg + rng.uniform(-8, 8))
    azim = rng.uniform(0, 2 * np.pi)
    sun = np.array([np.cos(elev) * np.sin(azim), -np.sin(elev), np.cos(elev) * np.cos(azim)])
    a = np.asarray
    return Look(
        ground_c0=a(_jitter(rng, style.ground_c0, 0.04)), ground_c1=a(_jitter(rng, style.ground_c1, 0.04)),
        ground_grout=a(style.ground_grout), ground_accent=a(style.ground_accent),
        ground_accent2=a(style.ground_accent2),
        ground_weights=a(style.ground_weights), ground_scales=a(style.ground_scales) * rng.uniform(0.85, 1.15),
        ground_tiles=a(style.ground_tiles), ground_speckles=a(style.ground_speckles),
        sky_zenith=a(_jitter(rng, style.sky_zenith, 0.04)), sky_horizon=a(_jitter(rng, style.sky_horizon, 0.03)),
        cloud_colour=a(style.cloud_colour),
        cloud_cover=float(np.clip(style.cloud_cover + rng.uniform(-0.1, 0.1), 0, 1)),
        sun_dir=sun, light=a(style.light), fog_distance=float(style.fog_distance),
        skyline_colour=a(_jitter(rng, style.skyline_colour, 0.04)), skyline=a(style.skyline),
        salt=int(np.random.default_rng([seed, 7]).integers(1, 2**24)),
    )


def _place(rng: np.random.Generator, radii: list[float], blocky: bool, clear: float) -> np.ndarray:
    """Footprint centres [N, 2] (x, z): no overlap, none inside the clear radius, denser near the origin; NaN
    where no free spot was found (that landmark is left out)."""
    out = np.zeros((len(radii), 2))
    for i, r in enumerate(radii):
        rad = WORLD_RADIUS * rng.random(PLACEMENT_TRIES) ** 0.75
        ang = rng.uniform(0, 2 * np.pi, PLACEMENT_TRIES)
        cand = np.stack([rad * np.cos(ang), rad * np.sin(ang)], 1)
        if blocky:
            cand = np.round(cand / 4.0) * 4.0
        ok = np.linalg.norm(cand, axis=1) >= clear + r
        placed = ~np.isnan(out[:i, 0])
        if placed.any():
            gaps = np.linalg.norm(cand[:, None] - out[None, :i][:, placed], axis=2) - np.asarray(radii[:i])[placed]
            ok &= (gaps >= r + 1.0).all(1)
        out[i] = cand[np.argmax(ok)] if ok.any() else np.nan
    return out


def primitive_table(landmarks) -> dict[str, np.ndarray]:
    """Column arrays over all primitives: kind [P] int32 (index into PRIMITIVE_KINDS), center [P, 3], half [P, 3],
    yaw [P], colour [P, 3], accent [P, 3], pattern [P] int32 (index into PATTERNS), pattern_scale [P],
    landmark [P] int32; all float32."""
    prims = [p for lm in landmarks for p in lm.primitives]
    f32 = np.float32
    return {
        "kind": np.array([PRIMITIVE_KINDS.index(p.kind) for p in prims], np.int32),
        "center": np.array([p.center for p in prims], f32).reshape(-1, 3),
        "half": np.array([p.half for p in prims], f32).reshape(-1, 3),
        "yaw": np.array([p.yaw for p in prims], f32),
        "colour": np.array([p.colour for p in prims], f32).reshape(-1, 3),
        "accent": np.array([p.accent for p in prims], f32).reshape(-1, 3),
        "pattern": np.array([PATTERNS.index(p.pattern) for p in prims], np.int32),
        "pattern_scale": np.array([p.pattern_scale for p in prims], f32),
        "landmark": np.array([p.landmark for p in prims], np.int32),
    }


def style_for_seed(seed: int) -> str:
    """The style a seed picks when none is asked for."""
    return STYLE_TABLE[np.random.default_rng([int(seed), 1]).integers(len(STYLE_TABLE))].name


def build_scene(seed: int, style_name: str | None = None) -> Scene:
    """The world of `seed`; `style_name` None picks the style from the seed."""
    seed = int(seed)
    style = STYLE_BY_NAME[style_name or style_for_seed(seed)]
    rng = np.random.default_rng([seed, 2, STYLE_TABLE.index(style)])
    look = _make_look(rng, style, seed)
    kinds = [k for k, _ in style.mix]
    weights = np.array([w for _, w in style.mix])
    chosen = rng.choice(len(kinds), size=style.num_landmarks, p=weights / weights.sum())
    built = []
    for k in chosen:
        parts = _Parts(rng)
        colour_name, colour, size = LANDMARK_BUILDERS[kinds[k]](parts, style)
        built.append((kinds[k], colour_name, colour, size, parts.items))
    radii = [0.5 * float(np.hypot(size[0], size[2])) for _, _, _, size, _ in built]
    blocky = style.name == "city"
    centres = _place(rng, radii, blocky, max(CLEAR_RADIUS, style.clear_radius))
    kept = [(b, c) for b, c in zip(built, centres) if not np.isnan(c[0])]
    landmarks = []
    for i, ((shape, colour_name, colour, size, items), (cx, cz)) in enumerate(kept):
        yaw = float(rng.integers(4) * np.pi / 2) if blocky else float(rng.uniform(0, 2 * np.pi))
        rot = _rot_y(yaw)
        base = np.array([cx, EYE_HEIGHT, cz])
        prims = tuple(
            Primitive(kind, tuple(float(v) for v in base + rot @ np.asarray(c)), half, yaw, col, acc, pat, scale, i)
            for kind, c, half, col, acc, pat, scale in items
        )
        landmarks.append(Landmark(tuple(float(v) for v in base), tuple(float(v) for v in size), shape, colour,
                                  colour_name, yaw, prims))
    caption = make_caption(style, look, landmarks)
    return Scene(seed, style, look, EYE_HEIGHT, tuple(landmarks), primitive_table(landmarks), caption)


_PLURAL = {
    "box": "painted blocks", "pillar": "pillars", "sphere": "large spheres", "cone": "cones",
    "pyramid": "pyramids", "arch": "stone arches", "pine": "pine trees", "round_tree": "round-crowned trees",
    "house": "small houses with pointed roofs", "tower": "round towers", "obelisk": "obelisks",
    "building": "tall buildings with rows of windows", "rock": "boulders", "snowman": "snowmen",
    "cactus": "cacti", "mesa": "flat-topped rock mesas",
}
_SINGULAR = {
    "box": "block", "pillar": "pillar", "sphere": "sphere", "cone": "cone", "pyramid": "pyramid", "arch": "arch",
    "pine": "pine tree", "round_tree": "tree", "house": "house", "tower": "tower", "obelisk": "obelisk",
    "building": "building", "rock": "boulder", "snowman": "snowman", "cactus": "cactus", "mesa": "mesa",
}


def make_caption(style: Style, look: Look, landmarks) -> str:
    """A scene-static description (SANA-WM §4: no camera-motion words) built from the world's content."""
    elevation = np.degrees(np.arcsin(-look.sun_dir[1]))
    light = "bright midday light" if elevation > 45 else "soft low sunlight" if elevation < 28 else "clear daylight"
    clouds = "overcast" if look.cloud_cover > 0.6 else "cloudy" if look.cloud_cover > 0.4 else "mostly clear"
    by_shape = Counter(lm.shape for lm in landmarks)
    phrases = []
    for shape, _ in by_shape.most_common(4):
        colours = Counter(lm.colour_name for lm in landmarks if lm.shape == shape)
        top = [c for c, _ in colours.most_common(2)]
        phrases.append(f"{' and '.join(top)} {_PLURAL[shape]}")
    nearest = min(landmarks, key=lambda lm: np.hypot(lm.position[0], lm.position[2]))
    listing = ", ".join(phrases[:-1]) + f" and {phrases[-1]}" if len(phrases) > 1 else phrases[0]
    return (
        f"{style.place[0].upper()}{style.place[1:]} of {style.ground_phrase}, under {style.sky_phrase}, "
        f"in {light} on a {clouds} day. Across the open ground stand {listing}. "
        f"The nearest landmark is a {nearest.colour_name} {_SINGULAR[nearest.shape]} a few metres away."
    )


def _to_unit(positions: np.ndarray, prims: dict[str, np.ndarray], margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Positions [N, 3] in every primitive's unit frame, grown by `margin`: ([N, P, 3], grown half [P, 3])."""
    rel = positions[:, None, :] - prims["center"][None]
    c, s = np.cos(prims["yaw"]), np.sin(prims["yaw"])
    # inverse yaw: local = R^T rel
    lx = c * rel[..., 0] - s * rel[..., 2]
    lz = s * rel[..., 0] + c * rel[..., 2]
    half = prims["half"] + margin
    q = np.stack([lx, rel[..., 1], lz], -1) / half[None]
    return q, half


def points_collide(scene: Scene, positions: np.ndarray, margin: float) -> np.ndarray:
    """True where a point is under the ground or within `margin` of a primitive ([N, 3] -> [N] bool).

    The margin grows each unit shape's half extents, which is exact for boxes and a close bound for the rest.
    """
    positions = np.asarray(positions, np.float64).reshape(-1, 3)
    hit = positions[:, 1] > scene.ground_y - margin
    prims = scene.primitives
    if len(prims["kind"]) == 0:
        return hit
    q, _ = _to_unit(positions, prims, margin)
    x, y, z = np.abs(q[..., 0]), q[..., 1], np.abs(q[..., 2])
    within_y = np.abs(y) <= 1.0
    taper = (y + 1.0) / 2.0 + margin / np.maximum(prims["half"][:, 0], 1e-3)
    inside = np.stack([
        (x <= 1) & within_y & (z <= 1),
        (x**2 + z**2 <= 1) & within_y,
        x**2 + y**2 + z**2 <= 1,
        (np.sqrt(x**2 + z**2) <= taper) & within_y,
        (x <= taper) & (z <= taper) & within_y,
    ], 0)
    kind = prims["kind"][None, :]
    inside_own = np.take_along_axis(inside, np.broadcast_to(kind, inside.shape[1:])[None], 0)[0]
    return hit | inside_own.any(axis=1)
