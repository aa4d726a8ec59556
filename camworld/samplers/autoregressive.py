"""The chunk-autoregressive sampler with SANA-WM's pyramid ("diffusion forcing") schedule (sana_wm.md §6.4, §6.5).

Frames are split into chunks (`camworld.ops.chunks.chunk_bounds`: 4 latent frames, then 3). Every chunk runs the
same σ list, but chunk c starts at global step ⌊c · interval_k · steps⌋ (`ChunkFlowEuler`; default interval_k =
1/#chunks), so at any global step a few consecutive chunks are active at staggered noise levels, each later chunk
noisier than the one before, and each conditioned on the current (partly denoised) state of the earlier ones.
interval_k = 1 degenerates to plain chunk-by-chunk generation, interval_k = 0 to all chunks in lockstep.

SANA-WM feeds, at every global step, the whole prefix up to the last active chunk through the chunk-causal forward,
finished chunks at σ = 0 (`sample_autoregressive_reference` does exactly that). `sample_autoregressive` computes the
same with the streaming API: when a chunk finishes, one σ = 0 "save" pass commits it into the stream state
(§6.5: GDN states, conv tails, softmax KV), and each global step chains `model.step` over the active chunks only,
starting from the committed state. Under chunk causality the finished chunks' contribution is the same on every
step, so the two agree (tests/samplers lock them together on the real WorldDiT) while the streaming form costs one
chunk per active chunk instead of the whole prefix, and its softmax layers see the sink + window KV cache (the
reference matches it with `windowed=True`).

A leading chunk made only of held-clean frames (the refiner's sink, chunk plan [0], [1..]) is committed before any
denoising and takes no place in the pyramid. The last chunk gets no save pass: nothing reads its state.

The distilled student (§6.5) is this sampler with `sigmas=DISTILLED_SIGMAS`, `interval_k=1` and guidance scale 1:
4 Euler steps per chunk, then the save pass. `camworld.samplers.self_forcing` is its training-time form (the same
rollout with a gradient through one step per chunk), and `camworld.train.distill` trains the student with it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from camworld.config import DistillConfig
from camworld.errors import UserError
from camworld.ops.chunks import chunk_bounds
from camworld.samplers.euler import check_sigmas, euler_frames, frame_sigma, frozen_frames, start_latents
from camworld.samplers.model_api import StreamingModel, VelocityModel

# SANA-WM's streaming student: `denoising_step_list` [1000, 960, 889, 727, 0] / 1000, used without a shift
DISTILLED_SIGMAS = DistillConfig().sigmas

ChunkCallback = Callable[[int, torch.Tensor], None]


def pyramid_starts(num_chunks: int, steps: int, interval_k: float | None = None) -> list[int]:
    """The global step at which each chunk starts denoising: ⌊c · interval_k · steps⌋, interval_k = 1/#chunks if
    None (then computed in integers, so 1/3 · 60 is exactly 20)."""
    if interval_k is None:
        return [c * steps // max(num_chunks, 1) for c in range(num_chunks)]
    if interval_k < 0:
        raise UserError(f"interval_k must be >= 0, got {interval_k}")
    # the epsilon keeps products such as 0.1 · 3 · 10 = 2.9999999999999996 on the intended integer
    return [math.floor(c * interval_k * steps + 1e-9) for c in range(num_chunks)]


@dataclass(frozen=True)
class PyramidSchedule:
    """starts[c]: the global step at which chunk c starts, None for a leading chunk that is already clean."""

    starts: tuple[int | None, ...]
    steps: int

    @property
    def total_steps(self) -> int:
        return max((s + self.steps for s in self.starts if s is not None), default=0)

    def local_step(self, chunk: int, step: int) -> int | None:
        """Chunk `chunk`'s own step index at global step `step`, None when it is not being denoised then."""
        start = self.starts[chunk]
        if start is None or not start <= step < start + self.steps:
            return None
        return step - start

    def finishes(self, chunk: int, step: int) -> bool:
        """True if global step `step` is the chunk's last Euler step."""
        return self.local_step(chunk, step) == self.steps - 1


def pyramid_schedule(
    chunks: list[tuple[int, int]], hold: torch.Tensor, steps: int, interval_k: float | None
) -> PyramidSchedule:
    """The schedule of `chunks` when the frames where hold [T] is True are already clean."""
    clean = 1 if bool(hold[chunks[0][0] : chunks[0][1]].all()) else 0
    starts = pyramid_starts(len(chunks) - clean, steps, interval_k)
    return PyramidSchedule((None,) * clean + tuple(starts), steps)


def _frames(camera: Any, start: int, end: int) -> Any:
    return None if camera is None else camera.frames(start, end)


