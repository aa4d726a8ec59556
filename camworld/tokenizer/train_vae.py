"""Training loop of the causal video VAE: L1 reconstruction + a small KL term, resumable checkpoints, JSONL log.

The loop takes an iterator of clip batches (uint8 [B, F, H, W, 3], F = stride_t*k + 1) and never builds data
itself: the tokenizer is model code and must not import the world renderer (the CLI builds the iterator).

Loss choice: a KL-regularised VAE with a small weight rather than a plain auto-encoder. Training decodes a sample
mu + sigma*eps, so the decoder learns to tolerate small latent errors (what a diffusion sampler leaves behind),
and the KL keeps the latent scale bounded so the per-channel normalisation is stable; at weight 1e-5 the KL
costs almost no reconstruction quality. Encoding at inference uses mu (SANA-WM §2.1 `posterior.mode()`). No
perceptual or adversarial loss (no offline LPIPS weights; a GAN is too costly on 2 CPU cores).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from camworld.config import RunConfig
from camworld.fileio import atomic_dir, atomic_path
from camworld.tokenizer.metrics import psnr
from camworld.tokenizer.vae import CausalVideoVAE, load_vae_weights, to_unit, write_vae_files

WARMUP_STEPS = 200
FINAL_LR_FRACTION = 0.1
STATS_DECAY = 0.99


def vae_loss(vae: CausalVideoVAE, clips: torch.Tensor, kl_weight: float, generator: torch.Generator | None = None):
    """One reconstruction pass on clips [B, F, H, W, 3]. Returns (loss, stats dict, posterior mean [B, T, h, w, C])."""
    target = to_unit(clips)
    mean, logvar = vae.moments(target)
    noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
    recon = vae.decode_raw(mean + noise * (0.5 * logvar).exp())
    l1 = (recon - target).abs().mean()
    kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).mean()
    loss = l1 + kl_weight * kl
    stats = {"loss": loss.item(), "l1": l1.item(), "kl": kl.item(), "psnr": psnr(recon.detach(), target)}
    return loss, stats, mean.detach()


def lr_at(step: int, total: int, base: float) -> float:
    """Linear warm-up (WARMUP_STEPS, or a tenth of a short run), then cosine decay to FINAL_LR_FRACTION * base."""
    warmup = min(WARMUP_STEPS, max(1, total // 10))
    if step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (FINAL_LR_FRACTION + (1 - FINAL_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * progress)))


def _save_optimizer(opt: torch.optim.Optimizer, path: Path) -> None:
    state = opt.state_dict()
    tensors = {
        f"{idx}.{key}": value.detach().contiguous().cpu()
        for idx, entry in state["state"].items()
        for key, value in entry.items()
    }
    save_file(tensors, str(path), metadata={"param_groups": json.dumps(state["param_groups"])})


def _load_optimizer(opt: torch.optim.Optimizer, path: Path) -> None:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        groups = json.loads(f.metadata()["param_groups"])
    entries: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in load_file(str(path)).items():
        idx, key = name.split(".", 1)
        entries.setdefault(int(idx), {})[key] = value
    opt.load_state_dict({"state": entries, "param_groups": groups})


def save_training_checkpoint(folder: str | os.PathLike, vae: CausalVideoVAE, opt: torch.optim.Optimizer,
                             run_cfg: RunConfig, step: int, elapsed_s: float) -> None:
    """One atomic folder: config.json + model.safetensors (the usable checkpoint) + optimizer + trainer state."""
    with atomic_dir(folder) as tmp:
        write_vae_files(vae, tmp, run_cfg, metadata={"step": str(step)})
        _save_optimizer(opt, tmp / "optimizer.safetensors")
        (tmp / "trainer.json").write_text(json.dumps({"step": step, "elapsed_s": elapsed_s}) + "\n")


def _truncate_log(path: Path, start: int) -> None:
    """Drop log rows of steps >= start: they came after the checkpoint being resumed and are redone."""
    if not path.is_file():
        return
    keep = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] < start]
    with atomic_path(path) as tmp:
        tmp.write_text("".join(line + "\n" for line in keep))


class _LatentStats:
    """Exponential moving per-channel mean and variance of posterior means, copied into the VAE's buffers."""

    def __init__(self, vae: CausalVideoVAE, fresh: bool):
        self.mean = vae.latents_mean.clone()
        self.var = vae.latents_std.clone().pow(2)
        self.fresh = fresh

    def update(self, mu: torch.Tensor) -> None:
        flat = mu.reshape(-1, mu.shape[-1]).double()
        m, v = flat.mean(0).float(), flat.var(0).float()
        d = 0.0 if self.fresh else STATS_DECAY
        self.mean = d * self.mean + (1 - d) * m
        self.var = d * self.var + (1 - d) * v
        self.fresh = False

    def write(self, vae: CausalVideoVAE) -> None:
        vae.latents_mean.copy_(self.mean)
        vae.latents_std.copy_(self.var.clamp(min=1e-8).sqrt())


