"""`camworld vae train | eval` end to end on a minute model and tiny rendered clips."""

from __future__ import annotations

import json

import numpy as np
import torch

from camworld.cli import main
from camworld.cli.vae_cmd import HELD_OUT_SEED, ClipPool

TINY = ["--set", "tokenizer.height=16", "--set", "tokenizer.width=24", "--set", "tokenizer.base_channels=8",
        "--set", "tokenizer.train_frames=5", "--set", "tokenizer.batch_clips=2", "--set", "tokenizer.latent_channels=4"]


def test_clip_pool_batches_come_from_training_seeds():
    pool = ClipPool(16, 24, 5, 3, size=2, pool_frames=9, refresh_every=1, seed=0)
    first = next(pool)
    assert first.shape == (3, 5, 16, 24, 3) and first.dtype == torch.uint8
    next(pool)
    assert pool.oldest == 1  # the second batch replaced one pool clip
    assert all(clip.shape == (9, 16, 24, 3) for clip in pool.clips)
    assert len(pool.seeds) == 3 and all(0 <= s < HELD_OUT_SEED for s in pool.seeds)


def test_train_then_eval(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["vae", "train", "--out", str(out), "--steps", "2", "--pool", "1", "--threads", "1", *TINY]) == 0
    ckpt = out / "checkpoint"
    assert (ckpt / "model.safetensors").is_file() and (ckpt / "config.json").is_file()
    assert len((out / "log.jsonl").read_text().splitlines()) == 2
    report = tmp_path / "eval.json"
    code = main(["vae", "eval", "--checkpoint", str(ckpt), "--clips", "1", "--frames", "5", "--long-frames", "9",
                 "--compare-whole", "--json", str(report), "--threads", "1"])
    assert code == 0
    result = json.loads(report.read_text())
    assert np.isfinite(result["held_out"]["psnr"]) and 0 < result["held_out"]["ssim"] <= 1
    assert result["long_clip"]["frames"] == 9 and result["long_clip"]["latents"] == 3
    assert result["long_clip_whole"]["chunk_latents"] == 3
    # chunked and whole-clip passes reconstruct the same frames
    assert abs(result["long_clip"]["psnr"] - result["long_clip_whole"]["psnr"]) < 1e-3
    assert "PSNR" in capsys.readouterr().out


def test_eval_user_errors(tmp_path, capsys):
    assert main(["vae", "eval", "--checkpoint", str(tmp_path / "missing")]) == 2
    assert "not a VAE checkpoint" in capsys.readouterr().err
    assert main(["vae", "train", "--out", str(tmp_path / "r"), "--set", "tokenizer.train_frames=6"]) == 2
    assert "train_frames" in capsys.readouterr().err
