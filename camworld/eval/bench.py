"""`camworld bench`: SANA-WM's 60 s benchmark protocol (sana_wm.md §8.1–8.2) on our procedural worlds.

For every scene of `bench_scenes` (held-out world × simple / hard trajectory) the model generates one video from
the world's render at the start pose, its caption and the scene's trajectory. In the same run, on the same scenes:
- "repeat_first_frame": the conditioning image held for every frame;
- "no_camera": the same weights with the cameras removed (`camera_following.camera_blind`, see NO_CAMERA_NOTE);
- "estimator_floor": the TRUE renders of the trajectory, scored by the same pose estimator, i.e. the error our
  estimator makes on its own (`pose_tracker`); model numbers within it are indistinguishable from perfect.

Metrics (SANA-WM's definitions where they exist; evaluation_and_users.md §2.1):
- RotErr (°) / TransErr / CamMC: `camera.metrics.pose_errors` on poses estimated every 4th frame (`--interval 4`),
  against the commanded poses at the same frames. Frame 0 is the conditioning image at the identity; when the
  output was refined, frame 0 is dropped from both (the refiner drops it, §5), so the metric starts at frame 4.
  We deliberately differ: our estimator is dense alignment to the KNOWN world (Pi3X is SfM on the video alone),
  and we index frames by the pose they show, so a refined video's frame k is compared with pose k + 1.
- Revisit PSNR / SSIM between the generated frames of each revisit pair (PSNR on uint8 capped at 100 dB; SSIM
  with an 11×11 uniform window per RGB channel, C1 = (0.01·255)², C2 = (0.03·255)², map averaged over the
  whole image with reflected borders, as upstream `eval_unified.py`); pooled over all pairs of a split.
  A frozen video scores perfectly here: read revisit numbers only next to the pose errors.
- Ours, in place of VBench's ΔIQ (needs a GPU and VBench): PSNR and SSIM against the true render, mean over each
  10 s window (160 frames; clips under 20 s are split into two halves) and the first-minus-last window drop.
- Throughput: videos per hour of `generate` wall time for "model" on this machine. Peak memory: the process's
  peak resident set size (`resource.getrusage(RUSAGE_SELF).ru_maxrss`, whole run, includes the renderer and the
  estimator) and its rise over the RSS measured before the first generation; on CUDA also
  `torch.cuda.max_memory_allocated`.
"""

from __future__ import annotations

import resource
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm.auto import tqdm

from camworld.camera import pose_errors
from camworld.camera.dsl import FPS
from camworld.errors import UserError
from camworld.eval.bench_scenes import SPLITS, BenchScene, make_scenes
from camworld.eval.camera_following import DEFAULT_FOV, NO_CAMERA_NOTE, PSNR_CAP, SYSTEMS, camera_blind
from camworld.eval.pose_tracker import PhotometricPoseTracker, TrackerSettings
from camworld.pipeline import MODES
from camworld.pipeline_inputs import snap_num_frames

FLOOR = "estimator_floor"
ROWS = (*SYSTEMS, FLOOR)
TRACK_INTERVAL = 4  # SANA-WM's pose evaluation samples every 4th frame
WINDOW_S = 10
DEFAULT_STEPS = 8  # the small default's step count (SANA-WM's bench: 60)
SSIM_WINDOW = 11


