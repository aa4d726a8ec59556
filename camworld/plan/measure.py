"""Measured peak memory of one generation run, phase by phase, on the CPU or a CUDA device: the ground truth
`camworld.plan.memory` is calibrated against (benchmarks/plan_calibration.py), tested with (tests/test_plan.py) and
checked on a GPU with (benchmarks/plan_gpu.py).

Run it in a fresh process, `python3 -m camworld.plan.measure --preset tiny --num_frames 17 --dtype bf16 --mode ar`,
which prints one JSON object. Memory is the process's resident set (Linux /proc/self/status): the peak (VmHWM) is
reset before every phase through /proc/self/clear_refs, and every number is relative to the resident set after the
imports and a warm-up (a matmul, a conv and, when the text phase runs, one throwaway text-encoder load: the
baseline). Freed heap is handed back with glibc's malloc_trim between phases, so a
phase starts from what is really live. With `--device cuda` memory is the caching allocator's allocated bytes
(`torch.cuda.memory_allocated`, its peak reset before every phase): what the planner predicts for a GPU, with the
allocator's cached-but-free blocks and the CUDA context left out as the plan says. Models are then built on the
device in fp32 and cast there, and decoded frames leave for the host; the text phase needs the bundled encoder
and is CPU-only here.

The run mirrors a sampler with the work cut to what sets the peak: the text encoder encodes the prompt and the
empty prompt, then is freed; stage-1 runs `steps` denoising passes on a CFG-doubled batch (bidirectional: whole
clip per pass; ar: `WorldDiT.step` chunk by chunk, each chunk followed by its σ = 0 KV-save pass); the refiner, a
second `WorldDiT` of the same config, runs on [clean sink latent; clip] with batch 1 (no CFG, as SANA-WM's
distilled refiner, sana_wm.md §5) in the same mode; the VAE decodes chunk by chunk, each chunk leaving as uint8
frames. A model is built before its phase's peak is reset: weights are built in fp32 and cast, a transient that a
checkpoint loaded in its own dtype would not have. An offloaded model exists only during its own phase, which is
what offloading means for the device's memory.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import sys
import time
from dataclasses import asdict, dataclass

import torch

from camworld.config import RunConfig
from camworld.errors import UserError
from camworld.models.dit import CameraInputs, WorldDiT
from camworld.ops.chunks import chunk_bounds
from camworld.presets import get_preset
from camworld.tokenizer.vae import CausalVideoVAE, to_uint8

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
MODES = ("bidirectional", "ar")
GUIDANCE = 4.0


@dataclass(frozen=True)
class MeasureSpec:
    """One measured run. `phases` picks which of text, denoise, refine, decode run (in that order)."""

    preset: str = "tiny"
    num_frames: int = 17
    dtype: str = "fp32"
    mode: str = "bidirectional"
    steps: int = 1
    offload_vae: bool = False
    offload_refiner: bool = False
    no_refiner: bool = False
    phases: tuple[str, ...] = ("text", "denoise", "refine", "decode")
    threads: int = 1
    device: str = "cpu"
    student: bool = False  # denoise with a second resident DiT (the distilled student), one branch


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def rss_bytes() -> int:
    return _status_kib("VmRSS") * 1024


def peak_rss_bytes() -> int:
    return _status_kib("VmHWM") * 1024


def reset_peak() -> None:
    """Make the current resident set the new peak (Linux >= 4.0: writing 5 to clear_refs resets VmHWM)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def release_freed() -> None:
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)


def build(module_class, cfg, dtype: torch.dtype, device: str = "cpu") -> torch.nn.Module:
    torch.manual_seed(0)
    with torch.device(device):
        model = module_class(cfg).to(dtype).eval().requires_grad_(False)
    release_freed()
    return model


class CudaMemory:
    """The allocator's live and peak bytes on the current CUDA device, with the same calls as the CPU's VmRSS."""

    @staticmethod
    def current() -> int:
        torch.cuda.synchronize()
        return torch.cuda.memory_allocated()

    @staticmethod
    def peak() -> int:
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated()

    @staticmethod
    def reset() -> None:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


class HostMemory:
    """The process's resident set (VmRSS) and its peak (VmHWM)."""

    current = staticmethod(rss_bytes)
    peak = staticmethod(peak_rss_bytes)
    reset = staticmethod(reset_peak)


