"""The fast renderer: moderngl on a headless EGL context (Mesa llvmpipe on CPU machines).

One GL context per process, created lazily on first use and kept in the module-level cache `_GL` together with
the compiled programs and framebuffers by size; each `GLRenderer` (one per World) owns its static buffers. An EGL
context is current on one thread only, so every GL call runs on one thread that owns it (`on_gl_thread`), whichever
thread asks for a render (a server's worker threads, a test's main thread).

Why it is shaped like this (llvmpipe costs, measured on 2 cores): per-draw and per-instance overheads dominate
at low resolution, and rewriting a buffer that queued draws still read stalls the pipeline. So every primitive
is pre-transformed once, at every level of detail, into one static world-space vertex buffer; per frame the CPU
culls primitives to the view frustum, sorts them nearest first, picks a level of detail by screen size and
appends their triangle indices to a batch index list; after a single index upload a batch of frames is queued
into separate framebuffers (llvmpipe rasterises them on its threads meanwhile) and then read back.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from camworld.world import glsl
from camworld.world.meshes import unit_meshes
from camworld.world.scene import FAR, PRIMITIVE_KINDS, Scene

NEAR = 0.05
FRAMES_IN_FLIGHT = 32  # frames queued before the first readback of a batch
# screen radius (pixels) up to which the coarse / middle levels of detail of curved shapes are drawn
LOD_PIXELS = (10.0, 30.0)
NUM_LODS = len(LOD_PIXELS) + 1


class GLUnavailable(RuntimeError):
    """No usable headless GL context (no EGL / Mesa on this machine, or GL older than 4.3)."""


class _GLState:
    """The process-wide context and everything that does not depend on one world."""

    def __init__(self):
        try:
            import moderngl

            self.ctx = moderngl.create_standalone_context(backend="egl")
        except Exception as exc:  # moderngl raises plain Exception subclasses for missing EGL/drivers
            raise GLUnavailable(f"cannot create a headless EGL context: {exc}") from exc
        if self.ctx.version_code < 430:
            raise GLUnavailable(f"GL 4.3 (storage buffers) needed, the EGL context has {self.ctx.version_code}")
        self.mgl = moderngl
        ctx = self.ctx
        ctx.enable(moderngl.DEPTH_TEST)
        ctx.depth_func = "<="  # the sky sits exactly on the far plane, where the buffer is cleared to
        ctx.front_face = "cw"  # meshes wind counter-clockwise from outside; NDC y grows downwards (image rows)
        self.sky = ctx.program(vertex_shader=glsl.SKY_VERTEX, fragment_shader=glsl.SKY_FRAGMENT)
        self.ground = ctx.program(vertex_shader=glsl.GROUND_VERTEX, fragment_shader=glsl.GROUND_FRAGMENT)
        self.landmark = ctx.program(vertex_shader=glsl.LANDMARK_VERTEX, fragment_shader=glsl.LANDMARK_FRAGMENT)
        tri = np.array([[-1, -1], [3, -1], [-1, 3]], np.float32)
        self.sky_vao = ctx.vertex_array(self.sky, [(ctx.buffer(tri.tobytes()), "2f", "in_ndc")])
        quad = np.array([[-1, -1], [1, -1], [1, 1], [-1, -1], [1, 1], [-1, 1]], np.float32)
        self.ground_vao = ctx.vertex_array(self.ground, [(ctx.buffer(quad.tobytes()), "2f", "in_xz")])
        self.indices = ctx.buffer(reserve=1 << 20, dynamic=True)  # per-batch triangle indices, grown on demand
        self.framebuffers = {}

    def framebuffers_of(self, height: int, width: int) -> list:
        """FRAMES_IN_FLIGHT framebuffers of one size: a batch draws frame i into framebuffer i, at the same window
        position every time, so a pose renders bit-identically wherever it falls in a batch."""
        key = (height, width)
        if key not in self.framebuffers:
            ctx = self.ctx
            self.framebuffers[key] = [
                ctx.framebuffer(
                    color_attachments=[ctx.renderbuffer((width, height), 4),
                                       ctx.renderbuffer((width, height), 1, dtype="f4")],
                    depth_attachment=ctx.depth_renderbuffer((width, height)),
                )
                for _ in range(FRAMES_IN_FLIGHT)
            ]
        return self.framebuffers[key]


_GL: dict[str, _GLState] = {}
_GL_LOCK = threading.Lock()
_GL_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="camworld-gl")


def on_gl_thread(fn, *args):
    """fn(*args) on the thread that owns the GL context; its result, or its exception, comes back to the caller."""
    if threading.current_thread().name.startswith("camworld-gl"):
        return fn(*args)
    return _GL_THREAD.submit(fn, *args).result()


def gl_state() -> _GLState:
    """The process-wide GL state, created on first call; raises GLUnavailable where EGL does not work."""
    with _GL_LOCK:
        if "state" not in _GL:
            _GL["state"] = on_gl_thread(_GLState)
    return _GL["state"]


def gl_available() -> bool:
    try:
        gl_state()
    except GLUnavailable:
        return False
    return True


def _set(prog, name: str, value) -> None:
    if name in prog:
        prog[name].value = value


def _frustum_normals(fx: float, fy: float, cx: float, cy: float, height: int, width: int) -> np.ndarray:
    """Inward unit normals [4, 3] of the image's side planes (through the camera centre), camera frame."""
    u0, u1 = (-0.5 - cx) / fx, (width - 0.5 - cx) / fx
    v0, v1 = (-0.5 - cy) / fy, (height - 0.5 - cy) / fy
    n = np.array([[1.0, 0.0, -u0], [-1.0, 0.0, u1], [0.0, 1.0, -v0], [0.0, -1.0, v1]])
    return n / np.linalg.norm(n, axis=1, keepdims=True)


