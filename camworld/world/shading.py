"""The world's appearance model in torch: a line-for-line mirror of `glsl.SHADING` for the ray-caster.

All functions work on flat float32 tensors of N points. Integer hashing emulates GLSL's 32-bit unsigned
arithmetic in int64 (products are split in 16-bit halves so nothing overflows).
"""

from __future__ import annotations

import torch

from camworld.world.scene import Look

_MASK = 0xFFFFFFFF


def _mul32(x: torch.Tensor, c: int) -> torch.Tensor:
    lo = x * (c & 0xFFFF)
    hi = ((x * (c >> 16)) & 0xFFFF) << 16
    return (lo + hi) & _MASK


def hash32(x: torch.Tensor) -> torch.Tensor:
    x = x & _MASK
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def rand3(a, b, c) -> torch.Tensor:
    """Uniform [0, 1) from three integers (tensors or ints), as GLSL `rand3`."""
    a, b, c = (torch.as_tensor(v, dtype=torch.int64) & _MASK for v in (a, b, c))
    h = hash32(_mul32(a, 0x8DA6B343) ^ _mul32(b, 0xD8163841) ^ _mul32(c, 0xCB1AB31F))
    return (h >> 8).to(torch.float32) * (1.0 / 16777216.0)


def vnoise(px: torch.Tensor, py: torch.Tensor, salt) -> torch.Tensor:
    """Value noise in [0, 1] on the integer lattice; `salt` an int or a per-point int64 tensor."""
    ix, iy = torch.floor(px), torch.floor(py)
    fx, fy = px - ix, py - iy
    ux, uy = fx * fx * (3.0 - 2.0 * fx), fy * fy * (3.0 - 2.0 * fy)
    ix, iy = ix.to(torch.int64), iy.to(torch.int64)
    a, b = rand3(ix, iy, salt), rand3(ix + 1, iy, salt)
    c, d = rand3(ix, iy + 1, salt), rand3(ix + 1, iy + 1, salt)
    return torch.lerp(torch.lerp(a, b, ux), torch.lerp(c, d, ux), uy)


def aa(fp: torch.Tensor, period) -> torch.Tensor:
    return ((period / fp.clamp_min(1e-6) - 2.0) * 0.5).clamp(0.0, 1.0)