def _cameras(cfg: RunConfig, batch: int, frames: int, h: int, w: int, dtype: torch.dtype, device: str) -> CameraInputs:
    c2w = torch.eye(4).repeat(batch, frames, 1, 1)
    c2w[..., 2, 3] = torch.linspace(0.0, 1.0, frames)
    K = torch.tensor([[0.9 * w, 0.0, (w - 1) / 2], [0.0, 0.9 * w, (h - 1) / 2], [0.0, 0.0, 1.0]])
    plucker = torch.randn(batch, frames, h, w, 6 * cfg.model.temporal_stride).to(dtype)
    return CameraInputs(c2w, K.repeat(batch, frames, 1, 1), plucker).to(device)


def _latent_shape(cfg: RunConfig, num_frames: int) -> tuple[int, int, int]:
    st, s = cfg.tokenizer.temporal_stride, cfg.tokenizer.spatial_stride
    if num_frames < 1 or (num_frames - 1) % st:
        raise UserError(f"num_frames must be {st}*k + 1 for the {cfg.preset} preset, got {num_frames}")
    return (num_frames - 1) // st + 1, cfg.tokenizer.height // s, cfg.tokenizer.width // s


def _text(cfg: RunConfig, batch: int, dtype: torch.dtype, device: str, encoded=None):
    if encoded is not None:
        features, mask = encoded
    else:
        features = torch.randn(batch, cfg.text.max_tokens, cfg.model.text_dim)
        mask = torch.ones(batch, cfg.text.max_tokens, dtype=torch.bool)
    return features.to(device, dtype), mask.to(device)


@torch.no_grad()
def run_bidirectional(model: WorldDiT, x: torch.Tensor, text, mask, camera: CameraInputs, steps: int, cfg_batch: bool):
    """Euler steps of the whole clip x [1, T, h, w, C]; with `cfg_batch` the batch is [cond; uncond]."""
    for i in range(steps):
        sigma = torch.full((x.shape[0], x.shape[1]), 1.0 - i / max(steps, 1), device=x.device)
        xin = torch.cat([x, x]) if cfg_batch else x
        v = model(xin, torch.cat([sigma, sigma]) if cfg_batch else sigma, text, mask, camera)
        if cfg_batch:
            cond, uncond = v.chunk(2)
            v = uncond + GUIDANCE * (cond - uncond)
        x = x - v / steps
    return x


@torch.no_grad()
def run_streaming(model: WorldDiT, x: torch.Tensor, text, mask, camera: CameraInputs, steps: int, cfg_batch: bool):
    """Chunk by chunk: `steps` Euler passes, then the σ = 0 KV-save pass that advances the state."""
    batch = 2 if cfg_batch else 1
    state = model.init_state(batch)
    out = []
    for start, end in chunk_bounds(x.shape[1], model.cfg.chunk_first, model.cfg.chunk_size):
        chunk, cam = x[:, start:end], camera.frames(start, end)
        for i in range(steps):
            sigma = torch.full((batch, end - start), 1.0 - i / max(steps, 1), device=x.device)
            v, _ = model.step(torch.cat([chunk] * batch), sigma, text, mask, cam, state)
            if cfg_batch:
                cond, uncond = v.chunk(2)
                v = uncond + GUIDANCE * (cond - uncond)
            chunk = chunk - v / steps
        sigma = torch.zeros(batch, end - start, device=x.device)
        _, state = model.step(torch.cat([chunk] * batch), sigma, text, mask, cam, state)
        out.append(chunk)
    return torch.cat(out, dim=1)


@torch.no_grad()
def decode_to_uint8(vae: CausalVideoVAE, z: torch.Tensor) -> list[torch.Tensor]:
    """Chunked streaming decode; every chunk leaves as uint8 frames [1, n, H, W, 3] on the host (what a writer
    would keep)."""
    stream = vae.stream_decoder()
    step = vae.cfg.chunk_latents
    return [to_uint8(stream.step(z[:, k : k + step])).cpu() for k in range(0, z.shape[1], step)]


def _encode_text(cfg: RunConfig):
    from camworld.text.encoder import TextEncoder

    encoder = TextEncoder(cfg.text)
    # weights may be file-backed and paged in lazily; reading them all is what moving them to a GPU would do
    sum(float(p.float().sum()) for p in encoder.model.parameters())
    encoded = encoder.encode(["a stone bridge over a river at dawn", ""])
    del encoder
    return encoded