@dataclass
class BenchSettings:
    """What to run. num_frames is snapped to stride·k + 1 for the model; the full protocol is num_frames=961,
    steps=60, cfg_scale=5, flow_shift=8, seed 42, refiner on, 80 scenes (sana_wm.md §8.1). tracker: the pose
    estimator's schedule (tests use a shorter one)."""

    splits: tuple[str, ...] = SPLITS
    scenes: int = 1
    seed: int = 42
    num_frames: int = 81
    steps: int | None = None  # None: DEFAULT_STEPS, or in ar mode the schedule packaged with the weights (if any)
    cfg_scale: float | None = None  # None: the scale packaged with the weights (tiny 1.0); SANA-WM's bench 5.0
    flow_shift: float | None = None  # None: the shift the weights were trained with (tiny 4.0); SANA-WM's bench 8.0
    mode: str = "bidirectional"
    refiner: bool = True
    student: bool = False  # sample with the weights' distilled 4-step student (ar mode; steps / shift unused)
    sigmas: tuple[float, ...] | None = None  # the DiT's σ list (steps / shift unused); None: steps at flow_shift
    interval_k: float | None = None  # ar pyramid stagger; None: SANA-WM's 1/#chunks
    segment_frames: int | None = None  # long videos in segments of this length; None: the weights' default
    segment_color_match: bool | None = None  # None: the weights' default
    segment_refine_handoff: bool = False  # segments handed the refiner's last frame (the refiner then runs blind too)
    fov: float = DEFAULT_FOV
    tracker: TrackerSettings = field(default_factory=TrackerSettings)

    def check(self) -> None:
        bad = [s for s in self.splits if s not in SPLITS]
        if bad or not self.splits:
            raise UserError(f"unknown split {bad[0] if bad else '(none)'}; choose from {', '.join(SPLITS)}")
        if self.scenes < 1:
            raise UserError(f"--scenes must be >= 1, got {self.scenes}")
        if self.num_frames < 2 * TRACK_INTERVAL + 1:
            raise UserError(f"--num_frames must be >= {2 * TRACK_INTERVAL + 1}, got {self.num_frames}")
        bad_guidance = self.cfg_scale is not None and self.cfg_scale <= 0
        bad_shift = self.flow_shift is not None and self.flow_shift <= 0
        if (self.steps is not None and self.steps < 1) or bad_guidance or bad_shift:
            raise UserError(f"need --steps >= 1, --cfg_scale > 0 and flow_shift > 0, got {self.steps}, "
                            f"{self.cfg_scale}, {self.flow_shift}")
        if self.mode not in MODES:
            raise UserError(f"unknown mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if self.student and self.mode != "ar":
            raise UserError("--student needs --mode ar (the student samples chunk by chunk)")


@dataclass
class BenchResult:
    """settings; scenes: `BenchScene.summary()` each; per_scene: {"scene", "split", system: scores}; summary:
    split -> system -> aggregates; tracks: scene id -> {"commanded", system: estimated} x–z lists (for the plot);
    cost: throughput and memory; notes: what the rows mean."""

    settings: dict
    scenes: list[dict] = field(default_factory=list)
    per_scene: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    tracks: dict = field(default_factory=dict)
    cost: dict = field(default_factory=dict)
    notes: dict = field(default_factory=dict)
    scene_poses: dict = field(default_factory=dict, repr=False)  # id -> (c2w, K, pairs), written as .npz


def uint8_psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR (dB) of two uint8 images, 10·log10(255²/MSE), PSNR_CAP when (nearly) identical (upstream `_psnr`)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return PSNR_CAP if mse < 1e-10 else min(PSNR_CAP, 10.0 * np.log10(255.0**2 / mse))


def _box_mean(x: np.ndarray, size: int) -> np.ndarray:
    """Mean over size×size windows centred on each pixel, borders reflected with the edge repeated (scipy's
    `uniform_filter` "reflect" = OpenCV's BORDER_REFLECT)."""
    return cv2.blur(x, (size, size), borderType=cv2.BORDER_REFLECT)


def uniform_ssim(a: np.ndarray, b: np.ndarray, window: int = SSIM_WINDOW) -> float:
    """SSIM of two uint8 images [H, W, 3] as SANA-WM's revisit metric: per RGB channel, a `window`×`window`
    uniform window, C1 = (0.01·255)², C2 = (0.03·255)², the map averaged over the whole image; channel mean.
    (camworld.tokenizer.metrics.ssim is the Gaussian-window SSIM on valid windows, a different number.)"""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    values = []
    for ch in range(3):
        x = np.ascontiguousarray(a[..., ch], dtype=np.float64)
        y = np.ascontiguousarray(b[..., ch], dtype=np.float64)
        mx, my = _box_mean(x, window), _box_mean(y, window)
        vx = _box_mean(x * x, window) - mx * mx
        vy = _box_mean(y * y, window) - my * my
        cov = _box_mean(x * y, window) - mx * my
        ssim_map = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        values.append(float(ssim_map.mean()))
    return float(np.mean(values))


def drift_windows(num_frames: int, fps: int = FPS) -> list[tuple[int, int]]:
    """Non-overlapping windows (start, end exclusive) over a video's frames: 10 s each as SANA-WM's temporal
    degradation (a trailing partial window is dropped), or the two halves of a clip shorter than 20 s."""
    size = WINDOW_S * fps if num_frames >= 2 * WINDOW_S * fps else num_frames // 2
    return [(k * size, (k + 1) * size) for k in range(num_frames // size)]


def tracked_poses(num_poses: int, refined: bool, interval: int = TRACK_INTERVAL) -> tuple[np.ndarray, np.ndarray]:
    """(pose indices the estimator visits, 0 first, every `interval`; the indices scored, without 0 when the
    output was refined)."""
    visited = np.arange(0, num_poses, interval)
    return visited, (visited[1:] if refined else visited)


def estimate_trajectory(tracker: PhotometricPoseTracker, frames: np.ndarray, offset: int, visited: np.ndarray,
                        *, progress: bool = False, desc: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Estimated c2w [len(visited), 4, 4] at pose indices `visited` (visited[0] = 0, the conditioning image at the
    identity, known) from `frames` whose frame k shows pose k + offset; each searched from the previous estimate.
    Also returns the per-frame alignment cost."""
    est, cost = tracker.track(frames[visited[1:] - offset], np.eye(4), progress=progress, desc=desc)
    return np.concatenate([np.eye(4)[None], est]), np.concatenate([[0.0], cost])


def score_video(scene: BenchScene, tracker: PhotometricPoseTracker, frames: np.ndarray, offset: int,
                truth: np.ndarray | None, refined: bool, *, progress: bool = False, desc: str = "") -> dict:
    """Pose errors, revisit scores and (given `truth`, the true renders of the same frames) drift windows of one
    video whose frame k shows pose k + offset of `scene`."""
    visited, scored = tracked_poses(len(scene.c2w), refined)
    visited = visited[visited - offset < len(frames)]
    scored = scored[scored - offset < len(frames)]
    est, cost = estimate_trajectory(tracker, frames, offset, visited, progress=progress, desc=desc)
    keep = np.isin(visited, scored)
    row: dict = {"pose": pose_errors(est[keep], scene.c2w[scored]), "track_cost": float(cost[1:].mean())}
    row["estimated_xz"] = est[:, [0, 2], 3].round(4).tolist()
    pairs = [(i, j) for i, j in scene.revisit_pairs if i - offset >= 0 and j - offset < len(frames)]
    row["revisit"] = [{"pair": [i, j], "psnr": uint8_psnr(frames[i - offset], frames[j - offset]),
                       "ssim": uniform_ssim(frames[i - offset], frames[j - offset])} for i, j in pairs]
    if truth is not None:
        windows = []
        for start, end in drift_windows(len(frames)):
            psnrs = [uint8_psnr(f, t) for f, t in zip(frames[start:end], truth[start:end], strict=True)]
            ssims = [uniform_ssim(f, t) for f, t in zip(frames[start:end], truth[start:end], strict=True)]
            windows.append({"poses": [start + offset, end - 1 + offset], "psnr": float(np.mean(psnrs)),
                            "ssim": float(np.mean(ssims))})
        row["windows"] = windows
        row["drop_psnr"] = windows[0]["psnr"] - windows[-1]["psnr"]
        row["drop_ssim"] = windows[0]["ssim"] - windows[-1]["ssim"]
    return row


def _generate(model, scene: BenchScene, image: np.ndarray, settings: BenchSettings, progress: bool):
    K = np.repeat(scene.K[None], len(scene.c2w), axis=0)
    return model.generate(image, scene.world.caption, scene.c2w, K, num_frames=len(scene.c2w),
                          steps=settings.steps, cfg_scale=settings.cfg_scale, flow_shift=settings.flow_shift,
                          seed=settings.seed, refiner_seed=settings.seed, mode=settings.mode,
                          refiner=settings.refiner, student=settings.student, sigmas=settings.sigmas,
                          interval_k=settings.interval_k, segment_frames=settings.segment_frames,
                          segment_color_match=settings.segment_color_match,
                          segment_refine_handoff=settings.segment_refine_handoff, progress=progress)


def _current_rss_bytes() -> int | None:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * resource.getpagesize()


def run_scene(model, scene: BenchScene, settings: BenchSettings, *, progress: bool = False) -> tuple[dict, dict]:
    """({"scene", "split", system: scores for every row of ROWS}, {"model_s", "no_camera_s", "refined"})."""
    image, _ = scene.world.render(np.eye(4), scene.K, *scene.image_hw)
    image = image[0]
    start = time.perf_counter()
    result = _generate(model, scene, image, settings, progress)
    model_s = time.perf_counter() - start
    start = time.perf_counter()
    with camera_blind(model, settings.refiner or settings.segment_refine_handoff, student="student" in result.notes):
        blind = _generate(model, scene, image, settings, progress)
    blind_s = time.perf_counter() - start
    offset = len(scene.c2w) - len(result.frames)  # 1 with the refiner: its output starts at pose 1
    truth, _ = scene.world.render(scene.c2w[offset:], scene.K, *scene.image_hw)
    videos = {"model": result.frames, "repeat_first_frame": np.repeat(result.first_frame[None], len(truth), axis=0),
              "no_camera": blind.frames, FLOOR: truth}
    tracker = PhotometricPoseTracker(scene.world, scene.K, scene.image_hw, settings.tracker)
    row: dict = {"scene": scene.id, "split": scene.split}
    for name, frames in videos.items():
        row[name] = score_video(scene, tracker, frames, offset, None if name == FLOOR else truth, result.refined,
                                progress=progress, desc=f"poses {name}")
    return row, {"model_s": model_s, "no_camera_s": blind_s, "refined": bool(result.refined)}


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def summarize(per_scene: list[dict], splits) -> dict:
    """split -> row -> means over scenes (pose errors, window scores, drops) and over pooled revisit pairs."""
    summary: dict = {}
    for split in splits:
        rows = [r for r in per_scene if r["split"] == split]
        summary[split] = {}
        for name in ROWS:
            scores = [r[name] for r in rows]
            pairs = [p for s in scores for p in s["revisit"]]
            entry = {key: _mean(s["pose"][key] for s in scores) for key in ("RotErr", "TransErr", "CamMC")}
            entry.update({"scenes": len(scores), "revisit_pairs": len(pairs),
                          "revisit_psnr": _mean(p["psnr"] for p in pairs),
                          "revisit_ssim": _mean(p["ssim"] for p in pairs)})
            if scores and "windows" in scores[0]:
                count = min(len(s["windows"]) for s in scores)
                entry["window_psnr"] = [_mean(s["windows"][k]["psnr"] for s in scores) for k in range(count)]
                entry["window_ssim"] = [_mean(s["windows"][k]["ssim"] for s in scores) for k in range(count)]
                entry["drop_psnr"] = _mean(s["drop_psnr"] for s in scores)
                entry["drop_ssim"] = _mean(s["drop_ssim"] for s in scores)
            summary[split][name] = entry
    return summary


def _resolve_schedule(model, settings: BenchSettings) -> BenchSettings:
    """The sampling schedule made explicit, so the results record it: in ar mode with no steps, shift, σ list or
    stagger given, the one packaged with the weights (as `generate` does); otherwise DEFAULT_STEPS if no steps."""
    unset = all(v is None for v in (settings.steps, settings.flow_shift, settings.sigmas, settings.interval_k))
    if settings.mode == "ar" and not settings.student and unset and model.packaged_ar_schedule is not None:
        sigmas, interval_k = model.packaged_ar_schedule
        settings = replace(settings, sigmas=sigmas, interval_k=interval_k)
    return settings if settings.steps is not None else replace(settings, steps=DEFAULT_STEPS)


def run_bench(model, settings: BenchSettings, *, progress: bool = True) -> BenchResult:
    """The whole benchmark on `model` (a `WorldModel`, or any object with its `image_hw`, `stride`, `has_refiner`,
    `refiner_by_default`, `default_flow_shift`, `default_cfg_scale`, `packaged_ar_schedule`, `dit` and `generate`).
    The refiner runs when settings.refiner and the weights turn it on by default (`WorldModel.refiner_by_default`:
    on only if it won its A/B); flow_shift None becomes the weights' training shift and cfg_scale None their
    packaged scale, both recorded in the results."""
    settings.check()
    settings = _resolve_schedule(model, settings)
    if settings.refiner and not model.refiner_by_default:
        settings = replace(settings, refiner=False)
    if settings.flow_shift is None:
        settings = replace(settings, flow_shift=model.default_flow_shift)
    if settings.cfg_scale is None:
        settings = replace(settings, cfg_scale=model.default_cfg_scale)
    num_frames = snap_num_frames(settings.num_frames, settings.num_frames, model.stride)
    scenes = make_scenes(settings.splits, settings.scenes, seed=settings.seed, num_frames=num_frames,
                         image_hw=tuple(model.image_hw), fov=settings.fov)
    result = BenchResult(settings={**asdict(settings), "splits": list(settings.splits),
                                   "num_frames_used": num_frames, "fps": FPS,
                                   "weights": str(getattr(model, "path", "")),
                                   "image_hw": list(model.image_hw), "track_interval": TRACK_INTERVAL})
    result.notes = {
        "no_camera": NO_CAMERA_NOTE,
        FLOOR: "the pose estimator run on the true renders of each trajectory: its own error",
        "pose_estimator": "dense photometric alignment of renders of the KNOWN world to each frame, every 4th "
                          "frame, each started from the previous estimate within a trust region of "
                          f"{settings.tracker.max_step_m:g} m / {settings.tracker.max_step_deg:g} deg "
                          "(SANA-WM: Pi3X on the video alone)",
        "revisit": "frames of a frozen video are identical, so repeat_first_frame scores 100 dB / 1.0 there",
        "drift": "PSNR / SSIM (11x11 uniform) against the true render per window; drop = first - last window "
                 "(ours, in place of VBench's delta-IQ)",
        "memory": "peak RSS = resource.getrusage(RUSAGE_SELF).ru_maxrss of the whole process",
    }
    rss_before = _current_rss_bytes()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    timings = []
    bar = tqdm(scenes, desc="bench scenes", disable=not progress)
    for scene in bar:
        bar.set_postfix_str(scene.id)
        row, timing = run_scene(model, scene, settings, progress=False)
        result.per_scene.append(row)
        timings.append(timing)
        result.scenes.append(scene.summary())
        result.scene_poses[scene.id] = (scene.c2w, scene.K, np.array(scene.revisit_pairs, dtype=np.int64))
        result.tracks[scene.id] = {"commanded": scene.c2w[::TRACK_INTERVAL][:, [0, 2], 3].round(4).tolist(),
                                   **{name: row[name].pop("estimated_xz") for name in ROWS}}
    result.summary = summarize(result.per_scene, settings.splits)
    model_s = float(sum(t["model_s"] for t in timings))
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    result.cost = {
        "videos": len(timings), "model_generate_s": model_s, "no_camera_generate_s": float(
            sum(t["no_camera_s"] for t in timings)),
        "videos_per_hour": 3600.0 * len(timings) / model_s if model_s > 0 else None,
        "refined": any(t["refined"] for t in timings), "device": str(getattr(model, "device", "cpu")),
        "torch_threads": torch.get_num_threads(),
        "peak_rss_gib": peak_kib / 2**20,
        "peak_rss_rise_gib": (peak_kib * 1024 - rss_before) / 2**30 if rss_before is not None else None,
    }
    if torch.cuda.is_available():
        result.cost["cuda_max_allocated_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return result
