"""The fallback renderer: a pure-torch ray-caster of the same scene, for machines without GL.

Analytic ray/shape intersection in each primitive's unit frame (scene.py documents the unit shapes), then the
same shading as the GL renderer (`shading.Shader`, a mirror of `glsl.SHADING`). It agrees with the GL
renderer in geometry and colour up to tessellation of curved shapes and rasterisation details; it is slow
(brute force over the rays of a tile x the primitives inside the tile's cone of view), so it is the fallback.
"""

from __future__ import annotations

import numpy as np
import torch

from camworld.world.scene import FAR, Scene
from camworld.world.shading import Shader

TILE = 16  # pixels per side of a ray tile
_EPS = 1e-4


def _pick_t(*candidates: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Smallest positive t among (t, valid) candidates, inf where none."""
    best = None
    for t, ok in candidates:
        t = torch.where(ok & (t > _EPS), t, torch.full_like(t, torch.inf))
        best = t if best is None else torch.minimum(best, t)
    return best


def _intersect_box(o, d):
    inv = 1.0 / torch.where(d.abs() < 1e-12, torch.full_like(d, 1e-12), d)
    t1, t2 = (-1.0 - o) * inv, (1.0 - o) * inv
    tmin = torch.minimum(t1, t2).amax(-1)
    tmax = torch.maximum(t1, t2).amin(-1)
    return _pick_t((tmin, tmax >= tmin))


def _quadratic_roots(a, b, c):
    disc = b * b - 4 * a * c
    ok = (disc >= 0) & (a.abs() > 1e-12)
    sq = disc.clamp_min(0).sqrt()
    a2 = torch.where(a.abs() > 1e-12, 2 * a, torch.ones_like(a))
    return (-b - sq) / a2, (-b + sq) / a2, ok


def _intersect_cylinder(o, d):
    ox, oy, oz = o.unbind(-1)
    dx, dy, dz = d.unbind(-1)
    r0, r1, ok = _quadratic_roots(dx * dx + dz * dz, 2 * (ox * dx + oz * dz), ox * ox + oz * oz - 1)
    side = [(t, ok & ((oy + t * dy).abs() <= 1)) for t in (r0, r1)]
    dy_safe = torch.where(dy.abs() < 1e-12, torch.full_like(dy, 1e-12), dy)
    t_cap = (-torch.sign(dy_safe) - oy) / dy_safe
    cap_ok = (ox + t_cap * dx) ** 2 + (oz + t_cap * dz) ** 2 <= 1
    return _pick_t(*side, (t_cap, cap_ok))


def _intersect_sphere(o, d):
    r0, _, ok = _quadratic_roots((d * d).sum(-1), 2 * (o * d).sum(-1), (o * o).sum(-1) - 1)
    return _pick_t((r0, ok))


def _intersect_cone(o, d):
    ox, oy, oz = o.unbind(-1)
    dx, dy, dz = d.unbind(-1)
    y0 = oy + 1
    a = dx * dx + dz * dz - 0.25 * dy * dy
    b = 2 * (ox * dx + oz * dz - 0.25 * y0 * dy)
    c = ox * ox + oz * oz - 0.25 * y0 * y0
    r0, r1, ok = _quadratic_roots(a, b, c)
    side = [(t, ok & ((oy + t * dy).abs() <= 1)) for t in (r0, r1)]
    dy_safe = torch.where(dy.abs() < 1e-12, torch.full_like(dy, 1e-12), dy)
    t_base = (1 - oy) / dy_safe
    base_ok = (ox + t_base * dx) ** 2 + (oz + t_base * dz) ** 2 <= 1
    return _pick_t(*side, (t_base, base_ok))


_PYRAMID_PLANES = torch.tensor([[1, -0.5, 0, 0.5], [-1, -0.5, 0, 0.5], [0, -0.5, 1, 0.5], [0, -0.5, -1, 0.5],
                                [0, 1, 0, 1]], dtype=torch.float32)


def _intersect_pyramid(o, d):
    n, h = _PYRAMID_PLANES[:, :3], _PYRAMID_PLANES[:, 3]
    denom = d @ n.T
    num = h - o @ n.T
    t = num / torch.where(denom.abs() < 1e-12, torch.full_like(denom, 1e-12), denom)
    enter = torch.where(denom < 0, t, torch.full_like(t, -torch.inf)).amax(-1)
    leave = torch.where(denom > 0, t, torch.full_like(t, torch.inf)).amin(-1)
    parallel_out = ((denom.abs() < 1e-12) & (num < 0)).any(-1)
    return _pick_t((enter, (leave >= enter) & ~parallel_out))


_INTERSECT = (_intersect_box, _intersect_cylinder, _intersect_sphere, _intersect_cone, _intersect_pyramid)


def unit_normals(kind: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Outward unit-shape normals at surface points q [N, 3] (gradients, as meshes.py)."""
    x, y, z = q.unbind(-1)
    zero, one = torch.zeros_like(x), torch.ones_like(x)
    axis = q.abs().argmax(-1)
    box = torch.nn.functional.one_hot(axis, 3).to(q.dtype) * torch.sign(q)
    cyl = torch.where((y.abs() > 1 - 1e-3)[:, None], torch.stack([zero, torch.sign(y), zero], -1),
                      torch.stack([x, zero, z], -1))
    r = torch.hypot(x, z).clamp_min(1e-6)
    cone = torch.where((y > 1 - 1e-3)[:, None], torch.stack([zero, one, zero], -1),
                       torch.stack([x / r, -0.5 * one, z / r], -1))
    plane = (q @ _PYRAMID_PLANES[:, :3].T - _PYRAMID_PLANES[:, 3]).argmax(-1)
    pyr = _PYRAMID_PLANES[plane, :3]
    out = torch.stack([box, cyl, q, cone, pyr], 0)[kind, torch.arange(len(q))]
    return out / out.norm(dim=-1, keepdim=True).clamp_min(1e-9)


class RayRenderer:
    """Ray-casts one scene on CPU with torch; same call as GLRenderer.render."""

    def __init__(self, scene: Scene):
        self.scene = scene
        p = scene.primitives
        self.kind = torch.from_numpy(p["kind"]).long()
        self.center = torch.from_numpy(p["center"])
        self.half = torch.from_numpy(p["half"])
        yaw = torch.from_numpy(p["yaw"])
        c, s, z, o = torch.cos(yaw), torch.sin(yaw), torch.zeros_like(yaw), torch.ones_like(yaw)
        self.rot = torch.stack([c, z, s, z, o, z, -s, z, c], -1).reshape(-1, 3, 3)  # R_y(yaw), local -> world
        self.colour = torch.from_numpy(p["colour"])
        self.accent = torch.from_numpy(p["accent"])
        self.pattern = torch.from_numpy(p["pattern"]).long()
        self.pattern_scale = torch.from_numpy(p["pattern_scale"])
        self.landmark = torch.from_numpy(p["landmark"]).long()
        self.bound = self.half.norm(dim=-1)
        self.shader = Shader(scene.look)

    def _nearest_hits(self, origin: torch.Tensor, dirs: torch.Tensor):
        """Nearest primitive hit per ray of dirs [H, W, 3]: (t [H*W], primitive index [H*W], -1 where none).

        Rays are taken in square tiles; a tile only tests the primitives whose bounding sphere meets the cone
        around its rays, which is what makes brute force affordable.
        """
        height, width, _ = dirs.shape
        best_t = torch.full((height, width), torch.inf)
        best_i = torch.full((height, width), -1, dtype=torch.long)
        rel = self.center - origin
        dist = rel.norm(dim=-1)
        near = dist - self.bound < FAR
        centre_dir = rel / dist.clamp_min(1e-6)[:, None]
        # angular radius of each bounding sphere as seen from the camera (pi when the camera is inside it)
        spread = torch.where(dist > self.bound, torch.asin((self.bound / dist.clamp_min(1e-6)).clamp(max=1.0)),
                             torch.full_like(dist, torch.pi))
        for y0 in range(0, height, TILE):
            for x0 in range(0, width, TILE):
                d = dirs[y0:y0 + TILE, x0:x0 + TILE].reshape(-1, 3)
                axis = d.mean(0)
                axis = axis / axis.norm()
                cone = torch.acos((d @ axis).clamp(-1.0, 1.0)).max()
                ang = torch.acos((centre_dir @ axis).clamp(-1.0, 1.0))
                cand = near & (ang <= cone + spread + 1e-3)
                t_tile = torch.full((len(d),), torch.inf)
                i_tile = torch.full((len(d),), -1, dtype=torch.long)
                for k, intersect in enumerate(_INTERSECT):
                    idx = torch.nonzero(cand & (self.kind == k)).squeeze(1)
                    if len(idx) == 0:
                        continue
                    rot_t = self.rot[idx].transpose(1, 2)
                    o_l = torch.einsum("pij,pj->pi", rot_t, origin - self.center[idx]) / self.half[idx]
                    d_l = torch.einsum("pij,rj->rpi", rot_t, d) / self.half[idx]
                    t = intersect(o_l.expand_as(d_l), d_l)
                    # amin + argmin: Tensor.min(dim) is pathologically slow with 2 threads on torch 2.13 CPU
                    t_min, arg = t.amin(dim=1), t.argmin(dim=1)
                    better = t_min < t_tile
                    t_tile = torch.where(better, t_min, t_tile)
                    i_tile = torch.where(better, idx[arg], i_tile)
                shape = best_t[y0:y0 + TILE, x0:x0 + TILE].shape
                best_t[y0:y0 + TILE, x0:x0 + TILE] = t_tile.reshape(shape)
                best_i[y0:y0 + TILE, x0:x0 + TILE] = i_tile.reshape(shape)
        return best_t.reshape(-1), best_i.reshape(-1)

    def _frame(self, c2w: torch.Tensor, K: torch.Tensor, height: int, width: int):
        fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
        v, u = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                              indexing="ij")
        d_cam = torch.stack([(u - cx) / fx, (v - cy) / fy, torch.ones_like(u)], -1).reshape(-1, 3)
        d_cam = d_cam / d_cam.norm(dim=-1, keepdim=True)
        rot, origin = c2w[:3, :3], c2w[:3, 3]
        dirs = d_cam @ rot.T
        t_prim, prim = self._nearest_hits(origin, dirs.reshape(height, width, 3))
        gy = float(self.scene.ground_y)
        dy = dirs[:, 1]
        t_ground = torch.where(dy > 1e-6, (gy - origin[1]) / dy.clamp_min(1e-6), torch.full_like(dy, torch.inf))
        t_ground = torch.where(t_ground > 0, t_ground, torch.full_like(dy, torch.inf))
        t = torch.minimum(t_prim, t_ground)
        is_sky = t > FAR
        is_prim = ~is_sky & (t_prim <= t_ground)
        is_ground = ~is_sky & ~is_prim
        colour = torch.zeros(len(dirs), 3)
        focal = 0.5 * (fx + fy)
        sh = self.shader
        if is_sky.any():
            colour[is_sky] = sh.sky_colour(dirs[is_sky], float(1.0 / fx))
        if is_ground.any():
            tg, dg = t[is_ground], dirs[is_ground]
            p = origin + tg[:, None] * dg
            fp = tg / (focal * dg[:, 1].abs().clamp_min(0.02))
            normal = torch.tensor([[0.0, -1.0, 0.0]]).expand(len(tg), 3)
            colour[is_ground] = sh.fogged(sh.lit(sh.ground_colour(p[:, 0], p[:, 2], fp), normal), tg)
        if is_prim.any():
            i, tp, dp = prim[is_prim], t[is_prim], dirs[is_prim]
            rot_i = self.rot[i]
            q = torch.einsum("nji,nj->ni", rot_i, origin + tp[:, None] * dp - self.center[i]) / self.half[i]
            nu = unit_normals(self.kind[i], q)
            n = torch.einsum("nij,nj->ni", rot_i, nu / self.half[i])
            n = n / n.norm(dim=-1, keepdim=True)
            fp = tp / (focal * (n * dp).sum(-1).abs().clamp_min(0.15))
            col = sh.landmark_colour(q, nu, self.half[i], self.kind[i], self.pattern[i], self.pattern_scale[i],
                                     self.landmark[i], self.colour[i], self.accent[i], fp)
            colour[is_prim] = sh.fogged(sh.lit(col, n), tp)
        depth = torch.where(is_sky, torch.full_like(t, torch.inf), t * d_cam[:, 2])
        rgb = (colour.clamp(0, 1) * 255).round().to(torch.uint8)
        return rgb.reshape(height, width, 3), depth.reshape(height, width)

    def render(self, c2w: np.ndarray, K: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """c2w [F, 4, 4], K [F, 3, 3] -> (rgb uint8 [F, H, W, 3], z-depth float32 [F, H, W], inf for sky)."""
        rgb = np.empty((len(c2w), height, width, 3), np.uint8)
        depth = np.empty((len(c2w), height, width), np.float32)
        threads = torch.get_num_threads()
        # The per-tile tensors are small: intra-op threads only add wake-up cost (10x slower on a busy 2-core box).
        torch.set_num_threads(1)
        try:
            for f in range(len(c2w)):
                c = torch.from_numpy(np.ascontiguousarray(c2w[f], dtype=np.float32))
                k = torch.from_numpy(np.ascontiguousarray(K[f], dtype=np.float32))
                with torch.no_grad():
                    frame_rgb, frame_depth = self._frame(c, k, height, width)
                rgb[f], depth[f] = frame_rgb.numpy(), frame_depth.numpy()
        finally:
            torch.set_num_threads(threads)
        return rgb, depth
