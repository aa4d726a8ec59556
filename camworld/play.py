"""Interactive play: the world model driven one chunk at a time by the keys the user holds (sana_wm.md §4, §6.5).

`PlaySession.step("w")` rolls the WASD/IJKL action DSL forward by one chunk's frames with those keys held, makes
that chunk with the chunk-by-chunk sampler (`camworld.samplers.chunk_rollout`), decodes it with the streaming VAE
decoder and returns the frames: 12 frames (0.75 s at 16 fps) per step with the tiny preset's chunk plan, 13 in the
first step (frame 0, the input image's reconstruction, comes with it).

A session is the same video as `WorldModel.generate(..., mode="ar", stream=True, interval_k=1)` on the action string
of its steps (`PlaySession.action_string`), seed and segment length. For the bundled weights, whose packaged ar
schedule is already chunk by chunk, that is `camworld generate --mode ar --stream --action ...` with no schedule
flags. The two agree because play uses:
- the same noise: one generator per segment, drawn chunk by chunk (torch draws the same numbers as one draw for the
  whole segment);
- the same cameras, prepared on the poses known so far (every camera input of a frame depends only on the poses up
  to it);
- the same chunk plan, and segments handed over on the last decoded frame as `camworld.pipeline_segments` does.
tests/pipeline/test_play.py checks it frame for frame. The σ list always runs chunk by chunk (interval_k = 1),
whatever the weights package: a chunk cannot start before the keys for it are known. A step at the end of a segment
is shorter (8 frames when 81-frame segments end on a 2-latent chunk).

No refined output: `generate` refines after stage 1 has made every chunk, and the tiny refiner is off by default (it
made the videos worse, docs/results/generation.md). The refined hand-over (`segment_refine_handoff`) does run here: when
a segment is finished and the next one starts, the finished one is refined to take its last frame, as
`generate_in_segments` does, so that step takes one refiner pass longer. The DiT state (GDN states, a sink + window KV
cache) has a fixed size, so memory does not grow with the length; the cameras are prepared on the current segment's
poses, or on all poses in one pass.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import groupby

import numpy as np
import torch

from camworld.camera import (
    action_string_to_c2w,
    check_fov,
    intrinsics_resize_crop,
    num_latent_frames,
    relativize,
)
from camworld.camera.dsl import ACTION_KEYS
from camworld.errors import UserError
from camworld.ops.chunks import chunk_bounds
from camworld.pipeline import GenerationResult, WorldModel
from camworld.pipeline_inputs import check_trajectory, prepare_cameras
from camworld.pipeline_segments import check_refine_handoff, check_segment_frames, match_color_statistics
from camworld.samplers.chunk_rollout import ChunkRollout
from camworld.samplers.guidance import ClassifierFreeGuidance
from camworld.tokenizer.vae import to_uint8

ONE_PASS_LATENTS = 1 << 40  # the latent length of a session without segments: never reached


def step_keys(keys: str) -> str:
    """A step's held keys in the action DSL: letters of wasdijkl (any case, any order) or "" / "none" for none."""
    cleaned = "".join(str(keys).split()).lower()
    if cleaned in ("", "none", "."):
        return "none"
    unknown = sorted(set(cleaned) - ACTION_KEYS)
    if unknown:
        raise UserError(f"unknown keys {''.join(unknown)!r}; hold letters of wasdijkl, or none")
    return "".join(sorted(set(cleaned)))


@dataclass(frozen=True)
class PlayStep:
    """One step's output: frames uint8 [n, H, W, 3] for poses first_pose .. first_pose + n − 1, their c2w [n, 4, 4]
    (relative to pose 0 of the session) and K [n, 3, 3] (in output pixels), the keys held, and the seconds taken."""

    frames: np.ndarray
    first_pose: int
    c2w: np.ndarray
    K: np.ndarray
    keys: str
    seconds: float


