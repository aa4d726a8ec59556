"""The world styles (biomes): palettes, ground and sky looks, landmark mixes and caption phrases.

A `Style` is a fixed table entry; `scene.build_scene` jitters its numbers per seed so two worlds of one style
still differ. Colours are linear-ish sRGB floats in [0, 1]. Every palette colour carries a name so captions can
say what is there.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Style:
    """One biome. Landmark `mix` maps a landmark kind (see `scene.LANDMARK_BUILDERS`) to a relative weight."""

    name: str
    # ground: two base colours mixed by noise/stripes, grout lines of tiles, speckles (flowers, stones)
    ground_c0: tuple[float, float, float]
    ground_c1: tuple[float, float, float]
    ground_grout: tuple[float, float, float]
    ground_accent: tuple[float, float, float]
    ground_accent2: tuple[float, float, float]
    ground_weights: tuple[float, float, float, float]  # big patches, detail, grain, stripes
    ground_scales: tuple[float, float, float, float]  # their periods in metres
    ground_tiles: tuple[float, float, float]  # tile period (m), grout half-width (m), grout weight
    ground_speckles: tuple[float, float, float]  # cell (m), density (0..1), disc radius (fraction of cell)
    # sky
    sky_zenith: tuple[float, float, float]
    sky_horizon: tuple[float, float, float]
    cloud_colour: tuple[float, float, float]
    cloud_cover: float  # 0 clear .. 1 overcast
    sun_elevation_deg: float
    light: tuple[float, float]  # ambient, diffuse
    fog_distance: float  # metres; fog factor 1 - exp(-(d / fog_distance)^2)
    skyline_colour: tuple[float, float, float]
    skyline: tuple[float, float, float, float]  # base elevation, amplitude, lattice frequency, blocky (0/1)
    # landmarks
    palette: tuple[tuple[str, tuple[float, float, float]], ...]
    mix: tuple[tuple[str, float], ...]
    foliage: tuple[tuple[str, tuple[float, float, float]], ...]  # tree crowns
    num_landmarks: int
    clear_radius: float  # metres around the origin kept free (scene.CLEAR_RADIUS at least)
    # caption phrases (scene-static: no motion words)
    place: str
    ground_phrase: str
    sky_phrase: str


STYLE_TABLE: tuple[Style, ...] = (
    Style(
        name="meadow",
        ground_c0=(0.20, 0.42, 0.12), ground_c1=(0.55, 0.68, 0.22), ground_grout=(0.35, 0.28, 0.16),
        ground_accent=(0.95, 0.90, 0.30), ground_accent2=(0.90, 0.35, 0.55),
        ground_weights=(0.7, 0.8, 0.7, 0.0), ground_scales=(5.0, 0.9, 0.22, 3.0),
        ground_tiles=(4.0, 0.0, 0.0), ground_speckles=(0.6, 0.22, 0.22),
        sky_zenith=(0.20, 0.42, 0.82), sky_horizon=(0.72, 0.84, 0.95), cloud_colour=(1.0, 1.0, 1.0),
        cloud_cover=0.45, sun_elevation_deg=50.0, light=(0.55, 0.6), fog_distance=85.0,
        skyline_colour=(0.42, 0.56, 0.62), skyline=(0.015, 0.07, 2.5, 0.0),
        palette=(("red", (0.80, 0.15, 0.12)), ("blue", (0.15, 0.30, 0.80)), ("yellow", (0.92, 0.78, 0.15)),
                 ("white", (0.92, 0.92, 0.88)), ("orange", (0.92, 0.48, 0.10)), ("purple", (0.50, 0.22, 0.65)),
                 ("teal", (0.10, 0.58, 0.55))),
        mix=(("box", 2.0), ("pillar", 2.0), ("sphere", 1.5), ("cone", 1.0), ("pyramid", 1.0), ("arch", 1.0),
             ("round_tree", 3.0), ("house", 1.5), ("tower", 0.6)),
        foliage=(("green", (0.22, 0.52, 0.16)), ("bright green", (0.40, 0.65, 0.18)),
                 ("dark green", (0.12, 0.36, 0.12))),
        num_landmarks=320,
        clear_radius=4.0,
        place="a wide sunny meadow",
        ground_phrase="green grass dotted with yellow and pink wildflowers",
        sky_phrase="a blue sky with white clouds above low blue hills",
    ),
    Style(
        name="desert",
        ground_c0=(0.78, 0.60, 0.36), ground_c1=(0.93, 0.80, 0.55), ground_grout=(0.55, 0.40, 0.25),
        ground_accent=(0.45, 0.32, 0.22), ground_accent2=(0.62, 0.50, 0.40),
        ground_weights=(0.5, 0.5, 0.5, 0.9), ground_scales=(7.0, 1.1, 0.25, 1.6),
        ground_tiles=(4.0, 0.0, 0.0), ground_speckles=(0.9, 0.2, 0.22),
        sky_zenith=(0.30, 0.55, 0.88), sky_horizon=(0.93, 0.88, 0.78), cloud_colour=(1.0, 0.97, 0.92),
        cloud_cover=0.2, sun_elevation_deg=62.0, light=(0.5, 0.65), fog_distance=95.0,
        skyline_colour=(0.72, 0.50, 0.36), skyline=(0.01, 0.08, 3.0, 1.0),
        palette=(("sandstone", (0.80, 0.55, 0.32)), ("terracotta", (0.72, 0.32, 0.18)),
                 ("ochre", (0.85, 0.65, 0.20)), ("white", (0.93, 0.90, 0.84)), ("turquoise", (0.18, 0.62, 0.62)),
                 ("cactus-green", (0.22, 0.48, 0.22)), ("brown", (0.45, 0.28, 0.16))),
        mix=(("pyramid", 2.5), ("mesa", 1.5), ("obelisk", 1.5), ("cactus", 3.0), ("box", 1.5), ("arch", 1.0),
             ("rock", 2.0), ("pillar", 1.0)),
        foliage=(("olive", (0.40, 0.45, 0.20)), ("cactus-green", (0.22, 0.48, 0.22))),
        num_landmarks=300,
        clear_radius=4.0,
        place="a sandy desert",
        ground_phrase="rippled golden dunes scattered with dark pebbles",
        sky_phrase="a pale blue sky with thin clouds above distant flat-topped mesas",
    ),
    Style(
        name="snow",
        ground_c0=(0.70, 0.78, 0.90), ground_c1=(0.97, 0.98, 1.0), ground_grout=(0.55, 0.62, 0.75),
        ground_accent=(0.25, 0.24, 0.28), ground_accent2=(0.45, 0.55, 0.70),
        ground_weights=(0.8, 0.7, 0.6, 0.25), ground_scales=(4.0, 0.8, 0.2, 2.2),
        ground_tiles=(4.0, 0.0, 0.0), ground_speckles=(0.8, 0.14, 0.2),
        sky_zenith=(0.42, 0.55, 0.75), sky_horizon=(0.85, 0.88, 0.92), cloud_colour=(0.95, 0.95, 0.97),
        cloud_cover=0.6, sun_elevation_deg=25.0, light=(0.6, 0.5), fog_distance=70.0,
        skyline_colour=(0.80, 0.84, 0.92), skyline=(0.02, 0.12, 2.0, 0.0),
        palette=(("red", (0.75, 0.12, 0.12)), ("icy blue", (0.55, 0.75, 0.92)), ("dark green", (0.10, 0.30, 0.18)),
                 ("white", (0.95, 0.95, 0.97)), ("grey", (0.45, 0.46, 0.50)), ("yellow", (0.92, 0.75, 0.18)),
                 ("wooden", (0.50, 0.32, 0.18))),
        mix=(("pine", 4.0), ("snowman", 1.0), ("box", 1.5), ("house", 1.5), ("pyramid", 1.0), ("rock", 1.5),
             ("pillar", 1.0), ("arch", 0.6)),
        foliage=(("dark green", (0.08, 0.28, 0.16)), ("snow-covered", (0.85, 0.90, 0.95))),
        num_landmarks=300,
        clear_radius=4.0,
        place="a snowy winter field",
        ground_phrase="deep white snow with blue shadows and dark stones",
        sky_phrase="a hazy grey-blue sky with heavy clouds above white mountain peaks",
    ),
    Style(
        name="city",
        ground_c0=(0.38, 0.38, 0.40), ground_c1=(0.62, 0.60, 0.58), ground_grout=(0.12, 0.12, 0.13),
        ground_accent=(0.85, 0.80, 0.35), ground_accent2=(0.25, 0.25, 0.27),
        ground_weights=(0.45, 0.6, 0.5, 0.0), ground_scales=(6.0, 1.2, 0.25, 2.0),
        ground_tiles=(2.0, 0.05, 0.9), ground_speckles=(1.5, 0.05, 0.2),
        sky_zenith=(0.28, 0.45, 0.72), sky_horizon=(0.80, 0.82, 0.85), cloud_colour=(0.97, 0.97, 0.98),
        cloud_cover=0.35, sun_elevation_deg=45.0, light=(0.55, 0.6), fog_distance=90.0,
        skyline_colour=(0.50, 0.54, 0.62), skyline=(0.01, 0.10, 6.0, 1.0),
        palette=(("grey", (0.55, 0.55, 0.58)), ("brick-red", (0.62, 0.25, 0.18)), ("cream", (0.90, 0.86, 0.72)),
                 ("glass-blue", (0.30, 0.45, 0.62)), ("black", (0.14, 0.14, 0.16)), ("yellow", (0.90, 0.74, 0.15)),
                 ("green", (0.20, 0.50, 0.25))),
        mix=(("building", 6.0), ("box", 1.0), ("pillar", 1.5), ("round_tree", 1.5), ("sphere", 0.6),
             ("arch", 0.5), ("obelisk", 0.5)),
        foliage=(("green", (0.20, 0.48, 0.18)), ("dark green", (0.10, 0.32, 0.14))),
        num_landmarks=300,
        clear_radius=9.0,
        place="a city square",
        ground_phrase="grey paving stones in a grid of dark joints",
        sky_phrase="a blue sky with a few clouds above a distant skyline of towers",
    ),
    Style(
        name="forest",
        ground_c0=(0.22, 0.18, 0.10), ground_c1=(0.40, 0.42, 0.16), ground_grout=(0.15, 0.12, 0.08),
        ground_accent=(0.70, 0.60, 0.35), ground_accent2=(0.80, 0.20, 0.15),
        ground_weights=(0.8, 0.8, 0.7, 0.0), ground_scales=(3.5, 0.7, 0.18, 2.0),
        ground_tiles=(4.0, 0.0, 0.0), ground_speckles=(0.7, 0.18, 0.22),
        sky_zenith=(0.25, 0.45, 0.70), sky_horizon=(0.70, 0.78, 0.78), cloud_colour=(0.95, 0.96, 0.96),
        cloud_cover=0.5, sun_elevation_deg=55.0, light=(0.5, 0.6), fog_distance=60.0,
        skyline_colour=(0.20, 0.32, 0.26), skyline=(0.02, 0.08, 3.5, 0.0),
        palette=(("dark green", (0.10, 0.32, 0.12)), ("moss green", (0.35, 0.50, 0.16)),
                 ("brown", (0.40, 0.26, 0.14)), ("grey", (0.50, 0.50, 0.48)), ("red", (0.75, 0.15, 0.10)),
                 ("white", (0.90, 0.90, 0.86)), ("blue", (0.18, 0.30, 0.70))),
        mix=(("pine", 5.0), ("round_tree", 4.0), ("rock", 2.0), ("box", 0.8), ("pillar", 0.8), ("house", 0.5),
             ("arch", 0.5), ("sphere", 0.5)),
        foliage=(("dark green", (0.08, 0.30, 0.10)), ("green", (0.20, 0.48, 0.14)), ("olive", (0.38, 0.45, 0.14))),
        num_landmarks=380,
        clear_radius=4.0,
        place="a forest clearing",
        ground_phrase="brown leaf litter and moss with pale mushrooms",
        sky_phrase="a soft blue sky with clouds above dark wooded hills",
    ),
    Style(
        name="autumn",
        ground_c0=(0.58, 0.30, 0.10), ground_c1=(0.85, 0.60, 0.20), ground_grout=(0.35, 0.22, 0.12),
        ground_accent=(0.75, 0.15, 0.08), ground_accent2=(0.95, 0.80, 0.30),
        ground_weights=(0.7, 0.8, 0.7, 0.0), ground_scales=(4.5, 0.8, 0.2, 2.0),
        ground_tiles=(4.0, 0.0, 0.0), ground_speckles=(0.45, 0.30, 0.25),
        sky_zenith=(0.35, 0.45, 0.62), sky_horizon=(0.90, 0.80, 0.68), cloud_colour=(0.98, 0.92, 0.85),
        cloud_cover=0.55, sun_elevation_deg=30.0, light=(0.5, 0.65), fog_distance=75.0,
        skyline_colour=(0.55, 0.40, 0.35), skyline=(0.015, 0.06, 2.5, 0.0),
        palette=(("orange", (0.92, 0.45, 0.08)), ("crimson", (0.70, 0.10, 0.12)), ("golden", (0.90, 0.70, 0.15)),
                 ("brown", (0.42, 0.25, 0.12)), ("stone-grey", (0.58, 0.56, 0.52)), ("white", (0.92, 0.90, 0.85)),
                 ("navy", (0.12, 0.18, 0.42))),
        mix=(("round_tree", 4.0), ("pine", 1.0), ("house", 1.5), ("tower", 0.8), ("box", 1.5), ("pillar", 1.5),
             ("arch", 1.0), ("sphere", 1.0), ("cone", 0.8)),
        foliage=(("orange", (0.92, 0.45, 0.08)), ("crimson", (0.70, 0.12, 0.10)), ("golden", (0.92, 0.72, 0.15))),
        num_landmarks=320,
        clear_radius=4.0,
        place="an autumn park",
        ground_phrase="fallen orange and red leaves over brown earth",
        sky_phrase="a warm hazy sky with golden clouds above low russet hills",
    ),
)

STYLE_BY_NAME = {s.name: s for s in STYLE_TABLE}
