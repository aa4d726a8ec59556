"""`camworld vae train | eval`: train the causal video VAE on clips rendered on the fly, and measure it.

Training clips come from procedural worlds with seeds in [0, 10_000); evaluation uses seeds >= 10_000, which
training never sees. The clip iterator lives here, not in camworld.tokenizer, because model code must not import
the world renderer or the data layer.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from camworld.cli.threads import set_threads

HELD_OUT_SEED = 10_000


def add_parser(subparsers) -> None:
    from camworld.cli import OneLineParser, add_override_args

    p = subparsers.add_parser("vae", help="train or evaluate the video tokenizer (causal VAE)", description=__doc__)
    sub = p.add_subparsers(dest="vae_command", required=True, parser_class=OneLineParser)

    train = sub.add_parser("train", help="train (or resume) the VAE on rendered world clips")
    train.add_argument("--out", required=True, help="run folder: checkpoint/ (resumed if present) and log.jsonl")
    train.add_argument("--steps", type=int, default=20_000, help="total optimiser steps (resuming counts earlier ones)")
    train.add_argument("--seed", type=int, default=0, help="seed of the clip stream and the model init")
    train.add_argument("--pool", type=int, default=64, help="rendered clips kept in memory and sampled from")
    train.add_argument("--refresh-every", type=int, default=8, help="render one new clip into the pool every N steps")
    train.add_argument("--no-bf16", action="store_true", help="train in float32 instead of bf16 autocast")
    train.add_argument("--threads", type=int, default=2,
                       help="torch CPU threads (1 is much faster when other jobs share the cores)")
    add_override_args(train)
    train.set_defaults(func=run_train)

    ev = sub.add_parser("eval", help="PSNR / SSIM on held-out worlds and the memory of a long clip")
    ev.add_argument("--checkpoint", required=True, help="checkpoint folder (config.json + model.safetensors)")
    ev.add_argument("--clips", type=int, default=16, help="held-out clips (world seeds 10000, 10001, ...)")
    ev.add_argument("--frames", type=int, default=33, help="frames per held-out clip (stride_t * k + 1)")
    ev.add_argument("--long-frames", type=int, default=961, help="frames of the long clip (0 skips it)")
    ev.add_argument("--chunk", type=int, default=None, help="latent frames per chunk (default: the config's)")
    ev.add_argument("--compare-whole", action="store_true", help="also measure the long clip encoded in one pass")
    ev.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    ev.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ev.set_defaults(func=run_eval)


class ClipPool:
    """An endless stream of uint8 batches [B, F, H, W, 3] sampled from a pool of rendered clips.

    Rendering a world is far slower than a VAE step, so the pool keeps `size` clips of `pool_frames` frames, one
    per world, and replaces the oldest one every `refresh_every` batches. Each batch item is a random window of
    `frames` frames from a random pool clip, flipped left-right with probability 1/2.
    """

    def __init__(self, height: int, width: int, frames: int, batch: int, *, size: int = 64, pool_frames: int = 65,
                 refresh_every: int = 8, seed: int = 0, seed_range: tuple[int, int] = (0, HELD_OUT_SEED)):
        from camworld.data.make import DatasetSpec

        self.spec = DatasetSpec(num_clips=1, num_frames=max(pool_frames, frames), height=height, width=width,
                                depth=False)
        self.frames, self.batch, self.refresh_every = frames, batch, max(1, refresh_every)
        self.rng = np.random.default_rng(seed)
        self.seed_range = seed_range
        self.seeds: list[int] = []  # world seed of every clip rendered so far
        self.clips = [self._render() for _ in range(max(1, size))]
        self.oldest = 0
        self.count = 0

    def _render(self) -> np.ndarray:
        from camworld.data.make import render_clip

        seed = int(self.rng.integers(*self.seed_range))
        self.seeds.append(seed)
        return render_clip(seed, self.spec).frames

    def __iter__(self):
        return self

    def __next__(self):
        import torch

        if self.count and self.count % self.refresh_every == 0:
            self.clips[self.oldest] = self._render()
            self.oldest = (self.oldest + 1) % len(self.clips)
        self.count += 1
        items = []
        for _ in range(self.batch):
            clip = self.clips[int(self.rng.integers(len(self.clips)))]
            start = int(self.rng.integers(len(clip) - self.frames + 1))
            window = clip[start : start + self.frames]
            items.append(window[:, :, ::-1] if self.rng.random() < 0.5 else window)
        return torch.from_numpy(np.ascontiguousarray(np.stack(items)))


def run_train(args: argparse.Namespace) -> int:
    from camworld.config import apply_overrides
    from camworld.errors import UserError
    from camworld.presets import get_preset
    from camworld.tokenizer.train_vae import train_vae

    set_threads(args.threads)
    run_cfg = apply_overrides(get_preset(args.preset), args.overrides)
    cfg = run_cfg.tokenizer
    if cfg.train_frames < 1 or (cfg.train_frames - 1) % cfg.temporal_stride:
        raise UserError(f"tokenizer.train_frames must be {cfg.temporal_stride}*k + 1, got {cfg.train_frames}")
    if args.steps < 1:
        raise UserError(f"--steps must be positive, got {args.steps}")
    print(f"rendering a pool of {args.pool} clips ({cfg.height}x{cfg.width}) ...", flush=True)
    clips = ClipPool(cfg.height, cfg.width, cfg.train_frames, cfg.batch_clips, size=args.pool,
                     refresh_every=args.refresh_every, seed=args.seed)
    vae = train_vae(run_cfg, clips, args.out, args.steps, bf16=not args.no_bf16, seed=args.seed)
    params = sum(p.numel() for p in vae.parameters())
    print(f"trained {params / 1e6:.2f}M-parameter VAE: {args.out}/checkpoint (log {args.out}/log.jsonl)")
    return 0


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak_rss() -> bool:
    """Reset VmHWM (Linux: writing 5 to clear_refs); False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def long_clip_memory(vae, frames, chunk: int | None) -> dict:
    """Chunked encode, then streaming decode, of uint8 frames [F, H, W, 3], never holding the decoded video.

    Returns the clip's PSNR and the process's peak RSS during the pass, above its RSS before it.
    """
    import torch

    video = torch.from_numpy(frames)[None]
    base = _rss_kib("VmRSS")
    exact = _reset_peak_rss()
    t0 = time.monotonic()
    with torch.no_grad():
        z = vae.encode(video, chunk=chunk)
        step = z.shape[1] if chunk == 0 else (chunk or vae.cfg.chunk_latents)
        stream = vae.stream_decoder()
        sq_err, count, f0 = 0.0, 0, 0
        for k0 in range(0, z.shape[1], step):
            part = stream.step(z[:, k0 : k0 + step])
            ref = video[:, f0 : f0 + part.shape[1]].double() / 127.5 - 1
            sq_err += ((part.double().clamp(-1, 1) - ref) / 2).pow(2).sum().item()
            count += ref.numel()
            f0 += part.shape[1]
    seconds = time.monotonic() - t0
    peak = _rss_kib("VmHWM")
    return {"frames": len(frames), "latents": int(z.shape[1]), "chunk_latents": step, "seconds": round(seconds, 1),
            "psnr": 10 * np.log10(count / sq_err), "peak_rss_mib": round(peak / 1024, 1),
            "peak_above_start_mib": round((peak - base) / 1024, 1), "peak_is_exact": exact}


