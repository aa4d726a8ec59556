"""The annotator: frames -> metric camera poses and intrinsics -> a dataset shard (sana_wm.md §7.2, §7.4).

Order: pose engines (COLMAP, then the OpenCV depth-PnP chain), each checked (checks.py) and rejected with its
reason; the first to pass gives up-to-scale poses, unregistered frames (at most 10 %) are interpolated; the metric
scale comes from metric depth (the depth net, or --depth-dir maps: SANA-WM's GT-depth mode) or from known poses
(--gt-poses: SANA-WM's GT-pose mode); SANA-WM's camera filters run last. Any failure raises UserError with a
one-line reason, before anything is written: a shard is written whole or not at all.

Measured depth fixes the scale of a COLMAP trajectory through the depth-PnP chain, whose translations are metric by
construction: the per-clip scale is the Sim(3) scale of COLMAP's camera centres onto the chain's. Predicted depth
(the depth net) fixes it by the dense flow scale instead (flow_scale.py: the net's depth at every textured pixel,
not at the keypoints the chain uses, where the net is worst); the chain then only checks the trajectory. When the
OpenCV engine gives the poses, its translations are solved again from the same flow (flow_translations.py) and
scaled by the flow scale, whichever the depth. When the chain's trajectory does not fit COLMAP's (Sim(3) residual,
rotation gap or start-anchored residual, checks.py) the clip is rejected, neither engine being trusted (unless the
depth is measured, see `annotate_frames`): measured on 64-frame orbits, one COLMAP model passed every other check
with 2.7° rotation and 12 % translation error (and a structure scale 24 times too large), while on another the chain
with depth-net depth was the wrong one (7.9 % translation error, COLMAP 0.3 %). Deliberate difference from SANA-WM's
per-frame structure scale (§7.2, kept for the per-frame scales, their filter and, with measured depth, as the
fallback when the chain cannot be used): our clips have baselines of 1-2 m for scenes 5-20 m deep, and COLMAP's
structure depth relative to its own trajectory is off by up to 11 % there (rotation and relief trade off; measured
with exact depth maps on three 64-frame clips: structure scale −11 %, −9 %, +4.5 %; chain Sim(3) −2.1 %, +0.1 %,
−0.3 %).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from camworld.annotate import two_view
from camworld.annotate.checks import (
    MIN_REGISTERED_FRACTION,
    camera_filter_problem,
    chain_agreement,
    chain_problem,
    check_pairs,
    engine_problem,
    rotation_outlier_frames,
    sim3_problem,
    structure_problem,
)
from camworld.annotate.flow_scale import DenseFlow, flow_scale
from camworld.annotate.flow_translations import refine_translations
from camworld.annotate.metric_scale import ScaleEstimate, fuse_scale, gt_pose_scale, path_length, sim3_scale
from camworld.annotate.sfm_colmap import run_colmap
from camworld.annotate.sfm_result import SfMResult, fill_unregistered
from camworld.annotate.vo_opencv import run_opencv_chain
from camworld.camera import fxfycxcy_to_K, load_c2w, load_intrinsics, relativize
from camworld.errors import UserError

MIN_FRAMES = 8
ENGINES = {"auto": ("colmap", "opencv"), "colmap": ("colmap",), "opencv": ("opencv",)}
PLACEHOLDER_CAPTION = "A scene."


@dataclass
class Annotation:
    """Metric c2w float32 `[F, 4, 4]` (frame 0 = identity), K float32 `[3, 3]` (pixels), the per-clip metric
    scale and its per-frame values (None in GT-pose mode), the engine used, and provenance for the metadata."""

    c2w: np.ndarray
    K: np.ndarray
    scale: float
    per_frame_scale: np.ndarray | None
    engine: str
    registered: int
    notes: dict = field(default_factory=dict)


DepthSource = Callable[[np.ndarray], np.ndarray]


def _run_engine(name: str, frames: np.ndarray, K: np.ndarray | None, depth_for: DepthSource,
                features, flow: DenseFlow, colmap_K: np.ndarray | None) -> SfMResult:
    if name == "colmap":
        return run_colmap(frames, K)
    chain_K = K if K is not None else colmap_K
    if chain_K is None:
        raise UserError("the OpenCV fallback needs intrinsics: pass --intrinsics")
    depth = depth_for(chain_K)
    chain = run_opencv_chain(frames, chain_K, depth, features)
    refined = refine_translations(frames, chain.c2w, chain.registered, chain_K, depth, flow=flow)
    return replace(chain, c2w=refined, notes={**chain.notes, "translations": "dense_flow_averaging"})


def _drop_frames(result: SfMResult, frames: np.ndarray) -> SfMResult:
    """The engine's result with `frames` (indices `[K]`) unregistered, their observations removed."""
    if len(frames) == 0:
        return result
    registered = result.registered.copy()
    registered[frames] = False
    observations = [(np.zeros((0, 2)), np.zeros(0)) if not registered[f] else obs
                    for f, obs in enumerate(result.observations)]
    return replace(result, registered=registered, observations=observations,
                   notes={**result.notes, "rotation_outlier_frames": frames.tolist()})


