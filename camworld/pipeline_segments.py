"""Long videos as a chain of short ones: each segment is a `WorldModel.generate` from the last frame of the segment
before, along its own stretch of the trajectory. Our addition, not SANA-WM's (which samples the whole minute in one
pass, its GDN state carrying the memory).

Why: the tiny DiT trained on 37- and 49-frame clips. Sampled over 961 frames in one pass, it keeps a scene for about
20 s and then breaks into blobs of the world's colours; the first 5 s are its good regime. Chaining 81-frame segments
keeps every segment in that regime (docs/results/generation.md, "Does it follow the camera?", for the measurement).
What it costs: a segment knows only its first frame, so nothing from earlier segments is remembered when the camera
comes back.

Segment k covers poses [start_k, end_k) with end_k − start_k = stride·j + 1; consecutive segments share one pose (the
handed-over frame, kept once). Segment 0 is exactly the one-pass video of its length (same image, poses, seed), so
a video's first segment does not depend on how long the video is. Segment k > 0 starts from segment k − 1's last
decoded frame (re-encoded as its latent 0, as any input image is), its poses relativised to that frame, its
intrinsics already in model pixels, and noise seed `seed + k`.

Refined hand-over (optional, off for the bundled weights): each segment is refined by the stage-2 refiner only
to take its last frame, sharper than stage 1's, as the next segment's first; the video itself stays stage 1's, so
its first segment is exactly the plain one. (With the refiner on, the output is refined and each segment hands over
its refined last frame anyway.)

Colour matching (optional, off for the bundled weights): before the hand-over, that frame's per-channel mean and
standard deviation are set to those of the video's first frame. Each segment drifts a little (with the tiny weights,
darker and flatter) and the chain compounds it. On tuning worlds, without matching two of three minute-long videos
ended in a field of one colour (blue, orange), and with it they kept sky, ground and objects to the end; but on the
held-out worlds it scored lower in the last 10 s (docs/results/generation.md). It assumes the world's overall colours
stay those of the first frame, which a camera turning from sky to a dark wall breaks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from camworld.camera import check_fov, intrinsics_resize_crop, relativize
from camworld.errors import UserError


def check_segment_frames(segment_frames: int, stride: int) -> None:
    """segment_frames must be 0 (one pass) or stride·j + 1 with j >= 1."""
    if segment_frames != 0 and (segment_frames < stride + 1 or (segment_frames - 1) % stride):
        raise UserError(f"segment_frames must be 0 (one pass) or stride·k + 1 >= {stride + 1} (stride {stride}), "
                        f"got {segment_frames}")


def check_refine_handoff(model: Any) -> None:
    """A refined hand-over needs weights with a refiner."""
    if not model.has_refiner:
        raise UserError(f"segment_refine_handoff needs a refiner, and weights folder {model.path} has no refiner/")


def segment_bounds(num_frames: int, segment_frames: int) -> list[tuple[int, int]]:
    """Pose ranges [start, end) of the segments of a `num_frames` video, each at most `segment_frames` long and
    sharing its first pose with the previous segment's last. num_frames and segment_frames are stride·k + 1, so
    every segment is too. [(0, num_frames)] when one segment holds it all."""
    bounds, start = [], 0
    while True:
        end = min(start + segment_frames, num_frames)
        bounds.append((start, end))
        if end == num_frames:
            return bounds
        start = end - 1


def match_color_statistics(image: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """uint8 [H, W, 3] image with each channel's mean and standard deviation set to those of `reference` (uint8
    [H', W', 3]); a flat channel becomes the reference's mean."""
    pixels = image.reshape(-1, 3).astype(np.float64)
    target = reference.reshape(-1, 3).astype(np.float64)
    spread = pixels.std(axis=0)
    gain = np.divide(target.std(axis=0), spread, out=np.zeros(3), where=spread > 1e-6)
    matched = (pixels - pixels.mean(axis=0)) * gain + target.mean(axis=0)
    return np.clip(np.rint(matched), 0, 255).astype(np.uint8).reshape(image.shape)


