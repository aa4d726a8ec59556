"""`camworld train --refiner`: the stage-2 refiner as a LoRA on a stage-4 DiT checkpoint (sana_wm.md §5), through the
same training loop as the DiT stages (resume, checkpoints, loss.jsonl / loss.png).

    camworld train --refiner --data data/ --tokenizer runs/vae --init runs/s4/checkpoints/step_0003000 \
        --out runs/refiner --steps 300 [--init-ema] [--set refiner.lora_rank=16 --set train.lr=1e-3]
    camworld train --refiner --data data/ --tokenizer runs/vae --out runs/refiner --resume

The run config comes from --init's checkpoint (architecture, clip length, batch, ...) with the refiner's changes
(`camworld.train.refiner_train.refiner_run_config`); --preset and --stage are not used. --init-ema takes the base from
the checkpoint's EMA weights: the base must be the weights that get bundled as dit/ (EMA unless packaged with --raw),
which `scripts/package_weights.py --refiner` checks.
"""

from __future__ import annotations

import argparse

from camworld.cli.train_common import override_steps, read_init, report_last, restore_tuples, tokenizer_and_clips
from camworld.errors import UserError


def run_refiner(args: argparse.Namespace, resume_from) -> int:
    import torch

    from camworld.config import RunConfig, from_dict, to_dict
    from camworld.text.encoder import TextEncoder
    from camworld.train.dist import init_distributed, shutdown
    from camworld.train.loop import train
    from camworld.train.refiner_train import RefinerObjective, build_refiner, is_refiner_state, refiner_run_config

    base_state = None
    if resume_from is not None:
        if not is_refiner_state(resume_from.model):
            raise UserError(f"{args.out} holds a DiT stage run, not a refiner run: resume it without --refiner")
        cfg = restore_tuples(from_dict(RunConfig, resume_from.config))
    else:
        if args.init is None:
            raise UserError("the refiner starts from a stage-4 DiT: pass --init CKPT")
        init_cfg, base_state = read_init(args.init, args.init_ema)
        cfg = refiner_run_config(init_cfg, args.overrides)
    override_steps(cfg, args.steps)
    vae, dataset = tokenizer_and_clips(cfg, args.tokenizer, args.data)
    info = init_distributed(args.device)
    try:
        torch.manual_seed(cfg.train.seed)
        model = build_refiner(cfg, base_state)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        vae.to(info.device)
        text = TextEncoder(cfg.text)
        objective = RefinerObjective(
            encode_text=lambda captions: text.encode(captions),
            encode_video=lambda frames: vae.encode(frames.to(info.device)),
            seed=cfg.train.seed, shift=cfg.train.shift, sigma_start=cfg.refiner.sigmas[0],
            degrade_scale=cfg.refiner.degrade_scale, latent_noise=cfg.refiner.latent_noise,
            temporal_stride=cfg.model.temporal_stride,
        )
        if info.is_main:
            source = "resumed" if resume_from is not None else f"base {args.init} ({'EMA' if args.init_ema else 'raw'})"
            print(f"refiner LoRA rank {cfg.refiner.lora_rank}: {trainable} trainable parameters; {source}")
        records = train(model, objective, dataset, cfg.train, args.out, run_config=to_dict(cfg),
                        resume_from=resume_from, info=info)
        if info.is_main:
            report_last(records, "refiner", args.out)
    finally:
        shutdown()
    return 0
