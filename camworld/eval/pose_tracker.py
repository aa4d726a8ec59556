"""Camera poses of a video of a KNOWN world by dense photometric alignment of the world's renders to its frames.

SANA-WM's benchmark estimates the poses of a generated video with Pi3X, a learned structure-from-motion model run
on the video alone (sana_wm.md §8.2). We deliberately differ: COLMAP-style SfM fails on 72×128 frames and Pi3X
needs a GPU, while our benchmark worlds are known exactly. So this estimator uses the ground-truth world: for each
frame it searches the 6-DoF pose whose render (`World.render`) best matches the frame. That makes it more accurate
than SfM on clean video (the bench measures its error floor on the true renders in the same run) but it is a
different instrument from Pi3X, and its numbers are not on SANA-WM's scale.

Method (direct image alignment, Levenberg–Marquardt with Huber weights, coarse to fine):
- both images go to grayscale, blurred, on a 3-level pyramid (`cv2.pyrDown`), each level normalised to zero mean
  and unit variance so a global brightness or contrast change of the generated frame costs nothing;
- each stage of the schedule renders the world at the current estimate c2w (image and inverse depth ρ; sky has
  ρ = 0 and constrains rotation only) and solves for the pose Δ of the frame relative to that render: the render's
  pixel u (ray d = K⁻¹(u, v, 1)) lands in the frame at w(u) = π(ρ·Δ⁻¹X) = π(Rᵀ(d − ρt)), and
  r(Δ) = frame(w(u)) − render(u). Steps Δ ← Δ·[R(ω) | v] use the analytic Jacobian
  ∂w/∂ξ = J_π(Y)·[[Y]×, −ρI] (Y = Rᵀ(d − ρt)) with the frame's gradient sampled at w; a step is kept only if
  the Huber cost drops (else the damping grows), so a stage never ends worse than it started. Then
  c2w ← c2w·Δ and the next stage re-renders there (≈ 4 renders per frame instead of one per step);
- a frame's pose may move at most `max_step_m` / `max_step_deg` from where its search started (steps beyond are
  rejected like cost increases): by default 3× SANA-WM's 0.4 m/s and 12°/s over the bench's 4 frames at 16 fps, so
  a generated frame that no longer resembles the world cannot drag the estimate tens of metres away (measured on
  the bundled tiny weights before this bound: 60 m in a 5 s clip whose commanded path is 1.7 m);
- frames are tracked in order, each starting from the PREVIOUS ESTIMATE, never from the commanded pose (which
  would pull the estimate toward what the model was asked to do and flatter it). A frozen video therefore yields a
  frozen trajectory.

Blur (as from a VAE) biases it a little: on the true renders of bench scene simple_000 (81 frames) RotErr / TransErr
were 0.04° / 0.007 m sharp, 0.11° / 0.019 m blurred with σ = 1.5 px and 0.25° / 0.045 m with σ = 3 px.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from tqdm.auto import tqdm


@dataclass(frozen=True)
class TrackerSettings:
    """schedule: (pyramid level, LM steps) per stage, coarse to fine, each stage starting with a fresh render;
    blur_sigma: Gaussian blur (pixels at full resolution) before the pyramid; huber: Huber threshold in units of
    the residual's robust standard deviation (fixed per stage, so costs of different poses compare); min_step:
    a stage stops once the update is below this (radians, metres); border: pixels at each image edge that are not
    scored (gradients are one-sided there); max_step_m / max_step_deg: the trust region of one frame around the
    pose its search starts from."""

    schedule: tuple[tuple[int, int], ...] = field(default=((2, 10), (1, 6), (0, 4), (0, 3)))
    blur_sigma: float = 1.0
    huber: float = 1.345
    min_step: float = 2e-5
    border: int = 2
    max_step_m: float = 3 * 0.4 * 4 / 16
    max_step_deg: float = 3 * 12.0 * 4 / 16

    @property
    def levels(self) -> int:
        return max(level for level, _ in self.schedule) + 1


def rotation_from_vector(omega: np.ndarray) -> np.ndarray:
    """Rodrigues: rotation vector (3,) -> rotation matrix (3, 3)."""
    angle = float(np.linalg.norm(omega))
    if angle < 1e-12:
        return np.eye(3)
    axis = omega / angle
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross


def apply_update(c2w: np.ndarray, xi: np.ndarray) -> np.ndarray:
    """c2w (4, 4) moved by ξ = (ω, v) (6,) expressed in its own camera frame: c2w · [R(ω) | v]."""
    step = np.eye(4)
    step[:3, :3] = rotation_from_vector(xi[:3])
    step[:3, 3] = xi[3:]
    return c2w @ step


def _gray(rgb: np.ndarray, sigma: float) -> np.ndarray:
    gray = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    return cv2.GaussianBlur(gray, (0, 0), sigma) if sigma > 0 else gray


def _pyramid(image: np.ndarray, levels: int) -> list[np.ndarray]:
    """Finest first."""
    out = [image]
    for _ in range(levels - 1):
        out.append(cv2.pyrDown(out[-1]))
    return out


def _normalised(image: np.ndarray, border: int) -> np.ndarray:
    core = image[border:-border, border:-border] if border else image
    return (image - core.mean()) / max(float(core.std()), 1e-6)


def level_intrinsics(K: np.ndarray, level: int) -> np.ndarray:
    """K of pyramid level `level` (each `pyrDown` halves the size; pixel centres at integers, so c' = (c + 0.5)/2
    − 0.5 per halving)."""
    out = np.asarray(K, dtype=np.float64).copy()
    for _ in range(level):
        out[0, 0] /= 2
        out[1, 1] /= 2
        out[0, 2] = (out[0, 2] + 0.5) / 2 - 0.5
        out[1, 2] = (out[1, 2] + 0.5) / 2 - 0.5
    return out


@dataclass
class _Stage:
    """One level of one render: the reference (render) pixels scored, their rays and inverse depth, and the frame
    with its gradients at that level (float32, for cv2.remap)."""

    K: np.ndarray
    reference: np.ndarray  # [P] normalised render intensities
    rays: np.ndarray  # [P, 3] (x, y, 1)
    rho: np.ndarray  # [P] inverse depth
    frame: np.ndarray  # [h, w]
    grad_x: np.ndarray  # [h, w]
    grad_y: np.ndarray  # [h, w]


class PhotometricPoseTracker:
    """Pose of frames of `world` seen with intrinsics K (3, 3) at `image_hw`; see the module docstring."""

    def __init__(self, world, K: np.ndarray, image_hw: tuple[int, int], settings: TrackerSettings | None = None):
        self.world = world
        self.K = np.asarray(K, dtype=np.float64)
        self.image_hw = (int(image_hw[0]), int(image_hw[1]))
        self.settings = settings or TrackerSettings()
        self.renders = 0

    def _target(self, frame: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(normalised gray, d/dx, d/dy) per pyramid level of a frame, finest first."""
        if frame.shape[:2] != self.image_hw:
            raise ValueError(f"frame is {frame.shape[:2]}, the tracker works at {self.image_hw}")
        s = self.settings
        out = []
        for gray in _pyramid(_gray(frame, s.blur_sigma), s.levels):
            image = _normalised(gray, s.border).astype(np.float32)
            gy, gx = np.gradient(image)
            out.append((image, gx.astype(np.float32), gy.astype(np.float32)))
        return out

    def stage(self, c2w: np.ndarray, level: int, target) -> _Stage:
        """Render the world at c2w and set up the alignment of `target` (from `_target`) at `level`."""
        self.renders += 1
        s = self.settings
        rgb, depth = self.world.render(c2w, self.K, *self.image_hw)
        inv = np.where(np.isfinite(depth[0]) & (depth[0] > 0), 1.0 / np.maximum(depth[0], 1e-6), 0.0)
        reference = _normalised(_pyramid(_gray(rgb[0], s.blur_sigma), s.levels)[level], s.border)
        rho = _pyramid(inv.astype(np.float32), s.levels)[level]
        K = level_intrinsics(self.K, level)
        h, w = reference.shape
        v, u = np.mgrid[0:h, 0:w].astype(np.float64)
        rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], axis=-1)
        b = s.border
        crop = (slice(b, h - b), slice(b, w - b))
        return _Stage(K, reference[crop].ravel().astype(np.float64), rays[crop].reshape(-1, 3),
                      rho[crop].ravel().astype(np.float64), *target[level])

    @staticmethod
    def warp(stage: _Stage, delta: np.ndarray):
        """Residuals r [P] = frame(w(u)) − render(u) for the frame at pose Δ (4, 4) relative to the render, with
        the frame's gradients at w [P] and the points Y = Rᵀ(d − ρt) [P, 3]."""
        rot, t = delta[:3, :3], delta[:3, 3]
        Y = (stage.rays - stage.rho[:, None] * t) @ rot
        z = np.maximum(Y[:, 2], 1e-3)
        map_x = (stage.K[0, 0] * Y[:, 0] / z + stage.K[0, 2]).astype(np.float32)[None]
        map_y = (stage.K[1, 1] * Y[:, 1] / z + stage.K[1, 2]).astype(np.float32)[None]

        def sample(image):
            return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)[0]

        r = sample(stage.frame).astype(np.float64) - stage.reference
        return r, sample(stage.grad_x).astype(np.float64), sample(stage.grad_y).astype(np.float64), Y

    @staticmethod
    def jacobian(stage: _Stage, gx: np.ndarray, gy: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """∂r/∂ξ [P, 6] for Δ ← Δ·[R(ω) | v], ξ = (ω, v): ∇frame(w) · J_π(Y) · [[Y]×, −ρI]."""
        a, b, c = Y[:, 0], Y[:, 1], np.maximum(Y[:, 2], 1e-3)
        Gx = gx * stage.K[0, 0] / c
        Gy = gy * stage.K[1, 1] / c
        Gz = -(Gx * a + Gy * b) / c
        # [Y]× ω = Y × ω = (b ω_z − c ω_y, c ω_x − a ω_z, a ω_y − b ω_x)
        return np.stack([Gy * c - Gz * b, Gz * a - Gx * c, Gx * b - Gy * a,
                         -stage.rho * Gx, -stage.rho * Gy, -stage.rho * Gz], axis=1)

    def _huber(self, r: np.ndarray, delta: float) -> tuple[float, np.ndarray]:
        a = np.abs(r)
        cost = np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta)).sum()
        return float(cost), np.where(a <= delta, 1.0, delta / np.maximum(a, 1e-12))

    def _within_reach(self, motion: np.ndarray) -> bool:
        """Whether a pose change (4, 4) stays inside the trust region."""
        angle = np.degrees(np.arccos(np.clip((np.trace(motion[:3, :3]) - 1) / 2, -1.0, 1.0)))
        return np.linalg.norm(motion[:3, 3]) <= self.settings.max_step_m and angle <= self.settings.max_step_deg

    def align(self, stage: _Stage, steps: int, reach: np.ndarray | None = None) -> tuple[np.ndarray, float]:
        """LM on Δ from the identity; returns (Δ (4, 4), Huber cost per scored pixel). reach (4, 4): the motion
        already made from the frame's starting pose; candidate steps that take reach·Δ out of the trust region are
        rejected."""
        reach = np.eye(4) if reach is None else reach
        delta = np.eye(4)
        r, gx, gy, Y = self.warp(stage, delta)
        spread = 1.4826 * float(np.median(np.abs(r - np.median(r)))) + 1e-6
        threshold = self.settings.huber * spread
        cost, weights = self._huber(r, threshold)
        damping = 1e-4
        for _ in range(steps):
            J = self.jacobian(stage, gx, gy, Y)
            Jw = J * weights[:, None]
            H = J.T @ Jw
            xi = -np.linalg.solve(H + damping * np.diag(np.diag(H) + 1e-9), Jw.T @ r)
            candidate = apply_update(delta, xi)
            if not self._within_reach(reach @ candidate):
                damping *= 10
                if damping > 1e4:
                    break
                continue
            new = self.warp(stage, candidate)
            new_cost, new_weights = self._huber(new[0], threshold)
            if new_cost < cost:
                delta, (r, gx, gy, Y), cost, weights = candidate, new, new_cost, new_weights
                damping = max(damping / 10, 1e-7)
                if np.abs(xi).max() < self.settings.min_step:
                    break
            else:
                damping *= 10
                if damping > 1e4:
                    break
        return delta, cost / max(r.size, 1)

    def refine(self, frame: np.ndarray, init_c2w: np.ndarray) -> tuple[np.ndarray, float]:
        """The pose of uint8 `frame` [H, W, 3], searched from `init_c2w` (4, 4). Returns (c2w (4, 4) float64, the
        last stage's Huber cost per scored pixel)."""
        target = self._target(frame)
        start = np.asarray(init_c2w, dtype=np.float64)
        c2w = start.copy()
        cost = 0.0
        for level, steps in self.settings.schedule:
            delta, cost = self.align(self.stage(c2w, level, target), steps, np.linalg.inv(start) @ c2w)
            c2w = c2w @ delta
        return c2w, cost

    def track(self, frames: np.ndarray, start_c2w: np.ndarray | None = None, *,
              progress: bool = False, desc: str = "track poses") -> tuple[np.ndarray, np.ndarray]:
        """Poses of `frames` uint8 [N, H, W, 3] in order, frame n searched from the estimate of frame n − 1 and
        frame 0 from `start_c2w` (default identity: the pose of the conditioning image). Returns (c2w [N, 4, 4],
        cost per frame [N])."""
        c2w = np.eye(4) if start_c2w is None else np.asarray(start_c2w, dtype=np.float64)
        poses, costs = [], []
        for frame in tqdm(frames, desc=desc, disable=not progress, leave=False):
            c2w, cost = self.refine(frame, c2w)
            poses.append(c2w)
            costs.append(cost)
        return np.array(poses).reshape(-1, 4, 4), np.array(costs)