@torch.no_grad()
def sample_autoregressive(
    model: StreamingModel,
    latents: torch.Tensor,
    text: torch.Tensor,
    text_mask: torch.Tensor,
    camera: Any = None,
    *,
    sigmas: Sequence[float] | torch.Tensor,
    chunk_first: int,
    chunk_size: int,
    interval_k: float | None = None,
    first_frame: torch.Tensor | None = None,
    on_chunk: ChunkCallback | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Generate chunk by chunk with the pyramid schedule and return the clean latents [B, T, h, w, C].

    latents [B, T, h, w, C]: the start at σ = sigmas[0] (noise). text [B, L, D], text_mask [B, L] bool, camera: the
    model's camera inputs for all T frames (cut per chunk with `camera.frames`) or None. chunk_first / chunk_size:
    the model's chunk plan. first_frame [B, 1, h, w, C]: the encoded input image, held bit-identical as frame 0.
    on_chunk(index, latents [B, n, h, w, C]) is called with each chunk as soon as it is final, in order (for
    streaming decode).
    """
    sigma_list = check_sigmas(sigmas)
    x = start_latents(latents, first_frame)
    batch, frames = x.shape[:2]
    hold = frozen_frames(frames, first_frame is not None, x.device)
    chunks = chunk_bounds(frames, chunk_first, chunk_size)
    schedule = pyramid_schedule(chunks, hold, len(sigma_list) - 1, interval_k)
    parts = [x[:, s:e] for s, e in chunks]

    def commit(c: int, state):
        """The σ = 0 save pass of finished chunk c, then hand the chunk to the caller."""
        s, e = chunks[c]
        if c < len(chunks) - 1:
            zeros = torch.zeros(batch, e - s, device=x.device)
            _, state = model.step(parts[c], zeros, text, text_mask, _frames(camera, s, e), state)
        if on_chunk is not None:
            on_chunk(c, parts[c])
        return state

    state = model.init_state(batch)
    done = 0
    while done < len(chunks) and schedule.starts[done] is None:
        state = commit(done, state)
        done += 1
    for step in tqdm(range(schedule.total_steps), desc="denoise", disable=not progress):
        running = state
        for c in range(done, len(chunks)):
            k = schedule.local_step(c, step)
            if k is None:
                break
            s, e = chunks[c]
            sigma = frame_sigma(sigma_list[k], batch, hold[s:e])
            sigma_next = frame_sigma(sigma_list[k + 1], batch, hold[s:e])
            v, running = model.step(parts[c], sigma, text, text_mask, _frames(camera, s, e), running)
            parts[c] = euler_frames(parts[c], v, sigma, sigma_next, hold[s:e])
        while done < len(chunks) and schedule.finishes(done, step):
            state = commit(done, state)
            done += 1
    return torch.cat(parts, dim=1)


@torch.no_grad()
def sample_autoregressive_reference(
    model: VelocityModel,
    latents: torch.Tensor,
    text: torch.Tensor,
    text_mask: torch.Tensor,
    camera: Any = None,
    *,
    sigmas: Sequence[float] | torch.Tensor,
    chunk_first: int,
    chunk_size: int,
    interval_k: float | None = None,
    first_frame: torch.Tensor | None = None,
    windowed: bool = True,
) -> torch.Tensor:
    """The plain form of `sample_autoregressive` (SANA-WM's `ChunkFlowEuler`): every global step runs the chunk-causal
    full forward on the prefix up to the last active chunk, finished chunks at σ = 0. Same arguments and result;
    `windowed` restricts softmax layers to the streaming KV window, as the streaming sampler sees it."""
    sigma_list = check_sigmas(sigmas)
    x = start_latents(latents, first_frame)
    batch, frames = x.shape[:2]
    frozen = frozen_frames(frames, first_frame is not None, x.device)
    chunks = chunk_bounds(frames, chunk_first, chunk_size)
    schedule = pyramid_schedule(chunks, frozen, len(sigma_list) - 1, interval_k)
    for step in range(schedule.total_steps):
        active = [c for c in range(len(chunks)) if schedule.local_step(c, step) is not None]
        if not active:
            continue
        end = chunks[active[-1]][1]
        sigma = torch.zeros(batch, end, device=x.device)
        sigma_next = torch.zeros(batch, end, device=x.device)
        hold = torch.ones(end, dtype=torch.bool, device=x.device)
        for c in active:
            s, e = chunks[c]
            k = schedule.local_step(c, step)
            sigma[:, s:e] = frame_sigma(sigma_list[k], batch, frozen[s:e])
            sigma_next[:, s:e] = frame_sigma(sigma_list[k + 1], batch, frozen[s:e])
            hold[s:e] = frozen[s:e]
        v = model(x[:, :end], sigma, text, text_mask, _frames(camera, 0, end), causal=True, windowed=windowed)
        x = torch.cat([euler_frames(x[:, :end], v, sigma, sigma_next, hold), x[:, end:]], dim=1)
    return x