def run_eval(args: argparse.Namespace) -> int:
    import torch

    from camworld.data.make import DatasetSpec, render_clip
    from camworld.errors import UserError
    from camworld.fileio import atomic_path
    from camworld.tokenizer.metrics import psnr, ssim
    from camworld.tokenizer.vae import load_vae, to_uint8

    set_threads(args.threads)
    vae = load_vae(args.checkpoint)
    cfg = vae.cfg
    vae.num_latents(args.frames)
    if args.clips < 1:
        raise UserError(f"--clips must be positive, got {args.clips}")
    result: dict = {"checkpoint": str(args.checkpoint), "size": [cfg.height, cfg.width]}
    if args.long_frames:
        vae.num_latents(args.long_frames)
        spec = DatasetSpec(num_clips=1, num_frames=args.long_frames, height=cfg.height, width=cfg.width,
                           depth=False, trajectory="waypoint")
        frames = render_clip(HELD_OUT_SEED, spec).frames
        result["long_clip"] = long_clip_memory(vae, frames, args.chunk)
        if args.compare_whole:
            result["long_clip_whole"] = long_clip_memory(vae, frames, 0)
        del frames
    spec = DatasetSpec(num_clips=1, num_frames=args.frames, height=cfg.height, width=cfg.width, depth=False)
    psnrs, ssims = [], []
    with torch.no_grad():
        for i in range(args.clips):
            video = torch.from_numpy(render_clip(HELD_OUT_SEED + 1 + i, spec).frames)[None]
            recon = to_uint8(vae.decode(vae.encode(video, chunk=args.chunk), chunk=args.chunk))
            psnrs.append(psnr(recon, video))
            ssims.append(ssim(recon, video))
    result["held_out"] = {"clips": args.clips, "frames": args.frames, "psnr": float(np.mean(psnrs)),
                          "psnr_min": float(np.min(psnrs)), "ssim": float(np.mean(ssims))}
    h = result["held_out"]
    print(f"held-out worlds ({args.clips} clips x {args.frames} frames, {cfg.height}x{cfg.width}, seeds "
          f"{HELD_OUT_SEED + 1}..): PSNR {h['psnr']:.2f} dB (worst clip {h['psnr_min']:.2f}), SSIM {h['ssim']:.4f}")
    for key in ("long_clip", "long_clip_whole"):
        if key in result:
            m = result[key]
            print(f"{m['frames']}-frame clip ({m['latents']} latents, {m['chunk_latents']} per chunk): encode+decode "
                  f"{m['seconds']} s, peak RSS {m['peak_rss_mib']} MiB ({m['peak_above_start_mib']} MiB above the "
                  f"start), PSNR {m['psnr']:.2f} dB")
    if args.json:
        with atomic_path(args.json) as tmp:
            tmp.write_text(json.dumps(result, indent=2) + "\n")
    return 0
