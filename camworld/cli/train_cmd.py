"""`camworld train`: one stage of SANA-WM's progressive DiT training on a sharded clip dataset (sana_wm.md §6).

    camworld train --preset tiny --stage 1 --data data/ --tokenizer runs/vae/checkpoint --out runs/s1
    camworld train --preset tiny --stage 2 ... --init runs/s1/checkpoints/step_0003000 --out runs/s2
    camworld train --out runs/s1 --resume ...                  # continue an interrupted run exactly
    torchrun --nproc-per-node 2 -m camworld train ...          # data parallel (gloo on CPU, NCCL on CUDA)
    camworld train --refiner --init runs/s4/checkpoints/step_0001000 ...   # the stage-2 refiner LoRA (§5),
                                                               # see camworld/cli/train_refiner.py
    camworld train --distill --init camworld/assets/weights/tiny/dit ...   # the 4-step student (§6.5),
                                                               # see camworld/cli/train_distill.py

Config order: preset, then the stage's overrides, then `--set` and `--steps`. A resumed run takes its config from
its checkpoint (only `--steps` may extend it).
"""

from __future__ import annotations

import argparse

from camworld.cli import add_override_args
from camworld.cli.threads import set_threads
from camworld.cli.train_common import override_steps, read_init, report_last, tokenizer_and_clips
from camworld.errors import UserError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("train", help="train the world-model DiT (one progressive stage)")
    add_override_args(p)
    p.add_argument("--stage", type=int, default=1, help="1 GDN | 2 hybrid | 3 long clips + camera | 4 chunk-causal")
    p.add_argument("--data", required=True, help="dataset folder of clip shards (`camworld data make`)")
    p.add_argument("--tokenizer", required=True, help="trained VAE checkpoint folder (`camworld vae train`)")
    p.add_argument("--out", required=True, help="run folder: loss.jsonl, loss.png, checkpoints/")
    p.add_argument("--init", default=None, help="checkpoint folder of the previous stage to start from, or a "
                   "weights folder (e.g. camworld/assets/weights/tiny/dit) to fine-tune")
    p.add_argument("--init-ema", dest="init_ema", action="store_true",
                   help="start from the EMA weights of --init instead of its raw weights")
    p.add_argument("--refiner", action="store_true",
                   help="train the stage-2 refiner: a LoRA on the stage-4 DiT given by --init (--stage unused)")
    p.add_argument("--distill", action="store_true",
                   help="self-forcing distillation of the DiT given by --init into a 4-step student LoRA (--stage "
                        "unused)")
    p.add_argument("--steps", type=int, default=None, help="total optimiser steps (overrides the stage's)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    p.add_argument("--device", default=None, help="cpu | cuda (default: cuda when available)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (1 is much faster than 2 when other jobs share the cores)")
    p.set_defaults(func=run)


def _config(args: argparse.Namespace, resume_from):
    from camworld.config import RunConfig, apply_overrides, from_dict
    from camworld.presets import get_preset
    from camworld.train.stages import apply_stage

    if resume_from is not None:
        cfg = from_dict(RunConfig, resume_from.config)
        cfg.train.betas = tuple(cfg.train.betas)
    else:
        cfg = apply_overrides(apply_stage(get_preset(args.preset), args.stage), args.overrides)
    override_steps(cfg, args.steps)
    return cfg


def run(args: argparse.Namespace) -> int:
    import torch

    from camworld.config import to_dict
    from camworld.models.dit import WorldDiT
    from camworld.text.encoder import TextEncoder
    from camworld.train.dist import init_distributed, shutdown
    from camworld.train.loop import latest_checkpoint, train
    from camworld.train.stages import get_stage, load_previous_stage
    from camworld.train.world_objective import WorldModelObjective

    set_threads(args.threads)
    resume_from = latest_checkpoint(args.out) if args.resume else None
    if args.refiner:
        from camworld.cli.train_refiner import run_refiner

        return run_refiner(args, resume_from)
    if args.distill:
        from camworld.cli.train_distill import run_distill

        return run_distill(args, resume_from)
    if resume_from is not None and any(k.endswith(".lora_A") for k in resume_from.model):
        raise UserError(f"{args.out} holds a refiner run: resume it with --refiner")
    cfg = _config(args, resume_from)
    stage = get_stage(cfg.train.stage)
    init_state = None
    if resume_from is None:
        if args.init is None and stage.init_from is not None:
            raise UserError(f"stage {stage.number} ({stage.name}) starts from stage {stage.init_from}: "
                            "pass --init CKPT")
        if args.init is not None:
            init_state = read_init(args.init, args.init_ema)[1]
    vae, dataset = tokenizer_and_clips(cfg, args.tokenizer, args.data)
    info = init_distributed(args.device)
    try:
        torch.manual_seed(cfg.train.seed)
        model = WorldDiT(cfg.model)
        if init_state is not None:
            report = load_previous_stage(model, init_state)
            if info.is_main:
                print(f"initialised from {args.init}: {report}")
        vae.to(info.device)
        text = TextEncoder(cfg.text)
        objective = WorldModelObjective(
            encode_text=lambda captions: text.encode(captions),
            encode_video=lambda frames: vae.encode(frames.to(info.device)),
            seed=cfg.train.seed, shift=cfg.train.shift, image_cond_prob=cfg.train.image_cond_prob,
            text_dropout=cfg.train.text_dropout, cond_degrade_prob=cfg.train.cond_degrade_prob,
            cond_noise_frac=cfg.train.cond_noise_frac, temporal_stride=cfg.model.temporal_stride, camera=stage.camera,
            causal=cfg.train.causal, chunk_first=cfg.model.chunk_first, chunk_size=cfg.model.chunk_size,
            plucker_rebase_chunks=cfg.model.plucker_rebase_chunks,
        )
        records = train(model, objective, dataset, cfg.train, args.out, run_config=to_dict(cfg),
                        resume_from=resume_from, info=info)
        if info.is_main:
            report_last(records, f"stage {stage.number}", args.out)
    finally:
        shutdown()
    return 0
