"""The flow-matching training loss given any velocity function (sana_wm.md §6.2, §2.6).

Per clip, `draw_flow_inputs` makes the random decisions (noise ε, per-frame σ, whether frame 0 is the clean image
condition, whether the caption is dropped) from that clip's own generator, and `flow_matching_loss` is then a pure
function of them:

  - image-to-video: with probability 0.9 (`ltx_image_condition_prob`) latent frame 0 gets σ = 0, so the model sees
    it noise-free, and it is left out of the loss;
  - text dropout 0.1 (`class_dropout_prob`): the caption embedding is replaced by the empty-prompt embedding, the
    unconditional input of classifier-free guidance;
  - optionally (`cond_degrade_prob`, default 0: our addition), a clean frame 0 is fed blurred and noised
    (`camworld.flow.condition_degrade`), as a segment hand-off feeds the model its own generated frame;
  - the loss is the MSE between v(x_σ) and ε − x₀ over the loss mask: every frame with σ > 0 (a frame at σ = 0 is
    its clean self, from which ε cannot be recovered: the I2V frame and teacher-forced clean chunks), times an
    optional caller mask [B, T].

Deliberate difference: the squared error is averaged per clip over its valid elements and then over clips, instead
of over all valid elements of the batch at once. The two agree whenever clips have the same number of valid frames;
per-clip averaging makes the gradient independent of how a global batch is split over data-parallel ranks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from camworld.errors import UserError
from camworld.flow.condition_degrade import degrade_first_latent
from camworld.flow.schedule import add_noise, velocity_target

VelocityFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class FlowInputs:
    """The random part of one batch. noise [B, T, h, w, C]; sigma [B, T]; image_cond, drop_text bool [B];
    cond_strength [B] (0 = frame 0 fed as it is) and cond_noise [B, h, w, C], None when nothing is degraded."""

    noise: torch.Tensor
    sigma: torch.Tensor
    image_cond: torch.Tensor
    drop_text: torch.Tensor
    cond_strength: torch.Tensor | None = None
    cond_noise: torch.Tensor | None = None


def draw_flow_inputs(
    latent_shape: tuple[int, ...],
    generators: list[torch.Generator],
    sigma_fn: Callable[[torch.Generator], torch.Tensor],
    *,
    image_cond_prob: float = 0.9,
    text_dropout: float = 0.1,
    cond_degrade_prob: float = 0.0,
) -> FlowInputs:
    """Draw every clip's ε, σ [T] (from `sigma_fn(generator)`), I2V and text-dropout decisions from its own generator.

    latent_shape is one clip's [T, h, w, C]; there is one generator per clip, so a clip's randomness does not depend
    on which other clips share its batch or its rank. With cond_degrade_prob > 0 each clip then also draws whether
    its clean frame 0 is degraded (only I2V clips are), the strength in [0, 1) and the noise; those draws come last,
    so the other decisions equal a run without degradation.
    """
    noise, sigma, cond, drop, strength, cond_noise = [], [], [], [], [], []
    for g in generators:
        noise.append(torch.randn(latent_shape, generator=g))
        s = sigma_fn(g).clone()
        if s.shape != (latent_shape[0],):
            raise UserError(f"sigma_fn must return [T] = [{latent_shape[0]}], got {list(s.shape)}")
        cond.append(bool(torch.rand((), generator=g) < image_cond_prob))
        drop.append(bool(torch.rand((), generator=g) < text_dropout))
        if cond[-1]:
            s[0] = 0.0
        sigma.append(s)
        if cond_degrade_prob > 0:
            degrade = bool(torch.rand((), generator=g) < cond_degrade_prob) and cond[-1]
            u = float(torch.rand((), generator=g))
            strength.append(u if degrade else 0.0)
            cond_noise.append(torch.randn(latent_shape[1:], generator=g))
    inputs = FlowInputs(torch.stack(noise), torch.stack(sigma), torch.tensor(cond), torch.tensor(drop))
    if strength:
        inputs.cond_strength, inputs.cond_noise = torch.tensor(strength), torch.stack(cond_noise)
    return inputs


def drop_captions(
    text: torch.Tensor, text_mask: torch.Tensor, null_text: torch.Tensor, null_mask: torch.Tensor, drop: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Swap the dropped clips' captions for the empty prompt. text [B, L, D]; null_text [L, D]; masks bool."""
    d = drop.to(text.device)
    text = torch.where(d[:, None, None], null_text.to(text)[None], text)
    text_mask = torch.where(d[:, None], null_mask.to(text_mask)[None], text_mask)
    return text, text_mask


def flow_matching_loss(
    velocity_fn: VelocityFn,
    x0: torch.Tensor,
    inputs: FlowInputs,
    text: torch.Tensor,
    text_mask: torch.Tensor,
    null_text: torch.Tensor,
    null_mask: torch.Tensor,
    frame_mask: torch.Tensor | None = None,
    cond_noise_frac: float = 0.2,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The masked MSE of `velocity_fn(x_σ, σ, text, text_mask)` against ε − x₀, and a few logs.

    x0 [B, T, h, w, C] clean latents; frame_mask [B, T] optional (False = not in the loss); cond_noise_frac: the
    noise of a degraded frame 0 relative to its std. Returns a scalar float32 loss and a dict of Python floats.
    """
    dev = x0.device
    noise, sigma = inputs.noise.to(dev, x0.dtype), inputs.sigma.to(dev)
    text, text_mask = drop_captions(text, text_mask, null_text, null_mask, inputs.drop_text)
    x_in = x0
    if inputs.cond_strength is not None and bool((inputs.cond_strength > 0).any()):
        # only the model's input changes: a degraded frame 0 has σ = 0, so it is never in the loss
        x_in = x0.clone()
        x_in[:, 0] = degrade_first_latent(x0[:, 0], inputs.cond_strength.to(dev), inputs.cond_noise.to(dev),
                                          cond_noise_frac)
    x_sigma = add_noise(x_in, noise, sigma)
    v = velocity_fn(x_sigma, sigma, text, text_mask)
    if v.shape != x0.shape:
        raise UserError(f"velocity has shape {list(v.shape)}, expected {list(x0.shape)}")
    valid = sigma > 0
    if frame_mask is not None:
        valid = valid & frame_mask.to(dev, torch.bool)
    err = (v.float() - velocity_target(x0, noise).float()).pow(2).flatten(2).mean(-1)  # [B, T]
    w = valid.float()
    per_clip = (err * w).sum(1) / w.sum(1).clamp_min(1.0)
    loss = per_clip.mean()
    logs = {
        "sigma_mean": float(sigma[valid].mean()) if valid.any() else 0.0,
        "image_cond": float(inputs.image_cond.float().mean()),
        "text_dropped": float(inputs.drop_text.float().mean()),
    }
    if inputs.cond_strength is not None:
        logs["cond_degraded"] = float((inputs.cond_strength > 0).float().mean())
    return loss, logs