def measure(spec: MeasureSpec) -> dict:
    """Run `spec` in this process and return the baseline and, per phase, `resident` (live bytes when the phase
    starts), `peak` (its peak), both above the baseline, and `seconds` (its wall time), plus `weights` (bytes each
    built model added)."""
    if spec.dtype not in DTYPES or spec.mode not in MODES or spec.device not in ("cpu", "cuda"):
        raise UserError(f"dtype must be one of {list(DTYPES)}, mode one of {list(MODES)} and device cpu or cuda")
    cuda = spec.device == "cuda"
    if cuda and "text" in spec.phases:
        raise UserError("the text phase is measured on the CPU only: leave it out of --phases with --device cuda")
    if cuda and not torch.cuda.is_available():
        raise UserError("--device cuda but torch sees no CUDA device")
    memory = CudaMemory if cuda else HostMemory
    torch.set_num_threads(spec.threads)
    cfg = get_preset(spec.preset)
    dtype = DTYPES[spec.dtype]
    t, h, w = _latent_shape(cfg, spec.num_frames)
    if "text" in spec.phases:
        _encode_text(cfg)  # a first load imports what the encoder needs: imports are not the encoder's memory
    torch.randn(64, 64, device=spec.device) @ torch.randn(64, 64, device=spec.device)
    torch.nn.functional.conv2d(torch.randn(1, 4, 8, 8, device=spec.device), torch.randn(4, 4, 3, 3, device=spec.device))
    release_freed()
    baseline = memory.current()
    result = {"spec": asdict(spec), "baseline": baseline, "phases": {}, "weights": {}}

    def phase(name, fn):
        release_freed()
        resident = memory.current() - baseline
        memory.reset()
        tic = time.perf_counter()
        out = fn()
        peak = memory.peak() - baseline  # synchronises the device first, so the time below is the phase's
        result["phases"][name] = {"resident": resident, "peak": peak, "seconds": time.perf_counter() - tic}
        return out

    def load(name, module_class, module_cfg):
        before = memory.current()
        model = build(module_class, module_cfg, dtype, spec.device)
        result["weights"][name] = memory.current() - before
        return model

    refine = "refine" in spec.phases and not spec.no_refiner
    encoded = phase("text", lambda: _encode_text(cfg)) if "text" in spec.phases else None
    text, mask = _text(cfg, 2, dtype, spec.device, encoded)
    dit = load("dit", WorldDiT, cfg.model)
    vae = None if spec.offload_vae else load("vae", CausalVideoVAE, cfg.tokenizer)
    refiner = load("refiner", WorldDiT, cfg.model) if refine and not spec.offload_refiner else None
    student = load("student", WorldDiT, cfg.model) if spec.student else None
    run = run_bidirectional if spec.mode == "bidirectional" else run_streaming
    z = torch.randn(1, t, h, w, cfg.model.in_channels).to(spec.device, dtype)
    if "denoise" in spec.phases:
        branches = 1 if student is not None else 2
        camera = _cameras(cfg, branches, t, h, w, dtype, spec.device)
        stage1 = student if student is not None else dit
        z = phase("denoise", lambda: run(stage1, z, text[:branches], mask[:branches], camera, spec.steps,
                                         branches == 2))
        del camera
    if refine:
        refiner = refiner if refiner is not None else load("refiner", WorldDiT, cfg.model)
        camera = _cameras(cfg, 1, t + 1, h, w, dtype, spec.device)
        clip = torch.cat([z[:, :1], z], dim=1)
        z = phase("refine", lambda: run(refiner, clip, text[:1], mask[:1], camera, spec.steps, False))[:, 1:]
        del camera, clip
        if spec.offload_refiner:
            refiner = None
    if "decode" in spec.phases:
        vae = vae if vae is not None else load("vae", CausalVideoVAE, cfg.tokenizer)
        frames = phase("decode", lambda: decode_to_uint8(vae, z))
        result["frames_bytes"] = sum(f.numel() for f in frames)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--num_frames", type=int, default=17)
    parser.add_argument("--dtype", choices=list(DTYPES), default="fp32")
    parser.add_argument("--mode", choices=MODES, default="bidirectional")
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--offload_vae", action="store_true")
    parser.add_argument("--offload_refiner", action="store_true")
    parser.add_argument("--no_refiner", action="store_true")
    parser.add_argument("--phases", default="text,denoise,refine,decode")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--student", action="store_true")
    args = parser.parse_args(argv)
    spec = MeasureSpec(
        args.preset, args.num_frames, args.dtype, args.mode, args.steps, args.offload_vae, args.offload_refiner,
        args.no_refiner, tuple(p for p in args.phases.split(",") if p), args.threads, args.device, args.student,
    )
    try:
        print(json.dumps(measure(spec)))
    except UserError as exc:
        print(f"camworld.plan.measure: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