def generate_in_segments(model: Any, image: np.ndarray | None, prompt: str, c2w: np.ndarray, K: np.ndarray, *,
                         num_frames: int, segment_frames: int, color_match: bool = False,
                         refine_handoff: bool = False, seed: int = 42,
                         on_frames: Callable[[np.ndarray, int], None] | None = None,
                         on_chunk: Callable[[int, torch.Tensor], None] | None = None,
                         progress: bool = True, **kwargs: Any):
    """`model.generate` over `num_frames` poses as a chain of segments of at most `segment_frames` (c2w and K
    checked, num_frames snapped by `generate`); color_match: match each handed-over frame's colours to the first
    frame's; refine_handoff: hand over the refiner's last frame of each segment while the output stays stage 1's
    (module docstring; no effect when the output is refined anyway); the other keyword arguments pass through to
    every segment. on_frames gets pose indices of the whole video; on_chunk's index counts chunks over all
    segments.

    Returns one `GenerationResult` whose frames, poses (relative to pose 0 of the whole trajectory) and intrinsics
    (in model pixels) cover the whole video. Its latents are the segments' latents with each later segment's latent 0
    (its re-encoded first frame) left out; `segments` holds the per-segment results, `segment_bounds` their poses."""
    if refine_handoff:
        check_refine_handoff(model)
    source_hw = model.image_hw if image is None else np.asarray(image).shape[:2]
    k_image = intrinsics_resize_crop(K[:num_frames], source_hw, model.image_hw)
    check_fov(k_image, model.image_hw)  # the whole trajectory, before anything is made
    rel = relativize(c2w[:num_frames].astype(np.float64))
    anchor = None if image is None else model.prepare_image(np.asarray(image))
    parts, results, chunks_seen = [], [], [0]
    bounds = segment_bounds(num_frames, segment_frames)
    for k, (start, end) in enumerate(tqdm(bounds, desc="segments", disable=not progress or len(bounds) == 1)):
        kept = {"last": None}

        def frames_out(frames: np.ndarray, index: int, start=start, k=k, kept=kept) -> None:
            kept["last"] = frames[-1]
            if k > 0 and index == 0:  # the handed-over frame, already given as the previous segment's last
                frames, index = frames[1:], 1
            if on_frames is not None and len(frames):
                on_frames(frames, start + index)
            elif len(frames):
                parts.append(frames)

        def chunk_out(index: int, latents: torch.Tensor) -> None:  # chunks arrive in order, once each
            on_chunk(chunks_seen[0], latents)
            chunks_seen[0] += 1

        result = model.generate(anchor, prompt, rel[start:end], k_image[start:end], num_frames=end - start,
                                seed=seed + k, segment_frames=0, on_frames=frames_out,
                                on_chunk=None if on_chunk is None else chunk_out,
                                progress=progress and len(bounds) == 1, **kwargs)
        results.append(result)
        if refine_handoff and not result.refined and k + 1 < len(bounds):
            clock = time.perf_counter()
            kept["last"] = model.refine(result, prompt, result.c2w, result.K, progress=False,
                                        refiner_seed=kwargs.get("refiner_seed", 42)).frames[-1]
            seconds = time.perf_counter() - clock  # booked with the segment, so the video's total includes it
            result.timings["handoff_refine"] = seconds
            result.timings["total"] = result.timings.get("total", 0.0) + seconds
        anchor = match_color_statistics(kept["last"], results[0].first_frame) if color_match else kept["last"]
    first = results[0]
    timings, latents = _joined(results)
    drop = 1 if first.refined else 0
    notes = {**first.notes, "segments": f"{len(bounds)} segments of at most {segment_frames} frames, each from the "
                                        "last frame of the one before"}
    return replace(first, frames=np.concatenate(parts) if parts else None, c2w=rel[drop:].astype(np.float32),
                   K=k_image[drop:].astype(np.float32), latents=latents, num_frames=num_frames, timings=timings,
                   notes=notes, segments=tuple(results), segment_bounds=tuple(bounds))


def refine_in_segments(model: Any, result: Any, prompt: str, *, refiner_seed: int = 42, progress: bool = True):
    """`model.refine` of a video made in segments: each segment's stage-1 latents refined with its own poses (the
    refiner's sink is the segment's latent 0), the outputs joined. Each refined segment starts at its pose 1, the
    previous segment's last pose, so the joined video starts at pose 1 and has no repeated frame. (generate with
    the refiner on hands each segment its predecessor's refined last frame instead, so the two differ after the
    first segment.)"""
    refined = [model.refine(part, prompt, part.c2w, part.K, refiner_seed=refiner_seed, progress=False)
               for part in tqdm(result.segments, desc="refine segments", disable=not progress)]
    timings, latents = _joined(refined)
    return replace(result, frames=np.concatenate([part.frames for part in refined]), c2w=result.c2w[1:],
                   K=result.K[1:], latents=latents, refined=True, timings=timings, segments=tuple(refined))


def _joined(parts: list) -> tuple[dict[str, float], torch.Tensor]:
    """(seconds per phase summed over the segments' results, their latents joined with each later segment's latent
    0, its re-encoded first frame, left out)."""
    timings: dict[str, float] = {}
    for part in parts:
        for name, seconds in part.timings.items():
            timings[name] = timings.get(name, 0.0) + seconds
    return timings, torch.cat([parts[0].latents, *(part.latents[:, 1:] for part in parts[1:])], dim=1)