def _world_mesh(prims: dict[str, np.ndarray]):
    """All primitives at all levels of detail in world space.

    Returns vertices [V, 10] float32 (world xyz, unit-shape xyz, unit normal xyz, primitive index), triangle
    indices [I] int32, and per primitive and level the (start, count) of its indices: two [P, NUM_LODS] arrays.
    """
    meshes = unit_meshes()
    num = len(prims["kind"])
    starts = np.zeros((num, NUM_LODS), np.int64)
    counts = np.zeros((num, NUM_LODS), np.int64)
    verts, indices = [], []
    num_verts = num_indices = 0
    c, s = np.cos(prims["yaw"]), np.sin(prims["yaw"])
    for k, kind in enumerate(PRIMITIVE_KINDS):
        ids = np.nonzero(prims["kind"] == k)[0]
        if len(ids) == 0:
            continue
        for lod, (pos, nrm, idx) in enumerate(meshes[kind]):
            local = prims["half"][ids, None, :] * pos[None]  # [P, V, 3]
            world = np.stack([c[ids, None] * local[..., 0] + s[ids, None] * local[..., 2], local[..., 1],
                              -s[ids, None] * local[..., 0] + c[ids, None] * local[..., 2]], -1)
            world = world + prims["center"][ids, None, :]
            shape = world.shape[:2]
            rows = np.concatenate([world, np.broadcast_to(pos, shape + (3,)), np.broadcast_to(nrm, shape + (3,)),
                                   np.broadcast_to(ids[:, None, None], shape + (1,))], -1)
            verts.append(rows.reshape(-1, 10))
            tri = idx[None, :] + num_verts + len(pos) * np.arange(len(ids))[:, None]
            indices.append(tri.reshape(-1))
            levels = range(lod, NUM_LODS) if lod == len(meshes[kind]) - 1 else [lod]
            for level in levels:
                starts[ids, level] = num_indices + len(idx) * np.arange(len(ids))
                counts[ids, level] = len(idx)
            num_verts += len(ids) * len(pos)
            num_indices += len(ids) * len(idx)
    if not verts:
        return np.zeros((0, 10), np.float32), np.zeros(0, np.int32), starts, counts
    return (np.concatenate(verts).astype(np.float32), np.concatenate(indices).astype(np.int32), starts, counts)


def _release(objects) -> None:
    """Free GL objects (a finaliser: it may run on any thread, or at exit when the GL thread is already gone)."""
    with contextlib.suppress(RuntimeError):  # raised at interpreter shutdown; the context goes with the process
        on_gl_thread(_release_now, objects)


def _release_now(objects) -> None:
    for obj in objects:
        obj.release()


