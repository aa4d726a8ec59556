"""Training the stage-2 long-video refiner as a LoRA on the stage-4 DiT (sana_wm.md §5): the run config, the model
(base frozen, adapters trainable) and the `loss_fn` adapter of `camworld.train.loop.train`.

`RefinerObjective(model, batch) -> (loss, logs)` makes the training pair of every clip and calls
`camworld.flow.refiner_objective.refiner_loss`. A batch is a collated dict with either raw clips or latents:

    frames          uint8 [B, F, H, W, 3]   x_h = frozen-VAE latents of the clip; x_l = latents of the clip degraded
                                            by `degrade_frames(frames, degrade_scale)` plus N(0, latent_noise²)
                                            latent noise; or
    latents         float [B, T, h, w, C]   precomputed x_h, with
    coarse_latents  float [B, T, h, w, C]   precomputed x_l used as they are (e.g. stage-1 outputs, SANA-WM's pairs;
                                            no latent noise is added), and image_hw [B, 2]
    c2w, intrinsics, caption (or text + text_mask), draw   as `camworld.train.world_objective`

Deliberate difference from SANA-WM: its pairs are stage-1 outputs (plus synthetic pairs and degraded real videos);
the recipe here trains on degraded ground truth only (down-/up-sampled frames + latent noise), which needs no
stage-1 sampling per clip (60 sampler steps with CFG each, far beyond a CPU budget). `coarse_latents` is the way in
for stage-1 outputs made offline. Camera inputs are the same as the DiT's (`clip_cameras`), with Plücker rays from
frame 0: the refiner's config no longer holds the stage-1 chunk plan that sampling re-bases its rays over
(`ModelConfig.plucker_rebase_chunks`), and on clips of at most 3 stage-1 chunks (37 frames in the tiny recipe) the
two maps are the same. The text is not dropped (the refiner runs without guidance).

The model is a `WorldDiT` built with `refiner_model_config` (sink chunk [0], then one chunk of the rest), loaded with
the stage-4 weights, with LoRA adapters on `REFINER_LORA_LAYERS` (`camworld.modules.lora`); only the adapters train.
Checkpoints hold the whole model (base + adapters) and the run config, so they rebuild with `build_refiner`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from camworld.config import RunConfig, apply_overrides
from camworld.errors import UserError
from camworld.flow.refiner_objective import degrade_frames, refiner_loss, refiner_model_config
from camworld.models.dit import WorldDiT
from camworld.modules.lora import LORA_SUFFIXES, attach_lora, freeze_all_but_lora
from camworld.train.loop import draw_generator
from camworld.train.world_objective import TextEncodeFn, VideoEncodeFn, batch_text, clip_cameras

# LoRA updates start at zero and are low-rank, so they are trained with a higher lr than a full fine-tune (peft's
# and most LoRA recipes use ~1e-4..1e-3 where full fine-tunes use ~1e-5..1e-4); override with --set train.lr=...
REFINER_LR = 1e-3


def refiner_run_config(base: RunConfig, overrides: list[str] | None = None) -> RunConfig:
    """The refiner run's config from the config of the DiT run it starts from (a copy): lr `REFINER_LR`, no
    per-chunk noise, then the `--set` overrides, then the model re-planned with the sink chunk plan of
    `refiner_model_config`. Clip length, batch, shift, EMA and seed stay those of the base run."""
    cfg = copy.deepcopy(base)
    if not (cfg.model.ucpe and cfg.model.plucker):
        raise UserError("the refiner starts from a camera-conditioned DiT (stage 3 or 4); --init has no camera branch")
    cfg.train.causal = False
    cfg.train.lr = REFINER_LR
    apply_overrides(cfg, overrides)
    cfg.model = refiner_model_config(cfg.model, cfg.refiner)
    return cfg


def is_refiner_state(state: dict[str, torch.Tensor]) -> bool:
    """True for the weights of a model with LoRA adapters (a refiner run's checkpoint)."""
    return any(k.endswith(LORA_SUFFIXES) for k in state)


def build_refiner(cfg: RunConfig, base_state: dict[str, torch.Tensor] | None = None) -> WorldDiT:
    """The refiner being trained: WorldDiT(cfg.model) (the refiner's config), loaded with `base_state` (the stage-4
    DiT's weights, exactly its tensors) when given, then adapters of rank cfg.refiner.lora_rank attached and
    everything but them frozen. Without base_state the caller loads a checkpoint of this model (base + adapters)."""
    if cfg.refiner.lora_rank < 1:
        raise UserError(f"refiner.lora_rank must be >= 1, got {cfg.refiner.lora_rank}")
    model = WorldDiT(cfg.model)
    if base_state is not None:
        if is_refiner_state(base_state):
            raise UserError("--init is a refiner checkpoint: start the refiner from a DiT checkpoint (stage 4)")
        own = model.state_dict()
        missing = sorted(set(own) - set(base_state))
        extra = sorted(set(base_state) - set(own))
        if missing or extra:
            key = (missing or extra)[0]
            raise UserError(f"--init does not fit the refiner's DiT: it {'lacks' if missing else 'has'} {key!r}")
        for k, v in base_state.items():
            if v.shape != own[k].shape:
                raise UserError(f"--init tensor {k!r} has shape {list(v.shape)}, the DiT wants {list(own[k].shape)}")
        model.load_state_dict(base_state)
    attach_lora(model, cfg.refiner.lora_rank, cfg.refiner.lora_alpha)
    freeze_all_but_lora(model)
    return model


@dataclass
class RefinerObjective:
    """loss_fn(model, batch) of the refiner; see the module docstring for the batch and the pairs.

    encode_video: frozen tokenizer encode (uint8 video [B, F, H, W, 3] -> latents [B, T, h, w, C]); None requires
    precomputed latents. encode_text: captions -> (embeddings [B, L, D], mask [B, L] bool). sigma_start: σ_s of
    the truncated path (the first refiner σ); shift: the training timestep shift of σ_t.
    """

    encode_text: TextEncodeFn
    encode_video: VideoEncodeFn | None = None
    seed: int = 3407
    shift: float = 9.95
    sigma_start: float = 0.909375
    degrade_scale: int = 4
    latent_noise: float = 0.1
    temporal_stride: int = 4

    def pair(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, float]:
        """(x_h, x_l, latent noise std to add to x_l), latents [B, T, h, w, C] float32."""
        if "latents" in batch:
            if "coarse_latents" not in batch:
                raise UserError("a batch of precomputed latents needs coarse_latents (the refiner's inputs) too")
            return batch["latents"].float(), batch["coarse_latents"].float(), 0.0
        if self.encode_video is None:
            raise UserError("the batch has no precomputed latents and no tokenizer was given to encode frames")
        frames = batch["frames"]
        with torch.no_grad(), torch.autocast(frames.device.type, enabled=False):
            x_h = self.encode_video(frames).float()
            x_l = self.encode_video(degrade_frames(frames, self.degrade_scale)).float()
        return x_h, x_l, self.latent_noise

    def text(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        return batch_text(batch, self.encode_text)

    def __call__(self, model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        x_h, x_l, latent_noise = self.pair(batch)
        b, t, h, w, _ = x_h.shape
        text, text_mask = self.text(batch)
        image_hw = batch["image_hw"] if "image_hw" in batch else [batch["frames"].shape[2:4]] * b
        camera = clip_cameras(batch["c2w"], batch["intrinsics"], image_hw, (h, w), self.temporal_stride)
        generators = [draw_generator(self.seed, int(d)) for d in batch["draw"]]
        loss, logs = refiner_loss(model, x_h, x_l, text.to(x_h.device), text_mask.to(x_h.device), camera, generators,
                                  sigma_start=self.sigma_start, shift=self.shift, latent_noise=latent_noise)
        logs["tokens"] = float(b * (t - 1) * h * w)
        return loss, logs
