"""VAE training loop (loss falls, resume, checkpoint contents) and the PSNR / SSIM metrics."""

from __future__ import annotations

import itertools
import json
import math

import torch

from camworld.config import RunConfig, TokenizerConfig
from camworld.tokenizer.metrics import psnr, ssim
from camworld.tokenizer.train_vae import lr_at, train_vae
from camworld.tokenizer.vae import load_vae


def tiny_run() -> RunConfig:
    tok = TokenizerConfig(latent_channels=4, base_channels=8, channel_mults=(1, 2, 2), height=16, width=24, lr=3e-3,
                          checkpoint_every_s=1e9)
    return RunConfig(tokenizer=tok)


def smooth_clips(seed: int = 0):
    """Smooth random colour fields drifting over time: learnable structure, uint8 [2, 5, 16, 24, 3]."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 16), torch.linspace(0, 1, 24), indexing="ij")
    while True:
        freq = torch.rand(2, 1, 1, 1, 3, generator=g) * 3 + 1
        phase = torch.rand(2, 1, 1, 1, 3, generator=g) * 6
        t = torch.arange(5).view(1, 5, 1, 1, 1) * 0.1
        field = torch.sin(freq * (xx[..., None] + 0.5 * yy[..., None] + t) * 3 + phase)
        yield ((field + 1) * 127.5).round().to(torch.uint8)


def test_training_reduces_loss_and_resumes(tmp_path):
    torch.set_num_threads(2)
    run = tiny_run()
    train_vae(run, itertools.repeat(next(smooth_clips())), tmp_path, 40, progress=False, log_every=1)
    rows = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert len(rows) == 40
    first, last = sum(r["l1"] for r in rows[:4]) / 4, sum(r["l1"] for r in rows[-4:]) / 4
    assert last < 0.75 * first, (first, last)
    ckpt = tmp_path / "checkpoint"
    assert json.loads((ckpt / "trainer.json").read_text())["step"] == 40
    vae = load_vae(ckpt)
    assert not torch.allclose(vae.latents_std, torch.ones_like(vae.latents_std))

    with open(tmp_path / "log.jsonl", "a") as log:  # a row logged after the checkpoint, before a crash
        log.write(json.dumps({"step": 40, "l1": -1.0}) + "\n")
    train_vae(run, smooth_clips(1), tmp_path, 43, progress=False, log_every=1)
    rows = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(43)) and rows[40]["l1"] > 0
    assert json.loads((ckpt / "trainer.json").read_text())["step"] == 43


def test_lr_schedule_warms_up_then_decays():
    assert lr_at(0, 1000, 1.0) < lr_at(99, 1000, 1.0) == 1.0
    assert lr_at(0, 10000, 1.0) < lr_at(199, 10000, 1.0) == 1.0
    assert math.isclose(lr_at(1000, 1000, 1.0), 0.1)
    assert lr_at(600, 1000, 1.0) < lr_at(300, 1000, 1.0)


def test_psnr_and_ssim():
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 256, (2, 32, 32, 3), generator=g, dtype=torch.uint8)
    assert psnr(a, a) == float("inf")
    assert math.isclose(ssim(a, a), 1.0, rel_tol=1e-9)
    b = (a.int() + 16).clamp(max=255).to(torch.uint8)
    mse = ((b.double() - a.double()) / 255).pow(2).mean().item()
    assert math.isclose(psnr(b, a), 10 * math.log10(1 / mse), rel_tol=1e-6)
    noisy = (a.float() + torch.randn(a.shape, generator=g) * 40).clamp(0, 255).to(torch.uint8)
    assert ssim(noisy, a) < ssim(b, a) < 1.0
    # float [-1, 1] input means the same images
    assert math.isclose(psnr(b.float() / 127.5 - 1, a.float() / 127.5 - 1), psnr(b, a), rel_tol=1e-6)
