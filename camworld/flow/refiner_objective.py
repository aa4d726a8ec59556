"""The stage-2 refiner's training objective (truncated-σ flow matching) and its sink conditioning (sana_wm.md §5).

The refiner is a second `WorldDiT` (same architecture, own weights) that maps a coarse latent clip x_l (stage-1
output, or ground truth degraded) to the high-fidelity clip x_h. Per clip, with σ_s = σ_start = 0.909375:

    x₁ = (1 − σ_s) x_l + σ_s ε                      the start of refinement: x_l partly re-noised
    σ_t ~ shifted logit-normal truncated to (0, σ_s],  α = σ_t / σ_s
    x_t = (1 − α) x_h + α x₁                         the straight path from x₁ (σ_s) to x_h (0)
    v* = (x₁ − x_h) / σ_s = dx_t/dσ_t                the regression target, constant along the path

With x_l = x_h this is exactly the base objective (x_t = (1 − σ_t) x_h + σ_t ε, v* = ε − x_h), so the refiner
starts from the stage-1 convention (`camworld.flow.schedule`), and the refiner sampler's Euler steps from σ_s to 0
follow the path exactly when v = v*.

Sink: latent frame 0 is the clean first latent (the encoded first image), fed at σ = 0 and left out of the loss. SANA-
WM prepends it as reference tokens with a block mask (sink queries see the sink, the others see sink + all frames);
for `WorldDiT` that is the chunk-causal mode with the chunk plan [0], [1 .. T−1] (chunk_first 1, chunk_size ≥ T−1),
in which the GDN reverse scans also stop before frame 0. `refiner_model_config` gives the refiner that plan, so the
training loss simply runs the model with `causal=True`; `with_chunk_plan` re-plans the same weights into blocks for
the streaming refiner.

Deliberate differences: σ_t is continuous (inverse-CDF truncation of the logit-normal), not drawn on the base
trainer's 1000-level grid; and there is no caption dropout, since the refiner runs without guidance. Like SANA-WM
(a LoRA on LTX-2), camworld trains the refiner as a LoRA on the stage-4 DiT (`camworld.train.refiner_train`).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from camworld.config import ModelConfig, RefinerConfig
from camworld.errors import UserError
from camworld.flow.schedule import add_noise, shift_sigma

VelocityFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]

# a chunk size no clip reaches: the refiner's training plan is the sink chunk, then one chunk of everything else
SINK_SPAN = 1 << 20


def refiner_model_config(base: ModelConfig, refiner: RefinerConfig) -> ModelConfig:
    """The refiner's WorldDiT config: `base`'s architecture with the sink plan [0], [1 ..] and a streaming KV
    cache of the sink plus `refiner.window_chunks` recent chunks."""
    return dataclasses.replace(
        base, chunk_first=1, chunk_size=SINK_SPAN, kv_sink_chunks=1, kv_window_chunks=refiner.window_chunks
    )


def check_sink_plan(cfg: ModelConfig, num_frames: int) -> None:
    """Raise UserError unless cfg's chunk plan makes frame 0 a sink and frames 1 .. T−1 one chunk."""
    if cfg.chunk_first != 1 or cfg.chunk_size < num_frames - 1:
        raise UserError(
            f"the refiner needs the sink chunk plan (1, >= {num_frames - 1}), got ({cfg.chunk_first}, "
            f"{cfg.chunk_size}): build it with refiner_model_config"
        )


def with_chunk_plan(model: torch.nn.Module, first: int, size: int) -> torch.nn.Module:
    """A view of a WorldDiT sharing all its parameters and buffers whose chunk-causal calls use the plan
    (first, size). WorldDiT reads the plan from `cfg` at call time; the shallow copy gets its own cfg and leaves
    `model` unchanged. (The KV window sizes are fixed when the model is built and are not re-planned.)"""
    view = copy.copy(model)
    view.cfg = dataclasses.replace(model.cfg, chunk_first=first, chunk_size=size)
    return view


