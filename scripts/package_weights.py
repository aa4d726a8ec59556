"""Package trained checkpoints into the bundled weights layout that `camworld generate` loads by default.

    python3 scripts/package_weights.py --vae RUN/vae --dit RUN/s3/checkpoints/step_XXXXXXX \
        --out camworld/assets/weights/tiny [--refiner CKPT]

The VAE is kept in float32 (its latent statistics are precision-sensitive); the DiT's EMA weights are stored in
bfloat16 to keep the repository small (they are cast back to float32 on load). `--raw` packages the raw weights
instead of the EMA: after a short run the EMA (decay 0.999) is still mostly the initialisation.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from camworld.config import RunConfig, from_dict
from camworld.models.dit import WorldDiT
from camworld.pipeline import save_weights_dir
from camworld.tokenizer.vae import load_vae
from camworld.train.checkpoint import load_checkpoint


def _dit(path: str, raw: bool) -> tuple[WorldDiT, RunConfig]:
    ckpt = load_checkpoint(path)
    cfg = from_dict(RunConfig, ckpt.config)
    model = WorldDiT(cfg.model)
    model.load_state_dict(ckpt.model if raw else ckpt.ema)
    return model.to(torch.bfloat16), cfg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vae", required=True)
    parser.add_argument("--dit", required=True)
    parser.add_argument("--refiner", default=None)
    parser.add_argument("--out", required=True)
    parser.add_argument("--raw", action="store_true", help="package the raw weights, not the EMA")
    args = parser.parse_args()
    out = Path(args.out)
    dit, cfg = _dit(args.dit, args.raw)
    vae = load_vae(args.vae)
    cfg.tokenizer = vae.cfg
    save_weights_dir(vae, out / "vae", cfg)
    save_weights_dir(dit, out / "dit", cfg)
    if args.refiner is not None:
        refiner, refiner_cfg = _dit(args.refiner, args.raw)
        refiner_cfg.tokenizer = vae.cfg
        save_weights_dir(refiner, out / "refiner", refiner_cfg)
    sources = {"vae": args.vae, "dit": args.dit, "refiner": args.refiner, "weights": "raw" if args.raw else "ema"}
    (out / "sources.json").write_text(json.dumps(sources, indent=2) + "\n")
    sizes = ", ".join(f"{p.parent.name} {p.stat().st_size / 2**20:.1f} MiB" for p in out.rglob("*.safetensors"))
    print(f"wrote {out}: {sizes}")


if __name__ == "__main__":
    main()
