"""Self-forcing distillation of the chunk-causal DiT into a few-step student (sana_wm.md §6.5): the three models, the
run config and the `loss_fn` adapter of `camworld.train.loop.train`.

`DistillModels` holds the student (the teacher's weights plus a LoRA; only the LoRA trains), the critic or fake score
(a full copy of the teacher, trained) and the teacher or real score (frozen). One training step:

1. the student rolls out the clip from its encoded first frame with its own few-step σ list
   (`camworld.samplers.self_forcing`, a gradient through one exit step per chunk, the same exit step for every chunk
   as Self-Forcing's default);
2. on every `distill.generator_every`-th step, the DMD loss (`camworld.flow.dmd`) moves the student's clip toward the
   teacher's denoising of it and away from the critic's;
3. on every step, the critic's flow-matching loss on the (detached) rollout keeps it tracking the student.

Both losses are summed into one backward pass: the DMD loss reaches only the student's adapters (the two scores run
without a graph on a detached input) and the critic loss only the critic (its input is detached). So one AdamW steps
both, in two parameter groups with their own learning rates (`DistillModels.optimizer_groups`) and the loop's joint
gradient clipping, which is our simplification of LongSANA's two optimisers.

A batch is the world dataset's (`camworld.train.world_objective`): only the first frame of `frames` is encoded (the
causal VAE's first latent depends on the first frame alone; or precomputed `latents` with `image_hw`, of which only
latent 0 is used), the rest of the clip gives the cameras and the caption (or `text` / `text_mask`).
The ground-truth video itself is never a target: distillation learns from the teacher alone.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from camworld.config import RunConfig, apply_overrides
from camworld.errors import UserError
from camworld.flow.dmd import critic_loss, denoised, dmd_direction, dmd_loss, frame_levels, sample_dmd_sigma
from camworld.flow.schedule import add_noise
from camworld.models.dit import WorldDiT
from camworld.modules.lora import LORA_SUFFIXES, attach_lora, freeze_all_but_lora
from camworld.ops.chunks import chunk_bounds
from camworld.samplers.euler import frozen_frames
from camworld.samplers.guidance import ClassifierFreeGuidance
from camworld.samplers.self_forcing import self_forcing_rollout
from camworld.train.loop import draw_generator
from camworld.train.world_objective import TextEncodeFn, VideoEncodeFn, batch_text, clip_cameras

# A LoRA student and a full critic, both starting from the teacher; LongSANA's 1e-5 is for a 2B model trained for
# thousands of steps, and a few hundred CPU steps need more (the stage-4 DiT trained at 3e-4).
DISTILL_LR = 1e-4
# DMD2 / Self-Forcing train both networks with Adam β1 = 0
DISTILL_BETAS = (0.0, 0.999)
# LongSANA: EMA 0.99 (from step 200)
DISTILL_EMA = 0.99

STUDENT_PREFIX = "generator."


def distill_run_config(teacher: RunConfig, overrides: list[str] | None = None) -> RunConfig:
    """The distillation run's config from the teacher's (a copy): the lr, betas and EMA above, then `--set`."""
    cfg = copy.deepcopy(teacher)
    if not cfg.model.ucpe or not cfg.model.plucker:
        raise UserError("the teacher must be a camera-conditioned DiT (stage 3 or 4)")
    cfg.train.causal = True
    cfg.train.lr = DISTILL_LR
    cfg.train.betas = DISTILL_BETAS
    cfg.train.ema_decay = DISTILL_EMA
    apply_overrides(cfg, overrides)
    cfg.distill.sigmas = tuple(cfg.distill.sigmas)
    if cfg.distill.generator_every < 1:
        raise UserError(f"distill.generator_every must be >= 1, got {cfg.distill.generator_every}")
    if not 0.0 <= cfg.distill.sigma_low < cfg.distill.sigma_high <= 1.0:
        raise UserError("need 0 <= distill.sigma_low < distill.sigma_high <= 1")
    return cfg


class DistillModels(nn.Module):
    """generator (teacher + LoRA of rank cfg.distill.lora_rank; the student), critic and teacher, all
    `WorldDiT(cfg.model)`; `teacher_state` (a plain DiT state dict) initialises all three, or a checkpoint of this
    module is loaded by the caller."""

    def __init__(self, cfg: RunConfig, teacher_state: dict[str, torch.Tensor] | None = None):
        super().__init__()
        self.generator, self.critic, self.teacher = (WorldDiT(cfg.model) for _ in range(3))
        if teacher_state is not None:
            state = {k: v.float() for k, v in teacher_state.items()}
            for model in (self.generator, self.critic, self.teacher):
                model.load_state_dict(state)
        attach_lora(self.generator, cfg.distill.lora_rank, cfg.distill.lora_alpha)
        freeze_all_but_lora(self.generator)
        self.teacher.requires_grad_(False)
        self.student_lr_scale = cfg.distill.student_lr_scale

    def optimizer_groups(self) -> list[dict]:
        """The student's adapters at `distill.student_lr_scale` × the lr, the critic at the lr; the teacher is not
        optimised (for `train(param_groups=...)`)."""
        student = [p for p in self.generator.parameters() if p.requires_grad]
        return [{"params": student, "lr_scale": self.student_lr_scale},
                {"params": list(self.critic.parameters()), "lr_scale": 1.0}]


def student_lora(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The student's adapter tensors, named as on a plain DiT, from a `DistillModels` state dict."""
    return {k[len(STUDENT_PREFIX):]: v for k, v in state.items()
            if k.startswith(STUDENT_PREFIX) and k.endswith(LORA_SUFFIXES)}