def truncated_sigma(
    count: int, sigma_start: float, shift: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """σ_t [count] float32 in (0, σ_start]: σ = shift(sigmoid(z)), z ~ N(0, 1) conditioned on σ ≤ σ_start.

    The condition is z ≤ z_max with z_max = logit(shift⁻¹(σ_start)); z is drawn by inverse CDF from a uniform on
    (0, Φ(z_max)], so every draw is accepted.
    """
    if not 0.0 < sigma_start <= 1.0:
        raise UserError(f"sigma_start must be in (0, 1], got {sigma_start}")
    s = torch.tensor(sigma_start, dtype=torch.float64)
    u_max = s / (shift - (shift - 1) * s)  # the inverse of the shift
    z_max = torch.logit(u_max) if sigma_start < 1.0 else torch.tensor(torch.inf, dtype=torch.float64)
    p = (1.0 - torch.rand(count, generator=generator, dtype=torch.float64)) * torch.special.ndtr(z_max)
    sigma = shift_sigma(torch.sigmoid(torch.special.ndtri(p)), shift)
    return sigma.clamp(max=sigma_start).to(torch.float32)


def degrade_frames(frames: torch.Tensor, scale: int) -> torch.Tensor:
    """Frames [B, F, H, W, 3] (uint8 or float) area-downsampled by `scale`, then bilinearly upsampled back: the
    coarse half of a training pair made from a real clip. Returns the input's dtype."""
    if scale < 1:
        raise UserError(f"degrade scale must be >= 1, got {scale}")
    b, f, h, w, c = frames.shape
    x = frames.float().reshape(b * f, h, w, c).permute(0, 3, 1, 2)
    small = F.interpolate(x, size=(max(1, h // scale), max(1, w // scale)), mode="area")
    x = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    x = x.permute(0, 2, 3, 1).reshape(b, f, h, w, c)
    if frames.dtype == torch.uint8:
        return x.round().clamp(0, 255).to(torch.uint8)
    return x.to(frames.dtype)


@dataclass
class RefinerInputs:
    """The random part of one refiner batch: noise ε and perturb (unit Gaussian for the latent noise of degraded
    pairs) [B, T, h, w, C]; sigma σ_t [B]."""

    noise: torch.Tensor
    perturb: torch.Tensor
    sigma: torch.Tensor


def draw_refiner_inputs(
    latent_shape: tuple[int, ...], generators: list[torch.Generator], *, sigma_start: float, shift: float
) -> RefinerInputs:
    """Draw every clip's ε, latent perturbation and σ_t from its own generator; latent_shape is one clip's
    [T, h, w, C]."""
    noise, perturb, sigma = [], [], []
    for g in generators:
        noise.append(torch.randn(latent_shape, generator=g))
        perturb.append(torch.randn(latent_shape, generator=g))
        sigma.append(truncated_sigma(1, sigma_start, shift, g))
    return RefinerInputs(torch.stack(noise), torch.stack(perturb), torch.cat(sigma))


def refiner_flow_loss(
    velocity_fn: VelocityFn,
    x_h: torch.Tensor,
    x_l: torch.Tensor,
    inputs: RefinerInputs,
    text: torch.Tensor,
    text_mask: torch.Tensor,
    *,
    sigma_start: float,
    latent_noise: float = 0.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The truncated-σ loss of `velocity_fn(x_t, σ [B, T], text, text_mask)` against v* on frames 1 .. T−1.

    x_h, x_l [B, T, h, w, C]: target and coarse latents (x_l gets `latent_noise` · inputs.perturb added first; use
    0 for stage-1 outputs). Frame 0 of the model input is x_h's clean first latent at σ = 0. Squared errors are
    averaged per clip, then over clips (as `camworld.flow.objective`).
    """
    if x_h.shape != x_l.shape or x_h.shape[1] < 2:
        raise UserError(f"x_h and x_l must be equal [B, T >= 2, h, w, C], got {list(x_h.shape)}, {list(x_l.shape)}")
    dev, dtype = x_h.device, x_h.dtype
    noise, perturb, sigma_t = (t.to(dev) for t in (inputs.noise, inputs.perturb, inputs.sigma))
    x_l = x_l + latent_noise * perturb.to(dtype)
    x_1 = add_noise(x_l, noise.to(dtype), torch.tensor(sigma_start, device=dev))
    x_t = add_noise(x_h, x_1, sigma_t / sigma_start)  # (1 − α) x_h + α x₁
    x_t = torch.cat([x_h[:, :1], x_t[:, 1:]], dim=1)
    sigma = torch.cat([torch.zeros_like(sigma_t)[:, None], sigma_t[:, None].expand(-1, x_h.shape[1] - 1)], dim=1)
    v = velocity_fn(x_t, sigma, text, text_mask)
    if v.shape != x_h.shape:
        raise UserError(f"velocity has shape {list(v.shape)}, expected {list(x_h.shape)}")
    target = (x_1 - x_h) / sigma_start
    err = (v[:, 1:].float() - target[:, 1:].float()).pow(2).flatten(1).mean(1)
    return err.mean(), {"sigma_mean": float(sigma_t.mean())}


def refiner_loss(
    model: torch.nn.Module,
    x_h: torch.Tensor,
    x_l: torch.Tensor,
    text: torch.Tensor,
    text_mask: torch.Tensor,
    camera,
    generators: list[torch.Generator],
    *,
    sigma_start: float = RefinerConfig.sigmas[0],
    shift: float = 9.95,
    latent_noise: float = 0.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The refiner loss of a WorldDiT-like `model` (possibly wrapped for data parallelism) with the sink plan.

    x_h, x_l [B, T, h, w, C]; text [B, L, D], text_mask [B, L]; camera: the model's CameraInputs for the T frames
    (or None); one generator per clip. The model is called chunk-causally, so its plan must be the sink plan
    (`refiner_model_config`); it is checked when `model` exposes its cfg.
    """
    if hasattr(model, "cfg"):
        check_sink_plan(model.cfg, x_h.shape[1])
    inputs = draw_refiner_inputs(tuple(x_h.shape[1:]), generators, sigma_start=sigma_start, shift=shift)

    def velocity(x, sigma, txt, mask):
        return model(x, sigma, txt, mask, camera, causal=True)

    return refiner_flow_loss(velocity, x_h, x_l, inputs, text, text_mask, sigma_start=sigma_start,
                             latent_noise=latent_noise)