def _memoised(depth_for: DepthSource | None) -> DepthSource | None:
    """`depth_for` computing each K's depth once (the engines and the scale step ask for the same maps)."""
    if depth_for is None:
        return None
    cache: dict[bytes, np.ndarray] = {}

    def depth(K: np.ndarray) -> np.ndarray:
        key = np.round(np.asarray(K, np.float64), 6).tobytes()
        if key not in cache:
            cache[key] = depth_for(K)
        return cache[key]

    return depth


def _chain_scale(result: SfMResult, c2w: np.ndarray, chain: SfMResult) -> tuple[float | None, dict, str | None]:
    """(scale, notes, problem) of the Sim(3) from an engine's relativised poses c2w `[F, 4, 4]` onto the metric
    depth-PnP chain's, over frames both registered. Scale None with the reason in the notes when the chain
    registered too few frames to fix it; a problem (the engine is rejected) when the two trajectories disagree."""
    both = result.registered & chain.registered
    if both.mean() < MIN_REGISTERED_FRACTION:
        return None, {"chain_unused": f"the depth-PnP chain registered {int(chain.registered.sum())}/{len(both)} "
                                      f"frames"}, None
    scale, fit = sim3_scale(c2w[both], chain.c2w[both])
    agreement = chain_agreement(c2w[both], chain.c2w[both])
    notes = {**{f"chain_sim3_{k}": v for k, v in fit.items()},
             **{f"chain_{k}": round(v, 4) for k, v in agreement.items()}}
    # The engine's path in metres, not the chain's: a chain that jitters has a longer path than it travelled.
    metric_path = scale * path_length(c2w[both])
    problem = sim3_problem(result.engine, fit["rmse_m"], metric_path, "the depth-PnP chain")
    return scale, notes, problem or chain_problem(result.engine, agreement)


@dataclass
class _ScaleStep:
    """The metric-scale step's outcome for one engine: the per-clip scale, the per-frame structure scales (None in
    GT-pose mode), notes for the metadata, why the engine is rejected (or None), and whether that is because its
    trajectory and the depth-PnP chain's disagree (then no engine's poses are trusted)."""

    scale: float
    estimate: ScaleEstimate | None
    notes: dict
    problem: str | None = None
    engines_disagree: bool = False


def _metric_scale(result: SfMResult, c2w: np.ndarray, depth_for: DepthSource | None, gt_c2w: np.ndarray | None,
                  frames: np.ndarray, features, flow: DenseFlow, smoothing: str, measured_depth: bool) -> _ScaleStep:
    """The metric scale of an engine's relativised poses c2w `[F, 4, 4]`: from known poses; for COLMAP, from
    measured depth by the depth-PnP chain, from predicted depth by the dense flow scale (flow_scale.py), the chain
    then only checking the trajectory; for the OpenCV engine by the flow scale."""
    if gt_c2w is not None:
        scale, fit = gt_pose_scale(c2w, gt_c2w)
        problem = sim3_problem(result.engine, fit["rmse_m"], path_length(gt_c2w))
        return _ScaleStep(scale, None, {"scale_source": "gt_poses_sim3", **{f"sim3_{k}": v for k, v in fit.items()}},
                          problem)
    depth = depth_for(result.K)
    estimate = fuse_scale(result.observations, depth, frames.shape[1:3], smoothing)
    notes = {"scale_smoothing": smoothing, "scale_cv": round(estimate.coefficient_of_variation, 4)}
    problem = structure_problem(result.engine, estimate.per_frame)
    if problem is not None:
        return _ScaleStep(estimate.scale, estimate, notes, problem)
    if result.engine == "opencv":
        # its translations were re-solved densely (_run_engine), which leaves their scale short: the flow scale
        # sets it, from measured depth too
        return _flow_step(result, c2w, frames, flow, depth, estimate, notes)
    scale, chain_notes, problem = _chain_scale(result, c2w, run_opencv_chain(frames, result.K, depth, features))
    if problem is not None:
        return _ScaleStep(scale, estimate, {**notes, **chain_notes}, problem, engines_disagree=True)
    if not measured_depth:
        return _flow_step(result, c2w, frames, flow, depth, estimate,
                          {**notes, **chain_notes, "chain_scale": scale})
    if scale is None:
        return _ScaleStep(estimate.scale, estimate, {"scale_source": "metric_depth_structure", **notes, **chain_notes})
    return _ScaleStep(scale, estimate, {"scale_source": "metric_depth_pnp_chain_sim3", **notes, **chain_notes})


