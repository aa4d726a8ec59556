"""Package trained checkpoints into the bundled weights layout that `camworld generate` loads by default.

    python3 scripts/package_weights.py --vae RUN/vae --dit RUN/s4/checkpoints/step_XXXXXXX \
        --out camworld/assets/weights/tiny [--refiner RUN/refiner/checkpoints/step_YYYYYYY]

The VAE is kept in float32 (its latent statistics are precision-sensitive); the DiT's EMA weights are stored in
bfloat16 to keep the repository small (they are cast back to float32 on load). `--raw` packages the raw weights
instead of the EMA: after a short run the EMA (decay 0.999) is still mostly the initialisation.

`--refiner` takes a checkpoint of `camworld train --refiner` and writes refiner/ as config.json + lora.safetensors:
only the LoRA tensors (bf16), which `WorldModel` merges into dit/ on load (sana_wm.md §5). The refiner must have been
trained on the DiT weights packaged here (same checkpoint, and --init-ema unless --raw); otherwise this stops.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch

from camworld.cli.sampler_args import sigma_list
from camworld.config import RunConfig, from_dict
from camworld.errors import UserError
from camworld.lora_dirs import save_lora_dir, weights_fingerprint
from camworld.models.dit import WorldDiT
from camworld.modules.lora import split_lora_state
from camworld.pipeline_segments import check_segment_frames
from camworld.samplers.euler import check_sigmas
from camworld.tokenizer.vae import load_vae
from camworld.train.checkpoint import load_checkpoint
from camworld.weights_dirs import save_weights_dir


def _dit(path: str, raw: bool) -> tuple[WorldDiT, RunConfig]:
    ckpt = load_checkpoint(path)
    cfg = from_dict(RunConfig, ckpt.config)
    model = WorldDiT(cfg.model)
    model.load_state_dict(ckpt.model if raw else ckpt.ema)
    return model.to(torch.bfloat16), cfg


def _refiner_lora(path: str, raw: bool, dit: WorldDiT) -> tuple[dict[str, torch.Tensor], RunConfig, str]:
    """(LoRA tensors, run config, base fingerprint) of a refiner checkpoint, checked against the packaged DiT."""
    ckpt = load_checkpoint(path)
    base, lora = split_lora_state(ckpt.model if raw else ckpt.ema)
    if not lora:
        raise UserError(f"--refiner {path} has no LoRA tensors: it is not a `camworld train --refiner` checkpoint")
    fingerprint = weights_fingerprint(dit.state_dict())
    if weights_fingerprint(base) != fingerprint:
        raise UserError(f"--refiner {path} was trained on other base weights than --dit ({'raw' if raw else 'EMA'}): "
                        "train it with --init on that checkpoint (and --init-ema unless packaging with --raw)")
    return lora, from_dict(RunConfig, ckpt.config), fingerprint


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vae", required=True)
    parser.add_argument("--dit", required=True)
    parser.add_argument("--refiner", default=None, help="checkpoint of `camworld train --refiner` (a LoRA on --dit)")
    parser.add_argument("--refiner-off", dest="refiner_off", action="store_true",
                        help="bundle the refiner but leave it off by default (when it loses its A/B)")
    parser.add_argument("--cfg-scale", dest="cfg_scale", type=float, default=None,
                        help="the text guidance scale `generate` uses by default (sampling.cfg_scale; default: keep "
                             "the run config's, SANA-WM's 5.0); pick it by measurement")
    parser.add_argument("--ar-sigmas", dest="ar_sigmas", type=sigma_list, default=None,
                        help="the σ list `generate --mode ar` uses by default (sampling.ar_sigmas; default: none, "
                             "SANA-WM's steps at the trained shift); pick it by measurement")
    parser.add_argument("--ar-interval-k", dest="ar_interval_k", type=float, default=None,
                        help="the pyramid stagger `generate --mode ar` uses by default (sampling.ar_interval_k; "
                             "default: none, SANA-WM's 1/#chunks)")
    parser.add_argument("--ar-segment-frames", dest="ar_segment_frames", type=int, default=0,
                        help="longer `--mode ar` videos are made as a chain of segments of this many frames (sampling."
                             "ar_segment_frames; default 0: one pass, as SANA-WM); pick it by measurement")
    parser.add_argument("--segment-color-match", dest="segment_color_match", action="store_true",
                        help="match the colours of the frame each segment starts from to the first frame's "
                             "(sampling.segment_color_match; default off)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--raw", action="store_true", help="package the raw weights, not the EMA")
    args = parser.parse_args(argv)
    out = Path(args.out)
    try:
        if args.cfg_scale is not None and not args.cfg_scale > 0:
            raise UserError(f"--cfg-scale must be > 0, got {args.cfg_scale}")
        if args.ar_sigmas is not None:
            check_sigmas(args.ar_sigmas)
        if args.ar_interval_k is not None and args.ar_interval_k < 0:
            raise UserError(f"--ar-interval-k must be >= 0, got {args.ar_interval_k}")
        dit, cfg = _dit(args.dit, args.raw)
        check_segment_frames(args.ar_segment_frames, cfg.model.temporal_stride)
        vae = load_vae(args.vae)
        refiner = _refiner_lora(args.refiner, args.raw, dit) if args.refiner is not None else None
    except UserError as exc:
        print(f"package_weights: error: {exc}", file=sys.stderr)
        return 2
    cfg.tokenizer = vae.cfg
    cfg.sampling.ar_segment_frames = args.ar_segment_frames
    cfg.sampling.segment_color_match = args.segment_color_match
    if args.cfg_scale is not None:
        cfg.sampling.cfg_scale = args.cfg_scale
    cfg.sampling.ar_sigmas, cfg.sampling.ar_interval_k = args.ar_sigmas, args.ar_interval_k
    save_weights_dir(vae, out / "vae", cfg)
    save_weights_dir(dit, out / "dit", cfg)
    if refiner is not None:
        lora, refiner_cfg, fingerprint = refiner
        refiner_cfg.tokenizer = vae.cfg
        refiner_cfg.sampling = cfg.sampling
        refiner_cfg.refiner.on_by_default = not args.refiner_off
        save_lora_dir(out / "refiner", lora, refiner_cfg, fingerprint)
    elif (out / "refiner").is_dir():  # a refiner of earlier weights no longer fits the new dit/
        shutil.rmtree(out / "refiner")
        print(f"removed the old {out / 'refiner'} (no --refiner given)")
    sources = {"vae": args.vae, "dit": args.dit, "refiner": args.refiner, "weights": "raw" if args.raw else "ema",
               "refiner_on_by_default": refiner is not None and not args.refiner_off,
               "cfg_scale": cfg.sampling.cfg_scale, "ar_sigmas": args.ar_sigmas, "ar_interval_k": args.ar_interval_k,
               "ar_segment_frames": args.ar_segment_frames, "segment_color_match": args.segment_color_match}
    (out / "sources.json").write_text(json.dumps(sources, indent=2) + "\n")
    sizes = ", ".join(f"{p.parent.name} {p.stat().st_size / 2**20:.1f} MiB" for p in out.rglob("*.safetensors"))
    print(f"wrote {out}: {sizes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