def smoothstep(e0, e1, x: torch.Tensor) -> torch.Tensor:
    t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def square_wave(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return (((x - torch.floor(x) - 0.5).abs() - 0.25) / w.clamp_min(1e-4) + 0.5).clamp(0.0, 1.0)


def _mix(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """GLSL mix with colour [N, 3] or [3] ends and weight [N]."""
    return a + (b - a) * t[..., None]


class Shader:
    """The uniforms of one world as tensors, and the shading functions that read them."""

    def __init__(self, look: Look):
        u = look.uniforms()
        self.u = {k: torch.tensor(v, dtype=torch.float32) if isinstance(v, tuple) else v for k, v in u.items()}
        self.salt = int(look.salt)

    def ground_colour(self, qx: torch.Tensor, qz: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
        """[N] world x, z and pixel footprint (m) -> [N, 3]."""
        u, s0 = self.u, self.salt
        w, s = u["ground_weights"].tolist(), u["ground_scales"].tolist()
        n1 = vnoise(qx / s[0], qz / s[0], s0 + 1)
        n2 = vnoise(qx / s[1], qz / s[1], s0 + 2) - 0.5
        n3 = vnoise(qx / s[2], qz / s[2], s0 + 3) - 0.5
        st = torch.sin(6.2831853 * (0.8 * qx + 0.6 * qz) / s[3] + 5.0 * n1) * 0.5
        f = (0.5 + w[0] * (n1 - 0.5) * 2.0 + w[1] * n2 * 2.0 * aa(fp, s[1]) + w[2] * n3 * 2.0 * aa(fp, s[2])
             + w[3] * st * aa(fp, s[3]))
        col = _mix(u["ground_c0"], u["ground_c1"], f.clamp(0.0, 1.0))
        tp, lw, tile_w = u["ground_tiles"].tolist()
        cx, cz = torch.floor(qx / tp), torch.floor(qz / tp)
        r = rand3(cx.to(torch.int64), cz.to(torch.int64), s0 + 8)
        col = col * (1.0 + (0.8 + 0.4 * r - 1.0) * tile_w)[:, None]
        gx = ((qx / tp + 0.5) - torch.floor(qx / tp + 0.5) - 0.5).abs() * tp
        gz = ((qz / tp + 0.5) - torch.floor(qz / tp + 0.5) - 0.5).abs() * tp
        line = 1.0 - smoothstep(lw, lw + fp, torch.minimum(gx, gz))
        col = _mix(col, u["ground_grout"], tile_w * line * aa(fp, tp * 0.25))
        cs, density, rad = u["ground_speckles"].tolist()
        scx, scz = torch.floor(qx / cs), torch.floor(qz / cs)
        sx, sz = scx.to(torch.int64), scz.to(torch.int64)
        ox = 0.3 + 0.4 * rand3(sx, sz, s0 + 5)
        oz = 0.3 + 0.4 * rand3(sx, sz, s0 + 6)
        dist = torch.hypot(qx / cs - scx - ox, qz / cs - scz - oz) * cs
        rad = rad * cs
        on = (rand3(sx, sz, s0 + 4) <= density).to(torch.float32)
        accent = _mix(u["ground_accent"], u["ground_accent2"], (rand3(sx, sz, s0 + 7) >= 0.5).to(torch.float32))
        return col + (accent - col) * (on * (1.0 - smoothstep(rad, rad + fp, dist)) * aa(fp, 2.0 * rad))[:, None]

    def sky_colour(self, d: torch.Tensor, pixel_angle: float) -> torch.Tensor:
        """[N, 3] unit world directions -> [N, 3]."""
        u, s0 = self.u, self.salt
        e = -d[:, 1]
        col = _mix(u["sky_horizon"], u["sky_zenith"], e.clamp(0.0, 1.0) ** 0.6)
        k = 1.5 / (e.clamp_min(0.0) + 0.08)
        ux, uz = d[:, 0] * k, d[:, 2] * k
        fbm = (0.55 * vnoise(ux, uz, s0 + 10) + 0.3 * vnoise(ux * 2.3, uz * 2.3, s0 + 11)
               + 0.15 * vnoise(ux * 5.1, uz * 5.1, s0 + 12))
        t = 0.72 - 0.4 * u["cloud_cover"]
        cloud = smoothstep(t, t + 0.15, fbm) * smoothstep(0.0, 0.12, e)
        col = col + (u["cloud_colour"] * (0.8 + 0.25 * fbm)[:, None] - col) * (cloud * 0.92)[:, None]
        sd = d @ u["sun_dir"]
        col = _mix(col, torch.tensor([1.0, 0.97, 0.85]), smoothstep(0.9990, 0.9996, sd))
        col = col + (0.12 * sd.clamp_min(0.0) ** 64)[:, None]
        sk = u["skyline"].tolist()
        norm = torch.hypot(d[:, 0], d[:, 2]).clamp_min(1e-6)
        hx, hz = d[:, 0] / norm * sk[2], d[:, 2] / norm * sk[2]
        hill = 0.65 * vnoise(hx, hz, s0 + 13) + 0.35 * vnoise(hx * 3.1, hz * 3.1, s0 + 14)
        block = rand3(torch.floor(hx * 3.0).to(torch.int64), torch.floor(hz * 3.0).to(torch.int64), s0 + 15)
        height = sk[0] + sk[1] * (hill + (block * block - hill) * sk[3])
        far_land = _mix(u["skyline_colour"], u["sky_horizon"], 0.25 + 0.5 * (e / height.clamp_min(1e-3)).clamp(0, 1))
        return _mix(far_land, col, smoothstep(height - pixel_angle, height + pixel_angle, e))

    def lit(self, col: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        diffuse = (n @ self.u["sun_dir"]).clamp_min(0.0)
        amb, dif = self.u["light"].tolist()
        return col * (amb * (0.75 + 0.25 * (-n[:, 1])) + dif * diffuse)[:, None]

    def fogged(self, col: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
        x = dist / self.u["fog_distance"]
        return _mix(col, self.u["sky_horizon"], 1.0 - torch.exp(-x * x))

    def landmark_colour(self, qu, nu, half, kind, pattern, ps, lid, colour, accent, fp) -> torch.Tensor:
        """Unit-frame hit point/normal [N, 3], half [N, 3], kind/pattern/lid [N] int64, ps [N], colour/accent
        [N, 3], footprint [N] -> [N, 3]."""
        s0 = self.salt
        m = qu * half
        an = nu.abs()
        flat = (kind == 0) | (kind == 4)
        ax = (an[:, 0] >= an[:, 1]) & (an[:, 0] >= an[:, 2])
        az = ~ax & (an[:, 2] >= an[:, 1])
        ay = ~ax & ~az
        face = torch.where(ax, (nu[:, 0] > 0).long(), torch.where(az, 4 + (nu[:, 2] > 0).long(),
                                                                    2 + (nu[:, 1] > 0).long()))
        flat_u = torch.where(ax, m[:, 2], m[:, 0])
        flat_v = torch.where(ay, m[:, 2], m[:, 1])
        cap = (kind == 1) & (an[:, 1] > 0.9)
        round_u = torch.atan2(qu[:, 2], qu[:, 0]) * 0.5 * (half[:, 0] + half[:, 2])
        uu = torch.where(flat, flat_u, torch.where(cap, m[:, 0], round_u))
        vv = torch.where(flat, flat_v, torch.where(cap, m[:, 2], m[:, 1]))
        face = torch.where(flat, face, torch.zeros_like(face))
        px, py = uu / ps, vv / ps
        w = fp / ps
        pats = torch.zeros_like(px)
        for k in range(7):
            sel = pattern == k
            if not bool(sel.any()):
                continue
            x, y, ww, lk = px[sel], py[sel], w[sel], lid[sel]
            if k == 0:
                f = vnoise(x * 2.0, y * 2.0, s0 + lk)
            elif k == 1:
                f = square_wave(y, ww)
            elif k == 2:
                f = square_wave(x, ww)
            elif k == 3:
                a, b = square_wave(x, ww), square_wave(y, ww)
                f = a + b - 2.0 * a * b
            elif k == 4:
                row = torch.floor(y * 2.0)
                shift = 0.5 * torch.remainder(row, 2.0)
                bx, by = x + shift - torch.floor(x + shift), y * 2.0 - torch.floor(y * 2.0)
                edge = torch.minimum(torch.minimum(bx, 1.0 - bx), 0.5 * torch.minimum(by, 1.0 - by))
                r = rand3(torch.floor(x + shift).long(), row.long(), s0 + lk)
                f = torch.maximum(1.0 - smoothstep(0.05, 0.05 + ww, edge), 0.35 * r)
            elif k == 5:
                cx, cy = x - torch.floor(x), y - torch.floor(y)
                inside = torch.minimum(0.3 - (cx - 0.5).abs(), 0.25 - (cy - 0.5).abs())
                r = rand3(torch.floor(x).long(), torch.floor(y).long(), s0 + lk)
                f = smoothstep(-0.5 * ww, 0.5 * ww, inside) * (0.6 + 0.4 * r)
            else:
                f = 1.0 - smoothstep(0.3, 0.3 + ww, torch.hypot(x - torch.floor(x) - 0.5, y - torch.floor(y) - 0.5))
            pats[sel] = f
        f = 0.4 + (pats - 0.4) * aa(fp, ps)
        col = _mix(colour, accent, f)
        grain = vnoise(uu / 0.4, vv / 0.4, s0 + lid + 100) - 0.5
        col = col * (1.0 + 0.24 * grain * aa(fp, 0.4))[:, None]
        tint = 0.88 + 0.24 * rand3(face, lid, s0 + 20)
        return col * torch.where(flat, tint, torch.ones_like(tint))[:, None]

