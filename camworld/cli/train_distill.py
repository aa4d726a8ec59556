"""`camworld train --distill`: self-forcing distillation of a chunk-causal DiT into a 4-step student LoRA
(sana_wm.md §6.5; `camworld.train.distill`), through the same training loop as the DiT stages (resume, checkpoints,
loss.jsonl / loss.png).

    camworld train --distill --data data/ --tokenizer camworld/assets/weights/tiny/vae \
        --init camworld/assets/weights/tiny/dit --out runs/student --steps 500 [--set distill.lora_rank=32]
    camworld train --distill --data data/ --tokenizer ... --out runs/student --resume

--init is the teacher: a weights folder (config.json + model.safetensors, e.g. the bundled dit/) or a stage-4
checkpoint folder (its EMA weights with --init-ema). The run config is the teacher's with the distillation's changes
(`distill_run_config`) and `--set`; --preset and --stage are not used. One process only: the objective calls the
student's streaming `step`, which a data-parallel wrapper would not synchronise.
"""

from __future__ import annotations

import argparse

from camworld.cli.train_common import override_steps, read_init, report_last, restore_tuples, tokenizer_and_clips
from camworld.errors import UserError


def _teacher(args: argparse.Namespace):
    """(teacher RunConfig, teacher state dict) from --init: a weights folder or a checkpoint folder."""
    if args.init is None:
        raise UserError("distillation starts from a teacher DiT: pass --init (a weights folder or a checkpoint)")
    return read_init(args.init, args.init_ema)


def run_distill(args: argparse.Namespace, resume_from) -> int:
    import torch

    from camworld.config import RunConfig, from_dict, to_dict
    from camworld.text.encoder import TextEncoder
    from camworld.train.dist import init_distributed, shutdown
    from camworld.train.distill import DistillModels, DistillObjective, distill_run_config
    from camworld.train.loop import train

    teacher_state = None
    if resume_from is not None:
        if not any(k.startswith("critic.") for k in resume_from.model):
            raise UserError(f"{args.out} holds another kind of run, not a distillation")
        cfg = restore_tuples(from_dict(RunConfig, resume_from.config))
    else:
        teacher_cfg, teacher_state = _teacher(args)
        cfg = distill_run_config(teacher_cfg, args.overrides)
    override_steps(cfg, args.steps)
    vae, dataset = tokenizer_and_clips(cfg, args.tokenizer, args.data)
    info = init_distributed(args.device)
    try:
        if info.distributed:
            raise UserError("distillation runs in one process (drop torchrun; use --threads for the cores)")
        torch.manual_seed(cfg.train.seed)
        models = DistillModels(cfg, teacher_state)
        vae.to(info.device)
        text = TextEncoder(cfg.text)
        objective = DistillObjective(cfg, encode_text=lambda captions: text.encode(captions),
                                     encode_video=lambda frames: vae.encode(frames.to(info.device)),
                                     global_batch=cfg.train.batch_size)
        trainable = sum(p.numel() for p in models.generator.parameters() if p.requires_grad)
        print(f"student LoRA rank {cfg.distill.lora_rank}: {trainable} trainable parameters; critic "
              f"{sum(p.numel() for p in models.critic.parameters())}; the student trains every "
              f"{cfg.distill.generator_every} steps at lr {cfg.train.lr * cfg.distill.student_lr_scale:g}, the critic "
              f"every step at {cfg.train.lr:g}")
        records = train(models, objective, dataset, cfg.train, args.out, run_config=to_dict(cfg),
                        resume_from=resume_from, info=info, param_groups=DistillModels.optimizer_groups)
        report_last(records, "distillation", args.out)
    finally:
        shutdown()
    return 0