class GLRenderer:
    """Draws one scene; `render` takes OpenCV c2w [F, 4, 4] and pixel intrinsics [F, 3, 3]."""

    def __init__(self, scene: Scene):
        self.gl = gl_state()
        self.scene = scene
        on_gl_thread(self._upload, scene)
        prims = scene.primitives
        self.centre = prims["center"].astype(np.float64)
        self.radius = np.linalg.norm(prims["half"], axis=1).astype(np.float64)  # bounding sphere
        self.size = prims["half"].max(axis=1).astype(np.float64)  # what the levels of detail must resolve

    def _upload(self, scene: Scene) -> None:
        """The scene's static buffers, in the GL context (on its thread)."""
        ctx = self.gl.ctx
        prims = scene.primitives
        num = len(prims["kind"])
        table = np.zeros((num, 5, 4), np.float32)
        table[:, 0, :3], table[:, 0, 3] = prims["center"], prims["yaw"]
        table[:, 1, :3], table[:, 1, 3] = prims["half"], prims["kind"]
        table[:, 2, :3], table[:, 2, 3] = prims["colour"], prims["pattern"]
        table[:, 3, :3], table[:, 3, 3] = prims["accent"], prims["pattern_scale"]
        table[:, 4, 0] = prims["landmark"]
        self.table = ctx.buffer(table.tobytes() if num else bytes(80))
        verts, self.mesh_indices, self.lod_start, self.lod_count = _world_mesh(prims)
        vbo = ctx.buffer(verts.tobytes() if len(verts) else bytes(40))
        self.vao = ctx.vertex_array(self.gl.landmark, [(vbo, "3f 3f 3f 1f", "in_world", "in_unit", "in_unit_normal",
                                                        "in_prim")], index_buffer=self.gl.indices)
        # GL objects are not garbage collected: free this world's buffers with the renderer (or at exit)
        weakref.finalize(self, _release, [self.vao, vbo, self.table])

    def _set_world_uniforms(self) -> None:
        far = 1.5 * FAR  # depth-buffer range only; visibility beyond FAR is decided in the shaders
        for prog in (self.gl.sky, self.gl.ground, self.gl.landmark):
            for name, value in self.scene.look.uniforms().items():
                _set(prog, "u_" + name, value)
            _set(prog, "u_far", FAR)
            _set(prog, "u_ground_y", float(self.scene.ground_y))
            _set(prog, "u_depth_map", ((far + NEAR) / (far - NEAR), -2 * far * NEAR / (far - NEAR)))

    def _frame_indices(self, c2w: np.ndarray, K: np.ndarray, height: int, width: int) -> np.ndarray:
        """Triangle indices of the primitives one frame can see: nearest first, detail by screen size."""
        fx, fy, cx, cy = float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2])
        cam = (self.centre - c2w[:3, 3]) @ c2w[:3, :3]
        inside = (cam @ _frustum_normals(fx, fy, cx, cy, height, width).T >= -self.radius[:, None]).all(1)
        dist = np.linalg.norm(cam, axis=1)
        visible = np.nonzero(inside & (cam[:, 2] >= -self.radius) & (dist - self.radius < FAR))[0]
        visible = visible[np.argsort(dist[visible], kind="stable")]
        pixels = 0.5 * (fx + fy) * self.size[visible] / np.maximum(dist[visible] - self.size[visible], 0.1)
        level = np.searchsorted(LOD_PIXELS, pixels)
        starts, counts = self.lod_start[visible, level], self.lod_count[visible, level]
        total = int(counts.sum())
        positions = np.arange(total) + np.repeat(starts - (np.cumsum(counts) - counts), counts)
        return self.mesh_indices[positions]

    def _draw(self, c2w: np.ndarray, K: np.ndarray, height: int, width: int, first: int, count: int) -> None:
        gl = self.gl
        w2c = np.linalg.inv(c2w.astype(np.float64))
        fx, fy, cx, cy = float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2])
        proj = (2 * fx / width, 2 * (cx + 0.5) / width - 1, 2 * fy / height, 2 * (cy + 0.5) / height - 1)
        view = w2c.T.astype(np.float32).tobytes()
        cam = tuple(float(v) for v in c2w[:3, 3])
        for prog in (gl.ground, gl.landmark):
            prog["u_view"].write(view)
            prog["u_cam"].value = cam
            prog["u_focal"].value = 0.5 * (fx + fy)
            prog["u_proj"].value = proj
        # front to back, so early depth testing skips hidden fragments: landmarks (nearest first), ground, sky
        if count:
            gl.ctx.enable(gl.mgl.CULL_FACE)
            self.vao.render(vertices=count, first=first)
            gl.ctx.disable(gl.mgl.CULL_FACE)
        gl.ground_vao.render()
        gl.sky["u_rot"].write(np.ascontiguousarray(c2w[:3, :3].T, dtype=np.float32).tobytes())
        gl.sky["u_intr"].value = (fx, fy, cx, cy)
        gl.sky["u_size"].value = (float(width), float(height))
        gl.sky_vao.render()

    def render(self, c2w: np.ndarray, K: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """c2w [F, 4, 4], K [F, 3, 3] -> (rgb uint8 [F, H, W, 3], z-depth float32 [F, H, W], inf for sky)."""
        return on_gl_thread(self._render, c2w, K, height, width)

    def _render(self, c2w: np.ndarray, K: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        num = len(c2w)
        rgb = np.empty((num, height, width, 3), np.uint8)
        depth = np.empty((num, height, width), np.float32)
        gl = self.gl
        fbos = gl.framebuffers_of(height, width)
        self._set_world_uniforms()
        self.table.bind_to_storage_buffer(0)
        for start in range(0, num, FRAMES_IN_FLIGHT):
            count = min(FRAMES_IN_FLIGHT, num - start)
            frames = [self._frame_indices(c2w[start + i], K[start + i], height, width) for i in range(count)]
            firsts = np.cumsum([0] + [len(f) for f in frames])
            # one upload per batch: rewriting indices that queued draws still read would stall llvmpipe
            indices = np.concatenate(frames + [np.zeros(1, np.int32)]).astype(np.int32)
            if gl.indices.size < indices.nbytes:
                gl.indices.orphan(2 * indices.nbytes)
            gl.indices.write(indices.tobytes())
            for i in range(count):
                fbos[i].use()
                fbos[i].clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
                self._draw(c2w[start + i], K[start + i], height, width, int(firsts[i]), len(frames[i]))
            for i in range(count):
                colour = np.frombuffer(fbos[i].read(components=4, attachment=0), np.uint8)
                rgb[start + i] = colour.reshape(height, width, 4)[..., :3]
                z = np.frombuffer(fbos[i].read(components=1, attachment=1, dtype="f4"), np.float32)
                depth[start + i] = z.reshape(height, width)
        depth[depth <= 0] = np.inf
        return rgb, depth