def _flow_step(result: SfMResult, c2w: np.ndarray, frames: np.ndarray, flow: DenseFlow, depth: np.ndarray,
               estimate: ScaleEstimate, notes: dict) -> _ScaleStep:
    """The scale of c2w `[F, 4, 4]` from metric depth `[F, h, w]` by the dense flow scale; when the clip fixes
    none (too little parallax), the engine is rejected with that reason."""
    try:
        fit = flow_scale(frames, c2w, result.K, depth, result.registered, flow=flow)
    except UserError as exc:
        return _ScaleStep(1.0, estimate, notes, f"{result.engine}: {exc}")
    return _ScaleStep(fit.scale, estimate, {"scale_source": "metric_depth_flow", **notes,
                                            "flow_pixels": fit.pixels, "flow_pairs": fit.pairs})


def annotate_frames(frames: np.ndarray, *, K: np.ndarray | None = None, depth_for: DepthSource | None = None,
                    gt_c2w: np.ndarray | None = None, engine: str = "auto", smoothing: str = "median",
                    measured_depth: bool = False, progress: Callable[[str], None] = lambda msg: None) -> Annotation:
    """Annotate uint8 frames `[F, H, W, 3]`. K `[3, 3]` in pixels or None (estimated by COLMAP).
    `depth_for(K) -> [F, h, w]` gives metric depth (needed unless `gt_c2w` `[F, 4, 4]` fixes the scale, and by
    the OpenCV engine). `measured_depth`: that depth is measured (GT-depth mode), not predicted, so when COLMAP
    and the depth-PnP chain disagree the chain is the one to take (with exact depth it was right on all four
    world clips where they disagreed: ≤ 0.07° rotation, ≤ 0.8 % translation, ≤ 2.6 % scale error, as the OpenCV
    engine with its dense translations), and COLMAP's scale comes from the chain; with predicted depth neither
    engine is trusted on a disagreement, and the scale is the flow scale. Raises UserError naming every engine's
    failure, or the filter a clip fails."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise UserError(f"frames must be uint8 [F, H, W, 3], got {frames.dtype} {list(frames.shape)}")
    if len(frames) < MIN_FRAMES:
        raise UserError(f"clip too short: {len(frames)} frames, the annotator needs at least {MIN_FRAMES}")
    if engine not in ENGINES:
        raise UserError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if depth_for is None and gt_c2w is None:
        raise UserError("no metric scale source: give metric depth or known poses")
    image_hw = frames.shape[1:3]
    depth_for = _memoised(depth_for)
    progress("detecting SIFT features")
    features = two_view.detect(frames)
    flow = DenseFlow(frames)  # the flow steps share its pairs
    essential_cache: dict[bytes, dict] = {}
    failures, result, colmap_K = [], None, None
    for name in ENGINES[engine]:
        progress(f"running {name}")
        step = None
        candidate = _run_engine(name, frames, K, depth_for, features, flow, colmap_K)
        if name == "colmap" and candidate.registered.any():
            colmap_K = candidate.K
        key = np.round(candidate.K, 6).tobytes()
        if key not in essential_cache:
            essential_cache[key] = two_view.essential_rotations(features, candidate.K, check_pairs(len(frames)))
        candidate = _drop_frames(candidate, rotation_outlier_frames(candidate.c2w, candidate.registered,
                                                                    essential_cache[key]))
        problem = engine_problem(candidate, essential_cache[key])
        if problem is None:
            c2w = relativize(fill_unregistered(candidate.c2w, candidate.registered))
            step = _metric_scale(candidate, c2w, depth_for, gt_c2w, frames, features, flow, smoothing,
                                 measured_depth)
            problem = step.problem
        if problem is None:
            result = candidate
            break
        failures.append(problem)
        if step is not None and step.engines_disagree and not measured_depth:
            # A complete, checked COLMAP model against the chain: either may be the wrong one (measured both ways),
            # so the chain is not taken as the fallback.
            failures.append("so the OpenCV chain is not trusted either (known poses, --gt-poses, need no chain)")
            break
    if result is None:
        raise UserError("pose recovery failed, no poses written: " + "; ".join(failures))
    notes = {"rejected_engines": failures, **{f"{result.engine}_{k}": v for k, v in result.notes.items()},
             "reprojection_px": round(result.reprojection_px, 4), **step.notes}
    estimate = step.estimate
    problem = camera_filter_problem(result.K, image_hw, estimate.coefficient_of_variation if estimate else None)
    if problem is not None:
        raise UserError(f"clip rejected by the camera filters: {problem}")
    c2w[:, :3, 3] *= step.scale
    return Annotation(c2w.astype(np.float32), result.K.astype(np.float32), float(step.scale),
                      estimate.per_frame if estimate else None, result.engine, int(result.registered.sum()), notes)


def parse_intrinsics(text: str, num_frames: int) -> np.ndarray:
    """K `[3, 3]` from "fx,fy,cx,cy" or a .npy path (load_intrinsics); per-frame intrinsics must be constant."""
    parts = text.split(",")
    if len(parts) == 4:
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise UserError(f"--intrinsics must be fx,fy,cx,cy numbers or a .npy file, got {text!r}") from None
        if not all(np.isfinite(values)) or min(values[:2]) <= 0:
            raise UserError(f"--intrinsics needs finite values and positive focal lengths, got {text!r}")
        return fxfycxcy_to_K(values).astype(np.float64)
    K = load_intrinsics(text, num_frames).astype(np.float64)
    if np.abs(K - K[0]).max() > 1e-3 * max(1.0, float(np.abs(K[0]).max())):
        raise UserError(f"{text}: the annotator uses one camera per clip, but these intrinsics vary over frames")
    return K[0]


def _natural_key(name: str):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def load_depth_maps(path: str | os.PathLike, num_frames: int) -> np.ndarray:
    """Metric z-depth `[F, h, w]` from one .npy `[F, h, w]` or a folder of per-frame .npy `[h, w]` files."""
    path = Path(path)
    if path.is_dir():
        files = sorted((p for p in path.iterdir() if p.suffix == ".npy"), key=lambda p: _natural_key(p.name))
        if len(files) < num_frames:
            raise UserError(f"--depth-dir {path}: {len(files)} .npy depth maps for {num_frames} frames")
        maps = [_load_npy(f) for f in files[:num_frames]]
        if any(m.shape != maps[0].shape or m.ndim != 2 for m in maps):
            raise UserError(f"--depth-dir {path}: depth maps must all be 2-D and the same size")
        depth = np.stack(maps)
    elif path.is_file():
        depth = _load_npy(path)
        if depth.ndim != 3 or len(depth) < num_frames:
            raise UserError(f"{path}: expected depth [F, H, W] with F >= {num_frames}, got {list(depth.shape)}")
        depth = depth[:num_frames]
    else:
        raise UserError(f"--depth-dir not found: {path}")
    return depth.astype(np.float32)


def _load_npy(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise UserError(f"{path}: not a readable .npy depth map ({str(exc).splitlines()[0]})") from None
    if not isinstance(arr, np.ndarray) or not np.issubdtype(arr.dtype, np.number):
        raise UserError(f"{path}: depth must be a numeric array")
    return arr


def load_gt_poses(path: str | os.PathLike, num_frames: int) -> np.ndarray:
    """Known c2w `[num_frames, 4, 4]` from a .npy (more poses than frames are truncated)."""
    c2w = load_c2w(path)
    if len(c2w) < num_frames:
        raise UserError(f"--gt-poses {path}: {len(c2w)} poses for {num_frames} frames")
    return c2w[:num_frames]