@dataclass
class DistillObjective:
    """loss_fn(models, batch) of the distillation; see the module docstring.

    encode_video: frozen tokenizer encode (uint8 [B, F, H, W, 3] -> latents), used on the first frame only;
    encode_text: captions -> (embeddings [B, L, D], mask [B, L] bool); global_batch: clips per optimiser step (the
    step number is recovered from the batch's draw numbers, so the alternation survives a resume).
    """

    cfg: RunConfig
    encode_text: TextEncodeFn
    encode_video: VideoEncodeFn
    global_batch: int

    def __post_init__(self):
        self._null: tuple[torch.Tensor, torch.Tensor] | None = None

    def guided_teacher(self, teacher: WorldDiT):
        """The real score: the teacher with text guidance `distill.real_guidance` against the empty prompt."""
        if self._null is None:
            with torch.no_grad():
                emb, mask = self.encode_text([""])
            self._null = (emb[0].float(), mask[0].bool())
        return ClassifierFreeGuidance(teacher, *self._null, self.cfg.distill.real_guidance)

    def first_latent(self, batch: dict) -> tuple[torch.Tensor, int, list]:
        """(the clean first latent [B, 1, h, w, C], the clip's latent frame count T, image_hw per clip)."""
        if "latents" in batch:
            latents = batch["latents"].float()
            return latents[:, :1], latents.shape[1], batch["image_hw"]
        frames = batch["frames"]
        with torch.no_grad(), torch.autocast(frames.device.type, enabled=False):
            first = self.encode_video(frames[:, :1]).float()
        t = (frames.shape[1] - 1) // self.cfg.model.temporal_stride + 1
        return first, t, [frames.shape[2:4]] * frames.shape[0]

    def text(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        return batch_text(batch, self.encode_text)

    def __call__(self, models: nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        cfg, dcfg = self.cfg, self.cfg.distill
        first, t, image_hw = self.first_latent(batch)
        text, text_mask = (x.to(first.device) for x in self.text(batch))
        b, h, w, c = first.shape[0], *first.shape[2:]
        plan = (cfg.model.chunk_first, cfg.model.chunk_size)
        camera = clip_cameras(batch["c2w"], batch["intrinsics"], image_hw, (h, w), cfg.model.temporal_stride, plan,
                              cfg.model.plucker_rebase_chunks)
        draws = [int(d) for d in batch["draw"]]
        generators = [draw_generator(cfg.train.seed, d) for d in draws]

        def clip_noise() -> torch.Tensor:
            """ε [B, T, h, w, C], each clip's from its own generator."""
            return torch.stack([torch.randn((t, h, w, c), generator=g) for g in generators]).to(first.device)

        def clip_sigma(low: float, high: float) -> torch.Tensor:
            """Per-frame σ [B, T]: one shifted U[low, high] draw per clip, 0 at the held frame."""
            drawn = torch.cat([sample_dmd_sigma(1, g, low=low, high=high, shift=cfg.train.shift) for g in generators])
            return frame_levels(drawn, t, hold).to(first.device)

        noise = clip_noise()
        steps = len(dcfg.sigmas) - 1
        exit_step = int(torch.randint(steps, (), generator=generators[0]))
        num_chunks = len(chunk_bounds(t, *plan))
        train_generator = (draws[0] // self.global_batch) % dcfg.generator_every == dcfg.generator_every - 1
        hold = frozen_frames(t, True, first.device)

        with torch.set_grad_enabled(train_generator):
            x0 = self_forcing_rollout(models.generator, noise, text, text_mask, camera, sigmas=dcfg.sigmas,
                                      chunk_first=plan[0], chunk_size=plan[1], exit_steps=[exit_step] * num_chunks,
                                      first_frame=first)
        sample = x0.detach()
        logs = {"generator_step": float(train_generator), "exit_step": float(exit_step)}
        loss = torch.zeros((), device=first.device)
        if train_generator:
            sigma = clip_sigma(dcfg.sigma_low, dcfg.sigma_high)
            noisy = add_noise(sample, clip_noise(), sigma)
            with torch.no_grad():
                real = denoised(noisy, self.guided_teacher(models.teacher)(noisy, sigma, text, text_mask, camera,
                                                                           causal=True), sigma)
                fake = denoised(noisy, models.critic(noisy, sigma, text, text_mask, camera, causal=True), sigma)
            direction = dmd_direction(sample, real.float(), fake.float())
            g_loss = dmd_loss(x0, direction, hold)
            loss = loss + g_loss
            logs["dmd_loss"] = float(g_loss.detach())
            logs["real_fake_gap"] = float((real - fake).float().abs().mean())
        sigma_c = clip_sigma(0.0, 1.0)
        eps_c = clip_noise()
        velocity = models.critic(add_noise(sample, eps_c, sigma_c), sigma_c, text, text_mask, camera, causal=True)
        c_loss = critic_loss(velocity.float(), sample, eps_c, hold)
        logs["critic_loss"] = float(c_loss.detach())
        logs["tokens"] = float(b * t * h * w)
        return loss + c_loss, logs
