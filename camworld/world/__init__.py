"""The procedural ground-truth world: camworld's embedded data source (our "game engine").

`World(seed, style)` is a static, seeded scene in metres and the OpenCV camera convention (+X right, +Y down,
+Z forward; world up is -Y). The ground is the plane y = ground_y = 1.6 (eye height), so a camera at the origin
with the identity pose (where the action DSL starts) stands on it looking along the ground; landmarks keep a clear
radius of at least 4 m around the origin (9 m in the city) and fill an 80 m disc, and fog closes the view at 140 m.

`World.render` returns RGB and metric z-depth for any c2w / intrinsics / size. Backends: "gl" (moderngl on a
headless EGL context; one context per process, created lazily and cached at module level in
`gl_renderer._GL`), "ray" (a pure-torch ray-caster of the same scene; slow) and "auto" (GL, or the ray-caster
with one warning when EGL is unavailable). Renders are deterministic: the same pose always gives the same frame.
Captions are scene-static (SANA-WM §4: no motion words) and generated from the world's content.
"""

from __future__ import annotations

import warnings

import numpy as np

from camworld.errors import UserError
from camworld.world.scene import FAR, Landmark, build_scene, points_collide
from camworld.world.styles import STYLE_TABLE

STYLES: tuple[str, ...] = tuple(s.name for s in STYLE_TABLE)
BACKENDS = ("auto", "gl", "ray")
_WARNED: dict[str, bool] = {}


class World:
    """A seeded static world. `style` None picks one of STYLES from the seed."""

    far = FAR

    def __init__(self, seed: int, style: str | None = None):
        if style is not None and style not in STYLES:
            raise UserError(f"unknown world style {style!r}; choose one of {', '.join(STYLES)}")
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise UserError(f"world seed must be a non-negative integer, got {seed!r}")
        self.scene = build_scene(int(seed), style)
        self.seed = int(seed)
        self.style: str = self.scene.style.name
        self.caption: str = self.scene.caption
        self.ground_y: float = float(self.scene.ground_y)
        self.landmarks: list[Landmark] = list(self.scene.landmarks)
        self._renderers: dict[str, object] = {}

    def __repr__(self) -> str:
        return f"World(seed={self.seed}, style={self.style!r}, landmarks={len(self.landmarks)})"

    def _renderer(self, backend: str):
        if backend not in BACKENDS:
            raise UserError(f"unknown render backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        if backend == "auto":
            from camworld.world.gl_renderer import gl_available

            backend = "gl" if gl_available() else "ray"
            if backend == "ray" and not _WARNED.get("gl"):
                _WARNED["gl"] = True
                warnings.warn("headless EGL is unavailable: World.render falls back to the slow torch ray-caster",
                              RuntimeWarning, stacklevel=3)
        if backend not in self._renderers:
            if backend == "gl":
                from camworld.world.gl_renderer import GLRenderer

                self._renderers[backend] = GLRenderer(self.scene)
            else:
                from camworld.world.ray_renderer import RayRenderer

                self._renderers[backend] = RayRenderer(self.scene)
        return self._renderers[backend]

    def render(self, c2w, K, height: int, width: int, *, backend: str = "auto") -> tuple[np.ndarray, np.ndarray]:
        """Render frames.

        c2w: (F, 4, 4) or (4, 4) camera-to-world (OpenCV); K: (F, 3, 3) or (3, 3) in pixels of (height, width),
        pixel centres at integer (u, v). Returns rgb uint8 [F, H, W, 3] and depth float32 [F, H, W]: z-depth along
        the camera's +Z in metres, inf where the ray sees sky (nothing within `World.far` metres).
        """
        c2w = np.asarray(c2w, dtype=np.float64)
        K = np.asarray(K, dtype=np.float64)
        if c2w.ndim == 2:
            c2w = c2w[None]
        if c2w.ndim != 3 or c2w.shape[1:] != (4, 4):
            raise UserError(f"c2w must have shape (F, 4, 4) or (4, 4), got {c2w.shape}")
        if K.ndim == 2:
            K = np.broadcast_to(K, (len(c2w), 3, 3))
        if K.shape != (len(c2w), 3, 3):
            raise UserError(f"K must have shape (3, 3) or ({len(c2w)}, 3, 3), got {K.shape}")
        if not all(np.isfinite(a).all() for a in (c2w, K)):
            raise UserError("c2w and K must be finite")
        if int(height) != height or int(width) != width or height < 1 or width < 1:
            raise UserError(f"image size must be positive integers, got {height}x{width}")
        if np.any(K[:, 0, 0] <= 0) or np.any(K[:, 1, 1] <= 0):
            raise UserError("focal lengths in K must be positive")
        return self._renderer(backend).render(c2w, K, int(height), int(width))

    def collides(self, positions, margin: float = 0.3) -> np.ndarray:
        """positions (N, 3) (or (3,)) -> bool (N,): inside or within `margin` metres of a landmark, or under the
        ground (closer than `margin` to it)."""
        positions = np.asarray(positions, dtype=np.float64)
        if positions.shape[-1:] != (3,):
            raise UserError(f"positions must have shape (N, 3), got {positions.shape}")
        return points_collide(self.scene, positions.reshape(-1, 3), float(margin))