@dataclass
class _Segment:
    """The running segment: its first pose, length in latent frames, noise generator, rollout and decoder, the
    image it starts from, and how many chunks it has made."""

    start: int
    latents: int
    generator: torch.Generator
    rollout: ChunkRollout
    decoder: object
    first_latent: torch.Tensor
    anchor: np.ndarray = field(repr=False)
    done: int = 0
    last_frame: np.ndarray | None = field(default=None, repr=False)
    chunks: list[torch.Tensor] = field(default_factory=list, repr=False)  # its latents, kept for a refined hand-over


class PlaySession:
    """A world-model video made step by step from held keys; see the module docstring.

    image: uint8 [H, W, 3] of any size (resized + centre-cropped to the model resolution). K [3, 3]: intrinsics in
    pixels of `image`, the same for every frame. seed: noise of segment k is seeded seed + k, as in `generate`.
    translation_speed / rotation_speed_deg: the DSL's per-frame speeds (None: v3's 0.025 m, 0.6°). steps /
    flow_shift / cfg_scale / sigmas / student / segment_frames / segment_color_match / segment_refine_handoff: as in
    `WorldModel.generate` with mode "ar" (None takes what the weights package: the ar σ list, no guidance, 81-frame
    segments for the bundled tiny weights)."""

    def __init__(self, model: WorldModel, image: np.ndarray, prompt: str, K: np.ndarray, *, seed: int = 42,
                 translation_speed: float | None = None, rotation_speed_deg: float | None = None,
                 steps: int | None = None, flow_shift: float | None = None, cfg_scale: float | None = None,
                 sigmas: Sequence[float] | None = None, student: bool | None = None,
                 segment_frames: int | None = None, segment_color_match: bool | None = None,
                 segment_refine_handoff: bool = False):
        self.model = model
        if segment_refine_handoff:
            check_refine_handoff(model)
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise UserError(f"the first frame must be uint8 [H, W, 3], got {image.dtype} {list(image.shape)}")
        K = np.asarray(K, dtype=np.float64)
        if K.shape != (3, 3):
            raise UserError(f"intrinsics must be one 3x3 matrix, got shape {list(K.shape)}")
        check_trajectory(np.eye(4)[None], K[None])
        self.K_image = intrinsics_resize_crop(K[None], image.shape[:2], model.image_hw)[0]
        check_fov(self.K_image[None], model.image_hw)
        self.first_frame = model.prepare_image(image)
        self.prompt, self.seed = prompt, int(seed)
        self.translation_speed, self.rotation_speed_deg = translation_speed, rotation_speed_deg
        action_string_to_c2w("none-1", translation_speed=translation_speed, rotation_speed_deg=rotation_speed_deg)
        self.segment_frames = model.default_segment_frames("ar") if segment_frames is None else int(segment_frames)
        check_segment_frames(self.segment_frames, model.stride)
        self.color_match = (model.cfg.sampling.segment_color_match if segment_color_match is None
                            else bool(segment_color_match))
        self.refine_handoff = bool(segment_refine_handoff)
        self.stage1, self.sigmas, self.cfg_scale, self.schedule = self._schedule(
            steps, flow_shift, cfg_scale, sigmas, student)
        text, text_mask = model.text_encoder().encode([prompt])
        null_text, null_mask = model.text_encoder().null_embedding()
        self.text, self.text_mask = text.to(model.device), text_mask.to(model.device)
        self.guided = ClassifierFreeGuidance(self.stage1, null_text[0].to(model.device),
                                             null_mask[0].to(model.device), self.cfg_scale)
        self.keys: list[str] = []  # one entry per pose after pose 0: the keys held while moving into it
        self.c2w = np.eye(4, dtype=np.float32)[None]
        self.segments_started = 0
        self._interrupted = False
        self._segment: _Segment | None = None
        self.seconds = 0.0

    def _schedule(self, steps, flow_shift, cfg_scale, sigmas, student):
        """(stage-1 model, σ list, guidance scale, a note on where the schedule came from): `generate`'s ar schedule
        (`WorldModel.stage1_schedule`), run chunk by chunk whatever stagger it names."""
        model = self.model
        if student is None:
            student = model.student_by_default
        if student and (any(v is not None for v in (steps, flow_shift, sigmas)) or cfg_scale not in (None, 1.0)):
            raise UserError("the distilled student samples with its own σ list and no guidance: drop steps, "
                            "flow_shift, sigmas and cfg_scale")
        self.student = bool(student)
        schedule = model.stage1_schedule("ar", steps=steps, flow_shift=flow_shift, cfg_scale=cfg_scale,
                                         sigmas=sigmas, student=student)
        notes = schedule.notes
        note = notes.get("student") or notes.get("schedule") or notes.get("sigmas") or (
            f"{60 if steps is None else steps} steps at shift "
            f"{model.default_flow_shift if flow_shift is None else flow_shift}")
        return schedule.model, schedule.sigmas, schedule.cfg_scale, note

    @property
    def num_poses(self) -> int:
        return len(self.c2w)

    @property
    def action_string(self) -> str:
        """The session's steps as one action string, for `camworld generate --action` (empty before any step)."""
        return _runs(self.keys)

    @property
    def K(self) -> np.ndarray:
        """Intrinsics of every pose so far, in output pixels [N, 3, 3]."""
        return np.repeat(self.K_image[None].astype(np.float32), self.num_poses, axis=0)

    def _segment_latents(self) -> int:
        return num_latent_frames(self.segment_frames, self.model.stride) if self.segment_frames else ONE_PASS_LATENTS

    def _chunk(self, latents: int, c: int) -> tuple[int, int] | None:
        """Latent frames [start, end) of chunk c of a `latents`-long segment, None past its end."""
        m = self.model.cfg.model
        bounds = chunk_bounds(min(latents, m.chunk_first + c * m.chunk_size), m.chunk_first, m.chunk_size)
        return bounds[c] if c < len(bounds) else None

    def _next_chunk(self) -> tuple[bool, tuple[int, int]]:
        """(whether the next step starts a new segment, its chunk's latent frames)."""
        segment = self._segment
        bounds = None if segment is None else self._chunk(segment.latents, segment.done)
        if bounds is None:
            return True, self._chunk(self._segment_latents(), 0)
        return False, bounds

    def next_step_frames(self) -> int:
        """How many new poses (and frames, plus frame 0 in the first step) the next step makes."""
        return self._new_poses(*self._next_chunk()[1])

    def _new_poses(self, s: int, e: int) -> int:
        """The poses a chunk of latent frames [s, e) adds (latent 0 is the segment's first, already known, pose)."""
        return self.model.stride * (e - max(s, 1))

    @torch.no_grad()
    def step(self, keys: str) -> PlayStep:
        """Hold `keys` ("w", "dw", "" for none, ...) for one chunk and return its frames (module docstring). The
        session's poses and keys change only when the step completes; a step interrupted midway (an exception,
        Ctrl-C) leaves them as they were and ends the session, since its noise and decoder state moved on."""
        keys = step_keys(keys)
        if self._interrupted:
            raise UserError("this play session was interrupted in the middle of a step; start a new one")
        begin = time.perf_counter()
        fresh, (s, e) = self._next_chunk()
        held = self.keys + [keys] * self._new_poses(s, e)
        c2w = action_string_to_c2w(_runs(held), translation_speed=self.translation_speed,
                                   rotation_speed_deg=self.rotation_speed_deg)
        self._interrupted = True
        frames, first_pose = self._make_chunk(relativize(c2w.astype(np.float64)), len(c2w), fresh, s, e)
        self._interrupted = False
        self.keys, self.c2w = held, c2w
        seconds = time.perf_counter() - begin
        self.seconds += seconds
        return PlayStep(frames=frames, first_pose=first_pose, c2w=c2w[first_pose:].copy(), K=self.K[first_pose:],
                        keys=keys, seconds=seconds)

    def _make_chunk(self, relative: np.ndarray, num_poses: int, fresh: bool, s: int, e: int
                    ) -> tuple[np.ndarray, int]:
        """Make and decode the chunk of latent frames [s, e) (of a new segment if `fresh`) on poses `relative`
        [num_poses, 4, 4] (relative to pose 0 in float64, each segment sliced from them, as `generate_in_segments`
        does) -> (its new frames, the pose of the first)."""
        if fresh:
            self._segment = self._start_segment(relative)
        segment, model, stride = self._segment, self.model, self.model.stride
        end_pose = segment.start + stride * (e - 1) + 1  # the poses this chunk's cameras need
        cams = prepare_cameras(relative[segment.start:end_pose],
                               np.repeat(self.K_image[None], end_pose - segment.start, axis=0),
                               model.image_hw, model.image_hw, model.grid_hw, stride, end_pose - segment.start,
                               model.plucker_bases(end_pose - segment.start))
        h, w = model.grid_hw
        noise = torch.randn(1, e - s, h, w, model.cfg.model.in_channels, generator=segment.generator)
        noise = noise.to(model.device)
        held = torch.zeros(e - s, dtype=torch.bool)
        if s == 0:
            noise[:, :1], held[0] = segment.first_latent, True
        chunk = segment.rollout.next(noise, cams.inputs.frames(s, e).to(model.device), held)
        frames = to_uint8(segment.decoder.step(chunk))[0].cpu().numpy()
        if self.refine_handoff:
            segment.chunks.append(chunk.cpu())
        segment.done += 1
        segment.last_frame = frames[-1]
        if s == 0 and segment.start > 0:
            frames = frames[1:]  # the handed-over frame, already given as the previous segment's last
        return frames, num_poses - len(frames)

    def _start_segment(self, relative: np.ndarray) -> _Segment:
        """A fresh rollout from pose 0 (the input image) or from the last frame of the segment before (refined
        when `refine_handoff`; `relative` [N, 4, 4]: the poses so far, relative to pose 0)."""
        model, previous = self.model, self._segment
        if previous is None:
            start, anchor = 0, self.first_frame
        else:
            start = previous.start + self.segment_frames - 1
            anchor = self._refined_last_frame(previous, relative) if self.refine_handoff else previous.last_frame
            if self.color_match:
                anchor = match_color_statistics(anchor, self.first_frame)
        anchor = model.prepare_image(anchor)
        first_latent = model.encode_image(anchor)
        k = self.segments_started
        self.segments_started += 1
        return _Segment(start=start, latents=self._segment_latents(),
                        generator=torch.Generator().manual_seed(self.seed + k),
                        rollout=ChunkRollout(self.guided, self.text, self.text_mask, self.sigmas),
                        decoder=model.vae().stream_decoder(), first_latent=first_latent, anchor=anchor)

    def _refined_last_frame(self, segment: _Segment, relative: np.ndarray) -> np.ndarray:
        """The last frame of the finished `segment` refined by `WorldModel.refine` on its latents and poses, as
        `generate_in_segments` refines it (the cameras prepared as `generate` prepares that segment's)."""
        model, frames = self.model, self.segment_frames
        K = np.repeat(self.K_image[None], frames, axis=0)
        cams = prepare_cameras(relative[segment.start:segment.start + frames], K, model.image_hw, model.image_hw,
                               model.grid_hw, model.stride, frames, model.plucker_bases(frames))
        made = GenerationResult(frames=None, c2w=cams.c2w, K=cams.K, first_frame=segment.anchor,
                                latents=torch.cat(segment.chunks, dim=1), num_frames=frames, refined=False)
        return model.refine(made, self.prompt, cams.c2w, cams.K, progress=False).frames[-1]


def _runs(keys: list[str]) -> str:
    """Per-pose held keys -> an action string of runs ("w-24,dw-12"); "" for none."""
    return ",".join(f"{held}-{len(list(run))}" for held, run in groupby(keys))