def train_vae(run_cfg: RunConfig, clips: Iterator[torch.Tensor], out_dir: str | os.PathLike, steps: int, *,
              bf16: bool = True, seed: int = 0, progress: bool = True, log_every: int = 10) -> CausalVideoVAE:
    """Train (or resume) the VAE in out_dir/checkpoint until `steps` total steps; log to out_dir/log.jsonl.

    Resumes from out_dir/checkpoint when it holds trainer.json. Checkpoints every `checkpoint_every_s` seconds
    and at the end. Returns the trained VAE (latent statistics written into its buffers).
    """
    cfg = run_cfg.tokenizer
    out = Path(out_dir)
    ckpt = out / "checkpoint"
    torch.manual_seed(seed)
    resuming = (ckpt / "trainer.json").is_file()
    vae = CausalVideoVAE(cfg).train()
    if resuming:
        load_vae_weights(vae, ckpt)
    vae = vae.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.lr, betas=(0.9, 0.99), weight_decay=0.0)
    start, elapsed = 0, 0.0
    if resuming:
        _load_optimizer(opt, ckpt / "optimizer.safetensors")
        state = json.loads((ckpt / "trainer.json").read_text())
        start, elapsed = int(state["step"]), float(state["elapsed_s"])
    stats = _LatentStats(vae, fresh=not resuming)
    generator = torch.Generator().manual_seed(seed + start)
    out.mkdir(parents=True, exist_ok=True)
    _truncate_log(out / "log.jsonl", start)
    t0 = time.monotonic() - elapsed
    last_save = time.monotonic()
    bar = tqdm(range(start, steps), initial=start, total=steps, desc="vae", disable=not progress)
    with open(out / "log.jsonl", "a") as log:
        for step in bar:
            lr = lr_at(step, steps, cfg.lr)
            for group in opt.param_groups:
                group["lr"] = lr
            batch = next(clips)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss, row, mu = vae_loss(vae, batch, cfg.kl_weight, generator)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            stats.update(mu)
            bar.set_postfix(l1=f"{row['l1']:.4f}", psnr=f"{row['psnr']:.2f}")
            if step % log_every == 0 or step == steps - 1:
                row.update(step=step, lr=lr, elapsed_s=round(time.monotonic() - t0, 1))
                log.write(json.dumps(row) + "\n")
                log.flush()
            if time.monotonic() - last_save > cfg.checkpoint_every_s:
                stats.write(vae)
                save_training_checkpoint(ckpt, vae, opt, run_cfg, step + 1, time.monotonic() - t0)
                last_save = time.monotonic()
    stats.write(vae)
    if steps > start:
        save_training_checkpoint(ckpt, vae, opt, run_cfg, steps, time.monotonic() - t0)
    return vae.eval()
