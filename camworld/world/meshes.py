"""Triangle meshes of the unit shapes (scene.PRIMITIVE_KINDS) for the GL renderer: positions, normals, indices.

Normals are gradients of the unit shape's implicit surface, the same ones the ray-caster computes, so both
renderers light a surface alike. Curved shapes are tessellated finely enough that depth differs from the
analytic surface by well under 1 % of the object's size.
"""

from __future__ import annotations

import numpy as np

# Levels of detail for curved shapes: segments around, chosen per frame by the shape's size on screen.
LOD_SEGMENTS = (8, 14, 24)


def _normalise(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _box(seg: int):
    pos, nrm, idx = [], [], []
    for axis in range(3):
        for sign in (-1.0, 1.0):
            n = np.zeros(3)
            n[axis] = sign
            a, b = [i for i in range(3) if i != axis]
            base = len(pos)
            for ua, ub in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
                p = np.zeros(3)
                p[axis], p[a], p[b] = sign, ua, ub
                pos.append(p)
                nrm.append(n)
            idx += [base, base + 1, base + 2, base, base + 2, base + 3]
    return np.array(pos), np.array(nrm), np.array(idx)


def _ring(y: float, radius: float, normal_fn, seg: int):
    ang = np.linspace(0, 2 * np.pi, seg + 1)
    pos = np.stack([radius * np.cos(ang), np.full_like(ang, y), radius * np.sin(ang)], 1)
    return pos, normal_fn(ang)


def _strip(lower: int, upper: int, n: int) -> list[int]:
    idx = []
    for i in range(n):
        idx += [lower + i, lower + i + 1, upper + i + 1, lower + i, upper + i + 1, upper + i]
    return idx


def _disc(y: float, ny: float, pos: list, nrm: list, idx: list, seg: int) -> None:
    ang = np.linspace(0, 2 * np.pi, seg + 1)
    centre = len(pos)
    pos.append(np.array([0.0, y, 0.0]))
    nrm.append(np.array([0.0, ny, 0.0]))
    for a in ang:
        pos.append(np.array([np.cos(a), y, np.sin(a)]))
        nrm.append(np.array([0.0, ny, 0.0]))
    for i in range(seg):
        idx += [centre, centre + 1 + i, centre + 2 + i]


def _cylinder(seg: int):
    side = lambda a: np.stack([np.cos(a), np.zeros_like(a), np.sin(a)], 1)
    top_p, top_n = _ring(-1.0, 1.0, side, seg)
    bot_p, bot_n = _ring(1.0, 1.0, side, seg)
    pos, nrm = list(top_p) + list(bot_p), list(top_n) + list(bot_n)
    idx = _strip(0, seg + 1, seg)
    _disc(-1.0, -1.0, pos, nrm, idx, seg)
    _disc(1.0, 1.0, pos, nrm, idx, seg)
    return np.array(pos), np.array(nrm), np.array(idx)


def _sphere(seg: int):
    pos, idx = [], []
    rings = seg // 2
    for j in range(rings + 1):
        phi = np.pi * j / rings
        p, _ = _ring(-np.cos(phi), np.sin(phi), lambda a: a, seg)
        pos += list(p)
    pos = np.array(pos)
    for j in range(rings):
        idx += _strip(j * (seg + 1), (j + 1) * (seg + 1), seg)
    return pos, _normalise(pos), np.array(idx)


def _cone(seg: int):
    side = lambda a: _normalise(np.stack([np.cos(a), np.full_like(a, -0.5), np.sin(a)], 1))
    apex_p, apex_n = _ring(-1.0, 0.0, side, seg)
    base_p, base_n = _ring(1.0, 1.0, side, seg)
    pos, nrm = list(apex_p) + list(base_p), list(apex_n) + list(base_n)
    idx = _strip(0, seg + 1, seg)
    _disc(1.0, 1.0, pos, nrm, idx, seg)
    return np.array(pos), np.array(nrm), np.array(idx)


def _pyramid(seg: int):
    apex = np.array([0.0, -1.0, 0.0])
    corners = [np.array(c, float) for c in ((1, 1, 1), (1, 1, -1), (-1, 1, -1), (-1, 1, 1))]
    pos, nrm, idx = [], [], []
    for i in range(4):
        a, b = corners[i], corners[(i + 1) % 4]
        mid = (a + b) / 2
        n = _normalise(np.array([mid[0], -0.5, mid[2]]))
        base = len(pos)
        pos += [apex, a, b]
        nrm += [n, n, n]
        idx += [base, base + 1, base + 2]
    base = len(pos)
    pos += corners
    nrm += [np.array([0.0, 1.0, 0.0])] * 4
    idx += [base, base + 1, base + 2, base, base + 2, base + 3]
    return np.array(pos), np.array(nrm), np.array(idx)


def _outward(pos: np.ndarray, nrm: np.ndarray, idx: np.ndarray):
    """Wind every triangle counter-clockwise seen from outside (along its vertices' mean normal)."""
    tri = idx.reshape(-1, 3).copy()
    a, b, c = pos[tri[:, 0]], pos[tri[:, 1]], pos[tri[:, 2]]
    flip = (np.cross(b - a, c - a) * nrm[tri].sum(1)).sum(1) < 0
    tri[flip] = tri[flip][:, ::-1]
    return pos, nrm, tri.reshape(-1)


_BUILDERS = {"box": _box, "cylinder": _cylinder, "sphere": _sphere, "cone": _cone, "pyramid": _pyramid}
CURVED = ("cylinder", "sphere", "cone")


def unit_meshes() -> dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """kind -> levels of detail, coarsest first, each (positions [V, 3] float32, normals [V, 3] float32,
    triangle indices [3T] int32); flat shapes have a single level."""
    out = {}
    for kind, build in _BUILDERS.items():
        levels = LOD_SEGMENTS if kind in CURVED else LOD_SEGMENTS[:1]
        out[kind] = []
        for seg in levels:
            p, n, i = _outward(*build(seg))
            out[kind].append((p.astype(np.float32), n.astype(np.float32), i.astype(np.int32)))
    return out
