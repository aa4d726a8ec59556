"""`WorldModel`: the whole image-to-video world model, tokenizer + stage-1 DiT + text encoder + optional refiner,
from a weights folder to decoded frames (sana_wm.md §2.6, §3.1, §5, §10.4).

Weights folder layout (the bundled one is camworld/assets/weights/tiny/):
    vae/      config.json (RunConfig) + model.safetensors   the causal video VAE
    dit/      config.json (RunConfig) + model.safetensors   the stage-1 WorldDiT (its config also names the text
                                                            encoder and the model resolution)
    refiner/  config.json (RunConfig) + lora.safetensors    optional stage-2 refiner, loaded lazily: a LoRA on dit/
                                                            (sana_wm.md §5), merged into a copy of the DiT re-planned
                                                            with `refiner_model_config`; the file's metadata names its
                                                            base ("dit") and the fingerprint of the base weights it was
                                                            trained on. (A refiner/ with model.safetensors instead is
                                                            a whole refiner WorldDiT.)
    student/  config.json (RunConfig) + lora.safetensors    optional distilled 4-step student (sana_wm.md §6.5), a
                                                            LoRA on dit/ trained by `camworld train --distill`, loaded
                                                            lazily when `generate(student=True)` asks for it
Everything is read with JSON and safetensors, never pickle (`camworld.weights_dirs`); a missing or corrupt file is a
one-line UserError.

`generate` runs: first image resized + centre-cropped to the model resolution and encoded as latent 0 (kept clean);
poses relativised to frame 0 and intrinsics carried through the crop to the latent grid (`camworld.pipeline_inputs`);
text and the empty prompt for classifier-free guidance; the bidirectional or chunk-autoregressive sampler; the
optional refiner; and a chunk-by-chunk decode. With the refiner the first decoded frame is dropped and the poses
realigned to c2w[1:] (sana_wm.md §5), so a 17-frame request gives 16 frames. Videos longer than the segment length
(`sampling.ar_segment_frames` in ar mode, or `segment_frames`) are a chain of such generations
(`camworld.pipeline_segments`).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from camworld.camera import num_latent_frames
from camworld.config import RunConfig, load_config
from camworld.errors import UserError
from camworld.flow.schedule import sigmas as shifted_sigmas
from camworld.lora_dirs import LORA_FILE
from camworld.models.dit import WorldDiT
from camworld.ops.chunks import rebase_frames
from camworld.pipeline_inputs import check_trajectory, prepare_cameras, resize_crop_image, snap_num_frames
from camworld.pipeline_segments import check_segment_frames, generate_in_segments, refine_in_segments
from camworld.samplers.autoregressive import sample_autoregressive
from camworld.samplers.bidirectional import sample_bidirectional
from camworld.samplers.euler import check_sigmas
from camworld.samplers.guidance import ClassifierFreeGuidance
from camworld.samplers.refine import refine_latents
from camworld.text.encoder import TextEncoder
from camworld.tokenizer.vae import CausalVideoVAE, to_uint8
from camworld.weights_dirs import (
    load_dit_dir,
    load_refiner_lora,
    load_student_lora,
    load_vae_dir,
)

BUNDLED_WEIGHTS = Path(__file__).resolve().parent / "assets" / "weights" / "tiny"
MODES = ("bidirectional", "ar")
FramesCallback = Callable[[np.ndarray, int], None]


@dataclass
class GenerationResult:
    """What `WorldModel.generate` made.

    frames: uint8 [F', H, W, 3] (None when an `on_frames` callback consumed them); c2w (F', 4, 4) relativised poses
    and K (F', 3, 3) intrinsics in output pixels, one per output frame; first_frame: the preprocessed conditioning
    image uint8 [H, W, 3]; latents: final latents [1, T, h, w, C] (latent 0 = the encoded image); num_frames: the
    frames sampled (stride·k + 1; F' = num_frames − 1 with the refiner); timings: seconds per phase;
    notes: what offloading did ("vae_offload": "cpu" or "freed"). segments: the per-segment results of a video made
    in segments (`camworld.pipeline_segments`; empty for one pass), segment_bounds their pose ranges [start, end).
    """

    frames: np.ndarray | None
    c2w: np.ndarray
    K: np.ndarray
    first_frame: np.ndarray
    latents: torch.Tensor
    num_frames: int
    refined: bool
    timings: dict[str, float] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    segments: tuple[GenerationResult, ...] = ()
    segment_bounds: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class Stage1Schedule:
    """What stage 1 samples with: the model (the DiT or the distilled student), its σ list (S + 1 floats from at most
    1 down to 0), the text guidance scale, the pyramid stagger (None: SANA-WM's 1/#chunks) and notes on where each
    came from."""

    model: WorldDiT
    sigmas: list[float]
    cfg_scale: float
    interval_k: float | None
    notes: dict[str, str]


class WorldModel:
    """Tokenizer + stage-1 DiT + text encoder (+ refiner) of one weights folder; see the module docstring."""

    def __init__(self, path: str | Path, *, device: str | torch.device = "cpu"):
        start = time.perf_counter()
        self.path = Path(path)
        if not self.path.is_dir():
            hint = " (the bundled tiny weights are not installed: pass a weights folder)" if (
                self.path == BUNDLED_WEIGHTS) else ""
            raise UserError(f"weights folder {self.path} does not exist{hint}")
        self.device = torch.device(device)
        self.dit, self.cfg = load_dit_dir(self.path / "dit")
        self.dit.to(self.device)
        self._vae: CausalVideoVAE | None = None
        self._vae_home = "disk"
        self._refiner: WorldDiT | None = None
        self._student: tuple[WorldDiT, RunConfig] | None = None
        tok = self.vae().cfg
        if (tok.latent_channels, tok.temporal_stride) != (self.cfg.model.in_channels, self.cfg.model.temporal_stride):
            raise UserError(f"{self.path}: the VAE has {tok.latent_channels} channels and stride {tok.temporal_stride} "
                            f"but the DiT expects {self.cfg.model.in_channels} and {self.cfg.model.temporal_stride}")
        self.image_hw = (tok.height, tok.width)
        self.grid_hw = (tok.height // tok.spatial_stride, tok.width // tok.spatial_stride)
        self.stride = tok.temporal_stride
        self._text_encoder: TextEncoder | None = None
        self.load_seconds = time.perf_counter() - start

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None, *, device: str | torch.device = "cpu") -> WorldModel:
        """Load a weights folder (None: the bundled tiny weights, camworld/assets/weights/tiny/)."""
        return cls(BUNDLED_WEIGHTS if path is None else path, device=device)

    def text_encoder(self) -> TextEncoder:
        """The frozen text encoder named by dit/config.json, loaded on first use (inputs are checked first)."""
        if self._text_encoder is None:
            self._text_encoder = TextEncoder(self.cfg.text)
        return self._text_encoder

    @property
    def has_refiner(self) -> bool:
        return (self.path / "refiner").is_dir()

    @property
    def default_flow_shift(self) -> float:
        """The flow shift the DiT was trained with (`train.shift` of its config); sampling uses it by default."""
        return float(self.cfg.train.shift)

    @property
    def packaged_ar_schedule(self) -> tuple[tuple[float, ...] | None, float | None] | None:
        """(σ list, interval_k) packaged with the weights for `--mode ar` (`sampling.ar_sigmas` / `ar_interval_k`),
        or None when they package none; generate uses it when the caller names no schedule."""
        packaged = self.cfg.sampling
        if packaged.ar_sigmas is None and packaged.ar_interval_k is None:
            return None
        sigmas = None if packaged.ar_sigmas is None else tuple(float(v) for v in packaged.ar_sigmas)
        return sigmas, packaged.ar_interval_k

    def default_segment_frames(self, mode: str) -> int:
        """The segment length of `mode` packaged with the weights (`sampling.ar_segment_frames` in ar mode; 0, one
        pass, otherwise)."""
        return int(self.cfg.sampling.ar_segment_frames) if mode == "ar" else 0

    @property
    def default_cfg_scale(self) -> float:
        """The text guidance scale packaged with the weights (`sampling.cfg_scale`); sampling uses it by default."""
        return float(self.cfg.sampling.cfg_scale)

    def plucker_bases(self, num_frames: int) -> list[int]:
        """The origin latent frame of each latent frame's Plücker rays for a `num_frames` video (the model config's
        `plucker_rebase_chunks` over its chunk plan)."""
        m = self.cfg.model
        return rebase_frames(num_latent_frames(num_frames, self.stride), m.chunk_first, m.chunk_size,
                             m.plucker_rebase_chunks)

    @property
    def refiner_by_default(self) -> bool:
        """True when the weights have a refiner whose config turns it on by default (packaging sets this from the
        refiner A/B)."""
        return self.has_refiner and load_config(self.path / "refiner" / "config.json").refiner.on_by_default

    def vae(self) -> CausalVideoVAE:
        """The VAE on the model's device, loaded from disk (or moved back from the CPU) if it was offloaded."""
        if self._vae is None:
            self._vae, _ = load_vae_dir(self.path / "vae")
        self._vae.to(self.device)
        self._vae_home = "device"
        return self._vae

    def offload_vae(self) -> str:
        """Free the VAE's device memory until `vae()` is next called. On a GPU the module moves to the CPU; on the
        CPU there is nowhere cheaper to keep it, so the module is dropped and later reloaded from disk. Returns
        what happened ("cpu" or "freed")."""
        if self._vae is None:
            return "freed"
        if self.device.type != "cpu":
            self._vae.to("cpu")
            torch.cuda.empty_cache()
            self._vae_home = "cpu"
            return "cpu"
        self._vae = None
        gc.collect()
        self._vae_home = "disk"
        return "freed"

    def refiner(self) -> WorldDiT:
        """The stage-2 refiner, loaded on first use."""
        if not self.has_refiner:
            raise UserError(f"weights folder {self.path} has no refiner/ (use --no_refiner)")
        if self._refiner is None:
            folder = self.path / "refiner"
            if (folder / LORA_FILE).is_file():
                self._refiner = load_refiner_lora(folder, self.dit, self.cfg).to(self.device)
                return self._refiner
            refiner, cfg = load_dit_dir(folder)
            mine = self.cfg.model
            if (cfg.model.in_channels, cfg.model.text_dim) != (mine.in_channels, mine.text_dim):
                raise UserError(f"{folder}: latent channels / text width {cfg.model.in_channels} / "
                                f"{cfg.model.text_dim} differ from the DiT's {mine.in_channels} / {mine.text_dim}")
            self._refiner = refiner.to(self.device)
        return self._refiner

    @property
    def has_student(self) -> bool:
        return (self.path / "student").is_dir()

    @property
    def student_by_default(self) -> bool:
        """True when the weights have a student whose config turns it on by default (packaging sets this)."""
        return self.has_student and load_config(self.path / "student" / "config.json").distill.on_by_default

    def student(self) -> tuple[WorldDiT, RunConfig]:
        """(the distilled few-step student, its RunConfig), loaded on first use."""
        if not self.has_student:
            raise UserError(f"weights folder {self.path} has no student/ (make one with `camworld train --distill` "
                            "and scripts/package_student.py)")
        if self._student is None:
            model, cfg = load_student_lora(self.path / "student", self.dit, self.cfg)
            self._student = (model.to(self.device), cfg)
        return self._student

    def release_refiner(self) -> None:
        """Drop the refiner (it is reloaded from disk if needed again)."""
        self._refiner = None
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def prepare_image(self, image: np.ndarray) -> np.ndarray:
        """uint8 [H, W, 3] of any size -> uint8 [h, w, 3] at the model resolution (resize to cover, centre crop)."""
        return resize_crop_image(image, self.image_hw)

    @torch.no_grad()
    def encode_image(self, image: np.ndarray) -> torch.Tensor:
        """A model-resolution uint8 image [H, W, 3] -> its latent [1, 1, h, w, C] (the clean latent 0)."""
        frames = torch.as_tensor(np.array(image, dtype=np.uint8), device=self.device)[None, None]
        return self.vae().encode(frames)

    def stage1_schedule(self, mode: str, *, steps: int | None = None, flow_shift: float | None = None,
                        cfg_scale: float | None = None, sigmas: Sequence[float] | None = None,
                        interval_k: float | None = None, student: bool = False) -> Stage1Schedule:
        """What stage 1 samples with, from `generate`'s arguments of the same names (None: the defaults described
        there, the ar schedule packaged with the weights when ar mode names none); the student is loaded if asked
        for. Raises a UserError on values out of range."""
        notes: dict[str, str] = {}
        if (mode == "ar" and not student and self.packaged_ar_schedule is not None
                and all(v is None for v in (steps, flow_shift, sigmas, interval_k))):
            sigmas, interval_k = self.packaged_ar_schedule
            notes["schedule"] = "packaged with the weights (sampling.ar_sigmas, sampling.ar_interval_k)"
        if steps is None:
            steps = 60
        if interval_k is not None and mode != "ar":
            raise UserError("interval_k staggers chunks: it needs mode 'ar'")
        if interval_k is not None and interval_k < 0:
            raise UserError(f"interval_k must be >= 0, got {interval_k}")
        if sigmas is not None:
            sigmas = check_sigmas(sigmas)
        if flow_shift is None:
            flow_shift = self.default_flow_shift
        if cfg_scale is None:
            cfg_scale = self.default_cfg_scale
        if steps < 1 or cfg_scale <= 0 or flow_shift <= 0:
            raise UserError(f"need steps >= 1, cfg_scale > 0 and flow_shift > 0, got {steps}, {cfg_scale}, "
                            f"{flow_shift}")
        stage1 = self.dit
        if sigmas is None:
            stage1_sigmas = shifted_sigmas(steps, flow_shift).tolist()
        else:
            stage1_sigmas = sigmas
            notes["sigmas"] = f"{len(sigmas) - 1} steps at σ {sigmas} (steps and flow_shift unused)"
        if interval_k is not None:
            notes["interval_k"] = f"chunk c starts at global step ⌊c · {interval_k} · steps⌋"
        if student:
            stage1, student_cfg = self.student()
            stage1_sigmas, interval_k, cfg_scale = check_sigmas(student_cfg.distill.sigmas), 1.0, 1.0
            notes["student"] = f"{len(stage1_sigmas) - 1} steps per chunk at σ {list(student_cfg.distill.sigmas)}"
        return Stage1Schedule(stage1, stage1_sigmas, float(cfg_scale), interval_k, notes)

    @torch.no_grad()
    def generate(
        self,
        image: np.ndarray | None,
        prompt: str,
        c2w: np.ndarray,
        K: np.ndarray,
        *,
        num_frames: int | None = None,
        steps: int | None = None,
        cfg_scale: float | None = None,
        flow_shift: float | None = None,
        seed: int = 42,
        refiner_seed: int = 42,
        mode: str = "bidirectional",
        refiner: bool | None = None,
        student: bool | None = None,
        sigmas: Sequence[float] | None = None,
        interval_k: float | None = None,
        segment_frames: int | None = None,
        segment_color_match: bool | None = None,
        segment_refine_handoff: bool = False,
        stream: bool = False,
        offload_vae: bool = False,
        offload_refiner: bool = False,
        on_frames: FramesCallback | None = None,
        on_chunk: Callable[[int, torch.Tensor], None] | None = None,
        progress: bool = True,
    ) -> GenerationResult:
        """Image-to-video along a camera trajectory.

        - image: uint8 [H, W, 3] of any size (resized + centre-cropped to the model resolution), or None to let the
          model draw frame 0 too. prompt: scene text ("" = none); CFG runs against the empty prompt.
        - c2w (N, 4, 4) camera-to-world (OpenCV, made relative to pose 0); K (N, 3, 3) in pixels of `image` (of the
          model resolution when image is None). num_frames: None = the whole trajectory; snapped to the nearest
          stride·k + 1 that fits.
        - steps / cfg_scale / flow_shift / seed: the stage-1 sampler (SANA-WM: 60 / 5.0 / 9.8 / 42). flow_shift None
          takes the shift the DiT was trained with (dit/config.json `train.shift`: 4.0 for tiny, whose 9×16 latent
          grid needs less shift than SANA-WM's 22×40; SANA-WM samples with the shift it trained with too).
          cfg_scale None takes the scale packaged with the weights (`sampling.cfg_scale`; 1.0, unguided, for the
          bundled tiny weights).
          refiner_seed: the refiner's re-noising (SANA-WM `--refiner_seed` 42). mode: "bidirectional" | "ar".
        - student: sample with the distilled student instead (ar mode only): its own σ list (4 Euler steps per chunk,
          chunk by chunk, §6.5), no text guidance (baked in); steps and flow_shift are then not used. None follows
          the weights in ar mode (`student_by_default`) and uses the DiT in bidirectional mode.
        - sigmas: the DiT's σ list itself (strictly decreasing from at most 1 to 0), instead of `steps` Euler steps
          at `flow_shift`. interval_k (ar only): chunk c starts denoising at global step ⌊c · interval_k · steps⌋
          (None: SANA-WM's 1/#chunks; 1: chunk by chunk). Neither applies to the student, which has its own.
          When ar mode is asked for with none of steps, flow_shift, sigmas and interval_k, the schedule packaged with
          the weights is used (`sampling.ar_sigmas` / `ar_interval_k`, if set); steps None otherwise means 60.
        - segment_frames: make a longer video as a chain of segments of at most this many frames, each started
          from the last frame of the one before (`camworld.pipeline_segments`, our addition; 0: one pass, as
          SANA-WM). None takes `sampling.ar_segment_frames` of the weights in ar mode, 0 otherwise.
          segment_color_match: match each handed-over frame's colours to the first frame's (None: the weights'
          `sampling.segment_color_match`). segment_refine_handoff: hand each segment the refiner's last frame of the
          one before while the output stays stage 1's (needs a refiner; no effect with the refiner on).
        - refiner: run the stage-2 refiner (the output then starts at pose 1, §5); None follows the weights
          (`refiner_by_default`: a refiner is present and its config says it is on by default).
        - stream (ar only): decode each chunk as soon as it is final, while later chunks are being generated; with
          the refiner, stage 1 runs to its end first and the chunk-causal refiner's blocks are decoded as they
          finish.
        - offload_vae / offload_refiner: free those models while not needed (see `offload_vae` for the CPU case).
        - on_frames(frames uint8 [n, H, W, 3], pose index of frames[0]) receives the output in order, instead of
          `GenerationResult.frames`; on_chunk(c, latents [1, n, h, w, C]) each final stage-1 chunk in ar mode.
        """
        if mode not in MODES:
            raise UserError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        if stream and mode != "ar":
            raise UserError("streaming needs mode 'ar' (the bidirectional sampler finishes every frame at once)")
        if student is None:
            student = mode == "ar" and self.student_by_default
        if student and mode != "ar":
            raise UserError("the distilled student samples chunk by chunk: use mode 'ar'")
        if student and cfg_scale not in (None, 1.0):
            raise UserError(f"the distilled student has its guidance baked in: cfg_scale must be 1, got {cfg_scale}")
        if student and (sigmas is not None or interval_k is not None):
            raise UserError("the distilled student samples with its own σ list and chunk by chunk: "
                            "drop sigmas / interval_k")
        if segment_frames is None:
            segment_frames = self.default_segment_frames(mode)
        check_segment_frames(segment_frames, self.stride)
        c2w, K = check_trajectory(c2w, K)
        frames = snap_num_frames(num_frames, min(len(c2w), len(K)), self.stride)
        if segment_frames and frames > segment_frames:
            return generate_in_segments(
                self, image, prompt, c2w, K, num_frames=frames, segment_frames=segment_frames, seed=seed,
                color_match=(self.cfg.sampling.segment_color_match if segment_color_match is None
                             else segment_color_match),
                refine_handoff=segment_refine_handoff, on_frames=on_frames, on_chunk=on_chunk, progress=progress,
                steps=steps, cfg_scale=cfg_scale,
                flow_shift=flow_shift, refiner_seed=refiner_seed, mode=mode, refiner=refiner, student=student,
                sigmas=sigmas, interval_k=interval_k, stream=stream, offload_vae=offload_vae,
                offload_refiner=offload_refiner)
        use_refiner = self.refiner_by_default if refiner is None else refiner and self.has_refiner
        timings: dict[str, float] = {}
        clock = time.perf_counter()
        total_start = clock

        decoded_in_lap = [0.0]  # streaming decode time inside the current phase, booked as "decode" instead

        def lap(name: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            timings[name] = timings.get(name, 0.0) + now - clock - decoded_in_lap[0]
            decoded_in_lap[0] = 0.0
            clock = now

        if image is not None:
            image = np.asarray(image)
            first = self.prepare_image(image)
            source_hw = image.shape[:2]
        else:
            first, source_hw = None, self.image_hw
        cams = prepare_cameras(c2w, K, source_hw, self.image_hw, self.grid_hw, self.stride, frames,
                               self.plucker_bases(frames))
        camera = cams.inputs.to(self.device)
        lap("prepare")

        schedule = self.stage1_schedule(mode, steps=steps, flow_shift=flow_shift, cfg_scale=cfg_scale,
                                        sigmas=sigmas, interval_k=interval_k, student=student)
        stage1, stage1_sigmas, cfg_scale, interval_k = (schedule.model, schedule.sigmas, schedule.cfg_scale,
                                                        schedule.interval_k)
        notes = dict(schedule.notes)
        if student:
            lap("load_student")

        text, text_mask = self.text_encoder().encode([prompt])
        null_text, null_mask = self.text_encoder().null_embedding()
        text, text_mask = text.to(self.device), text_mask.to(self.device)
        guided = ClassifierFreeGuidance(stage1, null_text[0].to(self.device), null_mask[0].to(self.device),
                                        cfg_scale)
        lap("text")

        first_latent = self.encode_image(first) if first is not None else None
        if offload_vae:
            notes["vae_offload"] = self.offload_vae()
        lap("encode")

        latent_frames = (frames - 1) // self.stride + 1
        h, w = self.grid_hw
        generator = torch.Generator().manual_seed(int(seed))
        noise = torch.randn(1, latent_frames, h, w, self.cfg.model.in_channels, generator=generator)
        noise = noise.to(self.device)
        drop = 1 if use_refiner else 0
        output = _FrameSink(on_frames, drop)
        decoder = None

        def decode_chunk(index: int, chunk: torch.Tensor) -> None:
            """Streaming decode of the next final chunk (its time is booked as decode, not as sampling)."""
            nonlocal decoder
            begin = time.perf_counter()
            decoder = decoder or self.vae().stream_decoder()
            output.add(to_uint8(decoder.step(chunk))[0].cpu().numpy())
            spent = time.perf_counter() - begin
            timings["decode"] = timings.get("decode", 0.0) + spent
            decoded_in_lap[0] += spent

        def stage1_chunk(index: int, chunk: torch.Tensor) -> None:
            if on_chunk is not None:
                on_chunk(index, chunk)
            if stream and not use_refiner:
                decode_chunk(index, chunk)

        if mode == "bidirectional":
            latents = sample_bidirectional(guided, noise, text, text_mask, camera, sigmas=stage1_sigmas,
                                           first_frame=first_latent, progress=progress)
        else:
            latents = sample_autoregressive(guided, noise, text, text_mask, camera, sigmas=stage1_sigmas,
                                            chunk_first=self.cfg.model.chunk_first,
                                            chunk_size=self.cfg.model.chunk_size, interval_k=interval_k,
                                            first_frame=first_latent,
                                            on_chunk=stage1_chunk, progress=progress)
        lap("sample")

        if use_refiner:
            # Streaming uses SANA-WM's chunk-causal refiner, whose blocks are decoded as they finish; the
            # bidirectional one needs every frame first. No CFG: the refiner is a few-step distilled model (§5).
            latents = refine_latents(self.refiner(), latents, text, text_mask, camera, seed=refiner_seed,
                                     mode="chunk_causal" if stream else "bidirectional",
                                     on_chunk=decode_chunk if stream else None, progress=progress)
            if offload_refiner:
                self.release_refiner()
            lap("refine")

        if not stream:
            self._decode(latents, output, progress)
            lap("decode")
        if offload_vae:
            self.offload_vae()
        timings["total"] = time.perf_counter() - total_start
        return GenerationResult(
            frames=output.collected(), c2w=cams.c2w[drop:], K=cams.K[drop:],
            first_frame=first if first is not None else output.first_frame, latents=latents.cpu(),
            num_frames=frames, refined=use_refiner, timings=timings, notes=notes,
        )

    @torch.no_grad()
    def refine(
        self,
        result: GenerationResult,
        prompt: str,
        c2w: np.ndarray,
        K: np.ndarray,
        *,
        source_hw: tuple[int, int] | None = None,
        refiner_seed: int = 42,
        progress: bool = True,
    ) -> GenerationResult:
        """Run the bidirectional refiner on the stage-1 latents of `result` (a `generate(..., refiner=False)` of the
        same prompt, poses and intrinsics; source_hw: the H, W of the image given to it, None = model resolution)
        and decode: the same frames as `generate(..., refiner=True)` without re-running stage 1. The output drops
        frame 0 and starts at pose 1, as there. A result made in segments is refined segment by segment
        (`refine_in_segments`; c2w and K are then taken from the segments)."""
        if result.refined:
            raise UserError("this result is already refined")
        if result.segments:
            return refine_in_segments(self, result, prompt, refiner_seed=refiner_seed, progress=progress)
        timings: dict[str, float] = {}
        clock = time.perf_counter()
        cams = prepare_cameras(c2w, K, source_hw or self.image_hw, self.image_hw, self.grid_hw, self.stride,
                               result.num_frames, self.plucker_bases(result.num_frames))
        camera = cams.inputs.to(self.device)
        text, text_mask = self.text_encoder().encode([prompt])
        latents = refine_latents(self.refiner(), result.latents.to(self.device), text.to(self.device),
                                 text_mask.to(self.device), camera, seed=refiner_seed, mode="bidirectional",
                                 progress=progress)
        timings["refine"] = time.perf_counter() - clock
        output = _FrameSink(None, 1)
        self._decode(latents, output, progress)
        timings["decode"] = time.perf_counter() - clock - timings["refine"]
        return GenerationResult(frames=output.collected(), c2w=cams.c2w[1:], K=cams.K[1:],
                                first_frame=result.first_frame, latents=latents.cpu(), num_frames=result.num_frames,
                                refined=True, timings=timings)

    def _decode(self, latents: torch.Tensor, output: _FrameSink, progress: bool) -> None:
        """Chunk-by-chunk decode (`tokenizer.chunk_latents` latents per pass) into `output`."""
        vae = self.vae()
        decoder = vae.stream_decoder()
        step = max(1, vae.cfg.chunk_latents)
        for k0 in tqdm(range(0, latents.shape[1], step), desc="decode", disable=not progress):
            output.add(to_uint8(decoder.step(latents[:, k0 : k0 + step]))[0].cpu().numpy())


class _FrameSink:
    """Receives decoded frames in order, drops the first `drop` of them, and passes them to `callback` (with the
    pose index of each batch's first frame) or keeps them."""

    def __init__(self, callback: FramesCallback | None, drop: int):
        self.callback = callback
        self.drop = drop
        self.seen = 0
        self.kept: list[np.ndarray] = []
        self.first_frame: np.ndarray | None = None

    def add(self, frames: np.ndarray) -> None:
        if self.first_frame is None and len(frames):
            self.first_frame = frames[0].copy()
        skip = max(0, self.drop - self.seen)
        index = self.seen + skip
        self.seen += len(frames)
        frames = frames[skip:]
        if not len(frames):
            return
        if self.callback is not None:
            self.callback(frames, index)
        else:
            self.kept.append(frames)

    def collected(self) -> np.ndarray | None:
        return np.concatenate(self.kept) if self.kept else None
